"""``manyfold demo``: the greenhouse (a local graph that explains itself, with its sensor board)
and the frame layer over a lossy link. Reports are as wide as the terminal
(``manyfold.cli.render``)."""

from __future__ import annotations

import argparse

from manyfold.cli import arguments
from manyfold.cli.errors import EXIT_FAILED, EXIT_OK, CliError


def cmd_demo(args: argparse.Namespace) -> int:
    from manyfold.cli.render import console as make_console

    console = make_console()
    if args.which == "frames":
        from manyfold.demos.frames import render_frame_demo, run_frame_demo

        result = run_frame_demo(messages=args.messages, seed=args.seed, drop_rate=args.drop_rate, flip_rate=args.flip_rate)
        render_frame_demo(result, console)
        return EXIT_OK if result.corrupted_but_accepted == 0 else EXIT_FAILED
    from manyfold.examples import greenhouse

    try:
        with console.status(f"starting the sensor board ({args.board})"):
            gh, bridge, stop = greenhouse.with_board(args.seed, board=args.board)
    except OSError as error:  # QEMU or its socket; board and graph errors are sentences already
        raise CliError(str(error)) from None
    try:
        with console.status("running six minutes of greenhouse life"):
            greenhouse.run(gh, bridge=bridge)
        greenhouse.report(gh, console, bridge=bridge)
    finally:
        stop()
    return EXIT_OK


def register(subparsers) -> None:
    """Adds ``demo``."""
    demo = subparsers.add_parser("demo", help="run the demonstration and print its report")
    demo.add_argument(
        "which", nargs="?", choices=("greenhouse", "frames"), default="greenhouse",
        help="greenhouse (default): a local graph that explains itself; frames: the wire frame layer over a lossy link",
    )  # fmt: skip
    demo.add_argument("--messages", type=arguments.positive_int, default=200, help="frames demo: readings to send (default 200)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the scenario (default 7)")
    demo.add_argument(
        "--board", default="sim",
        help="greenhouse demo: where the sensor partition runs: sim (default, the host simulation) or an emulated board (manyfold boards)",
    )  # fmt: skip
    demo.add_argument("--drop-rate", type=arguments.rate, default=0.002, help="frames demo: probability a byte is lost (default 0.002)")
    demo.add_argument("--flip-rate", type=arguments.rate, default=0.002, help="frames demo: probability a byte has a bit flipped (default 0.002)")
    demo.set_defaults(func=cmd_demo)


__all__ = ["cmd_demo", "register"]
