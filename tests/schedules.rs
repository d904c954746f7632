//! Schedules against the real binary: the routes and their errors, firing
//! on time, a refusal recorded once per period, and exactly once per
//! period across kill -9 restarts, counted against the wall clock.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{code, Server, TempDir};
use serde_json::{json, Value};

fn wall() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Every run listed, by id.
fn all_runs(s: &Server) -> Vec<Value> {
    let mut runs = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let path = match &cursor {
            Some(c) => format!("/runs?limit=500&cursor={c}"),
            None => "/runs?limit=500".to_string(),
        };
        let page = s.get(&path);
        assert_eq!(page.status, 200, "GET {path}: {}", page.body);
        let page = page.json();
        runs.extend(page["runs"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return runs,
        }
    }
    panic!("GET /runs did not end after 100 pages");
}

/// The periods (start, in ms) that schedule `name`'s runs were fired for,
/// one entry per run.
fn fired_periods(s: &Server, name: &str) -> Vec<u64> {
    all_runs(s)
        .iter()
        .filter(|r| r["schedule"]["name"] == name)
        .map(|r| (r["schedule"]["period_at"].as_f64().expect("period_at") * 1000.0).round() as u64)
        .collect()
}

fn send(s: &Server, method: &str, path: &str, body: Option<&Value>) -> common::Reply {
    s.send(method, path, body, &[])
}

