//! hello_quantum_sim: a Bell pair on two qubits, its distribution fidelity
//! against the noise-free twin (docs/physics.md "Presets").

use serde_json::json;

use super::{
    assemble, backaction_kpi, check, count_map, dist_map, fidelity_with_spread, kpi, latency_model_kpi,
    projective_measurement, simulate, standard_trace, state_fidelity_kpi, Parts,
};
use crate::sim::engine::{Model, Op};
use crate::sim::estimators::{multinomial, rng_for};
use crate::sim::{SimError, SimOutcome, SimRequest};

pub(super) fn bell_ops() -> Vec<Op> {
    vec![Op::H(0), Op::Cx(0, 1)]
}

pub(in crate::sim) fn hello(req: &SimRequest, cancelled: &dyn Fn() -> bool) -> Result<SimOutcome, SimError> {
    check(cancelled)?;
    let model = Model::new(&req.plant.noise, &req.controls);
    let sim = simulate(2, &bell_ops(), &model);
    let mut rng = rng_for(req.seed);
    let counts = multinomial(&mut rng, req.shots, &sim.dist);
    let (fid, fs) = fidelity_with_spread(&mut rng, &counts, &sim.ideal);
    let latency_us = sim.shot_ns / 1e3;
    Ok(assemble(
        req,
        Parts {
            qubits: 2,
            fidelity: fid,
            latency_us,
            backaction: 0.0,
            raw_counts: count_map(&counts, 2),
            expected: dist_map(&sim.ideal, 2),
            details: vec![
                kpi("fidelity", fid, "fidelity_dist_v1", "estimate", "ratio", fs),
                state_fidelity_kpi(sim.state_fidelity),
                backaction_kpi(0.0),
                latency_model_kpi(latency_us),
            ],
            measurement: projective_measurement(2),
            sim_only: vec!["SIM_ONLY_STATE_FIDELITY"],
            artifacts: json!({
                "circuit": ["h q0", "cx q0,q1", "measure q0,q1"],
                "noisy_distribution": dist_map(&sim.dist, 2),
            }),
            warnings: vec![],
            trace: standard_trace(req.shots, latency_us),
        },
    ))
}
