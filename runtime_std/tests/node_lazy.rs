//! Lazy payloads across a link (docs/wire.md 4.10): a lazy envelope's metadata crosses at once,
//! its payload is fetched over the link (in pieces when it is larger than a message) only when
//! it is opened at the receiving node, checked against its digest, counted where opens are
//! counted, and refused by name when the sender no longer holds it.

mod node_support;

use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use node_support::*;

const FRAMES: &str = "read.bulk.a.camera.frame.payload.v1";
const INBOUND: &str = "read.bulk.b.camera.frame.payload.v1";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn frame(n: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(n)).collect()
}

fn publish_lazy(a: &NodeProc, meta: i64, bytes: &[u8]) -> Value {
    let answer = a.ask(json!({"q": "publish_lazy", "route": FRAMES, "value": meta, "payload": hex(bytes)}));
    assert_eq!(answer["published"], json!(1), "{answer}");
    answer
}

/// Two `manyfold-node` processes over UDP: a publishes lazy frames (keeping the last 2), b
/// receives their metadata eagerly and fetches a payload over the link only when it is opened.
#[test]
fn lazy_payloads_are_fetched_over_the_link_on_open() {
    let a = NodeProc::start("a", &args("lazy.json", "a", 1, &["a"], &["--lazy-sources=2".into()]));
    let b = NodeProc::start("b", &args("lazy.json", "b", 2, &["b"], &[format!("--link=ab=udp://{}", a.listen())]));
    wait_for("link up", Duration::from_secs(10), || (b.link("ab")["state"] == json!("up")).then_some(()));
    assert_eq!(b.link("ab")["provided"], json!(["ordered", "reliable", "lazy"]));

    let frames: Vec<Vec<u8>> = vec![frame(1, 1000), frame(2, 600), frame(3, 5000), frame(4, 800)];
    for (i, f) in frames.iter().enumerate() {
        publish_lazy(&a, 100 + i as i64, f);
    }
    // The metadata arrived, with the payload's length and digest; nothing was fetched.
    let envs = wait_for("b's four frames", Duration::from_secs(10), || {
        let h = b.history(INBOUND);
        (h.len() == 4).then_some(h)
    });
    for (i, (env, f)) in envs.iter().zip(&frames).enumerate() {
        assert_eq!(env["value"], json!(100 + i as i64));
        assert_eq!(env["payload"], json!({"lazy": f.len(), "sha256": hex(&Sha256::digest(f))}));
    }
    let ab = b.link("ab");
    assert_eq!((ab["events_rx"].as_u64(), ab["fetches"].as_u64()), (Some(4), Some(0)));
    assert_eq!(a.link("ab")["fetches_served"], json!(0));
    // Demand is counted on the route the payload was published on (here: as received).
    let demand = b.ask(json!({"q": "demand", "route": FRAMES}));
    assert_eq!(demand["metadata_events"], json!(4));
    assert_eq!((demand["opens"].as_u64(), demand["bytes_materialized"].as_u64()), (Some(0), Some(0)));

    // Opening frame 4 (still held at a) fetches it over the link; b checks its digest.
    let opened = b.ask(json!({"q": "payload", "route": INBOUND, "seq": 4, "consumer": "inspect"}));
    assert_eq!(opened["hex"], json!(hex(&frames[3])), "{opened}");
    assert_eq!(opened["sha256"], json!(hex(&Sha256::digest(&frames[3]))));
    let ab = b.link("ab");
    assert_eq!((ab["fetches"].as_u64(), ab["fetch_failures"].as_u64()), (Some(1), Some(0)));
    assert_eq!(a.link("ab")["fetches_served"], json!(1));
    // Opened again: from b's cache, no second fetch. Both opens are counted at b.
    let again = b.ask(json!({"q": "payload", "route": INBOUND, "seq": 4, "consumer": "inspect"}));
    assert_eq!(again["hex"], opened["hex"]);
    assert_eq!(b.link("ab")["fetches"], json!(1));
    let demand = b.ask(json!({"q": "demand", "route": FRAMES}));
    assert_eq!(demand["opens"], json!(2));
    assert_eq!(demand["cache_hits"], json!(1));
    assert_eq!(demand["bytes_materialized"], json!(800));
    assert_eq!(demand["by_consumer"], json!({"inspect": 2}));
    // a opened it once, for the link.
    let a_demand = a.ask(json!({"q": "demand", "route": FRAMES}));
    assert_eq!(a_demand["by_consumer"], json!({"link:ab": 1}));

    // Frame 1 is no longer held at a (it keeps the last 2): refused by name.
    let gone = b.ask(json!({"q": "payload", "route": INBOUND, "seq": 1}));
    let message = gone["error"].as_str().unwrap_or_else(|| panic!("{gone}"));
    assert!(message.contains("no longer holds the payload") && message.contains("not_held"), "{message}");
    // Frame 3 (5000 bytes) is larger than a message: it comes in pieces, whole, one fetch.
    let big = b.ask(json!({"q": "payload", "route": INBOUND, "seq": 3}));
    assert_eq!(big["hex"], json!(hex(&frames[2])), "{big}");
    let ab = b.link("ab");
    assert_eq!((ab["fetches"].as_u64(), ab["fetch_failures"].as_u64()), (Some(3), Some(1)));
    assert_eq!(a.link("ab")["fetches_served"], json!(2));
    let demand = b.ask(json!({"q": "demand", "route": FRAMES}));
    assert_eq!((demand["failures"].as_u64(), demand["bytes_materialized"].as_u64()), (Some(1), Some(5800)));
    // a opened for the link three times: frames 4 and 3, and frame 1 (failed: not held).
    let a_demand = a.ask(json!({"q": "demand", "route": FRAMES}));
    assert_eq!((a_demand["by_consumer"].clone(), a_demand["failures"].as_u64()), (json!({"link:ab": 3}), Some(1)));

    // Once a is gone, an open fails within the bounded retries with a clear sentence.
    a.kill9();
    let start = std::time::Instant::now();
    let lost = b.ask(json!({"q": "payload", "route": INBOUND, "seq": 2}));
    let message = lost["error"].as_str().unwrap_or_else(|| panic!("{lost}"));
    assert!(message.contains("no answer from the node across link ab after 4 fetches"), "{message}");
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    let (status, _) = b.terminate();
    assert!(status.success());
}
