//! Throughput of the node link's codec and sessions, in-process (no sockets): events of 8
//! payload bytes through a sender and a receiver session, batched to a 1200-byte MTU. The
//! node-to-node target is 250k events/s over sockets; the sessions must take a small part of it.

use manyfold_core::mesh::{Caps, Delivery, EventOut, LinkConfig, MeshError, PayloadOut, RouteDecl, Session};

type Big = Session<256, 256>;

fn run(caps: Caps, key: Option<[u8; 32]>, total: u64) -> (f64, u64) {
    let routes = [RouteDecl { route: 3, schema_hash: [2; 32] }];
    let cfg = |initiator| LinkConfig {
        node_id: 1, node_name: "n", incarnation: 1, manifest_id: [0; 32], link: "ab", requested: caps, transport: Caps::NONE,
        mtu: 1200, lease_ms: 10_000, routes: &routes, key, initiator,
    };
    let mut a: Box<Big> = Box::new(Big::new(&cfg(true)));
    let mut b: Box<Big> = Box::new(Big::new(&cfg(false)));
    a.connect(0);
    b.connect(0);
    let mut buf = [0u8; 1500];
    let mut got = 0u64;
    let mut pump = |a: &mut Big, b: &mut Big, now: i64, got: &mut u64| {
        while let Some(n) = a.poll_transmit(now, &mut buf) {
            b.receive(now, &buf[..n], &mut |d| {
                if let Delivery::Event(_) = d {
                    *got += 1;
                }
            });
        }
        while let Some(n) = b.poll_transmit(now, &mut buf) {
            a.receive(now, &buf[..n], &mut |_| {});
        }
    };
    pump(&mut a, &mut b, 0, &mut got);
    let start = std::time::Instant::now();
    let (mut seq, mut now) = (1, 0);
    while seq <= total {
        loop {
            let payload = seq.to_le_bytes();
            let ev = EventOut {
                route: 3, seq, time_us: 1_764_000_000_000_000 + seq as i64, domain: 0, taints: 0, parents: &[],
                payload: PayloadOut::Inline(&payload),
            };
            match a.send_event(now, &ev) {
                Ok(_) => seq += 1,
                Err(MeshError::SendWindowFull) => break,
                Err(e) => panic!("{e}"),
            }
            if seq > total {
                break;
            }
        }
        pump(&mut a, &mut b, now, &mut got);
        now += 10;
    }
    (got as f64 / start.elapsed().as_secs_f64(), a.counters().messages_tx)
}

/// Both sessions together carry events of 8 bytes at several times the node-to-node target,
/// unkeyed and keyed, with and without acks (a loose bound: tests run unoptimised and loaded).
#[test]
fn sessions_carry_many_times_the_target() {
    for (caps, key) in [(Caps::RELIABLE.union(Caps::ORDERED), None), (Caps::NONE, None), (Caps::RELIABLE, Some([1; 32]))] {
        let (rate, messages) = run(caps, key, 200_000);
        println!("{caps:?} keyed {}: {rate:.0} events/s, {messages} messages", key.is_some());
        assert!(messages < 200_000 / 40, "batched: {messages} messages");
        assert!(rate > 500_000.0, "{rate:.0} events/s");
    }
}
