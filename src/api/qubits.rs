//! GET /telemetry/qubits: how much each target's qubits have been used,
//! for the old console's qubit panel. Read from the store's per-target
//! counters (a few keys), never from the runs themselves.

use serde_json::{json, Value};
use tide::{Request, Response, StatusCode};

use super::json_response;
use crate::error::ApiError;
use crate::sim::Preset;
use crate::store::QubitUsage;
use crate::State;

/// Unix milliseconds as the API's float seconds; null for "never".
fn seconds(ms: u64) -> Value {
    if ms == 0 {
        Value::Null
    } else {
        json!(ms as f64 / 1000.0)
    }
}

pub async fn usage(req: Request<State>) -> Result<Response, ApiError> {
    let state = req.state().clone();
    let stored = smol::unblock(move || state.store.qubit_usage()).await?;
    let state = req.state();
    // Every target lists the same qubits, the ones the presets address, so
    // a panel shows a fixed grid with zeros where nothing ran.
    let addressed = Preset::ALL.iter().map(|p| p.qubits()).max().unwrap_or(1) as usize;
    let targets: Vec<Value> = state
        .targets
        .all()
        .iter()
        .map(|t| {
            let mut qubits = stored
                .iter()
                .find(|(id, _)| id == t.id)
                .map(|(_, q)| q.clone())
                .unwrap_or_default();
            qubits.resize(qubits.len().max(addressed), QubitUsage::default());
            // Every preset uses qubit 0: its counters are the target's.
            let all = qubits[0];
            json!({
                "hardware_target": t.id,
                "name": t.name,
                "kind": t.kind,
                "available": t.available,
                "runs": all.runs,
                "shots": all.shots,
                "last_used_at": seconds(all.last_used_ms),
                "qubits": qubits.iter().enumerate().map(|(i, q)| json!({
                    "qubit": i,
                    "runs": q.runs,
                    "shots": q.shots,
                    "last_used_at": seconds(q.last_used_ms),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::Ok,
        &json!({
            "generated_at": crate::clock::now_ms() as f64 / 1000.0,
            "counted": "succeeded runs over the store's lifetime",
            "targets": targets,
        }),
    ))
}
