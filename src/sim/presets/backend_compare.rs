//! backend_compare: the Bell circuit of hello_quantum_sim on the run's
//! target and on compare_with (another target or the ideal twin), the budget
//! split between them, with a paired bootstrap of the difference.

use serde_json::json;

use super::hello::bell_ops;
use super::{
    assemble, backaction_kpi, check, count_map, dist_map, kpi, latency_model_kpi, model_of, noise_json,
    projective_measurement, simulate, standard_trace, state_fidelity_kpi, Parts,
};
use crate::sim::estimators::{dist_fidelity, multinomial, pool_off_support, rng_for, spread, Multinomial};
use crate::sim::{SimError, SimOutcome, SimRequest};

pub(in crate::sim) fn backend_compare(
    req: &SimRequest,
    cancelled: &dyn Fn() -> bool,
) -> Result<SimOutcome, SimError> {
    let Some(second) = req.compare_with.as_ref() else {
        return Err(SimError::Invalid(
            "backend_compare needs a second target (compare_with)".into(),
        ));
    };
    let (n1, n2) = crate::sim::compare_split(req.shots);
    let mut rng = rng_for(req.seed);
    let mut runs = Vec::new();
    for (plant, n) in [(&req.plant, n1), (second, n2)] {
        check(cancelled)?;
        let sim = simulate(2, &bell_ops(), &model_of(plant, &req.controls));
        let counts = multinomial(&mut rng, n, &sim.dist);
        runs.push((plant, sim, counts));
    }
    let q = runs[0].1.ideal.clone();
    let f1 = dist_fidelity(&runs[0].2, &q);
    let f2 = dist_fidelity(&runs[1].2, &q);
    // Paired bootstrap: each replicate resamples both targets' counts.
    let (c1, pq) = pool_off_support(&runs[0].2, &q);
    let (c2, _) = pool_off_support(&runs[1].2, &q);
    let p1: Vec<f64> = c1.iter().map(|&c| c as f64 / n1.max(1) as f64).collect();
    let p2: Vec<f64> = c2.iter().map(|&c| c as f64 / n2.max(1) as f64).collect();
    let timer = crate::sim::estimators::BootstrapTimer::start();
    let (m1, m2) = (Multinomial::new(n1, &p1), Multinomial::new(n2, &p2));
    let (mut r1, mut r2, mut rd) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..crate::sim::estimators::BOOTSTRAP_RESAMPLES {
        let a = dist_fidelity(&m1.sample(&mut rng), &pq);
        let b = dist_fidelity(&m2.sample(&mut rng), &pq);
        r1.push(a);
        r2.push(b);
        rd.push(a - b);
    }
    drop(timer);
    let latency_us = runs[0].1.shot_ns / 1e3;
    let mut per_target = serde_json::Map::new();
    for (plant, sim, counts) in &runs {
        per_target.insert(
            plant.target.clone(),
            json!({
                "shots": counts.iter().sum::<u64>(),
                "counts": count_map(counts, 2),
                "fidelity": dist_fidelity(counts, &q),
                "state_fidelity": sim.state_fidelity,
                "latency_model_us": sim.shot_ns / 1e3,
            }),
        );
    }
    let mut warnings = vec![];
    if second.target == req.plant.target {
        warnings.push("compare_with is the same target as hardware_target".to_string());
    }
    Ok(assemble(
        req,
        Parts {
            qubits: 2,
            fidelity: f1,
            latency_us,
            backaction: 0.0,
            raw_counts: count_map(&runs[0].2, 2),
            expected: dist_map(&q, 2),
            details: vec![
                kpi(
                    "fidelity",
                    f1,
                    "fidelity_dist_v1",
                    "estimate",
                    "ratio",
                    spread(r1),
                ),
                kpi(
                    "fidelity_compare",
                    f2,
                    "fidelity_dist_v1",
                    "estimate",
                    "ratio",
                    spread(r2),
                ),
                kpi(
                    "fidelity_difference",
                    f1 - f2,
                    "fidelity_dist_v1",
                    "estimate",
                    "ratio",
                    spread(rd),
                ),
                state_fidelity_kpi(runs[0].1.state_fidelity),
                backaction_kpi(0.0),
                latency_model_kpi(latency_us),
            ],
            measurement: projective_measurement(2),
            sim_only: vec!["SIM_ONLY_STATE_FIDELITY"],
            artifacts: json!({
                "circuit": ["h q0", "cx q0,q1", "measure q0,q1"],
                "targets": [req.plant.target, second.target],
                "per_target": per_target,
                "compare_noise": noise_json(second, &req.controls),
                "difference_definition": "fidelity(hardware_target) - fidelity(compare_with), paired bootstrap",
            }),
            warnings,
            trace: standard_trace(req.shots, latency_us),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::ControlProfile;
    use crate::sim::presets::ideal_twin;
    use crate::sim::{NoiseProfile, Plant, Preset};

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
