//! Nothing accepted is lost: restarts, SIGTERM drains and kill -9 under load.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{hello, Server, TempDir};
use serde_json::json;

#[test]
fn sigterm_drains_exits_zero_and_a_restart_keeps_every_run() {
    let dir = TempDir::new("restart");
    let data = dir.path().join("data");
    let s = Server::start_at(&data, &[]);
    let ids: Vec<String> = (0..30)
        .map(|i| s.submit(json!({"preset": "hello_quantum_sim", "seed": i})))
        .collect();
    // A keep-alive client still connected must not keep the stop from
    // closing the store.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: synqc\r\n\r\n")
        .expect("request");
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).expect("response");
    assert_eq!(&head, b"HTTP/1.1 200");
    let status = s.terminate();
    assert!(status.success(), "SIGTERM exit: {status:?}");
    drop(idle);
    // The stop wrote sled's recovery snapshot, so the next start has no
    // log to replay. sled writes a snapshot at open only after replaying
    // some, so the file must be the one the stop left.
    let snapshot = snapshot_files(&data);
    assert_eq!(snapshot.len(), 1, "the stop wrote no snapshot: {snapshot:?}");
    let s = Server::start_at(&data, &[]);
    assert_eq!(
        snapshot_files(&data),
        snapshot,
        "the start replayed log the stop left"
    );
    for id in &ids {
        let done = s.wait_final(id, Duration::from_secs(60));
        assert_eq!(done["status"], "succeeded", "{id}: {done}");
    }
    let h = s.health();
    assert_eq!(h["queue"]["total"], 30);
    assert_eq!(h["queue"]["succeeded"], 30);
    assert_eq!(h["queue"]["running"], 0);
}

