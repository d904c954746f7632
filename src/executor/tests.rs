use std::time::{Duration, Instant};

use serde_json::{json, Value};
use smol::{block_on, Timer};
use tide::http::{Method, Request, Response, Url};

use super::control::{EXECUTING, TIMED_OUT};
use super::worker::{claim, classify, execute, execute_batch, store_outcomes, Claimed, MAX_CLAIM};
use super::*;
use crate::clock::now_ms;
use crate::config::Config;
use crate::run::RunId;
use crate::sim::SimError;
use crate::store::Lease;
use crate::testutil::TempDir;

fn state(dir: &TempDir, workers: usize) -> State {
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        workers,
        ..Config::default()
    };
    State::open(config).expect("open state")
}

/// Submits a run through the real API, in process.
fn submit(state: &State, body: &str) -> RunId {
    let app = crate::api::app(state.clone());
    let mut req = Request::new(Method::Post, Url::parse("http://synqc/runs").expect("url"));
    req.insert_header("Content-Type", "application/json");
    req.set_body(body);
    let mut res: Response = block_on(app.respond(req)).expect("respond");
    assert_eq!(res.status(), 202, "submit {body}");
    let doc: Value = block_on(res.body_json()).expect("json");
    doc["id"].as_str().and_then(RunId::parse).expect("run id")
}

