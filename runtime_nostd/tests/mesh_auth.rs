//! Keyed node links: every frame sealed (counter + truncated HMAC-SHA-256); forged, replayed,
//! reflected and unsealed frames are refused and counted, and a key on one end only is refused
//! as `key_missing` on both.

mod mesh_cable;

use manyfold_core::mesh::auth::{self, ReplayWindow};
use manyfold_core::mesh::{Caps, LinkConfig, LinkState, Refusal, RouteDecl};
use mesh_cable::*;

const KEY: [u8; 32] = [0x5a; 32];

fn keyed<'a>(initiator: bool, routes: &'a [RouteDecl], key: Option<[u8; 32]>) -> LinkConfig<'a> {
    LinkConfig { key, ..config(initiator, Caps::RELIABLE.union(Caps::ORDERED).union(Caps::AUTHENTICATED), routes) }
}

fn up_pair(routes: &[RouteDecl]) -> Pair {
    let mut p = Pair::new(&keyed(true, routes, Some(KEY)), &keyed(false, routes, Some(KEY)), 1, Faults::default());
    p.connect();
    p.run(1_000, 100);
    p.a.send_event(p.now, &event(0, 1, &[1; 8], &[])).unwrap();
    p.run(1_000, 100);
    p
}

fn events_message(p: &Pair) -> Vec<u8> {
    p.sent_a.iter().find(|b| b.len() > 40 && b[auth::MESSAGE_AT] == 0xc3).expect("an events message").clone()
}

/// A keyed link provides AUTHENTICATED, and its events cross through every fault (a duplicated
/// datagram is refused as a replay).
#[test]
fn a_keyed_link_is_authenticated() {
    let routes = routes();
    let faults = Faults { drop: 0.1, dup: 0.1, reorder: 0.1, corrupt: 0.05, delay_us: 200 };
    let mut p = Pair::new(&keyed(true, &routes, Some(KEY)), &keyed(false, &routes, Some(KEY)), 3, faults);
    p.connect();
    p.run(2_000_000, 100);
    assert!(matches!(p.got_b[0], Rec::Up { provided, missing: Caps::NONE, .. } if provided.contains(Caps::AUTHENTICATED)));
    for s in 1..=50 {
        p.a.send_event(p.now, &event(0, s, &[2; 8], &[])).unwrap();
        p.run(1_000, 100);
    }
    p.run(2_000_000, 1_000);
    assert_eq!(Pair::events(&p.got_b), (1..=50).map(|s| (0, s, false)).collect::<Vec<_>>());
    assert!(p.sent_a.iter().chain(&p.sent_b).all(|b| b[0] == 0xcf), "every frame is sealed");
    let c = p.b.counters();
    assert_eq!((c.frames_bad_mac, c.frames_unkeyed), (0, 0), "the CRC catches line corruption first");
    assert!(c.frames_replayed > 0, "a datagram the line duplicated is a replay");
}

/// A frame with one byte changed (its CRC made good again) fails the MAC: refused, counted,
/// nothing delivered. So does a frame reflected back to its sender.
#[test]
fn forged_and_reflected_frames_are_refused() {
    let routes = routes();
    let mut p = up_pair(&routes);
    let n = p.got_b.len();
    let body = events_message(&p);
    for i in [1, auth::MESSAGE_AT + 6, body.len() - 1] {
        let mut forged = body.clone();
        forged[i] ^= 0x10;
        p.b.receive(p.now, &forged, &mut |_| panic!("a forged frame was delivered"));
    }
    assert_eq!(p.b.counters().frames_bad_mac, 3);
    p.a.receive(p.now, &body, &mut |_| panic!("a reflected frame was delivered"));
    assert_eq!(p.a.counters().frames_bad_mac, 1);
    assert_eq!(p.got_b.len(), n);
}

/// A frame received a second time is refused by the replay window, before any dedup.
#[test]
fn replayed_frames_are_refused() {
    let routes = routes();
    let mut p = up_pair(&routes);
    let body = events_message(&p);
    p.b.receive(p.now, &body, &mut |_| panic!("a replayed frame was delivered"));
    let c = p.b.counters();
    assert_eq!((c.frames_replayed, c.dup_dropped), (1, 0));
}

/// An unsealed message on a keyed link (the right session tag and all) is refused and counted.
#[test]
fn unkeyed_frames_are_refused() {
    let routes = routes();
    let mut p = up_pair(&routes);
    let body = events_message(&p);
    let bare = &body[auth::MESSAGE_AT..body.len() - auth::MAC_LEN];
    p.b.receive(p.now, bare, &mut |_| panic!("an unsealed frame was delivered"));
    assert_eq!(p.b.counters().frames_unkeyed, 1);
}

/// A key on one end only: the handshake is refused `key_missing`, and both ends say so.
#[test]
fn a_key_on_one_end_only_is_refused_on_both() {
    let routes = routes();
    for (ka, kb) in [(Some(KEY), None), (None, Some(KEY))] {
        let mut p = Pair::new(&keyed(true, &routes, ka), &keyed(false, &routes, kb), 1, Faults::default());
        p.connect();
        p.run(2_000, 100);
        assert_eq!(p.got_a, vec![Rec::Refused(Refusal::KeyMissing)], "initiator keyed {}", ka.is_some());
        assert_eq!(p.got_b, vec![Rec::Refused(Refusal::KeyMissing)], "responder keyed {}", kb.is_some());
    }
}

/// Two different keys: no frame of either end is ever accepted by the other.
#[test]
fn different_keys_never_talk() {
    let routes = routes();
    let mut p = Pair::new(&keyed(true, &routes, Some(KEY)), &keyed(false, &routes, Some([1; 32])), 1, Faults::default());
    p.connect();
    p.run(2_000_000, 10_000);
    assert_eq!((p.a.state(), p.b.state()), (LinkState::Connecting, LinkState::Connecting));
    assert!(p.b.counters().frames_bad_mac >= 3);
    assert!(p.got_a.is_empty() && p.got_b.is_empty());
}

/// A hello of an older incarnation replayed after the peer restarted is refused as a replay,
/// and does not end the new incarnation's session.
#[test]
fn an_old_incarnation_hello_is_a_replay() {
    let routes = routes();
    let mut p = up_pair(&routes);
    let old_hello = p.sent_a[0].clone();
    let ca = keyed(true, &routes, Some(KEY));
    p.a = S::new(&LinkConfig { incarnation: 1_001, ..ca });
    p.a.connect(p.now);
    p.run(10_000, 100);
    assert!(matches!(p.got_b.last(), Some(Rec::Up { peer_incarnation: 1_001, .. })));
    p.b.receive(p.now, &old_hello, &mut |d| panic!("{d:?}"));
    assert_eq!(p.b.counters().frames_replayed, 1);
    assert_eq!(p.b.state(), LinkState::Up);
}

/// The replay window: counters may come out of order within 64 of the highest, each once.
#[test]
fn the_replay_window_takes_each_counter_once() {
    let mut w = ReplayWindow::new();
    assert!(!w.fresh(0));
    for c in [5, 3, 70, 7, 69] {
        assert!(w.fresh(c), "{c}");
        w.accept(c);
    }
    for c in [5, 3, 70, 7, 69] {
        assert!(!w.fresh(c), "{c} again");
    }
    assert!(w.fresh(8) && w.fresh(71), "new ones");
    assert!(!w.fresh(6) && !w.fresh(1), "64 and more below the highest");
}
