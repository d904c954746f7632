//! The old Python service's clients, replayed against the real binary:
//! each test sends what one client sends, in its order, and checks what
//! that client reads (issue 16, "the old clients work unchanged").

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, code, free_port, hello, Server, TempDir};
use serde_json::{json, Value};

/// quickstart_health_check.py: a 256-shot health run, submitted, polled,
/// its KPIs read; then the same through the legacy synchronous route.
#[test]
fn quickstart_health_check_runs_with_256_shots() {
    let s = Server::start(&["--workers", "1"]);
    let r = s.post("/runs", &json!({"preset": "health", "shot_budget": 256}));
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["id"].as_str().expect("id").to_string();
    let done = s.wait_final(&id, Duration::from_secs(60));
    assert_eq!(done["status"], "succeeded", "{done}");
    let result = &done["result"];
    let kpis = &result["kpis"];
    assert_eq!(kpis["shots_used"], 256);
    assert_eq!(kpis["shot_budget"], 256);
    let fidelity = kpis["fidelity"].as_f64().expect("fidelity");
    assert!(fidelity > 0.0 && fidelity <= 1.0, "{fidelity}");
    assert!(matches!(kpis["status"].as_str(), Some("ok" | "warn" | "fail")));
    let warnings: Vec<&str> = result["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("reduced health protocol for a 256-shot budget")),
        "{warnings:?}"
    );
    assert_eq!(result["artifacts"]["protocol"]["name"], "reduced");
    for name in ["t1_us", "t2star_us", "t2echo_us", "epc"] {
        let d = result["kpi_details"]
            .as_array()
            .expect("kpi_details")
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"));
        assert!(d["value"].as_f64().is_some_and(f64::is_finite), "{name}");
        assert!(d["ci95"].as_array().is_some_and(|c| c.len() == 2), "{name}");
    }

    let sync = s.post(
        "/experiments/run",
        &json!({"preset": "health", "shot_budget": 256}),
    );
    assert_eq!(sync.status, 200, "{}", sync.body);
    assert_eq!(sync.json()["kpis"]["shots_used"], 256);
    assert_eq!(sync.json()["artifacts"]["protocol"]["name"], "reduced");

    // At the full protocol's budget (85 circuits x 12 shots) nothing says
    // "reduced".
    let full = s.post(
        "/experiments/run",
        &json!({"preset": "health", "shot_budget": 1020}),
    );
    assert_eq!(full.status, 200, "{}", full.body);
    assert!(full.json()["artifacts"]["protocol"].is_null());
    // Below the smallest protocol the refusal names the minimum.
    let tiny = s.post("/runs", &json!({"preset": "health", "shot_budget": 100}));
    assert_eq!((tiny.status, code(&tiny).as_str()), (422, "BUDGET_GUARDRAIL"));
    let minimum = tiny.json()["detail"]["error_detail"]["minimum"]
        .as_u64()
        .expect("minimum");
    assert!(minimum > 100 && minimum <= 256, "{minimum}");
}

fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

const CONSOLE: &str = "http://console.lab:8080";

/// The web console on another origin, fetching with credentials: 'include'.
#[test]
fn cross_origin_console_with_credentials() {
    let s = Server::start(&[
        "--cors-allow-origins",
        CONSOLE,
        "--cors-allow-credentials",
        "true",
    ]);
    let pre = s.send(
        "OPTIONS",
        "/runs",
        None,
        &[
            ("Origin", CONSOLE),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "content-type,x-session-id,x-api-key",
            ),
        ],
    );
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("Access-Control-Allow-Origin"), Some(CONSOLE));
    assert_eq!(pre.header("Access-Control-Allow-Credentials"), Some("true"));
    assert!(has_token(pre.header("Access-Control-Allow-Methods"), "POST"));
    for h in ["Content-Type", "X-Session-Id", "X-Api-Key"] {
        assert!(has_token(pre.header("Access-Control-Allow-Headers"), h), "{h}");
    }
    assert!(has_token(pre.header("Vary"), "Origin"));

    let health = s.send("GET", "/health", None, &[("Origin", CONSOLE)]);
    assert_eq!(health.status, 200);
    assert_eq!(health.header("Access-Control-Allow-Origin"), Some(CONSOLE));
    assert_eq!(health.header("Access-Control-Allow-Credentials"), Some("true"));
    assert!(has_token(
        health.header("Access-Control-Expose-Headers"),
        "X-Request-Id"
    ));
    assert!(has_token(health.header("Vary"), "Origin"));

    let post = s.send(
        "POST",
        "/runs",
        Some(&hello()),
        &[("Origin", CONSOLE), ("X-Session-Id", "console")],
    );
    assert_eq!(post.status, 202, "{}", post.body);
    assert_eq!(post.header("Access-Control-Allow-Origin"), Some(CONSOLE));
    assert_eq!(post.header("Access-Control-Allow-Credentials"), Some("true"));
    assert!(has_token(
        post.header("Access-Control-Expose-Headers"),
        "Location"
    ));

    // Another origin gets nothing that would let its script read answers.
    let foreign = s.send("GET", "/health", None, &[("Origin", "http://evil.example")]);
    assert_eq!(foreign.header("Access-Control-Allow-Origin"), None);
    assert_eq!(foreign.header("Access-Control-Allow-Credentials"), None);
    let foreign_pre = s.send(
        "OPTIONS",
        "/runs",
        None,
        &[
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
    );
    assert_eq!(foreign_pre.status, 403);
    assert_eq!(foreign_pre.header("Access-Control-Allow-Credentials"), None);
    drop(s);

    // With the key off (the default), the origin is allowed without credentials.
    let off = Server::start(&["--cors-allow-origins", CONSOLE]);
    let pre = off.send(
        "OPTIONS",
        "/runs",
        None,
        &[("Origin", CONSOLE), ("Access-Control-Request-Method", "POST")],
    );
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("Access-Control-Allow-Origin"), Some(CONSOLE));
    assert_eq!(pre.header("Access-Control-Allow-Credentials"), None);
    let get = off.send("GET", "/health", None, &[("Origin", CONSOLE)]);
    assert_eq!(get.header("Access-Control-Allow-Origin"), Some(CONSOLE));
    assert_eq!(get.header("Access-Control-Allow-Credentials"), None);
    drop(off);

    // Credentials with the wildcard origin are refused before serving.
    let out = Command::new(bin())
        .args([
            "config",
            "check",
            "--cors-allow-origins",
            "*",
            "--cors-allow-credentials",
            "true",
        ])
        .env_remove("SYNQC_API_KEY")
        .output()
        .expect("run synqc");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("cors_allow_credentials"), "{text}");
}

