//! The supervisor against fake executors: a small Python program (python3
//! is on every machine synqc is built on) whose behaviour for a request
//! is chosen by the request's run_id, so one child can answer well, then
//! hang, then crash.

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::config::ExecutorConfig;
use crate::run::ErrorCode;
use crate::testutil::TempDir;

/// argv: mode (ok, no_hello, no_pong), then optionally a journal file that
/// gets one line per op received: the op and the executor's pid.
const FAKE: &str = r#"
import json, os, sys, time
mode = sys.argv[1]
journal = open(sys.argv[2], "a") if len(sys.argv) > 2 else None

def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()

for line in sys.stdin:
    msg = json.loads(line)
    op = msg["op"]
    if journal:
        journal.write("%s %d\n" % (op, os.getpid()))
        journal.flush()
    if op == "hello" and mode != "no_hello":
        send({"op": "hello", "protocol": 1, "backend": {"name": "fake", "version": "1.0"},
              "capabilities": {"max_qubits": 5}})
    elif op == "ping" and mode != "no_pong":
        send({"op": "pong", "id": msg["id"]})
    elif op == "run":
        how = msg["run_id"]
        results = [{"name": c["name"], "counts": {"0": c["shots"] - 1, "1": 1}} for c in msg["circuits"]]
        answer = {"op": "result", "id": msg["id"], "results": results,
                  "metadata": {"seed": msg["seed"], "p1q": msg["noise_profile"]["p1q"]}}
        if how == "hang":
            time.sleep(3600)
        elif how == "crash":
            sys.stderr.write("fake: crashing on purpose\n")
            sys.exit(3)
        elif how == "slow":
            time.sleep(1.5)
        elif how == "not_json":
            print("debug output on stdout", flush=True)
        elif how == "wrong_id":
            answer["id"] = "bogus"
        elif how == "missing":
            answer["results"] = results[:-1]
        elif how == "short":
            results[0]["counts"]["0"] -= 1
        elif how == "wide":
            results[0]["counts"] = {"00": results[0]["counts"]["0"], "1": 1}
        elif how == "error":
            answer = {"op": "error", "id": msg["id"], "error": {
                "code": "PROVIDER_CAPACITY", "message": "device queue full", "retryable": True}}
        send(answer)
"#;

/// Short timeouts, so every test ends in seconds.
fn config(command: Vec<String>) -> ExecutorConfig {
    ExecutorConfig {
        command,
        timeout_seconds: 2,
        max_in_flight: 1,
        ping_seconds: 1,
    }
}

fn fake(mode: &str) -> ExecutorConfig {
    config(vec!["python3".into(), "-c".into(), FAKE.into(), mode.into()])
}

fn start(target: &str, config: ExecutorConfig) -> ExecutorHandle {
    ExecutorHandle::start(target, config).unwrap()
}

