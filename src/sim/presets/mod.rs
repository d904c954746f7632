//! The presets (docs/physics.md "Presets"), one file each, and the plumbing
//! every result shares: KPI details, status, assumptions, the physics
//! contract and the trace.

pub(super) mod backend_compare;
mod circuit;
pub(super) mod dpd;
pub(super) mod grover;
pub(super) mod health;
pub(super) mod hello;
mod jobs;
pub(super) mod latency;
mod observed;

pub(super) use backend_compare::backend_compare;
pub(super) use circuit::circuit;
pub use circuit::circuit_from_counts;
pub(super) use dpd::dpd;
pub(super) use grover::grover;
pub(super) use health::health;
pub(super) use hello::hello;
pub use jobs::{plant_of, preset_circuits, preset_from_counts, sample_on_engine, validate};
pub(super) use latency::latency;
pub use latency::{latency_probes, LATENCY_MAX_PROBES, LATENCY_MIN_PROBES, LATENCY_SHOTS_PER_PROBE};
pub use observed::CircuitJob;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::engine::{averaged, bitstring, Grid, Model, Op, Register};
use super::estimators::{
    bootstrap_counts, dist_fidelity, pool_off_support, proportion_spread, SimRng, Spread,
};
use super::{
    KpiDetail, Kpis, NoiseProfile, Plant, Preset, Shots, SimError, SimOutcome, SimRequest, TraceStep,
    ENGINE_VERSION, KPI_DEFINITIONS_VERSION,
};
use crate::controls::ControlProfile;

const DEF_REF: &str = "docs/physics.md#kpis";

const BACKACTION_WARN: f64 = 0.32;

/// A shortfall of the KPI below its reference warns beyond
/// max(WARN_SIGMAS stderr, WARN_FLOOR) and fails beyond
/// max(FAIL_SIGMAS stderr, FAIL_FLOOR): the sigmas keep sampling noise from
/// raising an alarm (a 3-sigma one-sided false alarm is about 1 run in 740),
/// the floors keep a huge budget from flagging shortfalls too small to
/// matter.
const WARN_SIGMAS: f64 = 3.0;
const WARN_FLOOR: f64 = 0.02;
const FAIL_SIGMAS: f64 = 5.0;
const FAIL_FLOOR: f64 = 0.10;

fn check(cancelled: &dyn Fn() -> bool) -> Result<(), SimError> {
    if cancelled() {
        Err(SimError::Cancelled)
    } else {
        Ok(())
    }
}

/// The worse of two statuses.
fn worse(a: &'static str, b: &'static str) -> &'static str {
    let rank = |s: &str| match s {
        "fail" => 2,
        "warn" => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// dpd_demo's probe rule: a probe that disturbs the state more than
/// BACKACTION_WARN while the thermal guard is off or the safety clamp is 0
/// warns whatever the fidelity.
fn backaction_status(backaction: f64, c: &ControlProfile) -> &'static str {
    let unguarded = !c.thermal_guard_enabled || c.safety_clamp_ns == 0.0;
    if backaction > BACKACTION_WARN && unguarded {
        "warn"
    } else {
        "ok"
    }
}

/// The controls a status reference is computed under: the drive calibrated
/// and the thermal guard on. The rest (dpd_demo's probe window, clamp and
/// gain) is the experiment itself and stays as the run set it.
fn calibrated(c: &ControlProfile) -> ControlProfile {
    ControlProfile {
        drive_bias: 1.0,
        thermal_guard_enabled: true,
        ..c.clone()
    }
}

/// How a run's headline KPI compares with what the target's noise profile
/// predicts (docs/physics.md "Status").
struct Verdict {
    status: &'static str,
    /// artifacts.status_reference: the numbers and the rule.
    reference: Value,
    /// Says what fell short and by how much; None when ok.
    warning: Option<String>,
}

