//! Ingest: envelopes received from a link keep their identity, are fanned out like a publish,
//! and duplicates, foreign routes and values of the wrong schema are refused.

use manyfold_core::envelope::{PayloadRef, ProducerRef};
use manyfold_core::taint::Taint;

use super::*;

fn remote(seq: u64, value: f64, taints: TaintSet, parents: &[EnvelopeId]) -> Remote {
    Remote {
        seq,
        event_time: EventTime { time_us: 1_000 + seq as i64, domain: ClockDomain(1) },
        taints,
        parents: parents.iter().copied().collect(),
        value: Value::Float(value),
        payload: PayloadRef::Inline { len: 9 },
    }
}

/// An ingested envelope keeps seq, event time, domain, taints and parents; the runtime is its
/// producer; a forward node downstream adds its link taints as it would in one process.
#[test]
fn ingest_keeps_identity_and_fans_out() {
    let mut g = Graph::new_virtual();
    let upstream = floats(&mut g, "sensor", "raw");
    let crossing = floats(&mut g, "sensor", "a");
    let inside = floats(&mut g, "edge", "b");
    g.connect_over("forward_a", crossing, inside, EdgePolicy::INLINE, TaintSet::EMPTY.with(Taint::TrustUnverified)).unwrap();
    let seen = collect(&mut g, "sub", inside, EdgePolicy::INLINE);
    let parent = EnvelopeId { route: upstream, seq: 41 };
    let taints = TaintSet::EMPTY.with(Taint::TimeEstimated);
    let id = g.ingest(crossing, remote(7, 2.5, taints, &[parent])).unwrap();
    assert_eq!(id, EnvelopeId { route: crossing, seq: 7 });
    let env = g.latest(crossing).unwrap().unwrap();
    assert_eq!(env.meta.producer, ProducerRef::Runtime);
    assert_eq!(env.meta.event_time, EventTime { time_us: 1_007, domain: ClockDomain(1) });
    assert_eq!(env.meta.taints, taints);
    assert_eq!(env.meta.parents.as_slice(), &[parent]);
    let out = seen.lock().unwrap()[0].clone();
    assert_eq!(out.value, Value::Float(2.5));
    assert_eq!(out.meta.taints, taints.with(Taint::TrustUnverified));
    assert_eq!(out.meta.parents.as_slice(), &[id]);
    assert_eq!(g.ingest_counts(crossing).unwrap(), IngestCounts { ingested: 1, duplicates: 0 });
}

/// A seq not above the route's last is a duplicate: refused and counted, nothing delivered.
/// A gap is accepted, and lineage still finds envelopes on both sides of it.
#[test]
fn ingest_refuses_duplicates_and_accepts_gaps() {
    let mut g = Graph::new_virtual();
    let r = floats(&mut g, "sensor", "a");
    let seen = collect(&mut g, "sub", r, EdgePolicy::INLINE);
    g.ingest(r, remote(1, 1.0, TaintSet::EMPTY, &[])).unwrap();
    g.ingest(r, remote(2, 2.0, TaintSet::EMPTY, &[])).unwrap();
    assert_eq!(g.ingest(r, remote(2, 2.0, TaintSet::EMPTY, &[])).unwrap_err().kind(), "duplicate");
    assert_eq!(g.ingest(r, remote(1, 1.0, TaintSet::EMPTY, &[])).unwrap_err().kind(), "duplicate");
    g.ingest(r, remote(5, 5.0, TaintSet::EMPTY.with(Taint::DeliveryDropped), &[])).unwrap();
    assert_eq!(values(&seen), vec![Value::Float(1.0), Value::Float(2.0), Value::Float(5.0)]);
    assert_eq!(g.ingest_counts(r).unwrap(), IngestCounts { ingested: 3, duplicates: 2 });
    assert_eq!(g.route_seq(r).unwrap(), 5);
    assert_eq!(g.envelope(EnvelopeId { route: r, seq: 5 }).unwrap().value, Value::Float(5.0));
    assert_eq!(g.envelope(EnvelopeId { route: r, seq: 2 }).unwrap().value, Value::Float(2.0));
    assert!(g.envelope(EnvelopeId { route: r, seq: 3 }).is_none());
}

/// A value of the wrong schema and a route a local node produces are refused.
#[test]
fn ingest_checks_schema_and_ownership() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "sensor", "a");
    let b = floats(&mut g, "sensor", "b");
    g.connect("fwd", a, b, EdgePolicy::INLINE).unwrap();
    let mut bad = remote(1, 0.0, TaintSet::EMPTY, &[]);
    bad.value = Value::Text("hot".into());
    assert_eq!(g.ingest(a, bad).unwrap_err().kind(), "schema_check");
    assert_eq!(g.ingest(b, remote(1, 1.0, TaintSet::EMPTY, &[])).unwrap_err().kind(), "not_owner");
    assert_eq!(g.route_seq(a).unwrap(), 0);
}

/// A lazy envelope from a link keeps its metadata as its value; its payload comes from the
/// opener (the link) only when opened, is checked against the declared length and digest
/// (bytes that do not match are refused, counted as failures, and asked for again at the next
/// open), and the open is counted, cached and audited as a local lazy payload's is.
#[test]
fn ingest_lazy_opens_through_its_opener_and_checks_the_digest() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let mut g = Graph::new_virtual();
    let r = floats(&mut g, "sensor", "a");
    let good = b"frame bytes".to_vec();
    let digest = super::super::payload::sha256(&good);
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let bytes = good.clone();
    // The first answer is corrupt, the second right.
    let open = Box::new(move || {
        let n = seen.fetch_add(1, Ordering::Relaxed);
        Ok(if n == 0 { b"frame bytez".to_vec() } else { bytes.clone() })
    });
    let mut lazy = remote(3, 7.0, TaintSet::EMPTY, &[]);
    lazy.payload = PayloadRef::Lazy { len: good.len() as u64, digest };
    let id = g.ingest_lazy(r, lazy, open).unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 0, "nothing is fetched before an open");
    assert_eq!(g.latest(r).unwrap().unwrap().value, Value::Float(7.0));
    assert_eq!(g.lazy_payload(id), Some((good.len() as u64, digest)));
    let err = g.open_payload(id, "inspect").unwrap_err();
    assert!(err.message().contains("does not match its declared SHA-256"), "{}", err.message());
    assert_eq!(&*g.open_payload(id, "inspect").unwrap(), &good[..]);
    assert_eq!(&*g.open_payload(id, "inspect").unwrap(), &good[..]);
    assert_eq!(calls.load(Ordering::Relaxed), 2, "the third open is served from the cache");
    let d = g.payload_demand(r);
    assert_eq!((d.metadata_events, d.opens, d.cache_hits, d.failures, d.bytes_materialized), (1, 3, 1, 1, good.len() as u64));
    assert_eq!(g.payload_opens(id).len(), 2);
}
