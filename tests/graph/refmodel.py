"""A small reference model of the local graph's operators, written from docs/graph.md and
docs/observability.md, independent of the runtime: plain Python over a list of inputs.

Each model takes the inputs of one operator (:class:`In`: the clock time it was published at,
its event time, its value and its sequence number on the input route) and returns what the
operator should emit, as :class:`Out` records: value (``"nan"`` for a NaN), event time, taint
names and the sequence numbers of its parents. The property tests (``test_properties.py``) run
the real graph on the same inputs and compare. Times are Python integers, so nothing wraps.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

DROPPED, SAMPLED, COALESCED = "delivery_dropped", "delivery_sampled", "delivery_coalesced"
FORCED, RESEQUENCED, PENDING = "sched_forced_close", "order_resequenced", "coherence_write_pending"


@dataclass(frozen=True)
class In:
    """One input: published when the clock is ``clock_us``, with event time ``time_us``."""

    clock_us: int
    time_us: int
    value: float
    seq: int


@dataclass(frozen=True)
class Out:
    """One output: its value (``"nan"`` for NaN), event time, taints and parents' seqs."""

    value: object
    time_us: int
    taints: tuple = ()
    parents: tuple = ()
    route: str = "out"


def norm(v: object) -> object:
    return "nan" if isinstance(v, float) and math.isnan(v) else v


def out(value: object, time_us: int, taints=(), parents=(), route: str = "out") -> Out:
    return Out(norm(value), time_us, tuple(sorted(set(taints))), tuple(parents), route)


# ---------------------------------------------------------------------- the NaN rule


def aggregate(name: str, values: list[float]) -> float | None:
    """count, sum, mean, min or max of ``values`` (added in order); NaN in, NaN out."""
    if name == "count":
        return float(len(values))
    total = 0.0
    for v in values:
        total += v
    if name == "sum":
        return total
    if not values:
        return None
    if name == "mean":
        return total / len(values)
    if any(math.isnan(v) for v in values):
        return math.nan
    return min(values) if name == "min" else max(values)


def merged(name: str, panes: list[list[float]]) -> float | None:
    """An aggregate of panes merged in order: each pane's sum first, then the sums (the
    runtime's order of additions, so sums agree to the last bit)."""
    values = [v for pane in panes for v in pane]
    if name in ("count", "min", "max"):
        return aggregate(name, values)
    total = 0.0
    for pane in panes:
        s = 0.0
        for v in pane:
            s += v
        total += s
    if name == "sum":
        return total
    return total / len(values) if values else None


def threshold_passes(mode: str, low: float, high: float, v: float) -> bool:
    if math.isnan(v):
        return True
    return {"above": v > low, "below": v < low, "inside": low <= v <= high, "outside": v < low or v > high}[mode]


# ---------------------------------------------------------------------- scalar operators


def scale(inputs: list[In], factor: float, offset: float) -> list[Out]:
    return [out(i.value * factor + offset, i.time_us, (), (i.seq,)) for i in inputs]


def threshold(inputs: list[In], mode: str, low: float, high: float) -> list[Out]:
    return [out(i.value, i.time_us, (), (i.seq,)) for i in inputs if threshold_passes(mode, low, high, i.value)]


def deadband(inputs: list[In], band: float) -> list[Out]:
    outs, last = [], None
    for i in inputs:
        v = i.value
        if last is None or math.isnan(v) or math.isnan(last):
            moved = True
        elif v == last:
            moved = band == 0.0
        else:
            moved = abs(v - last) >= band
        if moved:
            last = v
            outs.append(out(v, i.time_us, (), (i.seq,)))
    return outs


# ---------------------------------------------------------------------- windows


def count_window(inputs: list[In], size: int, step: int, agg: str) -> list[Out]:
    """First at the size-th value, then every step values; the completing value's time."""
    outs, window = [], deque(maxlen=size)
    for n, i in enumerate(inputs, start=1):
        window.append(i)
        if n >= size and (n - size) % step == 0:
            value = aggregate(agg, [w.value for w in window])
            outs.append(out(value, i.time_us, (), tuple(w.seq for w in window)))
    return outs


