//! Calibration trends against the real binary: a succeeded health run sets
//! its target's synqc_calibration_* gauges to its fits, the gauges come
//! back after a kill -9 and a restart on the same data directory, and
//! GET /calibrations lists the history newest first, bounded by `limit`.

mod common;

use std::time::Duration;

use common::{code, Server, TempDir};
use serde_json::{json, Value};

const WITHIN: Duration = Duration::from_secs(180);

/// A health run on `target`, waited for; its final status document.
fn health_run(s: &Server, target: &str, seed: u64) -> Value {
    let id =
        s.submit(json!({"preset": "health", "hardware_target": target, "shot_budget": 900, "seed": seed}));
    let done = s.wait_final(&id, WITHIN);
    assert_eq!(done["status"], "succeeded", "{done}");
    done
}

fn kpi(run: &Value, name: &str) -> f64 {
    run["result"]["kpi_details"]
        .as_array()
        .and_then(|d| d.iter().find(|k| k["name"] == name))
        .and_then(|k| k["value"].as_f64())
        .unwrap_or_else(|| panic!("no {name} in {run}"))
}

/// The value of `name{target="..."}` in a /metrics scrape.
fn gauge(s: &Server, name: &str, target: &str) -> f64 {
    s.metric(&format!("{name}{{target=\"{target}\"}}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
}

fn assert_gauges_show(s: &Server, run: &Value) {
    let target = run["hardware_target"].as_str().expect("target");
    for (metric, kpi_name, scale) in [
        ("synqc_calibration_t1_seconds", "t1_us", 1e-6),
        ("synqc_calibration_t2star_seconds", "t2star_us", 1e-6),
        ("synqc_calibration_t2echo_seconds", "t2echo_us", 1e-6),
        ("synqc_calibration_epc", "epc", 1.0),
        (
            "synqc_calibration_readout_assignment_fidelity",
            "readout_assignment_fidelity",
            1.0,
        ),
    ] {
        let (got, want) = (gauge(s, metric, target), kpi(run, kpi_name) * scale);
        assert!(
            close(got, want),
            "{metric}{{{target}}} = {got}, the run's {kpi_name} gives {want}"
        );
    }
    let at = gauge(s, "synqc_calibration_timestamp_seconds", target);
    let finished = run["finished_at"].as_f64().expect("finished_at");
    assert!(
        (at - finished).abs() < 0.002,
        "timestamp {at}, finished_at {finished}"
    );
}

fn listed_ids(s: &Server, query: &str) -> Vec<String> {
    let r = s.get(&format!("/calibrations{query}"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["calibrations"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| c["run_id"].as_str().expect("run_id").to_string())
        .collect()
}

#[test]
fn gauges_follow_the_latest_health_run_and_survive_a_restart() {
    let dir = TempDir::new("calibration");
    let data = dir.path().join("data");
    let s = Server::start_at(&data, &["--workers", "1", "--allow-provider-simulation", "true"]);
    // Before any health run: every known target's gauge exists, as NaN.
    assert!(gauge(&s, "synqc_calibration_t1_seconds", "ibm_quantum").is_nan());
    assert!(listed_ids(&s, "").is_empty());

    let first = health_run(&s, "ibm_quantum", 1);
    assert_gauges_show(&s, &first);
    let second = health_run(&s, "ibm_quantum", 2);
    let other = health_run(&s, "sim_local", 3);
    // Not a calibration: another preset on the same target.
    let hello = s.submit(json!({"preset": "hello_quantum_sim", "hardware_target": "ibm_quantum"}));
    s.wait_final(&hello, WITHIN);
    assert_gauges_show(&s, &second);
    assert_gauges_show(&s, &other);
    assert!(gauge(&s, "synqc_calibration_epc", "aws_braket").is_nan());

    let id = |v: &Value| v["id"].as_str().expect("id").to_string();
    assert_eq!(listed_ids(&s, ""), [id(&other), id(&second), id(&first)]);
    assert_eq!(
        listed_ids(&s, "?hardware_target=ibm_quantum"),
        [id(&second), id(&first)]
    );
    assert_eq!(listed_ids(&s, "?limit=1"), [id(&other)]);
    assert!(listed_ids(&s, "?hardware_target=aws_braket").is_empty());

    // An entry carries the run's values and intervals as its result has them.
    let entry = s.get("/calibrations?hardware_target=ibm_quantum&limit=1").json()["calibrations"][0].clone();
    let detail = second["result"]["kpi_details"]
        .as_array()
        .and_then(|d| d.iter().find(|k| k["name"] == "t2echo_us"))
        .cloned()
        .expect("t2echo_us");
    assert_eq!(entry["t2echo_us"]["value"], detail["value"]);
    assert_eq!(entry["t2echo_us"]["ci95"], detail["ci95"]);
    assert_eq!(entry["hardware_target"], "ibm_quantum");
    assert_eq!(entry["calibrated_at"], second["finished_at"]);

    // kill -9: nothing but the store's latest entries can set them again.
    s.kill9();
    let s = Server::start_at(&data, &["--workers", "1", "--allow-provider-simulation", "true"]);
    assert_gauges_show(&s, &second);
    assert_gauges_show(&s, &other);
    assert!(gauge(&s, "synqc_calibration_t1_seconds", "aws_braket").is_nan());
    assert_eq!(listed_ids(&s, ""), [id(&other), id(&second), id(&first)]);
}

#[test]
fn bad_listing_parameters_are_refused_with_what_to_send() {
    let s = Server::start(&["--workers", "0"]);
    for (query, field) in [
        ("?hardware_target=nowhere", "hardware_target"),
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=ten", "limit"),
    ] {
        let r = s.get(&format!("/calibrations{query}"));
        assert_eq!(r.status, 422, "{query}: {}", r.body);
        assert_eq!(code(&r), "INVALID_REQUEST", "{query}: {}", r.body);
        assert!(r.body.contains(field), "{query}: {}", r.body);
    }
}

fn profile(s: &Server, target: &str) -> Value {
    let r = s.get(&format!("/hardware/targets/{target}/calibration"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn write_back(s: &Server, target: &str, body: Value) -> common::Reply {
    s.post(&format!("/hardware/targets/{target}/calibration"), &body)
}

/// The noise_profile_version a finished run recorded (null when none).
fn run_version(s: &Server, target: &str) -> Value {
    ran_with(s, target).0
}

/// A finished run's recorded profile version and the T1 its physics used
/// (the result's noise parameters): what a write-back changes.
fn ran_with(s: &Server, target: &str) -> (Value, f64) {
    let id = s.submit(json!({"preset": "hello_quantum_sim", "hardware_target": target, "seed": 11}));
    let done = s.wait_final(&id, WITHIN);
    assert_eq!(done["status"], "succeeded", "{done}");
    let run = s.get(&format!("/runs/{id}")).json();
    let t1 = run["result"]["noise"]["params"]["t1_us"]
        .as_f64()
        .expect("the result's t1_us");
    (done["noise_profile_version"].clone(), t1)
}

#[test]
fn a_calibration_written_back_sets_the_profile_later_runs_use_and_a_revert_restores_it() {
    let dir = TempDir::new("write-back");
    let data = dir.path().join("data");
    let flags = ["--workers", "1", "--allow-provider-simulation", "true"];
    let s = Server::start_at(&data, &flags);
    let builtin = profile(&s, "ibm_quantum");
    assert_eq!(builtin["version"], 0);
    assert_eq!(builtin["versions"], json!([]));
    assert_eq!(run_version(&s, "ibm_quantum"), Value::Null);

    let health = health_run(&s, "ibm_quantum", 4);
    let r = write_back(&s, "ibm_quantum", json!({"from_run": health["id"]}));
    assert_eq!(r.status, 200, "{}", r.body);
    let set = r.json();
    assert_eq!(set["version"], 1);
    let p = &set["noise_profile"];
    // v2 mapping: T1, the echo T2 (the model's Markovian T2), the Ramsey
    // T2* and p1q = EPC (both are the average gate error).
    for (field, fitted) in [
        ("t1_us", kpi(&health, "t1_us")),
        ("t2_us", kpi(&health, "t2echo_us")),
        ("p1q", kpi(&health, "epc")),
    ] {
        let got = p[field].as_f64().unwrap_or_else(|| panic!("{field} in {set}"));
        assert!(close(got, fitted), "{field} = {got}, fitted {fitted}: {set}");
    }
    // T2* is the Ramsey fit, or T2echo when the fit came out above it
    // within the intervals, which the answer then says.
    let (star, echo) = (kpi(&health, "t2star_us"), kpi(&health, "t2echo_us"));
    let t2star = p["t2star_us"].as_f64().expect("t2star_us");
    let adjustments = set["adjustments"].as_array().expect("adjustments");
    if star <= echo {
        assert!(close(t2star, star), "{set}");
        assert!(adjustments.is_empty(), "{set}");
    } else {
        assert!(close(t2star, echo), "{set}");
        assert_eq!(adjustments.len(), 1, "{set}");
    }
    assert_eq!(set["versions"][0]["t2star_us"], p["t2star_us"]);
    let derived = &set["derived_noise_model"];
    for field in ["depolarizing_1q", "depolarizing_2q", "detuning_sigma_rad_per_ns"] {
        assert!(
            derived[field].as_f64().is_some_and(|v| v >= 0.0),
            "{field}: {set}"
        );
    }
    // The detuning width follows the written T2 and T2*.
    let (t2_ns, t2s_ns) = (p["t2_us"].as_f64().expect("t2") * 1e3, t2star * 1e3);
    let sigma = (2.0 * (1.0 - t2s_ns / t2_ns)).max(0.0).sqrt() / t2s_ns;
    assert!(
        (derived["detuning_sigma_rad_per_ns"].as_f64().expect("sigma") - sigma).abs()
            <= 1e-9 * sigma.max(1e-12),
        "{set}"
    );
    // The fields a calibration does not measure stay as configured.
    assert_eq!(p["p2q"], builtin["noise_profile"]["p2q"]);
    assert_eq!(set["versions"][0]["from_run"], health["id"]);
    let listed = s.get("/hardware/targets").json();
    let ibm = listed["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["id"] == "ibm_quantum"))
        .cloned()
        .expect("ibm_quantum listed");
    assert_eq!(ibm["noise_profile_version"], 1);
    assert_eq!(ibm["noise_profile"], set["noise_profile"]);
    assert_eq!(ibm["derived_noise_model"], set["derived_noise_model"]);
    // Later runs execute with the written-back profile: same seed, other physics.
    let (version, t1) = ran_with(&s, "ibm_quantum");
    assert_eq!(version, 1);
    assert_eq!(t1, p["t1_us"].as_f64().expect("t1"));
    assert_ne!(
        t1,
        builtin["noise_profile"]["t1_us"].as_f64().expect("builtin t1")
    );
    assert_eq!(run_version(&s, "sim_local"), Value::Null);

    // Revert to the configured profile: a new version with its values.
    let r = write_back(&s, "ibm_quantum", json!({"version": 0}));
    assert_eq!(r.status, 200, "{}", r.body);
    let reverted = r.json();
    assert_eq!(reverted["version"], 2);
    assert_eq!(reverted["noise_profile"], builtin["noise_profile"]);
    assert_eq!(reverted["derived_noise_model"], builtin["derived_noise_model"]);
    assert_eq!(reverted["versions"][1]["reverted_to"], 0);
    assert_eq!(
        reverted["versions"][1]["t2star_us"],
        builtin["noise_profile"]["t2star_us"]
    );
    assert_eq!(reverted["adjustments"], json!([]));
    let (version, t1) = ran_with(&s, "ibm_quantum");
    assert_eq!(version, 2);
    assert_eq!(
        t1,
        builtin["noise_profile"]["t1_us"].as_f64().expect("builtin t1")
    );

    // Refused, changing nothing.
    let hello = s.submit(json!({"preset": "hello_quantum_sim", "hardware_target": "ibm_quantum"}));
    s.wait_final(&hello, WITHIN);
    for (body, status, want_code) in [
        (json!({"version": 7}), 404, "INVALID_REQUEST"),
        (json!({"from_run": hello}), 404, "INVALID_REQUEST"),
        (
            json!({"from_run": health["id"], "version": 1}),
            422,
            "INVALID_REQUEST",
        ),
        (json!({}), 422, "INVALID_REQUEST"),
        (json!({"from_run": "nope"}), 422, "INVALID_REQUEST"),
    ] {
        let r = write_back(&s, "ibm_quantum", body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(code(&r), want_code, "{body}: {}", r.body);
    }
    // The health run was on ibm_quantum, not on sim_local.
    let r = write_back(&s, "sim_local", json!({"from_run": health["id"]}));
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(write_back(&s, "nowhere", json!({"version": 0})).status, 404);
    assert_eq!(profile(&s, "ibm_quantum")["version"], 2);

    // Back to version 1's values, then a restart keeps the last version.
    assert_eq!(
        write_back(&s, "ibm_quantum", json!({"version": 1})).json()["version"],
        3
    );
    s.kill9();
    let s = Server::start_at(&data, &flags);
    let after = profile(&s, "ibm_quantum");
    assert_eq!(after["version"], 3);
    assert_eq!(after["noise_profile"], set["noise_profile"]);
    assert_eq!(after["versions"][2]["t2star_us"], p["t2star_us"]);
    assert!(
        after.get("adjustments").is_none(),
        "only a write-back's answer has them"
    );
    assert_eq!(after["versions"].as_array().map(Vec::len), Some(3));
    assert_eq!(run_version(&s, "ibm_quantum"), 3);
}

#[test]
fn a_target_bound_to_an_executor_refuses_a_write_back() {
    let dir = TempDir::new("write-back-bound");
    let cfg = dir.path().join("synqc.toml");
    std::fs::write(&cfg, "[executors.ibm_quantum]\ncommand = [\"/bin/true\"]\n").expect("config");
    let s = Server::start(&["--workers", "0", "--config", cfg.to_str().expect("utf-8 path")]);
    let r = write_back(&s, "ibm_quantum", json!({"version": 0}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(code(&r), "CONFLICT", "{}", r.body);
    assert!(r.json()["detail"]["action_hint"]
        .as_str()
        .is_some_and(|h| !h.is_empty()));
    assert_eq!(profile(&s, "ibm_quantum")["version"], 0);
}

/// /hardware/targets shows, beside each published profile, the model the
/// engine derives from it, and warns when a gate's relaxation alone
/// exceeds its published error.
#[test]
fn targets_show_the_derived_model_and_warn_when_coherence_limited() {
    let dir = TempDir::new("derived-model");
    let cfg = dir.path().join("synqc.toml");
    std::fs::write(
        &cfg,
        "[noise.sim_local]\nt1_us = 20.0\nt2_us = 20.0\nt2star_us = 20.0\ngate_1q_ns = 2000.0\n",
    )
    .expect("config");
    let s = Server::start(&["--workers", "0", "--config", cfg.to_str().expect("utf-8 path")]);
    let listed = s.get("/hardware/targets").json();
    let targets = listed["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 6);
    for t in targets {
        let (p, m) = (&t["noise_profile"], &t["derived_noise_model"]);
        assert!(p["t2star_us"].as_f64().is_some(), "{t}");
        assert!(m["depolarizing_1q"].as_f64().is_some(), "{t}");
        if t["id"] == "sim_local" {
            assert_eq!(m["coherence_limited_1q"], true, "{t}");
            assert_eq!(m["depolarizing_1q"], 0.0, "{t}");
            assert_eq!(m["detuning_sigma_rad_per_ns"], 0.0, "T2* = T2: {t}");
            assert!(
                m["warnings"][0]
                    .as_str()
                    .is_some_and(|w| w.contains("gate_1q_ns")),
                "{t}"
            );
        } else {
            assert_eq!(m["coherence_limited_1q"], false, "{t}");
            assert_eq!(m["warnings"], json!([]), "{t}");
            assert!(
                m["detuning_sigma_rad_per_ns"].as_f64().is_some_and(|v| v > 0.0),
                "{t}"
            );
        }
    }
    assert_eq!(
        profile(&s, "sim_local")["derived_noise_model"],
        targets[0]["derived_noise_model"]
    );
}
