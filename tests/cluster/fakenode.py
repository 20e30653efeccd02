#!/usr/bin/env python3
"""A stand-in runtime node for the process tests of ``manyfold up``: it takes the contract's
flags, serves ``status`` and ``stop`` on its admin endpoint, prints the ready and stopped lines,
and stops on SIGTERM. The environment steers it: ``FAKENODE_FAIL=NAME`` makes node NAME exit 3
with a sentence on stderr at start, ``FAKENODE_STUBBORN=NAME`` makes it ignore SIGTERM,
``FAKENODE_CRASH=NAME`` makes it exit 9 a moment after it is ready."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    for flag in ("--manifest", "--node", "--node-id", "--listen", "--admin"):
        parser.add_argument(flag, required=True)
    for flag in ("--partition", "--link", "--key", "--device", "--fault", "--peer", "--store"):
        parser.add_argument(flag, action="append", default=[])
    args = parser.parse_args()
    if os.environ.get("FAKENODE_FAIL") == args.node:
        print(f"manyfold-node: node {args.node}: cannot bind {args.listen}: address in use", file=sys.stderr)
        return 3
    host, _, port = args.admin.rpartition(":")
    admin = socket.create_server((host, int(port)))
    stop = threading.Event()
    if os.environ.get("FAKENODE_STUBBORN") == args.node:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    status = {"node": args.node, "id": int(args.node_id), "incarnation": 1, "pid": os.getpid(), "partitions": args.partition,
              "links": [{"name": link.split("=")[0], "peer": link.split("=")[1], "transport": link.split("://")[0].split("=")[1],
                         "state": "up", "requested": ["ordered"], "provided": ["ordered"], "missing": [], "events_tx": 0,
                         "events_rx": 0, "dropped": 0, "retransmits": 0, "duplicates": 0, "gaps": 0, "refused": {}, "refusal": None}
                        for link in args.link]}

    def serve() -> None:
        while not stop.is_set():
            conn, _ = admin.accept()
            with conn, conn.makefile("rwb") as f:
                for line in f:
                    q = json.loads(line).get("q")
                    answer = status if q == "status" else {"ok": True} if q == "stop" else {"error": f"unknown question {q!r}"}
                    f.write(json.dumps(answer).encode() + b"\n")
                    f.flush()
                    if q == "stop":
                        stop.set()

    threading.Thread(target=serve, daemon=True).start()
    print(json.dumps({"ready": True, "node": args.node, "pid": os.getpid(), "listen": args.listen, "admin": args.admin}), flush=True)
    if os.environ.get("FAKENODE_CRASH") == args.node:
        time.sleep(0.3)
        print("node crashed on purpose", file=sys.stderr, flush=True)
        return 9
    while not stop.wait(0.05):
        pass
    print(json.dumps({"stopped": True, "node": args.node}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