/// Judge `measured` (with its `stderr`) against `reference`, the KPI's exact
/// value on the target's model under [`calibrated`] controls. Only a
/// shortfall counts: doing better than the model predicts is no fault.
fn judge(kpi: &str, measured: f64, stderr: Option<f64>, reference: f64) -> Verdict {
    let se = stderr.filter(|s| s.is_finite()).unwrap_or(0.0);
    let shortfall = reference - measured;
    let warn_above = (WARN_SIGMAS * se).max(WARN_FLOOR);
    let fail_above = (FAIL_SIGMAS * se).max(FAIL_FLOOR);
    let status = if shortfall > fail_above {
        "fail"
    } else if shortfall > warn_above {
        "warn"
    } else {
        "ok"
    };
    let warning = (status != "ok").then(|| {
        format!(
            "status {status}: {kpi} {measured:.4} is {shortfall:.4} below the {reference:.4} the target's noise \
             profile predicts with calibrated controls ({status} above a shortfall of {:.4}); check drive_bias, \
             the thermal guard and the target's calibration",
            if status == "fail" { fail_above } else { warn_above }
        )
    });
    Verdict {
        status,
        reference: json!({
            "kpi": kpi,
            "measured": measured,
            "reference": reference,
            "shortfall": shortfall,
            "stderr": stderr,
            "warn_above": warn_above,
            "fail_above": fail_above,
            "rule": format!(
                "reference = the KPI's exact value on the target's noise model with drive_bias 1 and the \
                 thermal guard on; warn when reference - measured > max({WARN_SIGMAS} stderr, {WARN_FLOOR}), \
                 fail when > max({FAIL_SIGMAS} stderr, {FAIL_FLOOR})"
            ),
        }),
        warning,
    }
}

/// The exact outcome distribution of `ops` on `plant`'s model under
/// [`calibrated`] controls, the source of a status reference; the engine
/// computes it whatever ran the shots. `known` is the run's own exact
/// distribution when the engine ran it: with controls already calibrated it
/// is the reference, and nothing is simulated twice.
fn reference_distribution(
    n: usize,
    ops: &[Op],
    plant: &Plant,
    c: &ControlProfile,
    known: Option<&[f64]>,
) -> Vec<f64> {
    let cal = calibrated(c);
    match known {
        Some(dist) if cal == *c => dist.to_vec(),
        _ => simulate(n, ops, &model_of(plant, &cal)).dist,
    }
}

impl Verdict {
    /// Record the verdict in a result's artifacts and warnings; returns the
    /// status.
    fn record(self, artifacts: &mut Value, warnings: &mut Vec<String>) -> &'static str {
        artifacts["status_reference"] = self.reference;
        warnings.extend(self.warning);
        self.status
    }
}

fn kpi(name: &str, value: f64, def: &str, kind: &str, units: &str, s: Option<Spread>) -> KpiDetail {
    KpiDetail {
        name: name.to_string(),
        value,
        definition_id: def.to_string(),
        definition_ref: DEF_REF.to_string(),
        kind: kind.to_string(),
        units: units.to_string(),
        ci95: s.map(|s| s.ci95),
        ci_95: s.map(|s| s.ci95),
        stderr: s.map(|s| s.stderr),
    }
}

/// state_fidelity (fidelity_state_v1): needs the simulator's state, so it
/// has no sampling uncertainty.
fn state_fidelity_kpi(value: f64) -> KpiDetail {
    kpi(
        "state_fidelity",
        value,
        "fidelity_state_v1",
        "sim_only",
        "ratio",
        None,
    )
}

/// backaction (backaction_trace_v1) of the probe; 0 where none acts.
fn backaction_kpi(value: f64) -> KpiDetail {
    kpi(
        "backaction",
        value,
        "backaction_trace_v1",
        "sim_only",
        "ratio",
        None,
    )
}

/// latency_us (latency_model_v1): the modeled plant time of one shot.
fn latency_model_kpi(value: f64) -> KpiDetail {
    kpi("latency_us", value, "latency_model_v1", "model", "us", None)
}

fn trace(steps: &[(&str, &str, &str, f64)]) -> Vec<TraceStep> {
    let n = steps.len() as f64;
    steps
        .iter()
        .enumerate()
        .map(|(i, (id, label, desc, dwell))| TraceStep {
            id: id.to_string(),
            label: label.to_string(),
            description: desc.to_string(),
            percent_complete: (100.0 * (i + 1) as f64 / n).round(),
            dwell_ms: *dwell,
        })
        .collect()
}

