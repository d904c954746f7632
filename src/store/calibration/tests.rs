//! Calibration entries: order, latest, reopen, backup and restore.

use serde_json::json;
use smol::block_on;

use super::*;
use crate::budget::Budget;
use crate::run::ResultDoc;
use crate::store::{Finish, Lease};
use crate::testutil::TempDir;

fn budget() -> Budget {
    Budget {
        max_per_session: u64::MAX,
        ttl_ms: u64::MAX / 2,
    }
}

/// A run as the API builds it, through its stored form, so fields
/// other modules add with a default need no change here.
fn record(store: &Store, preset: &str, target: &str) -> RunRecord {
    let id = store.new_run_id();
    serde_json::from_value(json!({
        "id": id, "preset": preset, "hardware_target": target, "compare_with": null,
        "mode": "calibrate", "shot_budget": 900, "shots": 900, "seed": 1, "notes": null,
        "marked": null, "controls": crate::controls::ControlProfile::default(),
        "session_id": "s", "budget_window_ms": 0, "status": "queued",
        "created_at": id.unix_ms() as f64 / 1000.0, "started_at": null, "finished_at": null,
        "attempts": 0, "crashes": 0, "error": null, "result": null,
    }))
    .expect("a run record")
}

fn kpi(name: &str, value: f64) -> serde_json::Value {
    json!({"name": name, "value": value, "ci95": [value * 0.9, value * 1.1]})
}

/// A health result as before noise model v2: no readout assignment fidelity.
fn result(t1: f64) -> ResultDoc {
    ResultDoc::new(&json!({"kpi_details": [
        kpi("fidelity", 0.99), kpi("epc", 0.01), kpi("t1_us", t1),
        kpi("t2star_us", t1 / 2.0), kpi("t2echo_us", t1 * 0.8),
    ]}))
}

/// A v2 health result, which measures the readout assignment fidelity too.
fn result_v2(t1: f64) -> ResultDoc {
    ResultDoc::new(&json!({"kpi_details": [
        kpi("fidelity", 0.99), kpi("epc", 0.01), kpi("t1_us", t1),
        kpi("t2star_us", t1 / 2.0), kpi("t2echo_us", t1 * 0.8),
        kpi("readout_assignment_fidelity", 0.97),
    ]}))
}

/// Submits, claims and finishes one run as succeeded at `at_ms`.
fn run_to_end(store: &Store, rec: RunRecord, doc: Option<ResultDoc>, at_ms: u64) -> RunRecord {
    block_on(store.submit(&rec, None, at_ms)).expect("submit");
    let lease = Lease {
        token: at_ms,
        expires_ms: at_ms + 60_000,
    };
    let (claimed, _) = block_on(store.claim(at_ms, &[lease]))
        .expect("claim")
        .pop()
        .expect("claimed");
    let fin = Finish {
        status: RunStatus::Succeeded,
        result: doc,
        error: None,
        refund: false,
    };
    block_on(store.finish(claimed, at_ms, fin, at_ms))
        .expect("finish")
        .expect("lease held")
}

