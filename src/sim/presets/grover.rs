//! grover_demo: two Grover iterations on three qubits searching for the
//! marked string; the KPI is the share of shots that read it.

use serde_json::{json, Value};

use super::observed::{CircuitJob, Observed};
use super::{
    assemble, backaction_kpi, count_map, dist_map, judge, kpi, latency_model_kpi, model_of,
    projective_measurement, reference_distribution, standard_trace, state_fidelity_kpi, Parts,
};
use crate::sim::engine::Op;
use crate::sim::estimators::{dist_fidelity, for_each_resample, proportion_spread, rng_for};
use crate::sim::{SimError, SimOutcome, SimRequest};

/// CCZ on (0, 1, 2) from cx and t/tdg: the Toffoli network without the
/// target's Hadamards, so every 2q gate is a real noisy cx.
fn ccz() -> Vec<Op> {
    use Op::*;
    vec![
        Cx(1, 2),
        Tdg(2),
        Cx(0, 2),
        T(2),
        Cx(1, 2),
        Tdg(2),
        Cx(0, 2),
        T(1),
        T(2),
        Cx(0, 1),
        T(0),
        Tdg(1),
        Cx(0, 1),
    ]
}

pub(in crate::sim) fn grover_ops(marked: &str) -> Vec<Op> {
    let zeros: Vec<usize> = marked
        .chars()
        .enumerate()
        .filter(|(_, ch)| *ch == '0')
        .map(|(q, _)| q)
        .collect();
    let mut ops: Vec<Op> = (0..3).map(Op::H).collect();
    for _ in 0..2 {
        // Oracle: phase-flip the marked string.
        ops.extend(zeros.iter().map(|&q| Op::X(q)));
        ops.extend(ccz());
        ops.extend(zeros.iter().map(|&q| Op::X(q)));
        // Diffusion: reflect about the uniform superposition.
        ops.extend((0..3).map(Op::H));
        ops.extend((0..3).map(Op::X));
        ops.extend(ccz());
        ops.extend((0..3).map(Op::X));
        ops.extend((0..3).map(Op::H));
    }
    ops
}

/// The marked string of a request (default "101"), checked.
fn marked(req: &SimRequest) -> Result<String, SimError> {
    let marked = req.marked.clone().unwrap_or_else(|| "101".to_string());
    if !crate::sim::valid_marked(&marked) {
        return Err(SimError::Invalid(format!(
            "marked must be a 3-bit string like 101, got {marked:?}"
        )));
    }
    Ok(marked)
}

/// One three-qubit Grover circuit with every shot.
pub(in crate::sim) fn circuits(req: &SimRequest) -> Result<Vec<CircuitJob>, SimError> {
    let marked = marked(req)?;
    Ok(vec![CircuitJob {
        name: format!("grover_{marked}"),
        target: req.plant.target.clone(),
        qubits: 3,
        ops: grover_ops(&marked),
        shots: req.shots,
    }])
}

pub(in crate::sim) fn grover(req: &SimRequest, cancelled: &dyn Fn() -> bool) -> Result<SimOutcome, SimError> {
    let jobs = circuits(req)?;
    let model = model_of(&req.plant, &req.controls);
    let obs = Observed::on_engine(&jobs, |_| model.clone(), rng_for(req.seed), cancelled)?;
    estimate(req, &jobs, obs)
}

pub(in crate::sim) fn from_counts(
    req: &SimRequest,
    counts: &[Vec<u64>],
    plant: Value,
) -> Result<SimOutcome, SimError> {
    let jobs = circuits(req)?;
    let model = model_of(&req.plant, &req.controls);
    let obs = Observed::from_executor(&jobs, counts, |_| model.clone(), rng_for(req.seed), plant)?;
    estimate(req, &jobs, obs)
}

fn estimate(req: &SimRequest, jobs: &[CircuitJob], mut obs: Observed) -> Result<SimOutcome, SimError> {
    let marked = marked(req)?;
    let ops = &jobs[0].ops;
    let counts = &obs.counts[0];
    let target = usize::from_str_radix(&marked, 2).unwrap_or(0);
    let success = counts[target] as f64 / req.shots.max(1) as f64;
    let q = obs.refs[0].ideal.clone();
    let fid = dist_fidelity(counts, &q);
    // One resample feeds both statistics, so their intervals are coherent.
    let (mut rf, mut rs) = (Vec::new(), Vec::new());
    for_each_resample(&mut obs.rng, counts, |c| {
        rf.push(dist_fidelity(c, &q));
        rs.push(c[target] as f64 / req.shots.max(1) as f64);
    });
    let (fs, ss) = (
        proportion_spread(fid, req.shots, rf),
        proportion_spread(success, req.shots, rs),
    );
    let predicted = reference_distribution(
        3,
        ops,
        &req.plant,
        &req.controls,
        obs.exact(0).map(|e| &e.dist[..]),
    );
    let verdict = judge(
        "success_probability",
        success,
        ss.map(|s| s.stderr),
        predicted[target],
    );
    let latency_us = obs.refs[0].shot_ns / 1e3;
    let cx_count = ops.iter().filter(|o| matches!(o, Op::Cx(..))).count();
    let mut details = vec![
        kpi("fidelity", fid, "fidelity_dist_v1", "estimate", "ratio", fs),
        kpi(
            "success_probability",
            success,
            "grover_success_v1",
            "estimate",
            "ratio",
            ss,
        ),
    ];
    let mut artifacts = json!({
        "marked": marked,
        "iterations": 2,
        "ideal_success_probability": q[target],
        "success_probability": success,
        "cx_count": cx_count,
    });
    if let Some(e) = obs.exact(0) {
        details.push(state_fidelity_kpi(e.state_fidelity));
        details.push(backaction_kpi(0.0));
        artifacts["noisy_distribution"] = json!(dist_map(&e.dist, 3));
    }
    details.push(latency_model_kpi(latency_us));
    let mut warnings = vec![];
    let status = verdict.record(&mut artifacts, &mut warnings);
    let on_engine = obs.on_engine_ran();
    Ok(assemble(
        req,
        Parts {
            qubits: 3,
            fidelity: fid,
            latency_us,
            backaction: 0.0,
            status,
            raw_counts: count_map(counts, 3),
            expected: dist_map(&q, 3),
            details,
            measurement: projective_measurement(3),
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
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::engine::bitstring;
    use crate::sim::presets::{sim_local_model, simulate};

    #[test]
    fn grover_ideal_success_matches_theory_for_every_marked_state() {
        // sin^2(5 theta), sin theta = 1/sqrt(8).
        let theta = (1.0f64 / 8.0).sqrt().asin();
        let expect = (5.0 * theta).sin().powi(2);
        for m in 0..8 {
            let s = bitstring(m, 3);
            let sim = simulate(3, &grover_ops(&s), &sim_local_model());
            assert!((sim.ideal[m] - expect).abs() < 1e-12, "{s}: {}", sim.ideal[m]);
            assert!(
                sim.dist[m] < expect && sim.dist[m] > 0.5,
                "noise lowers success: {}",
                sim.dist[m]
            );
        }
    }
}
