"""The ``manyfold`` command.

Each subcommand is a small function taking parsed arguments and returning an exit code. Errors
the user can fix are printed as one clear sentence with exit code 2; they never surface as a
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


class CliError(Exception):
    """A problem with the user's input, reported without a traceback."""


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console()
    if args.which == "frames":
        from manyfold.demos.frames import render_frame_demo, run_frame_demo

        result = run_frame_demo(messages=args.messages, seed=args.seed, drop_rate=args.drop_rate, flip_rate=args.flip_rate)
        render_frame_demo(result, console)
        return 0 if result.corrupted_but_accepted == 0 else 1
    from manyfold.examples import greenhouse

    if console.width < 140:  # the tables carry full route names
        console = Console(width=140)
    greenhouse.report(greenhouse.run(greenhouse.build(seed=args.seed)), console)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from manyfold import __version__

    parser = argparse.ArgumentParser(prog="manyfold", description="Graph-shaped embedded and edge systems.")
    parser.add_argument("--version", action="version", version=f"manyfold {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="run the demonstration and print its report")
    demo.add_argument(
        "which", nargs="?", choices=("greenhouse", "frames"), default="greenhouse",
        help="greenhouse (default): a local graph that explains itself; frames: the wire frame layer over a lossy link",
    )
    demo.add_argument("--messages", type=_positive_int, default=200, help="frames demo: readings to send (default 200)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the scenario (default 7)")
    demo.add_argument("--drop-rate", type=_rate, default=0.002, help="frames demo: probability a byte is lost (default 0.002)")
    demo.add_argument("--flip-rate", type=_rate, default=0.002, help="frames demo: probability a byte has a bit flipped (default 0.002)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as error:
        print(f"manyfold {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
