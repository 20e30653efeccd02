//! Unit tests of the stores on real files in a temporary directory.

use std::path::PathBuf;

use super::*;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("manyfold-store-{tag}-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn full() -> StoreOptions {
    StoreOptions::new(Sync::Full)
}

#[test]
fn event_log_numbers_records_from_one_without_gaps_across_reopen_and_truncation() {
    let dir = temp_dir("log");
    let path = dir.join("a.sqlite");
    {
        let (file, rec) = StoreFile::open(&path, full(), true).unwrap();
        assert!(rec.created && rec.is_clean());
        let log = file.event_log("jobs").unwrap();
        assert_eq!(log.append(b"one").unwrap(), 1);
        assert_eq!(log.append_all(&[b"two", b"three"]).unwrap(), Some((2, 3)));
        assert_eq!(log.truncate_before(3).unwrap(), 2);
    }
    let (file, rec) = StoreFile::open(&path, full(), false).unwrap();
    assert!(!rec.created && rec.is_clean(), "{rec:?}");
    let log = file.event_log("jobs").unwrap();
    assert_eq!(log.read_from(1, 10).unwrap(), vec![(3, b"three".to_vec())]);
    assert_eq!(log.truncate_before(4).unwrap(), 1);
    assert_eq!(log.last_seq().unwrap(), 3);
    assert_eq!(log.append(b"four").unwrap(), 4);
}

#[test]
fn a_failed_transaction_keeps_nothing_and_sequence_numbers_do_not_skip() {
    let dir = temp_dir("tx");
    let (file, _) = StoreFile::open(dir.join("t.sqlite"), full(), true).unwrap();
    let log = file.event_log("l").unwrap();
    let cp = file.checkpoints("c").unwrap();
    let r: Result<(), StoreError> = file.transaction(|_| {
        log.append(b"x")?;
        cp.set("acked", 1)?;
        Err(StoreError::WriteFailed("stop".into()))
    });
    assert!(r.is_err());
    assert_eq!(log.last_seq().unwrap(), 0);
    assert_eq!(cp.get("acked").unwrap(), None);
    file.transaction(|_| {
        log.append(b"y")?;
        cp.set("acked", 1)
    })
    .unwrap();
    assert_eq!(log.read_from(1, 5).unwrap(), vec![(1, b"y".to_vec())]);
    assert_eq!(cp.get("acked").unwrap(), Some(1));
    file.begin().unwrap();
    log.append(b"z").unwrap();
    file.rollback().unwrap();
    assert_eq!(log.append(b"w").unwrap(), 2);
    assert!(matches!(file.commit(), Err(StoreError::TransactionMisuse(_))));
}

#[test]
fn snapshots_checkpoints_and_keyspaces_keep_what_was_put() {
    let dir = temp_dir("kv");
    let (file, _) = StoreFile::open(dir.join("k.sqlite"), StoreOptions::new(Sync::Normal), true).unwrap();
    let snaps = file.snapshots("view").unwrap();
    assert_eq!(snaps.latest().unwrap(), None);
    snaps.put(5, b"s5").unwrap();
    snaps.put(9, b"s9").unwrap();
    assert_eq!(snaps.latest().unwrap(), Some((9, b"s9".to_vec())));
    let ks = file.keyspace("k").unwrap();
    ks.put(b"a1", b"x").unwrap();
    ks.put(b"a2", b"y").unwrap();
    ks.put(b"b1", b"z").unwrap();
    assert_eq!(ks.scan(b"a", 10).unwrap().len(), 2);
    assert!(ks.delete(b"a1").unwrap());
    assert!(!ks.delete(b"a1").unwrap());
    assert_eq!(ks.get(b"a2").unwrap(), Some(b"y".to_vec()));
    assert_eq!(ks.len().unwrap(), 2);
}

#[test]
fn opening_a_missing_file_without_create_is_an_error_not_a_new_store() {
    let dir = temp_dir("missing");
    let err = StoreFile::open(dir.join("nope.sqlite"), full(), false).err().unwrap();
    assert_eq!(err.kind(), "open_missing");
    assert!(!dir.join("nope.sqlite").exists());
}

#[test]
fn names_with_path_characters_are_refused() {
    let dir = temp_dir("names");
    let (file, _) = StoreFile::open(dir.join("n.sqlite"), full(), true).unwrap();
    assert_eq!(file.event_log("../x").err().unwrap().kind(), "name_invalid");
    let sd = StoreDir::open(dir.join("d")).unwrap();
    assert_eq!(sd.open_store("a/b", full()).err().unwrap().kind(), "name_invalid");
}

#[test]
fn a_store_directory_reports_a_store_file_that_disappeared() {
    let dir = temp_dir("dir");
    {
        let sd = StoreDir::open(&dir).unwrap();
        let (file, rec) = sd.open_store("jobs", full()).unwrap();
        assert!(rec.created && rec.is_clean());
        file.event_log("l").unwrap().append(b"x").unwrap();
    }
    std::fs::remove_file(dir.join("jobs.sqlite")).unwrap();
    let _ = std::fs::remove_file(dir.join("jobs.sqlite-wal"));
    let sd = StoreDir::open(&dir).unwrap();
    let (file, rec) = sd.open_store("jobs", full()).unwrap();
    assert_eq!(rec.lost.len(), 1, "{rec:?}");
    assert!(rec.lost[0].contains("is missing"), "{}", rec.lost[0]);
    assert_eq!(file.event_log("l").unwrap().last_seq().unwrap(), 0);
    assert_eq!(sd.known().unwrap(), vec!["jobs".to_string()]);
}

#[test]
fn garbage_in_place_of_a_store_is_moved_aside_and_reported() {
    let dir = temp_dir("garbage");
    let path = dir.join("g.sqlite");
    std::fs::write(&path, vec![0x42u8; 9000]).unwrap();
    let (file, rec) = StoreFile::open(&path, full(), false).unwrap();
    assert_eq!(rec.lost.len(), 1, "{rec:?}");
    assert_eq!(rec.moved_aside, Some(dir.join("g.sqlite.corrupt-1")));
    assert!(dir.join("g.sqlite.corrupt-1").exists());
    assert_eq!(file.event_log("l").unwrap().append(b"x").unwrap(), 1);
}
