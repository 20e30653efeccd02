//! The step executor, one operator at a time, driven the way a host drives a board in
//! lockstep: host events and steps in, events, acks, nacks and replies out.

mod common;

use common::*;
use manyfold_core::exec::Exec;
use manyfold_core::link::{
    Body, Event, Lineage, Message, NackReason, Query, QueryKind, ReplyBody, Step, Value,
};
use manyfold_core::taint::{Taint, TaintSet};

type X = Exec<16, 12, 6, 3, 4, 6>;

const ABOVE: u64 = 0;

fn start(img: &Img) -> X {
    let mut x = X::new();
    x.load(&img.build(), 0).expect("the test image loads");
    x.enter_lockstep();
    x
}

fn event(route: u64, seq: u32, time_us: i64, value: Value) -> Body<'static> {
    Body::Event(Event { route: route as u16, seq, time_us, epoch: 0, taints: TaintSet::EMPTY, lineage: Lineage::default(), value })
}

/// Sends one host message (id = `id`) and runs the executor until it is idle.
fn send(x: &mut X, rec: &mut Recorder, id: u32, body: Body<'_>) {
    let mut busy = x.step(0, &[Message { id, body }], rec);
    for _ in 0..10_000 {
        if !busy {
            return;
        }
        busy = x.step(0, &[], rec);
    }
    panic!("the executor stayed busy");
}

fn step(x: &mut X, rec: &mut Recorder, id: u32, to_us: i64) {
    send(x, rec, id, Body::Step(Step { to_us, epoch: 0, seen_us: 0 }));
}

fn floats(events: &[Event]) -> Vec<f64> {
    events
        .iter()
        .map(|e| match e.value {
            Value::Float(x) => x,
            other => panic!("expected a float, got {other:?}"),
        })
        .collect()
}

fn last_ack(rec: &Recorder) -> (u32, i64) {
    match rec.messages().last().map(|m| m.body) {
        Some(Body::Ack(a)) => (a.ref_id, a.info),
        other => panic!("expected an ack, got {other:?}"),
    }
}

fn last_nack(rec: &Recorder) -> (Option<u32>, NackReason, u32) {
    match rec.messages().last().map(|m| m.body) {
        Some(Body::Nack(n)) => (n.ref_id, n.reason, n.detail),
        other => panic!("expected a nack, got {other:?}"),
    }
}

/// Feeds float values on route `input` (seq 1, 2, ...) at event times 1000, 2000, ... (host
/// event times are the host's: they need not follow the device's clock).
fn feed(x: &mut X, rec: &mut Recorder, input: u64, values: &[f64]) {
    for (i, v) in values.iter().enumerate() {
        let seq = x.partition().routes[input as usize].seq + 1;
        send(x, rec, 100 + i as u32, event(input, seq, 1000 * (i as i64 + 1), Value::Float(*v)));
        assert_eq!(last_ack(rec).0, 100 + i as u32, "each host event is acked after its outputs");
    }
}

/// The threshold passes values strictly above its limit; each output names its one parent.
#[test]
fn threshold_passes_values_above_the_limit() {
    let mut img = Img::new();
    let input = img.inbound(FLOAT);
    let hot = img.outbound(FLOAT);
    img.op(0, input, hot, vec![u(ABOVE), f(28.0), f(0.0)]);
    let mut x = start(&img);
    let mut rec = Recorder::new();
    feed(&mut x, &mut rec, input, &[27.0, 28.0, 28.5, 30.0, 12.0]);
    let events = rec.events();
    assert_eq!(floats(&events), vec![28.5, 30.0]);
    assert_eq!(events[0].seq, 1);
    assert_eq!(events[1].seq, 2);
    assert_eq!(events[0].lineage, Lineage { route: input as u16, first_seq: 3, count: 1 });
    assert_eq!(events[0].time_us, 3000, "a filter keeps the event time");
}

/// The deadband passes a value only when it moved at least the band from the last passed one.
#[test]
fn deadband_suppresses_small_moves() {
    let mut img = Img::new();
    let input = img.inbound(FLOAT);
    let out = img.outbound(FLOAT);
    img.op(1, input, out, vec![f(0.5)]);
    let mut x = start(&img);
    let mut rec = Recorder::new();
    feed(&mut x, &mut rec, input, &[20.0, 20.2, 20.49, 20.5, 20.1, 19.9]);
    assert_eq!(floats(&rec.events()), vec![20.0, 20.5, 19.9]);
}

