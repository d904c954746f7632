//! A 202 to a cancel is honoured: the run ends `cancelled` whether it was
//! queued, claimed in a batch and waiting for its turn, or executing; a
//! run that had already finished gets a 409 naming its final status. The
//! budget ledger agrees with what each run says about its shots.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Reply, Server};
use serde_json::{json, Value};

const SESSION: &str = "cancel-ledger";
/// Quick runs reserve this many shots.
const SHOTS: u64 = 100;
/// Enough for the health preset's protocol, and slow enough (a fraction
/// of a second) for cancels to reach it while it executes.
const HEALTH_SHOTS: u64 = 200_000;
/// Slow runs at the head of a batch: together long enough for the
/// cancels of the runs waiting behind them.
const HEADS: usize = 3;
/// More than the rounds below can ever spend (a head cancelled while it
/// executes keeps its shots; up to 30 rounds of HEADS on a loaded machine),
/// so the ledger, not an exhausted budget, is what the tests see.
const SESSION_LIMIT: u64 = 50_000_000;
/// The chase of quick runs: runs submitted, by how many threads.
const RUNS: usize = 960;
const SUBMITTERS: usize = 8;

fn start() -> Server {
    start_with_workers("1")
}

fn start_with_workers(workers: &str) -> Server {
    Server::start(&[
        "--workers",
        workers,
        "--max-shots-per-session",
        &SESSION_LIMIT.to_string(),
        // The ledger probe asks for the whole session's worth at once.
        "--max-shots-per-experiment",
        &SESSION_LIMIT.to_string(),
    ])
}

fn submit(s: &Server, preset: &str) -> String {
    submit_as(s, preset, "explore", SHOTS)
}

fn submit_as(s: &Server, preset: &str, mode: &str, shots: u64) -> String {
    let body = json!({"preset": preset, "mode": mode, "shot_budget": shots});
    let r = s.send("POST", "/runs", Some(&body), &[("X-Session-Id", SESSION)]);
    assert_eq!(r.status, 202, "submit {body}: {}", r.body);
    r.json()["id"].as_str().expect("id").to_string()
}

fn cancel(s: &Server, id: &str) -> Reply {
    s.send("POST", &format!("/runs/{id}/cancel"), None, &[])
}

/// What one cancel answered, and what the run became.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

/// Checks every answer against the run's final state; returns the final
/// documents by id.
fn check(s: &Server, answers: &HashMap<String, Answer>) -> HashMap<String, Value> {
    let mut finals = HashMap::new();
    for (id, a) in answers {
        let done = s.wait_final(id, Duration::from_secs(60));
        match a.status {
            200 => assert_eq!(a.body["status"], "cancelled", "{id}: {}", a.body),
            202 => assert_eq!(
                done["status"], "cancelled",
                "{id}: the cancel was accepted (the run was {}) but the run ended {} ({})",
                a.body["status"], done["status"], done["error_detail"]
            ),
            409 => {
                let said = &a.body["detail"]["error_detail"]["status"];
                assert_eq!(
                    said, &done["status"],
                    "{id}: the 409 said {}, the run ended {}",
                    a.body, done["status"]
                );
            }
            other => panic!("{id}: cancel answered {other}: {}", a.body),
        }
        if done["status"] == "cancelled" {
            let detail = &done["error_detail"];
            assert_eq!(detail["code"], "CANCELLED", "{id}: {done}");
            assert!(detail["shots_refunded"].is_boolean(), "{id}: {done}");
        }
        finals.insert(id.clone(), done);
    }
    finals
}

/// The shots a finished run keeps reserved in its session.
fn kept(done: &Value) -> u64 {
    let shots = done["shot_budget"].as_u64().expect("shot_budget");
    match done["status"].as_str() {
        Some("succeeded") => shots,
        Some("cancelled") if done["error_detail"]["shots_refunded"] == false => shots,
        _ => 0,
    }
}

/// The session's remaining shots as the budget says (a 429 states them).
fn remaining(s: &Server) -> u64 {
    let body = json!({"preset": "hello_quantum_sim", "shot_budget": SESSION_LIMIT});
    let r = s.send("POST", "/runs", Some(&body), &[("X-Session-Id", SESSION)]);
    assert_eq!(r.status, 429, "{}", r.body);
    r.json()["detail"]["error_detail"]["remaining"]
        .as_u64()
        .expect("remaining")
}

