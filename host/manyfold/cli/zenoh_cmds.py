"""``manyfold zenoh-router [--listen ENDPOINT]``: a Zenoh router in this process (the Rust
runtime's Zenoh, ``manyfold.zenoh.router``), for nodes whose links run on zenoh. It prints one
JSON ready line ``{"ready": true, "listen": [...], "pid": N}`` and runs until SIGTERM, SIGINT
(Ctrl-C), or its stdin closes when stdin is a pipe."""

from __future__ import annotations

import argparse
import signal
import threading

from manyfold.cli.errors import EXIT_OK


def cmd_zenoh_router(args: argparse.Namespace) -> int:
    from manyfold.zenoh.router import DEFAULT_LISTEN, serve

    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        serve(tuple(args.listen or [DEFAULT_LISTEN]), stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return EXIT_OK


def register(subparsers) -> None:
    """Adds ``zenoh-router``."""
    router = subparsers.add_parser(
        "zenoh-router", help="run a Zenoh router for nodes whose links run on zenoh",
        description="A Zenoh router (TCP) in this process, built into manyfold's runtime: nodes started with "
        "--zenoh-connect ENDPOINT meet here. Prints one JSON ready line; runs until SIGTERM, Ctrl-C, or its stdin "
        "closes when stdin is a pipe.",
    )  # fmt: skip
    router.add_argument("--listen", action="append", metavar="ENDPOINT", help="where to listen (repeatable; default tcp/127.0.0.1:7447)")
    router.set_defaults(func=cmd_zenoh_router)


__all__ = ["cmd_zenoh_router", "register"]