/// Scale and offset convert every value (12-bit ADC counts to degrees).
#[test]
fn scale_and_offset_convert() {
    let mut img = Img::new();
    let input = img.inbound(INT);
    let out = img.outbound(FLOAT);
    img.op(2, input, out, vec![f(0.1), f(-50.0)]);
    let mut x = start(&img);
    let mut rec = Recorder::new();
    send(&mut x, &mut rec, 1, event(input, 1, 5, Value::Int(2048)));
    send(&mut x, &mut rec, 2, event(input, 2, 6, Value::Int(0)));
    assert_eq!(floats(&rec.events()), vec![154.8, -50.0]);
}

/// Count windows emit every `step` values once full, with each aggregate, and name the
/// window's values as parents.
#[test]
fn count_windows_aggregate_and_name_their_parents() {
    let mut img = Img::new();
    let input = img.inbound(FLOAT);
    let mean = img.outbound(FLOAT);
    let sum = img.outbound(FLOAT);
    let min = img.outbound(FLOAT);
    let (max, count) = (1, 2); // routes of the second image
    img.op(3, input, mean, vec![u(3), u(1), u(2)]); // sliding 3, step 1, mean
    img.op(3, input, sum, vec![u(2), u(2), u(1)]); // tumbling 2, sum
    img.op(3, input, min, vec![u(3), u(3), u(3)]);
    let mut other = Img::new();
    let other_input = other.inbound(FLOAT);
    other.outbound(FLOAT);
    other.outbound(FLOAT);
    other.op(3, other_input, max, vec![u(3), u(3), u(4)]);
    other.op(3, other_input, count, vec![u(2), u(1), u(0)]);
    let mut x = X::new();
    // A fourth window operator exceeds the pool of three.
    let mut more = img.clone();
    let fourth = more.outbound(FLOAT);
    more.op(3, input, fourth, vec![u(3), u(3), u(4)]);
    assert_eq!(x.load(&more.build(), 0), Err(manyfold_core::image::ImageError::LoadTooManyWindows));
    let mut x = start(&img);
    let mut rec = Recorder::new();
    feed(&mut x, &mut rec, input, &[1.0, 2.0, 3.0, 4.0, 8.0, 0.5]);
    let events = rec.events();
    let on = |r: u64| events.iter().filter(|e| u64::from(e.route) == r).cloned().collect::<Vec<_>>();
    assert_eq!(floats(&on(mean)), vec![2.0, 3.0, 5.0, 4.166666666666667]);
    assert_eq!(floats(&on(sum)), vec![3.0, 7.0, 8.5]);
    assert_eq!(floats(&on(min)), vec![1.0, 0.5]);
    assert_eq!(on(mean)[1].lineage, Lineage { route: input as u16, first_seq: 2, count: 3 });
    assert_eq!(on(sum)[2].lineage, Lineage { route: input as u16, first_seq: 5, count: 2 });
    let mut y = start(&other);
    let mut rec = Recorder::new();
    feed(&mut y, &mut rec, other_input, &[1.0, 2.0, 3.0, 4.0, 8.0, 0.5]);
    let events = rec.events();
    let on = |r: u64| events.iter().filter(|e| u64::from(e.route) == r).cloned().collect::<Vec<_>>();
    assert_eq!(floats(&on(max)), vec![3.0, 8.0]);
    assert_eq!(floats(&on(count)), vec![2.0; 5]);
}