fn assert_ledger(s: &Server, finals: &HashMap<String, Value>) {
    let used: u64 = finals.values().map(kept).sum();
    assert_eq!(remaining(s), SESSION_LIMIT - used, "budget ledger");
}

fn stage(done: &Value) -> &str {
    done["error_detail"]["cancelled_while"].as_str().unwrap_or("")
}

#[test]
fn every_accepted_cancel_of_quick_batched_runs_ends_cancelled() {
    // One worker claims quick runs in batches while submitters keep a
    // backlog; a canceller picks runs the store lists as running, which
    // are waiting in a batch, executing, or executed with their outcome
    // being stored.
    let s = start();
    let submitting = AtomicBool::new(true);
    let (answers, submitted) = std::thread::scope(|scope| {
        let canceller = scope.spawn(|| {
            let mut answers = HashMap::new();
            while submitting.load(Ordering::Relaxed) {
                let listed = s.get("/runs?status=running&limit=100").json();
                for run in listed["runs"].as_array().into_iter().flatten() {
                    let id = run["id"].as_str().expect("id").to_string();
                    if let std::collections::hash_map::Entry::Vacant(slot) = answers.entry(id) {
                        let r = cancel(&s, slot.key());
                        slot.insert(Answer {
                            status: r.status,
                            body: r.json(),
                        });
                    }
                }
            }
            answers
        });
        let submitters: Vec<_> = (0..SUBMITTERS)
            .map(|_| {
                scope.spawn(|| {
                    (0..RUNS / SUBMITTERS)
                        .map(|_| submit(&s, "hello_quantum_sim"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let submitted: Vec<String> = submitters
            .into_iter()
            .flat_map(|t| t.join().expect("submitter"))
            .collect();
        submitting.store(false, Ordering::Relaxed);
        (canceller.join().expect("canceller"), submitted)
    });
    let by = |code| answers.values().filter(|a| a.status == code).count();
    eprintln!(
        "cancels: {} of queued runs, {} of claimed ones, {} of finished ones",
        by(200),
        by(202),
        by(409)
    );
    // How many land on claimed runs depends on timing (the deterministic
    // cases are the next test's); each answer must hold whatever it was.
    assert!(!answers.is_empty(), "the canceller never saw a running run");
    check(&s, &answers);
    let all: HashMap<String, Value> = submitted
        .iter()
        .map(|id| (id.clone(), s.wait_final(id, Duration::from_secs(60))))
        .collect();
    assert_ledger(&s, &all);
}

#[test]
fn queued_runs_are_cancelled_at_once_with_their_shots_refunded() {
    // No worker: the runs stay queued whatever the machine's load.
    let s = start_with_workers("0");
    let ids: Vec<String> = (0..5).map(|_| submit(&s, "hello_quantum_sim")).collect();
    let mut answers = HashMap::new();
    for id in &ids {
        let r = cancel(&s, id);
        assert_eq!(r.status, 200, "{}", r.body);
        answers.insert(
            id.clone(),
            Answer {
                status: r.status,
                body: r.json(),
            },
        );
    }
    let finals = check(&s, &answers);
    for id in &ids {
        let done = &finals[id];
        assert_eq!(stage(done), "queued", "{done}");
        assert_eq!(done["error_detail"]["shots_refunded"], true, "{done}");
    }
    // Every shot came back: the whole session budget fits one more run.
    let body = json!({"preset": "hello_quantum_sim", "shot_budget": SESSION_LIMIT});
    let r = s.send("POST", "/runs", Some(&body), &[("X-Session-Id", SESSION)]);
    assert_eq!(r.status, 202, "{}", r.body);
}

#[test]
fn queued_waiting_and_executing_runs_each_end_cancelled_with_their_shots_accounted() {
    let s = start();
    let mut answers = HashMap::new();
    let mut submitted = Vec::new();
    // Queued: behind a run that keeps the only worker busy (itself
    // cancelled while it executes).
    let blocker = submit_as(&s, "health", "explore", HEALTH_SHOTS);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.get(&format!("/runs/{blocker}")).json()["status"] == "queued" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let queued: Vec<String> = (0..5).map(|_| submit(&s, "hello_quantum_sim")).collect();
    for id in queued.iter().chain(std::iter::once(&blocker)) {
        let r = cancel(&s, id);
        answers.insert(
            id.clone(),
            Answer {
                status: r.status,
                body: r.json(),
            },
        );
    }
    submitted.extend(std::iter::once(blocker).chain(queued.iter().cloned()));
    // Waiting in a batch: while the worker works through a backlog of
    // quick runs in batches (grown to their largest), slow calibrate runs
    // are dispatched first and claimed at the head of the next batch; the
    // backlog runs claimed with them wait (running) until they are done.
    let mut waiting_seen = 0;
    let mut executing_seen = 0;
    // Which stage a cancel meets is a matter of timing: rounds go on
    // (bounded) until both were seen, so a loaded machine takes more.
    let rounds_until = Instant::now() + Duration::from_secs(90);
    for _round in 0..30 {
        if Instant::now() > rounds_until {
            break;
        }
        let (heads, backlog) = std::thread::scope(|scope| {
            let count = |state: &str| s.health()["queue"][state].as_u64().unwrap_or(0);
            let done_before = count("succeeded");
            let submitters: Vec<_> = (0..SUBMITTERS)
                .map(|_| {
                    scope.spawn(|| {
                        (0..60)
                            .map(|_| submit(&s, "hello_quantum_sim"))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let deadline = Instant::now() + Duration::from_secs(20);
            while (count("succeeded") < done_before + 64 || count("queued") < 64) && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            let heads: Vec<String> = (0..HEADS)
                .map(|_| submit_as(&s, "health", "calibrate", HEALTH_SHOTS))
                .collect();
            while s.get(&format!("/runs/{}", heads[0])).json()["status"] == "queued"
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            // The newest runs claimed (a listing stops scanning once it has
            // found as many as asked for), the heads last.
            let listed = s.get("/runs?status=running&limit=16").json();
            let claimed = listed["runs"].as_array().into_iter().flatten();
            let others: Vec<String> = claimed
                .filter_map(|r| r["id"].as_str().map(String::from))
                .filter(|id| !heads.contains(id))
                .collect();
            for id in others.iter().chain(&heads) {
                let r = cancel(&s, id);
                answers.insert(
                    id.clone(),
                    Answer {
                        status: r.status,
                        body: r.json(),
                    },
                );
            }
            let backlog: Vec<String> = submitters
                .into_iter()
                .flat_map(|t| t.join().expect("submitter"))
                .collect();
            (heads, backlog)
        });
        for id in heads.iter().chain(&backlog) {
            let done = s.wait_final(id, Duration::from_secs(60));
            match stage(&done) {
                "waiting" => waiting_seen += 1,
                "executing" => executing_seen += 1,
                _ => {}
            }
        }
        submitted.extend(heads);
        submitted.extend(backlog);
        if waiting_seen > 0 && executing_seen > 0 {
            break;
        }
    }
    let finals = check(&s, &answers);
    // Behind the blocker they are usually still queued, but on a loaded
    // machine the blocker can finish first: the answer says which.
    for id in &queued {
        let done = &finals[id];
        if answers[id].status == 200 {
            assert_eq!(stage(done), "queued", "{done}");
            assert_eq!(done["error_detail"]["shots_refunded"], true, "{done}");
        }
    }
    for done in finals.values().filter(|d| d["status"] == "cancelled") {
        let refunded = done["error_detail"]["shots_refunded"] == true;
        assert_eq!(refunded, stage(done) != "executing", "{done}");
    }
    assert!(waiting_seen > 0, "no cancel reached a run waiting in a batch");
    assert!(executing_seen > 0, "no cancel reached an executing run");
    let all: HashMap<String, Value> = submitted
        .iter()
        .map(|id| (id.clone(), s.wait_final(id, Duration::from_secs(60))))
        .collect();
    assert_ledger(&s, &all);
}
