"""Flow: shaping a stream in time and volume. The built-in operators are executable contracts
whose installers call the Graph methods; the rest are named."""

from __future__ import annotations

from manyfold.catalog._installers import single_node, stream_ports
from manyfold.graph.graph import Aggregate, JoinClass, Overflow, TimeSource
from manyfold.primitives import Family, InstallContext, Installed, Layer, Maturity, Policy, Port, Primitive, State, StateKind

_EXEC = Maturity.EXECUTABLE


def _capacitor(ctx: InstallContext, *, capacity: int, overflow: str) -> Installed:
    source = ctx.input("source")
    node = ctx.graph.capacitor(source, capacity=capacity, overflow=overflow, demand=ctx.bound("demand"), output=ctx.bound("output"), name=ctx.name())
    ctx.add_node(node)
    ports = {"source": source, "output": node.output}
    if ctx.bound("demand") is not None:
        ports["demand"] = ctx.bound("demand")
    return Installed(ports)


Capacitor = Primitive.define(
    name="Capacitor", version=1, family=Family.FLOW, layer=Layer.LOCAL,
    summary="Holds up to a bounded number of values and releases them on demand: a count on the demand route, or node.discharge(n).",
    requires=("Buffer", "Capacity", "OverflowPolicy"), provides=("Bounded", "OnDemand"),
    inputs=(Port("source", "T", "the values to hold"), Port("demand", "int", "how many to release (optional route)")),
    outputs=(Port("output", "T", "released values, oldest first"),),
    state=(State("held", StateKind.VOLATILE, doc="the values waiting for demand"),),
    policies=(
        Policy("capacity", int, required=True, doc="how many values it holds, 1 to 1,048,576"),
        Policy("overflow", Overflow, default="drop_oldest", doc="what a full capacitor does with one more value"),
    ),
    maturity=_EXEC, kinds=("capacitor",), installer=_capacitor,
)


Resistor = Primitive.define(
    name="Resistor", version=1, family=Family.FLOW, layer=Layer.LOCAL,
    summary="Lets at most one value through per interval, holding the latest of those that come too soon.",
    requires=("Clock", "Regulator"), provides=("Bounded", "Coalescing"),
    **stream_ports(),
    state=(State("held", StateKind.VOLATILE, doc="the latest value waiting for the interval to pass"),),
    policies=(Policy("min_interval_us", int, required=True, doc="the shortest time between two values out"),),
    maturity=_EXEC, kinds=("resistor",), installer=single_node("resistor"),
)

RateLimiter = Primitive.define(
    name="RateLimiter", version=1, family=Family.FLOW, layer=Layer.LOCAL,
    summary="A token bucket on event time: bursts up to a size, refilled at a rate; values without a token are dropped and counted.",
    requires=("TokenBucket", "Clock", "RatePolicy"), provides=("Bounded",),
    **stream_ports(),
    state=(State("tokens", StateKind.VOLATILE, doc="the bucket's tokens and last refill time"),),
    policies=(
        Policy("max_events", int, required=True, doc="the burst size, and the tokens added per interval"),
        Policy("interval_us", int, required=True, doc="the refill interval"),
    ),
    maturity=_EXEC, kinds=("rate_limit",), installer=single_node("rate_limit"),
)

Sample = Primitive.define(
    name="Sample", version=1, family=Family.FLOW, layer=Layer.LOCAL,
    summary="At most one value per period, the latest winning, sent at the period's end with the values it replaced as parents.",
    requires=("Clock", "OrderingPolicy"), provides=("Bounded", "Coalescing"),
    **stream_ports(),
    state=(State("held", StateKind.VOLATILE, doc="the latest value of the current period"),),
    policies=(Policy("period_us", int, required=True, doc="the period"),),
    maturity=_EXEC, kinds=("sample",), installer=single_node("sample"),
)

Resequencer = Primitive.define(
    name="Resequencer", version=1, family=Family.FLOW, layer=Layer.LOCAL,
    summary="Puts values back in event-time order, waiting a bounded delay for stragglers; later ones are dropped and counted.",
    requires=("Buffer", "Clock", "OrderingPolicy"), provides=("Ordered", "Bounded"),
    **stream_ports(),
    state=(State("pending", StateKind.VOLATILE, doc="values waiting for their turn"),),
    policies=(
        Policy("delay_us", int, required=True, doc="how long (event time) to wait for stragglers"),
        Policy("capacity", int, default=1024, doc="how many values may wait"),
    ),
    maturity=_EXEC, kinds=("resequence",), installer=single_node("resequence"),
)

CountWindow = Primitive.define(
    name="CountWindow", version=1, family=Family.FLOW, layer=Layer.LOCAL,
    summary="Aggregates the last N values (per key) every step values.",
    requires=("Buffer", "Capacity"), provides=("Aggregate",),
    **stream_ports(out="float | WindowResult"),
    state=(State("window", StateKind.VOLATILE, doc="the last size values per key"),),
    policies=(
        Policy("size", int, required=True, doc="values per window"),
        Policy("step", int, default=1, doc="values between two results"),
        Policy("aggregate", Aggregate, default="mean", doc="what a result is"),
        Policy("value", str, doc="the record field aggregated (the whole value by default)"),
        Policy("key", str, doc="the record field windows are kept per"),
    ),
    maturity=_EXEC, kinds=("count_window",), installer=single_node("count_window"),
)