/// Time windows close on event time: a window goes out when a value at or after its end
/// arrives (the watermark is the largest event time seen), never on the device's clock; its
/// event time is its last microsecond. A value behind a closed window is late: counted, and
/// the next result says delivery_dropped.
#[test]
fn time_windows_close_on_event_time() {
    let mut img = Img::new();
    let input = img.inbound(FLOAT);
    let out = img.outbound(FLOAT);
    img.op(4, input, out, vec![u(1_000), u(1_000), u(2)]); // tumbling 1 ms, mean
    let mut x = start(&img);
    let mut rec = Recorder::new();
    let at = |x: &mut X, rec: &mut Recorder, seq: u32, t: i64, v: f64| send(x, rec, seq, event(input, seq, t, Value::Float(v)));
    at(&mut x, &mut rec, 1, 100, 1.0);
    at(&mut x, &mut rec, 2, 500, 2.0);
    at(&mut x, &mut rec, 3, 900, 6.0);
    step(&mut x, &mut rec, 10, 5_000);
    assert!(rec.events().is_empty(), "the device's clock closes no window");
    at(&mut x, &mut rec, 4, 1200, 10.0);
    let events = rec.events();
    assert_eq!(floats(&events), vec![3.0]);
    assert_eq!(events[0].time_us, 999, "a window's event time is its last microsecond");
    assert_eq!(events[0].lineage, Lineage { route: input as u16, first_seq: 1, count: 3 });
    at(&mut x, &mut rec, 5, 950, 99.0); // behind the closed window
    at(&mut x, &mut rec, 6, 2_000, 0.0);
    let events = rec.events();
    assert_eq!(floats(&events), vec![3.0, 10.0]);
    assert_eq!(events[1].lineage, Lineage { route: input as u16, first_seq: 4, count: 1 });
    assert!(events[1].taints.contains(Taint::DeliveryDropped), "the late value is reported on the next result");
    assert_eq!(last_ack(&rec), (6, 5_000), "a host event is acked after its outputs, with the device's time");
}

/// The rate limiter drops values beyond its budget, counts them, and marks the next value it
/// passes delivery_sampled.
#[test]
fn rate_limiter_samples_and_says_so() {
    let mut img = Img::new();
    let input = img.inbound(FLOAT);
    let out = img.outbound(FLOAT);
    img.op(5, input, out, vec![u(1), u(10_000)]); // 1 per 10 ms
    let mut x = start(&img);
    let mut rec = Recorder::new();
    feed(&mut x, &mut rec, input, &[1.0, 2.0, 3.0]); // at 1, 2, 3 ms
    send(&mut x, &mut rec, 50, event(input, 4, 12_000, Value::Float(4.0)));
    let events = rec.events();
    assert_eq!(floats(&events), vec![1.0, 4.0]);
    assert!(events[0].taints.is_empty());
    assert!(events[1].taints.contains(Taint::DeliverySampled));
}

/// Latest emits at most one value per period: the newest, marked coalesced when it replaced
/// others, with all of them as parents.
#[test]
fn latest_coalesces_per_period() {
    let mut img = Img::new();
    let input = img.inbound(FLOAT);
    let out = img.outbound(FLOAT);
    img.op(6, input, out, vec![u(10_000)]);
    let mut x = start(&img);
    let mut rec = Recorder::new();
    feed(&mut x, &mut rec, input, &[1.0, 2.0, 3.0]);
    assert!(rec.events().is_empty());
    step(&mut x, &mut rec, 60, 10_000);
    send(&mut x, &mut rec, 61, event(input, 4, 11_000, Value::Float(4.0)));
    step(&mut x, &mut rec, 62, 20_000);
    let events = rec.events();
    assert_eq!(floats(&events), vec![3.0, 4.0]);
    assert!(events[0].taints.contains(Taint::DeliveryCoalesced));
    assert_eq!(events[0].lineage, Lineage { route: input as u16, first_seq: 1, count: 3 });
    assert!(!events[1].taints.contains(Taint::DeliveryCoalesced));
}

/// An executor running one write binding with actuator delay `apply_us`, and its desired,
/// effective and reported routes.
fn write_binding(apply_us: u64) -> (X, u64, u64, u64) {
    let mut img = Img::new();
    let desired = img.inbound(FLOAT);
    let effective = img.outbound(FLOAT);
    let reported = img.outbound(FLOAT);
    img.op(7, desired, effective, vec![u(reported), u(apply_us)]);
    (start(&img), desired, effective, reported)
}

/// A write binding applies the desired value after the actuator delay: reported and effective
/// follow; while a new write is pending, effective is the old setting marked write-pending.
#[test]
fn write_binding_reports_after_the_actuator_delay() {
    let (mut x, desired, effective, reported) = write_binding(5_000);
    let mut rec = Recorder::new();
    send(&mut x, &mut rec, 1, event(desired, 1, 0, Value::Float(40.0)));
    assert!(rec.events().is_empty(), "nothing is in effect yet");
    step(&mut x, &mut rec, 2, 5_000);
    let e = rec.events();
    assert_eq!(e.iter().map(|e| (u64::from(e.route), e.value)).collect::<Vec<_>>(), vec![(reported, Value::Float(40.0)), (effective, Value::Float(40.0))]);
    assert!(e.iter().all(|e| e.lineage == Lineage { route: desired as u16, first_seq: 1, count: 1 }));
    send(&mut x, &mut rec, 3, event(desired, 2, 6_000, Value::Float(80.0)));
    let e = rec.events();
    assert_eq!(e[2].route as u64, effective);
    assert_eq!(e[2].value, Value::Float(40.0));
    assert!(e[2].taints.contains(Taint::CoherenceWritePending));
    step(&mut x, &mut rec, 4, 20_000);
    let e = rec.events();
    assert_eq!(floats(&e[3..]), vec![80.0, 80.0]);
    assert!(!e[4].taints.contains(Taint::CoherenceWritePending));
}

