//! Fleet tests on the greenhouse sensor partition (images written by
//! `greenhouse_spec(seed).encode()`).

use manyfold_core::taint::Taint;

use super::*;

const GREENHOUSE_1: &[u8] = include_bytes!("testdata/greenhouse_seed1.img");
const GREENHOUSE_5: &[u8] = include_bytes!("testdata/greenhouse_seed5.img");

fn config(n: usize, faults: BoardFaults, step_us: i64) -> FleetConfig {
    FleetConfig {
        board: "lm3s6965evb".into(),
        images: (0..n).map(|i| reseed(GREENHOUSE_1, 1 + i as u64).unwrap()).collect(),
        sessions: (0..n).map(|i| (1 + i as u32) | 1).collect(),
        step_us,
        faults: vec![faults; n],
        record: (0..n).collect(),
    }
}

/// Runs a fleet to `t_us`; returns every tick's events, in order.
fn run(config: FleetConfig, t_us: i64) -> (Fleet, Vec<FleetEvent>) {
    let mut fleet = Fleet::new(config).unwrap();
    let mut all = Vec::new();
    fleet.run_to(t_us, &mut |_, events| all.extend_from_slice(events));
    (fleet, all)
}

fn key(e: &FleetEvent) -> (u32, u16, u32, i64, u32, u32, u16, u32, u32, u64) {
    (e.board, e.route, e.seq, e.time_us, e.epoch, e.taints.0, e.lineage.route, e.lineage.first_seq, e.lineage.count, e.value_f64().to_bits())
}

/// Reseeding greenhouse_spec(1)'s image with 5 gives greenhouse_spec(5)'s, byte for byte.
#[test]
fn reseed_matches_the_seeded_spec() {
    // The manifest id (body bytes 4..36) names the seeds too; reseeding keeps the first one.
    let masked = |img: &[u8]| [&img[..8], &img[16..20], &img[52..]].concat();
    let five = reseed(GREENHOUSE_1, 5).unwrap();
    assert_eq!(masked(&five), masked(GREENHOUSE_5));
    assert_eq!(five[12..16], manyfold_core::framing::crc32c(&five[16..]).to_le_bytes());
    assert_eq!(reseed(GREENHOUSE_1, 1).unwrap(), GREENHOUSE_1);
    assert!(reseed(&GREENHOUSE_1[..20], 5).unwrap_err().contains("cannot be reseeded"));
}

/// With no faults every board steps to every tick, events flow, nothing is tainted by the link,
/// and the merged events of a tick are ordered by (time, board).
#[test]
fn clean_fleet_steps_every_board() {
    let (fleet, all) = run(config(4, BoardFaults::default(), 100_000), 5_000_000);
    assert_eq!(fleet.now_us(), 5_000_000);
    for i in 0..4 {
        let r = fleet.board(i).unwrap();
        assert_eq!(r.device_time_us, 5_000_000, "board {i}");
        assert_eq!(r.steps, 50);
        assert_eq!(r.host.frame_errors + r.host.rx_gaps, 0);
        assert!(r.events > 20, "board {i}: {} events", r.events);
        assert!(!r.taints.contains(Taint::DeliveryDropped));
    }
    assert!(all.iter().any(|e| e.board == 3));
    // Boards differ (their seeds do).
    let values = |b: u32| all.iter().filter(|e| e.board == b).map(|e| e.value_f64().to_bits()).collect::<Vec<_>>();
    assert_ne!(values(0), values(1));
}

/// Within each tick, events come ordered by (time, board).
#[test]
fn tick_events_are_merged_by_time_then_board() {
    let mut fleet = Fleet::new(config(5, BoardFaults::default(), 500_000)).unwrap();
    let mut ticks = 0;
    fleet.run_to(5_000_000, &mut |_, events| {
        ticks += 1;
        assert!(events.windows(2).all(|w| (w[0].time_us, w[0].board) <= (w[1].time_us, w[1].board)));
    });
    assert_eq!(ticks, 10);
}

/// The same seeds and faults give the same events and counters; another fault seed does not.
#[test]
fn faults_are_reproducible() {
    let faults = BoardFaults { seed: 7, drop: 0.002, corrupt: 0.002, resets_per_hour: 360.0, skew_ppm: 0 };
    let (a, ea) = run(config(3, faults, 100_000), 20_000_000);
    let (b, eb) = run(config(3, faults, 100_000), 20_000_000);
    assert_eq!(ea.iter().map(key).collect::<Vec<_>>(), eb.iter().map(key).collect::<Vec<_>>());
    for i in 0..3 {
        assert_eq!(a.board(i), b.board(i));
        assert_eq!(a.transcript(i).unwrap().frames, b.transcript(i).unwrap().frames);
    }
    let (_, ec) = run(config(3, BoardFaults { seed: 8, ..faults }, 100_000), 20_000_000);
    assert_ne!(ea.iter().map(key).collect::<Vec<_>>(), ec.iter().map(key).collect::<Vec<_>>());
}