def time_window(inputs: list[In], width: int, slide: int, lateness: int, agg: str) -> list[Out]:
    """Event-time windows closed by the watermark (largest event time minus lateness), raised
    before each value is placed; a value is late when any of its windows has closed."""
    n = width // slide
    outs: list[Out] = []
    watermark = None
    windows: dict[int, list[tuple[int, int, float]]] = {}  # k -> [(pane, seq, value)]
    pending = False
    for i in inputs:
        candidate = i.time_us - lateness
        if watermark is None or candidate > watermark:
            watermark = candidate
            for k in sorted(windows):
                if k * slide + width <= watermark:
                    members = sorted(windows.pop(k), key=lambda m: (m[0], m[1]))
                    panes = [[m[2] for m in members if m[0] == p] for p in range(k, k + n)]
                    outs.append(out(merged(agg, panes), k * slide + width - 1, [DROPPED] if pending else [], [m[1] for m in members]))
                    pending = False
        pane = i.time_us // slide
        its = range(pane - n + 1, pane + 1)
        if any(k * slide + width <= watermark for k in its):
            pending = True
            continue
        for k in its:
            windows.setdefault(k, []).append((pane, i.seq, i.value))
    return outs


# ---------------------------------------------------------------------- rate, time and buffers


def rate_limit(inputs: list[In], max_events: int, interval: int) -> tuple[list[Out], list[int]]:
    """A token bucket on event time, in integer credit (units of 1/interval events). Returns
    the outputs and, per input, how many values its publish dropped (0 or 1)."""
    cap = max_events * interval
    credit, last, pending = cap, None, False
    outs, dropped = [], []
    for i in inputs:
        if last is not None:
            credit = min(credit + max(0, i.time_us - last) * max_events, cap)
        last = i.time_us if last is None else max(last, i.time_us)
        if credit >= interval:
            credit -= interval
            outs.append(out(i.value, i.time_us, [SAMPLED] if pending else [], (i.seq,)))
            pending = False
            dropped.append(0)
        else:
            pending = True
            dropped.append(1)
    return outs, dropped


def resistor(inputs: list[In], interval: int, end_us: int) -> list[tuple[int, Out]]:
    """At most one output per interval of clock time; early values held, the newest replacing
    an older one (coalesced); released at last output + interval. Returns (clock, output)."""
    outs: list[tuple[int, Out]] = []
    last, held, pending, release_at = None, None, False, None

    def fire(now: int) -> None:
        nonlocal last, held, pending, release_at
        release_at = None
        if held is not None and now - last >= interval:
            outs.append((now, out(held.value, held.time_us, [COALESCED] if pending else [], (held.seq,))))
            held, pending, last = None, False, now

    for i in inputs:
        if release_at is not None and release_at <= i.clock_us:
            fire(release_at)
        if last is not None and i.clock_us - last < interval:
            if held is not None:
                pending = True
            held = i
            release_at = last + interval
        else:
            replaced = held is not None
            held = None
            outs.append((i.clock_us, out(i.value, i.time_us, [COALESCED] if (pending or replaced) else [], (i.seq,))))
            pending, last = False, i.clock_us
    if release_at is not None and release_at <= end_us:
        fire(release_at)
    return outs


