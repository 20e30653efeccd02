"""The monitor's loop: poll every ``interval_s``, hand each snapshot to the views (JSON lines,
the terminal's live view, the web server's streams), and stop after ``count`` polls, after
``duration_s``, or at Ctrl-C (a clean stop, exit code 0)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from manyfold.cluster.address import Address
from manyfold.federation import Target
from manyfold.monitor.model import ClusterSnapshot
from manyfold.monitor.poll import LEASE_S, Poller


@dataclass(frozen=True)
class MonitorOptions:
    targets: tuple[Target, ...]
    manifest: object | None = None
    """The cluster's Manifest (drawn on the web page), or None."""
    interval_s: float = 1.0
    lease_s: float = LEASE_S
    principal: str = "operator"
    json: bool = False
    http: Address | None = None
    http_public: bool = False
    count: int | None = None
    duration_s: float | None = None
    clients_max: int = 8


def json_line(snap: ClusterSnapshot) -> str:
    """One snapshot as one line of ``manyfold monitor --json``."""
    return json.dumps(snap.to_dict(), separators=(",", ":"))


def _ticks(options: MonitorOptions, poller: Poller, sink: Callable[[ClusterSnapshot], None]) -> None:
    started = time.monotonic()
    end = None if options.duration_s is None else started + options.duration_s
    polls = 0
    while True:
        tick = time.monotonic()
        sink(poller.poll())
        polls += 1
        if options.count is not None and polls >= options.count:
            return
        wake = tick + options.interval_s
        if end is not None and wake >= end:
            time.sleep(max(0.0, end - time.monotonic()))
            return
        time.sleep(max(0.0, wake - time.monotonic()))


def run(options: MonitorOptions, out: TextIO | None = None, console=None) -> int:
    """Runs the monitor until it is told to stop; returns the exit code (0)."""
    from manyfold.monitor import web

    out = out or sys.stdout
    poller = Poller(options.targets, principal=options.principal, interval_s=options.interval_s, lease_s=options.lease_s)
    server = None
    hub = web.Hub(clients_max=options.clients_max)
    if options.http is not None:
        web.check_bind(options.http, options.http_public)
        svg, note = web.manifest_svg(options.manifest)
        server = web.MonitorServer(options.http, hub, svg, note)
        server.start()
        print(json.dumps({"http": server.url}) if options.json else f"monitor page: {server.url}", file=out, flush=True)
    try:
        if options.json:
            def sink(snap: ClusterSnapshot) -> None:
                hub.publish(snap)
                print(json_line(snap), file=out, flush=True)

            _ticks(options, poller, sink)
        else:
            from rich.live import Live

            from manyfold.monitor.terminal import TerminalView

            view = TerminalView()
            with Live(console=console, auto_refresh=False, transient=False) as live:
                def show(snap: ClusterSnapshot) -> None:
                    hub.publish(snap)
                    live.update(view.render(snap), refresh=True)

                _ticks(options, poller, show)
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.stop()
    return 0


__all__ = ["MonitorOptions", "json_line", "run"]
