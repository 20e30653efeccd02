//! Durable stores under real faults: a writer process killed with kill -9 at seeded moments, a
//! torn WAL, a truncated main file, a store file that disappeared. Every case reopens without a
//! crash, keeps a gap-free prefix of what was committed, and reports any loss.
//!
//! The writer is this test binary run again with `--ignored --exact child_writer` and
//! `STORE_CHILD_*` in its environment: it appends records (a batch per transaction), printing
//! `SEQ n` after each commit returns, until it is killed or has written `STORE_CHILD_COUNT`.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use manyfold_runtime::store::{wal, StoreDir, StoreFile, StoreOptions, Sync};

const RECORD_BYTES: usize = 64;

fn payload(seq: u64) -> Vec<u8> {
    let mut out = format!("record {seq:>12} ").into_bytes();
    out.resize(RECORD_BYTES, b'.');
    out
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("manyfold-store-crash-{tag}-{}-{}", std::process::id(), fastrand::u64(..)));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// xorshift64: seeded kill points and cut offsets, the same every run.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
#[ignore = "the writer process of the tests below, run by them"]
fn child_writer() {
    let path = PathBuf::from(std::env::var("STORE_CHILD_PATH").expect("run by the crash tests"));
    let batch: u64 = std::env::var("STORE_CHILD_BATCH").unwrap().parse().unwrap();
    let count: u64 = std::env::var("STORE_CHILD_COUNT").map(|v| v.parse().unwrap()).unwrap_or(u64::MAX);
    let sync = if std::env::var("STORE_CHILD_SYNC").as_deref() == Ok("normal") { Sync::Normal } else { Sync::Full };
    let dir = StoreDir::open(path.parent().unwrap()).unwrap();
    let name = path.file_stem().unwrap().to_str().unwrap();
    let (file, _) = dir.open_store(name, StoreOptions::new(sync)).unwrap();
    let log = file.event_log("log").unwrap();
    let mut out = std::io::stdout().lock();
    let mut next = log.last_seq().unwrap() + 1;
    while next <= count {
        let last = file
            .transaction(|_| {
                let mut last = 0;
                for i in 0..batch {
                    last = log.append(&payload(next + i))?;
                }
                Ok(last)
            })
            .unwrap();
        use std::io::Write;
        writeln!(out, "SEQ {last}").unwrap();
        out.flush().unwrap();
        next = last + 1;
    }
    // Leave without closing: the WAL stays behind as a crash leaves it.
    std::process::exit(0);
}

fn spawn_writer(path: &Path, batch: u64, count: Option<u64>) -> Child {
    spawn_writer_sync(path, batch, count, Sync::Full)
}

fn spawn_writer_sync(path: &Path, batch: u64, count: Option<u64>, sync: Sync) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--ignored", "--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env("STORE_CHILD_PATH", path)
        .env("STORE_CHILD_BATCH", batch.to_string())
        .env("STORE_CHILD_SYNC", sync.word())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(n) = count {
        cmd.env("STORE_CHILD_COUNT", n.to_string());
    }
    cmd.spawn().unwrap()
}

/// The committed sequence numbers a writer printed (read to the end of its output).
fn committed(child: &mut Child) -> u64 {
    let out = child.stdout.take().unwrap();
    let mut last = 0;
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        // The first may follow the harness's "test child_writer ... ".
        if let Some(at) = line.find("SEQ ") {
            last = line[at + 4..].trim().parse().unwrap();
        }
    }
    last
}

/// Reads the whole log: checks it is 1..=n without gaps and every payload is its own; returns n.
fn check_prefix(file: &StoreFile) -> u64 {
    let log = file.event_log("log").unwrap();
    let mut expect = 1;
    loop {
        let chunk = log.read_from(expect, 4096).unwrap();
        if chunk.is_empty() {
            break;
        }
        for (seq, data) in chunk {
            assert_eq!(seq, expect, "a gap before {seq}");
            assert_eq!(data, payload(seq), "record {seq} holds another record's bytes");
            expect += 1;
        }
    }
    assert_eq!(log.last_seq().unwrap(), expect - 1);
    expect - 1
}

fn kills_keep_every_committed_record(batch: u64, seed: u64, kills: u32) {
    kills_keep_every_committed_record_at(batch, seed, kills, Sync::Full)
}

