//! Store engine groundwork for Manyfold issue 14 (item 4): SQLite (WAL, rusqlite bundled) vs redb.
//!
//! Subcommands (all output is one JSON object per line on stdout):
//!   bench <runs> <dir>                    throughput: every engine x batch {1,64,1024} x {append, append+ack}
//!   child <engine> <batch> <path>         append forever, print each committed seq after commit returns
//!   crash <engine> <batch> <kills> <seed> <dir>   kill -9 the child at seeded random points, verify
//!   mktorn <engine> <n> <path>            write n records (batches of 64) then exit without closing
//!   verify <engine> <path>                open + full scan + consistency check, JSON result
//!   torn <engine> <cuts> <seed> <dir>     truncate db/WAL at seeded offsets, run `verify` in a child
//!
//! Engines: sqlite-full (WAL, synchronous=FULL), sqlite-normal (WAL, synchronous=NORMAL: weaker,
//! a committed txn may be lost on power loss but not on process crash), redb (Durability::Immediate).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const IDEM: TableDefinition<&[u8], u64> = TableDefinition::new("idem");
const ACK_LAG: u64 = 100; // ack (delete) the record appended ACK_LAG appends earlier

fn payload(seq: u64) -> [u8; 64] {
    let mut p = [0u8; 64];
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    for chunk in p.chunks_mut(8) {
        x ^= x >> 33;
        x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    p
}
fn idem_key(seq: u64) -> [u8; 16] {
    let p = payload(seq ^ 0xABCD);
    let mut k = [0u8; 16];
    k.copy_from_slice(&p[..16]);
    k
}

// ---------------------------------------------------------------- engines
trait Store {
    /// Append records seq in `seqs` (and ack the listed seqs) in one durable transaction.
    fn commit_batch(&mut self, seqs: std::ops::Range<u64>, acks: &[u64]);
}

struct Sqlite {
    conn: rusqlite::Connection,
}
impl Sqlite {
    fn open(path: &Path, sync: &str) -> rusqlite::Result<Self> {
        let conn = rusqlite::Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", sync)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS log(seq INTEGER PRIMARY KEY, payload BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS idem(key BLOB PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;",
        )?;
        Ok(Sqlite { conn })
    }
    fn max_seq(&self) -> rusqlite::Result<u64> {
        self.conn.query_row("SELECT coalesce(max(seq),0) FROM log", [], |r| r.get::<_, i64>(0)).map(|v| v as u64)
    }
}
impl Store for Sqlite {
    fn commit_batch(&mut self, seqs: std::ops::Range<u64>, acks: &[u64]) {
        let tx = self.conn.transaction().unwrap();
        {
            let mut ins = tx.prepare_cached("INSERT INTO log(seq, payload) VALUES (?1, ?2)").unwrap();
            let mut idem = tx.prepare_cached("INSERT INTO idem(key, seq) VALUES (?1, ?2)").unwrap();
            let mut del = tx.prepare_cached("DELETE FROM log WHERE seq = ?1").unwrap();
            for s in seqs {
                ins.execute(rusqlite::params![s as i64, &payload(s)[..]]).unwrap();
                idem.execute(rusqlite::params![&idem_key(s)[..], s as i64]).unwrap();
            }
            for &a in acks {
                del.execute([a as i64]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

struct Redb {
    db: Database,
}
impl Redb {
    fn open(path: &Path) -> Result<Self, redb::Error> {
        let db = Database::create(path)?;
        let w = db.begin_write()?;
        {
            w.open_table(LOG)?;
            w.open_table(IDEM)?;
        }
        w.commit()?;
        Ok(Redb { db })
    }
    fn max_seq(&self) -> Result<u64, redb::Error> {
        let r = self.db.begin_read()?;
        let t = r.open_table(LOG)?;
        Ok(t.last()?.map(|(k, _)| k.value()).unwrap_or(0))
    }
}
impl Store for Redb {
    fn commit_batch(&mut self, seqs: std::ops::Range<u64>, acks: &[u64]) {
        let mut w = self.db.begin_write().unwrap();
        w.set_durability(Durability::Immediate).unwrap();
        {
            let mut log = w.open_table(LOG).unwrap();
            let mut idem = w.open_table(IDEM).unwrap();
            for s in seqs {
                log.insert(s, &payload(s)[..]).unwrap();
                idem.insert(&idem_key(s)[..], s).unwrap();
            }
            for &a in acks {
                log.remove(a).unwrap();
            }
        }
        w.commit().unwrap();
    }
}

fn db_path(engine: &str, dir: &Path) -> PathBuf {
    if engine == "redb" { dir.join("store.redb") } else { dir.join("store.sqlite") }
}

fn open_store(engine: &str, path: &Path) -> (Box<dyn Store>, u64) {
    match engine {
        "sqlite-full" | "sqlite-normal" => {
            let s = Sqlite::open(path, if engine == "sqlite-full" { "FULL" } else { "NORMAL" }).unwrap();
            let m = s.max_seq().unwrap();
            (Box::new(s), m)
        }
        "redb" => {
            let s = Redb::open(path).unwrap();
            let m = s.max_seq().unwrap();
            (Box::new(s), m)
        }
        e => panic!("unknown engine {e}"),
    }
}

// ---------------------------------------------------------------- throughput
fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let idx = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v[idx.min(v.len() - 1)]
}

fn one_run(engine: &str, batch: u64, total: u64, ack: bool, dir: &Path) -> (f64, f64) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let (mut st, _) = open_store(engine, &db_path(engine, dir));
    let mut lat = Vec::with_capacity((total / batch) as usize);
    let mut acks = Vec::new();
    let t0 = Instant::now();
    let mut seq = 1;
    while seq <= total {
        let end = seq + batch;
        acks.clear();
        if ack {
            for s in seq..end {
                if s > ACK_LAG {
                    acks.push(s - ACK_LAG);
                }
            }
        }
        let c0 = Instant::now();
        st.commit_batch(seq..end, &acks);
        lat.push(c0.elapsed().as_secs_f64() * 1e6);
        seq = end;
    }
    let el = t0.elapsed().as_secs_f64();
    let n = seq - 1;
    drop(st);
    let _ = std::fs::remove_dir_all(dir);
    (n as f64 / el, pct(&mut lat, 99.0))
}

fn bench(runs: usize, dir: &Path) {
    let engines = ["sqlite-full", "sqlite-normal", "redb"];
    for run in 0..runs {
        for &(batch, total) in &[(1u64, 5000u64), (64, 64 * 500), (1024, 1024 * 100)] {
            for ack in [false, true] {
                for e in engines {
                    let (aps, p99) = one_run(e, batch, total, ack, &dir.join(e));
                    println!(
                        "{{\"run\":{run},\"engine\":\"{e}\",\"batch\":{batch},\"ack\":{ack},\"appends\":{total},\"appends_per_s\":{aps:.0},\"p99_commit_us\":{p99:.0},\"load1\":\"{}\"}}",
                        loadavg()
                    );
                    std::io::stdout().flush().unwrap();
                }
            }
        }
    }
}
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').next().unwrap_or("").to_string()
}

// ---------------------------------------------------------------- crash
fn child(engine: &str, batch: u64, path: &Path) {
    let (mut st, max) = open_store(engine, path);
    let out = std::io::stdout();
    let mut out = out.lock();
    writeln!(out, "open {max}").unwrap();
    out.flush().unwrap();
    let mut seq = max + 1;
    loop {
        st.commit_batch(seq..seq + batch, &[]);
        seq += batch;
        writeln!(out, "{}", seq - 1).unwrap();
        out.flush().unwrap();
    }
}

#[derive(Default)]
struct Check {
    count: u64,
    max: u64,
    min: u64,
    bad_payload: u64,
    idem_count: u64,
    idem_bad: u64,
}

fn check_sqlite(path: &Path) -> rusqlite::Result<Check> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    // STORE_BENCH_SKIP_IC=1: plain open + scan, no `PRAGMA integrity_check` (what a store would do on a fast open)
    let ic: String = if std::env::var_os("STORE_BENCH_SKIP_IC").is_some() {
        "ok".into()
    } else {
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?
    };
    if ic != "ok" {
        return Err(rusqlite::Error::InvalidParameterName(format!("integrity_check failed: {ic}")));
    }
    let mut c = Check { min: u64::MAX, ..Default::default() };
    let mut s = conn.prepare("SELECT seq, payload FROM log ORDER BY seq")?;
    let mut rows = s.query([])?;
    while let Some(r) = rows.next()? {
        let seq = r.get::<_, i64>(0)? as u64;
        let p: Vec<u8> = r.get(1)?;
        c.count += 1;
        c.max = c.max.max(seq);
        c.min = c.min.min(seq);
        if p != payload(seq) {
            c.bad_payload += 1;
        }
    }
    let mut s = conn.prepare("SELECT key, seq FROM idem")?;
    let mut rows = s.query([])?;
    while let Some(r) = rows.next()? {
        let k: Vec<u8> = r.get(0)?;
        let seq = r.get::<_, i64>(1)? as u64;
        c.idem_count += 1;
        if k != idem_key(seq) {
            c.idem_bad += 1;
        }
    }
    Ok(c)
}

fn check_redb(path: &Path) -> Result<Check, redb::Error> {
    let db = Database::open(path)?;
    let r = db.begin_read()?;
    let log = r.open_table(LOG)?;
    let idem = r.open_table(IDEM)?;
    let mut c = Check { min: u64::MAX, ..Default::default() };
    for e in log.iter()? {
        let (k, v) = e?;
        let seq = k.value();
        c.count += 1;
        c.max = c.max.max(seq);
        c.min = c.min.min(seq);
        if v.value() != &payload(seq)[..] {
            c.bad_payload += 1;
        }
    }
    for e in idem.iter()? {
        let (k, v) = e?;
        c.idem_count += 1;
        if k.value() != &idem_key(v.value())[..] {
            c.idem_bad += 1;
        }
    }
    let _ = log.len()?;
    Ok(c)
}

/// Ok(check) or Err(message). A consistent store: count == max, min == 1 (or empty), no bad rows.
fn check(engine: &str, path: &Path) -> Result<Check, String> {
    if engine == "redb" { check_redb(path).map_err(|e| e.to_string()) } else { check_sqlite(path).map_err(|e| e.to_string()) }
}
fn consistent(c: &Check) -> bool {
    c.bad_payload == 0 && c.idem_bad == 0 && c.idem_count == c.count && c.count == c.max && (c.count == 0 || c.min == 1)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

fn crash(engine: &str, batch: u64, kills: usize, seed: u64, dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let path = db_path(engine, dir);
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(seed.max(1));
    let (mut pass, mut fail) = (0, 0);
    let mut total_reported = 0u64;
    let mut unreported_durable = 0u64;
    let mut killed_before_open = 0;
    for k in 0..kills {
        let mut ch = Command::new(&exe)
            .args(["child", engine, &batch.to_string(), path.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = ch.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last: Option<u64> = None;
            let mut opened = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(l) = line else { break };
                if let Some(m) = l.strip_prefix("open ") {
                    opened = Some(m.parse::<u64>().unwrap());
                } else {
                    last = Some(l.parse().unwrap());
                }
            }
            (opened, last)
        });
        // random kill point: 1..400 ms after spawn (covers open/recovery, first commits, and steady state)
        // STORE_BENCH_KILL_MAX_MS shortens the window to hit process start / open / recovery
        let max_ms = std::env::var("STORE_BENCH_KILL_MAX_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
        let wait = rng.range(1, max_ms);
        std::thread::sleep(Duration::from_millis(wait));
        unsafe { libc::kill(ch.id() as i32, libc::SIGKILL) };
        let st = ch.wait().unwrap();
        let (opened, last) = reader.join().unwrap();
        if opened.is_none() {
            killed_before_open += 1;
        }
        let reported = last.unwrap_or(opened.unwrap_or(0));
        total_reported = total_reported.max(reported);
        let res = check(engine, &path);
        let ok = match &res {
            Ok(c) => consistent(c) && c.max >= reported,
            Err(_) => false,
        };
        if ok { pass += 1 } else { fail += 1 }
        if let Ok(c) = &res {
            unreported_durable += c.max.saturating_sub(reported);
        }
        let desc = match &res {
            Ok(c) => format!(
                "\"count\":{},\"max\":{},\"reported\":{reported},\"bad_payload\":{},\"idem\":{}",
                c.count, c.max, c.bad_payload, c.idem_count
            ),
            Err(e) => format!("\"error\":{:?},\"reported\":{reported}", e),
        };
        eprintln!("{{\"kill\":{k},\"after_ms\":{wait},\"signal\":{:?},\"ok\":{ok},{desc}}}", st.to_string());
    }
    println!(
        "{{\"test\":\"crash\",\"engine\":\"{engine}\",\"batch\":{batch},\"kills\":{kills},\"seed\":{seed},\"pass\":{pass},\"fail\":{fail},\"final_max_seq\":{total_reported},\"killed_before_open_reported\":{killed_before_open},\"sum_durable_beyond_reported\":{unreported_durable}}}"
    );
}

// ---------------------------------------------------------------- torn files
fn mktorn(engine: &str, n: u64, path: &Path) {
    let (mut st, _) = open_store(engine, path);
    let mut seq = 1;
    while seq <= n {
        st.commit_batch(seq..seq + 64, &[]);
        seq += 64;
    }
    println!("{}", seq - 1);
    std::io::stdout().flush().unwrap();
    // exit without closing: SQLite keeps its -wal file un-checkpointed, like a crash after commit
    std::process::exit(0);
}

fn verify(engine: &str, path: &Path) {
    match check(engine, path) {
        Ok(c) => println!(
            "{{\"ok\":true,\"consistent\":{},\"count\":{},\"max\":{},\"bad_payload\":{},\"idem\":{}}}",
            consistent(&c),
            c.count,
            c.max,
            c.bad_payload,
            c.idem_count
        ),
        Err(e) => println!("{{\"ok\":false,\"error\":{:?}}}", e),
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    let _ = std::fs::remove_dir_all(dst);
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

fn torn(engine: &str, cuts: usize, seed: u64, dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let orig = dir.join("orig");
    std::fs::create_dir_all(&orig).unwrap();
    let exe = std::env::current_exe().unwrap();
    let n = 64 * 300; // 19200 records
    let out = Command::new(&exe).args(["mktorn", engine, &n.to_string(), db_path(engine, &orig).to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let written: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let mut targets: Vec<PathBuf> = vec![db_path(engine, &orig)];
    let wal = orig.join("store.sqlite-wal");
    if engine != "redb" && wal.exists() {
        targets.push(wal);
    }
    let mut rng = Rng(seed.max(1));
    let mut outcome = std::collections::BTreeMap::<String, u32>::new();
    for t in &targets {
        let len = std::fs::metadata(t).unwrap().len();
        let fname = t.file_name().unwrap().to_owned();
        for i in 0..cuts {
            let cut = if i == 0 { 0 } else { rng.range(1, len) };
            let work = dir.join(format!("cut{}", i));
            copy_dir(&orig, &work);
            let f = std::fs::OpenOptions::new().write(true).open(work.join(&fname)).unwrap();
            f.set_len(cut).unwrap();
            drop(f);
            let o = Command::new(&exe).args(["verify", engine, db_path(engine, &work).to_str().unwrap()]).output().unwrap();
            let so = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let class = if !o.status.success() {
                let se = String::from_utf8_lossy(&o.stderr);
                if se.contains("panicked") { "PANIC".to_string() } else { format!("ABNORMAL_EXIT({})", o.status) }
            } else if so.contains("\"ok\":false") {
                "clean_error".to_string()
            } else if so.contains("\"consistent\":true") {
                "consistent_prefix".to_string()
            } else {
                "SILENT_GARBAGE".to_string()
            };
            eprintln!(
                "{{\"engine\":\"{engine}\",\"file\":{:?},\"len\":{len},\"cut\":{cut},\"class\":\"{class}\",\"verify\":{}}}",
                fname,
                if so.is_empty() { "null".into() } else { so.clone() }
            );
            *outcome.entry(format!("{}:{class}", fname.to_string_lossy())).or_default() += 1;
            let _ = std::fs::remove_dir_all(&work);
        }
    }
    println!("{{\"test\":\"torn\",\"engine\":\"{engine}\",\"written\":{written},\"cuts_per_file\":{cuts},\"seed\":{seed},\"outcomes\":{:?}}}", outcome);
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let p = |i: usize| PathBuf::from(&a[i]);
    match a.get(1).map(|s| s.as_str()) {
        Some("bench") => bench(a[2].parse().unwrap(), &p(3)),
        Some("child") => child(&a[2], a[3].parse().unwrap(), &p(4)),
        Some("crash") => crash(&a[2], a[3].parse().unwrap(), a[4].parse().unwrap(), a[5].parse().unwrap(), &p(6)),
        Some("mktorn") => mktorn(&a[2], a[3].parse().unwrap(), &p(4)),
        Some("verify") => verify(&a[2], &p(3)),
        Some("torn") => torn(&a[2], a[3].parse().unwrap(), a[4].parse().unwrap(), &p(5)),
        _ => eprintln!("usage: see src/main.rs header"),
    }
}