/// Desired values faster than the actuator delay coalesce into one pending write that still
/// applies `apply_us` after the first of them (no starvation), reported with the whole batch
/// as lineage; each of them re-emits the setting in effect marked write-pending.
#[test]
fn write_binding_coalesces_without_starving() {
    let (mut x, desired, effective, reported) = write_binding(5_000);
    let mut rec = Recorder::new();
    send(&mut x, &mut rec, 1, event(desired, 1, 0, Value::Float(10.0)));
    step(&mut x, &mut rec, 2, 5_000);
    for (i, t) in [6_000i64, 8_000, 10_000, 10_500].iter().enumerate() {
        step(&mut x, &mut rec, 10 + i as u32, *t);
        send(&mut x, &mut rec, 20 + i as u32, event(desired, 2 + i as u32, *t, Value::Float(20.0 + i as f64)));
    }
    let e = rec.events();
    let pending: Vec<_> = e[2..].iter().map(|e| (u64::from(e.route), e.value, e.taints.contains(Taint::CoherenceWritePending))).collect();
    // At 10 500 the write started at 6 000 (due 11 000) is still pending.
    assert_eq!(pending, vec![(effective, Value::Float(10.0), true); 4]);
    step(&mut x, &mut rec, 30, 11_000);
    let e = rec.events();
    let applied: Vec<_> = e[6..].iter().map(|e| (u64::from(e.route), e.value, e.time_us, e.lineage)).collect();
    let lineage = Lineage { route: desired as u16, first_seq: 2, count: 4 };
    assert_eq!(applied, vec![(reported, Value::Float(23.0), 11_000, lineage), (effective, Value::Float(23.0), 11_000, lineage)]);
    assert!(e[6..].iter().all(|e| e.taints.contains(Taint::DeliveryCoalesced) && !e.taints.contains(Taint::CoherenceWritePending)));
}

/// Sources: a triangle without noise gives exact values at exact times; noise comes from the
/// seed (same seed, same values) and marks events det_seeded_entropy; a random walk stays in
/// its range.
#[test]
fn sources_are_seeded_and_exact() {
    let mut img = Img::new();
    let tri = img.outbound(FLOAT);
    let noisy = img.outbound(FLOAT);
    let walk = img.outbound(FLOAT);
    img.source(tri, 1, 1_000, 500, 0, 20.0, 4.0, 4, 0.0);
    img.source(noisy, 0, 2_000, 0, 42, 10.0, 0.0, 1, 0.5);
    img.source(walk, 2, 1_000, 0, 7, 50.0, 1.0, 1, 0.4);
    let run = |img: &Img| {
        let mut x = start(img);
        let mut rec = Recorder::new();
        step(&mut x, &mut rec, 1, 10_000);
        rec.events()
    };
    let events = run(&img);
    let tri_events: Vec<_> = events.iter().filter(|e| u64::from(e.route) == tri).collect();
    assert_eq!(tri_events.iter().map(|e| e.time_us).collect::<Vec<_>>(), (0..10).map(|k| 500 + 1000 * k).collect::<Vec<_>>());
    let values: Vec<f64> = tri_events.iter().map(|e| if let Value::Float(v) = e.value { v } else { f64::NAN }).collect();
    assert_eq!(values[..5], [16.0, 20.0, 24.0, 20.0, 16.0]);
    assert!(tri_events.iter().all(|e| e.taints.is_empty() && e.lineage.count == 0));
    let noisy_events: Vec<_> = events.iter().filter(|e| u64::from(e.route) == noisy).collect();
    assert_eq!(noisy_events.len(), 6, "at 0, 2, 4, 6, 8 and 10 ms");
    assert!(noisy_events.iter().all(|e| e.taints.contains(Taint::DetSeededEntropy)));
    assert!(noisy_events.iter().all(|e| matches!(e.value, Value::Float(v) if (9.5..10.5).contains(&v))));
    assert_eq!(events, run(&img), "same image, same seed: same events");
    let mut other = img.clone();
    other.sources[1] = a(vec![u(noisy), u(0), u(2_000), u(0), u(43), f(10.0), f(0.0), u(1), f(0.5)]);
    assert_ne!(events, run(&other), "another seed: other values");
    assert!(events.iter().filter(|e| u64::from(e.route) == walk).all(|e| matches!(e.value, Value::Float(v) if (49.0..=51.0).contains(&v))));
}