/// The parts of a result that differ per preset; [`assemble`] adds the rest.
struct Parts {
    pub qubits: u32,
    pub fidelity: f64,
    pub latency_us: f64,
    pub backaction: f64,
    /// ok | warn | fail: each preset judges its own run.
    pub status: &'static str,
    pub raw_counts: BTreeMap<String, u64>,
    pub expected: BTreeMap<String, f64>,
    pub details: Vec<KpiDetail>,
    pub measurement: Value,
    pub sim_only: Vec<&'static str>,
    pub artifacts: Value,
    pub warnings: Vec<String>,
    pub trace: Vec<TraceStep>,
    /// Where the counts came from when an executor ran the circuits
    /// (physics_contract.plant); None when synqc's engine did.
    pub executor_plant: Option<Value>,
}

/// compare_with's name for the noise-free twin of the run's own target
/// (docs/api.md): what backend_compare compares with when no other target is
/// available, and what a client may ask for by name.
pub const IDEAL_TWIN: &str = "ideal";

/// The noise-free twin of `plant`: the same kind and gate durations, every
/// error channel off. Its model is [`Model::ideal`] (see [`model_of`]), so
/// the twin runs the real simulation with noise disabled.
pub fn ideal_twin(plant: &Plant) -> Plant {
    Plant {
        target: IDEAL_TWIN.to_string(),
        kind: plant.kind.clone(),
        noise: NoiseProfile {
            t1_us: f64::INFINITY,
            t2_us: f64::INFINITY,
            t2star_us: f64::INFINITY,
            p1q: 0.0,
            p2q: 0.0,
            readout_p10: 0.0,
            readout_p01: 0.0,
            ..plant.noise.clone()
        },
    }
}

/// The model a plant runs under. The ideal twin also drops what the
/// controls add (residual excitation, the guard-off readout penalty, drive
/// miscalibration), which a noise profile alone cannot express.
fn model_of(plant: &Plant, c: &ControlProfile) -> Model {
    let m = Model::new(&plant.noise, c);
    if plant.target == IDEAL_TWIN {
        m.ideal()
    } else {
        m
    }
}

/// The model `plant` runs under as its parameters: the result's
/// noise.params, and the noise_profile an executor is sent
/// (docs/circuits.md). Infinite T1/T2 (the ideal twin) are null.
pub fn noise_params(plant: &Plant, c: &ControlProfile) -> Value {
    noise_json(plant, c)["params"].take()
}

fn noise_json(plant: &Plant, c: &ControlProfile) -> Value {
    let m = model_of(plant, c);
    json!({
        "model": "kraus_gad_dephasing_quasistatic_depolarizing_readout_v2",
        "params": {
            "t1_us": plant.noise.t1_us,
            "t2_us": plant.noise.t2_us,
            "t2star_us": plant.noise.t2star_us,
            "p1q": plant.noise.p1q,
            "p2q": plant.noise.p2q,
            "depolarizing_1q": m.dep_1q,
            "depolarizing_2q": m.dep_2q,
            "detuning_sigma_rad_per_ns": m.sigma_rad_per_ns,
            "readout_p10": m.readout_p10,
            "readout_p01": m.readout_p01,
            "residual_excited_population": m.p_excited,
            "gate_1q_ns": m.gate_1q_ns,
            "gate_2q_ns": m.gate_2q_ns,
            "readout_ns": m.readout_ns,
            "drive_bias": m.drive_bias,
            "thermal_guard_enabled": c.thermal_guard_enabled,
        },
        "descriptor": "generalized amplitude damping (gamma = 1 - exp(-t/T1)) and pure dephasing \
            (coherences ~ exp(-t/T2)) while idle on the critical path and for every physical \
            gate's duration; quasi-static Gaussian detuning (T2*) during free evolution, averaged \
            over a Gauss-Hermite grid; after each physical gate a depolarizing channel derived so \
            that the gate's average infidelity is the published p1q or p2q; virtual Z-type gates \
            are exact; per-qubit readout confusion on the outcome distribution",
    })
}

/// Why a simulator-only KPI is missing from a result whose counts came
/// from an executor.
fn sim_only_note(code: &str) -> String {
    let why = match code {
        "SIM_ONLY_STATE_FIDELITY" => {
            "state_fidelity needs the quantum state before readout, which an executor does not return; it is omitted"
        }
        "SIM_ONLY_BACKACTION" => {
            "backaction needs the quantum state the probe meets, which an executor does not return; it is omitted"
        }
        _ => "needs the simulator's quantum state; it is omitted",
    };
    format!("{code}: {why}")
}

