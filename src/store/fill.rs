//! `synqc bench fill`'s fixture: a store with many finished runs.

use std::path::Path;

use super::layout::{finished_key, u64_of};
use super::{codec, Result, Store};
use crate::budget::Budget;
use crate::controls::ControlProfile;
use crate::run::{RunId, RunRecord, RunStatus};

/// Writes `runs` finished runs straight into the store at `path` (which
/// must not be in use): the fixture for the start-up and scrape-cost
/// benchmarks with a large store.
pub fn fill(path: &Path, runs: u64) -> Result<()> {
    let store = Store::open(
        path,
        Budget {
            max_per_session: u64::MAX,
            ttl_ms: 3_600_000,
        },
    )?;
    let template = |id: RunId| RunRecord {
        id,
        preset: crate::sim::Preset::HelloQuantumSim,
        hardware_target: "sim_local".into(),
        compare_with: None,
        mode: crate::run::Mode::Explore,
        shot_budget: 2048,
        shots: 2048,
        seed: 1,
        notes: None,
        marked: None,
        qasm: None,
        circuit_qubits: None,
        controls: ControlProfile::default(),
        session_id: "bench-fill".into(),
        budget_window_ms: 0,
        status: RunStatus::Succeeded,
        created_at: id.unix_ms() as f64 / 1000.0,
        started_at: None,
        finished_at: None,
        attempts: 1,
        crashes: 0,
        error: None,
        warnings: Vec::new(),
        priority: None,
        not_before: None,
        noise_profile_version: None,
        schedule: None,
        result: Some(crate::run::ResultDoc::new(
            &serde_json::json!({"kpis": {"fidelity": 0.97}}),
        )),
    };
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..runs {
        let rec = template(store.new_run_id());
        batch.push((rec.id, codec::encode(&rec)));
        if i % 10_000 == 9_999 {
            store.archive_records(&std::mem::take(&mut batch))?;
        }
    }
    store.archive_records(&batch)?;
    let key = finished_key(RunStatus::Succeeded);
    let had = store.meta.get(&key)?.map(|v| u64_of(&v)).unwrap_or(0);
    store.meta.insert(key, &(had + runs).to_be_bytes())?;
    store.flush_now()?;
    say!(
        "filled {} with {runs} finished runs ({} bytes on disk)",
        path.display(),
        store.size_on_disk()?
    );
    Ok(())
}
