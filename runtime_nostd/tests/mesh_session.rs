//! The node-link session over a clean in-process cable: handshake, capabilities, batched
//! events with their metadata, keepalives, bye, refusals by name on both ends, lazy payloads.

mod mesh_cable;

use manyfold_core::mesh::{Caps, DownReason, LineageRef, LinkState, Refusal, RouteDecl};
use mesh_cable::*;

/// A hello and a welcome open the session on both ends, with the peer's identity and the
/// contract's provided/missing capabilities (durable is never provided).
#[test]
fn handshake_opens_both_ends() {
    let routes = routes();
    let caps = Caps::ORDERED.union(Caps::RELIABLE).union(Caps::DURABLE).union(Caps::AUTHENTICATED).union(Caps::LAZY);
    let mut p = Pair::new(&config(true, caps, &routes), &config(false, caps, &routes), 1, Faults::default());
    p.connect();
    p.run(1_000, 100);
    let provided = Caps::ORDERED.union(Caps::RELIABLE).union(Caps::LAZY);
    let missing = Caps::DURABLE.union(Caps::AUTHENTICATED);
    assert_eq!(p.got_a, vec![Rec::Up { peer_node: 2, peer_name: "b".into(), peer_incarnation: 2_000, provided, missing }]);
    assert_eq!(p.got_b, vec![Rec::Up { peer_node: 1, peer_name: "a".into(), peer_incarnation: 1_000, provided, missing }]);
    assert_eq!((p.a.state(), p.b.state()), (LinkState::Up, LinkState::Up));
    assert_eq!(missing.missing_taints().iter().map(|t| t.name()).collect::<Vec<_>>(), ["det_nonreplayable", "trust_unverified"]);
}

/// Events cross with every field (route, seq, time, taints, parents, inline and lazy
/// payloads), many to one message.
#[test]
fn events_cross_batched_with_their_metadata() {
    let routes = routes();
    let caps = Caps::ORDERED.union(Caps::RELIABLE);
    let mut p = Pair::new(&config(true, caps, &routes), &config(false, caps, &routes), 2, Faults::default());
    p.connect();
    p.run(1_000, 100);
    let parents = [LineageRef { node: 1, route: 0, seq: 9 }, LineageRef { node: 7, route: 200, seq: u64::MAX }];
    for seq in 1..=40u64 {
        let payload = seq.to_le_bytes();
        let mut ev = event(if seq % 2 == 0 { 3 } else { 200 }, seq.div_ceil(2), &payload, &parents[..(seq % 3) as usize]);
        ev.taints = (seq as u32) << 3;
        ev.domain = (seq % 2) as u16;
        p.a.send_event(p.now, &ev).unwrap();
    }
    let messages = p.a.counters().messages_tx;
    p.run(1_000, 100);
    assert!(p.a.counters().messages_tx - messages <= 3, "40 events go in one message (and an ack or keepalive)");
    let got: Vec<_> = p.got_b.iter().filter(|r| matches!(r, Rec::Event { .. })).collect();
    assert_eq!(got.len(), 40);
    for (i, r) in got.iter().enumerate() {
        let seq = i as u64 + 1;
        let Rec::Event { route, seq: s, link_seq, gap, time_us, taints, parents: ps, payload } = r else { unreachable!() };
        assert_eq!((*route, *s, *link_seq, *gap), (if seq % 2 == 0 { 3 } else { 200 }, seq.div_ceil(2), seq, false));
        assert_eq!(*time_us, 1_700_000_000_000_000 + (seq as i64 + 1) / 2 * 1000);
        assert_eq!(*taints, (seq as u32) << 3);
        assert_eq!(ps.as_slice(), &parents[..(seq % 3) as usize]);
        assert_eq!(*payload, Payload::Inline(seq.to_le_bytes().to_vec()));
    }
    assert_eq!(p.a.unacked(), 0);
}

/// An idle session stays up on keepalives (one per quarter lease) and a bye ends it on both
/// ends: `Down(Closed)` here, `Down(PeerBye)` there.
#[test]
fn keepalives_hold_the_lease_and_bye_ends_it() {
    let routes = routes();
    let mut p = Pair::new(&config(true, Caps::NONE, &routes), &config(false, Caps::NONE, &routes), 3, Faults::default());
    p.connect();
    p.run(60_000_000, 50_000);
    assert_eq!((p.a.state(), p.b.state()), (LinkState::Up, LinkState::Up));
    assert!((20..=30).contains(&p.a.counters().keepalives_tx), "{}", p.a.counters().keepalives_tx);
    p.a.bye(p.now);
    p.run(1_000, 100);
    assert_eq!(p.a.state(), LinkState::Down(DownReason::Closed));
    assert_eq!(p.got_b.last(), Some(&Rec::Down(DownReason::PeerBye)));
}

