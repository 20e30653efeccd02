"""``manyfold demo``: the greenhouse (a local graph that explains itself, with its sensor board),
the greenhouse split across runtime nodes (``edge``), and the frame layer over a lossy link. Reports are as wide as the terminal
(``manyfold.cli.render``)."""

from __future__ import annotations

import argparse

from manyfold.cli import arguments
from manyfold.cli.errors import EXIT_FAILED, EXIT_OK, CliError


def cmd_demo(args: argparse.Namespace) -> int:
    from manyfold.cli.render import console as make_console

    console = make_console()
    if args.which == "fleet":
        return _fleet(args, console)
    if args.seed is None:
        args.seed = 7
    if args.which == "edge":
        return _edge(args, console)
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


def _edge(args: argparse.Namespace, console) -> int:
    import json

    from manyfold.cli.render import console as make_console
    from manyfold.cluster.up import Ready
    from manyfold.demos.edge import render_edge_report, run_edge_demo
    from manyfold.zenoh.options import ZenohMode

    progress_console = make_console(stderr=True)

    def progress(event) -> None:
        if isinstance(event, str):
            progress_console.print(event, markup=False)
        elif isinstance(event, Ready):
            progress_console.print(f"node {event.node.name} ready: pid {event.ready.pid}, admin {event.ready.admin}", markup=False)

    try:
        report = run_edge_demo(seed=args.seed, board=args.board, progress=progress, transport=args.transport,
                               zenoh_mode=ZenohMode(args.zenoh_mode))  # fmt: skip
    except OSError as error:  # QEMU or a socket; cluster and board errors are sentences already
        raise CliError(str(error)) from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        render_edge_report(report, console)
    return EXIT_OK if report.fan_command is not None and all(code == 0 for code in report.stopped.values()) else EXIT_FAILED


def _fleet(args: argparse.Namespace, console) -> int:
    import json

    from manyfold.cli.render import console as make_console
    from manyfold.demos.fleet import parse_faults, render_fleet_report, run_fleet_demo

    try:
        faults = parse_faults(args.faults)
    except ValueError as error:
        raise CliError(str(error)) from None
    progress_console = make_console(stderr=True)
    seed = 1 if args.seed is None else args.seed
    with progress_console.status(f"simulating {args.boards:,} boards") as status:

        def progress(sim_s: float, wall_s: float, events: int) -> None:
            status.update(f"simulating {args.boards:,} boards: {sim_s:g} of {args.seconds:g} s simulated in {wall_s:.1f} s "
                          f"({sim_s / max(wall_s, 1e-9):.1f}x real time), {events:,} events")  # fmt: skip

        try:
            report = run_fleet_demo(args.boards, args.seconds, seed=seed, step_ms=args.step_ms, faults=faults, progress=progress)
        except ValueError as error:
            raise CliError(str(error)) from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        render_fleet_report(report, console)
    return EXIT_OK


def register(subparsers) -> None:
    """Adds ``demo``."""
    demo = subparsers.add_parser("demo", help="run the demonstration and print its report")
    demo.add_argument(
        "which", nargs="?", choices=("greenhouse", "edge", "frames", "fleet"), default="greenhouse",
        help="greenhouse (default): a local graph that explains itself; edge: the greenhouse split across runtime nodes "
        "(three OS processes and a board); frames: the wire frame layer over a lossy link; fleet: the sensor board on "
        "a fleet of simulated boards feeding one host graph",
    )  # fmt: skip
    demo.add_argument("--messages", type=arguments.positive_int, default=200, help="frames demo: readings to send (default 200)")
    demo.add_argument("--seed", type=int, default=None, help="random seed of the scenario (default 7; fleet demo: 1)")
    demo.add_argument("--boards", type=arguments.positive_int, default=1000, help="fleet demo: simulated boards (default 1000)")
    demo.add_argument("--seconds", type=arguments.seconds, default=60.0, help="fleet demo: simulated seconds (default 60)")
    demo.add_argument("--step-ms", type=arguments.positive_int, default=100, help="fleet demo: lockstep step in milliseconds (default 100)")
    demo.add_argument(
        "--faults", default="",
        help="fleet demo: seeded per-board faults, e.g. drop=0.001,corrupt=0.0005,resets_per_hour=2,skew_ppm=50,seed=3 (default none)",
    )  # fmt: skip
    demo.add_argument(
        "--board", default="sim",
        help="greenhouse demo: where the sensor partition runs: sim (default, the host simulation) or an emulated board (manyfold boards)",
    )  # fmt: skip
    demo.add_argument("--json", action="store_true", help="edge and fleet demos: print the report as one JSON object")
    demo.add_argument("--transport", choices=("udp", "tcp", "zenoh"),
                      help="edge demo: run both node links on this transport (default: ab on udp, bh on tcp); zenoh starts a Zenoh "
                      "router (manyfold zenoh-router) on a free loopback port")
    demo.add_argument("--zenoh-mode", choices=("client", "peer"), default="client",
                      help="edge demo on zenoh: client (default): everything through the router; peer: the router is a rendezvous")  # fmt: skip
    demo.add_argument("--drop-rate", type=arguments.rate, default=0.002, help="frames demo: probability a byte is lost (default 0.002)")
    demo.add_argument("--flip-rate", type=arguments.rate, default=0.002, help="frames demo: probability a byte has a bit flipped (default 0.002)")
    demo.set_defaults(func=cmd_demo)


__all__ = ["cmd_demo", "register"]
