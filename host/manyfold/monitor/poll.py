"""One poll: ask every node ``status`` and the ``taints`` query at once (``fan_out``, each
within ``timeout_s``), and turn the replies and what the previous polls saw into the next
:class:`ClusterSnapshot`.

What the poller remembers between polls (bounded by the number of nodes, links and tainted
routes): each node's last answer and when it came, each link's last counters (for rates), the
taints already seen (so that only new ones are events). Taints are listed for the nodes that
answered the taints query at this poll only; a node that refuses it, or does not know it, has
``taints_known = False``, which is not an error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from manyfold.cluster.admin import AdminError, NodeStatus, parse_status
from manyfold.federation import NodeReply, Target, fan_out
from manyfold.federation.answers import parse_answer
from manyfold.query.from_dict import AnswerShapeError
from manyfold.monitor.model import (
    ClusterSnapshot, DeviceView, LinkView, MonitorEvent, NodeState, NodeView, RouteTaintsView, TaintOriginView,
)  # fmt: skip

LEASE_S = 10.0
"""A node that has not answered for this long is ``gone`` (the nodes' default link lease)."""


@dataclass
class _Seen:
    """What the poller keeps of one node's last answer."""

    at_s: float
    status: NodeStatus
    devices: tuple[DeviceView, ...]


def _devices(status: NodeStatus, target: Target) -> tuple[DeviceView, ...]:
    """The devices the node's status lists, or (a node whose status does not say) the ones the
    plan puts behind it, state unknown."""
    if status.devices is None:
        return target_devices(target)
    return tuple(DeviceView(d.partition, d.port, d.where, d.state) for d in status.devices)


def _route_taints(node: str, target: Target, reply: dict | None) -> tuple[RouteTaintsView, ...] | None:
    """The taints in a ``taints`` query reply (read as the query plane's typed ``RouteTaints``),
    or None when the node refused it or sent something else (taints unknown)."""
    if reply is None or "refused" in reply or "answer" not in reply:
        return None
    try:
        answer = parse_answer("taints", reply["answer"], f"admin {target.admin}")
    except AnswerShapeError:
        return None
    return tuple(
        RouteTaintsView(
            node, str(rt.route), tuple(sorted(t.value for t in rt.taints)), tuple(o.taint.value for o in rt.repaired),
            tuple(TaintOriginView(o.taint.value, o.kind, o.name) for o in rt.added),
        )  # fmt: skip
        for rt in answer
    )


class Poller:
    """Polls ``targets`` (every call of :meth:`poll` is one poll) and keeps what the snapshots
    need between polls. ``clock``: monotonic seconds; ``wall``: Unix seconds (both injectable)."""

    def __init__(
        self, targets: tuple[Target, ...], *, principal: str = "operator", interval_s: float = 1.0,
        lease_s: float = LEASE_S, timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.targets = targets
        self.principal = principal
        self.interval_s = interval_s
        self.lease_s = lease_s
        self.timeout_s = timeout_s if timeout_s is not None else max(0.2, min(interval_s, 2.0))
        self.clock, self.wall = clock, wall
        self.started_s = clock()
        self.seq = 0
        self._seen: dict[str, _Seen] = {}
        self._states: dict[str, NodeState] = {}
        self._link_states: dict[tuple[str, str], str] = {}
        self._counters: dict[tuple[str, str], tuple[float, int, int, int]] = {}
        self._rates: dict[tuple[str, str], tuple[float | None, float | None]] = {}
        self._taints_seen: set[tuple[str, str, str]] = set()
        self._repairs_seen: set[tuple[str, str, str]] = set()

    def ask(self) -> tuple[tuple[NodeReply, ...], tuple[NodeReply, ...]]:
        """Both questions to every node at once: (status replies, taints replies)."""
        taints_q = {"q": "query", "kind": "taints", "principal": self.principal}
        taints: list[tuple[NodeReply, ...]] = []
        # A daemon thread (as fan_out's askers): Ctrl-C during a poll does not wait for a silent node.
        other = threading.Thread(target=lambda: taints.append(fan_out(self.targets, taints_q, timeout_s=self.timeout_s)),
                                 name="monitor-poll", daemon=True)  # fmt: skip
        other.start()
        status = fan_out(self.targets, {"q": "status"}, timeout_s=self.timeout_s)
        other.join()  # bounded: fan_out returns by its deadline
        return status, taints[0]

    def poll(self) -> ClusterSnapshot:
        """Ask every node and return the next snapshot."""
        status, taints = self.ask()
        return self.update(status, taints)

    def update(self, status: tuple[NodeReply, ...], taints: tuple[NodeReply, ...]) -> ClusterSnapshot:
        """The next snapshot from one poll's replies (one per target, in the targets' order)."""
        now, wall = self.clock(), self.wall()
        self.seq += 1
        events: list[MonitorEvent] = []
        nodes, links, route_taints = [], [], []
        for target, reply, taint_reply in zip(self.targets, status, taints):
            name = target.name
            error = reply.error
            answered = False
            if reply.answer is not None:
                try:
                    parsed = parse_status(reply.answer, f"admin {target.admin}")
                    answered = True
                except AdminError as bad:
                    error = str(bad)
            previous = self._seen.get(name)
            if answered:
                if previous is not None and previous.status.incarnation != parsed.incarnation:
                    events.append(MonitorEvent(wall, "restarted", name, f"node {name} restarted (incarnation {parsed.incarnation})"))
                    for key in [k for k in self._counters if k[0] == name]:
                        del self._counters[key]
                seen = _Seen(now, parsed, _devices(parsed, target))
                self._seen[name] = seen
            else:
                seen = previous
            state = self._state(name, answered, seen, now)
            if self._states.get(name) != state:
                if name in self._states or state is not NodeState.ONLINE:
                    why = f": {error}" if error and state is not NodeState.ONLINE else ""
                    events.append(MonitorEvent(wall, state.value, name, f"node {name} {state.value}{why}"))
                self._states[name] = state
            found = _route_taints(name, target, taint_reply.answer) if answered else None
            if found is not None:
                events.extend(self._new_taints(wall, found))
                route_taints.extend(found)
            nodes.append(NodeView(
                name, str(target.admin), state, None if seen is None else round(now - seen.at_s, 3),
                None if seen is None else seen.status.incarnation, None if seen is None else seen.status.pid,
                seen.status.partitions if seen else (), seen.devices if seen else target_devices(target),
                found is not None, None if answered else error,
            ))  # fmt: skip
            if seen is not None:
                links.extend(self._links(name, seen, now, answered, events, wall))
        return ClusterSnapshot(
            self.seq, wall, self.interval_s, self.lease_s, tuple(nodes), tuple(links), tuple(route_taints), tuple(events)
        )

    def _state(self, name: str, answered: bool, seen: _Seen | None, now: float) -> NodeState:
        """Online when it answered; else stale until a lease after its last answer (or after
        the monitor's start, for a node never heard from), then gone."""
        if answered:
            return NodeState.ONLINE
        since = seen.at_s if seen is not None else self.started_s
        return NodeState.STALE if now - since < self.lease_s else NodeState.GONE

    def _links(self, node: str, seen: _Seen, now: float, fresh: bool, events: list, wall: float) -> list[LinkView]:
        out = []
        incarnation = seen.status.incarnation
        for link in seen.status.links:
            key = (node, link.name)
            tx, rx = link.events_tx, link.events_rx
            if fresh:
                last = self._counters.get(key)
                rates: tuple[float | None, float | None] = (None, None)
                if last is not None and last[3] == incarnation and now > last[0] and tx >= last[1] and rx >= last[2]:
                    dt = now - last[0]
                    rates = ((tx - last[1]) / dt, (rx - last[2]) / dt)
                self._counters[key] = (now, tx, rx, incarnation)
                self._rates[key] = rates
                if self._link_states.get(key) not in (None, link.state):
                    reason = f" ({link.down_reason})" if link.down_reason else ""
                    events.append(MonitorEvent(wall, "link", node, f"link {link.name} at {node}: {link.state}{reason}"))
                self._link_states[key] = link.state
            rates = self._rates.get(key, (None, None)) if fresh else (None, None)
            out.append(LinkView(
                node, link.name, link.peer, link.transport, link.state, tx, rx, rates[0], rates[1],
                link.dropped, link.queued, link.unacked, link.requested, link.provided, link.missing, fresh,
            ))  # fmt: skip
        return out

    def _new_taints(self, wall: float, found: tuple[RouteTaintsView, ...]) -> list[MonitorEvent]:
        """One event per route and node for the taints seen there for the first time, and one
        for the repairs."""
        events = []
        for rt in found:
            for names, seen, kind in ((rt.taints, self._taints_seen, "appeared"), (rt.repaired, self._repairs_seen, "repaired")):
                new = tuple(t for t in names if (rt.node, rt.route, t) not in seen)
                if new:
                    seen.update((rt.node, rt.route, t) for t in new)
                    what = "taint" if len(new) == 1 else "taints"
                    text = f"{what} {', '.join(new)} {kind} on {rt.route} at {rt.node}"
                    events.append(MonitorEvent(wall, kind, rt.node, text, rt.route, new))
        return events


def target_devices(target: Target) -> tuple[DeviceView, ...]:
    """The devices a plan puts behind a node that never answered (state unknown)."""
    return tuple(DeviceView(p, "", "", "unknown") for p in target.devices)


__all__ = ["LEASE_S", "Poller", "target_devices"]