fn refused_both_ends(a_routes: &[RouteDecl], b_routes: &[RouteDecl], tweak: impl Fn(&mut manyfold_core::mesh::LinkConfig<'_>), want: Refusal) {
    let mut a = config(true, Caps::ORDERED, a_routes);
    tweak(&mut a);
    let b = config(false, Caps::ORDERED, b_routes);
    let mut p = Pair::new(&a, &b, 4, Faults::default());
    p.connect();
    p.run(2_000, 100);
    p.run(25_000_000, 100_000);
    assert!(p.a.counters().hellos_tx >= 3, "the initiator says hello again every lease");
    assert_eq!(p.got_a, vec![Rec::Refused(want)], "initiator");
    assert_eq!(p.got_b, vec![Rec::Refused(want)], "responder");
    assert_eq!((p.a.state(), p.b.state()), (LinkState::Refused(want), LinkState::Refused(want)));
    assert_eq!(p.a.send_event(p.now, &event(0, 1, &[0; 8], &[])), Err(manyfold_core::mesh::MeshError::SendNotUp));
}

/// A manifest mismatch is refused at the hello, named on both ends.
#[test]
fn manifest_mismatch_is_refused_on_both_ends() {
    let r = routes();
    refused_both_ends(&r, &r, |c| c.manifest_id = [8; 32], Refusal::ManifestMismatch);
}

/// A crossing route whose schema hash differs is refused with the route named, on both ends.
#[test]
fn schema_mismatch_is_refused_naming_the_route() {
    let r = routes();
    let mut other = routes();
    other[1].schema_hash[3] ^= 1;
    refused_both_ends(&other, &r, |_| {}, Refusal::SchemaMismatch { route: 3 });
}

/// A route one end declares and the other not, different capabilities, another link name:
/// each refused with its name.
#[test]
fn other_mismatches_are_refused_by_name() {
    let r = routes();
    refused_both_ends(&r[..2], &r, |_| {}, Refusal::RouteMismatch { route: 200 });
    refused_both_ends(&r, &r, |c| c.requested = Caps::RELIABLE, Refusal::CapabilitiesDiffer(Caps::ORDERED.union(Caps::RELIABLE)));
    refused_both_ends(&r, &r, |c| c.link = "ac", Refusal::LinkMismatch);
}

/// A lazy payload crosses as its metadata value, length and digest; the receiver fetches it
/// piece by piece (each reply as much as fits one message, from the offset asked for), or is
/// told `not_held` when the sender no longer holds it (docs/wire.md 4.10).
#[test]
fn lazy_payload_is_fetched_on_demand() {
    use manyfold_core::mesh::{FetchRefused, PayloadOut};
    let routes = routes();
    let caps = Caps::LAZY.union(Caps::RELIABLE);
    let mut p = Pair::new(&config(true, caps, &routes), &config(false, caps, &routes), 5, Faults::default());
    p.connect();
    p.run(1_000, 100);
    let mut ev = event(3, 1, &[0; 8], &[]);
    ev.payload = PayloadOut::Lazy { meta: &[0xa1, 0x61, 0x77, 0x18, 0x40], len: 300, digest: [9; 32] };
    p.a.send_event(p.now, &ev).unwrap();
    p.run(1_000, 100);
    let expect = Payload::Lazy(vec![0xa1, 0x61, 0x77, 0x18, 0x40], 300, [9; 32]);
    assert!(matches!(p.got_b.last(), Some(Rec::Event { payload, .. }) if *payload == expect));
    p.b.fetch(p.now, 3, 1, 0).unwrap();
    p.b.fetch(p.now, 3, 2, 0).unwrap();
    p.run(1_000, 100);
    assert_eq!(&p.got_a[1..], &[Rec::FetchRequest { route: 3, seq: 1, offset: 0 }, Rec::FetchRequest { route: 3, seq: 2, offset: 0 }]);
    assert_eq!(p.a.counters().fetches_rx, 2);
    p.a.answer_fetch(p.now, 3, 1, 0, Ok(&[5; 300])).unwrap();
    p.a.answer_fetch(p.now, 3, 2, 0, Err(FetchRefused::NotHeld)).unwrap();
    p.run(1_000, 100);
    let n = p.got_b.len();
    assert_eq!(&p.got_b[n - 2..], &[
        Rec::FetchReply { route: 3, seq: 1, offset: 0, payload: Ok((300, vec![5; 300])) },
        Rec::FetchReply { route: 3, seq: 2, offset: 0, payload: Err(FetchRefused::NotHeld) },
    ]);
    // A payload larger than a message comes in pieces, each as large as fits.
    let big: Vec<u8> = (0..5_000u32).map(|i| i as u8).collect();
    let mut got = Vec::new();
    // Bounded: 5 000 bytes in pieces of over 1 000.
    for _ in 0..8 {
        p.b.fetch(p.now, 3, 4, got.len() as u64).unwrap();
        p.run(1_000, 100);
        let Some(Rec::FetchRequest { offset, .. }) = p.got_a.last().cloned() else { panic!("no fetch") };
        p.a.answer_fetch(p.now, 3, 4, offset, Ok(&big)).unwrap();
        p.run(1_000, 100);
        let Some(Rec::FetchReply { offset: at, payload: Ok((total, piece)), .. }) = p.got_b.last().cloned() else { panic!("no piece") };
        assert_eq!((at, total), (got.len() as u64, 5_000));
        assert!(piece.len() > 1_000 || got.len() + piece.len() == 5_000, "{}", piece.len());
        assert!(piece.len() <= p.a.fetch_piece_max(3, 4, at, 5_000));
        got.extend_from_slice(&piece);
        if got.len() == big.len() {
            break;
        }
    }
    assert_eq!(got, big);
    // An offset beyond the payload is not held.
    p.a.answer_fetch(p.now, 3, 4, 5_001, Ok(&big)).unwrap();
    p.run(1_000, 100);
    assert_eq!(p.got_b.last(), Some(&Rec::FetchReply { route: 3, seq: 4, offset: 5_001, payload: Err(FetchRefused::NotHeld) }));
    let mut p2 = Pair::new(&config(true, Caps::NONE, &routes), &config(false, Caps::NONE, &routes), 5, Faults::default());
    p2.connect();
    p2.run(1_000, 100);
    assert_eq!(p2.b.fetch(p2.now, 3, 1, 0), Err(manyfold_core::mesh::MeshError::FetchUnsupported));
}

/// The hello's bound (docs/wire.md 4.3): the largest hello fits an MTU of 1200, and a config
/// beyond the bounds is refused locally and sends nothing.
#[test]
fn the_largest_hello_fits_1200_bytes() {
    use manyfold_core::mesh::{session::hello_len, LinkConfig, MeshError, Session};
    let routes: Vec<_> = (0..64).map(|i| RouteDecl { route: u32::MAX - i, schema_hash: [i as u8; 32] }).collect();
    let name = "n".repeat(32);
    let cfg = LinkConfig {
        node_id: u16::MAX, node_name: &name, incarnation: u64::MAX, link: &name, lease_ms: u32::MAX, key: Some([1; 32]),
        ..config(true, Caps::ALL, &routes)
    };
    assert_eq!(hello_len(&cfg), 959, "960 when the MTU itself takes 3 bytes");
    assert_eq!(cfg.check(), Ok(()));
    assert_eq!(LinkConfig { mtu: 983, ..cfg }.check(), Err(MeshError::ConfigHelloTooLong));
    let many: Vec<_> = (0..65).map(|i| RouteDecl { route: i, schema_hash: [0; 32] }).collect();
    let mut s: Session<4, 4> = Session::new(&LinkConfig { routes: &many, ..cfg });
    assert_eq!(s.state(), LinkState::Refused(Refusal::Config(MeshError::ConfigTooManyRoutes)));
    s.connect(0);
    assert_eq!(s.poll_transmit(0, &mut [0; 1500]), None);
    let mut big: Session<4, 4> = Session::new(&cfg);
    big.connect(0);
    let mut out = [0; 1500];
    assert_eq!(big.poll_transmit(0, &mut out), Some(959 + 25));
}

/// On a transport that is ordered and reliable by itself (TCP) the session provides both
/// without paying for them: no acks, no retransmission, nothing held; every event arrives.
#[test]
fn a_reliable_transport_needs_no_acks() {
    let routes = routes();
    let caps = Caps::ORDERED.union(Caps::RELIABLE);
    let tcp = |i| manyfold_core::mesh::LinkConfig { transport: caps, ..config(i, caps, &routes) };
    let mut p = Pair::new(&tcp(true), &tcp(false), 6, Faults::default());
    p.connect();
    p.run(1_000, 100);
    assert!(matches!(p.got_b[0], Rec::Up { provided, missing: Caps::NONE, .. } if provided == caps));
    for s in 1..=200 {
        p.a.send_event(p.now, &event(0, s, &[0; 8], &[])).unwrap();
        if s % 50 == 0 {
            p.run(1_000, 100);
        }
    }
    p.run(1_000, 100);
    assert_eq!(Pair::events(&p.got_b), (1..=200).map(|s| (0, s, false)).collect::<Vec<_>>());
    let (a, b) = (p.a.counters(), p.b.counters());
    assert_eq!((b.acks_tx, a.retransmits, b.reordered, p.a.unacked()), (0, 0, 0, 0));
}

/// A hello of another version is refused by name from its first six bytes, whatever follows.
#[test]
fn another_version_is_refused_by_name() {
    let routes = routes();
    let mut b = S::new(&config(false, Caps::NONE, &routes));
    let mut got = Vec::new();
    b.receive(0, &[0xc0, 2, 1, 2, 3, 4, 0xff, 0xff], &mut |d| got.push(record(d)));
    assert_eq!(got, vec![Rec::Refused(Refusal::VersionUnsupported(1))]);
    let mut out = [0u8; 64];
    let n = b.poll_transmit(0, &mut out).unwrap();
    assert_eq!(&out[..n], &[0xc2, 1, 1, 2, 3, 4, 0xd0, 0x0f, 1, 1], "refuse version_unsupported, detail 1");
}
