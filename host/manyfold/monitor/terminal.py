"""The terminal view: a rich renderable of one snapshot (nodes, links, taints, recent events),
redrawn in place by ``rich.live.Live`` (as ``yakut monitor`` does)."""

from __future__ import annotations

from collections import deque

from rich.console import Group
from rich.table import Table
from rich.text import Text

from manyfold.monitor.model import ClusterSnapshot, MonitorEvent, NodeState

STATE_STYLES = {NodeState.ONLINE: "green", NodeState.STALE: "yellow", NodeState.GONE: "red"}
FEED_LINES = 12
"""Events the feed under the tables keeps (the oldest drop off)."""


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


class TerminalView:
    """Keeps the last events (bounded) and renders each snapshot."""

    def __init__(self, feed_lines: int = FEED_LINES) -> None:
        self.feed: deque[MonitorEvent] = deque(maxlen=feed_lines)

    def render(self, snap: ClusterSnapshot) -> Group:
        self.feed.extend(snap.events)
        return Group(self.title(snap), self.nodes(snap), self.links(snap), self.taints(snap), self.events())

    @staticmethod
    def title(snap: ClusterSnapshot) -> Text:
        counts = {s: sum(1 for n in snap.nodes if n.state is s) for s in NodeState}
        text = Text(f"manyfold monitor  poll {snap.seq}  every {snap.interval_s:g} s  lease {snap.lease_s:g} s  ", style="bold")
        for state, count in counts.items():
            text.append(f"{state.value} {count}  ", style=STATE_STYLES[state])
        return text

    @staticmethod
    def nodes(snap: ClusterSnapshot) -> Table:
        t = Table(title="nodes", title_justify="left", expand=False)
        for col in ("node", "state", "last answer", "admin", "incarnation", "partitions", "devices"):
            t.add_column(col)
        for n in snap.nodes:
            age = "never" if n.age_s is None else f"{n.age_s:.1f} s ago"
            devices = ", ".join(f"{d.partition} ({d.state})" for d in n.devices) or "-"
            t.add_row(n.name, Text(n.state.value, style=STATE_STYLES[n.state]), age, n.admin,
                      "-" if n.incarnation is None else str(n.incarnation), ", ".join(n.partitions) or "-", devices)  # fmt: skip
        return t

    @staticmethod
    def links(snap: ClusterSnapshot) -> Table:
        t = Table(title="links", title_justify="left")
        for col in ("node", "link", "peer", "state", "tx/s", "rx/s", "drops", "queued", "unacked", "requested", "provided"):
            t.add_column(col, justify="right" if col in ("tx/s", "rx/s", "drops", "queued", "unacked") else "left")
        for k in snap.links:
            style = "" if k.fresh else "dim"
            state = Text(k.state, style="green" if k.state == "up" else "red") if k.fresh else Text(f"{k.state}?", style="dim")
            provided = Text(", ".join(k.provided) or "-", style="red" if k.missing else "")
            t.add_row(k.node, k.name, k.peer or "-", state, _rate(k.tx_per_s), _rate(k.rx_per_s),
                      Text(str(k.dropped), style="red" if k.dropped else ""), str(k.queued), str(k.unacked),
                      ", ".join(k.requested) or "-", provided, style=style)  # fmt: skip
        return t

    @staticmethod
    def taints(snap: ClusterSnapshot) -> Table | Text:
        unknown = [n.name for n in snap.nodes if n.state is NodeState.ONLINE and not n.taints_known]
        t = Table(title="taints", title_justify="left", caption=f"taints unknown at: {', '.join(unknown)}" if unknown else None)
        for col in ("node", "route", "taints", "added by", "repaired"):
            t.add_column(col)
        for rt in snap.taints:
            added = ", ".join(sorted({f"{a.kind} {a.name}" for a in rt.added})) or "-"
            t.add_row(rt.node, rt.route, Text(", ".join(rt.taints) or "-", style="magenta"), added, ", ".join(rt.repaired) or "-")
        return t

    def events(self) -> Table:
        t = Table(title="events", title_justify="left", show_header=False, box=None)
        t.add_column("time")
        t.add_column("event")
        import time

        for e in self.feed:
            style = {"gone": "red", "stale": "yellow", "online": "green", "appeared": "magenta"}.get(e.kind, "")
            t.add_row(time.strftime("%H:%M:%S", time.localtime(e.time_s)), Text(e.text, style=style))
        return t


__all__ = ["FEED_LINES", "TerminalView"]
