//! backend_compare: the Bell circuit of hello_quantum_sim on the run's
//! target and on compare_with (another target or the ideal twin), the budget
//! split between them, with a paired bootstrap of the difference.

use serde_json::{json, Value};

use super::hello::bell_ops;
use super::observed::{CircuitJob, Observed};
use super::{
    assemble, backaction_kpi, count_map, dist_map, judge, kpi, latency_model_kpi, model_of, noise_json,
    projective_measurement, reference_distribution, standard_trace, state_fidelity_kpi, Parts,
};
use crate::sim::estimators::{
    dist_fidelity, fidelity_of, pool_off_support, proportion_spread, rng_for, spread, Multinomial,
};
use crate::sim::{Plant, SimError, SimOutcome, SimRequest};

fn second(req: &SimRequest) -> Result<&Plant, SimError> {
    req.compare_with
        .as_ref()
        .ok_or_else(|| SimError::Invalid("backend_compare needs a second target (compare_with)".into()))
}

/// The two plants in the order of the circuits.
fn plants(req: &SimRequest) -> Result<[&Plant; 2], SimError> {
    Ok([&req.plant, second(req)?])
}

/// Two Bell circuits: the first on the run's target with the larger half of
/// the shots, the second on compare_with. Each job names its target, so the
/// two halves can run on different executors; their counts come back in
/// this order to [`from_counts`].
pub(in crate::sim) fn circuits(req: &SimRequest) -> Result<Vec<CircuitJob>, SimError> {
    let (n1, n2) = crate::sim::compare_split(req.shots);
    Ok(plants(req)?
        .into_iter()
        .zip([n1, n2])
        .enumerate()
        .map(|(i, (plant, shots))| CircuitJob {
            name: format!("bell_{}", ["first", "second"][i]),
            target: plant.target.clone(),
            qubits: 2,
            ops: bell_ops(),
            shots,
        })
        .collect())
}

pub(in crate::sim) fn backend_compare(
    req: &SimRequest,
    cancelled: &dyn Fn() -> bool,
) -> Result<SimOutcome, SimError> {
    let jobs = circuits(req)?;
    let plants = plants(req)?;
    let obs = Observed::on_engine(
        &jobs,
        |i| model_of(plants[i], &req.controls),
        rng_for(req.seed),
        cancelled,
    )?;
    estimate(req, obs)
}

/// `counts` holds both halves (the run's target first). `plant` becomes
/// physics_contract.plant as given: when the halves ran in different places
/// the caller says where each did.
pub(in crate::sim) fn from_counts(
    req: &SimRequest,
    counts: &[Vec<u64>],
    plant: Value,
) -> Result<SimOutcome, SimError> {
    let jobs = circuits(req)?;
    let plants = plants(req)?;
    let obs = Observed::from_executor(
        &jobs,
        counts,
        |i| model_of(plants[i], &req.controls),
        rng_for(req.seed),
        plant,
    )?;
    estimate(req, obs)
}

