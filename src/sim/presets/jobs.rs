//! The presets as circuits plus estimators, so a target bound to an
//! external executor can run them (docs/physics.md "Presets"): a preset
//! lists the circuits it runs ([`preset_circuits`]); the counts those
//! circuits returned, wherever they ran, become the result through the same
//! estimators the simulator uses ([`preset_from_counts`]).
//!
//! On synqc's engine the circuits are simulated and sampled with the run's
//! seeded generator, which then continues into the bootstrap, so a seed
//! still fixes every byte of a result. Counts from an executor are
//! bootstrapped from a generator seeded the same way; the noise-free
//! reference distribution and the modeled shot time still come from synqc's
//! own noise-free run of the same circuit on the target's model, while what
//! only a simulation knows (the state before readout, the exact noisy
//! distribution) is left out with a warning saying why.

use serde_json::Value;

use super::observed::CircuitJob;
use super::simulate;
use crate::sim::estimators::multinomial;
use crate::sim::{Plant, SimError, SimOutcome, SimRequest};

/// Counts for job `i` sampled on synqc's engine while the run's other jobs
/// go to an executor (backend_compare's half on a simulated target): from
/// the job's exact distribution on its plant, with a generator of its own
/// seeded from the run's seed and the job's position, so a seed still
/// fixes the counts.
pub fn sample_on_engine(req: &SimRequest, i: usize, job: &CircuitJob) -> Vec<u64> {
    let sim = simulate(
        job.qubits,
        &job.ops,
        &super::model_of(plant_of(req, job), &req.controls),
    );
    let mut rng =
        crate::sim::estimators::rng_for(req.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    multinomial(&mut rng, job.shots, &sim.dist)
}

/// The plant a job of `req` runs on: backend_compare's second half runs on
/// compare_with, everything else on the run's own target.
pub fn plant_of<'a>(req: &'a SimRequest, job: &CircuitJob) -> &'a Plant {
    match &req.compare_with {
        Some(other) if job.target == other.target && job.target != req.plant.target => other,
        _ => &req.plant,
    }
}

/// The circuits `req` runs, in order; for backend_compare the first half
/// runs on the run's target and the second on compare_with (see each job's
/// `target`). The preset registry says how (sim/registry.rs); latency and
/// circuit runs have none.
pub fn preset_circuits(req: &SimRequest) -> Result<Vec<CircuitJob>, SimError> {
    validate(req)?;
    req.preset.jobs(req)
}

/// The result of `req` from the counts its circuits returned (one vector per
/// job of [`preset_circuits`], in order; dense, index = engine basis index,
/// qubit 0 the most significant bit). `plant` says where they ran and
/// becomes physics_contract.plant.
pub fn preset_from_counts(
    req: &SimRequest,
    counts: &[Vec<u64>],
    plant: Value,
) -> Result<SimOutcome, SimError> {
    validate(req)?;
    req.preset.estimate_counts(req, counts, plant)
}

