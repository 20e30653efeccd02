//! kill -9 of a node: its peer marks the link down within the lease and taints the affected
//! routes; the restarted node (a new incarnation) resumes, and nothing is delivered twice.

mod node_support;

use std::time::{Duration, Instant};

use serde_json::json;

use node_support::*;

const LEASE_MS: u64 = 600;

#[test]
fn a_killed_producer_goes_down_within_the_lease_and_resumes_without_duplicates_udp() {
    killed_producer_resumes("udp");
}

#[test]
fn a_killed_producer_goes_down_within_the_lease_and_resumes_without_duplicates_tcp() {
    killed_producer_resumes("tcp");
}

fn killed_producer_resumes(scheme: &str) {
    let lease = format!("--lease-ms={LEASE_MS}");
    let a = NodeProc::start("a", &args("lossy.json", "a", 1, &["a"], std::slice::from_ref(&lease)));
    let listen = a.listen();
    let b = NodeProc::start("b", &args("lossy.json", "b", 2, &["b"], &[lease.clone(), format!("--link=ab={scheme}://{listen}")]));
    wait_for("ab up", Duration::from_secs(10), || (b.link("ab")["state"] == json!("up")).then_some(()));
    let first_incarnation = b.link("ab")["peer_incarnation"].clone();
    a.publish(RAW, &[1.0, 2.0, 3.0]);
    wait_for("3 events at b", Duration::from_secs(5), || (b.history(SCALED).len() == 3).then_some(()));

    let killed = Instant::now();
    a.kill9();
    let down = wait_for("b marks ab down", Duration::from_millis(LEASE_MS * 4), || {
        let l = b.link("ab");
        (l["state"] == json!("down")).then_some(l)
    });
    assert!(killed.elapsed() < Duration::from_millis(LEASE_MS * 2), "down after {:?}", killed.elapsed());
    // UDP hears nothing for a lease; TCP may see the connection close first.
    assert!(down["down_reason"] == json!("lease_expired") || scheme == "tcp", "{down}");

    // The same address, a new process: a new incarnation whose route numbering starts over.
    let mut restart = args("lossy.json", "a", 1, &["a"], std::slice::from_ref(&lease));
    let at = restart.iter().position(|x| x == "127.0.0.1:0").unwrap();
    restart[at] = listen;
    let a = NodeProc::start("a", &restart);
    wait_for("ab up again", Duration::from_secs(10), || {
        let l = b.link("ab");
        (l["state"] == json!("up") && l["peer_incarnation"] != first_incarnation).then_some(())
    });
    a.publish(RAW, &[4.0, 5.0]);
    let history = wait_for("5 events at b", Duration::from_secs(5), || {
        let h = b.history(SCALED);
        (h.len() == 5).then_some(h)
    });
    let seqs: Vec<u64> = history.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let values: Vec<f64> = history.iter().map(|e| e["value"].as_f64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(values, [2.0, 4.0, 6.0, 8.0, 10.0]);
    // The first event after the outage says events may have been lost; the next one not.
    assert!(taints(&history[3]).contains(&"delivery_dropped".to_string()), "{}", history[3]);
    assert!(!taints(&history[4]).contains(&"delivery_dropped".to_string()), "{}", history[4]);
    let out = b.history(B_OUT);
    assert_eq!(out.len(), 5);
    assert_eq!(b.link("ab")["duplicates"], json!(0));
    let (status, _) = a.terminate();
    assert!(status.success());
}
