//! Targets bound to executors (docs/circuits.md, "Executors" and
//! "Failures"), against the real binary and the fake executors in
//! tests/executors/: a good one, one that crashes once, one that hangs and
//! one that answers garbage. Every run ends where the contract says, and
//! the session's budget ledger is exact after it.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Server, TempDir};
use serde_json::{json, Value};

/// The session's budget: small enough that a probe above it is always
/// refused, so the refusal reads the remaining shots without reserving any.
const SESSION_SHOTS: u64 = 100_000;
/// A request that never fits the session: its 429 says what remains.
const PROBE_SHOTS: u64 = 150_000;
/// Shots of each run the tests submit.
const RUN_SHOTS: u64 = 1000;

const TARGET_UP: &str = "synqc_target_up{hardware_target=\"ibm_quantum\"}";

const BELL: &str = "OPENQASM 3.0; include \"stdgates.inc\"; qubit[2] q; bit[2] c; \
                    h q[0]; cx q[0], q[1]; c = measure q;";

fn fake(script: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/executors")
        .join(script)
        .display()
        .to_string()
}

/// `command` for a fake executor, with `env` set through /usr/bin/env.
fn command(script: &str, env: &[&str]) -> Vec<String> {
    let mut c: Vec<String> = Vec::new();
    if !env.is_empty() {
        c.push("/usr/bin/env".into());
        c.extend(env.iter().map(|s| s.to_string()));
    }
    c.push("/usr/bin/python3".into());
    c.push(fake(script));
    c
}

