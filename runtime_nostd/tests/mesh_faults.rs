//! The node-link session between two ends over a seeded fault cable (drop, duplicate, reorder,
//! corrupt, delay), on a clock the test moves: what each capability promises holds, and every
//! loss that is allowed shows in the counters and on the next event of its route.

mod mesh_cable;

use manyfold_core::mesh::{Caps, DownReason, LinkState, MeshError, RouteDecl};
use mesh_cable::*;

const ROUTE: u32 = 3;

fn one_route() -> Vec<RouteDecl> {
    vec![RouteDecl { route: ROUTE, schema_hash: [2; 32] }]
}

fn nasty() -> Faults {
    Faults { drop: 0.2, dup: 0.1, reorder: 0.2, corrupt: 0.1, delay_us: 300 }
}

/// Connects, then sends events 1..=n on one route (route seq = n, payload = seq), stepping
/// every 100 µs and retrying when the window is full, then lets the link settle.
fn stream(caps: Caps, faults: Faults, seed: u64, n: u64) -> Pair {
    let routes = one_route();
    let mut p = Pair::new(&config(true, caps, &routes), &config(false, caps, &routes), seed, faults);
    p.connect();
    let mut t = 0;
    while p.a.state() != LinkState::Up || p.b.state() != LinkState::Up {
        p.run(100, 100);
        t += 1;
        assert!(t < 100_000, "no session");
    }
    let mut next = 1;
    let mut steps = 0;
    while next <= n {
        loop {
            let payload = next.to_le_bytes();
            match p.a.send_event(p.now, &event(ROUTE, next, &payload, &[])) {
                Ok(_) => next += 1,
                Err(MeshError::SendWindowFull) => break,
                Err(e) => panic!("{e}"),
            }
            if next > n {
                break;
            }
        }
        p.run(100, 100);
        steps += 1;
        assert!(steps < 1_000_000, "stuck at {next}");
    }
    p.run(3_000_000, 100);
    p
}

fn check_payloads(p: &Pair) {
    for r in &p.got_b {
        if let Rec::Event { seq, payload, .. } = r {
            assert_eq!(*payload, Payload::Inline(seq.to_le_bytes().to_vec()), "event {seq} arrived changed");
        }
    }
}

/// RELIABLE + ORDERED on a transport without either: every event arrives exactly once, in
/// order, none flagged, through drops, duplicates, reordering, corruption and delay.
#[test]
fn reliable_ordered_delivers_every_event_once_in_order() {
    for seed in 1..=4 {
        let p = stream(Caps::RELIABLE.union(Caps::ORDERED), nasty(), seed, 3_000);
        let got = Pair::events(&p.got_b);
        let want: Vec<_> = (1..=3_000).map(|s| (ROUTE, s, false)).collect();
        assert_eq!(got, want, "seed {seed}");
        check_payloads(&p);
        let c = p.a.counters();
        assert!(c.retransmits > 0 && p.b.counters().dup_dropped > 0, "the faults were exercised");
        assert_eq!((p.a.unacked(), p.b.counters().gaps), (0, 0));
        assert!(p.bad_frames > 0, "corrupt frames reached the frame layer");
    }
}

/// RELIABLE without ORDERED: every event arrives exactly once (in any order).
#[test]
fn reliable_unordered_delivers_every_event_once() {
    let p = stream(Caps::RELIABLE, nasty(), 9, 2_000);
    let mut seqs: Vec<_> = Pair::events(&p.got_b).into_iter().map(|(_, s, _)| s).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=2_000).collect::<Vec<_>>());
    check_payloads(&p);
}

/// ORDERED without RELIABLE: events arrive in order, at most once; every loss is counted as a
/// gap, and exactly the events after a loss are flagged.
#[test]
fn ordered_unreliable_counts_and_flags_every_loss() {
    for seed in 1..=4 {
        let p = stream(Caps::ORDERED, nasty(), seed, 3_000);
        let got = Pair::events(&p.got_b);
        let mut prev = 0;
        for &(_, seq, gap) in &got {
            assert!(seq > prev, "in order, once");
            assert_eq!(gap, seq != prev + 1, "event {seq} after {prev}");
            prev = seq;
        }
        let lost = 3_000 - got.len() as u64;
        assert!(lost > 0);
        assert_eq!(p.b.counters().gaps, lost, "seed {seed}");
        assert_eq!(p.a.counters().retransmits, 0, "a link without RELIABLE does not pay for it");
        check_payloads(&p);
    }
}

/// Neither: no event is delivered twice, every loss is counted, and the first event delivered
/// after each lost one is flagged.
#[test]
fn unordered_unreliable_counts_and_flags_every_loss() {
    let p = stream(Caps::NONE, nasty(), 5, 3_000);
    let got = Pair::events(&p.got_b);
    let mut seen = std::collections::BTreeSet::new();
    for &(_, seq, _) in &got {
        assert!(seen.insert(seq), "{seq} twice");
    }
    let missing: Vec<u64> = (1..=3_000).filter(|s| !seen.contains(s)).collect();
    assert_eq!(p.b.counters().gaps, missing.len() as u64);
    for m in missing {
        if let Some(&(_, seq, gap)) = got.iter().find(|(_, s, _)| *s > m) {
            assert!(gap, "the first event after lost {m} ({seq}) is flagged");
        }
    }
    check_payloads(&p);
}

/// A corrupt frame is never accepted: with every third datagram corrupted, each event that
/// arrives is the one that was sent (the frame layer's CRC, then the decoder).
#[test]
fn corrupt_frames_are_never_accepted() {
    let faults = Faults { corrupt: 0.35, ..Faults::default() };
    let p = stream(Caps::RELIABLE.union(Caps::ORDERED), faults, 11, 1_000);
    assert!(p.ab.corrupted + p.ba.corrupted > 20, "{} corrupted", p.ab.corrupted + p.ba.corrupted);
    assert_eq!(Pair::events(&p.got_b).len(), 1_000);
    check_payloads(&p);
}

