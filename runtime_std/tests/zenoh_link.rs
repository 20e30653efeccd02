//! Node links over Zenoh: two `manyfold-node` processes in client mode meet through a Zenoh
//! router this test opens in-process (mode router, loopback TCP, a free port), as docs/wire.md
//! 4.12 describes: events cross with their envelope intact, the handshake still refuses another
//! manifest, a lost router takes the links down and a new one brings them back without
//! duplicates, a short outage loses nothing, and each node answers on its admin queryable and
//! shows its liveliness token.

#![cfg(feature = "zenoh")]

mod node_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zenoh::Wait;

use manyfold_runtime::node::zenoh::config;
use node_support::*;

/// A loopback TCP port free now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A Zenoh router on `tcp/127.0.0.1:PORT`, opened by our crate.
fn router(port: u16) -> zenoh::Session {
    let endpoint = format!("tcp/127.0.0.1:{port}");
    // Bounded: a port just closed may take a moment to be free again.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match zenoh::open(config("router", &[], std::slice::from_ref(&endpoint)).unwrap()).wait() {
            Ok(s) => return s,
            Err(e) => assert!(Instant::now() < end, "cannot open a router on {endpoint}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `fixture` with link ab on zenoh, written to a temporary file; returns its path.
fn zenoh_manifest(fixture_name: &str, tag: &str) -> String {
    let text = std::fs::read_to_string(fixture(fixture_name)).unwrap();
    let from = "\"name\": \"ab\", \"ordered\": true, \"reliable\": true, \"transport\": \"udp\"";
    assert!(text.contains(from));
    let text = text.replace(from, "\"name\": \"ab\", \"ordered\": true, \"reliable\": true, \"transport\": \"zenoh\"");
    let dir = std::env::temp_dir().join(format!("manyfold-zenoh-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(fixture_name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// A node of `manifest` hosting `partition`, a client of the router on `port`.
fn node(manifest: &str, name: &str, id: u16, partition: &str, port: u16, lease_ms: u32) -> NodeProc {
    node_with(manifest, name, id, partition, port, lease_ms, &[])
}

/// [`node`] with more flags.
fn node_with(manifest: &str, name: &str, id: u16, partition: &str, port: u16, lease_ms: u32, extra: &[String]) -> NodeProc {
    let mut args: Vec<String> = [
        "--manifest", manifest, "--node", name, "--node-id", &id.to_string(), "--partition", partition, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
        "--lease-ms", &lease_ms.to_string(), "--zenoh-connect", &format!("tcp/127.0.0.1:{port}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().cloned());
    NodeProc::start(name, &args)
}

/// Watches `key` through the router on `port`: the keys of the samples seen.
fn watch(port: u16, key: String) -> (zenoh::Session, std::sync::Arc<std::sync::Mutex<Vec<String>>>, zenoh::pubsub::Subscriber<()>) {
    let client = zenoh::open(config("client", &[format!("tcp/127.0.0.1:{port}")], &[]).unwrap()).wait().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let keep = seen.clone();
    let sub = client.declare_subscriber(key).callback(move |s| keep.lock().unwrap().push(s.key_expr().to_string())).wait().unwrap();
    (client, seen, sub)
}

fn wait_state(node: &NodeProc, state: &str, bound: Duration) -> Value {
    wait_for(&format!("{} to show link ab {state}", node.name), bound, || {
        let l = node.link("ab");
        (l["state"] == json!(state)).then_some(l)
    })
}

/// The route seqs of `route` at `node`, checking none repeats.
fn unique_seqs(node: &NodeProc, route: &str) -> Vec<u64> {
    let seqs: Vec<u64> = node.history(route).iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let set: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(set.len(), seqs.len(), "duplicate deliveries: {seqs:?}");
    seqs
}

/// Events published at a cross link ab through the router to b with their route seqs and
/// taints as a recorded them; both ends show transport zenoh and the router and key.
#[test]
fn events_cross_through_the_router_with_seqs_and_taints_intact() {
    let port = free_port();
    let _router = router(port);
    let m = zenoh_manifest("chain.json", "cross");
    let a = node(&m, "a", 1, "a", port, 3000);
    let b = node(&m, "b", 2, "b", port, 3000);
    let la = wait_state(&a, "up", Duration::from_secs(20));
    let lb = wait_state(&b, "up", Duration::from_secs(5));
    assert_eq!((la["transport"].clone(), la["dialer"].clone(), lb["dialer"].clone()), (json!("zenoh"), json!(true), json!(false)));
    assert!(la["peer_addr"].as_str().unwrap().contains("manyfold/link/ab/a"), "{la}");
    assert_eq!(la["note"], Value::Null);
    // Watch the route keys: first-send events of one route go on the route's key.
    let mid = a.status()["manifest_id"].as_str().unwrap()[..16].to_string();
    let (_client, seen, _watch) = watch(port, format!("manyfold/{mid}/route/ab/a/**"));
    // One event at a time until the watcher's subscription has reached the router, then the rest.
    let mut published = 0u32;
    wait_for("an events message on the route key", Duration::from_secs(10), || {
        a.publish(RAW, &[f64::from(published)]);
        published += 1;
        (!seen.lock().unwrap().is_empty()).then_some(())
    });
    let values: Vec<f64> = (published..200).map(f64::from).collect();
    a.publish(RAW, &values);
    let at_b = wait_for("200 events at b", Duration::from_secs(10), || {
        let h = b.history(SCALED);
        (h.len() == 200).then_some(h)
    });
    let at_a = a.history(SCALED);
    for (x, y) in at_a.iter().zip(&at_b) {
        assert_eq!((x["seq"].clone(), taints(x), x["value"].clone()), (y["seq"].clone(), taints(y), y["value"].clone()));
    }
    assert_eq!(unique_seqs(&b, SCALED), (1..=200).collect::<Vec<u64>>());
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "no events message went on the route key");
    assert!(seen.iter().all(|k| k == &format!("manyfold/{mid}/route/ab/a/read/raw/a/temp/scaled/event/v1")), "{seen:?}");
}

/// A node of another manifest hears the hello on the link key (no manifest id in it) and the
/// handshake is refused manifest_mismatch at both ends; nothing crosses.
#[test]
fn a_node_of_another_manifest_is_refused_at_both_ends() {
    let port = free_port();
    let _router = router(port);
    let a = node(&zenoh_manifest("chain.json", "mm"), "a", 1, "a", port, 3000);
    let b = node(&zenoh_manifest("other.json", "mm"), "b", 2, "b", port, 3000);
    for n in [&a, &b] {
        let l = wait_state(n, "refused", Duration::from_secs(20));
        assert!(l["refused"]["manifest_mismatch"].as_u64().unwrap_or(0) >= 1, "{l}");
    }
    a.publish(RAW, &[1.0]);
    assert_eq!(a.link("ab")["events_tx"], json!(0));
}

/// The router gone: both ends go down (lease_expired) within the lease and a margin; the next
/// event over the link is tainted delivery_dropped; a new router on the same port brings the
/// links up again with no action, and nothing is delivered twice.
#[test]
fn router_loss_downs_the_links_and_a_new_router_brings_them_back() {
    let port = free_port();
    let first = router(port);
    let m = zenoh_manifest("chain.json", "loss");
    let a = node(&m, "a", 1, "a", port, 1500);
    let b = node(&m, "b", 2, "b", port, 1500);
    wait_state(&a, "up", Duration::from_secs(20));
    wait_state(&b, "up", Duration::from_secs(5));
    a.publish(RAW, &[1.0, 2.0, 3.0]);
    wait_for("3 events at b", Duration::from_secs(10), || (b.history(SCALED).len() == 3).then_some(()));
    let closed = Instant::now();
    first.close().wait().unwrap();
    for n in [&a, &b] {
        let l = wait_state(n, "down", Duration::from_millis(1500 + 3000));
        assert_eq!(l["down_reason"], json!("lease_expired"), "{l}");
    }
    assert!(closed.elapsed() < Duration::from_millis(1500 + 3000));
    a.publish(RAW, &[4.0]);
    let _second = router(port);
    wait_state(&a, "up", Duration::from_secs(20));
    wait_state(&b, "up", Duration::from_secs(5));
    let h = wait_for("the 4th event at b", Duration::from_secs(10), || {
        let h = b.history(SCALED);
        (h.len() == 4).then_some(h)
    });
    assert!(taints(&h[3]).contains(&"delivery_dropped".to_string()), "{}", h[3]);
    assert!(!taints(&h[2]).contains(&"delivery_dropped".to_string()), "{}", h[2]);
    a.publish(RAW, &[5.0]);
    wait_for("the 5th event at b", Duration::from_secs(10), || (b.history(SCALED).len() == 5).then_some(()));
    assert_eq!(unique_seqs(&b, SCALED), vec![1, 2, 3, 4, 5]);
}

/// An outage shorter than the lease loses nothing: events published while the router is gone
/// arrive after it is back (retransmission), untainted, once each.
#[test]
fn a_short_outage_loses_nothing() {
    let port = free_port();
    let first = router(port);
    let m = zenoh_manifest("chain.json", "short");
    let a = node(&m, "a", 1, "a", port, 8000);
    let b = node(&m, "b", 2, "b", port, 8000);
    wait_state(&a, "up", Duration::from_secs(20));
    wait_state(&b, "up", Duration::from_secs(5));
    a.publish(RAW, &[0.0]);
    wait_for("the first event at b", Duration::from_secs(10), || (b.history(SCALED).len() == 1).then_some(()));
    first.close().wait().unwrap();
    let values: Vec<f64> = (1..=20).map(f64::from).collect();
    a.publish(RAW, &values);
    let _second = router(port);
    let h = wait_for("21 events at b", Duration::from_secs(7), || {
        let h = b.history(SCALED);
        (h.len() == 21).then_some(h)
    });
    assert_eq!(a.link("ab")["ups"], json!(1), "the session stayed up");
    assert!(a.link("ab")["retransmits"].as_u64().unwrap() >= 1, "what the router lost was sent again");
    for e in &h {
        assert!(!taints(e).contains(&"delivery_dropped".to_string()), "{e}");
    }
    assert_eq!(unique_seqs(&b, SCALED), (1..=21).collect::<Vec<u64>>());
}

/// Each node shows a liveliness token `manyfold/<mid16>/node/<name>/<id>/<incarnation>` and
/// answers `status` on its admin queryable with the admin endpoint's JSON.
#[test]
fn presence_and_the_admin_queryable_answer_through_the_router() {
    let port = free_port();
    let _router = router(port);
    let m = zenoh_manifest("chain.json", "admin");
    let a = node(&m, "a", 1, "a", port, 3000);
    let b = node(&m, "b", 2, "b", port, 3000);
    wait_state(&a, "up", Duration::from_secs(20));
    let client = zenoh::open(config("client", &[format!("tcp/127.0.0.1:{port}")], &[]).unwrap()).wait().unwrap();
    let mid = &a.status()["manifest_id"].as_str().unwrap()[..16].to_string();
    let inc = a.status()["incarnation"].as_u64().unwrap();
    let tokens = wait_for("both tokens", Duration::from_secs(5), || {
        let replies = client.liveliness().get("manyfold/*/node/**").timeout(Duration::from_millis(500)).wait().unwrap();
        let mut keys = Vec::new();
        while let Ok(r) = replies.recv() {
            if let Ok(s) = r.result() {
                keys.push(s.key_expr().to_string());
            }
        }
        keys.sort();
        (keys.len() == 2).then_some(keys)
    });
    assert_eq!(tokens[0], format!("manyfold/{mid}/node/a/1/{inc}"));
    assert!(tokens[1].starts_with(&format!("manyfold/{mid}/node/b/2/")), "{tokens:?}");
    let replies = client.get(format!("manyfold/{mid}/admin/*")).payload(r#"{"q": "status"}"#).target(zenoh::query::QueryTarget::All).consolidation(zenoh::query::ConsolidationMode::None).timeout(Duration::from_secs(3)).wait().unwrap();
    let mut nodes = Vec::new();
    while let Ok(r) = replies.recv() {
        let s = r.result().unwrap();
        let answer: Value = serde_json::from_slice(&s.payload().to_bytes()).unwrap();
        nodes.push((s.key_expr().to_string(), answer["node"].as_str().unwrap().to_string(), answer["links"][0]["transport"].as_str().unwrap_or("").to_string()));
    }
    nodes.sort();
    assert_eq!(nodes, vec![
        (format!("manyfold/{mid}/admin/a"), "a".to_string(), "zenoh".to_string()),
        (format!("manyfold/{mid}/admin/b"), "b".to_string(), "zenoh".to_string()),
    ]);
    // Questions only over Zenoh: a stop sent through the router is refused and the node runs on.
    let replies = client.get(format!("manyfold/{mid}/admin/a")).payload(r#"{"q": "stop"}"#).timeout(Duration::from_secs(3)).wait().unwrap();
    let refused: Value = serde_json::from_slice(&replies.recv().unwrap().result().unwrap().payload().to_bytes()).unwrap();
    assert!(refused["error"].as_str().unwrap_or("").contains("answers questions only"), "{refused}");
    assert_eq!(a.status()["stopping"], json!(false));
    let z = a.status()["zenoh"].clone();
    assert_eq!((z["mode"].clone(), z["open"].clone(), z["prefix"].clone()), (json!("client"), json!(true), json!("manyfold")), "{z}");
    assert!(z["admin_answered"].as_u64().unwrap() >= 1, "{z}");
    drop(b);
    client.close().wait().unwrap();
}

/// Peer mode: the router introduces the nodes, which then talk directly, so events still cross
/// once the router is gone (the documented difference from client mode).
#[test]
fn peer_mode_keeps_delivering_without_the_router() {
    let port = free_port();
    let first = router(port);
    let m = zenoh_manifest("chain.json", "peer");
    let peer = |name: &str, id: u16| {
        let args: Vec<String> = [
            "--manifest", m.as_str(), "--node", name, "--node-id", &id.to_string(), "--partition", name, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
            "--lease-ms", "1500", "--zenoh-mode", "peer", "--zenoh-connect", &format!("tcp/127.0.0.1:{port}"), "--zenoh-listen", "tcp/127.0.0.1:0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        NodeProc::start(name, &args)
    };
    let (a, b) = (peer("a", 1), peer("b", 2));
    wait_state(&a, "up", Duration::from_secs(20));
    wait_state(&b, "up", Duration::from_secs(5));
    assert_eq!(a.status()["zenoh"]["mode"], json!("peer"));
    first.close().wait().unwrap();
    let values: Vec<f64> = (0..50).map(f64::from).collect();
    a.publish(RAW, &values);
    let h = wait_for("50 events at b without the router", Duration::from_secs(10), || {
        let h = b.history(SCALED);
        (h.len() == 50).then_some(h)
    });
    assert_eq!(a.link("ab")["ups"], json!(1), "the session never went down");
    assert!(h.iter().all(|e| !taints(e).contains(&"delivery_dropped".to_string())));
}

/// Start-up errors are one sentence: a zenoh link with no router given, and an address given
/// to dial a zenoh link.
#[test]
fn start_errors_name_what_is_missing() {
    let m = zenoh_manifest("chain.json", "errors");
    let base: Vec<String> = ["--manifest", &m, "--node", "a", "--node-id", "1", "--partition", "a", "--listen", "127.0.0.1:0"].iter().map(|s| s.to_string()).collect();
    let (status, err) = run_to_end(&base);
    assert_eq!(status.code(), Some(2));
    assert_eq!(err.trim(), "manyfold-node: link ab runs on zenoh: give --zenoh-connect ENDPOINT (a Zenoh router, e.g. tcp/127.0.0.1:7447)");
    let mut dial = base.clone();
    dial.extend(["--zenoh-connect".into(), "tcp/127.0.0.1:7447".into(), "--link".into(), "ab=udp://127.0.0.1:9".into()]);
    let (_, err) = run_to_end(&dial);
    assert!(err.contains("link ab runs on zenoh and takes no --link address"), "{err}");
    assert_eq!(err.trim().lines().count(), 1);
}

/// A node starts without a router: its zenoh link shows connecting with a note naming the
/// router it waits for, and comes up once a router appears.
#[test]
fn a_node_waits_for_a_late_router() {
    let port = free_port();
    let m = zenoh_manifest("chain.json", "late");
    let a = node(&m, "a", 1, "a", port, 3000);
    let b = node(&m, "b", 2, "b", port, 3000);
    let l = a.link("ab");
    assert_eq!(l["state"], json!("connecting"));
    assert_eq!(l["note"], json!(format!("waiting for the Zenoh router at tcp/127.0.0.1:{port}")));
    let _router = router(port);
    wait_state(&a, "up", Duration::from_secs(20));
    wait_state(&b, "up", Duration::from_secs(5));
    assert_eq!(a.link("ab")["note"], Value::Null);
}

/// A keyed zenoh link seals every message; events still cross, and still go on their route's key
/// (the transport reads the message inside the seal, which authenticates and does not encrypt).
#[test]
fn a_keyed_link_crosses_sealed_on_the_route_key() {
    let port = free_port();
    let _router = router(port);
    let m = zenoh_manifest("chain.json", "keyed");
    let dir = std::env::temp_dir().join(format!("manyfold-zenoh-{}-keyed", std::process::id()));
    let key = dir.join("ab.key");
    std::fs::write(&key, "5a".repeat(32)).unwrap();
    let flag = [format!("--key=ab={}", key.display())];
    let a = node_with(&m, "a", 1, "a", port, 3000, &flag);
    let b = node_with(&m, "b", 2, "b", port, 3000, &flag);
    wait_state(&a, "up", Duration::from_secs(20));
    wait_state(&b, "up", Duration::from_secs(5));
    let mid = a.status()["manifest_id"].as_str().unwrap()[..16].to_string();
    let (_client, seen, _watch) = watch(port, format!("manyfold/{mid}/route/ab/a/**"));
    let mut published = 0u32;
    wait_for("a sealed events message on the route key", Duration::from_secs(10), || {
        a.publish(RAW, &[f64::from(published)]);
        published += 1;
        (!seen.lock().unwrap().is_empty()).then_some(())
    });
    wait_for("every event at b", Duration::from_secs(10), || (b.history(SCALED).len() == published as usize).then_some(()));
    assert_eq!(unique_seqs(&b, SCALED), (1..=u64::from(published)).collect::<Vec<u64>>());
    assert_eq!(b.link("ab")["bad_frames"], json!(0));
}
