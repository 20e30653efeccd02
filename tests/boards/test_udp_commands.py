"""The commands with a UDP board, as real processes: `manyfold flash --link udp` boots
mps2-an386's UDP build in QEMU and prints the udp:// address, `query` and `ports --probe` reach
the board there, and `footprint --link udp` measures the UDP build within its budgets (the
serial build keeps its own)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUILD_SCRIPT, BUILD_TIMEOUT_S
from test_flash import FLASH_TIMEOUT_S, _read_until, manifest_file, manyfold  # noqa: F401 (a fixture)
from test_udp_link import BOARD, IMAGE, SPEC, run_udp_board, udp_elf  # noqa: F401 (fixtures)

from manyfold.devices.footprint import FLASH_BUDGET, FLASH_BUDGET_UDP, RAM_BUDGET, RAM_BUDGET_UDP
from manyfold.examples import greenhouse


def test_flash_link_udp_prints_the_address_and_answers_queries(udp_elf, manifest_file, tmp_path):  # noqa: F811
    """flash --link udp boots the UDP build with the partition, verifies it over UDP, prints the
    udp:// address to use; query and ports reach the board there while it runs; Ctrl-C stops it."""
    path, manifest_id = manifest_file
    proc = subprocess.Popen(
        [sys.executable, "-m", "manyfold", "flash", str(path), "--board", BOARD, "--partition", greenhouse.DEVICE,
         "--out", str(tmp_path), "--link", "udp"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = _read_until(proc, "UDP: udp://127.0.0.1:", FLASH_TIMEOUT_S)
        assert f"{BOARD} runs partition {greenhouse.DEVICE} of manifest {manifest_id}" in "".join(lines)
        url = lines[-1].split()[1]
        topology = manyfold("query", "--port", url, "topology", "--json")
        assert topology.returncode == 0, topology.stderr
        assert json.loads(topology.stdout)["partition"] == greenhouse.DEVICE
        probe = manyfold("ports", "--no-scan", "--probe", url, "--json", "--timeout", "3")
        answer = json.loads(probe.stdout)[0]["answer"]
        assert (answer["board"], answer["manifest_id"]) == (BOARD, manifest_id)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def test_flash_link_udp_is_refused_where_there_is_no_ethernet(manifest_file, tmp_path):  # noqa: F811
    """A board without Ethernet has no UDP link: one sentence, before anything is built."""
    path, _ = manifest_file
    result = manyfold("flash", str(path), "--board", "lm3s6965evb", "--partition", greenhouse.DEVICE, "--out", str(tmp_path), "--link", "udp")
    assert result.returncode != 0
    assert "board lm3s6965evb has no udp link" in result.stderr and "mps2-an386" in result.stderr
    assert "Traceback" not in result.stderr


def test_build_script_refuses_a_udp_build_without_ethernet(toolchain):
    """`build.sh BOARD udp` for a board without an [ethernet] table stops with a sentence saying
    so; an unknown link is refused before any build."""
    result = subprocess.run(["bash", str(BUILD_SCRIPT), "lm3s6965evb", "udp"], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert result.returncode != 0
    assert "needs an `[ethernet]` table: this board has no Ethernet link" in result.stderr, result.stderr[-3000:]
    unknown = subprocess.run(["bash", str(BUILD_SCRIPT), "mps2-an386", "tcp"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "no link 'tcp' (serial or udp)" in unknown.stderr


@pytest.mark.parametrize(("link", "flash_budget", "ram_budget"), [("udp", FLASH_BUDGET_UDP, RAM_BUDGET_UDP), ("serial", FLASH_BUDGET, RAM_BUDGET)])
def test_footprint_of_each_link_within_its_budget(udp_elf, link, flash_budget, ram_budget):  # noqa: F811
    """`footprint --board mps2-an386 --link L --json` measures that build with the greenhouse
    partition (run over its own link): the UDP build within 64 KiB flash and 16 KiB RAM, the
    serial build still within 32 KiB and 8 KiB."""
    result = manyfold("footprint", "--board", BOARD, "--link", link, "--json", timeout_s=1200)
    assert result.returncode == 0, result.stderr
    fp = json.loads(result.stdout)
    assert (fp["board"], fp["link"], fp["flash_budget"], fp["ram_budget"]) == (BOARD, link, flash_budget, ram_budget)
    assert fp["flash_bytes"] == fp["text_bytes"] + fp["data_bytes"] <= flash_budget
    assert fp["ram_bytes"] == fp["data_bytes"] + fp["bss_bytes"] + fp["stack_peak_bytes"] <= ram_budget
    if link == "udp":
        assert Path(fp["elf"]) == udp_elf and fp["flash_bytes"] > FLASH_BUDGET // 2, "smoltcp and the NIC driver are in"


def test_nodes_lists_a_udp_board_found_by_a_direct_probe(run_udp_board):  # noqa: F811
    """`manyfold nodes --device udp://...` probes the board directly: it is listed with its board,
    partition and manifest id; an address where no board listens is listed as not answering."""
    with run_udp_board(IMAGE) as b:
        result = manyfold("nodes", "--device", b.url, "--device", "udp://127.0.0.1:9", "--json", "--timeout", "1")
    assert result.returncode == 0, result.stderr
    found = {x["port"]: x for x in json.loads(result.stdout)["boards"]}
    answer = found[b.url]["answer"]
    assert (found[b.url]["status"], answer["board"], answer["partition"], answer["manifest_id"]) == (
        "answered", BOARD, "greenhouse-sensors", SPEC.image_id().hex(),
    )  # fmt: skip
    assert found["udp://127.0.0.1:9"]["status"] == "no answer"
