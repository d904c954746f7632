//! The command line as an operator uses it: healthcheck, config check,
//! submit/status and loadtest against a real server.

mod common;

use common::{synqc_env, Server, TempDir};

fn synqc(args: &[&str]) -> (bool, String) {
    synqc_env(&[], args)
}

/// Whether `help` lists `option` on a line of its own with an explanation
/// beside it.
fn documents(help: &str, option: &str) -> bool {
    help.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with(option)
            && l[option.len()..].starts_with([' ', ','])
            && l.split("  ").filter(|c| !c.trim().is_empty()).count() >= 2
    })
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
fn pause_and_resume_a_target_from_the_command_line() {
    let s = Server::start(&["--workers", "1"]);
    let url = format!("http://127.0.0.1:{}", s.port);
    let (ok, text) = synqc(&[
        "pause",
        "--url",
        &url,
        "--target",
        "sim_local",
        "--reason",
        "fridge",
    ]);
    assert!(ok && text.contains("fridge"), "{text}");
    assert_eq!(s.health()["paused"]["targets"]["sim_local"]["reason"], "fridge");
    let (ok, text) = synqc(&[
        "submit",
        "--url",
        &url,
        "--preset",
        "hello_quantum_sim",
        "--priority",
        "9",
    ]);
    assert!(ok && text.contains("paused"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("submit prints JSON");
    let id = v["id"].as_str().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(s.get(&format!("/runs/{id}")).json()["status"], "queued");
    let (ok, text) = synqc(&["pause", "--url", &url, "--target", "nowhere"]);
    assert!(!ok && text.contains("INVALID_TARGET"), "{text}");
    let (ok, text) = synqc(&["resume", "--url", &url, "--target", "sim_local"]);
    assert!(ok && text.contains("\"was_paused\": true"), "{text}");
    let run = s.wait_final(id, std::time::Duration::from_secs(30));
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["priority"], 9, "{run}");
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

#[test]
fn every_command_answers_help_with_its_options() {
    let client = ["--url", "--api-key", "--session"];
    let settings: Vec<String> = synqc::config::KEYS
        .iter()
        .map(|(k, _, _)| format!("--{}", k.replace('_', "-")))
        .collect();
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["serve"], [&["--config"][..], &settings].concat()),
        (vec!["config", "check"], [&["--config"][..], &settings].concat()),
        (vec!["healthcheck"], client.to_vec()),
        (
            vec!["submit"],
            [
                &[
                    "--preset",
                    "--shots",
                    "--target",
                    "--mode",
                    "--seed",
                    "--notes",
                    "--priority",
                    "--not-before",
                ][..],
                &client,
            ]
            .concat(),
        ),
        (vec!["status"], client.to_vec()),
        (vec!["pause"], [&["--target", "--reason"][..], &client].concat()),
        (vec!["resume"], [&["--target", "--reason"][..], &client].concat()),
        (
            vec!["loadtest"],
            [
                &[
                    "--runs",
                    "--concurrency",
                    "--preset",
                    "--shots",
                    "--timeout-seconds",
                    "--strict",
                    "--no-strict",
                ][..],
                &client,
            ]
            .concat(),
        ),
        (vec!["backup"], [&["--out"][..], &client].concat()),
        (vec!["restore"], vec!["--in", "--data-dir"]),
        (vec!["config", "keys"], vec![]),
        (vec!["bench", "sim"], vec![]),
        (vec!["bench", "fill"], vec!["--data-dir", "--runs"]),
        (
            vec!["physics", "circuits"],
            vec![
                "--preset",
                "--target",
                "--seed",
                "--shots",
                "--compare-with",
                "--control",
            ],
        ),
        (vec!["version"], vec![]),
    ];
    for (command, options) in &cases {
        for flag in ["--help", "-h"] {
            let (ok, text) = synqc(&[&command[..], &[flag]].concat());
            assert!(ok, "synqc {command:?} {flag}: {text}");
            assert!(
                text.contains(&format!("usage: synqc {}", command.join(" "))),
                "{command:?}: {text}"
            );
            for o in options.iter().chain(&["-h"]) {
                assert!(documents(&text, o), "synqc {command:?} {flag} lacks {o}: {text}");
            }
        }
        let (ok, text) = synqc(&[&["help"][..], command].concat());
        assert!(ok && options.iter().all(|o| documents(&text, o)), "{text}");
    }
    // The settings' help names their environment variables.
    let (_, text) = synqc(&["serve", "--help"]);
    assert!(text.contains("[SYNQC_MAX_SHOTS_PER_SESSION, default"), "{text}");
    // The list of commands, however it is asked for.
    for args in [&["--help"][..], &["-h"], &["help"], &[]] {
        let (ok, text) = synqc(args);
        assert!(ok, "{args:?}: {text}");
        for (command, _) in &cases {
            assert!(
                text.contains(&format!("  {} ", command.join(" "))),
                "{args:?}: {text}"
            );
        }
    }
    // Help wins over the rest of the line: nothing is submitted (there is
    // no server on this port; a submit would fail).
    let closed = format!("http://127.0.0.1:{}", common::free_port());
    let (ok, text) = synqc(&["submit", "--url", &closed, "--preset", "health", "-h"]);
    assert!(ok && documents(&text, "--preset"), "{text}");
    // An unknown option points at the help.
    let (ok, text) = synqc(&["loadtest", "--runz", "5"]);
    assert!(!ok && text.contains("synqc loadtest --help"), "{text}");
    let (ok, text) = synqc(&["nope", "--help"]);
    assert!(!ok && text.contains("unknown command 'nope'"), "{text}");
}

