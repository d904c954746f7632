//! Queue order, earliest start and pauses, against the real binary:
//! positions under priorities and not_before, a pause that outlives a
//! restart, and a paused target whose runs wait while others run.

mod common;

use std::time::{Duration, Instant};

use common::{code, hello, Server, TempDir};
use serde_json::{json, Value};

fn run(s: &Server, id: &str) -> Value {
    s.get(&format!("/runs/{id}")).json()
}

/// Asserts the run stays queued for `for_` (polling): nothing starts it.
fn stays_queued(s: &Server, id: &str, for_: Duration) {
    let until = Instant::now() + for_;
    while Instant::now() < until {
        let v = run(s, id);
        assert_eq!(v["status"], "queued", "{v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn positions_follow_priority_then_age_and_a_scheduled_run_waits() {
    let s = Server::start(&["--workers", "0"]);
    let explore = s.submit(hello());
    let calibrate = s.submit(json!({"preset": "hello_quantum_sim", "mode": "calibrate"}));
    let urgent = s.submit(json!({"preset": "hello_quantum_sim", "priority": 9}));
    let now = s.health()["server_time"].as_str().unwrap().to_string();
    // A year ahead, as RFC 3339 text: the server's own time, a year on.
    let next_year: i64 = now[..4].parse::<i64>().unwrap() + 1;
    let later = format!("{next_year}{}", &now[4..]);
    let scheduled = s.submit(json!({"preset": "hello_quantum_sim", "not_before": later}));
    let low = s.submit(json!({"preset": "hello_quantum_sim", "priority": 0}));

    let position = |id: &str| run(&s, id)["queue_position"].clone();
    assert_eq!(position(&urgent), 0);
    assert_eq!(position(&calibrate), 1, "calibrate (7) before explore (4)");
    assert_eq!(position(&explore), 2);
    assert_eq!(position(&low), 3, "the scheduled run is not due, so not ahead");
    assert_eq!(position(&scheduled), 3, "once due: behind the three before it");

    let v = run(&s, &scheduled);
    assert_eq!(v["priority"], 4, "{v}");
    assert!(
        v["scheduled_for"]
            .as_str()
            .is_some_and(|t| t.starts_with(&next_year.to_string())),
        "{v}"
    );
    assert!(v["not_before"].as_f64().is_some(), "{v}");
    assert_eq!(run(&s, &explore)["scheduled_for"], Value::Null);
    assert_eq!(run(&s, &calibrate)["priority"], 7);
    let queued = s.get("/runs?status=queued").json();
    let listed: Vec<&str> = queued["runs"]
        .as_array()
        .expect("a list of runs")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert!(listed.contains(&scheduled.as_str()), "{queued}");
    assert_eq!(s.metric("synqc_queue_future_depth"), 1.0);
    assert_eq!(s.metric("synqc_queue_ready_depth"), 4.0);

    for (body, field) in [
        (json!({"preset": "health", "priority": 10}), "priority"),
        (json!({"preset": "health", "priority": "high"}), "priority"),
        (
            json!({"preset": "health", "not_before": "next tuesday"}),
            "not_before",
        ),
        (json!({"preset": "health", "not_before": 1.9e12}), "not_before"),
    ] {
        let r = s.post("/runs", &body);
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        let detail = &r.json()["detail"];
        assert!(
            detail["error_detail"].to_string().contains(field),
            "{body}: {detail}"
        );
        assert!(
            !detail["action_hint"].as_str().unwrap_or("").is_empty(),
            "{detail}"
        );
    }
    assert_eq!(
        s.health()["queue"]["queued"],
        5,
        "the bad requests changed nothing"
    );
}

#[test]
fn a_pause_outlives_a_kill_and_a_restart_and_resume_runs_the_queue() {
    let dir = TempDir::new("pause");
    let data = dir.path().join("data");
    let s = Server::start_at(&data, &["--workers", "1"]);
    let r = s.post("/queue/pause", &json!({"reason": "fridge warm-up"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["paused"]["queue"]["reason"], "fridge warm-up");
    let r = s.post("/runs", &hello());
    assert_eq!(r.status, 202, "submits are still accepted: {}", r.body);
    let warnings = r.json()["warnings"].to_string();
    assert!(
        warnings.contains("paused") && warnings.contains("fridge warm-up"),
        "{warnings}"
    );
    let id = r.json()["id"].as_str().unwrap().to_string();
    stays_queued(&s, &id, Duration::from_millis(800));
    assert_eq!(s.health()["paused"]["queue"]["reason"], "fridge warm-up");
    assert_eq!(s.metric("synqc_queue_paused{target=\"all\"}"), 1.0);
    assert_eq!(s.metric("synqc_queue_paused{target=\"sim_local\"}"), 0.0);
    // Held back by the pause: not ready, so no worker alert fires for it.
    assert_eq!(s.metric("synqc_queue_ready_depth"), 0.0);
    assert_eq!(s.health()["queue"]["oldest_queued_age_s"], Value::Null);
    s.kill9();

    let s = Server::start_at(&data, &["--workers", "1"]);
    let paused = &s.health()["paused"];
    assert_eq!(paused["queue"]["reason"], "fridge warm-up", "{paused}");
    stays_queued(&s, &id, Duration::from_millis(800));
    let r = s.post("/queue/resume", &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["was_paused"], true);
    assert_eq!(r.json()["paused"]["queue"], Value::Null);
    let done = s.wait_final(&id, Duration::from_secs(30));
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(s.metric("synqc_queue_paused{target=\"all\"}"), 0.0);

    // And the resume outlives a restart too (a clean stop this time).
    assert!(s.terminate().success());
    let s = Server::start_at(&data, &["--workers", "1"]);
    assert_eq!(s.health()["paused"]["queue"], Value::Null);
}

#[test]
fn a_paused_targets_runs_wait_while_other_targets_run() {
    let s = Server::start(&["--workers", "1", "--allow-provider-simulation", "true"]);
    let r = s.post(
        "/queue/pause",
        &json!({"hardware_target": "ibm_quantum", "reason": "recalibrating"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let held =
        s.submit(json!({"preset": "hello_quantum_sim", "hardware_target": "ibm_quantum", "priority": 9}));
    let other = s.submit(json!({"preset": "hello_quantum_sim", "hardware_target": "sim_local"}));
    let done = s.wait_final(&other, Duration::from_secs(30));
    assert_eq!(done["status"], "succeeded", "{done}");
    stays_queued(&s, &held, Duration::from_millis(500));
    assert_eq!(run(&s, &held)["queue_position"], 0, "where it will be on resume");

    let targets = s.get("/hardware/targets").json();
    let view = |id: &str| {
        targets["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        view("ibm_quantum")["paused"]["reason"],
        "recalibrating",
        "{targets}"
    );
    assert_eq!(view("sim_local")["paused"], Value::Null);
    assert_eq!(
        s.health()["paused"]["targets"]["ibm_quantum"]["reason"],
        "recalibrating"
    );
    assert_eq!(s.metric("synqc_queue_paused{target=\"ibm_quantum\"}"), 1.0);

    // Bad requests name what is wrong and change nothing.
    let r = s.post("/queue/pause", &json!({"hardware_target": "ibm_quantun"}));
    assert_eq!(
        (r.status, code(&r).as_str()),
        (400, "INVALID_TARGET"),
        "{}",
        r.body
    );
    let r = s.post("/queue/resume", &json!({"target": "ibm_quantum"}));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("target"), "{}", r.body);
    let r = s.post("/queue/pause", &json!({"reason": 5}));
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(s.health()["paused"]["queue"], Value::Null);
    assert_eq!(run(&s, &held)["status"], "queued");

    let r = s.post("/queue/resume", &json!({"hardware_target": "ibm_quantum"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let done = s.wait_final(&held, Duration::from_secs(30));
    assert_eq!(done["status"], "succeeded", "{done}");
    let r = s.post("/queue/resume", &json!({"hardware_target": "ibm_quantum"}));
    assert_eq!(r.json()["was_paused"], false, "{}", r.body);
}