/// The checks `sim::run` makes before any preset runs: enough shots for the
/// protocol, and a physical noise profile.
pub fn validate(req: &SimRequest) -> Result<(), SimError> {
    let min = crate::sim::min_shots(req.preset);
    if req.shots < min {
        return Err(SimError::Invalid(format!(
            "{} needs at least {min} shots",
            req.preset.as_str()
        )));
    }
    let problems = req.plant.noise.problems();
    if !problems.is_empty() {
        return Err(SimError::Invalid(format!(
            "noise profile of {}: {}",
            req.plant.target,
            problems.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sim::engine::{Op, Register};
    use crate::sim::estimators::rng_for;
    use crate::sim::presets::observed::Observed;
    use crate::sim::presets::{ideal_twin, model_of};
    use crate::sim::tests::req;
    use crate::sim::{run, Preset};

    /// What an executor would return, produced the way the simulator
    /// samples: synqc's engine, the run's generator (health's past the RB
    /// draws), the jobs in order.
    fn engine_counts(r: &SimRequest) -> Vec<Vec<u64>> {
        let jobs = preset_circuits(r).expect("circuits");
        let rng = if r.preset == Preset::Health {
            super::super::health::plan(r).expect("plan").1
        } else {
            rng_for(r.seed)
        };
        let plant_of = |i: usize| match (r.preset, &r.compare_with) {
            (Preset::BackendCompare, Some(second)) if i == 1 => second,
            _ => &r.plant,
        };
        Observed::on_engine(&jobs, |i| model_of(plant_of(i), &r.controls), rng, &|| false)
            .expect("samples")
            .counts
    }

    fn executor_plant() -> Value {
        json!({"executor": "ibm_quantum", "backend": {"name": "aer_simulator", "version": "0.18.2"}, "metadata": {"job": 7}})
    }

    /// The same counts give the same KPIs through either path; only the
    /// bootstrap draws differ (the executor path has no shot draws before
    /// them), so intervals agree to within their own noise.
    #[test]
    fn counts_from_an_executor_give_the_simulators_kpis() {
        let mut cases = Vec::new();
        for preset in [
            Preset::HelloQuantumSim,
            Preset::GroverDemo,
            Preset::BackendCompare,
            Preset::Health,
        ] {
            for (target, seed) in [("sim_local", 1), ("aws_braket", 2), ("rigetti_forest", 3)] {
                cases.push(req(preset, target, 4000, seed));
            }
        }
        let mut twin = req(Preset::BackendCompare, "aws_braket", 3001, 4);
        twin.compare_with = Some(ideal_twin(&twin.plant));
        cases.push(twin);
        let mut marked = req(Preset::GroverDemo, "ionq_cloud", 2048, 5);
        marked.marked = Some("011".into());
        cases.push(marked);
        cases.push(req(Preset::Health, "ibm_quantum", 400, 6));
        for r in cases {
            let label = format!("{:?} {} {}", r.preset, r.plant.target, r.seed);
            let sim = run(&r, None, &|| false).expect("simulates");
            let exe = preset_from_counts(&r, &engine_counts(&r), executor_plant()).expect("estimates");
            assert_eq!(exe.kpis.raw_counts, sim.kpis.raw_counts, "{label}");
            assert_eq!(
                exe.kpis.expected_distribution, sim.kpis.expected_distribution,
                "{label}"
            );
            assert_eq!(exe.kpis.fidelity, sim.kpis.fidelity, "{label}");
            assert_eq!(exe.kpis.latency_us, sim.kpis.latency_us, "{label}");
            assert_eq!(exe.kpis.status, sim.kpis.status, "{label}");
            let sim_kept: Vec<&str> = sim
                .kpi_details
                .iter()
                .map(|d| d.name.as_str())
                .filter(|n| *n != "state_fidelity" && *n != "backaction")
                .collect();
            let exe_names: Vec<&str> = exe.kpi_details.iter().map(|d| d.name.as_str()).collect();
            assert_eq!(exe_names, sim_kept, "{label}: simulator-only KPIs are absent");
            for d in &exe.kpi_details {
                let s = sim
                    .kpi_details
                    .iter()
                    .find(|s| s.name == d.name)
                    .expect("same kpi");
                assert_eq!(
                    (d.value, &d.definition_id, &d.kind),
                    (s.value, &s.definition_id, &s.kind),
                    "{label} {}",
                    d.name
                );
                match (d.ci95, s.ci95) {
                    (None, None) => {}
                    (Some([lo, hi]), Some([slo, shi])) => {
                        let w = shi - slo;
                        assert!(
                            (lo - slo).abs() <= 0.35 * w && (hi - shi).abs() <= 0.35 * w,
                            "{label} {}: [{lo}, {hi}] vs [{slo}, {shi}]",
                            d.name
                        );
                    }
                    other => panic!("{label} {}: {other:?}", d.name),
                }
            }
            assert_eq!(exe.physics_contract["plant"], executor_plant(), "{label}");
            assert!(
                exe.warnings
                    .iter()
                    .any(|w| w.starts_with("SIM_ONLY_BACKACTION: ")),
                "{label}: {:?}",
                exe.warnings
            );
            let had_state = sim.kpi_details.iter().any(|d| d.name == "state_fidelity");
            assert_eq!(
                exe.warnings
                    .iter()
                    .any(|w| w.starts_with("SIM_ONLY_STATE_FIDELITY: ")),
                had_state,
                "{label}"
            );
            assert!(
                !exe.assumptions.iter().any(|a| a.starts_with("SIM_ONLY")),
                "{label}"
            );
            assert!(exe.artifacts.get("noisy_distribution").is_none(), "{label}");
        }
    }

    #[test]
    fn health_circuits_carry_the_delays_and_split_the_budget() {
        let r = req(Preset::Health, "sim_local", 2048, 9);
        let jobs = preset_circuits(&r).expect("circuits");
        assert_eq!(jobs.len() as u64, super::super::health::FULL.circuits());
        assert_eq!(jobs.iter().map(|j| j.shots).sum::<u64>(), 2048);
        let mut names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), jobs.len(), "names are unique");
        let delays = |prefix: &str| -> Vec<f64> {
            jobs.iter()
                .filter(|j| j.name.starts_with(prefix))
                .map(|j| {
                    j.ops
                        .iter()
                        .filter_map(|op| match op {
                            Op::Delay(0, ns) => Some(*ns),
                            _ => None,
                        })
                        .sum()
                })
                .collect()
        };
        let health = super::super::health::FULL;
        for (prefix, points) in [
            ("t1_d", health.delay_points),
            ("ramsey_d", health.ramsey_points),
            ("echo_d", health.echo_points),
        ] {
            let d = delays(prefix);
            assert_eq!(d.len(), points, "{prefix}");
            assert!(
                d[0] == 0.0 && d.windows(2).all(|w| w[1] > w[0]),
                "{prefix}: {d:?}"
            );
        }
        // The longest delays are five times the profile's T1, T2* and T2.
        let n = &r.plant.noise;
        for (prefix, nominal) in [("t1_d", n.t1_us), ("ramsey_d", n.t2star_us), ("echo_d", n.t2_us)] {
            let d = delays(prefix);
            assert!((d[d.len() - 1] - 5.0 * nominal * 1e3).abs() < 1e-6, "{prefix}");
        }
        // Readout assignment: prepare 0 (nothing) and prepare 1 (x).
        let ops_of = |name: &str| jobs.iter().find(|j| j.name == name).map(|j| j.ops.clone());
        for k in 0..health.readout_repeats {
            assert_eq!(ops_of(&format!("readout_prep0_r{k}")), Some(vec![]));
            assert_eq!(ops_of(&format!("readout_prep1_r{k}")), Some(vec![Op::X(0)]));
        }
        // Every Ramsey circuit turns the frame by a virtual rz between its h's.
        for j in jobs.iter().filter(|j| j.name.starts_with("ramsey_d")) {
            assert!(
                matches!(j.ops.first(), Some(Op::H(0)))
                    && matches!(j.ops[j.ops.len() - 2..], [Op::Rz(0, _), Op::H(0)]),
                "{}: {:?}",
                j.name,
                j.ops
            );
        }
        for j in jobs.iter().filter(|j| j.name.starts_with("rb_")) {
            assert!(j.ops.iter().all(|op| matches!(op, Op::Pulse(0, _))), "{}", j.name);
        }
        // Same seed, same RB sequences; another seed draws others.
        assert_eq!(preset_circuits(&r).expect("circuits"), jobs);
        assert_ne!(
            preset_circuits(&req(Preset::Health, "sim_local", 2048, 10)).expect("circuits"),
            jobs
        );
    }

    /// Every circuit stays inside its register and runs on the engine to a
    /// normalized state.
    #[test]
    fn every_circuit_is_well_formed() {
        for preset in Preset::ALL
            .into_iter()
            .filter(|p| !matches!(p, Preset::Latency | Preset::Circuit))
        {
            let r = req(preset, "aws_braket", 2048, 1);
            let jobs = preset_circuits(&r).expect("circuits");
            assert_eq!(jobs.iter().map(|j| j.shots).sum::<u64>(), r.shots, "{preset:?}");
            for j in &jobs {
                assert!(
                    j.ops
                        .iter()
                        .flat_map(crate::sim::circuit::op_qubits)
                        .all(|q| q < j.qubits),
                    "{}",
                    j.name
                );
                let mut reg = Register::new(j.qubits, model_of(&r.plant, &r.controls));
                reg.run(&j.ops);
                assert!((reg.trace() - 1.0).abs() < 1e-12, "{}", j.name);
            }
        }
        let mut r = req(Preset::GroverDemo, "sim_local", 2048, 1);
        r.marked = Some("1x1".into());
        assert!(matches!(preset_circuits(&r), Err(SimError::Invalid(_))));
        r.preset = Preset::BackendCompare;
        r.compare_with = None;
        assert!(matches!(preset_circuits(&r), Err(SimError::Invalid(_))));
        assert!(matches!(
            preset_circuits(&req(Preset::Health, "sim_local", 100, 1)),
            Err(SimError::Invalid(m)) if m.contains("needs at least")
        ));
    }

    #[test]
    fn latency_refuses_executors_with_an_action() {
        let r = req(Preset::Latency, "sim_local", 2048, 1);
        for err in [
            preset_circuits(&r).unwrap_err(),
            preset_from_counts(&r, &[vec![2048, 0]], executor_plant()).unwrap_err(),
        ] {
            assert!(
                matches!(&err, SimError::Invalid(m) if m.contains("submit it to an unbound target")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn counts_that_do_not_match_the_circuits_are_refused() {
        let r = req(Preset::HelloQuantumSim, "sim_local", 2048, 1);
        for bad in [
            vec![],
            vec![vec![1024, 0, 0, 1024], vec![0, 0, 0, 0]],
            vec![vec![1024, 0, 1024]],
            vec![vec![1024, 0, 0, 1023]],
        ] {
            let err = preset_from_counts(&r, &bad, executor_plant()).unwrap_err();
            assert!(
                matches!(&err, SimError::Invalid(m) if m.ends_with("resubmit the run")),
                "{bad:?}: {err:?}"
            );
        }
        let ok = preset_from_counts(&r, &[vec![1024, 0, 0, 1024]], executor_plant()).expect("estimates");
        assert_eq!(ok.kpis.fidelity, 1.0);
    }
}
