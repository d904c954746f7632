//! grover_demo: two Grover iterations on three qubits searching for the
//! marked string; the KPI is the share of shots that read it.

use serde_json::json;

use super::{
    assemble, backaction_kpi, check, count_map, dist_map, kpi, latency_model_kpi, projective_measurement,
    simulate, standard_trace, state_fidelity_kpi, Parts,
};
use crate::sim::engine::{Model, Op};
use crate::sim::estimators::{dist_fidelity, for_each_resample, multinomial, rng_for, spread};
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

pub(in crate::sim) fn grover(req: &SimRequest, cancelled: &dyn Fn() -> bool) -> Result<SimOutcome, SimError> {
    let marked = req.marked.clone().unwrap_or_else(|| "101".to_string());
    if !crate::sim::valid_marked(&marked) {
        return Err(SimError::Invalid(format!(
            "marked must be a 3-bit string like 101, got {marked:?}"
        )));
    }
    check(cancelled)?;
    let model = Model::new(&req.plant.noise, &req.controls);
    let ops = grover_ops(&marked);
    let sim = simulate(3, &ops, &model);
    let mut rng = rng_for(req.seed);
    let counts = multinomial(&mut rng, req.shots, &sim.dist);
    let target = usize::from_str_radix(&marked, 2).unwrap_or(0);
    let success = counts[target] as f64 / req.shots.max(1) as f64;
    let q = sim.ideal.clone();
    let fid = dist_fidelity(&counts, &q);
    // One resample feeds both statistics, so their intervals are coherent.
    let (mut rf, mut rs) = (Vec::new(), Vec::new());
    for_each_resample(&mut rng, &counts, |c| {
        rf.push(dist_fidelity(c, &q));
        rs.push(c[target] as f64 / req.shots.max(1) as f64);
    });
    let (fs, ss) = (spread(rf), spread(rs));
    let latency_us = sim.shot_ns / 1e3;
    let cx_count = ops.iter().filter(|o| matches!(o, Op::Cx(..))).count();
    Ok(assemble(
        req,
        Parts {
            qubits: 3,
            fidelity: fid,
            latency_us,
            backaction: 0.0,
            raw_counts: count_map(&counts, 3),
            expected: dist_map(&q, 3),
            details: vec![
                kpi("fidelity", fid, "fidelity_dist_v1", "estimate", "ratio", fs),
                kpi(
                    "success_probability",
                    success,
                    "grover_success_v1",
                    "estimate",
                    "ratio",
                    ss,
                ),
                state_fidelity_kpi(sim.state_fidelity),
                backaction_kpi(0.0),
                latency_model_kpi(latency_us),
            ],
            measurement: projective_measurement(3),
            sim_only: vec!["SIM_ONLY_STATE_FIDELITY"],
            artifacts: json!({
                "marked": marked,
                "iterations": 2,
                "ideal_success_probability": q[target],
                "success_probability": success,
                "cx_count": cx_count,
                "noisy_distribution": dist_map(&sim.dist, 3),
            }),
            warnings: vec![],
            trace: standard_trace(req.shots, latency_us),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::engine::bitstring;
    use crate::sim::presets::sim_local_model;

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
