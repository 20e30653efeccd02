//! The node-link vectors (`runtime_nostd/vectors/mesh.json`, written by `generate_mesh.py` with
//! the independent Python oracle `oracle_mesh.py`) against the Rust codec: every valid message
//! decodes to its fields and encodes to its bytes, every invalid one fails with its error,
//! sealed frames open and seal byte for byte, forged ones fail, and the tables of refusals and
//! capabilities are the spec's.

use manyfold_core::mesh::msg::{Kind, Msg, Writer};
use manyfold_core::mesh::{auth, Caps, PayloadOut, Refusal};
use serde_json::{json, Value as J};

fn load() -> J {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors").join("mesh.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn fields(m: &Msg<'_>) -> J {
    match *m {
        Msg::Hello(h) => json!({
            "kind": "hello", "version": h.version, "session": h.session, "incarnation": h.incarnation, "node": h.node,
            "manifest_id": hex(&h.manifest_id), "requested": h.requested.0, "transport": h.transport.0, "mtu": h.mtu,
            "lease_ms": h.lease_ms, "name": h.name, "link": h.link,
            "routes": h.routes.iter().map(|(r, p)| json!([r, hex(&p)])).collect::<Vec<_>>(),
        }),
        Msg::Welcome(w) => json!({
            "kind": "welcome", "version": w.version, "session": w.session, "incarnation": w.incarnation, "node": w.node,
            "provided": w.provided.0, "mtu": w.mtu, "lease_ms": w.lease_ms, "name": w.name,
        }),
        Msg::Refuse(r) => json!({
            "kind": "refuse", "version": r.version, "session": r.session, "incarnation": r.incarnation,
            "reason": Refusal::from_code(r.reason, r.detail).map_or(json!(r.reason), |x| json!(x.name())), "detail": r.detail,
        }),
        Msg::Events { session, events } => json!({
            "kind": "events", "session": session, "base": events.base,
            "events": events.iter().map(|e| json!({
                "link_seq": e.link_seq, "route": e.route, "seq": e.seq, "time_us": e.time_us, "domain": e.domain,
                "taints": e.taints, "parents": e.parents.iter().map(|p| json!([p.node, p.route, p.seq])).collect::<Vec<_>>(),
                "payload": match e.payload {
                    PayloadOut::Inline(b) => json!({"inline": hex(b)}),
                    PayloadOut::Lazy { meta, len, digest } => json!({"lazy": {"meta": hex(meta), "len": len, "digest": hex(&digest)}}),
                },
            })).collect::<Vec<_>>(),
        }),
        Msg::Ack { session, cum, sack } => json!({"kind": "ack", "session": session, "cum": cum, "sack": sack}),
        Msg::Keepalive { session } => json!({"kind": "keepalive", "session": session}),
        Msg::Bye { session } => json!({"kind": "bye", "session": session}),
        Msg::Fetch { session, route, seq, offset } => json!({"kind": "fetch", "session": session, "route": route, "seq": seq, "offset": offset}),
        Msg::FetchReply { session, route, seq, offset, payload } => {
            json!({
                "kind": "fetch_reply", "session": session, "route": route, "seq": seq, "offset": offset,
                "total": payload.ok().map(|p| p.total), "payload": payload.ok().map(|p| hex(p.bytes)),
                "refused": payload.err().map(|r| r.name()),
            })
        }
    }
}

/// Every valid vector decodes to its fields and re-encodes to its bytes.
#[test]
fn valid_messages_decode_and_encode() {
    let v = load();
    for case in v["messages"].as_array().unwrap() {
        let bytes = unhex(case["hex"].as_str().unwrap());
        let m = Msg::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
        assert_eq!(fields(&m), case["fields"], "{}", case["name"]);
        let mut out = vec![0u8; bytes.len()];
        let n = m.encode(&mut Writer::new(&mut out)).unwrap();
        assert_eq!(hex(&out[..n]), case["hex"].as_str().unwrap(), "{}", case["name"]);
        assert_eq!(m.encode(&mut Writer::new(&mut vec![0u8; bytes.len() - 1])), Err(manyfold_core::mesh::MeshError::EncodeTooLong));
    }
}

/// Every invalid vector fails with the spec's error name.
#[test]
fn invalid_messages_fail_with_their_error() {
    let v = load();
    for case in v["invalid"].as_array().unwrap() {
        let bytes = unhex(case["hex"].as_str().unwrap());
        let err = Msg::decode(&bytes).map(|m| format!("{m:?}")).expect_err(case["name"].as_str().unwrap());
        assert_eq!(err.name(), case["error"].as_str().unwrap(), "{}", case["name"]);
    }
}

/// Sealed frames open to their counter and message, seal to the same bytes, and each forged
/// one fails with its error.
#[test]
fn sealed_frames_open_and_seal() {
    let v = load();
    for case in v["sealed"].as_array().unwrap() {
        let key: [u8; 32] = unhex(case["key"].as_str().unwrap()).try_into().unwrap();
        let dir = case["direction"].as_u64().unwrap() as u8;
        let body = unhex(case["hex"].as_str().unwrap());
        let (counter, message) = auth::open(&key, dir, &body).unwrap();
        assert_eq!(counter, case["counter"].as_u64().unwrap(), "{}", case["name"]);
        assert_eq!(hex(message), case["message_hex"].as_str().unwrap());
        let mut out = vec![0u8; body.len()];
        out[auth::MESSAGE_AT..auth::MESSAGE_AT + message.len()].copy_from_slice(message);
        let n = auth::seal(&key, dir, counter, &mut out, message.len()).unwrap();
        assert_eq!(out[..n], body[..], "{}", case["name"]);
    }
    for case in v["sealed_invalid"].as_array().unwrap() {
        let key: [u8; 32] = unhex(case["key"].as_str().unwrap()).try_into().unwrap();
        let err = auth::open(&key, case["direction"].as_u64().unwrap() as u8, &unhex(case["hex"].as_str().unwrap())).unwrap_err();
        assert_eq!(err.name(), case["error"].as_str().unwrap(), "{}", case["name"]);
    }
}

/// The kind bytes, refusal codes, capability bits and their taints, and the provided/missing
/// computation are the spec's tables.
#[test]
fn tables_match_the_spec() {
    let v = load();
    assert_eq!(v["version"], manyfold_core::mesh::VERSION);
    for (name, byte) in v["kinds"].as_object().unwrap() {
        let kind = Kind::from_byte(byte.as_u64().unwrap() as u8).unwrap();
        assert_eq!(format!("{kind:?}").to_lowercase(), name.replace('_', ""));
    }
    let refusals: Vec<_> = v["refusals"].as_array().unwrap().iter().map(|r| (r[0].as_u64().unwrap() as u8, r[1].as_str().unwrap())).collect();
    for &(code, name) in &refusals {
        let r = Refusal::from_code(code, 0).unwrap();
        assert_eq!((r.name(), r.code().0), (name, code));
    }
    assert_eq!(Refusal::from_code(refusals.len() as u8 + 1, 0), None);
    let caps: Vec<_> = Caps::NAMED.iter().map(|(c, n)| json!([c.0, n, c.missing_taint().map(|t| t.name())])).collect();
    assert_eq!(J::Array(caps), v["caps"]);
    for case in v["provided"].as_array().unwrap() {
        let requested = Caps(case["requested"].as_u64().unwrap() as u8);
        let p = Caps::provided(requested, Caps(case["transport"].as_u64().unwrap() as u8), case["keyed"].as_bool().unwrap());
        assert_eq!(p.0 as u64, case["provided"].as_u64().unwrap(), "{case}");
        let missing = requested.minus(p);
        assert_eq!(missing.0 as u64, case["missing"].as_u64().unwrap());
        let taints: Vec<_> = missing.missing_taints().iter().map(|t| t.name()).collect();
        let mut want: Vec<_> = case["missing_taints"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        want.sort_by_key(|n| manyfold_core::taint::Taint::from_name(n).unwrap() as u8);
        assert_eq!(taints, want);
    }
}