fn assemble(req: &SimRequest, p: Parts) -> SimOutcome {
    let c = &req.controls;
    let mut warnings = p.warnings;
    let mut assumptions: Vec<String> = Vec::new();
    if p.executor_plant.is_some() {
        // The KPIs these codes describe are absent: say why, once each.
        warnings.extend(p.sim_only.iter().map(|code| sim_only_note(code)));
    } else {
        assumptions.extend(p.sim_only.iter().map(|s| s.to_string()));
        // backend_compare also runs on its second plant; either may be a provider's.
        let second = if req.preset == Preset::BackendCompare {
            req.compare_with.as_ref()
        } else {
            None
        };
        if std::iter::once(&req.plant)
            .chain(second)
            .any(|p| p.target != "sim_local" && p.target != IDEAL_TWIN)
        {
            assumptions.push("PROVIDER_NOISE_PROFILE_SIMULATED".to_string());
        }
    }
    let noise = noise_json(&req.plant, c);
    let dim = 1u64 << p.qubits;
    let (plant, sampling_model) = match p.executor_plant {
        Some(plant) => (plant, "executor_counts_bootstrap_xoshiro256plusplus_seeded"),
        None => (
            json!({"kind": req.plant.kind, "target": req.plant.target, "backend_id": req.plant.target}),
            "multinomial_xoshiro256plusplus_seeded",
        ),
    };
    let physics_contract = json!({
        "version": ENGINE_VERSION,
        "plant": plant,
        "state": {"model": "density_matrix_complex_f64", "n_qubits": p.qubits, "hilbert_dim": dim},
        "measurement": p.measurement,
        "sampling": {
            "model": sampling_model,
            "seed": req.seed,
            "shots_requested": req.shots,
            "shots_executed": req.shots,
            "bootstrap_resamples": super::estimators::BOOTSTRAP_RESAMPLES,
        },
        "noise": noise,
        "assumptions": assumptions,
        "kpi_definitions_version": KPI_DEFINITIONS_VERSION,
    });
    SimOutcome {
        engine_version: ENGINE_VERSION.to_string(),
        qubits_used: p.qubits,
        kpis: Kpis {
            fidelity: p.fidelity,
            latency_us: p.latency_us,
            backaction: p.backaction,
            raw_counts: p.raw_counts,
            expected_distribution: p.expected,
            shots_used: req.shots,
            shot_budget: req.shots,
            status: p.status.to_string(),
        },
        shots: Shots {
            requested: req.shots,
            executed: req.shots,
        },
        measurement: p.measurement,
        noise,
        assumptions,
        physics_contract,
        kpi_details: p.details,
        artifacts: p.artifacts,
        warnings,
        workflow_trace: p.trace,
    }
}

fn projective_measurement(n: u32) -> Value {
    json!({
        "model": "projective_z_with_readout_confusion",
        "basis": "Z",
        "povm": "computational-basis projectors followed by per-qubit confusion matrix [[1-p10, p01], [p10, 1-p01]]",
        "descriptor": format!("{n}-qubit Z readout at the end of the circuit; bit strings list qubit 0 leftmost"),
    })
}

fn count_map(counts: &[u64], n: usize) -> BTreeMap<String, u64> {
    counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, &c)| (bitstring(i, n), c))
        .collect()
}

fn dist_map(p: &[f64], n: usize) -> BTreeMap<String, f64> {
    p.iter()
        .enumerate()
        .filter(|(_, &v)| v > 1e-12)
        .map(|(i, &v)| (bitstring(i, n), v))
        .collect()
}

/// One simulated circuit: its outcome distribution, the ideal one, the
/// state fidelity before readout, the modeled time of a shot and the
/// detuning grid its shots were averaged over.
struct Simulated {
    pub dist: Vec<f64>,
    pub ideal: Vec<f64>,
    pub state_fidelity: f64,
    pub shot_ns: f64,
    pub grid: Grid,
}

