//! The shared vectors in `runtime_nostd/vectors/` (written by `generate.py` with cbor2 and the
//! Python image encoder) against this crate: every valid message decodes to the listed fields
//! and re-encodes to the same bytes, every invalid one fails with the listed error, the
//! greenhouse image loads with the board capacities, and each broken image is refused with the
//! listed error.

use manyfold_core::device::board::BoardExec;
use manyfold_core::image::ImageError;
use manyfold_core::link::{Body, Event, Message, NackReason, QueryKind, ReplyBody, Value};
use manyfold_core::taint::Taint;
use serde_json::{json, Value as J};

pub fn load(name: &str) -> J {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `CamelCase` to `snake_case`, for comparing variant names with the spec's names.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn value_json(v: &Value) -> J {
    match v {
        Value::Float(x) => json!({ "float": x }),
        Value::Int(n) => json!({ "int": n }),
        Value::Bool(b) => json!({ "bool": b }),
    }
}

fn event_json(e: &Event) -> J {
    json!({
        "route": e.route, "seq": e.seq, "time_us": e.time_us, "epoch": e.epoch, "taints": e.taints.0,
        "lineage": {"route": e.lineage.route, "first_seq": e.lineage.first_seq, "count": e.lineage.count},
        "value": value_json(&e.value),
    })
}

fn reason_name(r: NackReason) -> String {
    snake(&format!("{r:?}"))
}

fn query_name(q: QueryKind) -> String {
    snake(&format!("{q:?}"))
}

/// The fields of a decoded message, named as in the CDDL (the vectors' `fields`).
fn fields_json(body: &Body<'_>) -> J {
    match body {
        Body::Hello(h) => json!({"version": h.version, "max_message": h.max_message, "session": h.session, "flags": h.flags, "time_us": h.time_us}),
        Body::Describe(d) => {
            let mut j = json!({
                "version": d.version, "max_message": d.max_message, "capabilities": d.capabilities, "board": d.board,
                "image_status": d.image_status, "manifest_id": d.manifest_id.map(|m| hex(&m)).unwrap_or_default(),
                "partition": d.partition, "session": d.session, "flags": d.flags,
            });
            if let Some(r) = d.ref_id {
                // v1.1: the hello it answers, the device's time and epoch.
                let o = j.as_object_mut().unwrap();
                o.insert("ref".into(), json!(r));
                o.insert("time_us".into(), json!(d.time_us));
                o.insert("epoch".into(), json!(d.epoch));
            }
            j
        }
        Body::Event(e) => event_json(e),
        Body::Ack(a) => json!({"ref": a.ref_id, "info": a.info}),
        Body::Nack(n) => json!({"ref": n.ref_id, "reason": reason_name(n.reason), "detail": n.detail}),
        Body::Query(q) => json!({"what": q.what, "arg": q.arg}),
        Body::Reply(r) => {
            let mut d = json!({"ref": r.ref_id, "what": query_name(r.body.kind())});
            let o = d.as_object_mut().unwrap();
            let page = |total: u16, start: u16, items: Vec<J>| json!({"total": total, "start": start, "items": items});
            let extra = match &r.body {
                ReplyBody::Routes(p) => page(
                    p.total,
                    p.start,
                    p.items
                        .iter()
                        .map(|i| {
                            let mut j = json!({"id": i.id, "schema": hex(&i.schema), "kind": i.kind, "link": i.link, "seq": i.seq});
                            if let Some(t) = i.taints {
                                j.as_object_mut().unwrap().insert("taints".into(), json!(t.0));
                            }
                            j
                        })
                        .collect(),
                ),
                ReplyBody::Nodes(p) => page(p.total, p.start, p.items.iter().map(|i| json!({"op": i.op, "input": i.input, "output": i.output, "output2": i.output2, "capacity": i.capacity, "overflow": i.overflow})).collect()),
                ReplyBody::Sources(p) => page(p.total, p.start, p.items.iter().map(|i| json!({"route": i.route, "waveform": i.waveform, "period_us": i.period_us, "phase_us": i.phase_us})).collect()),
                ReplyBody::Flow(p) => page(p.total, p.start, p.items.iter().map(|i| json!({"node": i.node, "depth": i.depth, "capacity": i.capacity, "accepted": i.accepted, "delivered": i.delivered, "dropped": i.dropped, "refused": i.refused, "depth_max": i.depth_max})).collect()),
                ReplyBody::Taints(p) => page(p.total, p.start, p.items.iter().map(|i| json!({"route": i.route, "seen": i.seen.0, "pending": i.pending.0})).collect()),
                ReplyBody::Counters(c) => {
                    let names = load("link.json")["counters"].clone();
                    let values = [
                        c.frames, c.frame_crc_errors, c.frame_cobs_errors, c.frame_short, c.frame_oversize, c.messages_rx,
                        c.messages_tx, c.nacks_tx, c.rx_gaps, c.sessions, c.resumes, c.stale, c.events_in, c.events_out,
                        c.events_unsent, c.mailbox_dropped, c.late, c.sampled, c.steps, c.source_events,
                    ];
                    let map: serde_json::Map<String, J> =
                        names.as_array().unwrap().iter().zip(values).map(|(n, v)| (n.as_str().unwrap().to_string(), json!(v))).collect();
                    json!({ "counters": map })
                }
                ReplyBody::Latest(e) => json!({"event": e.as_ref().map(event_json)}),
                ReplyBody::Board(b) => {
                    let c = &b.capacities;
                    json!({
                        "uptime_ms": b.uptime_ms, "stack_peak": b.stack_peak, "rx_dropped": b.rx_dropped, "lockstep": b.lockstep,
                        "time_us": b.time_us,
                        "capacities": {"routes": c.routes, "nodes": c.nodes, "sources": c.sources, "windows": c.windows, "mailbox_depth": c.mailbox_depth, "window_slots": c.window_slots},
                    })
                }
            };
            for (k, v) in extra.as_object().unwrap() {
                o.insert(k.clone(), v.clone());
            }
            d
        }
        Body::Heartbeat(h) => json!({"time_us": h.time_us}),
        Body::Step(s) => json!({"to_us": s.to_us, "epoch": s.epoch}),
        Body::UploadBegin(b) => json!({"total_len": b.total_len, "sha256": hex(&b.sha256)}),
        Body::UploadChunk(c) => json!({"offset": c.offset, "data": hex(c.data)}),
        Body::UploadCommit | Body::UploadAbort | Body::Resume => json!({}),
    }
}