/// The main store's sled snapshot files (sled keeps only the newest).
fn snapshot_files(data: &Path) -> Vec<String> {
    std::fs::read_dir(data)
        .expect("data dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("snap."))
        .collect()
}

#[test]
fn kill_9_under_load_loses_nothing_accepted() {
    let dir = TempDir::new("crash");
    let data = dir.path().join("data");
    let s = Server::start_at(&data, &["--workers", "2"]);
    // 200 runs with a mix of presets, some of them slow enough to be
    // running when the process dies.
    let mut ids = Vec::new();
    for i in 0..200u64 {
        let preset = if i % 4 == 0 { "health" } else { "hello_quantum_sim" };
        ids.push(s.submit(json!({"preset": preset, "seed": i})));
    }
    let before = s.health();
    let unfinished =
        before["queue"]["queued"].as_u64().unwrap() + before["queue"]["running"].as_u64().unwrap();
    assert!(
        unfinished > 0,
        "the crash must hit work in flight: {}",
        before["queue"]
    );
    s.kill9();

    let s = Server::start_at(&data, &["--workers", "2"]);
    let deadline = Instant::now() + Duration::from_secs(240);
    for id in &ids {
        let left = deadline.saturating_duration_since(Instant::now());
        let done = s.wait_final(id, left.max(Duration::from_secs(1)));
        assert_eq!(done["status"], "succeeded", "{id}: {done}");
    }
    let h = s.health();
    assert_eq!(h["queue"]["total"], 200, "{}", h["queue"]);
    assert_eq!(h["queue"]["succeeded"], 200);
    assert_eq!(h["queue"]["running"], 0, "none stuck running");
    assert_eq!(h["queue"]["queued"], 0);
    assert_eq!(h["queue"]["expired_leases"], 0);
}

#[test]
fn kill_9_during_a_clean_stop_loses_nothing_accepted() {
    // A clean stop flushes, then reopens the store to write sled's
    // snapshot. A SIGKILL at a few points of that (the container runtime's
    // stop timeout, say) must leave every accepted run.
    let dir = TempDir::new("stopkill");
    let data = dir.path().join("data");
    let mut ids = Vec::new();
    let args = ["--workers", "0", "--max-shots-per-session", "100000000"];
    for delay_ms in [0, 5, 20, 60] {
        let s = Server::start_at(&data, &args);
        for i in 0..150u64 {
            ids.push(s.submit(json!({"preset": "hello_quantum_sim", "seed": i})));
        }
        s.sigterm();
        std::thread::sleep(Duration::from_millis(delay_ms));
        s.kill9();
    }
    let s = Server::start_at(&data, &args);
    for id in &ids {
        let run = s.get(&format!("/runs/{id}")).json();
        assert_eq!(run["status"], "queued", "{id}: {run}");
    }
    let h = s.health();
    assert_eq!(h["queue"]["total"], 600, "{}", h["queue"]);
    assert_eq!(h["queue"]["queued"], 600);
}

#[test]
fn draining_refuses_new_runs_with_retry_after() {
    // A slow run keeps the server draining long enough to be observed.
    let s = Server::start(&[
        "--workers",
        "1",
        "--shutdown-grace-seconds",
        "5",
        "--max-shots-per-experiment",
        "200000",
    ]);
    let id = s.submit(json!({"preset": "health", "shot_budget": 200000}));
    // Wait until it runs, then ask the server to stop.
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.get(&format!("/runs/{id}")).json()["status"] == "queued" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    s.sigterm();
    std::thread::sleep(Duration::from_millis(50));
    if let Ok(r) = s.client.post("/runs", &hello()) {
        // Either refused while draining, or the listener already closed.
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(r.header("Retry-After").is_some());
        assert_eq!(
            s.client.get("/health/ready").map(|r| r.status).unwrap_or(503),
            503
        );
    }
    let status = s.terminate();
    assert!(status.success());
}

/// Every run listed once, newest first, through every page of GET /runs.
fn all_listed(s: &Server) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    for _ in 0..100 {
        let page = s.get(&format!("/runs?limit=500&cursor={cursor}")).json();
        for run in page["runs"].as_array().expect("runs") {
            ids.push(run["id"].as_str().expect("id").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return ids,
        }
    }
    panic!("more than 100 pages")
}

#[test]
fn kill_9_while_runs_move_to_the_archive_keeps_counts_exact() {
    const KEEP: usize = 150;
    let dir = TempDir::new("archive-crash");
    let data = dir.path().join("data");
    let args = ["--retention-runs", "150", "--max-shots-per-session", "100000000"];
    let mut accepted = Vec::new();
    let mut s = Server::start_at(&data, &args);
    // Each round finishes runs and kills the process at a different point
    // of the 2 s maintenance pass that archives and prunes them.
    for (round, pause_ms) in [0u64, 700, 1400, 2100].into_iter().enumerate() {
        for i in 0..250u64 {
            accepted.push(s.submit(json!({"preset": "hello_quantum_sim", "seed": i})));
        }
        let last = accepted.last().expect("one").clone();
        s.wait_final(&last, Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(pause_ms));
        s.kill9();
        s = Server::start_at(&data, &args);
        // Once a maintenance pass ran, exactly the newest KEEP finished
        // runs remain, each listed once and counted once.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let q = s.health()["queue"].clone();
            if q["queued"] == 0 && q["running"] == 0 && q["succeeded"] == KEEP as u64 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: never pruned to {KEEP}: {q}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let listed = all_listed(&s);
        let newest: Vec<String> = accepted.iter().rev().take(KEEP).cloned().collect();
        assert_eq!(listed, newest, "round {round}: the newest {KEEP}, each once");
        assert_eq!(s.health()["store"]["archive"], "open");
    }
}

/// The main store's database file: at the data dir's top, or in the
/// directory a compaction named in CURRENT.
fn main_store_file(data: &Path) -> u64 {
    let dir = match std::fs::read_to_string(data.join("CURRENT")) {
        Ok(name) => data.join(name.trim()),
        Err(_) => data.to_path_buf(),
    };
    std::fs::metadata(dir.join("db")).expect("db").len()
}

#[test]
fn a_drained_backlog_leaves_a_small_main_store_after_a_clean_stop() {
    const RUNS: u64 = 12_000;
    // src/store/compact.rs: a clean stop compacts a main store file of at
    // least this size that is mostly free; a smaller file opens fast as
    // it is.
    const COMPACT_FROM: u64 = 64 << 20;
    let dir = TempDir::new("compact");
    let data = dir.path().join("data");
    // More than the default max_pending (10,000) are queued at once.
    let args = [
        "--max-shots-per-session",
        "100000000000",
        "--max-pending",
        "20000",
    ];
    // A backlog of 12,000 queued runs with 4 KB of notes each grows the
    // main store's file past the compaction threshold.
    let s = Server::start_at(&data, &[&["--workers", "0"], &args[..]].concat());
    std::thread::scope(|scope| {
        for first in 0..8 {
            let s = &s;
            scope.spawn(move || {
                for i in (first..RUNS).step_by(8) {
                    let body =
                        json!({"preset": "hello_quantum_sim", "seed": i, "notes": common::bulky_notes(i)});
                    s.submit(body);
                }
            });
        }
    });
    assert!(s.terminate().success());
    let file_before = main_store_file(&data);
    assert!(file_before >= COMPACT_FROM, "main store file {file_before} bytes");
    let s = Server::start_at(&data, &args);
    let deadline = Instant::now() + Duration::from_secs(600);
    while s.health()["queue"]["succeeded"] != RUNS {
        assert!(Instant::now() < deadline, "not drained: {}", s.health()["queue"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    let queue = s.health()["queue"].clone();

    // Once the runs executed (their results went to the archive) and the
    // maintenance pass (every 2 s) dropped what they left in the main
    // store, its file is mostly free. Either sled frees the segments at
    // its end itself and the file shrinks under the threshold (to 17-21
    // MB of 100 MB, seen), or a clean stop finds the file sparse and
    // compacts it (to under 1 MiB); which one depends on where sled put
    // the last live pages. Each stop waits for two passes.
    let mut s = Some(s);
    for _ in 0..5 {
        let running = s.take().unwrap_or_else(|| Server::start_at(&data, &args));
        std::thread::sleep(Duration::from_secs(5));
        assert!(running.terminate().success());
        if main_store_file(&data) < COMPACT_FROM {
            break;
        }
    }
    let file_after = main_store_file(&data);
    assert!(file_after < COMPACT_FROM, "{file_after} of {file_before} bytes");
    if data.join("CURRENT").exists() {
        assert!(!data.join("db").exists(), "a compaction removes the old store");
    }

    let s = Server::start_at(&data, &args);
    assert_eq!(s.health()["queue"], queue, "the same counts");
    let listed = all_listed(&s);
    assert_eq!(listed.len(), RUNS as usize);
    let run = s.get(&format!("/runs/{}", listed[4321])).json();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(run["result"]["kpis"].is_object(), "{run}");
}
