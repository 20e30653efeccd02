"""``manyfold demo fleet``: the greenhouse sensor partition on a fleet of simulated boards (1,000
by default) feeding one host graph.

Every board runs the same partition image with its own seed, session, link counters and taints,
in lockstep on one virtual clock (``manyfold.sim.fleet``); the host graph
(``manyfold.demos.fleet_system``) sees them as it would real boards behind UART links. Faults
(``--faults drop=0.001,corrupt=0.0005,resets_per_hour=2,skew_ppm=50,seed=3``) are seeded per
board, so a run is reproducible. The report gives simulated and wall time, events by route,
what was lost and where, the taints that appeared, resets and clock skew, and one sampled board.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from manyfold.demos import fleet_system as fs

FAULT_KEYS = {"drop": float, "corrupt": float, "resets_per_hour": float, "skew_ppm": int, "seed": int}
"""What ``--faults`` takes, and each value's type."""
PROGRESS_CHUNK_US = 1_000_000
"""The fleet runs one simulated second at a time between progress reports."""


def parse_faults(text: str) -> dict[str, float]:
    """``"drop=0.001,skew_ppm=50"`` -> ``{"drop": 0.001, "skew_ppm": 50}``; a clear error otherwise."""
    faults: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in FAULT_KEYS:
            raise ValueError(f"--faults takes {', '.join(f'{k}=N' for k in FAULT_KEYS)} separated by commas, not {item!r}")
        try:
            faults[key] = FAULT_KEYS[key](value.strip())
        except ValueError:
            raise ValueError(f"--faults {key} must be a{'n integer' if FAULT_KEYS[key] is int else ' number'}, not {value.strip()!r}") from None
        if key in ("drop", "corrupt") and not 0.0 <= faults[key] <= 1.0:
            raise ValueError(f"--faults {key} is a probability per byte, between 0 and 1, not {faults[key]}")
        if key == "resets_per_hour" and faults[key] < 0:
            raise ValueError(f"--faults resets_per_hour cannot be negative, got {faults[key]}")
    return faults


@dataclass
class SampledBoard:
    """One board of the fleet, in detail."""

    board: int
    session: int
    events: int
    events_tainted: int
    taints: list[str]
    resets: int
    skew_ppm: int
    frame_errors: int
    rx_gaps: int


@dataclass
class FleetDemoReport:
    """What ``manyfold demo fleet`` observed (also its ``--json`` output)."""

    boards: int
    seed: int
    step_ms: int
    faults: dict[str, float]
    sim_s: float
    wall_s: float
    setup_s: float
    events: int
    events_by_route: dict[str, int]
    """Host route -> envelopes it received (the uplinks, then the fleet-wide windows)."""
    fleet_means: dict[str, float | None]
    """Fleet-wide window -> its last mean over every board."""
    drops: dict[str, int]
    """Where events and bytes were lost: injected by the faults, refused frames, gaps, lost sends."""
    taints_by_boards: dict[str, int]
    """Taint -> how many boards sent events carrying it."""
    events_tainted: int
    route_taints: dict[str, list[str]]
    """Host route -> the taints it carries (the link's declared ones and what the boards sent)."""
    resets: int
    boards_reset: int
    skew_ppm: tuple[int, int]
    """The smallest and largest clock skew of a board, in parts per million."""
    sample: SampledBoard | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def x_real_time(self) -> float:
        return self.sim_s / self.wall_s if self.wall_s > 0 else float("inf")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["x_real_time"] = round(self.x_real_time, 2)
        out["skew_ppm"] = list(self.skew_ppm)
        return out