/// Every valid vector decodes to its fields and kind, and re-encodes to its canonical bytes.
#[test]
fn valid_messages_decode_and_reencode() {
    let v = load("link.json");
    for case in v["messages"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let bytes = unhex(case["hex"].as_str().unwrap());
        let m = Message::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.id as u64, case["id"].as_u64().unwrap(), "{name}");
        assert_eq!(snake(&format!("{:?}", m.body.kind())), case["kind"].as_str().unwrap(), "{name}");
        assert_eq!(fields_json(&m.body), case["fields"], "{name}");
        let mut out = [0u8; 4096];
        let n = m.encode(&mut out).unwrap();
        let canonical = case.get("canonical_hex").unwrap_or(&case["hex"]).as_str().unwrap();
        assert_eq!(hex(&out[..n]), canonical, "{name}: re-encoding");
    }
}

/// Every invalid vector fails to decode with its listed error (single-fault cases).
#[test]
fn invalid_messages_fail_with_their_error() {
    let v = load("link.json");
    for case in v["invalid"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let bytes = unhex(case["hex"].as_str().unwrap());
        let err = Message::decode(&bytes).err().unwrap_or_else(|| panic!("{name}: decoded"));
        assert_eq!(err.name(), case["error"].as_str().unwrap(), "{name}");
    }
}