/// Waits (at most `within`) for a status that passes `ok`.
fn wait_for(h: &ExecutorHandle, within: Duration, ok: impl Fn(&ExecutorStatus) -> bool) -> ExecutorStatus {
    let until = Instant::now() + within;
    loop {
        let s = h.status();
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < until, "status never came: {s:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_up(h: &ExecutorHandle) -> ExecutorStatus {
    wait_for(h, Duration::from_secs(10), |s| s.up)
}

fn request(run_id: &str) -> ExecRequest {
    let circuit = |name: &str, shots| ExecCircuit {
        name: name.into(),
        qasm: "OPENQASM 3.0; qubit[1] q; bit[1] c; c[0] = measure q[0];".into(),
        shots,
        clbit_registers: vec![1],
    };
    ExecRequest {
        run_id: run_id.into(),
        target: "ibm_quantum".into(),
        seed: 42,
        noise_profile: json!({"p1q": 0.001}),
        circuits: vec![circuit("first", 10), circuit("second", 5)],
    }
}

fn never() -> bool {
    false
}

fn failed(r: Result<ExecResponse, ExecFailure>) -> ProviderFailure {
    match r {
        Err(ExecFailure::Failed(f)) => f,
        other => panic!("expected a failed attempt, got {other:?}"),
    }
}

#[test]
fn the_handshake_records_the_backend_and_pings_are_answered() {
    let dir = TempDir::new("exec-ping");
    let journal = dir.path().join("ops");
    let mut c = fake("ok");
    c.command.push(journal.to_string_lossy().into_owned());
    let h = start("hs", c);
    let s = wait_up(&h);
    assert_eq!(
        s.backend,
        Some(BackendInfo {
            name: "fake".into(),
            version: "1.0".into()
        })
    );
    assert_eq!(s.capabilities, json!({"max_qubits": 5}));
    assert_eq!((s.reason, s.restarts), (None, 0));
    // Two ping periods and a bit: pings went out and were answered.
    thread::sleep(Duration::from_millis(2500));
    let ops = std::fs::read_to_string(&journal).unwrap();
    assert!(ops.starts_with("hello "), "{ops}");
    assert!(ops.matches("ping").count() >= 2, "{ops}");
    let s = h.status();
    assert!(s.up && s.restarts == 0, "{s:?}");
    h.shutdown();
    assert_eq!(h.status().reason.as_deref(), Some("synqc is stopping."));
}

#[test]
fn an_unanswered_ping_takes_the_executor_down_and_it_is_restarted() {
    let h = start("nopong", fake("no_pong"));
    wait_up(&h);
    let s = wait_for(&h, Duration::from_secs(5), |s| !s.up);
    assert!(
        s.reason
            .as_deref()
            .unwrap_or("")
            .contains("did not answer a ping"),
        "{s:?}"
    );
    // Restarted: up again, counted.
    let s = wait_for(&h, Duration::from_secs(5), |s| s.up && s.restarts >= 1);
    assert_eq!(s.backend.map(|b| b.name).as_deref(), Some("fake"));
    h.shutdown();
}

#[test]
fn a_run_round_trips_with_counts_in_request_order() {
    let h = start("rt", fake("ok"));
    wait_up(&h);
    let r = h.run(&request("ok"), &never).unwrap();
    assert_eq!(r.counts.len(), 2);
    assert_eq!(r.counts[0], [("0".to_string(), 9), ("1".to_string(), 1)].into());
    assert_eq!(r.counts[1], [("0".to_string(), 4), ("1".to_string(), 1)].into());
    assert_eq!(r.metadata, json!({"seed": 42, "p1q": 0.001}));
    assert_eq!(r.backend.name, "fake");
    assert!(r.duration < Duration::from_secs(2), "{:?}", r.duration);
    // The executor's own error keeps its code and retry flag.
    let f = failed(h.run(&request("error"), &never));
    assert_eq!(
        (f.code, f.retryable, f.counts_returned),
        (ErrorCode::ProviderCapacity, true, false)
    );
    assert!(f.message.contains("device queue full"), "{}", f.message);
    h.shutdown();
}

#[test]
fn garbage_answers_fail_the_attempt_with_provider_error() {
    let h = start("garbage", fake("ok"));
    wait_up(&h);
    for (how, says) in [
        ("not_json", "not JSON"),
        ("missing", "no counts for circuit 'second'"),
        ("short", "summing to 9, and 10 shots"),
        ("wide", "count key '00'"),
    ] {
        let f = failed(h.run(&request(how), &never));
        assert_eq!((f.code, f.retryable), (ErrorCode::ProviderError, true), "{how}");
        assert!(f.message.contains(says), "{how}: {}", f.message);
        // The child stays up: the next request is answered by the same one.
        h.run(&request("ok"), &never).unwrap();
    }
    assert_eq!(h.status().restarts, 0);
    // An answer under another id is ignored; the request's own answer
    // never comes, so it times out and the child is restarted.
    let began = Instant::now();
    let f = failed(h.run(&request("wrong_id"), &never));
    assert!(began.elapsed() < Duration::from_secs(4), "{:?}", began.elapsed());
    assert_eq!(f.code, ErrorCode::ProviderError);
    assert!(f.message.contains("did not answer within 2 s"), "{}", f.message);
    wait_for(&h, Duration::from_secs(10), |s| s.up && s.restarts == 1);
    h.run(&request("ok"), &never).unwrap();
    h.shutdown();
}

#[test]
fn a_hung_executor_times_out_is_restarted_and_serves_the_next_run() {
    let h = start("hang", fake("ok"));
    wait_up(&h);
    let began = Instant::now();
    let f = failed(h.run(&request("hang"), &never));
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert!(f.retryable && !f.counts_returned, "{f:?}");
    assert!(f.message.contains("timeout_seconds"), "{}", f.message);
    let s = wait_for(&h, Duration::from_secs(10), |s| s.up && s.restarts == 1);
    assert_eq!(s.reason, None);
    h.run(&request("ok"), &never).unwrap();
    h.shutdown();
}

#[test]
fn a_crash_mid_run_fails_the_attempt_and_the_child_comes_back() {
    let h = start("crash", fake("ok"));
    wait_up(&h);
    let f = failed(h.run(&request("crash"), &never));
    assert_eq!((f.code, f.retryable), (ErrorCode::ProviderError, true));
    assert!(f.message.contains("went down"), "{}", f.message);
    // The reason names the exit and the child's last words.
    let s = wait_for(&h, Duration::from_secs(2), |s| s.reason.is_some());
    let reason = s.reason.unwrap_or_default();
    assert!(
        reason.contains("exit status: 3") && reason.contains("crashing on purpose"),
        "{reason}"
    );
    wait_for(&h, Duration::from_secs(10), |s| s.up && s.restarts == 1);
    h.run(&request("ok"), &never).unwrap();
    h.shutdown();
}

#[test]
fn a_missing_program_is_the_reason_until_it_appears() {
    let dir = TempDir::new("exec-missing");
    let program = dir.path().join("fake-executor");
    let h = start("missing", config(vec![program.to_string_lossy().into_owned()]));
    let s = wait_for(&h, Duration::from_secs(2), |s| {
        s.reason.as_deref().unwrap_or("").contains("was not found")
    });
    assert!(!s.up);
    let reason = s.reason.unwrap_or_default();
    assert!(reason.contains("fix executors.missing.command"), "{reason}");
    // Asked while down: unavailable, nothing sent.
    match h.run(&request("ok"), &never) {
        Err(ExecFailure::Unavailable(why)) => assert!(why.contains("was not found"), "{why}"),
        other => panic!("{other:?}"),
    }
    // The program appears (renamed into place whole, as an installer does).
    let script = dir.path().join("fake.py");
    std::fs::write(&script, FAKE).unwrap();
    let staged = dir.path().join("staged");
    std::fs::write(
        &staged,
        format!("#!/bin/sh\nexec python3 {} ok\n", script.display()),
    )
    .unwrap();
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&staged, &program).unwrap();
    let s = wait_for(&h, Duration::from_secs(10), |s| s.up);
    assert!(s.restarts >= 1, "{s:?}");
    h.run(&request("ok"), &never).unwrap();
    h.shutdown();
}

