"""The ``manyfold`` command's parser and entry point.

Each command group registers its subcommands (``register(subparsers)``); each subcommand is a
function taking the parsed arguments and returning an exit code. :func:`main` runs one through
``manyfold.cli.errors``, which turns what it raises into one sentence and an exit code.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from manyfold.cli import board_cmds, cluster_cmds, demo_cmds, device_cmds, errors, manifest_cmds, monitor_cmds, nodes_cmds
from manyfold.cli import catalog_cmds, zenoh_cmds

GROUPS = (demo_cmds, manifest_cmds, cluster_cmds, nodes_cmds, board_cmds, device_cmds, monitor_cmds)
GROUPS += (catalog_cmds, zenoh_cmds)
"""The command groups, in the order ``manyfold --help`` lists their commands."""


def build_parser() -> argparse.ArgumentParser:
    from manyfold import __version__

    parser = argparse.ArgumentParser(prog="manyfold", description="Graph-shaped embedded and edge systems.")
    parser.add_argument("--version", action="version", version=f"manyfold {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``manyfold ARGV...`` (``sys.argv`` by default); returns the exit code."""
    args = build_parser().parse_args(argv)
    return errors.run(args.command, lambda: args.func(args))