#[test]
fn health_finishes_write_history_and_latest_in_order() {
    let dir = TempDir::new("calibration");
    let store = Store::open(dir.path(), budget()).expect("open");
    let t0 = crate::clock::now_ms();
    let first = run_to_end(
        &store,
        record(&store, "health", "ibm_quantum"),
        Some(result(100.0)),
        t0,
    );
    let second = run_to_end(
        &store,
        record(&store, "health", "ibm_quantum"),
        Some(result(80.0)),
        t0 + 5,
    );
    let other = run_to_end(
        &store,
        record(&store, "health", "sim_local"),
        Some(result_v2(50.0)),
        t0 + 10,
    );
    // Not calibrations: another preset, and a health run without fits.
    run_to_end(
        &store,
        record(&store, "grover_demo", "ibm_quantum"),
        Some(result(1.0)),
        t0 + 20,
    );
    run_to_end(&store, record(&store, "health", "ibm_quantum"), None, t0 + 30);

    let latest = store
        .latest_calibration("ibm_quantum")
        .expect("read")
        .expect("latest");
    assert_eq!(latest.run_id, second.id);
    assert_eq!(latest.t1_us.value, 80.0);
    assert_eq!(latest.t2echo_us.ci95, Some([64.0 * 0.9, 64.0 * 1.1]));
    assert_eq!(latest.calibrated_at, (t0 + 5) as f64 / 1000.0);
    assert_eq!(latest.readout_assignment_fidelity, None);
    let measured = store
        .latest_calibration("sim_local")
        .expect("read")
        .expect("latest");
    assert_eq!(
        measured.readout_assignment_fidelity,
        Some(Fitted {
            value: 0.97,
            ci95: Some([0.97 * 0.9, 0.97 * 1.1])
        })
    );
    let ids = |v: Vec<Calibration>| v.iter().map(|c| c.run_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.calibration_history(None, 10).expect("list")),
        [other.id, second.id, first.id]
    );
    assert_eq!(
        ids(store.calibration_history(Some("ibm_quantum"), 10).expect("list")),
        [second.id, first.id]
    );
    assert_eq!(
        ids(store.calibration_history(None, 2).expect("list")),
        [other.id, second.id]
    );
    assert!(store
        .calibration_history(Some("aws_braket"), 10)
        .expect("list")
        .is_empty());

    // Closed, not dropped: the writer's thread lets go of the store a
    // moment after its last command, and the reopen must not race it.
    Store::close_with_snapshot(store, std::time::Duration::from_secs(5)).expect("close");
    let store = Store::open(dir.path(), budget()).expect("reopen");
    let mut targets: Vec<_> = store
        .latest_calibrations()
        .expect("read")
        .into_iter()
        .map(|c| (c.hardware_target, c.run_id))
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        [
            ("ibm_quantum".to_string(), second.id),
            ("sim_local".to_string(), other.id)
        ]
    );
}

#[test]
fn an_older_finish_does_not_replace_the_latest() {
    let dir = TempDir::new("calibration-order");
    let store = Store::open(dir.path(), budget()).expect("open");
    let t0 = crate::clock::now_ms();
    let newer = run_to_end(
        &store,
        record(&store, "health", "sim_local"),
        Some(result(90.0)),
        t0 + 1000,
    );
    let older = run_to_end(
        &store,
        record(&store, "health", "sim_local"),
        Some(result(70.0)),
        t0,
    );
    let latest = store
        .latest_calibration("sim_local")
        .expect("read")
        .expect("latest");
    assert_eq!(latest.run_id, newer.id);
    let ids: Vec<_> = store
        .calibration_history(Some("sim_local"), 10)
        .expect("list")
        .iter()
        .map(|c| c.run_id)
        .collect();
    assert_eq!(ids, [newer.id, older.id]);
}

#[test]
fn a_restore_rebuilds_history_and_latest_from_the_backup() {
    let dir = TempDir::new("calibration-restore");
    let store = Store::open(&dir.path().join("a"), budget()).expect("open");
    let t0 = crate::clock::now_ms();
    let first = run_to_end(
        &store,
        record(&store, "health", "ibm_quantum"),
        Some(result(100.0)),
        t0,
    );
    let second = run_to_end(
        &store,
        record(&store, "health", "ibm_quantum"),
        Some(result(60.0)),
        t0 + 5,
    );
    let want = store.calibration_history(None, 10).expect("list");
    let mut backup = Vec::new();
    store.export(&mut backup).expect("export");
    drop(store);
    let into = dir.path().join("b");
    crate::store::restore(&into, &mut backup.as_slice()).expect("restore");
    let restored = Store::open(&into, budget()).expect("open restored");
    assert_eq!(restored.calibration_history(None, 10).expect("list"), want);
    assert_eq!(
        want.iter().map(|c| c.run_id).collect::<Vec<_>>(),
        [second.id, first.id]
    );
    let latest = restored
        .latest_calibration("ibm_quantum")
        .expect("read")
        .expect("latest");
    assert_eq!(latest.run_id, second.id);
}

