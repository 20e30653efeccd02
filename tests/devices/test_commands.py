"""`manyfold query`, `ports` and `footprint` as real processes, against a simulated board served
on a real TCP socket (the emulated boards are in tests/boards/test_qemu_commands.py): answers as
tables and JSON, and every user error as one sentence with exit code 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from simserver import serve_sim
from termkit import run_in_terminal, widest_line, wrapped_names

from manyfold.devices import greenhouse as gh
from manyfold.devices import image as im

ROOT = Path(__file__).resolve().parents[2]

SPEC = gh.greenhouse_spec()
IMAGE = SPEC.encode()


def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def error_of(result: subprocess.CompletedProcess) -> str:
    """The one-sentence error of a failed command (exit 2, no traceback)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stderr.strip()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"socket://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once it is closed


def test_query_topology_as_json():
    """`query topology --json` gives the describe's facts, the routes (named when known), nodes
    and sources of the partition the board runs."""
    with serve_sim(IMAGE) as url:
        result = run("query", "--port", url, "topology", "--json")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert (r["board"], r["partition"], r["manifest_id"], r["protocol"]) == ("lm3s6965evb", "greenhouse-sensors", SPEC.image_id().hex(), "1.1")
    assert [route["name"] for route in r["routes"]] == [route.name for route in SPEC.routes]
    assert [route["id"] for route in r["routes"]] == [f"{im.route_id(route.name):08x}" for route in SPEC.routes]
    assert r["routes"][SPEC.route_index(gh.FAN_DESIRED)]["direction"] == "from host"
    assert [n["op"] for n in r["nodes"]] == ["scale", "count_window", "threshold", "scale", "time_window", "deadband", "rate_limit", "write_binding"]
    assert [s["waveform"] for s in r["sources"]] == ["triangle", "triangle", "random_walk", "triangle"]


def test_query_tables():
    """Without --json, flow, taints, counters and board are printed as tables under a line
    naming the board, partition, manifest and protocol."""
    with serve_sim(IMAGE) as url:
        for what, expected in (("flow", "mailbox flow"), ("taints", "det_seeded_entropy"), ("counters", "frame_crc_errors"), ("board", "capacity: routes")):
            result = run("query", "--port", url, what)
            assert result.returncode == 0, result.stderr
            assert "lm3s6965evb on socket://" in result.stdout and "greenhouse-sensors" in result.stdout
            assert expected in result.stdout, (what, result.stdout)


def test_query_tables_fit_80_and_100_column_terminals():
    """In an 80- or 100-column terminal the topology and taints tables fit, and route and taint
    names wrap only between words."""
    from manyfold.graph.taints import Taint

    routes = {route.name for route in SPEC.routes}
    with serve_sim(IMAGE) as url:
        for columns in (80, 100):
            for what in ("topology", "taints"):
                result = run_in_terminal("query", "--port", url, what, columns=columns)
                assert result.returncode == 0, result.stderr
                assert widest_line(result.stdout) <= columns, (what, columns)
                layout = wrapped_names(result.stdout, routes | {t.value for t in Taint})
                assert layout.broken == [], (what, columns, layout.broken)
                assert routes <= layout.found, (what, columns, routes - layout.found)


def test_query_latest_by_index_and_by_name():
    """`latest ROUTE` takes a route index or a printed route name and answers with the route's
    last event (or null before its first)."""
    with serve_sim(IMAGE) as url:
        by_index = json.loads(run("query", "--port", url, "latest", "2", "--json").stdout)
        by_name = json.loads(run("query", "--port", url, "latest", gh.Z1_TEMP_AVG, "--json").stdout)
    for r in (by_index, by_name):
        assert (r["route"], r["name"]) == (2, gh.Z1_TEMP_AVG)
        assert r["event"] is None or (r["event"]["route"] == 2 and "det_seeded_entropy" in r["event"]["taints"])


RAW, CELSIUS = "read.raw.demo.probe.counts.meta.v1", "read.logical.demo.probe.celsius.meta.v1"


def _demo_spec() -> im.PartitionSpec:
    return im.PartitionSpec(
        name="demo", routes=[im.RouteSpec(RAW), im.RouteSpec(CELSIUS)],
        sources=[im.Source(RAW, period_us=100_000, center=2000.0)],
        operators=[im.Scale(RAW, CELSIUS, 0.01, -2.0)], to_host=[CELSIUS],
    )  # fmt: skip


def test_query_names_routes_from_an_image_file(tmp_path):
    """--image labels the device's routes with the names in a partition image file; without it,
    routes of an unknown partition are shown by id only."""
    spec = _demo_spec()
    path = tmp_path / "demo.bin"
    path.write_bytes(spec.encode())
    with serve_sim(spec.encode()) as url:
        named = json.loads(run("query", "--port", url, "topology", "--json", "--image", str(path)).stdout)
        unnamed = json.loads(run("query", "--port", url, "topology", "--json", cwd=tmp_path).stdout)
    assert [r["name"] for r in named["routes"]] == [RAW, CELSIUS]
    assert [r["name"] for r in unnamed["routes"]] == [None, None]
    (tmp_path / "junk.bin").write_bytes(b"not an image")
    assert "is not a partition image" in error_of(run("query", "--port", url, "topology", "--image", str(tmp_path / "junk.bin")))