/// The noise-free run comes first: it has the same durations, so it says
/// how long the circuit is, which sets how fine the detuning grid must be.
fn simulate(n: usize, ops: &[Op], model: &Model) -> Simulated {
    let mut ideal = Register::new(n, model.ideal());
    ideal.run(ops);
    let grid = Grid::new(model, n, ideal.duration_ns());
    let noisy = averaged(n, model, &grid, |r| {
        r.run(ops);
        r.sync_all();
    });
    Simulated {
        dist: noisy.readout_distribution(),
        ideal: ideal.populations(),
        state_fidelity: noisy.overlap(&ideal),
        shot_ns: noisy.shot_time_ns(),
        grid,
    }
}

/// One circuit of a preset as synqc's engine simulates it: what the Qiskit
/// Aer cross-check compares, circuit by circuit (`synqc physics circuits`).
pub struct ExactCircuit {
    pub job: CircuitJob,
    /// Exact outcome distribution, readout confusion included; index =
    /// engine basis index (qubit 0 the most significant bit).
    pub dist: Vec<f64>,
    /// The noise-free distribution of the same circuit.
    pub ideal: Vec<f64>,
    /// Gauss-Hermite nodes per qubit of the detuning grid, and how far
    /// that grid is from the Gaussian average ([`Grid`]).
    pub nodes: usize,
    pub quadrature_error: f64,
}

/// Every circuit `req` runs, simulated on its plant's model (the latency
/// preset's is one X on qubit 0, without the loop it measures around it).
/// dpd_demo's is the two-qubit form it sends to an executor, its probe an
/// ancilla; on the engine it runs the probe instrument itself.
pub fn exact_circuits(req: &SimRequest) -> Result<Vec<ExactCircuit>, SimError> {
    validate(req)?;
    let jobs = match req.preset {
        Preset::Latency => vec![CircuitJob {
            name: "latency_x".into(),
            target: req.plant.target.clone(),
            qubits: 1,
            ops: vec![Op::X(0)],
            shots: req.shots,
        }],
        _ => req.preset.jobs(req)?,
    };
    Ok(jobs
        .into_iter()
        .map(|job| {
            let sim = simulate(
                job.qubits,
                &job.ops,
                &model_of(plant_of(req, &job), &req.controls),
            );
            ExactCircuit {
                dist: sim.dist,
                ideal: sim.ideal,
                nodes: sim.grid.nodes,
                quadrature_error: sim.grid.error,
                job,
            }
        })
        .collect())
}

/// Distribution fidelity of sampled counts with its score interval and the
/// stderr of its multinomial bootstrap.
fn fidelity_with_spread(rng: &mut SimRng, counts: &[u64], q: &[f64]) -> (f64, Option<Spread>) {
    let f = dist_fidelity(counts, q);
    let (pc, pq) = pool_off_support(counts, q);
    let reps = bootstrap_counts(rng, &pc, |c| dist_fidelity(c, &pq));
    (f, proportion_spread(f, counts.iter().sum(), reps))
}

fn standard_trace(shots: u64, latency_us: f64, on_engine: bool) -> Vec<TraceStep> {
    let (evolve, sample) = if on_engine {
        (
            "density-matrix evolution with Kraus noise",
            "multinomial shots on the plant (modeled plant time)",
        )
    } else {
        (
            "noise-free reference run of the same circuits",
            "shots on the executor (modeled plant time)",
        )
    };
    trace(&[
        (
            "compile",
            "Compile",
            "map the preset to gates on the target's noise model",
            0.0,
        ),
        ("evolve", "Evolve", evolve, 0.0),
        ("sample", "Sample", sample, shots as f64 * latency_us / 1e3),
        (
            "estimate",
            "Estimate",
            "KPIs with 95% score intervals; stderr from a 200-resample multinomial bootstrap",
            0.0,
        ),
    ])
}