/// A config file binding ibm_quantum to `command`; `extra` are top-level
/// keys (max_attempts, ...) and `timeout` the executor's timeout_seconds.
fn write_config(dir: &Path, name: &str, command: &[String], timeout: u64, extra: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        "max_shots_per_session = {SESSION_SHOTS}\n{extra}\n\
         [executors.ibm_quantum]\ncommand = {}\ntimeout_seconds = {timeout}\nping_seconds = 1\n",
        serde_json::to_string(command).expect("command as TOML array")
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// A server with ibm_quantum bound to `command`, and its scratch dir.
fn start(command: &[String], timeout: u64, extra: &str) -> (Server, TempDir) {
    let dir = TempDir::new("exec");
    let cfg = write_config(dir.path(), "synqc.toml", command, timeout, extra);
    let s = Server::start(&["--workers", "1", "--config", cfg.to_str().expect("utf-8 path")]);
    (s, dir)
}

/// The session's remaining shots, read from the refusal of a probe that
/// never fits (a refused request changes nothing).
fn remaining(s: &Server) -> u64 {
    let r = s.post(
        "/runs",
        &json!({"preset": "hello_quantum_sim", "shot_budget": PROBE_SHOTS}),
    );
    assert_eq!(r.status, 429, "probe: {}", r.body);
    r.json()["detail"]["error_detail"]["remaining"]
        .as_u64()
        .unwrap_or_else(|| panic!("no remaining in {}", r.body))
}

fn on_ibm(preset: &str) -> Value {
    let mut body = json!({"preset": preset, "hardware_target": "ibm_quantum", "shot_budget": RUN_SHOTS});
    if preset == "circuit" {
        body["qasm"] = json!(BELL);
    }
    body
}

fn ibm_target(s: &Server) -> Value {
    let targets = s.get("/hardware/targets").json();
    targets["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == "ibm_quantum"))
        .cloned()
        .unwrap_or_else(|| panic!("ibm_quantum not listed: {targets}"))
}

/// Polls until `pred` holds on ibm_quantum's target document.
fn wait_target(s: &Server, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let t = ibm_target(s);
        if pred(&t) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "ibm_quantum never reached the state: {t}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for the executor's handshake: a run claimed while it is still
/// starting goes back to the queue, and the tests that use this are about
/// a run that reached it.
fn wait_up(s: &Server) -> Value {
    wait_target(s, Duration::from_secs(20), |t| t["executor"]["up"] == true)
}

fn wait_status(s: &Server, id: &str, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let v = s.get(&format!("/runs/{id}")).json();
        if v["status"] == status {
            return v;
        }
        assert!(Instant::now() < deadline, "run {id} never became {status}: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A succeeded run on the executor: its plant, backend and counts.
fn assert_ran_on_executor(run: &Value, backend: &str) {
    assert_eq!(run["status"], "succeeded", "{run}");
    let result = &run["result"];
    let plant = &result["physics_contract"]["plant"];
    assert_eq!(plant["kind"], "executor", "{plant}");
    assert_eq!(plant["target"], "ibm_quantum", "{plant}");
    assert_eq!(plant["backend"]["name"], backend, "{plant}");
    let counts = result["kpis"]["raw_counts"]
        .as_object()
        .unwrap_or_else(|| panic!("no raw_counts: {result}"));
    let total: u64 = counts.values().filter_map(Value::as_u64).sum();
    assert_eq!(total, RUN_SHOTS, "counts {counts:?}");
}

#[test]
fn runs_on_a_bound_target_go_to_its_executor() {
    let (s, _dir) = start(&command("good.py", &[]), 3, "");
    let t = wait_up(&s);
    assert_eq!(t["execution"], "executor", "{t}");
    assert_eq!(t["available"], true, "{t}");
    assert_eq!(t["executor"]["backend"]["name"], "fake_good", "{t}");
    let h = s.health();
    assert_eq!(h["executors"]["ibm_quantum"]["up"], true, "{h}");

    let before = remaining(&s);
    for preset in ["hello_quantum_sim", "circuit"] {
        let id = s.submit(on_ibm(preset));
        let run = s.wait_final(&id, Duration::from_secs(30));
        assert_ran_on_executor(&run, "fake_good");
        // The fake puts every shot on the all-zero key.
        assert_eq!(
            run["result"]["kpis"]["raw_counts"]["00"], RUN_SHOTS,
            "{preset}: {run}"
        );
    }
    assert_eq!(
        remaining(&s),
        before - 2 * RUN_SHOTS,
        "succeeded runs keep their shots"
    );
}

#[test]
fn an_executor_that_crashes_mid_run_is_restarted_and_the_run_retried() {
    let state = TempDir::new("crashonce");
    let env = format!("CRASH_ONCE_STATE={}", state.path().join("seen").display());
    let (s, _dir) = start(&command("crash_once.py", &[&env]), 3, "max_attempts = 3");
    let before = remaining(&s);
    let id = s.submit(on_ibm("hello_quantum_sim"));
    let run = s.wait_final(&id, Duration::from_secs(40));
    assert_ran_on_executor(&run, "fault_crash_once");
    assert!(run["attempts"].as_u64().is_some_and(|a| a >= 2), "{run}");
    assert!(
        s.metric("synqc_executor_restarts_total{target=\"ibm_quantum\"}") >= 1.0,
        "{}",
        s.get("/metrics").body
    );
    // One run's shots, once: the crashed attempt did not count them again.
    assert_eq!(remaining(&s), before - RUN_SHOTS);
}

/// Submits a run that fails on every attempt and checks the failure and
/// the ledger: `refunded` says whether its shots came back.
fn assert_fails_after_attempts(s: &Server, max_attempts: u64, refunded: bool) -> Value {
    let before = remaining(s);
    let id = s.submit(on_ibm("hello_quantum_sim"));
    assert_eq!(remaining(s), before - RUN_SHOTS, "reserved at submit");
    let run = s.wait_final(&id, Duration::from_secs(60));
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["error_code"], "PROVIDER_ERROR", "{run}");
    assert_eq!(run["attempts"], max_attempts, "{run}");
    let expected = if refunded { before } else { before - RUN_SHOTS };
    assert_eq!(remaining(s), expected, "refunded={refunded}: {run}");
    run
}

#[test]
fn a_hung_executor_fails_the_run_after_its_attempts_and_refunds() {
    let (s, _dir) = start(&command("hang.py", &[]), 1, "max_attempts = 2");
    assert_fails_after_attempts(&s, 2, true);
    // The hung child was killed and restarted, and serves again.
    wait_up(&s);
    assert!(s.metric("synqc_executor_restarts_total{target=\"ibm_quantum\"}") >= 1.0);
}

#[test]
fn garbage_answers_fail_the_run_and_refund_unless_counts_came_back() {
    // A wrong sum still carries counts: they were sampled, so the shots are
    // spent. The other kinds of garbage returned no usable counts.
    for (mode, refunded) in [
        ("bad_json", true),
        ("bad_sum", false),
        ("missing_circuit", true),
        ("wrong_id", true),
    ] {
        let env = format!("GARBAGE_MODE={mode}");
        let (s, _dir) = start(&command("garbage.py", &[&env]), 2, "max_attempts = 2");
        let run = assert_fails_after_attempts(&s, 2, refunded);
        assert!(
            run["error_message"].as_str().is_some_and(|m| !m.is_empty()),
            "{mode}: {run}"
        );
    }
}

#[test]
fn a_missing_executor_holds_its_runs_until_it_appears() {
    let scripts = TempDir::new("later");
    let later = scripts.path().join("later.py");
    let cmd = vec!["/usr/bin/python3".to_string(), later.display().to_string()];
    let (s, _dir) = start(&cmd, 3, "");
    // Down once the first start failed (not merely starting).
    let t = wait_target(&s, Duration::from_secs(20), |t| {
        t["available"] == false && t["executor"]["restarts"].as_u64().is_some_and(|r| r >= 1)
    });
    assert!(
        t["executor"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("later.py")),
        "{t}"
    );
    assert!(
        t["availability_reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{t}"
    );
    assert_eq!(s.health()["executors"]["ibm_quantum"]["up"], false);
    assert_eq!(s.metric(TARGET_UP), 0.0);

    let before = remaining(&s);
    let answer = s.post("/runs", &on_ibm("hello_quantum_sim"));
    assert_eq!(answer.status, 202, "{}", answer.body);
    let accepted = answer.json();
    let id = accepted["id"].as_str().expect("id").to_string();
    assert!(
        accepted["warnings"].as_array().is_some_and(|w| w
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("waits in the queue")))),
        "the answer warns that the run waits for its executor: {accepted}"
    );
    // It waits for its executor: queued (or claimed for a moment and put
    // back), never failed.
    let watch = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watch {
        let v = s.get(&format!("/runs/{id}")).json();
        assert!(matches!(v["status"].as_str(), Some("queued" | "running")), "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The script imports proto.py from its own directory; it appears
    // whole, by a rename, as an operator's install would.
    for f in ["good.py", "proto.py"] {
        std::fs::copy(fake(f), scripts.path().join(f)).expect("copy fake");
    }
    std::fs::rename(scripts.path().join("good.py"), &later).expect("rename");
    // The restart backoff is at most 30 s.
    let run = s.wait_final(&id, Duration::from_secs(60));
    assert_ran_on_executor(&run, "fake_good");
    assert_eq!(run["attempts"], 1, "waiting spent no attempt: {run}");
    assert_eq!(remaining(&s), before - RUN_SHOTS);
    assert_eq!(ibm_target(&s)["available"], true);
    assert_eq!(s.metric(TARGET_UP), 1.0);
}

#[test]
fn runs_waiting_on_an_executor_survive_a_kill_and_finish_after_restart() {
    let dir = TempDir::new("execkill");
    let data = dir.path().join("data");
    let hang = write_config(dir.path(), "hang.toml", &command("hang.py", &[]), 120, "");
    let s = Server::start_at(
        &data,
        &["--workers", "1", "--config", hang.to_str().expect("utf-8")],
    );
    wait_up(&s);
    let before = remaining(&s);
    let id = s.submit(on_ibm("hello_quantum_sim"));
    wait_status(&s, &id, "running", Duration::from_secs(20));
    // Let the request reach the hanging executor.
    std::thread::sleep(Duration::from_millis(500));
    s.kill9();

    let good = write_config(dir.path(), "good.toml", &command("good.py", &[]), 3, "");
    let s = Server::start_at(
        &data,
        &["--workers", "1", "--config", good.to_str().expect("utf-8")],
    );
    let run = s.wait_final(&id, Duration::from_secs(60));
    assert_ran_on_executor(&run, "fake_good");
    assert_eq!(remaining(&s), before - RUN_SHOTS, "counted once across the crash");
}

#[test]
fn a_cancel_reaches_a_run_waiting_on_an_executor() {
    let (s, _dir) = start(&command("hang.py", &[]), 120, "");
    wait_up(&s);
    let before = remaining(&s);
    let id = s.submit(on_ibm("hello_quantum_sim"));
    wait_status(&s, &id, "running", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    let c = s.post(&format!("/runs/{id}/cancel"), &json!({}));
    assert!(matches!(c.status, 200 | 202), "{}", c.body);
    let run = s.wait_final(&id, Duration::from_secs(5));
    assert_eq!(run["status"], "cancelled", "{run}");
    assert!(asked.elapsed() < Duration::from_secs(5));
    // Cancelled while executing: like every running run, it keeps its
    // shots (docs/api.md), and says so.
    assert_eq!(run["error_detail"]["shots_refunded"], false, "{run}");
    assert_eq!(remaining(&s), before - RUN_SHOTS, "{run}");
    // The only worker was freed by the cancel: the next run starts (and
    // waits on the executor, which hangs).
    let next = s.submit(on_ibm("hello_quantum_sim"));
    wait_status(&s, &next, "running", Duration::from_secs(20));
}

#[test]
fn the_executors_stderr_lands_in_the_log() {
    let dir = TempDir::new("execlog");
    let log = dir.path().join("synqc.log");
    let mark = "stderr-mark-7f3a";
    let cfg = write_config(
        dir.path(),
        "synqc.toml",
        &command("good.py", &[&format!("STDERR_MARK={mark}")]),
        3,
        "",
    );
    // The helper inherits the server's stderr; a shell wrapper sends it to
    // a file instead, with the log level that includes an executor's
    // ordinary lines.
    let redirect = format!("exec \"$0\" \"$@\" 2>>'{}'", log.display());
    let wrapper = ["/usr/bin/env", "SYNQC_LOG=info", "/bin/sh", "-c", &redirect];
    let s = Server::start_wrapped(
        &wrapper,
        &["--workers", "1", "--config", cfg.to_str().expect("utf-8")],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(mark)) {
            assert!(
                line.contains("ibm_quantum"),
                "not prefixed with the target: {line}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the mark never reached the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(s);
}

#[test]
fn config_check_refuses_bad_bindings_naming_them() {
    let dir = TempDir::new("execcfg");
    let check = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write config");
        common::synqc_env(
            &[],
            &["config", "check", "--config", path.to_str().expect("utf-8")],
        )
    };
    let (ok, text) = check(
        "unknown.toml",
        "[executors.no_such_target]\ncommand = [\"/bin/true\"]\n",
    );
    assert!(!ok, "{text}");
    assert!(text.contains("executors.no_such_target"), "{text}");
    assert!(text.contains("unknown hardware target"), "{text}");
    let (ok, text) = check("empty.toml", "[executors.ibm_quantum]\ncommand = []\n");
    assert!(!ok, "{text}");
    assert!(text.contains("executors.ibm_quantum.command"), "{text}");
    let good = format!(
        "[executors.ibm_quantum]\ncommand = {}\n",
        serde_json::to_string(&command("good.py", &[])).expect("json")
    );
    let (ok, text) = check("good.toml", &good);
    assert!(ok, "{text}");
}