def run_fleet_demo(
    boards: int = 1000,
    seconds: float = 60.0,
    *,
    seed: int = 1,
    step_ms: int = 100,
    faults: dict[str, float] | None = None,
    progress: Callable[[float, float, int], None] | None = None,
) -> FleetDemoReport:
    """Run the fleet and gather its report. ``progress(sim_s, wall_s, events)`` is called after
    every simulated second."""
    from manyfold import query, sim

    if boards < 1:
        raise ValueError(f"a fleet has at least one board, not {boards}")
    if step_ms < 1:
        raise ValueError(f"--step-ms must be at least 1, not {step_ms}")
    step_us = step_ms * 1000
    faults = dict(faults or {})
    t_setup = time.perf_counter()
    m = fs.fleet_manifest(step_us)
    graph = fs.host_graph(m)
    counters = {str(r): graph.count(r) for r in fs.uplink_routes(m)}
    fleet_faults = sim.FleetFaults(**faults) if faults else None
    fleet = sim.fleet(m, boards, seeds=seed, partition=fs.DEVICE, graph=graph, faults=fleet_faults, step_us=step_us)
    setup_s = time.perf_counter() - t_setup

    end_us = int(seconds * 1_000_000)
    wall_s = 0.0
    while fleet.now_us < end_us:
        t0 = time.perf_counter()
        fleet.run_to(min(fleet.now_us + PROGRESS_CHUNK_US, end_us))
        wall_s += time.perf_counter() - t0
        if progress is not None:
            progress(fleet.now_us / 1e6, wall_s, sum(c.value for c in counters.values()))

    topo = {str(r.route): r.envelopes for r in query.topology(graph).routes}
    events_by_route = {name: topo[name] for name in counters}
    means = fs.fleet_mean_routes(m)
    events_by_route.update({str(r): topo[str(r)] for r in means.values()})
    fleet_means = {name: (float(e.value) if (e := graph.latest(r)) is not None else None) for name, r in means.items()}
    route_taints = {str(rt.route): sorted(t.value for t in rt.taints) for rt in query.taints(graph) if str(rt.route) in events_by_route}

    totals = fleet.report()
    reports = list(fleet.boards)
    drops = {
        "bytes_dropped_injected": totals.bytes_dropped,
        "bytes_corrupted_injected": totals.bytes_corrupted,
        "frame_errors": totals.frame_errors,
        "rx_gaps": totals.rx_gaps,
        "events_overflowed": sum(b.host.events_overflowed for b in reports),
        "tx_lost": sum(b.tx_lost for b in reports),
        "steps_failed": totals.steps_failed,
        "events_refused_by_graph": totals.events_refused,
    }
    notes = [f"the host graph refused events: {totals.publish_error}"] if totals.publish_error else []
    k = seed % boards
    s = reports[k]
    sample = SampledBoard(k, s.session, s.events, s.events_tainted, list(s.taints), s.resets, s.skew_ppm, s.host.frame_errors, s.host.rx_gaps)
    return FleetDemoReport(
        boards=boards, seed=seed, step_ms=step_ms, faults=faults, sim_s=fleet.now_us / 1e6, wall_s=wall_s, setup_s=setup_s,
        events=totals.events, events_by_route=events_by_route, fleet_means=fleet_means, drops=drops,
        taints_by_boards=dict(sorted(totals.taints.items())), events_tainted=totals.events_tainted, route_taints=route_taints,
        resets=totals.resets, boards_reset=sum(1 for b in reports if b.resets),
        skew_ppm=(min(b.skew_ppm for b in reports), max(b.skew_ppm for b in reports)), sample=sample, notes=notes,
    )  # fmt: skip


def render_fleet_report(report: FleetDemoReport, console) -> None:
    """Print the report with rich."""
    from rich.table import Table

    console.rule(f"[bold]A fleet of {report.boards:,} simulated greenhouse boards feeding one host graph")
    faults = ", ".join(f"{k}={v}" for k, v in report.faults.items()) or "none"
    console.print(
        f"Simulated [bold]{report.sim_s:g} s[/] in [bold]{report.wall_s:.2f} s[/] of wall time: "
        f"[bold green]{report.x_real_time:.1f}x real time[/] ({report.boards * report.x_real_time:,.0f} board-seconds per second; "
        f"steps of {report.step_ms} ms, seed {report.seed}, setup {report.setup_s:.2f} s). Faults: {faults}."
    )
    console.print(f"The boards sent [bold]{report.events:,}[/] events to the host ({report.events / max(report.wall_s, 1e-9):,.0f} per wall second).")

    routes = Table(title="Events by host route")
    routes.add_column("route")
    routes.add_column("events", justify="right")
    routes.add_column("taints")
    for name, count in report.events_by_route.items():
        routes.add_row(name, f"{count:,}", ", ".join(report.route_taints.get(name, [])))
    console.print(routes)
    for name, mean in report.fleet_means.items():
        console.print(f"Fleet-wide {name} (last 5 s window over every board): {'-' if mean is None else f'{mean:.2f} degC'}")

    drops = Table(title="What was lost, and where", show_header=False)
    drops.add_column("what")
    drops.add_column("count", justify="right")
    for what, count in report.drops.items():
        drops.add_row(what.replace("_", " "), f"{count:,}")
    console.print(drops)

    taints = Table(title="Taints the boards' events carried")
    taints.add_column("taint")
    taints.add_column("boards", justify="right")
    for name, count in sorted(report.taints_by_boards.items()):
        taints.add_row(name, f"{count:,}")
    console.print(taints)
    console.print(f"{report.events_tainted:,} events carried a taint. Resets: {report.resets} on {report.boards_reset} boards. "
                  f"Clock skew: {report.skew_ppm[0]} to {report.skew_ppm[1]} ppm.")  # fmt: skip
    for note in report.notes:
        console.print(f"[yellow]{note}[/]")
    if report.sample is not None:
        s = report.sample
        console.print(
            f"Board {s.board} (session {s.session}): {s.events:,} events, {s.events_tainted:,} tainted "
            f"({', '.join(s.taints) or 'none'}), {s.resets} resets, skew {s.skew_ppm} ppm, "
            f"{s.frame_errors} refused frames, {s.rx_gaps} gaps."
        )


__all__ = ["FAULT_KEYS", "FleetDemoReport", "SampledBoard", "parse_faults", "render_fleet_report", "run_fleet_demo"]
