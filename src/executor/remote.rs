//! A run on a target bound to an executor (docs/circuits.md): its circuits
//! written as OpenQASM 3 (a circuit run's program as the client sent it),
//! one request per executor, and the result computed from the counts that
//! came back by the same estimators the simulator uses. A backend_compare
//! half whose target is simulated is sampled on synqc's engine beside it.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::external::{ExecCircuit, ExecFailure, ExecRequest, ExecResponse, ExecutorHandle};
use crate::run::{RunError, RunRecord};
use crate::sim::circuit::to_qasm3;
use crate::sim::presets::{
    circuit_from_counts, noise_params, preset_circuits, preset_from_counts, sample_on_engine,
};
use crate::sim::{Preset, SimError, SimOutcome, SimRequest};
// Up to the crate root for the bound targets' executors (see mod.rs).
use crate::State;

/// How a run on an executor ended.
pub(super) enum Remote {
    /// The run's outcome; boxed, as it is far larger than the other
    /// variants and `Remote` is also the error of every request sent.
    Done(Box<SimOutcome>),
    /// Nothing was sent: an executor it needs is down (the reason). The
    /// run waits in the queue.
    Wait(String),
    /// Cancelled, or the run cannot be expressed as circuits.
    Stopped(SimError),
    /// The attempt failed on the executor's side.
    Failed(RunError),
}

/// Whether `rec` runs on an executor: its target, or backend_compare's
/// second one, is bound.
pub(super) fn is_remote(state: &State, rec: &RunRecord) -> bool {
    std::iter::once(&rec.hardware_target)
        .chain(rec.compare_with.as_ref())
        .any(|t| state.external.get(t).is_some())
}

/// Runs `req` on the executors of its bound targets. Blocking: call it
/// from a blocking thread.
pub(super) fn run_remote(
    state: &State,
    rec: &RunRecord,
    req: &SimRequest,
    cancelled: &dyn Fn() -> bool,
) -> Remote {
    match (req.preset, req.program.as_ref(), rec.qasm.as_deref()) {
        (Preset::Circuit, Some(circuit), Some(qasm)) => {
            let Some(handle) = state.external.get(&rec.hardware_target) else {
                return Remote::Stopped(SimError::Invalid("the circuit's target is not bound".into()));
            };
            let job = ExecCircuit {
                name: "circuit".into(),
                qasm: qasm.to_string(),
                shots: req.shots,
                clbit_registers: circuit.registers.iter().map(|r| r.1).collect(),
            };
            match send(handle, rec, req, &req.plant, vec![job], cancelled) {
                Ok(answer) => {
                    let plant = plant_json(handle, &answer);
                    let counts = answer.counts.into_iter().next().unwrap_or_default();
                    finish(circuit_from_counts(req, circuit, &counts, plant))
                }
                Err(stop) => stop,
            }
        }
        (Preset::Circuit, ..) => Remote::Stopped(SimError::Invalid(
            "the run's program is missing from its record; resubmit the run".into(),
        )),
        _ => run_preset(state, rec, req, cancelled),
    }
}

