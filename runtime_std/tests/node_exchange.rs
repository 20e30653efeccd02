//! Nodes exchange events over UDP and TCP on loopback: the split graph gives the values, taints
//! and lineage of the single-process graph, and SIGTERM stops each node cleanly.

mod node_support;

use std::time::Duration;

use serde_json::json;

use node_support::*;

/// a -> b over UDP, b -> c over TCP: every value arrives, computed as in one process
/// ((x * 2) + 1 at b, + 1 again at c), with the taints the forward nodes declare and lineage
/// that names the nodes holding each ancestor.
#[test]
fn three_nodes_over_udp_and_tcp() {
    let a = NodeProc::start("a", &args("chain.json", "a", 1, &["a"], &[]));
    let b = NodeProc::start("b", &args("chain.json", "b", 2, &["b"], &[format!("--link=ab=udp://{}", a.listen())]));
    let c = NodeProc::start("c", &args("chain.json", "c", 3, &["c"], &[format!("--link=bc=tcp://{}", b.listen())]));
    wait_for("links up", Duration::from_secs(10), || (b.link("ab")["state"] == json!("up") && c.link("bc")["state"] == json!("up")).then_some(()));
    let values: Vec<f64> = (0..500).map(f64::from).collect();
    for chunk in values.chunks(100) {
        a.publish(RAW, chunk);
    }
    let last = wait_for("c's last event", Duration::from_secs(10), || {
        let latest = c.ask(json!({"q": "latest", "route": C_OUT}));
        (latest["seq"] == json!(500)).then_some(latest)
    });
    assert_eq!(last["value"], json!(499.0 * 2.0 + 2.0));
    assert_eq!(taints(&last), ["det_nonreplayable", "trust_unverified"]);
    let b_out = b.history(B_OUT);
    assert_eq!(b_out.len(), 256, "b retains 256 envelopes of its output route");
    for env in &b_out {
        let seq = env["seq"].as_u64().unwrap();
        assert_eq!(env["value"], json!((seq - 1) as f64 * 2.0 + 1.0));
    }
    // Lineage at c: its own envelopes, b's output (held at c as received), and a's scaled route
    // (held at a, node 1, reached through b: not a peer of c, so named null).
    let lineage = c.ask(json!({"q": "lineage", "route": C_OUT, "seq": 500}));
    let routes: Vec<&str> = lineage["lineage"].as_array().unwrap().iter().map(|e| e["route"].as_str().unwrap()).collect();
    assert_eq!(routes, [C_OUT, "read.raw.c.temp.inbound.event.v1", B_OUT]);
    let b_lineage = b.ask(json!({"q": "lineage", "route": B_OUT, "seq": 500}));
    let elsewhere = &b_lineage["elsewhere"][0];
    assert_eq!((elsewhere["route"].as_str().unwrap(), elsewhere["node"].as_u64()), (RAW, Some(1)));
    let ab = a.link("ab");
    assert_eq!(ab["events_tx"], json!(500));
    assert_eq!((ab["transport"].as_str(), ab["peer"].as_str()), (Some("udp"), Some("b")));
    assert_eq!(ab["provided"], json!(["ordered", "reliable"]));
    assert_eq!(ab["missing"], json!([]));
    let bc = c.link("bc");
    assert_eq!((bc["transport"].as_str(), bc["events_rx"].as_u64()), (Some("tcp"), Some(500)));
    for (node, name) in [(c, "c"), (b, "b"), (a, "a")] {
        let (status, stopped) = node.terminate();
        assert!(status.success(), "{name} exited with {status}");
        assert_eq!(stopped, json!({"stopped": true, "node": name}));
    }
}

/// A manifest or partition the node cannot host is refused at start, in one sentence, exit 2.
#[test]
fn start_up_errors_exit_2_with_one_sentence() {
    let (status, err) = run_to_end(&args("python.json", "b", 2, &["b"], &[]));
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("node plus_one calls the Python function") && err.contains("manyfold node"), "{err}");
    let (status, err) = run_to_end(&args("chain.json", "z", 2, &["z"], &[]));
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("no partition \"z\""), "{err}");
    let (status, err) = run_to_end(&args("chain.json", "a", 1, &["a"], &["--key=ab=/nonexistent/key".into()]));
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("cannot read the key file"), "{err}");
    let (status, err) = run_to_end(&args("chain.json", "a", 1, &["a"], &["--link=zz=udp://127.0.0.1:1".into()]));
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("link \"zz\""), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // A port in use.
    let a = NodeProc::start("a", &args("chain.json", "a", 1, &["a"], &[]));
    let mut again = args("chain.json", "a", 1, &["a"], &[]);
    let at = again.iter().position(|x| x == "127.0.0.1:0").unwrap();
    again[at] = a.listen();
    let (status, err) = run_to_end(&again);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains(&format!("cannot listen on {}", a.listen())), "{err}");
}

/// A dead peer fills its link's bounded queue (drops counted), never the graph or another
/// link; once it comes, the queued events cross and the next event of the route says events
/// were lost.
#[test]
fn a_dead_peer_fills_only_its_own_queue() {
    let a = NodeProc::start("a", &args("chain.json", "a", 1, &["a"], &[]));
    let b = NodeProc::start("b", &args("chain.json", "b", 2, &["b"], &[format!("--link=ab=udp://{}", a.listen()), "--queue-depth=8".into()]));
    wait_for("ab up", Duration::from_secs(10), || (b.link("ab")["state"] == json!("up")).then_some(()));
    let values: Vec<f64> = (0..100).map(f64::from).collect();
    a.publish(RAW, &values);
    wait_for("b's output", Duration::from_secs(10), || (b.ask(json!({"q": "latest", "route": B_OUT}))["seq"] == json!(100)).then_some(()));
    let bc = b.link("bc");
    assert_eq!((bc["state"].as_str(), bc["queued"].as_u64(), bc["dropped"].as_u64()), (Some("connecting"), Some(8), Some(92)), "{bc}");
    assert_eq!(bc["dropped_by_route"], json!({ B_OUT: 92 }), "the flow that overflowed, by name");
    let c = NodeProc::start("c", &args("chain.json", "c", 3, &["c"], &[format!("--link=bc=udp://{}", b.listen())]));
    let got = wait_for("the 8 queued events at c", Duration::from_secs(10), || {
        let h = c.history(B_OUT);
        (h.len() == 8).then_some(h)
    });
    assert_eq!(got[0]["seq"], json!(1));
    a.publish(RAW, &[100.0]);
    let next = wait_for("the next event at c", Duration::from_secs(10), || {
        let latest = c.ask(json!({"q": "latest", "route": B_OUT}));
        (latest["seq"] == json!(101)).then_some(latest)
    });
    assert!(taints(&next).contains(&"delivery_dropped".to_string()), "{next}");
}
