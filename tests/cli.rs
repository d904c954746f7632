//! The command line as an operator uses it: healthcheck, config check,
//! submit/status and loadtest against a real server.

mod common;

use std::process::Command;

use common::{bin, Server, TempDir};

fn synqc(args: &[&str]) -> (bool, String) {
    let out = Command::new(bin())
        .args(args)
        .env_remove("SYNQC_API_KEY")
        .output()
        .expect("run synqc");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn healthcheck_follows_readiness() {
    let s = Server::start(&[]);
    let url = format!("http://127.0.0.1:{}", s.port);
    assert!(synqc(&["healthcheck", "--url", &url]).0);
    let closed = format!("http://127.0.0.1:{}", common::free_port());
    let (ok, text) = synqc(&["healthcheck", "--url", &closed]);
    assert!(!ok, "{text}");
}

#[test]
fn config_check_prints_effective_settings_and_refuses_unknown_keys() {
    let dir = TempDir::new("cfgcheck");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "workers = 3\napi_key = \"s3cret\"\n[noise.sim_local]\nt1_us = 100.0\n",
    )
    .unwrap();
    let (ok, text) = synqc(&["config", "check", "--config", good.to_str().unwrap()]);
    assert!(ok, "{text}");
    assert!(text.contains("workers = 3"), "{text}");
    assert!(!text.contains("s3cret"), "the key was printed: {text}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "wokers = 3\n").unwrap();
    let (ok, text) = synqc(&["config", "check", "--config", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(text.contains("wokers"), "{text}");
    let (ok, text) = synqc(&["config", "keys"]);
    assert!(ok && text.contains("SYNQC_MAX_SHOTS_PER_SESSION"), "{text}");
}

#[test]
fn submit_and_status_round_trip() {
    let s = Server::start(&[]);
    let url = format!("http://127.0.0.1:{}", s.port);
    let (ok, text) = synqc(&[
        "submit",
        "--url",
        &url,
        "--preset",
        "hello_quantum_sim",
        "--seed",
        "5",
    ]);
    assert!(ok, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("submit prints JSON");
    let id = v["id"].as_str().unwrap();
    s.wait_final(id, std::time::Duration::from_secs(30));
    let (ok, text) = synqc(&["status", "--url", &url, id]);
    assert!(ok && text.contains("succeeded"), "{text}");
    let (ok, text) = synqc(&["submit", "--url", &url, "--preset", "nope"]);
    assert!(!ok && text.contains("INVALID_REQUEST"), "{text}");
}

#[test]
fn loadtest_passes_on_a_healthy_appliance_and_fails_strictly_when_runs_stall() {
    let s = Server::start(&[]);
    let url = format!("http://127.0.0.1:{}", s.port);
    let (ok, text) = synqc(&["loadtest", "--url", &url, "--runs", "60", "--concurrency", "8"]);
    assert!(ok, "{text}");
    assert!(text.contains("submitted 60 runs"), "{text}");
    assert!(text.contains("loadtest: ok"), "{text}");
    // An appliance that accepts but never executes: runs stay unfinished
    // and the queue does not drain, so strict mode fails...
    let stalled = Server::start(&["--workers", "0"]);
    let url = format!("http://127.0.0.1:{}", stalled.port);
    let (ok, text) = synqc(&[
        "loadtest",
        "--url",
        &url,
        "--runs",
        "10",
        "--concurrency",
        "4",
        "--timeout-seconds",
        "2",
    ]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("unfinished") && text.contains("did not drain"),
        "{text}"
    );
    // ...and --no-strict reports the same problems but exits 0.
    let (ok, text) = synqc(&[
        "loadtest",
        "--url",
        &url,
        "--runs",
        "5",
        "--timeout-seconds",
        "1",
        "--no-strict",
    ]);
    assert!(ok && text.contains("not strict"), "{text}");
}

#[test]
fn backup_while_serving_and_restore_into_a_new_store() {
    let dir = TempDir::new("backup");
    let s = Server::start(&["--workers", "1"]);
    let url = format!("http://127.0.0.1:{}", s.port);
    let mut ids = Vec::new();
    for i in 0..12u64 {
        ids.push(s.submit(serde_json::json!({"preset": "hello_quantum_sim", "seed": i})));
    }
    for id in &ids {
        s.wait_final(id, std::time::Duration::from_secs(30));
    }
    assert_eq!(
        s.post("/controls/profile", &serde_json::json!({"drive_bias": 1.2}))
            .status,
        200
    );
    // Runs still arriving while the backup streams.
    let late: Vec<String> = (0..5)
        .map(|i| s.submit(serde_json::json!({"preset": "health", "seed": 100 + i})))
        .collect();
    let file = dir.path().join("synqc.jsonl");
    let (ok, text) = synqc(&["backup", "--url", &url, "--out", file.to_str().unwrap()]);
    assert!(ok, "{text}");
    let restored = dir.path().join("restored");
    let (ok, text) = synqc(&[
        "restore",
        "--in",
        file.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("restored 17 runs"), "{text}");
    // Restoring over an existing store is refused.
    let (ok, text) = synqc(&[
        "restore",
        "--in",
        file.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("not empty"), "{text}");

    let r = Server::start_at(&restored, &[]);
    for id in &ids {
        let a = s.get(&format!("/runs/{id}")).json();
        let b = r.get(&format!("/runs/{id}")).json();
        assert_eq!(a["result"], b["result"], "run {id} differs after restore");
        assert_eq!(b["status"], "succeeded");
    }
    // Runs that were queued or running at backup time run after restore.
    for id in &late {
        assert_eq!(
            r.wait_final(id, std::time::Duration::from_secs(60))["status"],
            "succeeded"
        );
    }
    assert_eq!(r.get("/controls/profile").json()["drive_bias"], 1.2);
    assert_eq!(r.health()["queue"]["total"], 17);
    assert_eq!(r.health()["queue"]["succeeded"], 17);
    // A cut file is refused and leaves nothing behind.
    let text = std::fs::read_to_string(&file).unwrap();
    let cut = dir.path().join("cut.jsonl");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let target = dir.path().join("from-cut");
    let (ok, out) = synqc(&[
        "restore",
        "--in",
        cut.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    assert!(!ok, "{out}");
    assert!(!target.exists());
}