/// A built-in preset: its circuits grouped by the target each runs on.
fn run_preset(state: &State, rec: &RunRecord, req: &SimRequest, cancelled: &dyn Fn() -> bool) -> Remote {
    let jobs = match preset_circuits(req) {
        Ok(jobs) => jobs,
        Err(e) => return Remote::Stopped(e),
    };
    let mut counts: Vec<Vec<u64>> = vec![Vec::new(); jobs.len()];
    let mut plants = serde_json::Map::new();
    let mut targets: Vec<&str> = jobs.iter().map(|j| j.target.as_str()).collect();
    targets.dedup();
    for target in targets {
        let mine: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].target == target).collect();
        let Some(handle) = state.external.get(target) else {
            for &i in &mine {
                counts[i] = sample_on_engine(req, i, &jobs[i]);
            }
            continue;
        };
        let plant = if target == req.plant.target {
            &req.plant
        } else {
            match &req.compare_with {
                Some(p) => p,
                None => return Remote::Stopped(SimError::Invalid(format!("no plant for target {target}"))),
            }
        };
        let circuits = mine
            .iter()
            .map(|&i| {
                let job = &jobs[i];
                let measured: Vec<usize> = (0..job.qubits).collect();
                ExecCircuit {
                    name: job.name.clone(),
                    qasm: to_qasm3(job.qubits, &job.ops, &measured),
                    shots: job.shots,
                    clbit_registers: vec![job.qubits],
                }
            })
            .collect();
        match send(handle, rec, req, plant, circuits, cancelled) {
            Ok(answer) => {
                plants.insert(target.to_string(), plant_json(handle, &answer));
                for (&i, keyed) in mine.iter().zip(answer.counts) {
                    counts[i] = dense(&keyed, jobs[i].qubits);
                }
            }
            Err(stop) => return stop,
        }
    }
    // The run's own target first; a compare half that ran elsewhere is
    // named beside it.
    let mut plant = plants
        .remove(&rec.hardware_target)
        .unwrap_or_else(|| json!({"kind": "sim", "target": rec.hardware_target}));
    if let Some((other, p)) = plants.into_iter().next() {
        plant["compare_with"] = json!({ other: p });
    }
    finish(preset_from_counts(req, &counts, plant))
}

fn finish(outcome: Result<SimOutcome, SimError>) -> Remote {
    match outcome {
        Ok(out) => Remote::Done(Box::new(out)),
        Err(e) => Remote::Stopped(e),
    }
}

/// One request to `handle` with the circuits of `plant`'s target.
fn send(
    handle: &ExecutorHandle,
    rec: &RunRecord,
    req: &SimRequest,
    plant: &crate::sim::Plant,
    circuits: Vec<ExecCircuit>,
    cancelled: &dyn Fn() -> bool,
) -> Result<ExecResponse, Remote> {
    let request = ExecRequest {
        run_id: rec.id.to_string(),
        target: plant.target.clone(),
        seed: req.seed,
        noise_profile: noise_params(plant, &req.controls),
        circuits,
    };
    handle.run(&request, cancelled).map_err(|failure| match failure {
        ExecFailure::Unavailable(why) => Remote::Wait(why),
        ExecFailure::Cancelled => Remote::Stopped(SimError::Cancelled),
        ExecFailure::Failed(f) => Remote::Failed(RunError::provider(
            f.code,
            f.message,
            f.retryable,
            f.counts_returned,
        )),
    })
}

/// physics_contract.plant of counts from `handle`'s executor.
fn plant_json(handle: &ExecutorHandle, answer: &ExecResponse) -> Value {
    json!({
        "kind": "executor",
        "target": handle.target(),
        "executor": handle.config().command.join(" "),
        "backend": answer.backend,
        "metadata": answer.metadata,
    })
}

/// Counts keyed as an executor answers for a circuit that measures qubit
/// i into c[i] of one register (bit 0 rightmost), as the dense vector the
/// estimators take (index = engine basis index, qubit 0 most significant).
/// The keys were checked against the register's width on arrival.
fn dense(keyed: &BTreeMap<String, u64>, qubits: usize) -> Vec<u64> {
    let mut counts = vec![0; 1 << qubits];
    for (key, &n) in keyed {
        let engine_order: String = key.chars().rev().collect();
        if let Ok(index) = usize::from_str_radix(&engine_order, 2) {
            if let Some(slot) = counts.get_mut(index) {
                *slot += n;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executor_keys_are_reversed_into_engine_order() {
        let keyed = BTreeMap::from([("001".to_string(), 5), ("100".to_string(), 7)]);
        // "001": c[0] = 1, so qubit 0 read 1: engine index 0b100;
        // "100": qubit 2 read 1: engine index 0b001.
        assert_eq!(dense(&keyed, 3), vec![0, 7, 0, 0, 5, 0, 0, 0]);
    }
}
