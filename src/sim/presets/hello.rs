//! hello_quantum_sim: a Bell pair on two qubits, its distribution fidelity
//! against the noise-free twin (docs/physics.md "Presets").

use serde_json::{json, Value};

use super::observed::{CircuitJob, Observed};
use super::{
    assemble, backaction_kpi, count_map, dist_map, fidelity_with_spread, judge, kpi, latency_model_kpi,
    model_of, projective_measurement, reference_distribution, standard_trace, state_fidelity_kpi, Parts,
};
use crate::sim::engine::Op;
use crate::sim::estimators::{fidelity_of, rng_for};
use crate::sim::{SimError, SimOutcome, SimRequest};

pub(super) fn bell_ops() -> Vec<Op> {
    vec![Op::H(0), Op::Cx(0, 1)]
}

/// One Bell circuit with every shot.
pub(in crate::sim) fn circuits(req: &SimRequest) -> Result<Vec<CircuitJob>, SimError> {
    Ok(vec![CircuitJob {
        name: "bell".into(),
        target: req.plant.target.clone(),
        qubits: 2,
        ops: bell_ops(),
        shots: req.shots,
    }])
}

pub(in crate::sim) fn hello(req: &SimRequest, cancelled: &dyn Fn() -> bool) -> Result<SimOutcome, SimError> {
    let jobs = circuits(req)?;
    let model = model_of(&req.plant, &req.controls);
    let obs = Observed::on_engine(&jobs, |_| model.clone(), rng_for(req.seed), cancelled)?;
    Ok(estimate(req, obs))
}

pub(in crate::sim) fn from_counts(
    req: &SimRequest,
    counts: &[Vec<u64>],
    plant: Value,
) -> Result<SimOutcome, SimError> {
    let jobs = circuits(req)?;
    let model = model_of(&req.plant, &req.controls);
    let obs = Observed::from_executor(&jobs, counts, |_| model.clone(), rng_for(req.seed), plant)?;
    Ok(estimate(req, obs))
}

fn estimate(req: &SimRequest, mut obs: Observed) -> SimOutcome {
    let counts = &obs.counts[0];
    let reference = &obs.refs[0];
    let (fid, fs) = fidelity_with_spread(&mut obs.rng, counts, &reference.ideal);
    let latency_us = reference.shot_ns / 1e3;
    let exact = obs.exact(0);
    let predicted = reference_distribution(
        2,
        &bell_ops(),
        &req.plant,
        &req.controls,
        exact.map(|e| &e.dist[..]),
    );
    let verdict = judge(
        "fidelity",
        fid,
        fs.map(|s| s.stderr),
        fidelity_of(&predicted, &reference.ideal),
    );
    let mut details = vec![kpi("fidelity", fid, "fidelity_dist_v1", "estimate", "ratio", fs)];
    let mut artifacts = json!({"circuit": ["h q0", "cx q0,q1", "measure q0,q1"]});
    if let Some(e) = exact {
        details.push(state_fidelity_kpi(e.state_fidelity));
        details.push(backaction_kpi(0.0));
        artifacts["noisy_distribution"] = json!(dist_map(&e.dist, 2));
    }
    details.push(latency_model_kpi(latency_us));
    let mut warnings = vec![];
    let status = verdict.record(&mut artifacts, &mut warnings);
    let on_engine = obs.on_engine_ran();
    assemble(
        req,
        Parts {
            qubits: 2,
            fidelity: fid,
            latency_us,
            backaction: 0.0,
            status,
            raw_counts: count_map(counts, 2),
            expected: dist_map(&reference.ideal, 2),
            details,
            measurement: projective_measurement(2),
            sim_only: if on_engine {
                vec!["SIM_ONLY_STATE_FIDELITY"]
            } else {
                vec!["SIM_ONLY_STATE_FIDELITY", "SIM_ONLY_BACKACTION"]
            },
            artifacts,
            warnings,
            trace: standard_trace(req.shots, latency_us, on_engine),
            executor_plant: obs.plant,
        },
    )
}
