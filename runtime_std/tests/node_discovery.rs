//! Discovery between `manyfold-node` processes on loopback: peer lists exchanged over the admin
//! endpoint, and the start-up refusals of addresses no peer could dial.

mod node_support;

use std::time::{Duration, Instant};

use node_support::{args, run_to_end, NodeProc};
use serde_json::{json, Value};

fn peer<'a>(answer: &'a Value, name: &str) -> Option<&'a Value> {
    answer["peers"].as_array().unwrap().iter().find(|p| p["name"] == json!(name))
}

/// b knows a, c knows b: within a few gossip rounds a lists c (heard of through b's list, with
/// its partitions and age), b lists both, and the answer describes the node itself.
#[test]
fn peer_lists_spread_by_gossip_from_one_configured_peer() {
    let fast = || "--gossip-ms=100".to_string();
    let a = NodeProc::start("a", &args("chain.json", "a", 1, &["a"], &[fast()]));
    let b = NodeProc::start("b", &args("chain.json", "b", 2, &["b"], &[format!("--peer={}", a.ready["admin"].as_str().unwrap()), fast()]));
    let c = NodeProc::start("c", &args("chain.json", "c", 3, &["c"], &[format!("--peer={}", b.ready["admin"].as_str().unwrap()), fast()]));
    let end = Instant::now() + Duration::from_secs(10);
    // Bounded: 10 s of 50 ms polls.
    let answer = loop {
        let answer = a.ask(json!({"q": "peers"}));
        if peer(&answer, "c").is_some() && peer(&answer, "b").is_some() {
            break answer;
        }
        assert!(Instant::now() < end, "a never heard of c: {answer}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(answer["node"], json!("a"));
    assert_eq!(answer["admin"], a.ready["admin"]);
    assert_eq!(answer["listen"], a.ready["listen"]);
    assert_eq!(answer["partitions"], json!(["a"]));
    let c_entry = peer(&answer, "c").unwrap();
    assert_eq!(c_entry["source"], json!("gossip"));
    assert_eq!(c_entry["admin"], c.ready["admin"]);
    assert_eq!(c_entry["partitions"], json!(["c"]));
    assert_eq!(c_entry["manifest_id"], answer["manifest_id"]);
    assert!(c_entry["age_ms"].as_u64().unwrap() < 5_000);
    let of_b = b.ask(json!({"q": "peers"}));
    assert_eq!(peer(&of_b, "a").unwrap()["source"], json!("configured"));
    assert_eq!(peer(&of_b, "c").unwrap()["source"], json!("gossip"));
    assert!(peer(&of_b, "b").is_none(), "a node never lists itself: {of_b}");
    assert_eq!(answer["beacon"]["on"], json!(false));
    assert_eq!(answer["beacon"]["sent"], json!(0));
}

/// A wildcard bind with --peer and no --advertise, a bad --advertise, --beacon without
/// --admin, and a beacon group that is not multicast are each refused in one sentence, exit 2.
#[test]
fn addresses_no_peer_could_dial_are_refused_at_start() {
    let chain = node_support::fixture("chain.json");
    let base = |listen: &str, admin: Option<&str>, extra: &[&str]| {
        let mut a: Vec<String> = ["--manifest", &chain, "--node", "a", "--node-id", "1", "--partition", "a", "--listen", listen].iter().map(|s| s.to_string()).collect();
        if let Some(admin) = admin {
            a.extend(["--admin".to_string(), admin.to_string()]);
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    for (argv, expected) in [
        (base("0.0.0.0:0", Some("127.0.0.1:0"), &["--peer", "127.0.0.1:9"]), "give --advertise HOST"),
        (base("127.0.0.1:0", Some("0.0.0.0:0"), &["--beacon"]), "give --advertise HOST"),
        (base("127.0.0.1:0", Some("127.0.0.1:0"), &["--advertise", "0.0.0.0"]), "not an address peers can dial"),
        (base("127.0.0.1:0", None, &["--beacon"]), "--beacon needs --admin"),
        (base("127.0.0.1:0", Some("127.0.0.1:0"), &["--beacon", "--beacon-group", "10.0.0.1:7477"]), "not an IPv4 multicast group"),
    ] {
        let (status, err) = run_to_end(&argv);
        assert_eq!(status.code(), Some(2), "{argv:?}: {err}");
        assert!(err.contains(expected), "{argv:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// A round asks its peers in parallel: with twelve configured peers that accept and never
/// answer (300 ms each), the one live peer is still heard from every round (its age stays
/// under a second), where asking one after another leaves it seconds between answers.
#[test]
fn silent_peers_do_not_delay_the_live_one() {
    let silent: Vec<std::net::TcpListener> = (0..12).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let b = NodeProc::start("b", &args("chain.json", "b", 2, &["b"], &[]));
    let mut extra: Vec<String> = silent.iter().map(|l| format!("--peer={}", l.local_addr().unwrap())).collect();
    extra.push(format!("--peer={}", b.ready["admin"].as_str().unwrap()));
    extra.push("--gossip-ms=100".to_string());
    let a = NodeProc::start("a", &args("chain.json", "a", 1, &["a"], &extra));
    let start = Instant::now();
    // Bounded: 10 s of 50 ms polls until b was heard, then 4 s of them watching its age.
    let mut oldest = 0;
    let mut first = None;
    while Instant::now() < start + Duration::from_secs(14) {
        let answer = a.ask(json!({"q": "peers"}));
        if let Some(age) = peer(&answer, "b").and_then(|p| p["age_ms"].as_u64()) {
            let since = *first.get_or_insert_with(Instant::now);
            oldest = oldest.max(age);
            if since.elapsed() > Duration::from_secs(4) {
                break;
            }
        }
        assert!(first.is_some() || Instant::now() < start + Duration::from_secs(10), "a never heard b: {answer}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(first.is_some_and(|f| f.elapsed() > Duration::from_secs(4)), "watched b for 4 s");
    assert!(oldest < 1_000, "b went {oldest} ms unheard: the silent peers delayed it");
    drop(silent);
}