TimeWindow = Primitive.define(
    name="TimeWindow", version=1, family=Family.FLOW, layer=Layer.LOCAL,
    summary="Tumbling or sliding windows of event (or processing) time per key, closed by the watermark; late values are dropped and counted.",
    requires=("Clock", "Buffer", "Watermark"), provides=("Aggregate", "Bounded"),
    **stream_ports(out="WindowResult"),
    state=(State("windows", StateKind.VOLATILE, doc="open windows per key"),),
    policies=(
        Policy("width_us", int, required=True, doc="window width"),
        Policy("slide_us", int, doc="the slide (tumbling when not given)"),
        Policy("lateness_us", int, default=0, doc="how far behind the largest event time a value may come"),
        Policy("aggregate", Aggregate, default="mean", doc="what a result is"),
        Policy("value", str, doc="the record field aggregated"),
        Policy("key", str, doc="the record field windows are kept per"),
        Policy("time", TimeSource, default="event", doc="which clock windows follow"),
    ),
    maturity=_EXEC, kinds=("time_window",), installer=single_node("time_window"),
)


def _join(ctx: InstallContext, **policies) -> Installed:
    left, right = ctx.input("left"), ctx.input("right")
    node = ctx.graph.join(left, right, output=ctx.bound("output"), name=ctx.name(), **policies)
    ctx.add_node(node)
    return Installed({"left": left, "right": right, "output": node.output})


_JOIN_PORTS = {
    "inputs": (Port("left", "L", "the left side"), Port("right", "R", "the right side")),
    "outputs": (Port("output", "Pair[L, R]", "matched pairs"),),
}
_JOIN_POLICIES = (
    Policy("key", str, doc="the record field both sides are keyed by"),
    Policy("left_key", str, doc="the left side's key field (instead of key)"),
    Policy("right_key", str, doc="the right side's key field (instead of key)"),
    Policy("within_us", int, doc="how far apart in event time two values may pair"),
    Policy("capacity", int, default=1024, doc="values buffered per side"),
    Policy("partitions", int, default=4, doc="partitions of a repartition join"),
)

Join = Primitive.define(
    name="Join", version=1, family=Family.FLOW, layer=Layer.LOCAL,
    summary="Pairs two routes by key within bounded buffers; its class (local, lookup, broadcast mirror, repartition) says how it distributes.",
    requires=("Buffer", "Key", "Clock"), provides=("Pair", "Bounded"),
    **_JOIN_PORTS,
    state=(State("buffers", StateKind.VOLATILE, doc="per-key buffers of both sides"),),
    policies=(Policy("join_class", JoinClass, required=True, doc="how the join executes"), *_JOIN_POLICIES),
    maturity=_EXEC, kinds=("join",), installer=_join,
)

Deadband = Primitive.define(
    name="Deadband", version=1, family=Family.FLOW, layer=Layer.ATOM,
    summary="Passes a value only when it moved at least a band from the last one passed.",
    requires=("ChangeFilter",), provides=("Quiet",),
    **stream_ports(),
    state=(State("last", StateKind.VOLATILE, doc="the last value passed"),),
    policies=(Policy("band", float, required=True, doc="the smallest move that passes"), Policy("value", str, doc="the record field compared")),
    maturity=_EXEC, kinds=("deadband",), installer=single_node("deadband"),
)


def _threshold_args(p: dict) -> dict:
    mode = p.pop("mode")
    low, high = p.pop("low", None), p.pop("high", None)
    limit = low if mode == "above" else high if mode == "below" else (low, high)
    return {mode: limit, **p}


Threshold = Primitive.define(
    name="Threshold", version=1, family=Family.FLOW, layer=Layer.ATOM,
    summary="Passes values above, below, inside or outside finite limits.",
    requires=("ChangeFilter",), provides=("Filtered",),
    **stream_ports(),
    policies=(
        Policy("mode", str, required=True, choices=("above", "below", "inside", "outside"), doc="which values pass"),
        Policy("low", float, doc="the lower limit (above, inside, outside)"),
        Policy("high", float, doc="the upper limit (below, inside, outside)"),
        Policy("value", str, doc="the record field compared"),
    ),
    maturity=_EXEC, kinds=("threshold",), installer=single_node("threshold", adapt=_threshold_args),
)

Scale = Primitive.define(
    name="Scale", version=1, family=Family.FLOW, layer=Layer.ATOM,
    summary="Emits value * scale + offset as a float (raw counts to engineering units).",
    requires=(), provides=("Deterministic",),
    **stream_ports(out="float"),
    policies=(
        Policy("scale", float, default=1.0, doc="the factor"),
        Policy("offset", float, default=0.0, doc="added after scaling"),
        Policy("value", str, doc="the record field scaled"),
    ),
    maturity=_EXEC, kinds=("scale",), installer=single_node("scale"),
)

Semaphore = Primitive.define(
    name="Semaphore", version=1, family=Family.FLOW, layer=Layer.LOCAL,
    summary="Bounds how many units of work are in flight at once; a unit enters with a permit and leaves by giving it back.",
    requires=("Capacity", "ConcurrencyPolicy"), provides=("Bounded", "Exclusive"),
)

FlowControl = Primitive.define(
    name="FlowControl", version=1, family=Family.FLOW, layer=Layer.APPLICATION,
    summary="A rate limit, a concurrency bound and a bounded queue put together in front of a consumer that must not be overrun.",
    requires=("RateLimiter", "Semaphore", "BoundedQueue"), provides=("Bounded", "Backpressure"),
)

CircuitBreaker = Primitive.define(
    name="CircuitBreaker", version=1, family=Family.FLOW, layer=Layer.LOCAL,
    summary="Stops calling a failing dependency after too many failures in a window, and probes it again after a pause.",
    requires=("Window", "Timer", "ThresholdPolicy"), provides=("FailFast",),
)
