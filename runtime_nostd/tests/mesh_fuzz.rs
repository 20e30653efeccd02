//! Property tests of the node link on arbitrary bytes (proptest; raise the case count with
//! PROPTEST_CASES): no bytes make the message decoder, the seal check or a session panic, and
//! every message that decodes re-encodes to exactly its bytes (one encoding per message).

mod mesh_cable;

use manyfold_core::mesh::msg::{Msg, Writer};
use manyfold_core::mesh::{auth, Caps};
use mesh_cable::*;
use proptest::prelude::*;

/// Bytes that start like node-link messages more often than chance would.
fn body() -> impl Strategy<Value = Vec<u8>> {
    (0xbfu8..=0xd0, proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(k, mut rest)| {
        rest.insert(0, k);
        rest
    })
}

/// Sequence numbers at the top of their range overflow nothing: link seqs of 2^63 and more are
/// refused, a route seq of 2^64 - 1 is delivered.
#[test]
fn sequence_numbers_at_their_limits_do_not_overflow() {
    let routes = routes();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/mesh.json")).unwrap()).unwrap();
    let case = v["messages"].as_array().unwrap().iter().find(|c| c["name"] == "events_big_seqs").unwrap();
    let hex = case["hex"].as_str().unwrap();
    let mut bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    for caps in [Caps::NONE, Caps::ORDERED, Caps::RELIABLE, Caps::RELIABLE.union(Caps::ORDERED)] {
        let mut p = Pair::new(&config(true, caps, &routes), &config(false, caps, &routes), 1, Faults::default());
        p.connect();
        p.run(1_000, 100);
        p.a.send_event(p.now, &event(3, u64::MAX, &[0; 8], &[])).unwrap();
        p.run(1_000, 100);
        bytes[1..5].copy_from_slice(&session_tag(&p));
        p.b.receive(p.now, &bytes, &mut |_| {});
        p.run(100_000, 1_000);
        assert_eq!(p.b.counters().events_rx, 1, "{caps:?}");
    }
}

/// The session tag `a` chose (from its first hello).
fn session_tag(p: &Pair) -> Vec<u8> {
    p.sent_a[0][2..6].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    /// The decoder never panics, and what it accepts re-encodes to the same bytes.
    #[test]
    fn decoder_never_panics_and_round_trips(bytes in prop_oneof![body(), proptest::collection::vec(any::<u8>(), 0..64)]) {
        if let Ok(m) = Msg::decode(&bytes) {
            let mut out = vec![0u8; bytes.len() + 16];
            let mut w = Writer::new(&mut out);
            let n = m.encode(&mut w).unwrap();
            prop_assert_eq!(&out[..n], &bytes[..]);
            if let Msg::Events { events, .. } = m {
                prop_assert!(events.iter().count() >= 1);
            }
        }
        let _ = auth::open(&[1; 32], 0, &bytes);
        let _ = auth::split(&bytes);
    }

    /// A session, up or not, keyed or not, takes any bytes without panicking.
    #[test]
    fn sessions_never_panic(bodies in proptest::collection::vec(body(), 1..8), keyed in any::<bool>()) {
        let routes = routes();
        let caps = Caps::RELIABLE.union(Caps::ORDERED).union(Caps::LAZY);
        let mut ca = config(true, caps, &routes);
        let mut cb = config(false, caps, &routes);
        if keyed {
            ca.key = Some([3; 32]);
            cb.key = Some([3; 32]);
        }
        let mut p = Pair::new(&ca, &cb, 1, Faults::default());
        p.connect();
        p.run(1_000, 100);
        for b in &bodies {
            p.b.receive(p.now, b, &mut |_| {});
            p.a.receive(p.now, b, &mut |_| {});
            p.run(200, 100);
        }
        let fresh = S::new(&cb);
        let mut fresh = fresh;
        for b in &bodies {
            fresh.receive(0, b, &mut |_| {});
            let mut out = [0u8; 1500];
            while fresh.poll_transmit(0, &mut out).is_some() {}
        }
    }
}