/// The names in the vectors are this crate's: taints by bit, nack reasons by code.
#[test]
fn names_match_the_crate() {
    let v = load("link.json");
    let taints: Vec<&str> = Taint::ALL.iter().map(|t| t.name()).collect();
    let listed: Vec<&str> = v["taint_names"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(taints, listed);
    for (i, name) in v["nack_reasons"].as_array().unwrap().iter().enumerate() {
        let reason = NackReason::from_code(i as u64 + 1).unwrap();
        assert_eq!(reason_name(reason), name.as_str().unwrap());
    }
    assert_eq!(NackReason::from_code(v["nack_reasons"].as_array().unwrap().len() as u64 + 1), None);
    let images = load("images.json");
    for (i, name) in images["image_errors"].as_array().unwrap().iter().enumerate() {
        assert_eq!(snake(&format!("{:?}", ImageError::ALL[i])), name.as_str().unwrap());
    }
}

/// The greenhouse image loads on a board's executor, and each broken image is refused with
/// its listed error.
#[test]
fn images_load_or_fail_with_their_error() {
    let v = load("images.json");
    let caps = &v["capacities"];
    let c = BoardExec::capacities();
    assert_eq!(
        (c.routes, c.nodes, c.sources, c.windows, c.mailbox_depth, c.window_slots),
        (
            caps["routes"].as_u64().unwrap() as u16,
            caps["nodes"].as_u64().unwrap() as u16,
            caps["sources"].as_u64().unwrap() as u16,
            caps["windows"].as_u64().unwrap() as u16,
            caps["mailbox_depth"].as_u64().unwrap() as u16,
            caps["window_slots"].as_u64().unwrap() as u16,
        ),
        "the vectors were made for the board capacities"
    );
    let g = &v["greenhouse"];
    let mut exec = BoardExec::new();
    exec.load(&unhex(g["hex"].as_str().unwrap()), 0).expect("the greenhouse image loads");
    let p = exec.partition();
    assert_eq!(p.name.as_str(), g["partition"].as_str().unwrap());
    assert_eq!(hex(&p.manifest_id), g["manifest_id"].as_str().unwrap());
    assert_eq!(p.routes.len() as u64, g["routes"].as_u64().unwrap());
    assert_eq!(p.nodes.len() as u64, g["nodes"].as_u64().unwrap());
    assert_eq!(p.sources.len() as u64, g["sources"].as_u64().unwrap());
    assert_eq!(p.windows.len() as u64, g["windows"].as_u64().unwrap());
    for case in v["invalid"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut exec = BoardExec::new();
        let err = exec.load(&unhex(case["hex"].as_str().unwrap()), 0).err().unwrap_or_else(|| panic!("{name}: loaded"));
        assert_eq!(snake(&format!("{err:?}")), case["error"].as_str().unwrap(), "{name}");
        assert!(exec.partition().routes.is_empty(), "{name}: a refused image leaves no partition");
    }
}

// --- link protocol v1.1 ---------------------------------------------------------------------------

mod v11_vectors {
    use super::*;
    use manyfold_core::cbor::Writer;
    use manyfold_core::link::refs::{RxTime, TxTime};
    use manyfold_core::link::v11::{self, EventSink, Expanded, FromDevice, RouteCtx, RouteRefs};
    use manyfold_core::link::{Lineage, Reply};
    use manyfold_core::taint::TaintSet;
    use std::collections::HashMap;

    /// The host's references of a vector: per route (seq, declared taints), then the events.
    struct Refs {
        routes: HashMap<u16, (Option<u32>, Option<u32>)>,
        out: Vec<J>,
    }

    impl RouteRefs for Refs {
        fn seq_ref(&self, route: u16) -> Option<u32> {
            self.routes.get(&route).and_then(|r| r.0)
        }
        fn declared(&self, route: u16) -> Option<TaintSet> {
            self.routes.get(&route).and_then(|r| r.1).map(TaintSet)
        }
    }

    impl EventSink for Refs {
        fn event(&mut self, e: Expanded) {
            self.out.push(match e {
                Expanded::Event(e) => json!({"kind": "event", "fields": event_json(&e)}),
                Expanded::Missing(route) => json!({"kind": "missing", "route": route}),
            });
            // A host moves its references on with every event (the vectors' oracle does too).
            if let Expanded::Event(e) = e {
                let r = self.routes.entry(e.route).or_insert((None, None));
                r.0 = Some(r.0.map_or(e.seq, |s| s.max(e.seq)));
            }
        }
    }

    fn refs_of(case: &J) -> (Refs, RxTime, u32) {
        let mut routes = HashMap::new();
        let mut time = RxTime::default();
        let mut epoch = 0;
        if let Some(r) = case.get("refs") {
            for (k, v) in r["routes"].as_object().unwrap() {
                routes.insert(k.parse().unwrap(), (v["seq"].as_u64().map(|s| s as u32), v["declared"].as_u64().map(|d| d as u32)));
            }
            if let Some(t) = r["time_us"].as_i64() {
                time.reset(t);
            }
            epoch = r["epoch"].as_u64().unwrap() as u32;
        }
        (Refs { routes, out: Vec::new() }, time, epoch)
    }

    fn kind_name(body: &Body<'_>) -> String {
        snake(&format!("{:?}", body.kind()))
    }

    /// Every device message decodes, with the host references it comes with, to the listed
    /// messages and events; every one but an event batch or a latest reply re-encodes to its bytes.
    #[test]
    fn device_messages_decode_and_reencode() {
        for case in load("link_v11.json")["device"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let bytes = unhex(case["hex"].as_str().unwrap());
            let (mut refs, mut time, epoch) = refs_of(case);
            let got = v11::decode_from_device(&bytes, &mut refs, &mut time, epoch).unwrap_or_else(|e| panic!("{name}: {e}"));
            let decoded = match got {
                FromDevice::Events => std::mem::take(&mut refs.out),
                FromDevice::Message(m) => vec![json!({"kind": kind_name(&m.body), "fields": fields_json(&m.body)})],
            };
            assert_eq!(J::Array(decoded), case["decoded"], "{name}");
            let FromDevice::Message(m) = got else { continue };
            if matches!(m.body, Body::Reply(Reply { body: ReplyBody::Latest(_), .. })) {
                continue;
            }
            let mut out = [0u8; 512];
            let mut w = Writer::new(&mut out);
            let mut tx = TxTime::default();
            v11::write_from_device(&mut w, &m.body, &mut tx);
            let n = w.done().unwrap();
            assert_eq!(hex(&out[..n]), case["hex"].as_str().unwrap(), "{name} re-encodes");
        }
    }

    /// Every host message decodes as a device reads it and re-encodes to its bytes.
    #[test]
    fn host_messages_decode_and_reencode() {
        for case in load("link_v11.json")["host"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let bytes = unhex(case["hex"].as_str().unwrap());
            let m = v11::decode_for_device(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(kind_name(&m.body), case["kind"].as_str().unwrap(), "{name}");
            assert_eq!(u64::from(m.id), case["id"].as_u64().unwrap(), "{name}");
            let mut fields = fields_json(&m.body);
            if let Body::Step(s) = m.body {
                fields.as_object_mut().unwrap().insert("seen_us".into(), json!(s.seen_us));
            }
            assert_eq!(fields, case["fields"], "{name}");
            let mut out = [0u8; 512];
            let n = v11::encode_request(&mut out, m.id as u8, &m.body).unwrap();
            assert_eq!(hex(&out[..n]), case["hex"].as_str().unwrap(), "{name} re-encodes");
        }
    }

    fn event_of(j: &J) -> Event {
        let l = &j["lineage"];
        let v = &j["value"];
        let value = if let Some(x) = v.get("float") {
            Value::Float(x.as_f64().unwrap())
        } else if let Some(n) = v.get("int") {
            Value::Int(n.as_i64().unwrap())
        } else {
            Value::Bool(v["bool"].as_bool().unwrap())
        };
        Event {
            route: j["route"].as_u64().unwrap() as u16,
            seq: j["seq"].as_u64().unwrap() as u32,
            time_us: j["time_us"].as_i64().unwrap(),
            epoch: j["epoch"].as_u64().unwrap() as u32,
            taints: TaintSet(j["taints"].as_u64().unwrap() as u32),
            lineage: Lineage { route: l["route"].as_u64().unwrap() as u16, first_seq: l["first_seq"].as_u64().unwrap() as u32, count: l["count"].as_u64().unwrap() as u32 },
            value,
        }
    }

    /// The device chooses the form the vectors give for each event under each set of
    /// references: short only when the host can expand it exactly.
    #[test]
    fn devices_choose_the_forms_of_the_vectors() {
        for case in load("link_v11.json")["forms"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let e = event_of(&case["event"]);
            let ctx = RouteCtx { announced: case["announced"].as_bool().unwrap(), declared: TaintSet(case["declared"].as_u64().unwrap() as u32) };
            let mut tx = TxTime::default();
            tx.reset(case["acked_us"].as_i64().unwrap());
            tx.sent(case["sent_us"].as_i64().unwrap());
            let mut out = [0u8; 64];
            let mut w = Writer::new(&mut out);
            v11::write_event(&mut w, &e, ctx, &mut tx).unwrap();
            let n = w.len();
            assert_eq!(hex(&out[..n]), case["hex"].as_str().unwrap(), "{name}");
        }
    }

    /// Every invalid message fails with its listed error, in either direction.
    #[test]
    fn invalid_messages_fail_with_their_error() {
        let v = load("link_v11.json");
        for case in v["invalid_device"].as_array().unwrap() {
            let bytes = unhex(case["hex"].as_str().unwrap());
            let mut refs = Refs { routes: HashMap::new(), out: Vec::new() };
            let mut time = RxTime::default();
            time.reset(0);
            let err = v11::decode_from_device(&bytes, &mut refs, &mut time, 0).err();
            assert_eq!(err.map(|e| e.name()), Some(case["error"].as_str().unwrap()), "{}", case["name"]);
        }
        for case in v["invalid_host"].as_array().unwrap() {
            let bytes = unhex(case["hex"].as_str().unwrap());
            let err = v11::decode_for_device(&bytes).err();
            assert_eq!(err.map(|e| e.name()), Some(case["error"].as_str().unwrap()), "{}", case["name"]);
        }
    }
}
