//! Two nodes running different manifests: the handshake is refused with a named reason that
//! both ends show in their status.

mod node_support;

use std::time::Duration;

use serde_json::json;

use node_support::*;

#[test]
fn a_manifest_mismatch_is_refused_and_both_ends_say_why() {
    let a = NodeProc::start("a", &args("chain.json", "a", 1, &["a"], &[]));
    let b = NodeProc::start("b", &args("other.json", "b", 2, &["b"], &[format!("--link=ab=tcp://{}", a.listen())]));
    for (node, name) in [(&a, "a"), (&b, "b")] {
        let link = wait_for(&format!("{name} to show the refusal"), Duration::from_secs(10), || {
            let l = node.link("ab");
            (l["state"] == json!("refused")).then_some(l)
        });
        assert_eq!(link["refused"]["manifest_mismatch"].as_u64().map(|n| n >= 1), Some(true), "{link}");
        let sentence = link["refusal"].as_str().unwrap();
        assert!(sentence.contains("different manifests"), "{sentence}");
    }
    a.publish(RAW, &[1.0]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(b.history(SCALED).len(), 0);
    assert_eq!(a.link("ab")["events_tx"], json!(0));
}
