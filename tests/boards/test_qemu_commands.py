"""`manyfold ports`, `query` and `footprint` as real processes against both emulated boards:
QEMU runs the firmware with the greenhouse partition, and the commands reach it through its UART
socket URL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import FLASH_BUDGET, RAM_BUDGET

from manyfold.devices import greenhouse as gh

SPEC = gh.greenhouse_spec()
IMAGE = SPEC.encode()


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", *args], capture_output=True, text=True, timeout=timeout)


def test_ports_finds_the_emulated_board(board, run_board):
    """`ports --probe URL` (with this machine's serial ports scanned too) shows the board on the
    emulated UART: its name, partition, manifest id and protocol version."""
    with run_board(IMAGE) as b:
        result = run("ports", "--probe", b.url, "--json", "--timeout", "3")
    assert result.returncode == 0, result.stderr
    probes = {p["port"]: p for p in json.loads(result.stdout)}
    assert probes[b.url]["status"] == "answered"
    answer = probes[b.url]["answer"]
    assert (answer["board"], answer["partition"], answer["manifest_id"], answer["protocol"], answer["image_status"]) == (
        board, "greenhouse-sensors", SPEC.image_id().hex(), "1.1", "loaded",
    )  # fmt: skip
    assert "upload" not in answer["capabilities"] and "lockstep" in answer["capabilities"]


def test_ports_shows_an_empty_partition_region(run_board):
    """A board with nothing in its partition region still answers; the probe says why nothing runs."""
    with run_board(None) as b:
        result = run("ports", "--no-scan", "--probe", b.url, "--json", "--timeout", "3")
    answer = json.loads(result.stdout)[0]["answer"]
    assert (answer["image_status"], answer["manifest_id"], answer["partition"]) == ("header_empty", None, "")


def test_query_reads_the_emulated_board(board, run_board):
    """`query` reads topology, flow, latest and board facts from the firmware under QEMU, and an
    unknown route is a sentence."""
    with run_board(IMAGE) as b:
        topology = json.loads(run("query", "--port", b.url, "topology", "--json").stdout)
        flow = json.loads(run("query", "--port", b.url, "flow", "--json").stdout)
        facts = json.loads(run("query", "--port", b.url, "board", "--json").stdout)
        latest = json.loads(run("query", "--port", b.url, "latest", gh.Z1_TEMP_AVG, "--json").stdout)
        unknown = run("query", "--port", b.url, "latest", "42")
    assert topology["board"] == board and [r["name"] for r in topology["routes"]] == [r.name for r in SPEC.routes]
    assert len(flow["flow"]) == len(topology["nodes"]) == 8
    assert facts["board_facts"]["capacities"]["routes"] == 16 and facts["board_facts"]["rx_dropped"] == 0
    assert latest["route"] == SPEC.route_index(gh.Z1_TEMP_AVG)
    assert unknown.returncode == 2 and unknown.stderr.strip() == "manyfold query: unknown route 42: the device has 14 routes (0 to 13)"


def test_footprint_prints_flash_and_ram(board, elf):
    """`footprint --board B --json` builds if needed, runs the greenhouse partition under QEMU and
    prints flash (text + data) and RAM (data + bss + stack peak) within the budgets."""
    result = run("footprint", "--board", board, "--json", timeout=1200)
    assert result.returncode == 0, result.stderr
    fp = json.loads(result.stdout)
    assert fp["board"] == board and Path(fp["elf"]) == elf
    assert fp["flash_bytes"] == fp["text_bytes"] + fp["data_bytes"] <= FLASH_BUDGET
    assert fp["ram_bytes"] == fp["data_bytes"] + fp["bss_bytes"] + fp["stack_peak_bytes"] <= RAM_BUDGET
    assert fp["stack_peak_bytes"] > 4096
    table = run("footprint", "--board", board, "--elf", fp["elf"], timeout=1200)
    assert table.returncode == 0 and "flash (text + data)" in table.stdout and str(fp["flash_bytes"]) in table.stdout
