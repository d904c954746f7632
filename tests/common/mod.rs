//! Starts the real synqc binary on a free loopback port with a temporary
//! data directory, and talks HTTP to it.

#![allow(dead_code)] // each test binary uses a different part of this

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
pub use synqc::client::{Client, Reply};

// The unit tests' scratch directory, the same file, so both kinds of test
// clean up the same way.
#[path = "../../src/testutil.rs"]
mod testutil;
pub use testutil::TempDir;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_synqc")
}

/// One running appliance.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub data: PathBuf,
    pub args: Vec<String>,
    pub client: Client,
    _dir: Option<TempDir>,
}

impl Server {
    /// The value of the series `series` (its name and labels exactly as
    /// /metrics writes them) in a fresh scrape; None when it is absent.
    #[allow(dead_code)] // Not every test binary reads metrics.
    pub fn find_metric(&self, series: &str) -> Option<f64> {
        let text = self.get("/metrics").body;
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
    }

    /// [`Server::find_metric`] of a series that must exist.
    #[allow(dead_code)]
    pub fn metric(&self, series: &str) -> f64 {
        self.find_metric(series)
            .unwrap_or_else(|| panic!("no {series} in /metrics"))
    }

    /// Starts synqc with extra flags (e.g. ["--workers", "1"]).
    pub fn start(extra: &[&str]) -> Server {
        Server::start_wrapped(&[], extra)
    }

    /// Starts synqc on an existing data dir (for restarts).
    pub fn start_at(data: &std::path::Path, extra: &[&str]) -> Server {
        Server::start_under(&[], data, extra)
    }

    /// Starts synqc through a wrapper command (e.g. `prlimit --nofile=…`)
    /// in a new temporary data dir.
    pub fn start_wrapped(wrapper: &[&str], extra: &[&str]) -> Server {
        let dir = TempDir::new("srv");
        let mut s = Server::start_under(wrapper, &dir.path().join("data"), extra);
        s._dir = Some(dir);
        s
    }

    fn start_under(wrapper: &[&str], data: &std::path::Path, extra: &[&str]) -> Server {
        let port = free_port();
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data-dir".into(),
            data.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        let child = command
            .args(&args)
            .env_remove("SYNQC_API_KEY")
            .env("SYNQC_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn synqc");
        let client = Client::new(&format!("http://127.0.0.1:{port}")).expect("client");
        let s = Server {
            child,
            port,
            data: data.to_path_buf(),
            args,
            client,
            _dir: None,
        };
        s.wait_ready();
        s
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.client.get("/health/ready").is_ok_and(|r| r.status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("synqc on port {} did not become ready", self.port);
    }

    pub fn get(&self, path: &str) -> Reply {
        self.client
            .get(path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.client
            .post(path, body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    pub fn send(&self, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Reply {
        let m: synqc::client::Method = method.parse().expect("method");
        smol::block_on(self.client.send(m, path, body, headers))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Submits and returns the run id (asserting 202).
    pub fn submit(&self, body: Value) -> String {
        let r = self.post("/runs", &body);
        assert_eq!(r.status, 202, "submit {body}: {}", r.body);
        r.json()["id"].as_str().expect("id").to_string()
    }

    /// Polls a run until it is final; returns its status document.
    pub fn wait_final(&self, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let v = self.get(&format!("/runs/{id}")).json();
            let s = v["status"].as_str().unwrap_or("");
            if !matches!(s, "queued" | "running") {
                return v;
            }
            assert!(Instant::now() < deadline, "run {id} still {s} after {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn health(&self) -> Value {
        self.get("/health").json()
    }

    /// Sends SIGTERM and returns at once.
    pub fn sigterm(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// SIGTERM and the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.sigterm();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st;
            }
            assert!(Instant::now() < deadline, "synqc did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn hello() -> Value {
    json!({"preset": "hello_quantum_sim"})
}

/// 4,000 letters for a run's notes, different for each `seed`: large
/// runs that fill a disk or a store quickly. Random, since stored records
/// are compressed.
pub fn bulky_notes(seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..4000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

/// The error code of an envelope.
pub fn code(r: &Reply) -> String {
    r.json()["detail"]["error_code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Runs synqc with `env` set and no SYNQC_API_KEY or SYNQC_SESSION from
/// the caller's environment; returns success and stdout + stderr.
#[allow(dead_code)] // Not every test binary runs the CLI.
pub fn synqc_env(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let out = Command::new(bin())
        .args(args)
        .env_remove("SYNQC_API_KEY")
        .env_remove("SYNQC_SESSION")
        .envs(env.iter().copied())
        .output()
        .expect("run synqc");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