/// The send window is bounded: once `WINDOW` events wait for an ack, `send_event` says
/// `SendWindowFull` (counted) and nothing is dropped silently; acks open it again.
#[test]
fn a_full_window_is_returned_to_the_caller() {
    let routes = one_route();
    let caps = Caps::RELIABLE;
    let mut p = Pair::new(&config(true, caps, &routes), &config(false, caps, &routes), 1, Faults::default());
    p.connect();
    p.run(1_000, 100);
    p.ab.cut = true;
    for s in 1..=64 {
        p.a.send_event(p.now, &event(ROUTE, s, &[0; 8], &[])).unwrap();
    }
    assert_eq!(p.a.send_event(p.now, &event(ROUTE, 65, &[0; 8], &[])), Err(MeshError::SendWindowFull));
    p.run(10_000, 100);
    assert_eq!(p.a.send_event(p.now, &event(ROUTE, 65, &[0; 8], &[])), Err(MeshError::SendWindowFull));
    assert_eq!((p.a.counters().window_full, p.a.unacked()), (2, 64));
    p.ab.cut = false;
    p.run(3_000_000, 1_000);
    assert_eq!(p.a.unacked(), 0);
    assert_eq!(p.a.send_event(p.now, &event(ROUTE, 65, &[0; 8], &[])), Ok(65));
    assert_eq!(Pair::events(&p.got_b).len(), 64);
}

/// A lease of silence takes both ends down (`LeaseExpired`); the reconnection flags exactly the
/// route that lost an event.
#[test]
fn lease_expiry_and_reconnection() {
    let routes = routes();
    let caps = Caps::RELIABLE.union(Caps::ORDERED);
    let mut p = Pair::new(&config(true, caps, &routes), &config(false, caps, &routes), 1, Faults::default());
    p.connect();
    p.run(1_000, 100);
    p.a.send_event(p.now, &event(0, 1, &[0; 8], &[])).unwrap();
    p.run(1_000, 100);
    p.ab.cut = true;
    p.ba.cut = true;
    p.a.send_event(p.now, &event(0, 2, &[0; 8], &[])).unwrap();
    p.run(9_000_000, 10_000);
    assert_eq!((p.a.state(), p.b.state()), (LinkState::Up, LinkState::Up), "within the lease");
    p.run(1_100_000, 10_000);
    assert_eq!((p.a.state(), p.b.state()), (LinkState::Down(DownReason::LeaseExpired), LinkState::Down(DownReason::LeaseExpired)));
    assert_eq!(p.got_a.last(), Some(&Rec::Down(DownReason::LeaseExpired)));
    assert_eq!(p.got_b.last(), Some(&Rec::Down(DownReason::LeaseExpired)));
    p.ab.cut = false;
    p.ba.cut = false;
    p.run(1_000_000, 10_000);
    assert_eq!((p.a.state(), p.b.state()), (LinkState::Up, LinkState::Up));
    assert!(matches!(p.got_b.last(), Some(Rec::Up { .. })));
    assert_eq!(p.a.counters().events_lost, 1);
    p.a.send_event(p.now, &event(0, 3, &[0; 8], &[])).unwrap();
    p.a.send_event(p.now, &event(0, 4, &[0; 8], &[])).unwrap();
    p.a.send_event(p.now, &event(3, 1, &[0; 8], &[])).unwrap();
    p.run(10_000, 100);
    assert_eq!(Pair::events(&p.got_b), vec![(0, 1, false), (0, 3, true), (0, 4, false), (3, 1, false)]);
}

/// A restarted peer, either end, is a new session reported as `PeerRestarted`, well within a
/// lease (a restarted responder answers the old session `no_session`).
#[test]
fn a_restarted_peer_is_detected() {
    let routes = routes();
    let caps = Caps::RELIABLE.union(Caps::ORDERED);
    let cb = config(false, caps, &routes);
    let mut p = Pair::new(&config(true, caps, &routes), &cb, 1, Faults::default());
    p.connect();
    p.run(1_000, 100);
    // the responder restarts
    p.b = S::new(&manyfold_core::mesh::LinkConfig { incarnation: 2_001, ..cb });
    p.b.connect(p.now);
    p.a.send_event(p.now, &event(0, 1, &[0; 8], &[])).unwrap();
    p.run(1_000_000, 1_000);
    assert!(p.got_a.contains(&Rec::Down(DownReason::PeerRestarted { incarnation: 2_001 })), "{:?}", p.got_a);
    let n = p.got_a.len();
    assert_eq!(p.got_a[n - 2], Rec::Down(DownReason::PeerRestarted { incarnation: 2_001 }));
    assert!(matches!(p.got_a[n - 1], Rec::Up { peer_incarnation: 2_001, .. }));
    assert_eq!((p.a.counters().sessions, p.b.counters().sessions), (2, 1), "no churn after the restart");
    assert!(p.now < 2_000_000);
    // the initiator restarts
    let ca = config(true, caps, &routes);
    p.a = S::new(&manyfold_core::mesh::LinkConfig { incarnation: 1_001, ..ca });
    p.a.connect(p.now);
    p.run(100_000, 1_000);
    assert!(p.got_b.contains(&Rec::Down(DownReason::PeerRestarted { incarnation: 1_001 })), "{:?}", p.got_b);
    assert!(matches!(p.got_b.last(), Some(Rec::Up { peer_incarnation: 1_001, .. })));
    assert_eq!(p.b.counters().peer_restarts, 1);
}