/// The sim_local model with the default controls, for the presets' tests.
#[cfg(test)]
fn sim_local_model() -> Model {
    Model::new(
        &NoiseProfile::builtin("sim_local").expect("builtin"),
        &ControlProfile::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shortfall_warns_and_fails_beyond_noise_and_floor() {
        let at = |measured: f64, stderr: f64| judge("fidelity", measured, Some(stderr), 0.95).status;
        // Small stderr: the floors decide.
        assert_eq!(at(0.95, 0.001), "ok");
        assert_eq!(at(0.935, 0.001), "ok");
        assert_eq!(at(0.925, 0.001), "warn");
        assert_eq!(at(0.86, 0.001), "warn");
        assert_eq!(at(0.84, 0.001), "fail");
        // Large stderr: the sigmas decide (3 and 5 stderr of 0.03).
        assert_eq!(at(0.87, 0.03), "ok");
        assert_eq!(at(0.85, 0.03), "warn");
        assert_eq!(at(0.79, 0.03), "fail");
        // Better than predicted is no fault.
        assert_eq!(at(1.0, 0.0), "ok");
        let v = judge("success_probability", 0.72, Some(0.01), 0.80);
        assert_eq!(v.status, "warn");
        let text = v.warning.unwrap_or_default();
        assert!(
            text.contains("success_probability 0.7200 is 0.0800 below the 0.8000"),
            "{text}"
        );
        assert_eq!(v.reference["reference"], 0.80);
        assert!(judge("fidelity", 0.95, None, 0.95).warning.is_none());
    }

    #[test]
    fn probe_rule() {
        let c = ControlProfile::default();
        assert_eq!(backaction_status(0.5, &c), "ok");
        let open = ControlProfile {
            safety_clamp_ns: 0.0,
            ..Default::default()
        };
        assert_eq!(backaction_status(0.5, &open), "warn");
        let hot = ControlProfile {
            thermal_guard_enabled: false,
            ..Default::default()
        };
        assert_eq!(backaction_status(0.33, &hot), "warn");
        assert_eq!(backaction_status(0.31, &hot), "ok");
        assert_eq!(worse("ok", "warn"), "warn");
        assert_eq!(worse("fail", "warn"), "fail");
        assert_eq!(worse("ok", "ok"), "ok");
    }

    fn run_on(preset: Preset, target: &str, seed: u64, controls: ControlProfile) -> SimOutcome {
        let mut r = crate::sim::tests::req(preset, target, 2048, seed);
        r.controls = controls;
        crate::sim::run(&r, None, &|| false).expect("runs")
    }

    /// At the default budget with default controls every built-in target
    /// performs as its profile predicts.
    #[test]
    fn calibrated_runs_are_ok_on_every_target() {
        for target in crate::sim::tests::BUILTIN_TARGETS {
            for preset in [Preset::HelloQuantumSim, Preset::GroverDemo] {
                for seed in 1..=20 {
                    let o = run_on(preset, target, seed, ControlProfile::default());
                    assert_eq!(
                        o.kpis.status, "ok",
                        "{preset:?} {target} {seed}: {:?}",
                        o.warnings
                    );
                    let r = &o.artifacts["status_reference"];
                    assert!(r["reference"].as_f64().is_some_and(|v| v > 0.0), "{r}");
                }
            }
            // health judges its fits against the profile instead.
            for seed in 1..=10 {
                let o = run_on(Preset::Health, target, seed, ControlProfile::default());
                assert_eq!(o.kpis.status, "ok", "health {target} {seed}: {:?}", o.warnings);
                assert_eq!(o.artifacts["profile_check"]["status"], "ok");
            }
        }
    }

    #[test]
    fn miscalibration_warns_or_fails() {
        let bias = |drive_bias: f64| ControlProfile {
            drive_bias,
            ..Default::default()
        };
        let hot = ControlProfile {
            thermal_guard_enabled: false,
            ..Default::default()
        };
        for target in ["sim_local", "ibm_quantum", "rigetti_forest"] {
            for preset in [
                Preset::HelloQuantumSim,
                Preset::GroverDemo,
                Preset::BackendCompare,
            ] {
                let o = run_on(preset, target, 5, bias(0.7));
                assert_ne!(o.kpis.status, "ok", "{preset:?} {target}: {:?}", o.warnings);
                assert!(
                    o.warnings.iter().any(|w| w.starts_with("status ")),
                    "{:?}",
                    o.warnings
                );
                let o = run_on(preset, target, 5, bias(0.5));
                assert_eq!(o.kpis.status, "fail", "{preset:?} {target}: {:?}", o.warnings);
            }
            let o = run_on(Preset::HelloQuantumSim, target, 5, hot.clone());
            assert_ne!(
                o.kpis.status, "ok",
                "guard off on {target}: {}",
                o.artifacts["status_reference"]
            );
        }
    }
}