fn kills_keep_every_committed_record_at(batch: u64, seed: u64, kills: u32, sync: Sync) {
    let dir = temp_dir(&format!("kill{batch}{}", sync.word()));
    let path = dir.join("jobs.sqlite");
    let mut rng = Seeded(seed);
    let mut total_unreported = 0;
    let mut held_before = 0;
    for kill in 0..kills {
        let mut child = spawn_writer_sync(&path, batch, None, sync);
        let after_ms = 5 + rng.below(300);
        std::thread::sleep(Duration::from_millis(after_ms));
        child.kill().unwrap();
        // What this writer saw committed, or what the last one left when it saw nothing.
        let reported = committed(&mut child).max(held_before);
        let _ = child.wait();
        let sd = StoreDir::open(&dir).unwrap();
        let (file, recovery) = sd.open_store("jobs", StoreOptions::new(sync)).unwrap();
        assert!(recovery.lost.is_empty(), "kill {kill} (after {after_ms} ms): a kill -9 lost committed data: {:?}", recovery.lost);
        let held = check_prefix(&file);
        assert!(held >= reported, "kill {kill} (after {after_ms} ms): {reported} were committed but only {held} are held");
        assert!(held - reported <= batch, "kill {kill}: {held} held but only {reported} reported: more than one batch in flight");
        total_unreported += held - reported;
        held_before = held;
    }
    assert!(total_unreported <= batch * kills as u64);
}

/// kill -9 of a writer committing one record per transaction, at 20 seeded moments: every
/// record whose commit returned is there after reopening, with no gap and no loss reported.
#[test]
fn kill9_during_single_appends_loses_no_committed_record() {
    kills_keep_every_committed_record(1, 1001, 20);
}

/// The same with 32 records per transaction: a kill inside a transaction leaves none of it.
#[test]
fn kill9_during_batched_appends_loses_no_committed_record() {
    kills_keep_every_committed_record(32, 1064, 20);
}

/// Under `Sync::Normal` (no fsync per commit) a kill -9 loses nothing either: the OS holds
/// what the process wrote (10 seeded kills, 8 records per transaction).
#[test]
fn kill9_under_sync_normal_loses_no_committed_record() {
    kills_keep_every_committed_record_at(8, 77, 10, Sync::Normal);
}

/// Writes `count` records in batches of `batch` in a child that exits without closing, so the
/// WAL and wal-index stay behind; returns the store path.
fn crashed_store(tag: &str, count: u64, batch: u64) -> PathBuf {
    let dir = temp_dir(tag);
    let path = dir.join("jobs.sqlite");
    let mut child = spawn_writer(&path, batch, Some(count));
    let reported = committed(&mut child);
    assert!(child.wait().unwrap().success());
    assert_eq!(reported, count);
    path
}