#[test]
fn schedules_are_validated_fire_on_time_and_can_be_paused_and_deleted() {
    let s = Server::start(&["--workers", "1"]);
    let hello = json!({"preset": "hello_quantum_sim", "shot_budget": 200});

    // Bad bodies: 422 naming each field, with an action, and nothing stored.
    for (body, loc) in [
        (json!({"request": hello, "every_seconds": 5}), "name"),
        (
            json!({"name": "a b", "request": hello, "every_seconds": 5}),
            "name",
        ),
        (json!({"name": "x", "request": hello}), "every_seconds"),
        (
            json!({"name": "x", "request": hello, "every_seconds": 0}),
            "every_seconds",
        ),
        (json!({"name": "x", "request": hello, "cron": "* * *"}), "cron"),
        (
            json!({"name": "x", "request": hello, "every_seconds": 5, "cron": "0 * * * *"}),
            "cron",
        ),
        (
            json!({"name": "x", "request": hello, "every_seconds": 5, "catch_up": "all"}),
            "catch_up",
        ),
        (
            json!({"name": "x", "request": hello, "every_seconds": 5, "colour": 1}),
            "colour",
        ),
        (
            json!({"name": "x", "request": {"preset": "nope"}, "every_seconds": 5}),
            "request.preset",
        ),
    ] {
        let r = s.post("/schedules", &body);
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        let d = &r.json()["detail"];
        let locs: Vec<&str> = d["error_detail"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .filter_map(|f| f["loc"].as_str())
            .collect();
        assert!(locs.contains(&loc), "{body}: {locs:?} lacks {loc}");
        assert!(!d["action_hint"].as_str().unwrap_or("").is_empty());
    }
    assert_eq!(s.get("/schedules").json()["schedules"], json!([]));
    // An unknown target is the same 400 as for POST /runs.
    let r = s.post(
        "/schedules",
        &json!({"name": "x", "request": {"preset": "hello_quantum_sim", "hardware_target": "nowhere"}, "every_seconds": 5}),
    );
    assert_eq!(
        (r.status, code(&r).as_str()),
        (400, "INVALID_TARGET"),
        "{}",
        r.body
    );

    // Every second, starting one second after its creation.
    let r = s.post(
        "/schedules",
        &json!({"name": "tick", "request": hello, "every_seconds": 1}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    assert_eq!(r.header("Location"), Some("/schedules/tick"));
    assert_eq!(created["catch_up"], "once");
    assert_eq!(created["enabled"], true);
    let armed = created["created_at"].as_f64().expect("created_at");
    let dup = s.post(
        "/schedules",
        &json!({"name": "tick", "request": hello, "every_seconds": 1}),
    );
    assert_eq!(
        (dup.status, code(&dup).as_str()),
        (409, "CONFLICT"),
        "{}",
        dup.body
    );

    std::thread::sleep(Duration::from_millis(3_600));
    let periods = fired_periods(&s, "tick");
    let now = wall();
    let mut sorted = periods.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), periods.len(), "a period fired twice: {periods:?}");
    let expected: Vec<u64> = (1..)
        .map(|k| ((armed + k as f64) * 1000.0).round() as u64)
        .take_while(|p| (*p as f64) / 1000.0 < now - 0.6)
        .collect();
    for p in &expected {
        assert!(
            sorted.contains(p),
            "period {p} did not fire: fired {sorted:?}, armed {armed}"
        );
    }
    assert!(sorted.len() <= expected.len() + 1, "{sorted:?} vs {expected:?}");
    println!(
        "every_seconds 1 over {:.1} s: {} periods fired, {} expected by the clock",
        now - armed,
        sorted.len(),
        expected.len()
    );

    // Its runs succeed and the schedule says so, as do its series.
    let deadline = Instant::now() + Duration::from_secs(20);
    let view = loop {
        let v = s.get("/schedules/tick").json();
        if v["last_success_at"].is_number() {
            break v;
        }
        assert!(Instant::now() < deadline, "no success recorded: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(view["last_run_id"].is_string(), "{view}");
    assert_eq!(view["last_error"], Value::Null);
    assert_eq!(view["period_seconds"], 1.0);
    assert!(
        s.find_metric(r#"synqc_schedule_fires_total{schedule="tick",outcome="submitted"}"#)
            .unwrap_or(0.0)
            >= 3.0
    );
    assert_eq!(
        s.find_metric(r#"synqc_schedule_fires_total{schedule="tick",outcome="refused"}"#),
        Some(0.0)
    );
    assert_eq!(
        s.find_metric(r#"synqc_schedule_period_seconds{schedule="tick"}"#),
        Some(1.0)
    );
    let success = s
        .find_metric(r#"synqc_schedule_last_success_timestamp_seconds{schedule="tick"}"#)
        .expect("gauge");
    assert!(success > armed && success <= wall(), "{success}");

    // Paused: nothing fires.
    let r = send(&s, "PATCH", "/schedules/tick", Some(&json!({"enabled": false})));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["next_fire_at"], Value::Null);
    let before = fired_periods(&s, "tick").len();
    std::thread::sleep(Duration::from_millis(2_000));
    assert_eq!(
        fired_periods(&s, "tick").len(),
        before,
        "a disabled schedule fired"
    );
    let r = send(&s, "PATCH", "/schedules/tick", Some(&json!({"name": "other"})));
    assert_eq!(r.status, 422, "{}", r.body);
    let r = send(
        &s,
        "PATCH",
        "/schedules/tick",
        Some(&json!({"cron": "0 0 * * *", "enabled": true})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["cron"], "0 0 * * *");
    assert_eq!(r.json()["every_seconds"], Value::Null);
    assert_eq!(r.json()["period_seconds"], 86400.0);

    assert_eq!(send(&s, "DELETE", "/schedules/tick", None).status, 204);
    let gone = s.get("/schedules/tick");
    assert_eq!(gone.status, 404, "{}", gone.body);
    assert!(gone.json()["detail"]["action_hint"]
        .as_str()
        .unwrap_or("")
        .contains("GET /schedules"));
    assert_eq!(send(&s, "DELETE", "/schedules/tick", None).status, 404);
    assert_eq!(
        s.find_metric(r#"synqc_schedule_enabled{schedule="tick"}"#),
        Some(0.0)
    );
}

#[test]
fn a_budget_refusal_is_recorded_once_per_period_never_retried() {
    // Room for one run of 600 shots in the schedule's session.
    let s = Server::start(&["--workers", "1", "--max-shots-per-session", "1000"]);
    let r = s.post(
        "/schedules",
        &json!({"name": "greedy", "request": {"preset": "hello_quantum_sim", "shot_budget": 600}, "every_seconds": 1}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let armed = r.json()["created_at"].as_f64().expect("created_at");
    std::thread::sleep(Duration::from_millis(4_300));
    let v = s.get("/schedules/greedy").json();
    let elapsed = wall() - armed;
    let submitted = v["fires"]["submitted"].as_u64().expect("submitted");
    let refused = v["fires"]["refused"].as_u64().expect("refused");
    assert_eq!(submitted, 1, "{v}");
    // One refusal per period since the first, not one per tick.
    let periods = elapsed.floor() as u64;
    assert!(
        (periods.saturating_sub(2)..=periods).contains(&(submitted + refused)),
        "{submitted} + {refused} firings in {elapsed:.1} s: {v}"
    );
    assert!(refused >= 2, "{v}");
    let why = v["last_error"].as_str().expect("last_error");
    assert!(why.contains("schedule:greedy") && why.contains("shot"), "{why}");
    assert_eq!(fired_periods(&s, "greedy").len(), 1);
    assert_eq!(
        s.find_metric(r#"synqc_schedule_fires_total{schedule="greedy",outcome="refused"}"#),
        Some(refused as f64)
    );
}

/// One life of the appliance: from just before its spawn to its kill.
struct Life {
    spawned: f64,
    ready: f64,
    killed: f64,
}

#[test]
fn each_period_fires_once_across_kill_9_restarts() {
    const CYCLES: u64 = 6;
    let dir = TempDir::new("sched-crash");
    let data = dir.path().join("data");
    let flags = ["--workers", "1"];
    let request = json!({"preset": "hello_quantum_sim", "shot_budget": 100});
    let mut lives = Vec::new();
    let mut armed = HashMap::new();
    for cycle in 0..CYCLES {
        let spawned = wall();
        let s = Server::start_at(&data, &flags);
        let ready = wall();
        if cycle == 0 {
            for policy in ["once", "skip"] {
                let r = s.post(
                    "/schedules",
                    &json!({"name": policy, "request": request, "every_seconds": 1, "catch_up": policy}),
                );
                assert_eq!(r.status, 201, "{}", r.body);
                armed.insert(policy, r.json()["created_at"].as_f64().expect("created_at"));
            }
        }
        // A different moment of the period each cycle, and a downtime that
        // spans none, one or several periods.
        std::thread::sleep(Duration::from_millis(1_500 + (cycle * 613) % 2_000));
        s.kill9();
        let killed = wall();
        lives.push(Life {
            spawned,
            ready,
            killed,
        });
        std::thread::sleep(Duration::from_millis((cycle * 797) % 2_600));
    }
    let spawned = wall();
    let s = Server::start_at(&data, &flags);
    let ready = wall();
    std::thread::sleep(Duration::from_millis(1_500));
    let end = wall();
    lives.push(Life {
        spawned,
        ready,
        killed: end,
    });

    let mut report = Vec::new();
    for policy in ["once", "skip"] {
        let fired = fired_periods(&s, policy);
        let mut distinct = fired.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            fired.len(),
            "{policy}: a period fired twice: {fired:?}"
        );
        let is_fired = |p: f64| distinct.contains(&((p * 1000.0).round() as u64));
        let periods: Vec<f64> = (1..)
            .map(|k| armed[policy] + k as f64)
            .take_while(|p| *p < end - 1.0)
            .collect();
        // Well inside a life (a tick after its start, before its kill):
        // fired, whatever the policy.
        let slack = 0.6;
        let mut on_time = 0;
        for p in &periods {
            if lives
                .iter()
                .any(|l| *p > l.ready + slack && *p < l.killed - slack)
            {
                assert!(is_fired(*p), "{policy}: period {p:.3} was up and did not fire");
                on_time += 1;
            }
        }
        // Started while down: at most one of them fires, and with catch_up
        // once one firing covers them (the latest missed, or the first
        // period after the restart if it came before the first tick).
        let mut caught_up = 0;
        let mut missed = 0;
        for pair in lives.windows(2) {
            let (gone, back) = (&pair[0], &pair[1]);
            let down: Vec<f64> = periods
                .iter()
                .copied()
                .filter(|p| *p > gone.killed && *p < back.spawned)
                .collect();
            missed += down.len();
            let fired_down = down.iter().filter(|p| is_fired(**p)).count();
            match policy {
                "skip" => assert_eq!(fired_down, 0, "skip fired a missed period: {down:?}"),
                _ => {
                    assert!(
                        fired_down <= 1,
                        "once fired {fired_down} missed periods: {down:?}"
                    );
                    if !down.is_empty() {
                        let covered = periods
                            .iter()
                            .any(|p| *p > gone.killed && *p < back.ready + slack && is_fired(*p));
                        assert!(
                            covered,
                            "once: the periods missed in {down:?} were never caught up"
                        );
                        caught_up += fired_down;
                    }
                }
            }
        }
        assert!(
            on_time > 0 && missed > 0,
            "{policy}: the test saw no {on_time} / {missed}"
        );
        report.push(format!(
            "{policy}: {} periods by the clock, {} fired, {on_time} during uptime all fired, \
             {missed} started while down ({caught_up} of them caught up)",
            periods.len(),
            distinct.len()
        ));
    }
    println!(
        "{CYCLES} kill -9 cycles over {:.1} s; {}",
        end - lives[0].spawned,
        report.join("; ")
    );
}