fn estimate(req: &SimRequest, mut obs: Observed) -> Result<SimOutcome, SimError> {
    let second = second(req)?;
    let (n1, n2) = crate::sim::compare_split(req.shots);
    let q = obs.refs[0].ideal.clone();
    let f1 = dist_fidelity(&obs.counts[0], &q);
    let f2 = dist_fidelity(&obs.counts[1], &q);
    // Paired bootstrap: each replicate resamples both targets' counts.
    let (c1, pq) = pool_off_support(&obs.counts[0], &q);
    let (c2, _) = pool_off_support(&obs.counts[1], &q);
    let p1: Vec<f64> = c1.iter().map(|&c| c as f64 / n1.max(1) as f64).collect();
    let p2: Vec<f64> = c2.iter().map(|&c| c as f64 / n2.max(1) as f64).collect();
    let timer = crate::sim::estimators::BootstrapTimer::start();
    let (m1, m2) = (Multinomial::new(n1, &p1), Multinomial::new(n2, &p2));
    let (mut r1, mut r2, mut rd) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..crate::sim::estimators::BOOTSTRAP_RESAMPLES {
        let a = dist_fidelity(&m1.sample(&mut obs.rng), &pq);
        let b = dist_fidelity(&m2.sample(&mut obs.rng), &pq);
        r1.push(a);
        r2.push(b);
        rd.push(a - b);
    }
    drop(timer);
    let latency_us = obs.refs[0].shot_ns / 1e3;
    let mut per_target = serde_json::Map::new();
    for (i, plant) in plants(req)?.into_iter().enumerate() {
        let counts = &obs.counts[i];
        per_target.insert(
            plant.target.clone(),
            json!({
                "shots": counts.iter().sum::<u64>(),
                "counts": count_map(counts, 2),
                "fidelity": dist_fidelity(counts, &q),
                "state_fidelity": obs.exact(i).map(|e| e.state_fidelity),
                "noisy_distribution": obs.exact(i).map(|e| dist_map(&e.dist, 2)),
                "latency_model_us": obs.refs[i].shot_ns / 1e3,
            }),
        );
    }
    // Status judges the run's own target; the second is what it is
    // compared with.
    let predicted = reference_distribution(
        2,
        &bell_ops(),
        &req.plant,
        &req.controls,
        obs.exact(0).map(|e| &e.dist[..]),
    );
    let (s1, s2, sd) = (
        proportion_spread(f1, n1, r1),
        proportion_spread(f2, n2, r2),
        spread(rd),
    );
    let verdict = judge("fidelity", f1, s1.map(|s| s.stderr), fidelity_of(&predicted, &q));
    let mut warnings = vec![];
    if second.target == req.plant.target {
        warnings.push("compare_with is the same target as hardware_target".to_string());
    }
    let mut details = vec![
        kpi("fidelity", f1, "fidelity_dist_v1", "estimate", "ratio", s1),
        kpi(
            "fidelity_compare",
            f2,
            "fidelity_dist_v1",
            "estimate",
            "ratio",
            s2,
        ),
        kpi(
            "fidelity_difference",
            f1 - f2,
            "fidelity_dist_v1",
            "estimate",
            "ratio",
            sd,
        ),
    ];
    if let Some(e) = obs.exact(0) {
        details.push(state_fidelity_kpi(e.state_fidelity));
        details.push(backaction_kpi(0.0));
    }
    details.push(latency_model_kpi(latency_us));
    let mut artifacts = json!({
        "circuit": ["h q0", "cx q0,q1", "measure q0,q1"],
        "targets": [req.plant.target, second.target],
        "per_target": per_target,
        "compare_noise": noise_json(second, &req.controls),
        "difference_definition": "fidelity(hardware_target) - fidelity(compare_with), paired bootstrap",
    });
    let status = verdict.record(&mut artifacts, &mut warnings);
    let on_engine = obs.on_engine_ran();
    Ok(assemble(
        req,
        Parts {
            qubits: 2,
            fidelity: f1,
            latency_us,
            backaction: 0.0,
            status,
            raw_counts: count_map(&obs.counts[0], 2),
            expected: dist_map(&q, 2),
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
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::ControlProfile;
    use crate::sim::presets::ideal_twin;
    use crate::sim::{NoiseProfile, Preset};

    #[test]
    fn the_ideal_twin_runs_the_same_circuit_with_noise_off() {
        let plant = Plant {
            target: "sim_local".into(),
            kind: "sim".into(),
            noise: NoiseProfile::builtin("sim_local").expect("builtin"),
        };
        // Controls that add errors of their own: the twin drops those too.
        let controls = ControlProfile {
            thermal_guard_enabled: false,
            drive_bias: 1.2,
            ..Default::default()
        };
        let req = SimRequest {
            preset: Preset::BackendCompare,
            compare_with: Some(ideal_twin(&plant)),
            plant,
            shots: 4000,
            seed: 3,
            controls,
            marked: None,
            program: None,
        };
        let o = backend_compare(&req, &|| false).expect("runs");
        let kpi = |name: &str| {
            o.kpi_details
                .iter()
                .find(|k| k.name == name)
                .map(|k| k.value)
                .unwrap_or(f64::NAN)
        };
        let (noisy, ideal) = (kpi("fidelity"), kpi("fidelity_compare"));
        assert!(ideal > 0.99 && ideal <= 1.0, "sampled, so near 1: {ideal}");
        assert!(noisy < ideal - 0.01, "{noisy} vs {ideal}");
        let twin = &o.artifacts["per_target"]["ideal"];
        assert_eq!(twin["shots"].as_u64(), Some(2000));
        let pure = twin["state_fidelity"].as_f64().unwrap_or(0.0);
        assert!((pure - 1.0).abs() < 1e-12, "{pure}");
        assert_eq!(
            twin["latency_model_us"], o.artifacts["per_target"]["sim_local"]["latency_model_us"],
            "same gate durations"
        );
        let params = &o.artifacts["compare_noise"]["params"];
        for zero in [
            "p1q",
            "p2q",
            "readout_p10",
            "readout_p01",
            "residual_excited_population",
        ] {
            assert_eq!(params[zero].as_f64(), Some(0.0), "{zero}: {params}");
        }
        assert!(params["t1_us"].is_null(), "no relaxation: {params}");
        assert_eq!(params["drive_bias"].as_f64(), Some(1.0));
        assert!(!o
            .assumptions
            .contains(&"PROVIDER_NOISE_PROFILE_SIMULATED".to_string()));
    }
}
