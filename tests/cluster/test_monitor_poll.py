"""The monitor's poller on replies given to it, with a clock the test sets: node states at the
lease's edges, rates from counter deltas, a restart, taints appearing once (the same logic
against real nodes: test_monitor.py)."""

from __future__ import annotations

from manyfold.cluster.address import Address
from manyfold.federation import NodeReply, Target
from manyfold.monitor import Poller
from manyfold.monitor.model import NodeState

A = Target("a", Address.parse("127.0.0.1:1", "test"), ("dev",))


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def status(incarnation: int = 1, tx: int = 0, state: str = "up", **extra) -> NodeReply:
    link = {"name": "ab", "peer": "b", "transport": "udp", "state": state, "events_tx": tx, "events_rx": 0,
            "dropped": 2, "queued": 3, "unacked": 4, "requested": ["ordered"], "provided": [], "missing": ["ordered"]}  # fmt: skip
    answer = {"node": "a", "id": 1, "incarnation": incarnation, "pid": 7, "partitions": ["p"], "links": [link], **extra}
    return NodeReply(A, answer, None, 1.0)


def silent() -> NodeReply:
    return NodeReply(A, None, "admin 127.0.0.1:1: Connection refused", 1.0)


ROUTE = "read.logical.probe.env.avg.meta.v1"


def taints(*names: str) -> NodeReply:
    answer = {"node": "a", "kind": "taints", "answer": [{"route": ROUTE, "taints": list(names), "added": [{"taint": n, "kind": "link", "name": "ab_in"} for n in names], "repaired": []}]}
    return NodeReply(A, answer, None, 1.0)


REFUSED = NodeReply(A, {"node": "a", "kind": "taints", "refused": "principal x may not ask"}, None, 1.0)


def test_states_follow_the_lease_and_rates_the_counters():
    """Online when it answers; stale while the last answer is less than the lease old; gone at
    the lease; rates are counter deltas over the clock's seconds, reset by a new incarnation."""
    clock = Clock()
    poller = Poller((A,), lease_s=10.0, clock=clock, wall=lambda: 0.0)
    first = poller.update((status(tx=10),), (REFUSED,))
    assert first.node("a").state is NodeState.ONLINE and first.links[0].tx_per_s is None and not first.node("a").taints_known
    assert [d.partition for d in first.node("a").devices] == ["dev"]  # no devices in status: the plan's
    clock.now_s += 2.0
    second = poller.update((status(tx=30),), (REFUSED,))
    k = second.links[0]
    assert (k.tx_per_s, k.dropped, k.queued, k.unacked, k.missing) == (10.0, 2, 3, 4, ("ordered",))
    clock.now_s += 9.999
    stale = poller.update((silent(),), (silent(),))
    assert stale.node("a").state is NodeState.STALE and stale.links[0].fresh is False and stale.links[0].tx_per_s is None
    assert [e.text for e in stale.events] == ["node a stale: admin 127.0.0.1:1: Connection refused"]
    clock.now_s += 0.001
    gone = poller.update((silent(),), (silent(),))
    assert gone.node("a").state is NodeState.GONE and [e.kind for e in gone.events] == ["gone"]
    clock.now_s += 1.0
    back = poller.update((status(incarnation=2, tx=5, devices=[]),), (REFUSED,))
    assert [e.kind for e in back.events] == ["restarted", "online"] and back.links[0].tx_per_s is None
    assert back.node("a").devices == ()  # the node's own list, now that it has one


def test_a_node_never_heard_from_is_gone_a_lease_after_the_start():
    """A node that never answered is stale until a lease after the monitor's start, then gone."""
    clock = Clock()
    poller = Poller((A,), lease_s=5.0, clock=clock, wall=lambda: 0.0)
    assert poller.update((silent(),), (silent(),)).node("a").state is NodeState.STALE
    clock.now_s += 5.0
    assert poller.update((silent(),), (silent(),)).node("a").state is NodeState.GONE


def test_taints_appear_once_and_new_ones_again():
    """Taints on a route are one appeared event the first poll they are seen, none after, and
    one more when another taint joins them."""
    poller = Poller((A,), clock=Clock(), wall=lambda: 0.0)
    first = poller.update((status(),), (taints("delivery_dropped"),))
    assert [(e.kind, e.route, e.taints) for e in first.events] == [("appeared", ROUTE, ("delivery_dropped",))]
    assert first.taints[0].added[0].name == "ab_in" and first.node("a").taints_known
    assert poller.update((status(),), (taints("delivery_dropped"),)).events == ()
    third = poller.update((status(),), (taints("delivery_dropped", "trust_unverified"),))
    assert [e.taints for e in third.events] == [("trust_unverified",)]