def sample(inputs: list[In], period: int, end_us: int) -> list[tuple[int, Out]]:
    """The first value of a batch arms the next multiple of the period; later ones replace it;
    at that time the latest goes out with its own event time and the whole batch as parents."""
    outs: list[tuple[int, Out]] = []
    batch: list[In] = []
    due = None
    for i in inputs + [None]:
        now = end_us if i is None else i.clock_us
        if due is not None and due <= now:
            last = batch[-1]
            outs.append((due, out(last.value, last.time_us, [COALESCED] if len(batch) > 1 else [], [b.seq for b in batch])))
            batch, due = [], None
        if i is None:
            break
        if not batch:
            due = (i.clock_us // period + 1) * period
        batch.append(i)
    return outs


def actuator(inputs: list[In], apply_us: int, end_us: int) -> list[tuple[int, Out]]:
    """One pending write, applied apply_us after the first desired value of its batch (newer
    ones replace it); at application reported then effective at the clock's time; while a
    setting is in effect each desired value re-emits it on effective, write-pending."""
    outs: list[tuple[int, Out]] = []
    batch: list[In] = []
    due, effective = None, None

    def apply(now: int) -> None:
        nonlocal batch, due, effective
        last = batch[-1]
        taints = [COALESCED] if len(batch) > 1 else []
        for route in ("reported", "effective"):
            outs.append((now, out(last.value, now, taints, [b.seq for b in batch], route)))
        effective, batch, due = last.value, [], None

    for i in inputs:
        if due is not None and due <= i.clock_us:
            apply(due)
        if apply_us == 0:
            batch = [i]
            apply(i.clock_us)
            continue
        if effective is not None:
            outs.append((i.clock_us, out(effective, i.time_us, [PENDING], (i.seq,), "effective")))
        if not batch:
            due = i.clock_us + apply_us
        batch.append(i)
    if due is not None and due <= end_us:
        apply(due)
    return outs


def buffer(ops: list[tuple], capacity: int, overflow: str) -> tuple[list[tuple], list[str]]:
    """A bounded buffer: a mailbox or a capacitor. ``ops``: ("publish", value) or ("release",
    count or None for all). Returns the released (seq, value, taints) and, per publish, "ok",
    "dropped" or "refused". Full, drop policies lose an item (the next released one says so);
    block and reject refuse the publish: nothing is recorded, so it takes no sequence number."""
    queue: deque[tuple[int, float]] = deque()
    released, results = [], []
    pending, seq = False, 0
    for op in ops:
        if op[0] == "publish":
            if len(queue) >= capacity and overflow in ("block", "reject"):
                results.append("refused")
                continue
            seq += 1
            if len(queue) < capacity:
                queue.append((seq, op[1]))
                results.append("ok")
                continue
            pending = True
            results.append("dropped")
            if overflow == "drop_oldest":
                queue.popleft()
                queue.append((seq, op[1]))
        else:
            for _ in range(len(queue) if op[1] is None else min(op[1], len(queue))):
                s, v = queue.popleft()
                released.append((s, norm(v), (DROPPED,) if pending else ()))
                pending = False
    return released, results


def resequence(inputs: list[In], delay: int, capacity: int) -> list[Out]:
    """Released in event-time order once the watermark (largest time minus delay) passes
    them; more than capacity held releases the oldest early (forced); older than what was
    released is late (dropped, the next output tainted)."""
    outs: list[Out] = []
    held: list[tuple[int, int, In]] = []
    emitted_up_to, watermark, pending, arrival = None, None, False, 0
    for i in inputs:
        if emitted_up_to is not None and i.time_us < emitted_up_to:
            pending = True
            continue
        arrival += 1
        held.append((i.time_us, arrival, i))
        held.sort(key=lambda h: (h[0], h[1]))
        watermark = i.time_us - delay if watermark is None else max(watermark, i.time_us - delay)
        while held and (held[0][0] <= watermark or len(held) > capacity):
            t, _, e = held.pop(0)
            taints = [RESEQUENCED] + ([FORCED] if t > watermark else []) + ([DROPPED] if pending else [])
            pending = False
            emitted_up_to = t if emitted_up_to is None else max(emitted_up_to, t)
            outs.append(out(e.value, e.time_us, taints, (e.seq,)))
    return outs


# ---------------------------------------------------------------------- joins


@dataclass(frozen=True)
class Side:
    """One join input: ``port`` 0 (left) or 1 (right), key and value."""

    clock_us: int
    time_us: int
    port: int
    key: int
    value: float
    seq: int


def join(inputs: list[Side], join_class: str, within: int | None, capacity: int) -> tuple[list[tuple], dict]:
    """Pairs as (left seq, right seq, event time, taints), and the counters. Late: more than
    within behind the watermark; expired: more than 2 * within behind it; losing a value that
    could still pair (evicted, refused, late) taints the next pair."""
    mark = None
    pending = False
    pairs: list[tuple] = []
    counters = {"matched": 0, "unmatched": 0, "late": 0, "expired": 0, "evicted": 0, "refused": 0}
    buffers: dict[tuple[int, int], list[Side]] = {}  # (port, key) -> held values
    table: dict[int, Side] = {}
    mirror: list[Side] = []

    def within_bound(a: Side, b: Side) -> bool:
        return within is None or abs(a.time_us - b.time_us) <= within

    def expired(s: Side) -> bool:
        return within is not None and mark - s.time_us > 2 * within

    def emit(left: Side, right: Side) -> None:
        nonlocal pending
        pairs.append((left.seq, right.seq, max(left.time_us, right.time_us), (DROPPED,) if pending else ()))
        pending = False
        counters["matched"] += 1

    def lose(what: str) -> None:
        nonlocal pending
        counters[what] += 1
        pending = True

    for s in inputs:
        if within is not None and mark is not None and mark - s.time_us > within:
            lose("late")
            continue
        mark = s.time_us if mark is None else max(mark, s.time_us)
        if join_class in ("local", "repartition"):
            other = buffers.get((1 - s.port, s.key), [])
            matches = [o for o in other if within_bound(s, o)]
            if not matches:
                counters["unmatched"] += 1
            for o in matches:
                emit(*((s, o) if s.port == 0 else (o, s)))
            for port in (0, 1):
                held = buffers.get((port, s.key), [])
                kept = [h for h in held if not expired(h)]
                counters["expired"] += len(held) - len(kept)
                buffers[(port, s.key)] = kept
            mine = buffers[(s.port, s.key)]
            mine.append(s)
            while len(mine) > capacity:
                mine.pop(0)
                lose("evicted")
        elif join_class == "lookup":
            if s.port == 1:
                if s.key not in table and len(table) >= capacity:
                    lose("refused")
                else:
                    table[s.key] = s
            else:
                right = table.get(s.key)
                if right is not None and within_bound(s, right):
                    emit(s, right)
                else:
                    counters["unmatched"] += 1
        else:  # a keyed broadcast mirror: the latest right value per key
            if s.port == 1:
                kept = [m for m in mirror if not expired(m)]
                counters["expired"] += len(mirror) - len(kept)
                mirror = [m for m in kept if m.key != s.key] + [s]
                while len(mirror) > capacity:
                    mirror.pop(0)
                    lose("evicted")
            else:
                matches = [m for m in mirror if m.key == s.key and within_bound(s, m)]
                if not matches:
                    counters["unmatched"] += 1
                for m in matches:
                    emit(s, m)
    return pairs, counters


# ---------------------------------------------------------------------- write bindings


def write_binding(ops: list[tuple], retry_max: int, interval: int) -> list[tuple]:
    """The coherence contract of a setting. ``ops``: ("request", v), ("report", v), ("ack",)
    or ("wait", us). Returns (route, value, taints) for every desired and effective value.
    A request is sent on desired (write-pending) and, without an ack or a matching report,
    again every interval, retry_max times; the next timer expires it (sched_expired on the next
    effective value). Reports compare with NaN equal to NaN."""
    outs: list[tuple] = []
    clock, desired, pending, acked, failed, attempts, due = 0, None, False, False, False, 0, None
    expired_taint = False

    def same(a, b) -> bool:
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))

    def send() -> None:
        nonlocal due
        outs.append(("desired", norm(desired), (PENDING,)))
        due = clock + interval if retry_max > 0 else None

    for op in ops:
        if op[0] == "wait":
            end = clock + op[1]
            while due is not None and due <= end:
                clock, due = due, None
                if not pending or acked:
                    continue
                if attempts <= retry_max:
                    attempts += 1
                    send()
                else:
                    pending, failed, expired_taint = False, True, True
            clock = end
        elif op[0] == "request":
            desired, pending, attempts, acked, failed = op[1], True, 1, False, False
            send()
        elif op[0] == "ack":
            acked = acked or pending
        else:
            taints = ["sched_expired"] if expired_taint else []
            expired_taint = False
            matches = desired is not None and same(desired, op[1])
            if pending and matches:
                pending = False
            elif pending:
                taints += ["coherence_stale_reported", PENDING]
            elif not matches:
                taints += ["coherence_echo_unmatched"]
            elif failed:
                failed = False
            outs.append(("effective", norm(op[1]), tuple(sorted(taints))))
    return outs
