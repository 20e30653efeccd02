"""DurableQueue in the local profile (Python Graph with a store directory): delivery, acks,
visibility timeout, retries and dead letters, dedup, capacity, the worker loop, manifests and
the catalog contract. The crash tests with real processes are in test_queue_crash.py."""

from __future__ import annotations

import pytest
from queuekit import ACKS, DELIVERIES, JOBS, NACKS, QUEUE, Job, counters, job, queue_graph, watch

from manyfold import manifest
from manyfold.catalog import get as contract
from manyfold.graph import INT, Graph, Mailbox, Overflow, RejectedError, StoreError, UnsafeCycleError
from manyfold.primitives import PrimitiveError
from manyfold.primitives.validate import check_manifest


def test_a_queue_needs_a_store_directory():
    """Without a store directory the queue is refused in the contract's one sentence."""
    with pytest.raises(StoreError, match=r"^node image_jobs \(durable_queue\) keeps durable state: give the graph a store directory"):
        queue_graph(None)


def test_deliveries_start_in_order_and_acks_settle(tmp_path):
    """Ids count from 1 without gaps, deliveries wait for the scheduler's first run, acks remove messages."""
    g, queue = queue_graph(tmp_path)
    seen = watch(g, queue)
    camera, worker = g.producer("camera"), g.producer("worker")
    for n in range(1, 4):
        camera.publish(JOBS, job(n))
    assert seen.items == []
    g.run_until_idle()
    assert seen.items == [(1, 1, 1, False), (2, 1, 2, False), (3, 1, 3, False)]
    for i in (1, 2, 3):
        worker.publish(ACKS, i)
    g.run_until_idle()
    c = counters(g)
    assert (c["acked"], c["unacked"], c["inflight"]) == (3, 0, 0)


def test_visibility_timeout_redelivers(tmp_path):
    """A delivery not acked within visibility_timeout_us of graph time comes again: attempt 2, marked duplicated."""
    g, queue = queue_graph(tmp_path, visibility_timeout_us=5_000)
    seen = watch(g, queue)
    g.run_until_idle()
    g.producer("camera").publish(JOBS, job(1))
    g.producer("camera").publish(JOBS, job(2))
    g.producer("worker").publish(ACKS, 2)
    g.advance(4_999)
    assert len(seen.items) == 2
    g.advance(1)
    assert seen.items[2:] == [(1, 2, 1, True)]
    assert counters(g)["timed_out"] == 1


def test_retry_limit_dead_letters(tmp_path):
    """Nacks redeliver until retry_max retries are spent; then the message goes to dead_letters, done."""
    g, queue = queue_graph(tmp_path, retry_max=2)
    seen = watch(g, queue)
    g.run_until_idle()
    g.producer("camera").publish(JOBS, job(1))
    worker = g.producer("worker")
    for _ in range(3):
        worker.publish(NACKS, 1)
        g.run_until_idle()
    assert seen.items == [(1, 1, 1, False), (1, 2, 1, True), (1, 3, 1, True)]
    assert seen.dead == [(1, 3, 1)]
    c = counters(g)
    assert (c["nacked"], c["dead_lettered"], c["unacked"]) == (3, 1, 0)


def test_duplicates_deduplicated(tmp_path):
    """An append whose dedup_key is in the window is not enqueued again, also after a restart; outside the window it is."""
    g, queue = queue_graph(tmp_path, dedup_window=3)
    seen = watch(g, queue)
    g.run_until_idle()
    camera = g.producer("camera")
    receipt = camera.publish(JOBS, job(1))
    assert (receipt.dropped, receipt.rejected) == (0, 0)
    camera.publish(JOBS, Job("job-1", 99))
    assert seen.ids() == [1] and counters(g)["deduplicated"] == 1
    del g, queue, seen
    g, queue = queue_graph(tmp_path, dedup_window=3)
    seen = watch(g, queue)
    g.run_until_idle()
    g.producer("camera").publish(JOBS, Job("job-1", 100))
    assert counters(g)["deduplicated"] == 1, "the window is rebuilt from the store"
    for n in (2, 3, 4):
        g.producer("camera").publish(JOBS, job(n))
    g.producer("camera").publish(JOBS, Job("job-1", 101))
    assert [n for _, _, n, _ in seen.items] == [1, 2, 3, 4, 101], "job-1 left the window of 3 and is enqueued again"


def test_full_queue_rejects_and_counts(tmp_path):
    """Full with reject: the publish raises RejectedError and nothing is recorded; with drop_newest the receipt says dropped."""
    g, _ = queue_graph(tmp_path / "a", capacity=2)
    camera = g.producer("camera")
    camera.publish(JOBS, job(1))
    camera.publish(JOBS, job(2))
    with pytest.raises(RejectedError):
        camera.publish(JOBS, job(3))
    assert counters(g)["refused"] == 1
    g, _ = queue_graph(tmp_path / "b", capacity=2, overflow=Overflow.DROP_NEWEST)
    camera = g.producer("camera")
    camera.publish(JOBS, job(1))
    camera.publish(JOBS, job(2))
    assert camera.publish(JOBS, job(3)).dropped == 1
    assert counters(g)["dropped"] == 1


