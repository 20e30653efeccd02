"""manyfold node as a process: the ready line, a clean stop on SIGTERM (the stopped line, exit
0), and start-up errors as one sentence with exit code 2."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import pytest
from clusterkit import node_env, split_graph, write_manifest


def node(manifest, *args: str) -> list[str]:
    return [sys.executable, "-m", "manyfold", "node", "--manifest", str(manifest), *args]


def test_ready_line_and_a_clean_stop_on_sigterm(tmp_path):
    _m, path = write_manifest(tmp_path, split_graph())
    process = subprocess.Popen(
        node(path, "--node", "h", "--node-id", "9", "--partition", "host", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=node_env(),
    )  # fmt: skip
    try:
        ready = json.loads(process.stdout.readline())
        assert ready["ready"] is True and ready["node"] == "h" and ready["pid"] == process.pid
        assert ready["listen"].startswith("127.0.0.1:") and ready["admin"].startswith("127.0.0.1:")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {"stopped": True, "node": "h"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--partition", "nope"), "node n: the manifest has no partition nope"),
        (("--partition", "sensor"), "node n: sensor is a device partition; host it with --device sensor=PORT"),
        (("--partition", "ingest", "--device", "host=sim:lm3s6965evb"), "--device host: not an embedded-lite partition of the manifest"),
        (("--partition", "ingest", "--key", "ab=missing.key"), "the key file missing.key of link ab does not exist"),
        (("--partition", "ingest", "--link", "ab=carrier://x:1"), "peer 'carrier://x:1' is not udp://HOST:PORT or tcp://HOST:PORT"),
        (("--partition", "ingest", "--link", "zz=udp://127.0.0.1:9"), 'link "zz" is not a link between a hosted partition and another'),
        (("--partition", "host"), "calls clusterkit.double, which cannot be imported"),
        (("--partition", "control", "--app", "nowhere:main"), "--app 'nowhere:main': cannot import nowhere"),
        ((), "a node hosts at least one partition"),
    ],
)
def test_start_errors_are_one_sentence_and_exit_2(tmp_path, args, message):
    _m, path = write_manifest(tmp_path, split_graph())
    done = subprocess.run(node(path, "--node", "n", "--node-id", "1", "--listen", "127.0.0.1:0", *args),
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_port_in_use_is_a_sentence(tmp_path):
    _m, path = write_manifest(tmp_path, split_graph())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(node(path, "--node", "n", "--node-id", "1", "--partition", "control", "--listen", f"127.0.0.1:{port}"),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr
