//! A filling disk must not crash the server or lose an accepted run: the
//! data directory sits on a tiny tmpfs (needs root to mount, as in CI), and
//! submits continue until the free-space reserve refuses them, or, with no
//! reserve, until a write to the disk fails.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, TempDir};
use serde_json::json;

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A 6 MiB tmpfs at `dir`/mnt, unmounted when the guard goes.
fn tiny_disk(dir: &TempDir) -> (Mount, std::path::PathBuf) {
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(&mnt)
        .status();
    assert!(
        mounted.is_ok_and(|s| s.success()),
        "mounting a tmpfs needs root (tests/run.sh runs as root in CI)"
    );
    (Mount(mnt.clone()), mnt)
}

/// The operator makes room: the tmpfs grows.
fn grow(mnt: &std::path::Path) {
    let grown = Command::new("mount")
        .args(["-o", "remount,size=256m"])
        .arg(mnt)
        .status();
    assert!(grown.is_ok_and(|s| s.success()));
}

#[test]
fn a_filling_disk_answers_503_keeps_serving_and_loses_nothing_accepted() {
    let dir = TempDir::new("full");
    let (_mount, mnt) = tiny_disk(&dir);
    let reserve = "2097152";
    let s = Server::start_at(
        &mnt.join("data"),
        &[
            "--workers",
            "1",
            "--min-free-disk-bytes",
            reserve,
            "--max-shots-per-session",
            "100000000000",
        ],
    );
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..3000u64 {
        let r = s.post(
            "/runs",
            &json!({"preset": "hello_quantum_sim", "seed": i, "notes": common::bulky_notes(i)}),
        );
        match r.status {
            202 => accepted.push(r.json()["id"].as_str().unwrap().to_string()),
            503 => {
                assert_eq!(common::code(&r), "INTERNAL_ERROR", "{}", r.body);
                assert!(
                    !r.body.contains(mnt.to_str().unwrap()),
                    "a path leaked to the client: {}",
                    r.body
                );
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert!(
        refused > 0,
        "the disk never filled ({} runs accepted)",
        accepted.len()
    );
    assert!(!accepted.is_empty());
    // Still answering, saying why, and every accepted run is readable and
    // executes (the reserve leaves room for results).
    assert_eq!(s.get("/health/live").status, 200);
    // sled reclaims log segments as it goes, so free space can rise back
    // over the reserve for a moment; keep the disk at its limit (bounded)
    // until health reports it.
    let mut store = s.health()["store"].clone();
    for i in 0..500u64 {
        if store["low_space"] == true {
            break;
        }
        let r = s.post(
            "/runs",
            &json!({"preset": "hello_quantum_sim", "seed": 10_000 + i, "notes": common::bulky_notes(10_000 + i)}),
        );
        if r.status == 202 {
            accepted.push(r.json()["id"].as_str().unwrap().to_string());
        }
        store = s.health()["store"].clone();
    }
    assert_eq!(store["low_space"], true, "{store}");
    assert_eq!(store["writable"], true, "{store}");
    for id in &accepted {
        let r = s.get(&format!("/runs/{id}"));
        assert_eq!(r.status, 200, "accepted run {id} lost: {}", r.body);
    }
    // The operator makes room (the tmpfs grows) and restarts after a hard
    // kill: every accepted run is there and runs to the end.
    s.kill9();
    grow(&mnt);
    let s = Server::start_at(&mnt.join("data"), &["--workers", "2"]);
    for id in &accepted {
        let done = s.wait_final(id, Duration::from_secs(120));
        assert_eq!(done["status"], "succeeded", "run {id} after restart: {done}");
    }
    assert_eq!(
        s.health()["queue"]["total"].as_u64(),
        Some(accepted.len() as u64),
        "a refused submit was stored"
    );
}

/// What every health surface says about the store: /health's HTTP status,
/// its store.ok and store.writable, /health/ready's status and the
/// synqc_store_up gauge.
fn store_health(s: &Server) -> (u16, bool, bool, u16, String) {
    let h = s.get("/health");
    let store = &h.json()["store"];
    let up = s
        .get("/metrics")
        .body
        .lines()
        .find(|l| l.starts_with("synqc_store_up"))
        .unwrap_or("")
        .to_string();
    (
        h.status,
        store["ok"] == true,
        store["writable"] == true,
        s.get("/health/ready").status,
        up.rsplit(' ').next().unwrap_or("").to_string(),
    )
}

#[test]
fn after_a_failed_write_every_health_field_agrees_and_the_answer_says_restart() {
    let dir = TempDir::new("enospc");
    let (_mount, mnt) = tiny_disk(&dir);
    // No reserve: the store meets the full disk.
    let s = Server::start_at(
        &mnt.join("data"),
        &[
            "--workers",
            "1",
            "--min-free-disk-bytes",
            "0",
            "--max-shots-per-session",
            "100000000000",
        ],
    );
    assert_eq!(store_health(&s), (200, true, true, 200, "1".into()));
    let mut accepted = Vec::new();
    let mut refused = None;
    for i in 0..3000u64 {
        let r = s.post(
            "/runs",
            &json!({"preset": "hello_quantum_sim", "seed": i, "notes": common::bulky_notes(i)}),
        );
        match r.status {
            202 => accepted.push(r.json()["id"].as_str().unwrap().to_string()),
            503 => {
                refused = Some(r);
                break;
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    let refused = refused.expect("the disk never filled");
    assert_eq!(common::code(&refused), "INTERNAL_ERROR", "{}", refused.body);
    let says_restart = |r: &common::Reply| {
        let d = &r.json()["detail"];
        d["action_hint"] == "Free space on the data directory's disk and restart synqc."
            && d["error_message"]
                .as_str()
                .is_some_and(|m| m.contains("refuses writes until synqc restarts"))
    };
    assert!(says_restart(&refused), "{}", refused.body);
    // Every surface says the store cannot write.
    assert_eq!(store_health(&s), (503, false, false, 503, "0".into()));
    // sled keeps the failed write's error until the database is opened
    // again: room alone does not bring writes back, and nothing claims
    // otherwise.
    grow(&mnt);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(store_health(&s), (503, false, false, 503, "0".into()));
    let again = s.post("/runs", &common::hello());
    assert_eq!(again.status, 503, "{}", again.body);
    assert!(says_restart(&again), "{}", again.body);
    // (Reads may fail too until then: sled's reads finish node splits
    // and merges, which are writes.)
    // The restart the answer asks for: writes work again, every accepted
    // run executes, and the refused one was not stored.
    s.kill9();
    let s = Server::start_at(&mnt.join("data"), &["--workers", "2"]);
    assert_eq!(store_health(&s), (200, true, true, 200, "1".into()));
    for id in &accepted {
        let done = s.wait_final(id, Duration::from_secs(120));
        assert_eq!(done["status"], "succeeded", "run {id} after restart: {done}");
    }
    assert_eq!(
        s.health()["queue"]["total"].as_u64(),
        Some(accepted.len() as u64),
        "a refused submit was stored"
    );
    s.submit(common::hello());
}