/// The README's load test against a server with the default budgets: it
/// fits the session cap and spends a session of its own, so the operator's
/// next submit on the default session is still accepted.
#[test]
fn readme_loadtest_fits_a_default_server_and_spares_the_default_session() {
    let s = Server::start(&["--workers", "2"]);
    let url = format!("http://127.0.0.1:{}", s.port);
    let (ok, text) = synqc(&["loadtest", "--url", &url, "--runs", "500", "--concurrency", "32"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("submitted 500 runs") && text.contains("refused 0"),
        "{text}"
    );
    assert!(text.contains("budget session loadtest-"), "{text}");
    assert!(text.contains("loadtest: ok"), "{text}");
    let (ok, text) = synqc(&["submit", "--url", &url, "--preset", "hello_quantum_sim"]);
    assert!(ok, "the default session was spent by the load test: {text}");
    // A load that cannot fit is refused in one line before any submit.
    let total = s.health()["queue"]["total"].clone();
    let (ok, text) = synqc(&["loadtest", "--url", &url, "--runs", "500", "--shots", "2048"]);
    assert!(!ok, "{text}");
    assert_eq!(
        text.trim(),
        "synqc: loadtest refused to start, nothing was submitted: 500 runs x 2048 shots = \
         1024000 shots exceed the server's max_shots_per_session (1000000); use --shots 2000 \
         or fewer, or fewer --runs"
    );
    assert_eq!(s.health()["queue"]["total"], total);
}

#[test]
fn session_flag_and_environment_choose_the_budget_session() {
    let s = Server::start(&["--workers", "1", "--max-shots-per-session", "1000"]);
    let url = format!("http://127.0.0.1:{}", s.port);
    let submit = |env: &[(&str, &str)], extra: &[&str]| {
        synqc_env(
            env,
            &[
                &["submit", "--url", &url, "--preset", "hello_quantum_sim"][..],
                extra,
            ]
            .concat(),
        )
    };
    // Session A spends its whole budget...
    let (ok, text) = submit(&[], &["--session", "A", "--shots", "1000"]);
    assert!(ok, "{text}");
    let (ok, text) = submit(&[], &["--session", "A", "--shots", "64"]);
    assert!(!ok && text.contains("BUDGET_EXHAUSTED"), "{text}");
    assert!(text.contains(r#""session_id": "A""#), "{text}");
    // ...as SYNQC_SESSION names it too, unless --session names another...
    let (ok, text) = submit(&[("SYNQC_SESSION", "A")], &["--shots", "64"]);
    assert!(!ok && text.contains(r#""session_id": "A""#), "{text}");
    let (ok, text) = submit(&[("SYNQC_SESSION", "A")], &["--session", "B", "--shots", "64"]);
    assert!(ok, "{text}");
    // ...and the default session still has its own budget.
    let (ok, text) = submit(&[], &["--shots", "64"]);
    assert!(ok, "{text}");
    // A load test on the spent session says why in one line.
    let (ok, text) = synqc(&[
        "loadtest",
        "--url",
        &url,
        "--session",
        "A",
        "--runs",
        "5",
        "--shots",
        "64",
    ]);
    assert!(!ok, "{text}");
    let last = text.trim().lines().last().unwrap_or("");
    assert!(
        last.starts_with(
            "synqc: loadtest failed: 5 of 5 submits refused: 429 BUDGET_EXHAUSTED for session A \
             (0 shots remaining, resets in "
        ) && last.ends_with("s); use --shots N or --session NAME"),
        "{text}"
    );
    // Without --session the load takes a session of its own (not
    // SYNQC_SESSION's) and sizes its runs to the small cap.
    let (ok, text) = synqc_env(
        &[("SYNQC_SESSION", "A")],
        &["loadtest", "--url", &url, "--runs", "10", "--concurrency", "4"],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("100 shots each, budget session loadtest-"),
        "{text}"
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // The reader has gone before synqc writes (`synqc ... | head` after
    // head has its line): the write fails with EPIPE.
    let script = format!(
        "(sleep 0.3; '{}' --help; echo \"synqc exited $?\" >&2) | true",
        env!("CARGO_BIN_EXE_synqc")
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("synqc exited 0"), "{stderr}");
}

#[test]
fn a_busy_port_or_a_data_dir_in_use_stops_with_a_sentence_that_says_what_to_do() {
    let s = Server::start(&["--workers", "0"]);
    let listen = format!("127.0.0.1:{}", s.port);
    let dir = TempDir::new("busy");

    // The port is taken: nothing is created in the new data dir.
    let fresh = dir.path().join("never-created");
    let fresh_arg = fresh.display().to_string();
    let (ok, text) = synqc(&["serve", "--listen", &listen, "--data-dir", &fresh_arg]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("already in use") && text.contains("--listen"),
        "{text}"
    );
    assert!(!fresh.exists(), "a busy port left {} behind", fresh.display());

    // The data dir is served by the running synqc.
    let other = format!("127.0.0.1:{}", common::free_port());
    let data = s.data.display().to_string();
    let (ok, text) = synqc(&["serve", "--listen", &other, "--data-dir", &data]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("in use by another synqc process") && text.contains("--data-dir"),
        "{text}"
    );
    assert!(
        !text.contains("WouldBlock") && !text.contains("os error"),
        "{text}"
    );
    // The first server is unharmed.
    assert_eq!(s.get("/health/ready").status, 200);
}

/// `synqc physics circuits` with its exit status and its output as JSON
/// (Null when it printed none).
fn physics(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = std::process::Command::new(common::bin())
        .args([&["physics", "circuits"][..], args].concat())
        .output()
        .expect("run synqc");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sums_to_one(d: &serde_json::Value) -> bool {
    let total: f64 = d.as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum();
    (total - 1.0).abs() < 1e-12
}

#[test]
fn physics_circuits_prints_each_circuit_with_its_program_params_and_exact_distribution() {
    let (code, doc, err) = physics(&["--preset", "hello_quantum_sim", "--target", "sim_local"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(doc["engine_version"], synqc::sim::ENGINE_VERSION);
    let circuits = doc["circuits"].as_array().unwrap();
    assert!(!circuits.is_empty(), "{doc}");
    for c in circuits {
        let n = c["qubits"].as_u64().unwrap();
        let qasm = c["qasm"].as_str().unwrap();
        assert!(qasm.starts_with("OPENQASM 3.0;"), "{qasm}");
        for q in 0..n {
            assert!(qasm.contains(&format!("c[{q}] = measure q[{q}];")), "{qasm}");
        }
        assert!(sums_to_one(&c["distribution"]) && sums_to_one(&c["ideal"]), "{c}");
        assert!(c["quadrature_nodes"].as_u64().unwrap() >= 1, "{c}");
        assert!(c["noise_params"]["t2star_us"].as_f64().is_some(), "{c}");
        assert!(c["noise_params"]["depolarizing_1q"].as_f64().is_some(), "{c}");
    }
    // The Bell pair: the ideal is half 00, half 11; noise leaks into 01 and 10.
    let bell = &circuits[0];
    assert!(
        (bell["ideal"]["00"].as_f64().unwrap() - 0.5).abs() < 1e-12,
        "{bell}"
    );
    assert!(bell["distribution"]["01"].as_f64().unwrap() > 0.0, "{bell}");

    // The latency preset's one x: all weight on 1 ideally, most of it noisy.
    let (code, doc, err) = physics(&["--preset", "latency", "--target", "rigetti_forest"]);
    assert_eq!(code, Some(0), "{err}");
    let x = &doc["circuits"][0];
    assert!((x["ideal"]["1"].as_f64().unwrap() - 1.0).abs() < 1e-12, "{x}");
    assert!(x["distribution"]["1"].as_f64().unwrap() > 0.9, "{x}");

    // Controls reach the parameters; backend_compare names both targets.
    let (code, doc, err) = physics(&[
        "--preset",
        "backend_compare",
        "--target",
        "aws_braket",
        "--compare-with",
        "ideal",
        "--control",
        "drive_bias=1.08",
        "--control",
        "thermal_guard_enabled=false",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let circuits = doc["circuits"].as_array().unwrap();
    let own = circuits
        .iter()
        .find(|c| c["target"] == "aws_braket")
        .expect("own half");
    let twin = circuits
        .iter()
        .find(|c| c["target"] == "ideal")
        .expect("ideal half");
    assert_eq!(own["noise_params"]["drive_bias"], 1.08, "{own}");
    assert_eq!(own["noise_params"]["residual_excited_population"], 0.02, "{own}");
    assert!(twin["noise_params"]["t1_us"].is_null(), "{twin}");

    // Unknown names are usage errors (exit 2) that say what exists.
    for (args, says) in [
        (
            &["--preset", "nope", "--target", "sim_local"][..],
            "unknown preset 'nope'",
        ),
        (
            &["--preset", "health", "--target", "mars"],
            "unknown target 'mars'",
        ),
        (
            &["--preset", "circuit", "--target", "sim_local"],
            "client's program",
        ),
        (
            &[
                "--preset",
                "health",
                "--target",
                "sim_local",
                "--control",
                "warp=9",
            ],
            "unknown control 'warp'",
        ),
        (
            &[
                "--preset",
                "health",
                "--target",
                "sim_local",
                "--control",
                "drive_bias=3",
            ],
            "drive_bias must be between",
        ),
    ] {
        let (code, doc, err) = physics(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(doc.is_null() && err.contains(says), "{args:?}: {err}");
    }
    let (code, _, err) = physics(&["--target", "sim_local"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--preset NAME is required"), "{err}");
}
