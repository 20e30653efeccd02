"""The greenhouse's camera jobs: every camera frame becomes an image-analysis job in a
DurableQueue, a worker analyses what it is delivered and acks it, and a MaterializedView keeps
the latest analysis per zone. Both live in a store directory, so the work survives a restart.

What happens (on the virtual clock, deterministic):

1. The camera publishes frames of two zones every 20 s; each frame's job (keyed ``zone-frame``)
   is appended to the ``image_jobs`` queue. The camera re-sends one frame (a retry after a
   lost answer): the queue's dedup boundary keeps one job.
2. The worker analyses each delivery and acks it. It stalls once (no ack): after the
   visibility timeout the job is delivered again, marked ``delivery_duplicated``. One frame is
   corrupt: the analysis fails, the worker nacks it, and after its retries the job goes to
   the dead letters.
3. Half-way, the process "crashes" with jobs delivered but not acked: the graph is dropped and
   built again on the same store directory. The queue delivers the unacknowledged jobs again
   (marked), and the view is rebuilt from its snapshot and log.

Run it with ``python -m manyfold.examples.camera_jobs [--store DIR]`` (a temporary directory
by default).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from manyfold.graph import INT, Graph, Layer, Plane, QueueNode, Route, Taint, Variant, schema, taints_of

SECOND_US = 1_000_000
ZONES = ("north", "south")
CORRUPT_FRAME = 7
"""The frame whose analysis always fails (it ends in the dead letters)."""
STALLED_FRAME = 4
"""The frame the worker sits on once without acking (it is redelivered after the timeout)."""


@schema(version=1)
@dataclass(frozen=True)
class ImageJob:
    """Analyse one camera frame; ``key`` is the idempotency key (one job per frame)."""

    key: str
    zone: str
    frame: int


@schema(version=1)
@dataclass(frozen=True)
class Inspection:
    """What the analysis of a frame found."""

    zone: str
    frame: int
    fan_percent: float
    attempt: int


JOBS = Route(Plane.READ, Layer.LOGICAL, "camera", "vision", "job", Variant.META)
ACKS = Route(Plane.READ, Layer.LOGICAL, "inspector", "vision", "ack", Variant.META)
NACKS = Route(Plane.READ, Layer.LOGICAL, "inspector", "vision", "nack", Variant.META)
RESULTS = Route(Plane.READ, Layer.LOGICAL, "inspector", "vision", "inspection", Variant.META)


def analyse(job: ImageJob) -> float:
    """A stand-in for image analysis: a fan speed (percent) from the frame's bytes."""
    if job.frame == CORRUPT_FRAME:
        raise ValueError(f"frame {job.frame} is corrupt")
    digest = hashlib.sha256(job.key.encode()).digest()
    return round(40.0 + digest[0] / 255 * 60.0, 1)


@dataclass
class Station:
    """The graph and what the worker has been delivered but not yet handled."""

    graph: Graph
    queue: QueueNode
    inbox: list = field(default_factory=list)
    dead: list = field(default_factory=list)


def build(store_dir: Path) -> Station:
    """camera.job -> image_jobs (DurableQueue) -> the worker (this process) -> inspector.inspection
    -> zone_state (MaterializedView keyed by zone)."""
    g = Graph(store_dir=store_dir)
    jobs, acks, nacks = g.route(JOBS, ImageJob), g.route(ACKS, INT), g.route(NACKS, INT)
    queue = g.durable_queue(
        jobs, acks=acks, nacks=nacks, capacity=1000, dedup_key="key", visibility_timeout_us=30 * SECOND_US,
        retry_max=2, inflight_max=8, name="image_jobs",
    )
    results = g.route(RESULTS, Inspection)
    g.materialized_view(results, key="zone", snapshot_every=4, name="zone_state")
    station = Station(g, queue)
    g.subscribe(queue.deliveries, lambda e: station.inbox.append((e.value, Taint.DELIVERY_DUPLICATED in taints_of(e))))
    g.subscribe(queue.dead_letters, lambda e: station.dead.append(e.value))
    g.run_until_idle()  # the queue delivers what it kept from before a restart
    return station


def work(station: Station, log: list[str], *, stall: set[int]) -> None:
    """Handle every delivery waiting: analyse, publish the result, ack (or nack on failure).
    Frames in ``stall`` are held once without an ack."""
    g = station.graph
    inspector = g.producer("inspector")
    waiting, station.inbox = station.inbox, []
    for delivery, duplicated in waiting:
        job = delivery.body
        mark = " (redelivery)" if duplicated else ""
        if job.frame in stall:
            stall.discard(job.frame)
            log.append(f"job {delivery.id} {job.key}: the worker stalls, no ack{mark}")
            continue
        try:
            fan = analyse(job)
        except ValueError as error:
            log.append(f"job {delivery.id} {job.key} attempt {delivery.attempt}: {error}; nack{mark}")
            inspector.publish(NACKS, delivery.id)
            continue
        inspector.publish(RESULTS, Inspection(job.zone, job.frame, fan, delivery.attempt))
        inspector.publish(ACKS, delivery.id)
        log.append(f"job {delivery.id} {job.key} attempt {delivery.attempt}: fan {fan}%, ack{mark}")
    g.run_until_idle()
    for dead in station.dead:
        log.append(f"dead letter: job {dead.id} {dead.body.key} after {dead.attempt} attempts")
    station.dead.clear()


def run(store_dir: Path, *, steps: int = 12) -> tuple[Station, list[str]]:
    """Drive the station for ``steps`` 20-second steps with a crash half-way; returns the
    station after the restart and what happened, one line per event."""
    log: list[str] = []
    station = build(store_dir)
    stall = {STALLED_FRAME}
    frame = 0
    for step in range(steps):
        camera = station.graph.producer("camera")
        for zone in ZONES:
            frame += 1
            camera.publish(JOBS, ImageJob(f"{zone}-{frame}", zone, frame))
        if step == 2:
            camera.publish(JOBS, ImageJob(f"{zone}-{frame}", zone, frame))  # a retried send
            log.append(f"the camera re-sends {zone}-{frame}: the queue keeps one job")
        station.graph.run_until_idle()
        if step == steps // 2:
            log.append(f"crash with {len(station.inbox)} job(s) delivered but not acked; restart on {store_dir}")
            del station
            station = build(store_dir)
            view = station.graph.view("zone_state")
            log.append(f"zone_state rebuilt: snapshot at {view.snapshot_seq}, {view.replayed} update(s) replayed")
        work(station, log, stall=stall)
        station.graph.advance(20 * SECOND_US)
        work(station, log, stall=stall)
    return station, log


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="the store directory (default: a new temporary one)")
    args = parser.parse_args(argv)
    store_dir = args.store or Path(tempfile.mkdtemp(prefix="camera-jobs-"))
    station, log = run(store_dir)
    for line in log:
        print(line)
    stats = next(s for s in station.graph.node_stats() if s.name == "image_jobs").counters
    print("image_jobs since the restart: " + ", ".join(f"{k} {stats[k]}" for k in ("replayed", "delivered", "redelivered", "acked", "dead_lettered", "deduplicated", "unacked")))
    for zone, row in sorted(station.graph.view("zone_state").rows.items()):
        print(f"zone_state {zone}: frame {row.frame}, fan {row.fan_percent}% (attempt {row.attempt})")


if __name__ == "__main__":
    main()