/// A mailbox that overflows drops by its policy, counts it in the flow and counters, and the
/// node's next output (only that one) says delivery_dropped.
#[test]
fn mailbox_overflow_is_counted_and_tainted() {
    let mut img = Img::new();
    let input = img.inbound(FLOAT);
    let windows = img.route(FLOAT);
    let out = img.outbound(FLOAT);
    // Sliding windows 30 µs wide every 10 µs: a value far ahead closes the three windows that
    // hold an earlier value at once, three outputs into a 2-slot drop-newest mailbox.
    img.node(4, input, windows, vec![u(30), u(10), u(1)], 2, 1);
    img.node(2, windows, out, vec![f(1.0), f(0.0)], 2, 2);
    let mut x = start(&img);
    let mut rec = Recorder::new();
    send(&mut x, &mut rec, 1, event(input, 1, 5, Value::Float(5.0)));
    send(&mut x, &mut rec, 2, event(input, 2, 100, Value::Float(100.0)));
    let passed = rec.events();
    assert_eq!(passed.iter().map(|e| e.time_us).collect::<Vec<_>>(), vec![9, 19], "two slots: the third window is dropped");
    assert_eq!(floats(&passed), vec![5.0, 5.0]);
    // The drop happened before the node took its first item: that item says so, not the next.
    assert!(passed[0].taints.contains(Taint::DeliveryDropped));
    assert!(!passed[1].taints.contains(Taint::DeliveryDropped), "a taint marks one event, not all that follow");
    send(&mut x, &mut rec, 10, Body::Query(Query { what: QueryKind::Flow as u8, arg: 0 }));
    let flow = match rec.messages().last().unwrap().body {
        Body::Reply(r) => match r.body {
            ReplyBody::Flow(p) => p.items.iter().collect::<Vec<_>>(),
            _ => panic!(),
        },
        _ => panic!(),
    };
    assert_eq!((flow[1].dropped, flow[1].capacity, flow[1].depth), (1, 2, 0));
}

/// Every refused host event gets a nack with its reason and the event is not published.
#[test]
fn bad_host_events_are_nacked() {
    let mut img = Img::new();
    let input = img.inbound(FLOAT);
    let out = img.outbound(FLOAT);
    img.op(2, input, out, vec![f(1.0), f(0.0)]);
    let mut x = start(&img);
    let mut rec = Recorder::new();
    send(&mut x, &mut rec, 1, event(9, 1, 0, Value::Float(1.0)));
    assert_eq!(last_nack(&rec), (Some(1), NackReason::RouteUnknown, 9));
    send(&mut x, &mut rec, 2, event(out, 1, 0, Value::Float(1.0)));
    assert_eq!(last_nack(&rec), (Some(2), NackReason::RouteNotInbound, out as u32));
    send(&mut x, &mut rec, 3, event(input, 1, 0, Value::Int(1)));
    assert_eq!(last_nack(&rec), (Some(3), NackReason::ValueKindMismatch, 0));
    send(&mut x, &mut rec, 4, event(input, 1, 0, Value::Float(1.0)));
    assert_eq!(last_ack(&rec), (4, 0));
    send(&mut x, &mut rec, 5, event(input, 1, 0, Value::Float(1.0)));
    assert_eq!(last_nack(&rec), (Some(5), NackReason::SeqNotIncreasing, 1));
    send(&mut x, &mut rec, 6, Body::Resume);
    send(&mut x, &mut rec, 7, Body::Step(Step { to_us: 10, epoch: 0, seen_us: 0 }));
    assert_eq!(last_nack(&rec), (Some(7), NackReason::NotLockstep, 0));
    send(&mut x, &mut rec, 8, Body::Heartbeat(manyfold_core::link::Heartbeat { time_us: 0 }));
    assert_eq!(last_nack(&rec).1, NackReason::KindUnexpected, "heartbeats belong to the link layer");
    assert_eq!(rec.events().len(), 1);
}