fn new_profile(t2star_us: f64) -> NewProfile {
    NewProfile {
        from_run: None,
        reverted_to: Some(0),
        t1_us: 100.0,
        t2_us: 80.0,
        t2star_us,
        p1q: 1e-3,
    }
}

#[test]
fn profile_versions_number_in_order_and_survive_a_reopen_with_their_t2star() {
    let dir = TempDir::new("profile-versions");
    let store = Store::open(dir.path(), budget()).expect("open");
    let t0 = crate::clock::now_ms();
    let first = store
        .add_profile_version("sim_local", &new_profile(50.0), t0)
        .expect("write");
    let second = store
        .add_profile_version("sim_local", &new_profile(60.0), t0 + 1)
        .expect("write");
    store
        .add_profile_version("ibm_quantum", &new_profile(70.0), t0 + 2)
        .expect("write");
    assert_eq!((first.version, second.version), (1, 2));
    assert_eq!(second.t2star_us, Some(60.0));
    Store::close_with_snapshot(store, std::time::Duration::from_secs(5)).expect("close");
    let store = Store::open(dir.path(), budget()).expect("reopen");
    assert_eq!(
        store.profile_versions("sim_local").expect("read"),
        [first, second.clone()]
    );
    let current = store.current_profiles().expect("read");
    assert_eq!(current.len(), 2);
    assert_eq!(
        current.iter().find(|p| p.hardware_target == "sim_local"),
        Some(&second)
    );
    assert_eq!(second.calibrated().t2star_us, Some(60.0));
}

/// A version as the store wrote it before profiles had a T2*: it still
/// loads, and runs with the configured T2*/T2 ratio on its T2.
#[test]
fn a_profile_version_stored_before_t2star_loads_and_keeps_the_configured_ratio() {
    let dir = TempDir::new("profile-versions-v1");
    let store = Store::open(dir.path(), budget()).expect("open");
    let stored = json!({
        "hardware_target": "sim_local", "version": 1, "set_at": 1767225600.5,
        "from_run": null, "reverted_to": 0, "t1_us": 110.0, "t2_us": 75.0, "p1q": 0.001,
    });
    store
        .calibrations
        .insert(
            [&profile_prefix("sim_local")[..], &1u32.to_be_bytes()].concat(),
            serde_json::to_vec(&stored).expect("json"),
        )
        .expect("insert");
    let versions = store.profile_versions("sim_local").expect("read");
    assert_eq!(versions.len(), 1);
    assert_eq!((versions[0].t2_us, versions[0].t2star_us), (75.0, None));
    let base = crate::sim::NoiseProfile::builtin("sim_local").expect("sim_local");
    let profile = versions[0].calibrated().apply(&base);
    assert_eq!((profile.t1_us, profile.t2_us, profile.p1q), (110.0, 75.0, 0.001));
    assert!((profile.t2star_us - 75.0 * base.t2star_us / base.t2_us).abs() < 1e-9);
    assert_eq!(store.current_profiles().expect("read"), versions);
}

/// An entry as the store wrote it before health measured readout: it
/// still decodes, without that value.
#[test]
fn a_calibration_entry_stored_before_readout_fidelity_decodes() {
    let fit = json!({"value": 1.0, "ci95": null});
    let stored = json!({
        "run_id": RunId([1; 16]), "hardware_target": "sim_local", "calibrated_at": 2.5,
        "t1_us": fit, "t2star_us": fit, "t2echo_us": fit, "epc": fit,
    });
    let c = Calibration::decode(&serde_json::to_vec(&stored).expect("json")).expect("decodes");
    assert_eq!((c.calibrated_at, c.readout_assignment_fidelity), (2.5, None));
}
