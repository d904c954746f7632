//! What a preset's circuits are and what came back from them: the circuit
//! list a preset runs, and the counts with what synqc's engine knows beside
//! them, whichever ran the circuits (docs/circuits.md). The presets build
//! their results from these; presets/jobs.rs dispatches between them.

use serde_json::Value;

use super::{check, simulate};
use crate::sim::engine::{Model, Op, Register};
use crate::sim::estimators::{multinomial, SimRng};
use crate::sim::SimError;

/// One circuit a preset runs: every qubit 0..qubits is measured at the end,
/// qubit i into classical bit i.
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitJob {
    /// Unique within the run, e.g. "t1_d0" (an executor answers by name).
    pub name: String,
    /// The target whose plant runs it: the run's own, or backend_compare's
    /// compare_with for its second half.
    pub target: String,
    pub qubits: usize,
    pub ops: Vec<Op>,
    pub shots: u64,
}

/// What synqc's engine says about a circuit whatever ran it: the
/// noise-free reference distribution (the q of fidelity_dist_v1) and the
/// modeled plant time of one shot.
pub(super) struct Reference {
    pub ideal: Vec<f64>,
    pub shot_ns: f64,
}

/// What only a simulation of the circuit knows.
pub(super) struct Exact {
    /// The noisy outcome distribution, readout confusion included.
    pub dist: Vec<f64>,
    /// Overlap of the noisy state before readout with the ideal state.
    pub state_fidelity: f64,
}

/// The counts of a preset's circuits, one vector per job in order (dense,
/// index = engine basis index, qubit 0 the most significant bit), and what
/// is known beside them.
pub(super) struct Observed {
    pub counts: Vec<Vec<u64>>,
    pub refs: Vec<Reference>,
    /// Per job; None when the counts came from an executor.
    pub exact: Option<Vec<Exact>>,
    /// The generator the estimators' bootstrap continues with.
    pub rng: SimRng,
    /// Where the counts came from (physics_contract.plant); None on
    /// synqc's engine, whose plant the result describes itself.
    pub plant: Option<Value>,
}

impl Observed {
    /// Simulate and sample every job on synqc's engine, in order, polling
    /// `cancelled` before each; the shots are drawn from `rng`, which the
    /// estimators then continue with.
    pub fn on_engine(
        jobs: &[CircuitJob],
        model: impl Fn(usize) -> Model,
        mut rng: SimRng,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Observed, SimError> {
        let mut counts = Vec::with_capacity(jobs.len());
        let mut refs = Vec::with_capacity(jobs.len());
        let mut exact = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            check(cancelled)?;
            let sim = simulate(job.qubits, &job.ops, &model(i));
            counts.push(multinomial(&mut rng, job.shots, &sim.dist));
            refs.push(Reference {
                ideal: sim.ideal,
                shot_ns: sim.shot_ns,
            });
            exact.push(Exact {
                dist: sim.dist,
                state_fidelity: sim.state_fidelity,
            });
        }
        Ok(Observed {
            counts,
            refs,
            exact: Some(exact),
            rng,
            plant: None,
        })
    }

    /// Counts an executor returned for `jobs`, checked against them, with
    /// each job's noise-free reference from synqc's engine.
    pub fn from_executor(
        jobs: &[CircuitJob],
        counts: &[Vec<u64>],
        model: impl Fn(usize) -> Model,
        rng: SimRng,
        plant: Value,
    ) -> Result<Observed, SimError> {
        if counts.len() != jobs.len() {
            return Err(SimError::Invalid(format!(
                "the executor returned counts for {} circuits but the run sent {}; resubmit the run",
                counts.len(),
                jobs.len()
            )));
        }
        for (job, c) in jobs.iter().zip(counts) {
            let dim = 1usize << job.qubits;
            let total: u64 = c.iter().sum();
            if c.len() != dim || total != job.shots {
                return Err(SimError::Invalid(format!(
                    "the counts of circuit {} cover {} outcomes and {total} shots, expected {dim} outcomes and {} shots; resubmit the run",
                    job.name,
                    c.len(),
                    job.shots
                )));
            }
        }
        let refs = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| reference(job.qubits, &job.ops, &model(i)))
            .collect();
        Ok(Observed {
            counts: counts.to_vec(),
            refs,
            exact: None,
            rng,
            plant: Some(plant),
        })
    }

    pub fn on_engine_ran(&self) -> bool {
        self.plant.is_none()
    }

    /// Job i's simulator-only facts; None for executor counts.
    pub fn exact(&self, i: usize) -> Option<&Exact> {
        self.exact.as_ref().and_then(|e| e.get(i))
    }
}

/// The noise-free engine run of a circuit on `model`'s durations. The
/// clocks do not depend on the noise, so its shot time is the noisy
/// plant's too.
fn reference(n: usize, ops: &[Op], model: &Model) -> Reference {
    let mut ideal = Register::new(n, model.ideal());
    ideal.run(ops);
    Reference {
        ideal: ideal.populations(),
        shot_ns: ideal.shot_time_ns(),
    }
}
