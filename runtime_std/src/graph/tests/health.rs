//! Node health (`Graph::node_health`, read by the `health` query): an operator's own health
//! joined with its input mailboxes' and its failures.

use manyfold_core::mailbox::Overflow;

use super::*;
use crate::graph::ops::{Capacitor, RateLimit, Resequence};

fn health_of(g: &Graph, name: &str) -> Health {
    g.node_health().into_iter().find(|n| n.name == name).map(|n| n.health).unwrap()
}

fn at(g: &mut Graph, p: ProducerIdx, r: RouteIdx, value: f64, event_time_us: i64) {
    g.publish(p, r, Value::Float(value), &PublishOptions { event_time_us: Some(event_time_us), ..PublishOptions::default() }).unwrap();
}

/// A rejecting capacitor is healthy until full, then blocked with why; releasing one makes it
/// healthy again (a refusal is the producer's to handle, not a loss); a dropping one is degraded.
#[test]
fn a_full_refusing_capacitor_is_blocked_and_a_dropping_one_degraded() {
    let mut g = Graph::new_virtual();
    let input = floats(&mut g, "sensor", "in");
    let out = floats(&mut g, "buf", "out");
    g.add_node("buf", Box::new(Capacitor::new(2, Overflow::Reject).unwrap()), &[(input, EdgePolicy::INLINE)], &[out]).unwrap();
    let p = g.producer("sensor").unwrap();
    publish(&mut g, p, input, 1.0);
    assert_eq!(health_of(&g, "buf"), Health::healthy());
    publish(&mut g, p, input, 2.0);
    assert!(g.publish(p, input, Value::Float(3.0), &PublishOptions::default()).is_err());
    let h = health_of(&g, "buf");
    assert_eq!(h.state, HealthState::Blocked);
    assert_eq!(h.why, ["full (2 of 2) and refusing new values until some are released (overflow reject); refused 1 so far"]);
    g.demand(g.node_index("buf").unwrap(), Some(1)).unwrap();
    assert_eq!(health_of(&g, "buf"), Health::healthy(), "no longer full, nothing lost");

    let other = floats(&mut g, "sensor", "other");
    let dropping = floats(&mut g, "drop", "out");
    g.add_node("drop", Box::new(Capacitor::new(1, Overflow::DropOldest).unwrap()), &[(other, EdgePolicy::INLINE)], &[dropping]).unwrap();
    publish(&mut g, p, other, 4.0);
    publish(&mut g, p, other, 5.0);
    let h = health_of(&g, "drop");
    assert_eq!((h.state, h.why), (HealthState::Degraded, vec!["dropped 1 values when full (overflow drop_oldest)".to_string()]));
}

/// A resequencer dropping late values and a rate limiter dropping over its rate are degraded,
/// with the count.
#[test]
fn late_and_rate_limited_drops_degrade() {
    let mut g = Graph::new_virtual();
    let input = floats(&mut g, "sensor", "in");
    let ordered = floats(&mut g, "reseq", "out");
    let limited = floats(&mut g, "limit", "out");
    g.add_node("reseq", Box::new(Resequence::new(0, 8).unwrap()), &[(input, EdgePolicy::INLINE)], &[ordered]).unwrap();
    g.add_node("limit", Box::new(RateLimit::new(1, 1_000_000).unwrap()), &[(input, EdgePolicy::INLINE)], &[limited]).unwrap();
    let p = g.producer("sensor").unwrap();
    at(&mut g, p, input, 1.0, 100);
    assert_eq!((health_of(&g, "reseq"), health_of(&g, "limit")), (Health::healthy(), Health::healthy()));
    at(&mut g, p, input, 2.0, 50);
    at(&mut g, p, input, 3.0, 60);
    let reseq = health_of(&g, "reseq");
    assert_eq!((reseq.state, reseq.why), (HealthState::Degraded, vec!["dropped 2 late values (older than what it had already emitted)".to_string()]));
    let limit = health_of(&g, "limit");
    assert_eq!((limit.state, limit.why), (HealthState::Degraded, vec!["dropped 2 values over its rate of 1 per 1000000 us".to_string()]));
}

/// A node behind a full blocking mailbox is blocked, and behind a dropping one degraded, even
/// when its operator has nothing to say; the worst reason wins and every reason is kept.
#[test]
fn input_mailboxes_join_the_nodes_health() {
    let mut g = Graph::new_virtual();
    let input = floats(&mut g, "sensor", "in");
    let other = floats(&mut g, "sensor", "other");
    let out = floats(&mut g, "slow", "out");
    let out2 = floats(&mut g, "lossy", "out");
    g.add_node("slow", Box::new(Burst { copies: 1 }), &[(input, mailbox(1, Overflow::Block))], &[out]).unwrap();
    g.add_node("lossy", Box::new(Burst { copies: 1 }), &[(other, mailbox(1, Overflow::DropNewest))], &[out2]).unwrap();
    let p = g.producer("sensor").unwrap();
    publish(&mut g, p, input, 1.0);
    publish(&mut g, p, other, 1.0);
    let slow = health_of(&g, "slow");
    assert_eq!(slow.state, HealthState::Blocked);
    assert!(slow.why[0].starts_with("input mailbox ") && slow.why[0].ends_with(" is full (1 of 1) and refuses new values (overflow block)"), "{slow:?}");
    assert_eq!(health_of(&g, "lossy"), Health::healthy(), "full but dropping newest: nothing lost yet");
    assert!(g.publish(p, input, Value::Float(2.0), &PublishOptions::default()).is_err(), "the blocking mailbox refuses the publish");
    g.run_until_idle(100);
    assert_eq!(health_of(&g, "slow"), Health::healthy(), "drained");
    publish(&mut g, p, other, 3.0);
    publish(&mut g, p, other, 4.0);
    let lossy = health_of(&g, "lossy");
    assert_eq!(lossy.state, HealthState::Degraded);
    assert!(lossy.why.iter().any(|w| w.ends_with("dropped 1 values when full (overflow drop_newest)")), "{lossy:?}");
}
