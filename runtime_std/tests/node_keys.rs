//! Keyed links: a pre-shared key on both ends seals every frame and events cross; a key on one
//! end only is refused at the handshake, and both ends say so.

mod node_support;

use std::time::Duration;

use serde_json::json;

use node_support::*;

fn key_file(name: &str, hex: &str) -> String {
    let dir = std::env::temp_dir().join(format!("manyfold-node-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("{hex}\n")).unwrap();
    path.display().to_string()
}

#[test]
fn a_key_on_both_ends_carries_events_and_on_one_end_is_refused() {
    let key = key_file("ab.key", &"5a".repeat(32));
    let a = NodeProc::start("a", &args("chain.json", "a", 1, &["a"], &[format!("--key=ab={key}")]));
    let b = NodeProc::start("b", &args("chain.json", "b", 2, &["b"], &[format!("--key=ab={key}"), format!("--link=ab=udp://{}", a.listen())]));
    wait_for("keyed ab up", Duration::from_secs(10), || (b.link("ab")["state"] == json!("up")).then_some(()));
    a.publish(RAW, &[1.0, 2.0]);
    wait_for("2 events at b", Duration::from_secs(5), || (b.history(SCALED).len() == 2).then_some(()));
    assert_eq!(b.link("ab")["bad_frames"], json!(0));

    // A second pair: the listening end keyed, the dialing end not (over TCP this time).
    let keyed = NodeProc::start("a", &args("chain.json", "a", 1, &["a"], &[format!("--key=ab={key}")]));
    let keyless = NodeProc::start("b", &args("chain.json", "b", 2, &["b"], &[format!("--link=ab=tcp://{}", keyed.listen())]));
    for (node, name) in [(&keyed, "keyed a"), (&keyless, "keyless b")] {
        let link = wait_for(&format!("{name} to show the refusal"), Duration::from_secs(10), || {
            let l = node.link("ab");
            (l["refused"]["key_missing"].as_u64().is_some()).then_some(l)
        });
        assert!(link["refusal"].as_str().unwrap().contains("key"), "{link}");
    }
}