def test_a_worker_may_ack_from_deliveries_through_the_acks_mailbox(tmp_path):
    """A map from deliveries to the acks route is accepted (acks cross a mailbox) and settles every
    message; with acks_mailbox=None the same loop is refused as an inline feedback loop."""
    g = Graph(store_dir=tmp_path)
    jobs, acks = g.route(JOBS, Job), g.route(ACKS, INT)
    queue = g.durable_queue(jobs, acks=acks, capacity=100, name=QUEUE)
    g.map(queue.deliveries, lambda d: d.id, output=acks, name="worker")
    for n in range(1, 6):
        g.producer("camera").publish(JOBS, job(n))
    g.run_until_idle()
    c = counters(g)
    assert (c["delivered"], c["acked"], c["unacked"]) == (5, 5, 0)
    g = Graph(store_dir=tmp_path / "inline")
    jobs, acks = g.route(JOBS, Job), g.route(ACKS, INT)
    queue = g.durable_queue(jobs, acks=acks, capacity=100, acks_mailbox=None, name=QUEUE)
    with pytest.raises(UnsafeCycleError, match="feedback loop"):
        g.map(queue.deliveries, lambda d: d.id, output=acks, name="worker")


def test_bad_policies_are_one_sentence(tmp_path):
    """Overflow block, a missing dedup field, capacity 0: each refused with a sentence."""
    g = Graph(store_dir=tmp_path)
    jobs, acks = g.route(JOBS, Job), g.route(ACKS, INT)
    with pytest.raises(Exception, match="overflow must be REJECT or DROP_NEWEST"):
        g.durable_queue(jobs, acks=acks, capacity=10, overflow=Overflow.BLOCK)
    with pytest.raises(Exception, match="no field 'camera'"):
        g.durable_queue(jobs, acks=acks, capacity=10, dedup_key="camera")
    with pytest.raises(Exception, match="capacity of 1 to"):
        g.durable_queue(jobs, acks=acks, capacity=0)


def test_a_manifest_rebuilds_the_same_queue_over_the_same_store(tmp_path):
    """A compiled graph loads into a new graph on the same store directory and replays the unacked messages."""
    g, queue = queue_graph(tmp_path / "store")
    g.run_until_idle()
    for n in (1, 2):
        g.producer("camera").publish(JOBS, job(n))
    g.producer("worker").publish(ACKS, 1)
    g.run_until_idle()
    m = manifest.compile(g)
    (node,) = [n for n in m.nodes if n.kind == "durable_queue"]
    assert node.params["capacity"] == 10_000 and node.params["dedup_key"] == "key"
    del g, queue
    again = manifest.load(m, store_dir=tmp_path / "store")
    got = []
    again.subscribe(DELIVERIES, lambda e: got.append((e.value.id, e.value.body.n)))
    again.run_until_idle()
    assert got == [(2, 2)]


def test_the_contract_installs_and_validates(tmp_path):
    """DurableQueue.install builds the queue with its stores recorded; validate warns about a
    missing dedup boundary and acks nobody is granted, and refuses an embedded-lite placement."""
    g = Graph(store_dir=tmp_path)
    jobs, acks = g.route(JOBS, Job), g.route(ACKS, INT)
    q = contract("DurableQueue").install(g, "image_jobs", ingress=jobs, acks=acks, capacity=100)
    assert q.deliveries == g.nodes["image_jobs"].outputs[0]
    instance = g.primitives["image_jobs"]
    assert [(s.name, s.kind) for s in instance.stores] == [
        ("image_jobs.log", "EventLog"), ("image_jobs.checkpoint", "CheckpointStore"), ("image_jobs.done", "Keyspace"),
    ]
    checks = sorted(f.check for f in check_manifest(manifest.compile(g)))
    assert checks == ["acks_without_producer", "no_dedup_boundary"], checks
    g = Graph(store_dir=tmp_path / "lite")
    with g.partition("board", profile="embedded-lite"):
        jobs, acks = g.route(JOBS, Job), g.route(ACKS, INT)
        contract("DurableQueue").install(g, "image_jobs", ingress=jobs, acks=acks, capacity=100, dedup_key="key")
    g.grant(g.producer("camera"), acks)
    findings = check_manifest(manifest.compile(g))
    assert [f.check for f in findings] == ["durable_on_embedded"], findings
    with pytest.raises(PrimitiveError, match="policy overflow must be one of reject, drop_newest"):
        contract("DurableQueue").install(Graph(store_dir=tmp_path / "x"), "q2", ingress=jobs, acks=acks, capacity=1, overflow="block")