/// Submits `n` hello_quantum_sim runs.
fn hellos(state: &State, n: usize) -> Vec<RunId> {
    (0..n)
        .map(|_| submit(state, r#"{"preset":"hello_quantum_sim"}"#))
        .collect()
}

fn status(state: &State, id: &RunId) -> RunRecord {
    state.store.get(id).expect("get").expect("stored")
}

#[test]
fn a_run_cancelled_while_waiting_in_its_batch_is_not_executed() {
    let dir = TempDir::new("queue-cancel");
    let state = state(&dir, 1);
    let ids = hellos(&state, 3);
    let claimed = block_on(claim(&state, 3)).expect("claim");
    assert_eq!(claimed.runs.len(), 3, "one worker may take all three");
    let answer = block_on(cancel(&state, &ids[2])).expect("cancel");
    assert!(matches!(answer, Cancel::Stopping(_)), "{answer:?}");
    let (executed, _) = block_on(execute_batch(&state, claimed));
    block_on(store_outcomes(&state, executed));
    assert_eq!(status(&state, &ids[0]).status, RunStatus::Succeeded);
    assert_eq!(status(&state, &ids[1]).status, RunStatus::Succeeded);
    assert_cancelled(&state, &ids[2], "waiting", true);
    assert_eq!(state.executor.running_here(), 0);
    assert!(state.store.leases().expect("leases").is_empty());
}

fn assert_cancelled(state: &State, id: &RunId, stage: &str, refunded: bool) {
    let rec = status(state, id);
    assert_eq!(rec.status, RunStatus::Cancelled);
    assert!(rec.result.is_none());
    let detail = rec.error.expect("error").detail;
    assert_eq!(
        detail,
        json!({"code": "CANCELLED", "cancelled_while": stage, "shots_refunded": refunded})
    );
}

/// The shots reserved in the default budget session.
fn used(state: &State) -> u64 {
    state
        .store
        .session(&crate::budget::session_id(None, None))
        .expect("session")
        .map_or(0, |s| s.used)
}

#[test]
fn a_cancel_between_a_claims_commit_and_its_registration_is_adopted() {
    let dir = TempDir::new("queue-cancel-window");
    let state = state(&dir, 1);
    let ids = hellos(&state, 1);
    let lease = Lease {
        token: 7,
        expires_ms: now_ms() + 60_000,
    };
    let committed = block_on(state.store.claim(now_ms(), &[lease])).expect("claim");
    let answer = block_on(cancel(&state, &ids[0])).expect("cancel");
    assert!(matches!(answer, Cancel::Stopping(_)), "{answer:?}");
    let claimed = Claimed {
        runs: state.executor.register(committed),
        at: Instant::now(),
        took: Duration::ZERO,
    };
    let (executed, _) = block_on(execute_batch(&state, claimed));
    block_on(store_outcomes(&state, executed));
    assert_cancelled(&state, &ids[0], "waiting", true);
    assert_eq!(state.executor.running_here(), 0);
}

#[test]
fn a_cancel_after_the_outcome_is_decided_answers_how_the_run_ended() {
    let dir = TempDir::new("queue-cancel-late");
    let state = state(&dir, 1);
    let ids = hellos(&state, 1);
    let claimed = block_on(claim(&state, 1)).expect("claim");
    let (executed, _) = block_on(execute_batch(&state, claimed));
    // Executed, its outcome not yet stored: the cancel waits for it.
    let (answer, ()) = block_on(smol::future::zip(cancel(&state, &ids[0]), async {
        Timer::after(Duration::from_millis(50)).await;
        store_outcomes(&state, executed).await;
    }));
    assert!(
        matches!(
            answer.expect("cancel"),
            Cancel::AlreadyFinished(RunStatus::Succeeded)
        ),
        "the run did finish"
    );
    assert_eq!(status(&state, &ids[0]).status, RunStatus::Succeeded);
}

#[test]
fn a_run_cancelled_while_executing_stops_and_keeps_its_shots() {
    let dir = TempDir::new("queue-cancel-exec");
    let state = state(&dir, 1);
    let ids = hellos(&state, 1);
    let before = used(&state);
    let claimed = block_on(claim(&state, 1)).expect("claim");
    let (rec, lease, control) = claimed.runs.into_iter().next().expect("claimed");
    assert_eq!(control.start(), EXECUTING);
    let answer = block_on(cancel(&state, &ids[0])).expect("cancel");
    assert!(matches!(answer, Cancel::Stopping(_)), "{answer:?}");
    let done = block_on(execute(&state, rec, lease.token, Duration::ZERO, control)).expect("outcome");
    block_on(store_outcomes(&state, vec![done]));
    assert_cancelled(&state, &ids[0], "executing", false);
    assert_eq!(used(&state), before, "the shots stay spent");
    assert_eq!(state.executor.running_here(), 0);
}

#[test]
fn a_queued_cancel_refunds_and_every_run_error_carries_its_code() {
    let dir = TempDir::new("queue-cancel-queued");
    let state = state(&dir, 1);
    let ids = hellos(&state, 1);
    let before = used(&state);
    let answer = block_on(cancel(&state, &ids[0])).expect("cancel");
    assert!(matches!(answer, Cancel::Cancelled(_)), "{answer:?}");
    assert_cancelled(&state, &ids[0], "queued", true);
    assert!(used(&state) < before, "refunded");
    let err = classify(TIMED_OUT, SimError::Cancelled);
    assert_eq!(err.detail, json!({"code": "TIMEOUT"}));
}

#[test]
fn a_run_that_waited_in_its_batch_starts_when_it_executes() {
    let dir = TempDir::new("queue-started");
    let state = state(&dir, 1);
    let ids = hellos(&state, 2);
    let claimed = block_on(claim(&state, 2)).expect("claim");
    let claimed_at = status(&state, &ids[1]).started_at.expect("claim time");
    std::thread::sleep(Duration::from_millis(30));
    let executing_from = now_ms() as f64 / 1000.0;
    let (executed, _) = block_on(execute_batch(&state, claimed));
    block_on(store_outcomes(&state, executed));
    for id in &ids {
        let rec = status(&state, id);
        let started = rec.started_at.expect("started");
        assert!(
            started >= executing_from,
            "started {started} before {executing_from}"
        );
        assert!(started > claimed_at);
        let result = rec.result.expect("result").to_value();
        let wait_us = result["kpi_details"]
            .as_array()
            .and_then(|kpis| kpis.iter().find(|k| k["name"] == "queue_wait_us"))
            .and_then(|k| k["value"].as_f64())
            .expect("queue_wait_us");
        assert!(
            wait_us >= (started - rec.created_at) * 1e6 - 1.0,
            "queue wait {wait_us} us ends at the start of execution"
        );
    }
}

#[test]
fn a_draining_worker_gives_back_the_rest_of_its_batch() {
    let dir = TempDir::new("queue-drain");
    let state = state(&dir, 1);
    let ids = hellos(&state, 2);
    let claimed = block_on(claim(&state, 2)).expect("claim");
    assert_eq!(state.store.counts.get(RunStatus::Running), 2);
    state.lifecycle.set_draining();
    let (executed, _) = block_on(execute_batch(&state, claimed));
    assert!(executed.is_empty());
    for id in &ids {
        let rec = status(&state, id);
        assert_eq!(rec.status, RunStatus::Queued, "given back, not run");
        assert_eq!(rec.crashes, 0, "a shutdown is not a crash");
    }
    assert_eq!(state.store.counts.get(RunStatus::Queued), 2);
    assert!(state.store.leases().expect("leases").is_empty());
    assert_eq!(state.executor.running_here(), 0);
}

#[test]
fn a_worker_claims_no_more_than_its_share_of_the_ready_runs() {
    let dir = TempDir::new("queue-share");
    let state = state(&dir, 2);
    hellos(&state, 3);
    let first = block_on(claim(&state, MAX_CLAIM)).expect("claim");
    assert_eq!(first.runs.len(), 2, "ceil(3 ready / 2 workers)");
    let second = block_on(claim(&state, MAX_CLAIM)).expect("claim");
    assert_eq!(second.runs.len(), 1, "the rest");
    assert!(block_on(claim(&state, MAX_CLAIM)).expect("claim").is_empty());
}