/// A board whose clock runs 1000 ppm fast (or slow) is stepped to t·(1 ± 0.001).
#[test]
fn skew_moves_the_board_clock() {
    let mut c = config(2, BoardFaults::default(), 100_000);
    c.images[1] = c.images[0].clone();
    c.faults[0].skew_ppm = 1000;
    c.faults[1].skew_ppm = -1000;
    let (fleet, all) = run(c, 10_000_000);
    assert_eq!(fleet.board(0).unwrap().device_time_us, 10_010_000);
    assert_eq!(fleet.board(1).unwrap().device_time_us, 9_990_000);
    let last = |b: u32| all.iter().filter(|e| e.board == b).map(|e| e.time_us).max().unwrap();
    let count = |b: u32| all.iter().filter(|e| e.board == b).count();
    assert!(last(0) <= 10_010_000 && last(1) <= 9_990_000);
    assert!(count(0) > count(1), "{} vs {} events", count(0), count(1));
}

/// Reboots: the board answers the next step with no_session, the host end says hello again, and
/// the board steps on to the fleet's time, with its events flowing again.
#[test]
fn a_rebooted_board_recovers() {
    let faults = BoardFaults { seed: 3, resets_per_hour: 1800.0, ..BoardFaults::default() };
    let (fleet, all) = run(config(2, faults, 100_000), 30_000_000);
    for i in 0..2 {
        let r = fleet.board(i).unwrap();
        assert!(r.resets >= 3, "board {i}: {} resets", r.resets);
        assert!(r.rehellos >= r.resets, "board {i}: {r:?}");
        assert_eq!(r.host.sessions as u64, 1 + r.rehellos, "board {i}: {:?}", r.host);
        assert!(r.ready);
        assert_eq!(r.device_time_us, 30_000_000, "board {i}");
        // Sequence numbers restarted at least once, and events reached the last second.
        let mine: Vec<_> = all.iter().filter(|e| e.board == i as u32).collect();
        let busiest = (0..8u16).max_by_key(|r| mine.iter().filter(|e| e.route == *r).count()).unwrap();
        let seqs: Vec<_> = mine.iter().filter(|e| e.route == busiest).map(|e| e.seq).collect();
        assert!(seqs.windows(2).any(|w| w[1] < w[0]), "board {i}: no restart in {seqs:?}");
        assert!(all.iter().any(|e| e.board == i as u32 && e.time_us > 29_000_000));
    }
}

/// Lost and damaged bytes show in the host end's counters and as delivery_dropped taints, and
/// every board still reaches the fleet's time.
#[test]
fn byte_faults_show_in_counters_and_taints() {
    let faults = BoardFaults { seed: 11, drop: 0.001, corrupt: 0.001, ..BoardFaults::default() };
    let (fleet, _) = run(config(3, faults, 100_000), 30_000_000);
    for i in 0..3 {
        let r = fleet.board(i).unwrap();
        assert!(r.to_device.dropped + r.from_device.dropped > 0);
        assert!(r.to_device.corrupted + r.from_device.corrupted > 0);
        assert!(r.host.frame_errors > 0, "board {i}: {:?}", r.host);
        assert!(r.host.rx_gaps > 0 && r.taints.contains(Taint::DeliveryDropped), "board {i}: {r:?}");
        assert!(r.device_time_us >= 29_000_000, "board {i}: {r:?}");
    }
}

/// Bad configurations are refused in one sentence.
#[test]
fn bad_configurations_are_refused() {
    let err = |c: FleetConfig| Fleet::new(c).err().unwrap();
    assert_eq!(err(config(0, BoardFaults::default(), 100_000)), "a fleet needs at least one board");
    assert!(err(config(2, BoardFaults::default(), 0)).contains("step_us"));
    let mut c = config(2, BoardFaults::default(), 100_000);
    c.record = vec![2];
    assert!(err(c).contains("cannot record board 2"));
    let mut c = config(2, BoardFaults::default(), 100_000);
    c.board = "pdp11".into();
    assert!(err(c).contains("unknown board"));
    assert!(err(config(1, BoardFaults { drop: 2.0, ..BoardFaults::default() }, 100_000)).contains("drop probability"));
}