fn qubit(doc: &Value, target: &str, q: usize) -> Value {
    doc["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["hardware_target"] == target)
        .unwrap_or_else(|| panic!("no {target} in {doc}"))["qubits"][q]
        .clone()
}

/// The qubit panel: GET /telemetry/qubits after runs whose qubits and
/// shots are known, before and after a restart.
#[test]
fn qubit_panel_counts_what_ran() {
    let dir = TempDir::new("qubits");
    let data = dir.path().join("data");
    let flags = ["--workers", "1", "--allow-provider-simulation", "true"];
    let s = Server::start_at(&data, &flags);
    let empty = s.get("/telemetry/qubits");
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert_eq!(qubit(&empty.json(), "sim_local", 0)["runs"], 0);
    assert!(qubit(&empty.json(), "sim_local", 0)["last_used_at"].is_null());

    let runs = [
        json!({"preset": "hello_quantum_sim", "shot_budget": 100}),
        json!({"preset": "hello_quantum_sim", "shot_budget": 100}),
        json!({"preset": "grover_demo", "shot_budget": 64}),
        json!({"preset": "health", "shot_budget": 256}),
        json!({"preset": "backend_compare", "shot_budget": 101, "compare_with": "ibm_quantum"}),
    ];
    let started = Instant::now();
    let mut last_finished = 0.0f64;
    for body in runs {
        let id = s.submit(body);
        let done = s.wait_final(&id, Duration::from_secs(60));
        assert_eq!(done["status"], "succeeded", "{done}");
        last_finished = last_finished.max(done["finished_at"].as_f64().expect("finished_at"));
    }
    // A failed or refused run uses nothing.
    let refused = s.post("/runs", &json!({"preset": "health", "shot_budget": 10}));
    assert_eq!(refused.status, 422);

    let check = |doc: &Value| {
        // sim_local: qubit 0 by all five runs, qubit 1 by the two-qubit
        // ones, qubit 2 by grover only; backend_compare's odd shot stays
        // on the first target.
        let want = [(5, 100 + 100 + 64 + 256 + 51), (4, 100 + 100 + 64 + 51), (1, 64)];
        for (q, (runs, shots)) in want.into_iter().enumerate() {
            let got = qubit(doc, "sim_local", q);
            assert_eq!(
                (got["qubit"].as_u64(), got["runs"].as_u64(), got["shots"].as_u64()),
                (Some(q as u64), Some(runs), Some(shots)),
                "sim_local qubit {q}: {got}"
            );
        }
        for q in 0..2 {
            let got = qubit(doc, "ibm_quantum", q);
            assert_eq!(
                (got["runs"].as_u64(), got["shots"].as_u64()),
                (Some(1), Some(50)),
                "{got}"
            );
        }
        assert_eq!(qubit(doc, "ibm_quantum", 2)["runs"], 0);
        assert!(qubit(doc, "ibm_quantum", 2)["last_used_at"].is_null());
        assert_eq!(qubit(doc, "aws_braket", 0)["runs"], 0);
        let sim = doc["targets"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["hardware_target"] == "sim_local"))
            .expect("sim_local");
        assert_eq!(sim["runs"], 5);
        assert_eq!(sim["shots"], 100 + 100 + 64 + 256 + 51);
        let last = sim["last_used_at"].as_f64().expect("last_used_at");
        assert!((last - last_finished).abs() < 0.002, "{last} vs {last_finished}");
    };
    let doc = s.get("/telemetry/qubits").json();
    check(&doc);
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(s.terminate().code(), Some(0));

    // Durable: the same numbers after a restart.
    let again = Server::start_at(&data, &flags);
    check(&again.get("/telemetry/qubits").json());
}

