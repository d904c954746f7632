//! The HTTP contract of docs/api.md, spoken to the real binary.

mod common;

use std::time::Duration;

use common::{code, hello, Server};
use serde_json::json;

#[test]
fn a_run_goes_from_submit_to_result() {
    let s = Server::start(&[]);
    let r = s.post(
        "/runs",
        &json!({"preset": "hello_quantum_sim", "seed": 11, "notes": "bell check"}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.header("Location"), Some(format!("/runs/{id}").as_str()));
    assert_eq!(r.json()["status"], "queued");
    assert!(r.header("X-Request-Id").is_some_and(|v| !v.is_empty()));

    let done = s.wait_final(&id, Duration::from_secs(30));
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 1);
    assert!(done["queue_position"].is_null());
    let result = &done["result"];
    assert_eq!(result["id"], id.as_str());
    assert_eq!(result["seed"], 11);
    assert_eq!(result["notes"], "bell check");
    let kpis = &result["kpis"];
    let fidelity = kpis["fidelity"].as_f64().unwrap();
    assert!(fidelity > 0.9 && fidelity <= 1.0, "{fidelity}");
    let counts: u64 = kpis["raw_counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(counts, 2048, "default shot budget executed");
    assert_eq!(result["shots"], json!({"requested": 2048, "executed": 2048}));
    assert_eq!(result["kpi_details"], result["kpi_observations"]);
    let names: Vec<&str> = result["kpi_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    for n in [
        "fidelity",
        "state_fidelity",
        "latency_us",
        "queue_wait_us",
        "exec_us",
        "store_us",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    assert!(result["error_code"].is_null());

    // The same run through the other views.
    let listed = s.get("/runs?limit=5").json();
    assert_eq!(listed["runs"][0]["id"], id.as_str());
    let recent = s.get("/experiments/recent?limit=5").json();
    assert_eq!(recent[0]["id"], id.as_str());
    assert_eq!(s.get(&format!("/experiments/{id}")).json()["kpis"], *kpis);
    // A finished run cannot be cancelled.
    let c = s.post(&format!("/runs/{id}/cancel"), &json!({}));
    assert_eq!((c.status, code(&c).as_str()), (409, "CONFLICT"));
    let h = s.health();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["queue"]["succeeded"], 1);
    assert_eq!(h["queue"]["total"], 1);
}

#[test]
fn the_old_clients_request_shape_works() {
    // Exactly what the legacy console sends: preset only, key and session headers.
    let s = Server::start(&[]);
    let r = s.send(
        "POST",
        "/runs",
        Some(&json!({"preset": "health"})),
        &[("X-Session-Id", "lab-a")],
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let done = s.wait_final(r.json()["id"].as_str().unwrap(), Duration::from_secs(60));
    assert_eq!(done["status"], "succeeded", "{done}");
    let h = s.health();
    for field in [
        "session_keys",
        "session_ttl_seconds",
        "redis_connected",
        "connected",
    ] {
        assert!(!h["budget_tracker"][field].is_null(), "budget_tracker.{field}");
    }
    for field in [
        "total",
        "queued",
        "running",
        "max_workers",
        "max_pending",
        "expired_leases",
        "failure_codes",
    ] {
        assert!(!h["queue"][field].is_null(), "queue.{field}");
    }
    assert_eq!(h["budget_tracker"]["session_keys"], 1);
    // The legacy synchronous route answers with the full result.
    let sync = s.post(
        "/experiments/run",
        &json!({"preset": "hello_quantum_sim", "seed": 3}),
    );
    assert_eq!(sync.status, 200, "{}", sync.body);
    assert_eq!(sync.header("Deprecation"), Some("true"));
    assert_eq!(sync.json()["seed"], 3);
    assert!(sync.json()["kpis"]["fidelity"].as_f64().is_some());
}

#[test]
fn bad_requests_get_the_envelope_and_change_nothing() {
    let s = Server::start(&["--max-request-bytes", "2000"]);
    let cases: Vec<(serde_json::Value, u16, &str)> = vec![
        (json!({"preset": "nope"}), 422, "INVALID_REQUEST"),
        (
            json!({"preset": "hello_quantum_sim", "hardware_target": "nope"}),
            400,
            "INVALID_TARGET",
        ),
        (
            json!({"preset": "hello_quantum_sim", "hardware_target": "ibm_quantum"}),
            403,
            "PROVIDER_SIM_DISABLED",
        ),
        (
            json!({"preset": "hello_quantum_sim", "shot_budget": 0}),
            422,
            "INVALID_REQUEST",
        ),
        (
            json!({"preset": "hello_quantum_sim", "shot_budget": 500000, "mode": "prod"}),
            422,
            "BUDGET_GUARDRAIL",
        ),
        (
            json!({"preset": "health", "shot_budget": 10}),
            422,
            "BUDGET_GUARDRAIL",
        ),
        (
            json!({"preset": "hello_quantum_sim", "control_overrides": {"drive_bias": 9}}),
            422,
            "INVALID_REQUEST",
        ),
        (
            json!({"preset": "hello_quantum_sim", "seed": "abc"}),
            422,
            "INVALID_REQUEST",
        ),
    ];
    for (body, status, expect) in cases {
        let r = s.post("/runs", &body);
        assert_eq!(
            (r.status, code(&r).as_str()),
            (status, expect),
            "{body}: {}",
            r.body
        );
        let d = &r.json()["detail"];
        for f in [
            "code",
            "error_code",
            "error_message",
            "error_detail",
            "action_hint",
        ] {
            assert!(!d[f].is_null(), "{f} missing in {}", r.body);
        }
    }
    // Every bad field at once.
    let r = s.post(
        "/runs",
        &json!({"preset": "x", "shot_budget": -3, "mode": "fast"}),
    );
    let v = r.json();
    let locs: Vec<&str> = v["detail"]["error_detail"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["loc"].as_str().unwrap())
        .collect();
    assert_eq!(locs, ["preset", "shot_budget", "mode"]);
    // Guardrail names the minimum.
    let r = s.post("/runs", &json!({"preset": "health", "shot_budget": 10}));
    assert!(
        r.json()["detail"]["error_detail"]["minimum"]
            .as_u64()
            .is_some_and(|m| m > 10),
        "{}",
        r.body
    );
    // Malformed JSON, wrong content type, too large.
    let raw = |ct: &str, body: &str| {
        smol::block_on(async {
            let url = format!("http://127.0.0.1:{}/runs", s.port);
            let mut req =
                tide::http::Request::new(tide::http::Method::Post, tide::http::Url::parse(&url).unwrap());
            req.insert_header("Content-Type", ct);
            req.set_body(body.to_string());
            let stream = smol::net::TcpStream::connect(("127.0.0.1", s.port))
                .await
                .unwrap();
            let mut res = async_h1::connect(stream, req).await.unwrap();
            let text = res.body_string().await.unwrap();
            (u16::from(res.status()), text)
        })
    };
    let (st, body) = raw("application/json", "{\"preset\": ");
    assert_eq!(st, 422, "{body}");
    assert!(body.contains("INVALID_REQUEST"));
    assert_eq!(raw("text/plain", "{}").0, 415);
    assert_eq!(
        raw(
            "application/json",
            &format!("{{\"notes\": \"{}\"}}", "y".repeat(3000))
        )
        .0,
        413
    );
    // Unknown runs and routes.
    let r = s.get("/runs/00000000-0000-7000-8000-000000000000");
    assert_eq!((r.status, code(&r).as_str()), (404, "INVALID_REQUEST"));
    assert_eq!(s.get("/runs/not-an-id").status, 404);
    assert_eq!(s.get("/nowhere").status, 404);
    assert_eq!(s.get("/runs?limit=0").status, 422);
    // None of that stored anything.
    assert_eq!(s.health()["queue"]["total"], 0);
    assert!(s.get("/runs").json()["runs"].as_array().unwrap().is_empty());
}

#[test]
fn shot_budgets_are_clamped_or_refused_per_mode() {
    let s = Server::start(&["--max-shots-per-experiment", "4096"]);
    let id = s.submit(json!({"preset": "hello_quantum_sim", "shot_budget": 100000}));
    let done = s.wait_final(&id, Duration::from_secs(30));
    let result = &done["result"];
    assert_eq!(
        result["shots"],
        json!({"requested": 100000, "executed": 4096}),
        "{result}"
    );
    assert!(result["assumptions"]
        .as_array()
        .unwrap()
        .contains(&json!("SHOT_BUDGET_CLAMPED")));
    let r = s.post(
        "/runs",
        &json!({"preset": "hello_quantum_sim", "shot_budget": 100000, "mode": "prod"}),
    );
    assert_eq!(code(&r), "BUDGET_GUARDRAIL");
}

#[test]
fn session_budget_is_reserved_at_submit_and_refunded_on_cancel() {
    // One worker kept busy by long runs, so later runs stay queued.
    let s = Server::start(&[
        "--workers",
        "1",
        "--max-shots-per-session",
        "450000",
        "--max-shots-per-experiment",
        "200000",
    ]);
    let big = |n: u64| json!({"preset": "health", "shot_budget": n});
    let hdr = [("X-Session-Id", "team-b")];
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = s.send("POST", "/runs", Some(&big(200_000)), &hdr);
        assert_eq!(r.status, 202, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let r = s.send("POST", "/runs", Some(&big(200_000)), &hdr);
    assert_eq!(
        (r.status, code(&r).as_str()),
        (429, "BUDGET_EXHAUSTED"),
        "{}",
        r.body
    );
    let d = &r.json()["detail"]["error_detail"];
    assert_eq!(d["session_id"], "team-b");
    assert_eq!(d["remaining"], 50_000);
    assert_eq!(d["requested"], 200_000);
    assert!(d["resets_in_s"].as_u64().is_some_and(|s| s > 3500));
    assert_eq!(
        r.header("Retry-After"),
        d["resets_in_s"].as_u64().map(|s| s.to_string()).as_deref()
    );
    // Another session is not affected.
    assert_eq!(
        s.send("POST", "/runs", Some(&big(2048)), &[("X-Session-Id", "team-c")])
            .status,
        202
    );
    // Cancel the second while it waits: its shots come back.
    let c = s.post(&format!("/runs/{}/cancel", ids[1]), &json!({}));
    if c.status == 200 {
        assert_eq!(c.json()["status"], "cancelled");
        let again = s.send("POST", "/runs", Some(&big(200_000)), &hdr);
        assert_eq!(
            again.status, 202,
            "refund did not free the budget: {}",
            again.body
        );
    } else if c.status == 202 {
        // It had already started: cancelling a running run stops it at the
        // next circuit and keeps the shots (they were being sampled). A
        // 202 is a promise: the run ends cancelled.
        let done = s.wait_final(&ids[1], Duration::from_secs(60));
        assert_eq!(done["status"], "cancelled", "{done}");
    } else {
        // It finished before the cancel arrived, and the answer says so.
        assert_eq!(c.status, 409, "{}", c.body);
        assert_eq!(
            c.json()["detail"]["error_detail"]["status"],
            "succeeded",
            "{}",
            c.body
        );
    }
    let metrics = s.get("/metrics").body;
    assert!(
        metrics.contains("synqc_budget_rejections_total{reason=\"budget_exhausted\"} 1"),
        "rejections not counted"
    );
}

#[test]
fn idempotency_keys_return_the_original_run() {
    let s = Server::start(&[]);
    let body = json!({"preset": "hello_quantum_sim", "seed": 5});
    let a = s.send("POST", "/runs", Some(&body), &[("Idempotency-Key", "k-1")]);
    assert_eq!(a.status, 202);
    let b = s.send("POST", "/runs", Some(&body), &[("Idempotency-Key", "k-1")]);
    assert_eq!(b.status, 200, "{}", b.body);
    assert_eq!(a.json()["id"], b.json()["id"]);
    let c = s.send(
        "POST",
        "/runs",
        Some(&json!({"preset": "hello_quantum_sim", "seed": 6})),
        &[("Idempotency-Key", "k-1")],
    );
    assert_eq!((c.status, code(&c).as_str()), (409, "CONFLICT"));
    assert_eq!(s.health()["queue"]["total"], 1);
}

#[test]
fn api_keys_guard_everything_but_health_and_metrics() {
    let dir = common::TempDir::new("keys");
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "# lab keys\nkey-one\nkey-two\n").unwrap();
    let s = Server::start(&["--api-keys-file", keys.to_str().unwrap()]);
    let r = s.post("/runs", &hello());
    assert_eq!((r.status, code(&r).as_str()), (401, "AUTH_REQUIRED"));
    assert_eq!(s.get("/hardware/targets").status, 401);
    assert_eq!(
        s.send("POST", "/runs", Some(&hello()), &[("X-Api-Key", "wrong")])
            .status,
        401
    );
    assert_eq!(
        s.send("POST", "/runs", Some(&hello()), &[("X-Api-Key", "key-two")])
            .status,
        202
    );
    assert_eq!(
        s.send(
            "GET",
            "/hardware/targets",
            None,
            &[("Authorization", "Bearer key-one")]
        )
        .status,
        200
    );
    for open in ["/health", "/health/live", "/health/ready", "/metrics"] {
        assert_eq!(s.get(open).status, 200, "{open}");
    }
    assert_eq!(s.health()["require_api_key"], true);
    // The session of a keyed client is a digest, never the key.
    let m = s.get("/runs?limit=1");
    assert_eq!(m.status, 401);
}

#[test]
fn targets_and_control_profile() {
    let s = Server::start(&["--allow-provider-simulation", "true"]);
    let t = s.get("/hardware/targets").json();
    let ids: Vec<&str> = t["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "sim_local",
            "aws_braket",
            "ibm_quantum",
            "azure_quantum",
            "ionq_cloud",
            "rigetti_forest"
        ]
    );
    assert_eq!(t["targets"][2]["noise_profile"]["t1_us"], 250.0);
    assert!(t["targets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["available"] == true));

    let p = s.get("/controls/profile").json();
    assert_eq!(p["drive_bias"], 1.0);
    let bad = s.post(
        "/controls/profile",
        &json!({"drive_bias": 3.0, "probe_window_ns": 1, "feedback_gain": "x"}),
    );
    assert_eq!(bad.status, 422);
    assert_eq!(
        bad.json()["detail"]["error_detail"]["fields"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "type errors first: {}",
        bad.body
    );
    let bad = s.post(
        "/controls/profile",
        &json!({"drive_bias": 3.0, "probe_window_ns": 1}),
    );
    assert_eq!(
        bad.json()["detail"]["error_detail"]["fields"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{}",
        bad.body
    );
    assert_eq!(
        s.get("/controls/profile").json(),
        p,
        "a rejected profile changes nothing"
    );
    let ok = s.post("/controls/profile", &json!({"drive_bias": 1.1}));
    assert_eq!(ok.status, 200);
    assert_eq!(s.get("/controls/profile").json()["drive_bias"], 1.1);
    assert_eq!(s.get("/controls/profile").json()["feedback_gain"], 0.35);
    // A run on a provider target carries the provider assumption.
    let id = s.submit(json!({"preset": "hello_quantum_sim", "hardware_target": "rigetti_forest"}));
    let done = s.wait_final(&id, Duration::from_secs(30));
    assert!(done["result"]["assumptions"]
        .as_array()
        .unwrap()
        .contains(&json!("PROVIDER_NOISE_PROFILE_SIMULATED")));
    assert_eq!(done["result"]["control_profile"]["drive_bias"], 1.1);
}

#[test]
fn same_seed_gives_the_same_physics_across_processes() {
    let body = json!({"preset": "hello_quantum_sim", "seed": 424242, "shot_budget": 4000});
    let result_of = |s: &Server| {
        let id = s.submit(body.clone());
        s.wait_final(&id, Duration::from_secs(30))["result"].clone()
    };
    let a = result_of(&Server::start(&[]));
    let b = result_of(&Server::start(&[]));
    assert_eq!(a["kpis"], b["kpis"]);
    let physics = |v: &serde_json::Value| {
        v["kpi_details"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["kind"] != "measured")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(physics(&a), physics(&b));
    let s = Server::start(&[]);
    let id = s.submit(json!({"preset": "hello_quantum_sim", "seed": 424243, "shot_budget": 4000}));
    let c = s.wait_final(&id, Duration::from_secs(30))["result"].clone();
    assert_ne!(a["kpis"]["raw_counts"], c["kpis"]["raw_counts"]);
}

#[test]
fn every_preset_runs_end_to_end() {
    let s = Server::start(&["--allow-provider-simulation", "true"]);
    for preset in [
        "hello_quantum_sim",
        "health",
        "latency",
        "backend_compare",
        "dpd_demo",
        "grover_demo",
    ] {
        let id = s.submit(json!({"preset": preset, "seed": 9}));
        let done = s.wait_final(&id, Duration::from_secs(120));
        assert_eq!(done["status"], "succeeded", "{preset}: {done}");
        let k = &done["result"]["kpis"];
        assert!(
            k["fidelity"].as_f64().is_some_and(|f| (0.0..=1.0).contains(&f)),
            "{preset}: {k}"
        );
        assert!(matches!(k["status"].as_str(), Some("ok" | "warn" | "fail")));
    }
}

#[test]
fn events_stream_run_changes() {
    let s = Server::start(&[]);
    let port = s.port;
    let reader = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            conn,
            "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut lines = BufReader::new(conn).lines();
        let mut seen = Vec::new();
        while let Some(Ok(line)) = lines.next() {
            if line.contains("\"status\":\"succeeded\"") {
                seen.push(line);
                break;
            }
            seen.push(line);
        }
        seen
    });
    std::thread::sleep(Duration::from_millis(300));
    let id = s.submit(hello());
    let seen = reader.join().unwrap();
    // "event:run" and "event: run" are the same field to an SSE client.
    assert!(seen.iter().any(|l| l.replace(' ', "") == "event:run"), "{seen:?}");
    assert!(
        seen.iter().any(|l| l.contains(&id) && l.contains("succeeded")),
        "{seen:?}"
    );
}

#[test]
fn metrics_pass_promtool_and_a_second_listener_serves_the_same_registry() {
    let mport = common::free_port();
    let s = Server::start(&["--metrics-listen", &format!("127.0.0.1:{mport}")]);
    let id = s.submit(hello());
    s.wait_final(&id, Duration::from_secs(30));
    let _ = s.post("/runs", &json!({"preset": "nope"}));
    let text = s.get("/metrics").body;
    for series in [
        "synqc_build_info{", "synqc_store_up{backend=\"sled\"} 1", "synqc_redis_connected{backend=\"sled\"} 1",
        "synqc_queue_jobs 1", "synqc_queue_jobs_succeeded 1", "synqc_queue_depth{status=\"queued\"} 0",
        "synqc_queue_ready_depth", "synqc_queue_future_depth", "synqc_queue_oldest_queued_age_seconds 0",
        "synqc_queue_max_workers", "synqc_queue_max_pending 10000", "synqc_queue_running_with_expired_lease 0",
        "synqc_runs_submitted_total{preset=\"hello_quantum_sim\",hardware_target=\"sim_local\",mode=\"explore\"} 1",
        "synqc_runs_finished_total{preset=\"hello_quantum_sim\",hardware_target=\"sim_local\",status=\"succeeded\"} 1",
        "synqc_run_failures_total{error_code=\"TIMEOUT\"} 0", "synqc_runs_retried_total 0", "synqc_runs_recovered_total 0",
        "synqc_run_queue_wait_seconds_bucket", "synqc_run_duration_seconds_bucket", "synqc_run_fidelity{",
        "synqc_shots_executed_total{hardware_target=\"sim_local\"} 2048", "synqc_budget_session_keys{backend=\"sled\"} 1",
        "synqc_budget_session_key_churn_total", "synqc_budget_rejections_total{reason=\"budget_exhausted\"} 0",
        "synqc_http_requests_total{method=\"POST\",route=\"/runs\",status=\"422\"} 1",
        "synqc_http_request_duration_seconds_bucket{method=\"POST\",route=\"/runs\",le=\"0.0005\"}",
        "synqc_metrics_collection_errors_total 0", "synqc_target_up{hardware_target=\"ibm_quantum\"} 0",
        "synqc_store_size_bytes", "synqc_store_flush_duration_seconds_bucket", "process_resident_memory_bytes",
        "process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds",
    ] {
        assert!(text.contains(series), "missing {series}");
    }
    assert!(!text.contains(&id), "a run id leaked into a label");
    // promtool, the real checker.
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is required (tests/run.sh installs Debian's prometheus)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The metrics listener: same registry, nothing else.
    let m = synqc::client::Client::new(&format!("http://127.0.0.1:{mport}")).unwrap();
    let other = m.get("/metrics").unwrap();
    assert!(other.body.contains("synqc_queue_jobs_succeeded 1"));
    assert_eq!(m.get("/runs").unwrap().status, 404);
}

#[test]
fn embedded_console_docs_and_assets_are_served() {
    let s = Server::start(&[]);
    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    assert!(page.body.contains("synqc"));
    let api = s.get("/openapi.json").json();
    assert!(api["paths"]["/runs"].is_object());
    assert_eq!(s.get("/docs").status, 200);
    let dash = s.get("/assets/grafana/synqc-dashboard.json").json();
    assert!(dash["panels"].as_array().is_some_and(|p| !p.is_empty()));
    assert!(s
        .get("/assets/prometheus/synqc-alerts.yml")
        .body
        .contains("SynqcDown"));
    assert_eq!(s.get("/assets/nope").status, 404);
}

#[test]
fn head_cors_preflight_rate_limits_and_request_ids() {
    let s = Server::start(&[
        "--cors-allow-origins",
        "http://lab.local",
        "--rate-limit-per-minute",
        "5",
    ]);
    let head = s.send("HEAD", "/health", None, &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let pre = s.send("OPTIONS", "/runs", None, &[("Origin", "http://lab.local")]);
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.header("Access-Control-Allow-Origin"),
        Some("http://lab.local")
    );
    assert_eq!(
        s.send("OPTIONS", "/runs", None, &[("Origin", "http://evil.example")])
            .status,
        403
    );
    let echoed = s.send("GET", "/health/live", None, &[("X-Request-Id", "trace-42")]);
    assert_eq!(echoed.header("X-Request-Id"), Some("trace-42"));
    // Five requests a minute per session; health stays exempt.
    let statuses: Vec<u16> = (0..6)
        .map(|_| {
            s.send("GET", "/hardware/targets", None, &[("X-Session-Id", "rl")])
                .status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    let limited = s.send("GET", "/hardware/targets", None, &[("X-Session-Id", "rl")]);
    assert_eq!(code(&limited), "RATE_LIMITED");
    assert!(limited
        .header("Retry-After")
        .is_some_and(|v| v.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s))));
    assert_eq!(
        s.send("GET", "/hardware/targets", None, &[("X-Session-Id", "other")])
            .status,
        200
    );
    assert_eq!(s.get("/health").status, 200);
}

/// The `error_detail.fields` locations of a 422.
fn locs(r: &common::Reply) -> Vec<String> {
    r.json()["detail"]["error_detail"]["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|f| f["loc"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[test]
fn unknown_fields_are_named_in_warnings_with_a_did_you_mean() {
    let dir = common::TempDir::new("warnings");
    let data = dir.path().join("data");
    let s = Server::start_at(&data, &["--workers", "1"]);
    let shots = "Unknown field 'shots' was ignored; did you mean 'shot_budget'?";
    let r = s.post(
        "/runs",
        &json!({"preset": "hello_quantum_sim", "shots": 100, "target": "sim_local"}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let warnings = strings(&r.json()["warnings"]);
    assert_eq!(
        warnings,
        [
            shots,
            "Unknown field 'target' was ignored; did you mean 'hardware_target'?"
        ]
    );
    let id = r.json()["id"].as_str().unwrap().to_string();
    let done = s.wait_final(&id, Duration::from_secs(30));
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        strings(&done["warnings"]),
        warnings,
        "GET /runs/{{id}} repeats them"
    );
    assert_eq!(
        done["result"]["shots"]["executed"], 2048,
        "the ignored field changed nothing"
    );
    let in_result = strings(&done["result"]["warnings"]);
    assert_eq!(in_result[..2], warnings[..], "{in_result:?}");
    // A request without extras has none.
    let plain = s.post("/runs", &hello());
    assert_eq!(plain.json()["warnings"], json!([]));
    // The legacy route carries them in its result.
    let sync = s.post(
        "/experiments/run",
        &json!({"preset": "hello_quantum_sim", "shots": 100}),
    );
    assert_eq!(sync.status, 200, "{}", sync.body);
    assert_eq!(strings(&sync.json()["warnings"]), [shots]);
    // And they survive a restart with the run.
    assert!(s.terminate().success());
    let again = Server::start_at(&data, &["--workers", "1"]);
    let after = again.get(&format!("/runs/{id}")).json();
    assert_eq!(strings(&after["warnings"]), warnings, "{after}");
}

#[test]
fn backend_compare_works_on_a_default_install_against_the_ideal_twin() {
    let s = Server::start(&["--workers", "1"]);
    let r = s.post("/runs", &json!({"preset": "backend_compare", "seed": 4}));
    assert_eq!(r.status, 202, "{}", r.body);
    let warnings = strings(&r.json()["warnings"]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert!(
        w.contains("compare_with was not set") && w.contains("ideal, the noise-free twin"),
        "{w}"
    );
    assert!(
        w.contains("set compare_with") && w.contains("allow_provider_simulation"),
        "{w}"
    );
    let done = s.wait_final(r.json()["id"].as_str().unwrap(), Duration::from_secs(60));
    assert_eq!(done["status"], "succeeded", "{done}");
    let result = &done["result"];
    assert_eq!(result["artifacts"]["targets"], json!(["sim_local", "ideal"]));
    let kpi = |name: &str| {
        result["kpi_details"]
            .as_array()
            .and_then(|k| k.iter().find(|k| k["name"] == name))
            .and_then(|k| k["value"].as_f64())
            .unwrap_or(f64::NAN)
    };
    let (noisy, ideal) = (kpi("fidelity"), kpi("fidelity_compare"));
    assert!(
        ideal > 0.99 && ideal <= 1.0,
        "sampled from the noise-free twin: {ideal}"
    );
    assert!(noisy < ideal, "{noisy} vs {ideal}");
    assert!((kpi("fidelity_difference") - (noisy - ideal)).abs() < 1e-12);
    assert_eq!(strings(&result["warnings"])[0], *w);
    // Asked for by name, ideal needs no warning.
    let named = s.post(
        "/runs",
        &json!({"preset": "backend_compare", "compare_with": "ideal"}),
    );
    assert_eq!(named.status, 202, "{}", named.body);
    assert_eq!(named.json()["warnings"], json!([]));
    // A provider the user names is refused, and the answer says which field.
    let r = s.post(
        "/runs",
        &json!({"preset": "backend_compare", "compare_with": "ibm_quantum"}),
    );
    assert_eq!(
        (r.status, code(&r).as_str()),
        (403, "PROVIDER_SIM_DISABLED"),
        "{}",
        r.body
    );
    let d = &r.json()["detail"];
    assert!(
        d["error_message"]
            .as_str()
            .is_some_and(|m| m.starts_with("compare_with 'ibm_quantum'")),
        "{d}"
    );
    assert!(
        d["action_hint"]
            .as_str()
            .is_some_and(|h| h.contains("compare_with") && h.contains("ideal")),
        "{d}"
    );
    assert_eq!(d["error_detail"]["field"], "compare_with");
}

#[test]
fn backend_compare_defaults_to_the_first_other_available_target() {
    let s = Server::start(&["--workers", "1", "--allow-provider-simulation", "true"]);
    let r = s.post("/runs", &json!({"preset": "backend_compare", "seed": 4}));
    assert_eq!(r.status, 202, "{}", r.body);
    let warnings = strings(&r.json()["warnings"]);
    assert!(
        warnings.len() == 1 && warnings[0].contains("compares sim_local with aws_braket"),
        "{warnings:?}"
    );
    let done = s.wait_final(r.json()["id"].as_str().unwrap(), Duration::from_secs(60));
    assert_eq!(done["status"], "succeeded", "{done}");
    let result = &done["result"];
    assert_eq!(result["artifacts"]["targets"], json!(["sim_local", "aws_braket"]));
    assert!(result["kpi_details"].as_array().is_some_and(|k| k
        .iter()
        .any(|k| k["name"] == "fidelity_compare" && k["value"].is_f64())));
    // On a provider target, the first other one is sim_local.
    let r = s.post(
        "/runs",
        &json!({"preset": "backend_compare", "hardware_target": "aws_braket"}),
    );
    assert!(
        strings(&r.json()["warnings"])
            .first()
            .is_some_and(|w| w.contains("compares aws_braket with sim_local")),
        "{}",
        r.body
    );
}

#[test]
fn each_conflict_and_filter_error_says_what_to_do() {
    let s = Server::start(&["--workers", "1"]);
    let id = s.submit(json!({"preset": "hello_quantum_sim"}));
    assert_eq!(s.wait_final(&id, Duration::from_secs(30))["status"], "succeeded");
    let r = s.post(&format!("/runs/{id}/cancel"), &json!({}));
    assert_eq!((r.status, code(&r).as_str()), (409, "CONFLICT"), "{}", r.body);
    let d = &r.json()["detail"];
    let message = d["error_message"].as_str().unwrap_or("");
    assert!(
        message.contains("already finished with status succeeded") && message.contains("nothing was"),
        "{message}"
    );
    let hint = d["action_hint"].as_str().unwrap_or("");
    assert!(!hint.contains("Idempotency-Key"), "{hint}");
    assert!(hint.contains(&format!("GET /runs/{id}")), "{hint}");
    assert_eq!(d["error_detail"]["status"], "succeeded");
    // The idempotency conflict keeps its own hint.
    let hdr = [("Idempotency-Key", "k-9")];
    s.send("POST", "/runs", Some(&json!({"preset": "health"})), &hdr);
    let c = s.send("POST", "/runs", Some(&json!({"preset": "latency"})), &hdr);
    assert_eq!(c.status, 409, "{}", c.body);
    assert!(c.json()["detail"]["action_hint"]
        .as_str()
        .is_some_and(|h| h.contains("new Idempotency-Key")));

    // An empty cursor is the first page.
    let all = s.get("/runs?cursor=");
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.json()["runs"], s.get("/runs").json()["runs"]);

    // List filters name what they accept.
    let msg_of = |path: &str| {
        let r = s.get(path);
        assert_eq!((r.status, code(&r).as_str()), (422, "INVALID_REQUEST"), "{path}");
        r.json()["detail"]["error_detail"]["fields"][0]["msg"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let preset = msg_of("/runs?preset=nope");
    for name in [
        "hello_quantum_sim",
        "health",
        "latency",
        "backend_compare",
        "dpd_demo",
        "grover_demo",
    ] {
        assert!(preset.contains(name), "{preset}");
    }
    assert!(msg_of("/runs?status=done").contains("queued, running, succeeded, failed, cancelled"));
    assert!(msg_of("/runs?hardware_target=nope").contains("sim_local, aws_braket"));
    assert!(msg_of("/runs?limit=900").contains("1 to 500"));
    assert!(msg_of("/runs?cursor=zzz").contains("next_cursor"));
    assert!(s.get("/runs?hardware_target=sim_local").json()["runs"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));
}

#[test]
fn an_unknown_target_is_reported_with_the_other_bad_fields() {
    let s = Server::start(&[]);
    let r = s.post(
        "/runs",
        &json!({"preset": "hello_quantum_sim", "hardware_target": "nope", "shot_budget": 0}),
    );
    assert_eq!(
        (r.status, code(&r).as_str()),
        (422, "INVALID_REQUEST"),
        "{}",
        r.body
    );
    assert_eq!(locs(&r), ["hardware_target", "shot_budget"]);
    let target_msg = r.json()["detail"]["error_detail"]["fields"][0]["msg"].clone();
    assert!(
        target_msg
            .as_str()
            .is_some_and(|m| m.contains("sim_local, aws_braket, ibm_quantum")),
        "{target_msg}"
    );
    // Alone, it is INVALID_TARGET with the valid ids.
    let r = s.post(
        "/runs",
        &json!({"preset": "hello_quantum_sim", "hardware_target": "nope"}),
    );
    assert_eq!(
        (r.status, code(&r).as_str()),
        (400, "INVALID_TARGET"),
        "{}",
        r.body
    );
    let d = &r.json()["detail"];
    let ids = "sim_local, aws_braket, ibm_quantum, azure_quantum, ionq_cloud, rigetti_forest";
    assert_eq!(
        d["error_message"],
        format!("Unknown hardware_target 'nope'; valid values are {ids}.")
    );
    assert_eq!(
        d["action_hint"],
        format!("Pick a hardware target from /hardware/targets: {ids}.")
    );
    assert_eq!(d["error_detail"]["valid"].as_array().map(Vec::len), Some(6));
    assert_eq!(s.health()["queue"]["total"], 0, "nothing was stored");
}