/// A host event whose seq skips ahead arrives marked delivery_dropped (host events were lost).
#[test]
fn host_seq_gap_taints_the_event() {
    let mut img = Img::new();
    let input = img.inbound(FLOAT);
    let out = img.outbound(FLOAT);
    img.op(2, input, out, vec![f(1.0), f(0.0)]);
    let mut x = start(&img);
    let mut rec = Recorder::new();
    send(&mut x, &mut rec, 1, event(input, 1, 0, Value::Float(1.0)));
    send(&mut x, &mut rec, 2, event(input, 5, 0, Value::Float(2.0)));
    let e = rec.events();
    assert!(!e[0].taints.contains(Taint::DeliveryDropped));
    assert!(e[1].taints.contains(Taint::DeliveryDropped));
    assert_eq!(e[1].lineage.first_seq, 5);
}

/// Events that cannot go out while the link is down are counted, and the next one that does
/// go out says delivery_dropped.
#[test]
fn unsent_events_are_counted_and_tainted() {
    let mut img = Img::new();
    let out = img.outbound(FLOAT);
    img.source(out, 0, 1_000, 0, 0, 1.0, 0.0, 1, 0.0);
    let mut x = start(&img);
    let mut rec = Recorder::new();
    rec.down = true;
    step(&mut x, &mut rec, 1, 2_000);
    rec.down = false;
    step(&mut x, &mut rec, 2, 3_000);
    let e = rec.events();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].seq, 4, "seq numbers count every event, sent or not");
    assert!(e[0].taints.contains(Taint::DeliveryDropped));
    send(&mut x, &mut rec, 3, Body::Query(Query { what: QueryKind::Counters as u8, arg: 0 }));
    match rec.messages().last().unwrap().body {
        Body::Reply(r) => match r.body {
            ReplyBody::Counters(c) => {
                assert_eq!((c.events_unsent, c.events_out, c.source_events, c.steps), (3, 1, 4, 2));
            }
            _ => panic!(),
        },
        _ => panic!(),
    }
}

/// Queries: routes, nodes, sources, taints and flow come in pages; latest returns the last
/// event; bad arguments and unknown queries get nacks.
#[test]
fn queries_answer_with_state() {
    let mut img = Img::new();
    let input = img.inbound(FLOAT);
    let out = img.outbound(FLOAT);
    img.op(2, input, out, vec![f(2.0), f(0.0)]);
    let mut x = start(&img);
    let mut rec = Recorder::new();
    send(&mut x, &mut rec, 1, event(input, 1, 77, Value::Float(3.0)));
    let reply = |x: &mut X, rec: &mut Recorder, what: QueryKind, arg: u32| {
        send(x, rec, 99, Body::Query(Query { what: what as u8, arg }));
        rec.sent.last().unwrap().clone()
    };
    let bytes = reply(&mut x, &mut rec, QueryKind::Routes, 0);
    let Body::Reply(r) = Message::decode(&bytes).unwrap().body else { panic!() };
    assert_eq!(r.ref_id, 99);
    let ReplyBody::Routes(p) = r.body else { panic!() };
    assert_eq!((p.total, p.start, p.items.len()), (2, 0, 2));
    let routes: Vec<_> = p.items.iter().collect();
    assert_eq!((routes[0].id, routes[0].link, routes[0].seq), (0x1000, 2, 1));
    assert_eq!((routes[1].id, routes[1].link, routes[1].schema), (0x1001, 1, [1; 8]));

    let bytes = reply(&mut x, &mut rec, QueryKind::Routes, 1);
    let Body::Reply(r) = Message::decode(&bytes).unwrap().body else { panic!() };
    let ReplyBody::Routes(p) = r.body else { panic!() };
    assert_eq!((p.start, p.items.len()), (1, 1));

    let bytes = reply(&mut x, &mut rec, QueryKind::Nodes, 0);
    let Body::Reply(r) = Message::decode(&bytes).unwrap().body else { panic!() };
    let ReplyBody::Nodes(p) = r.body else { panic!() };
    let n = p.items.get(0).unwrap();
    assert_eq!((n.op, n.input, n.output, n.output2, n.capacity, n.overflow), (2, 0, 1, None, 2, 1));

    let bytes = reply(&mut x, &mut rec, QueryKind::Latest, out as u32);
    let Body::Reply(r) = Message::decode(&bytes).unwrap().body else { panic!() };
    let ReplyBody::Latest(Some(e)) = r.body else { panic!() };
    assert_eq!((e.value, e.time_us, e.seq), (Value::Float(6.0), 77, 1));

    let bytes = reply(&mut x, &mut rec, QueryKind::Taints, 0);
    let Body::Reply(r) = Message::decode(&bytes).unwrap().body else { panic!() };
    let ReplyBody::Taints(p) = r.body else { panic!() };
    assert_eq!(p.items.len(), 2);

    let bytes = reply(&mut x, &mut rec, QueryKind::Board, 0);
    let Body::Reply(r) = Message::decode(&bytes).unwrap().body else { panic!() };
    let ReplyBody::Board(b) = r.body else { panic!() };
    assert_eq!((b.lockstep, b.capacities.routes, b.capacities.window_slots), (true, 16, 6));

    send(&mut x, &mut rec, 5, Body::Query(Query { what: QueryKind::Latest as u8, arg: 7 }));
    assert_eq!(last_nack(&rec), (Some(5), NackReason::QueryBadArg, 7));
    send(&mut x, &mut rec, 6, Body::Query(Query { what: 42, arg: 0 }));
    assert_eq!(last_nack(&rec), (Some(6), NackReason::QueryUnknown, 42));
}

