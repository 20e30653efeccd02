#!/usr/bin/env python3
"""Run inside a fresh network namespace (``unshare -rn python netns_beacon.py MODE MANIFEST``):
brings loopback up with multicast and a route for 224.0.0.0/4, runs a scenario, prints one JSON
object on stdout. Nothing here reaches the host's network.

- ``listing``: two nodes with ``--beacon`` (one ``manyfold-node``, one ``manyfold node``) and no
  ``--peer``, on a test group; prints what ``manyfold nodes --beacon --json`` lists and each
  node's ``peers`` answer.
- ``off``: listens on the default group while a node without ``--beacon`` runs (counts the
  datagrams), then while a node with ``--beacon`` runs (the first datagram, parsed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from discoverykit import NodeProc, run_nodes_cli  # noqa: E402

from manyfold.discovery.beacon import BEACON_BYTES_MAX, Beacon, BeaconOptions, open_socket  # noqa: E402

GROUP = "239.255.109.103:7478"
LISTEN_S = 2.5


def setup() -> None:
    for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "lo", "multicast", "on"],
                ["ip", "route", "add", "224.0.0.0/4", "dev", "lo"]):  # fmt: skip
        subprocess.run(cmd, check=True)


def listing(manifest: Path) -> dict:
    flags = ("--beacon", "--beacon-group", GROUP, "--beacon-interface", "127.0.0.1")
    nodes = [NodeProc("manyfold-node", manifest, "ingest", 1, "ingest", *flags),
             NodeProc("manyfold node", manifest, "control", 2, "control", *flags)]  # fmt: skip
    try:
        out = run_nodes_cli("--beacon", "--beacon-group", GROUP, "--beacon-interface", "127.0.0.1", "--listen-s", str(LISTEN_S), "--json")
        # Bounded: the nodes hear each other's beacon within a few periods.
        deadline = time.monotonic() + 10
        peers = {n.name: n.peers() for n in nodes}
        while not all(peers.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
            peers = {n.name: n.peers() for n in nodes}
        return {"code": out.returncode, "stderr": out.stderr, "listing": json.loads(out.stdout or "null"), "peers": peers}
    finally:
        for n in nodes:
            n.stop()


def heard_within(sock, seconds: float) -> list[bytes]:
    got = []
    deadline = time.monotonic() + seconds
    # Bounded by the deadline.
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, _ = sock.recvfrom(BEACON_BYTES_MAX + 1)
        except TimeoutError:
            break
        got.append(data)
    return got


def off(manifest: Path) -> dict:
    with open_socket(BeaconOptions()) as sock:
        quiet = NodeProc("manyfold-node", manifest, "ingest", 1, "ingest", "--peer", "127.0.0.1:9")
        try:
            silent = heard_within(sock, LISTEN_S)
        finally:
            quiet.stop()
        loud = NodeProc("manyfold-node", manifest, "control", 2, "control", "--beacon")
        try:
            heard = heard_within(sock, LISTEN_S)
        finally:
            loud.stop()
    first = Beacon.parse(heard[0]) if heard else None
    return {
        "silent": len(silent), "heard": len(heard), "bytes": len(heard[0]) if heard else None,
        "beacon": None if first is None else {"node": first.node, "id": first.id, "admin": str(first.admin)},
        "loud_admin": loud.ready["admin"],
    }  # fmt: skip


def main() -> int:
    mode, manifest = sys.argv[1], Path(sys.argv[2])
    setup()
    result = listing(manifest) if mode == "listing" else off(manifest)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