/// The console's recent list: each item carries the result summary fields
/// the old service returned, equal to the full result's.
#[test]
fn recent_items_carry_the_result_summary() {
    let s = Server::start(&["--workers", "1"]);
    let id =
        s.submit(json!({"preset": "hello_quantum_sim", "seed": 21, "notes": "panel", "shot_budget": 300}));
    let done = s.wait_final(&id, Duration::from_secs(30));
    assert_eq!(done["status"], "succeeded", "{done}");
    let full = s.get(&format!("/experiments/{id}")).json();
    let recent = s.get("/experiments/recent?limit=10");
    assert_eq!(recent.status, 200);
    let item = recent.json()[0].clone();
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["status"], "succeeded");
    for same in [
        "id",
        "preset",
        "hardware_target",
        "created_at",
        "notes",
        "seed",
        "engine_version",
        "qubits_used",
        "kpis",
        "shots",
        "kpi_details",
        "warnings",
        "error_code",
        "error_message",
        "error_detail",
        "action_hint",
    ] {
        assert!(item.get(same).is_some(), "item lacks {same}: {item}");
        assert_eq!(item[same], full[same], "{same}");
    }
    assert_eq!(item["qubits_used"], 2);
    assert_eq!(item["shots"], json!({"requested": 300, "executed": 300}));
    assert!(item["error_code"].is_null());
    assert!(item["finished_at"].as_f64().is_some());
}

/// The console's header line reads env from /health.
#[test]
fn health_reports_the_deployment_label() {
    let s = Server::start(&[]);
    assert_eq!(s.health()["env"], "production");
    drop(s);
    let lab = Server::start(&["--env", "lab"]);
    assert_eq!(lab.health()["env"], "lab");
}

/// Closing a console tab ends its event stream; that is no error, and the
/// log says nothing of it at the levels an operator reads.
#[test]
fn closing_an_event_stream_logs_no_error() {
    let dir = TempDir::new("sse");
    let log = dir.path().join("stderr.log");
    let port = free_port();
    let mut child = Command::new(bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("SYNQC_API_KEY")
        .env("SYNQC_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn synqc");
    let client = common::Client::new(&format!("http://127.0.0.1:{port}")).expect("client");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client.get("/health/ready").is_ok_and(|r| r.status == 200) {
        assert!(Instant::now() < deadline, "synqc did not become ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..3 {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            conn,
            "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
        )
        .expect("send");
        let mut status = String::new();
        BufReader::new(&conn).read_line(&mut status).expect("status line");
        assert!(status.contains("200"), "{status}");
        drop(conn);
    }
    // Events now go to streams whose clients are gone.
    for _ in 0..2 {
        let r = client.post("/runs", &hello()).expect("submit");
        assert_eq!(r.status, 202);
        let id = r.json()["id"].as_str().expect("id").to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client
            .get(&format!("/runs/{id}"))
            .is_ok_and(|r| matches!(r.json()["status"].as_str(), Some("queued" | "running")))
        {
            assert!(Instant::now() < deadline, "run {id} did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        !text.contains("SSE handler error") && !text.contains("sse disconnected"),
        "{text}"
    );
}

/// load_test.py: concurrent submits, each polled to its end, then /health
/// and /metrics read.
#[test]
fn load_test_flow_still_passes() {
    let s = Server::start(&["--workers", "2"]);
    let base = format!("http://127.0.0.1:{}", s.port);
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let client = common::Client::new(&base).expect("client");
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for i in 0..5 {
                    let r = client
                        .post(
                            "/runs",
                            &json!({"preset": "hello_quantum_sim", "seed": t * 100 + i}),
                        )
                        .expect("submit");
                    assert_eq!(r.status, 202, "{}", r.body);
                    ids.push(r.json()["id"].as_str().expect("id").to_string());
                }
                for id in ids {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        let v = client.get(&format!("/runs/{id}")).expect("poll").json();
                        match v["status"].as_str() {
                            Some("queued" | "running") => {}
                            other => {
                                assert_eq!(other, Some("succeeded"), "{v}");
                                assert!(v["result"]["kpis"]["fidelity"].as_f64().is_some());
                                break;
                            }
                        }
                        assert!(Instant::now() < deadline, "run {id} did not finish");
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let h = s.health();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["queue"]["succeeded"], 30);
    assert_eq!(h["queue"]["queued"], 0);
    let m = s.get("/metrics");
    assert_eq!(m.status, 200);
    let finished: f64 = m
        .body
        .lines()
        .filter(|l| l.starts_with("synqc_runs_finished_total{") && l.contains("status=\"succeeded\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(finished, 30.0);
}