/// A page holds as many items as fit the link's max_message; the rest is asked for from the
/// next start.
#[test]
fn pages_shrink_to_fit_the_link() {
    let mut img = Img::new();
    for _ in 0..16 {
        img.route(FLOAT);
    }
    let mut x = start(&img);
    let mut rec = Recorder::new();
    rec.max_message = 64;
    let mut seen = 0;
    let mut pages = 0;
    while seen < 16 {
        send(&mut x, &mut rec, pages, Body::Query(Query { what: QueryKind::Routes as u8, arg: seen }));
        let bytes = rec.sent.last().unwrap().clone();
        assert!(bytes.len() <= 64);
        let Body::Reply(r) = Message::decode(&bytes).unwrap().body else { panic!("expected a reply") };
        let ReplyBody::Routes(p) = r.body else { panic!() };
        assert_eq!(u32::from(p.start), seen);
        assert!(!p.items.is_empty());
        seen += u32::from(p.items.len());
        pages += 1;
    }
    assert!(pages > 1, "16 routes do not fit one 64-byte message");
}

/// A long step is carried out over several calls (bounded work per call); messages sent
/// meanwhile are refused as busy, and the output equals that of the same step done at once.
#[test]
fn long_steps_are_bounded_and_equivalent() {
    let mut img = Img::new();
    let out = img.outbound(FLOAT);
    img.source(out, 1, 100, 0, 0, 0.0, 1.0, 8, 0.0);
    let mut x = start(&img);
    let mut rec = Recorder::new();
    assert!(x.step(0, &[Message { id: 1, body: Body::Step(Step { to_us: 10_000, epoch: 3, seen_us: 0 }) }], &mut rec));
    assert!(x.busy());
    x.step(0, &[Message { id: 2, body: Body::Step(Step { to_us: 20_000, epoch: 0, seen_us: 0 }) }], &mut rec);
    let mut calls = 2;
    while x.step(0, &[], &mut rec) {
        calls += 1;
    }
    assert!(calls >= 3, "101 source events take more than one call");
    let messages = rec.messages();
    assert!(messages.iter().any(|m| matches!(m.body, Body::Nack(n) if n.reason == NackReason::Busy && n.ref_id == Some(2))));
    let events = rec.events();
    assert_eq!(events.len(), 101);
    assert!(events.iter().all(|e| e.epoch == 3));
    assert_eq!(last_ack(&rec), (1, 10_000));

    let mut y = start(&img);
    let mut again = Recorder::new();
    step(&mut y, &mut again, 1, 5_000);
    step(&mut y, &mut again, 1, 10_000);
    assert_eq!(floats(&again.events()), floats(&events));
    send(&mut y, &mut again, 3, Body::Step(Step { to_us: 9_000, epoch: 0, seen_us: 0 }));
    assert_eq!(last_nack(&again), (Some(3), NackReason::StepBackwards, 0));
}
