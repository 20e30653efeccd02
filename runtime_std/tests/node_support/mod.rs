//! Running `manyfold-node` processes on loopback for the node process tests: start one and read
//! its ready line, ask its admin endpoint, wait for a condition with a bound, stop it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A fixture manifest's path.
pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// One running node.
pub struct NodeProc {
    pub name: String,
    pub child: Child,
    pub ready: Value,
    lines: mpsc::Receiver<String>,
}

/// A node's command line: `--node NAME --node-id ID --partition P` on `manifest`, listening
/// and with an admin endpoint on loopback ports the OS chooses, plus `extra`.
pub fn args(manifest: &str, name: &str, id: u16, partitions: &[&str], extra: &[String]) -> Vec<String> {
    let mut a = vec!["--manifest".into(), fixture(manifest), "--node".into(), name.into(), "--node-id".into(), id.to_string()];
    for p in partitions {
        a.extend(["--partition".to_string(), p.to_string()]);
    }
    a.extend(["--listen".into(), "127.0.0.1:0".into(), "--admin".into(), "127.0.0.1:0".into()]);
    a.extend(extra.iter().cloned());
    a
}

/// Runs the binary to completion (for start-up errors): exit status and stderr.
pub fn run_to_end(args: &[String]) -> (ExitStatus, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_manyfold-node")).args(args).output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

impl NodeProc {
    /// Starts a node and waits (at most 10 s) for its ready line.
    pub fn start(name: &str, args: &[String]) -> NodeProc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_manyfold-node"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = lines.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("node {name} printed no ready line"));
        let ready: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(ready["ready"], json!(true));
        assert_eq!(ready["node"], json!(name));
        NodeProc { name: name.into(), child, ready, lines }
    }

    /// `HOST:PORT` it listens on.
    pub fn listen(&self) -> String {
        self.ready["listen"].as_str().unwrap().to_string()
    }

    /// Asks its admin endpoint.
    pub fn ask(&self, request: Value) -> Value {
        ask(self.ready["admin"].as_str().unwrap(), request)
    }

    /// Its status.
    pub fn status(&self) -> Value {
        self.ask(json!({"q": "status"}))
    }

    /// One link of its status.
    pub fn link(&self, name: &str) -> Value {
        let status = self.status();
        status["links"].as_array().unwrap().iter().find(|l| l["name"] == json!(name)).cloned().unwrap()
    }

    /// Publishes `values` on `route` through the admin endpoint.
    pub fn publish(&self, route: &str, values: &[f64]) {
        let answer = self.ask(json!({"q": "publish", "route": route, "values": values}));
        assert_eq!(answer["published"], json!(values.len()), "{answer}");
    }

    /// The envelopes `route` retains here.
    pub fn history(&self, route: &str) -> Vec<Value> {
        self.ask(json!({"q": "history", "route": route}))["envelopes"].as_array().unwrap().clone()
    }

    /// Sends SIGTERM and waits (at most 10 s) for the exit; returns the exit status and the
    /// stopped line.
    pub fn terminate(mut self) -> (ExitStatus, Value) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = wait_exit(&mut self.child, Duration::from_secs(10));
        let line = self.lines.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
        (status, serde_json::from_str(&line).unwrap_or(Value::Null))
    }

    /// kill -9.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_exit(child: &mut Child, bound: Duration) -> ExitStatus {
    let end = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < end, "the node did not exit within {bound:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One admin request and its answer.
pub fn ask(addr: &str, request: Value) -> Value {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    writer.write_all(format!("{request}\n").as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap()
}

/// Waits until `check` returns `Some`, at most `bound`; panics naming `what` otherwise.
pub fn wait_for<T>(what: &str, bound: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + bound;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {bound:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The taint names of an envelope.
pub fn taints(env: &Value) -> Vec<String> {
    env["taints"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
}

pub const RAW: &str = "read.raw.a.temp.raw.event.v1";
pub const SCALED: &str = "read.raw.a.temp.scaled.event.v1";
pub const B_OUT: &str = "read.raw.b.temp.out.event.v1";
pub const C_OUT: &str = "read.raw.c.temp.out.event.v1";