def test_query_finds_the_image_flash_wrote(tmp_path):
    """Without --image, query names the routes from the image `manyfold flash` left under
    .manyfold/flash/ for the board's manifest and partition; images of other manifests and
    files that are not images there are passed over."""
    flashed = tmp_path / ".manyfold" / "flash" / "lm3s6965evb"
    flashed.mkdir(parents=True)
    (flashed / "aaa-junk.bin").write_bytes(b"not an image")
    # The same partition name in another manifest (sorted before the right one): not used.
    other = im.PartitionSpec("demo", [im.RouteSpec("read.raw.demo.probe.other.meta.v1")])
    (flashed / "bbb-other.bin").write_bytes(other.encode())
    spec = _demo_spec()
    with serve_sim(spec.encode()) as url:
        before = json.loads(run("query", "--port", url, "topology", "--json", cwd=tmp_path).stdout)
        (flashed / "demo.bin").write_bytes(spec.encode())
        after = json.loads(run("query", "--port", url, "topology", "--json", cwd=tmp_path).stdout)
    assert [r["name"] for r in before["routes"]] == [None, None]
    assert [r["name"] for r in after["routes"]] == [RAW, CELSIUS]


def test_unknown_routes_are_sentences():
    """An index past the route table, or a name the device does not have, is one sentence saying
    what the device has."""
    with serve_sim(IMAGE) as url:
        assert error_of(run("query", "--port", url, "latest", "99")) == "manyfold query: unknown route 99: the device has 14 routes (0 to 13)"
        message = error_of(run("query", "--port", url, "latest", "read.logical.no.such.route.meta.v1"))
    assert "unknown route 'read.logical.no.such.route.meta.v1'" in message and "14 routes" in message


def test_unreachable_and_silent_ports_are_sentences():
    """A port nothing listens on, and one where nothing answers within --timeout, are reported
    as sentences naming the port."""
    url = closed_port_url()
    assert error_of(run("query", "--port", url, "topology")) == f"manyfold query: cannot open {url}: connection refused"
    with serve_sim(None) as silent:
        message = error_of(run("query", "--port", silent, "topology", "--timeout", "0.5"))
    assert message.startswith(f"manyfold query: no answer from {silent} within 0.5 s")
    assert "cannot open nosuchdevice" in error_of(run("query", "--port", "nosuchdevice", "flow"))


def test_bad_arguments_are_sentences():
    """`latest` without a route, a route for another query, and a bad --timeout exit 2 with the
    problem named."""
    url = closed_port_url()
    assert "`latest` needs a ROUTE" in error_of(run("query", "--port", url, "latest"))
    assert "ROUTE is only for `latest`" in error_of(run("query", "--port", url, "flow", "3"))
    assert "expected a positive number of seconds" in error_of(run("query", "--port", url, "flow", "--timeout", "0"))
    assert "with --port, WHAT is one of" in error_of(run("query", "--port", url, "routes"))  # routes: --cluster only


def test_ports_probes_urls():
    """`ports --probe` tries the handshake on each URL: a board answers with its board,
    partition, manifest id and protocol; the others say no answer, or why they did not open."""
    closed = closed_port_url()
    with serve_sim(IMAGE, board="mps2-an386") as board, serve_sim(None) as silent:
        result = run("ports", "--no-scan", "--probe", board, "--probe", silent, "--probe", closed, "--json", "--timeout", "0.5")
    assert result.returncode == 0, result.stderr
    by_port = {p["port"]: p for p in json.loads(result.stdout)}
    assert list(by_port) == [board, silent, closed]
    answer = by_port[board]["answer"]
    assert by_port[board]["status"] == "answered"
    assert (answer["board"], answer["partition"], answer["manifest_id"], answer["protocol"]) == ("mps2-an386", "greenhouse-sensors", SPEC.image_id().hex(), "1.1")
    assert (by_port[silent]["status"], by_port[silent]["answer"]) == ("no answer", None)
    assert by_port[closed]["status"] == "cannot open: connection refused"


def test_ports_lists_this_machines_serial_ports():
    """Without --no-scan, every serial port pyserial lists is shown with what answered on it."""
    from serial.tools import list_ports

    result = run("ports", "--json", "--timeout", "0.3")
    assert result.returncode == 0, result.stderr
    listed = [p["port"] for p in json.loads(result.stdout)]
    assert listed == sorted(p.device for p in list_ports.comports())
    table = run("ports", "--timeout", "0.3")
    assert table.returncode == 0 and ("serial ports" in table.stdout or "no serial ports found" in table.stdout)


def test_footprint_errors_are_sentences(tmp_path):
    """`footprint` names the known boards for an unknown one, refuses a board QEMU cannot run,
    and says which tools are missing when the cross tools are not on PATH."""
    assert "unknown board 'nope'; known boards: lm3s6965evb, mps2-an386, nucleo-f401re" in error_of(run("footprint", "--board", "nope"))
    bare = tmp_path / "boards" / "bare"
    bare.mkdir(parents=True)
    descriptor = (ROOT / "boards" / "lm3s6965evb" / "board.toml").read_text()
    (bare / "board.toml").write_text(descriptor.replace('"lm3s6965evb"', '"bare"').replace("qemu_machine", "# qemu_machine"))
    message = error_of(run("footprint", "--board", "bare", env=dict(os.environ, MANYFOLD_BOARDS=str(tmp_path / "boards"))))
    assert "QEMU cannot run board bare" in message, message
    env = dict(os.environ, PATH=str(tmp_path), MANYFOLD_RUSTC=str(tmp_path / "rustc"), MANYFOLD_CARGO=str(tmp_path / "cargo"))
    message = error_of(run("footprint", "--board", "lm3s6965evb", env=env))
    assert "needs" in message and "arm-none-eabi" in message and "apt-get install" in message