fn copy_store(from: &Path, tag: &str) -> PathBuf {
    let dir = temp_dir(tag);
    for entry in fs::read_dir(from.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir.join(from.file_name().unwrap())
}

/// A WAL cut at seeded offsets inside its committed frames (what a torn write leaves): the
/// store reopens to a gap-free prefix of the committed records, and the loss is reported with
/// the number of committed frames discarded.
#[test]
fn a_torn_wal_recovers_to_a_committed_prefix_and_reports_the_loss() {
    let original = crashed_store("torn", 6_400, 64);
    let before = wal::inspect(&original);
    let committed_frames = before.shm_committed_frames.expect("the crashed writer left its wal-index");
    assert!(committed_frames > 4 && before.page_size > 0, "{before:?}");
    let frame = before.frame_bytes();
    let end = wal::WAL_HEADER_BYTES + committed_frames * frame;
    let mut rng = Seeded(42);
    // The last frame's last byte, the middle of the last frame, and 8 seeded cuts.
    let mut cuts = vec![end - 1, end - frame / 2];
    cuts.extend((0..8).map(|_| wal::WAL_HEADER_BYTES + rng.below(end - wal::WAL_HEADER_BYTES)));
    for cut in cuts {
        let path = copy_store(&original, "torncut");
        let wal_path = wal::with_suffix(&path, "-wal");
        fs::OpenOptions::new().write(true).open(&wal_path).unwrap().set_len(cut).unwrap();
        let (file, recovery) = StoreFile::open(&path, StoreOptions::new(Sync::Full), false).unwrap();
        let held = check_prefix(&file);
        assert!(held < 6_400, "cut at {cut}: all {held} records still held from a torn WAL");
        assert_eq!(recovery.lost.len(), 1, "cut at {cut}: {recovery:?}");
        let sentence = &recovery.lost[0];
        assert!(sentence.starts_with("torn WAL tail"), "{sentence}");
        assert!(recovery.wal_frames_discarded >= 1 && recovery.wal_frames_kept < committed_frames, "{recovery:?}");
        assert!(sentence.contains(&format!("after frame {}", recovery.wal_frames_kept)), "{sentence}");
        // And the store takes new records after the prefix.
        assert_eq!(file.event_log("log").unwrap().append(&payload(held + 1)).unwrap(), held + 1);
    }
}

/// A main file truncated at seeded offsets after a clean close: the open moves it aside as
/// NAME.sqlite.corrupt-N, starts an empty store that works, and reports the loss naming the
/// kept file.
#[test]
fn a_truncated_main_file_is_moved_aside_and_reported() {
    let original = crashed_store("trunc", 6_400, 64);
    {
        // Close cleanly: everything is checkpointed into the main file and the WAL removed.
        let (file, _) = StoreFile::open(&original, StoreOptions::new(Sync::Full), false).unwrap();
        assert_eq!(check_prefix(&file), 6_400);
    }
    assert!(!wal::with_suffix(&original, "-wal").exists());
    let size = fs::metadata(&original).unwrap().len();
    let mut rng = Seeded(7);
    let mut cuts = vec![0, 4096, size - 4096, size - 1];
    cuts.extend((0..6).map(|_| 1 + rng.below(size - 1)));
    for cut in cuts {
        let path = copy_store(&original, "truncut");
        fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();
        let (file, recovery) = StoreFile::open(&path, StoreOptions::new(Sync::Full), false).unwrap();
        let aside = recovery.moved_aside.clone().unwrap_or_else(|| panic!("cut at {cut} of {size}: not moved aside: {recovery:?}"));
        assert_eq!(aside, wal::with_suffix(&path, ".corrupt-1"));
        assert_eq!(fs::metadata(&aside).unwrap().len(), cut, "the damaged file is kept as it was");
        assert_eq!(recovery.lost.len(), 1, "{recovery:?}");
        assert!(recovery.lost[0].contains(&aside.display().to_string()), "{}", recovery.lost[0]);
        assert_eq!(check_prefix(&file), 0);
        assert_eq!(file.event_log("log").unwrap().append(&payload(1)).unwrap(), 1);
    }
}

/// A store file the directory created, deleted while the writer was down (with its WAL): the
/// directory reopens it empty and reports it missing; it is never recreated silently.
#[test]
fn a_missing_store_file_is_reported_by_its_directory() {
    let path = crashed_store("missing", 500, 10);
    fs::remove_file(&path).unwrap();
    fs::remove_file(wal::with_suffix(&path, "-wal")).unwrap();
    let _ = fs::remove_file(wal::with_suffix(&path, "-shm"));
    let started = Instant::now();
    let sd = StoreDir::open(path.parent().unwrap()).unwrap();
    let (file, recovery) = sd.open_store("jobs", StoreOptions::new(Sync::Full)).unwrap();
    assert_eq!(recovery.lost.len(), 1, "{recovery:?}");
    assert!(recovery.lost[0].contains("is missing, though this directory created it"), "{}", recovery.lost[0]);
    assert_eq!(check_prefix(&file), 0);
    assert!(started.elapsed() < Duration::from_secs(5));
    // A plain open without create refuses instead of making a new file.
    drop(file);
    fs::remove_file(&path).unwrap();
    let _ = fs::remove_file(wal::with_suffix(&path, "-wal"));
    let err = StoreFile::open(&path, StoreOptions::new(Sync::Full), false).err().unwrap();
    assert_eq!(err.kind(), "open_missing");
}

/// The WAL alone, its database file deleted: the WAL is kept aside, the loss reported.
#[test]
fn a_wal_without_its_database_is_kept_aside_and_reported() {
    let path = crashed_store("walonly", 300, 10);
    fs::remove_file(&path).unwrap();
    let (file, recovery) = StoreFile::open(&path, StoreOptions::new(Sync::Full), true).unwrap();
    assert_eq!(recovery.lost.len(), 1, "{recovery:?}");
    assert!(recovery.moved_aside.as_ref().is_some_and(|p| p.exists()), "{recovery:?}");
    assert_eq!(check_prefix(&file), 0);
}