#[test]
fn a_silent_executor_stays_down_and_runs_are_not_sent() {
    let h = start("silent", fake("no_hello"));
    let s = wait_for(&h, Duration::from_secs(5), |s| {
        s.reason
            .as_deref()
            .unwrap_or("")
            .contains("did not answer the hello within 2 s")
    });
    assert!(!s.up && s.backend.is_none(), "{s:?}");
    let began = Instant::now();
    assert!(matches!(
        h.run(&request("ok"), &never),
        Err(ExecFailure::Unavailable(_))
    ));
    assert!(began.elapsed() < Duration::from_millis(500));
    h.shutdown();
}

#[test]
fn cancel_reaches_a_request_waiting_for_its_answer_or_for_a_slot() {
    let h = start("cancel", fake("ok"));
    wait_up(&h);
    // A slow request holds the only slot.
    let slow = {
        let h = h.clone();
        thread::spawn(move || h.run(&request("slow"), &never))
    };
    thread::sleep(Duration::from_millis(200));
    let asked = Instant::now();
    let stop = || asked.elapsed() > Duration::from_millis(300);
    assert_eq!(h.run(&request("ok"), &stop).unwrap_err(), ExecFailure::Cancelled);
    assert!(asked.elapsed() < Duration::from_secs(1), "{:?}", asked.elapsed());
    // A later request waits for the slot, then is answered.
    let waited = Instant::now();
    h.run(&request("ok"), &never).unwrap();
    assert!(
        waited.elapsed() > Duration::from_millis(500),
        "{:?}",
        waited.elapsed()
    );
    slow.join().unwrap().unwrap();

    // Cancelled while the executor works on it: it returns at once, and
    // the late answer is dropped without a restart.
    let cancelled = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(300));
            cancelled.store(true, Ordering::SeqCst);
        });
        let began = Instant::now();
        let r = h.run(&request("slow"), &|| cancelled.load(Ordering::SeqCst));
        assert_eq!(r.unwrap_err(), ExecFailure::Cancelled);
        assert!(began.elapsed() < Duration::from_secs(1), "{:?}", began.elapsed());
    });
    h.run(&request("ok"), &never).unwrap();
    assert_eq!(h.status().restarts, 0);
    h.shutdown();
}

#[test]
fn a_hung_wrapper_is_killed_with_the_executor_it_started() {
    let dir = TempDir::new("exec-wrapper");
    let journal = dir.path().join("ops");
    // A wrapper that does not exec: the executor is its child.
    let wrapper = "python3 -c \"$0\" ok \"$1\"; echo wrapper-done >&2";
    let command = ["sh", "-c", wrapper, FAKE, &journal.to_string_lossy()];
    let h = start("wrapper", config(command.map(String::from).to_vec()));
    wait_up(&h);
    let f = failed(h.run(&request("hang"), &never));
    assert!(f.message.contains("did not answer"), "{}", f.message);
    wait_for(&h, Duration::from_secs(10), |s| s.up && s.restarts == 1);
    let ops = std::fs::read_to_string(&journal).unwrap();
    let first: u32 = ops
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap();
    // Gone, or a zombie waiting for a reaper that is not synqc.
    let state = std::fs::read_to_string(format!("/proc/{first}/stat")).unwrap_or_default();
    let running = state
        .rsplit(") ")
        .next()
        .is_some_and(|rest| !rest.starts_with('Z'));
    assert!(
        !running,
        "the hung executor {first} survived its wrapper: {state}"
    );
    h.shutdown();
}
