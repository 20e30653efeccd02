//! Seeded datagram faults on a UDP link that does not ask for reliability: no corrupt event is
//! accepted, and every loss is counted and tainted on the next event of its route.

mod node_support;

use std::time::Duration;

use serde_json::json;

use node_support::*;

#[test]
fn seeded_faults_on_udp_corrupt_nothing_and_every_loss_is_counted_and_tainted() {
    let a = NodeProc::start("a", &args("lossy.json", "a", 1, &["a"], &["--fault=ab=seed=7,drop=0.1,dup=0.05,reorder=0.05,corrupt=0.05".into()]));
    let b = NodeProc::start("b", &args("lossy.json", "b", 2, &["b"], &[format!("--link=ab=udp://{}", a.listen())]));
    wait_for("ab up", Duration::from_secs(10), || (b.link("ab")["state"] == json!("up")).then_some(()));
    // One event per publish and a pause: one event per datagram, so each fault hits one event.
    const N: u64 = 200;
    for i in 0..N {
        a.publish(RAW, &[i as f64]);
        std::thread::sleep(Duration::from_millis(2));
    }
    // The last event may be lost with nothing after it to reveal the loss: wait for the link
    // to go quiet rather than for all of them.
    let mut last = 0;
    let history = wait_for("b to stop receiving", Duration::from_secs(10), || {
        std::thread::sleep(Duration::from_millis(300));
        let h = b.history(SCALED);
        let quiet = h.len() == last;
        last = h.len();
        quiet.then_some(h)
    });
    assert!(history.len() > (N as usize) / 2 && history.len() < N as usize, "{} of {N} arrived", history.len());
    let mut previous = 0;
    let mut lost = 0;
    for env in &history {
        let seq = env["seq"].as_u64().unwrap();
        // Nothing corrupt: each value is exactly what a computed for that sequence number.
        assert_eq!(env["value"], json!((seq - 1) as f64 * 2.0), "{env}");
        assert!(seq > previous, "sequence numbers go up: {previous} then {seq}");
        let dropped = taints(env).contains(&"delivery_dropped".to_string());
        if seq != previous + 1 {
            lost += seq - previous - 1;
            assert!(dropped, "the event after a loss carries delivery_dropped: {env}");
        }
        previous = seq;
    }
    let link = b.link("ab");
    assert!(lost > 0);
    assert!(link["gaps"].as_u64().unwrap() >= lost, "gaps {} < lost {lost}: {link}", link["gaps"]);
    assert!(link["bad_frames"].as_u64().unwrap() > 0, "corrupted datagrams are refused and counted: {link}");
    assert_eq!(link["provided"], json!(["ordered"]));
    assert_eq!(link["events_rx"].as_u64().unwrap(), history.len() as u64);
}
