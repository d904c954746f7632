//! A succeeded run's result document: how it is made from the simulator's
//! outcome, and how it is kept.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::RunRecord;
use crate::sim::{KpiDetail, SimOutcome};

/// A succeeded run's result document, kept as the JSON text it is stored
/// as: reading a run and answering with it copies the text instead of
/// building a tree and writing it out again (7 KB for hello_quantum_sim,
/// most of the cost of GET /runs/{id} on a finished run).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResultDoc(Box<serde_json::value::RawValue>);

impl ResultDoc {
    /// The document of a run that succeeded: `claim` is the claim
    /// transaction's commit time, `exec` the simulation's.
    pub fn of_success(rec: &RunRecord, out: SimOutcome, claim: Duration, exec: Duration) -> ResultDoc {
        ResultDoc::new(&document(rec, out, claim, exec))
    }

    pub fn new(v: &Value) -> ResultDoc {
        // A Value always serializes.
        ResultDoc(serde_json::value::to_raw_value(v).unwrap_or_default())
    }

    /// The document as a tree, for the few readers that pick fields.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl PartialEq for ResultDoc {
    fn eq(&self, other: &ResultDoc) -> bool {
        self.0.get() == other.0.get()
    }
}

/// The full result document (RunExperimentResponse) of a succeeded run:
/// the simulator's outcome, told in the terms of what the client asked
/// for, with the appliance's own latencies added.
fn document(rec: &RunRecord, out: SimOutcome, claim: Duration, exec: Duration) -> Value {
    let mut out = out;
    // The simulator saw the executed (clamped) shots; the client asked for
    // shot_budget.
    out.shots.requested = rec.shot_budget;
    out.kpis.shot_budget = rec.shot_budget;
    if rec.shots < rec.shot_budget {
        out.assumptions.push("SHOT_BUDGET_CLAMPED".into());
        out.warnings.push(format!(
            "shot_budget {} clamped to max_shots_per_experiment {}",
            rec.shot_budget, rec.shots
        ));
    }
    let wait_us = rec
        .started_at
        .map(|s| (s - rec.created_at).max(0.0) * 1e6)
        .unwrap_or(0.0);
    for (name, value, what) in [
        ("queue_wait_us", wait_us, "submit to start of execution"),
        (
            "exec_us",
            exec.as_secs_f64() * 1e6,
            "start of execution to outcome",
        ),
        ("store_us", claim.as_secs_f64() * 1e6, "claim transaction commit"),
    ] {
        out.kpi_details.push(KpiDetail {
            name: name.into(),
            value,
            definition_id: "latency_wall_v1".into(),
            definition_ref: format!("docs/physics.md#kpis ({what})"),
            kind: "measured".into(),
            units: "us".into(),
            ci95: None,
            ci_95: None,
            stderr: None,
        });
    }
    json!({
        "id": rec.id,
        "preset": rec.preset,
        "hardware_target": rec.hardware_target,
        "created_at": rec.created_at,
        "notes": rec.notes,
        "seed": rec.seed,
        "engine_version": out.engine_version,
        "qubits_used": out.qubits_used,
        "control_profile": rec.controls,
        "kpis": out.kpis,
        "shots": out.shots,
        "measurement": out.measurement,
        "noise": out.noise,
        "assumptions": out.assumptions,
        "physics_contract": out.physics_contract,
        "kpi_observations": out.kpi_details,
        "kpi_details": out.kpi_details,
        "artifacts": out.artifacts,
        // The submit answer's warnings first: they concern the request.
        "warnings": rec.warnings.iter().chain(&out.warnings).collect::<Vec<_>>(),
        "workflow_trace": out.workflow_trace,
        "error_code": null,
        "error_message": null,
        "error_detail": null,
        "action_hint": null,
    })
}
