//! The presets (physics.md "Presets") and the plumbing every result shares:
//! KPI details, status, assumptions, the physics contract and the trace.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::engine::{bitstring, Model, Op, Register};
use super::estimators::{
    bootstrap_counts, bootstrap_samples, dist_fidelity, for_each_resample, median, multinomial,
    pool_off_support, quantile, rng_for, spread, Multinomial, SimRng, Spread,
};
use super::{
    KpiDetail, Kpis, LoopProbe, NoiseProfile, Plant, Preset, Shots, SimError, SimOutcome, SimRequest,
    TraceStep, ENGINE_VERSION, KPI_DEFINITIONS_VERSION,
};
use crate::controls::ControlProfile;

pub(super) const DEF_REF: &str = "physics.md#kpis";

/// Shots each latency probe circuit carries, and the most probes one run
/// makes (each is a full trip through the appliance's queue and store).
pub const LATENCY_SHOTS_PER_PROBE: u64 = 64;
pub const LATENCY_MAX_PROBES: u64 = 32;
pub const LATENCY_MIN_PROBES: u64 = 8;

/// fidelity below this fails the run; below WARN it warns (physics.md).
const FAIL_BELOW: f64 = 0.90;
const WARN_BELOW: f64 = 0.94;
const BACKACTION_WARN: f64 = 0.32;

pub(super) fn check(cancelled: &dyn Fn() -> bool) -> Result<(), SimError> {
    if cancelled() {
        Err(SimError::Cancelled)
    } else {
        Ok(())
    }
}

pub(super) fn status(fidelity: f64, backaction: f64, c: &ControlProfile) -> &'static str {
    let unguarded = !c.thermal_guard_enabled || c.safety_clamp_ns == 0.0;
    if fidelity < FAIL_BELOW {
        "fail"
    } else if fidelity < WARN_BELOW || (backaction > BACKACTION_WARN && unguarded) {
        "warn"
    } else {
        "ok"
    }
}

pub(super) fn kpi(
    name: &str,
    value: f64,
    def: &str,
    kind: &str,
    units: &str,
    s: Option<Spread>,
) -> KpiDetail {
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
pub(super) fn state_fidelity_kpi(value: f64) -> KpiDetail {
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
pub(super) fn backaction_kpi(value: f64) -> KpiDetail {
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
pub(super) fn latency_model_kpi(value: f64) -> KpiDetail {
    kpi("latency_us", value, "latency_model_v1", "model", "us", None)
}

pub(super) fn trace(steps: &[(&str, &str, &str, f64)]) -> Vec<TraceStep> {
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
pub(super) struct Parts {
    pub qubits: u32,
    pub fidelity: f64,
    pub latency_us: f64,
    pub backaction: f64,
    pub raw_counts: BTreeMap<String, u64>,
    pub expected: BTreeMap<String, f64>,
    pub details: Vec<KpiDetail>,
    pub measurement: Value,
    pub sim_only: Vec<&'static str>,
    pub artifacts: Value,
    pub warnings: Vec<String>,
    pub trace: Vec<TraceStep>,
}

/// compare_with's name for the noise-free twin of the run's own target
/// (api.md): what backend_compare compares with when no other target is
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
pub(super) fn model_of(plant: &Plant, c: &ControlProfile) -> Model {
    let m = Model::new(&plant.noise, c);
    if plant.target == IDEAL_TWIN {
        m.ideal()
    } else {
        m
    }
}

pub(super) fn noise_json(plant: &Plant, c: &ControlProfile) -> Value {
    let m = model_of(plant, c);
    json!({
        "model": "kraus_gad_dephasing_depolarizing_readout_v1",
        "params": {
            "t1_us": plant.noise.t1_us,
            "t2_us": plant.noise.t2_us,
            "p1q": m.p1q,
            "p2q": m.p2q,
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
            (coherences ~ exp(-t/T2)) while idle on the critical path; depolarizing after each \
            physical gate (p1q, p2q); virtual Z-type gates are exact; per-qubit readout confusion \
            on the outcome distribution",
    })
}

pub(super) fn assemble(req: &SimRequest, p: Parts) -> SimOutcome {
    let c = &req.controls;
    let mut assumptions: Vec<String> = p.sim_only.iter().map(|s| s.to_string()).collect();
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
    let noise = noise_json(&req.plant, c);
    let dim = 1u64 << p.qubits;
    let physics_contract = json!({
        "version": ENGINE_VERSION,
        "plant": {"kind": req.plant.kind, "target": req.plant.target, "backend_id": req.plant.target},
        "state": {"model": "density_matrix_complex_f64", "n_qubits": p.qubits, "hilbert_dim": dim},
        "measurement": p.measurement,
        "sampling": {
            "model": "multinomial_xoshiro256plusplus_seeded",
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
            status: status(p.fidelity, p.backaction, c).to_string(),
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
        warnings: p.warnings,
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

pub(super) fn count_map(counts: &[u64], n: usize) -> BTreeMap<String, u64> {
    counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, &c)| (bitstring(i, n), c))
        .collect()
}

pub(super) fn dist_map(p: &[f64], n: usize) -> BTreeMap<String, f64> {
    p.iter()
        .enumerate()
        .filter(|(_, &v)| v > 1e-12)
        .map(|(i, &v)| (bitstring(i, n), v))
        .collect()
}

/// One simulated circuit: its outcome distribution, the ideal one, the
/// state fidelity before readout and the modeled time of a shot.
pub(super) struct Simulated {
    pub dist: Vec<f64>,
    pub ideal: Vec<f64>,
    pub state_fidelity: f64,
    pub shot_ns: f64,
}

pub(super) fn simulate(n: usize, ops: &[Op], model: &Model) -> Simulated {
    let mut noisy = Register::new(n, model.clone());
    noisy.run(ops);
    noisy.sync_all();
    let mut ideal = Register::new(n, model.ideal());
    ideal.run(ops);
    Simulated {
        dist: noisy.readout_distribution(),
        ideal: ideal.populations(),
        state_fidelity: noisy.overlap(&ideal),
        shot_ns: noisy.shot_time_ns(),
    }
}

/// Distribution fidelity of sampled counts with its multinomial bootstrap.
fn fidelity_with_spread(rng: &mut SimRng, counts: &[u64], q: &[f64]) -> (f64, Option<Spread>) {
    let f = dist_fidelity(counts, q);
    let (pc, pq) = pool_off_support(counts, q);
    (f, spread(bootstrap_counts(rng, &pc, |c| dist_fidelity(c, &pq))))
}

fn bell_ops() -> Vec<Op> {
    vec![Op::H(0), Op::Cx(0, 1)]
}

pub(super) fn hello(req: &SimRequest, cancelled: &dyn Fn() -> bool) -> Result<SimOutcome, SimError> {
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

fn standard_trace(shots: u64, latency_us: f64) -> Vec<TraceStep> {
    trace(&[
        (
            "compile",
            "Compile",
            "map the preset to gates on the target's noise model",
            0.0,
        ),
        (
            "evolve",
            "Evolve",
            "density-matrix evolution with Kraus noise",
            0.0,
        ),
        (
            "sample",
            "Sample",
            "multinomial shots on the plant (modeled plant time)",
            shots as f64 * latency_us / 1e3,
        ),
        (
            "estimate",
            "Estimate",
            "KPIs with a 200-resample multinomial bootstrap",
            0.0,
        ),
    ])
}

pub(super) fn backend_compare(
    req: &SimRequest,
    cancelled: &dyn Fn() -> bool,
) -> Result<SimOutcome, SimError> {
    let Some(second) = req.compare_with.as_ref() else {
        return Err(SimError::Invalid(
            "backend_compare needs a second target (compare_with)".into(),
        ));
    };
    let (n1, n2) = super::compare_split(req.shots);
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
    let timer = super::estimators::BootstrapTimer::start();
    let (m1, m2) = (Multinomial::new(n1, &p1), Multinomial::new(n2, &p2));
    let (mut r1, mut r2, mut rd) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..super::estimators::BOOTSTRAP_RESAMPLES {
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

/// Full correction angle for a probe of strength kappa: the outcome-k branch
/// of the equatorial state is tilted by asin(kappa) towards |k>; an x
/// rotation of that angle (sign by outcome) puts it back on the equator.
pub fn dpd_correction_angle(kappa: f64, outcome: usize) -> f64 {
    let a = kappa.clamp(0.0, 1.0).asin();
    if outcome == 0 {
        a
    } else {
        -a
    }
}

/// The share of the dpd shot time that the control loop scales.
pub fn loop_latency_factor(gain: f64) -> f64 {
    1.0 - (0.04 * gain).min(0.25)
}

struct DpdState {
    /// Joint outcome probabilities (probe k, final bit b) at index 2k + b.
    joint: Vec<f64>,
    state_fidelity: f64,
    backaction: f64,
    /// (time outside the loop, loop time) in ns.
    times: (f64, f64),
    conditional: [[f64; 2]; 2],
    probe_p: [f64; 2],
}

fn dpd_state(model: &Model, c: &ControlProfile, gain: f64) -> DpdState {
    use std::f64::consts::FRAC_PI_2;
    let kappa = c.probe_kappa();
    let window = c.effective_probe_window_ns();
    let mut reg = Register::new(1, model.clone());
    reg.apply(&Op::Rx(0, FRAC_PI_2));
    let backaction = reg.probe_backaction(0, kappa);
    let mut branches = reg.probe(0, kappa, window);
    for (k, b) in branches.iter_mut().enumerate() {
        b.apply(&Op::Rx(0, gain * dpd_correction_angle(kappa, k)));
        b.apply(&Op::Rx(0, FRAC_PI_2));
        b.sync_all();
    }
    let loop_ns = window + model.gate_1q_ns;
    let total = branches[0].shot_time_ns();
    let mut joint = Vec::with_capacity(4);
    let mut conditional = [[0.0; 2]; 2];
    let mut probe_p = [0.0; 2];
    for (k, b) in branches.iter().enumerate() {
        let d = b.readout_distribution();
        probe_p[k] = b.trace();
        for bit in 0..2 {
            joint.push(d[bit]);
            conditional[k][bit] = if probe_p[k] > 0.0 {
                d[bit] / probe_p[k]
            } else {
                0.0
            };
        }
    }
    let [b0, b1] = branches;
    let mut sum = b0;
    sum.add(&b1);
    // Ideal final state |1> (the ideal drive-drive is rx(pi)).
    let mut ideal = Register::new(1, model.ideal());
    ideal.apply(&Op::Rx(0, std::f64::consts::PI));
    DpdState {
        joint,
        state_fidelity: sum.overlap(&ideal),
        backaction,
        times: (total - loop_ns, loop_ns),
        conditional,
        probe_p,
    }
}

pub(super) fn dpd(req: &SimRequest, cancelled: &dyn Fn() -> bool) -> Result<SimOutcome, SimError> {
    check(cancelled)?;
    let c = &req.controls;
    let model = Model::new(&req.plant.noise, c);
    let st = dpd_state(&model, c, c.feedback_gain);
    let mut rng = rng_for(req.seed);
    let joint_counts = multinomial(&mut rng, req.shots, &st.joint);
    let marginal = |j: &[u64]| [j[0] + j[2], j[1] + j[3]];
    let q = [0.0, 1.0];
    let fid = dist_fidelity(&marginal(&joint_counts), &q);
    let fs = spread(bootstrap_counts(&mut rng, &joint_counts, |j| {
        dist_fidelity(&marginal(j), &q)
    }));
    let latency_us = (st.times.0 + st.times.1 * loop_latency_factor(c.feedback_gain)) / 1e3;
    let kappa = c.probe_kappa();
    let counts = marginal(&joint_counts);
    let mut warnings = vec![];
    if c.probe_window_ns > c.effective_probe_window_ns() {
        warnings.push(format!(
            "probe window {} ns capped by the safety clamp at {} ns",
            c.probe_window_ns,
            c.effective_probe_window_ns()
        ));
    }
    if st.backaction > BACKACTION_WARN {
        warnings.push(format!(
            "probe backaction {:.3} exceeds {BACKACTION_WARN}",
            st.backaction
        ));
    }
    let cond_obs = |k: usize| {
        let n = joint_counts[2 * k] + joint_counts[2 * k + 1];
        json!({"0": joint_counts[2 * k], "1": joint_counts[2 * k + 1], "shots": n})
    };
    Ok(assemble(
        req,
        Parts {
            qubits: 1,
            fidelity: fid,
            latency_us,
            backaction: st.backaction,
            raw_counts: count_map(&counts, 1),
            expected: dist_map(&q, 1),
            details: vec![
                kpi("fidelity", fid, "fidelity_dist_v1", "estimate", "ratio", fs),
                state_fidelity_kpi(st.state_fidelity),
                backaction_kpi(st.backaction),
                latency_model_kpi(latency_us),
            ],
            measurement: json!({
                "model": "weak_z_probe_then_projective_z",
                "basis": "Z",
                "povm": "probe: M0 = sqrt((1+k)/2)|0><0| + sqrt((1-k)/2)|1><1|, M1 = sqrt((1-k)/2)|0><0| + sqrt((1+k)/2)|1><1|; final: Z projectors with readout confusion",
                "descriptor": format!("probe kappa {kappa:.4} from a {:.1} ns window", c.effective_probe_window_ns()),
                "kappa": kappa,
            }),
            sim_only: vec!["SIM_ONLY_STATE_FIDELITY", "SIM_ONLY_BACKACTION"],
            artifacts: json!({
                "circuit": ["rx(pi/2*bias) q0", "probe(kappa) q0", "rx(+-gain*asin(kappa)*bias) q0 by probe outcome", "rx(pi/2*bias) q0", "measure q0"],
                "kappa": kappa,
                "probe_window_ns": c.effective_probe_window_ns(),
                "feedback_gain": c.feedback_gain,
                "correction_angle_rad": {"0": c.feedback_gain * dpd_correction_angle(kappa, 0), "1": c.feedback_gain * dpd_correction_angle(kappa, 1)},
                "probe_outcome_counts": {"0": joint_counts[0] + joint_counts[1], "1": joint_counts[2] + joint_counts[3]},
                "probe_outcome_probabilities": {"0": st.probe_p[0], "1": st.probe_p[1]},
                "conditional_counts": {"0": cond_obs(0), "1": cond_obs(1)},
                "conditional_distributions": {
                    "0": {"0": st.conditional[0][0], "1": st.conditional[0][1]},
                    "1": {"0": st.conditional[1][0], "1": st.conditional[1][1]},
                },
                "loop_latency_factor": loop_latency_factor(c.feedback_gain),
                "loop_time_ns": st.times.1,
            }),
            warnings,
            trace: trace(&[
                ("drive", "Drive", "rx(pi/2) on q0", 0.0),
                (
                    "probe",
                    "Probe",
                    "weak Z measurement; backaction on the met state",
                    0.0,
                ),
                (
                    "feedback",
                    "Feedback",
                    "outcome-dependent correction scaled by feedback_gain",
                    0.0,
                ),
                (
                    "sample",
                    "Sample",
                    "drive, readout and multinomial shots",
                    req.shots as f64 * latency_us / 1e3,
                ),
                (
                    "estimate",
                    "Estimate",
                    "KPIs with a 200-resample multinomial bootstrap",
                    0.0,
                ),
            ]),
        },
    ))
}

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

pub(super) fn grover_ops(marked: &str) -> Vec<Op> {
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

pub(super) fn grover(req: &SimRequest, cancelled: &dyn Fn() -> bool) -> Result<SimOutcome, SimError> {
    let marked = req.marked.clone().unwrap_or_else(|| "101".to_string());
    if !super::valid_marked(&marked) {
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

/// Number of loop probes a latency run makes for a budget.
pub fn latency_probes(shots: u64) -> u64 {
    (shots / LATENCY_SHOTS_PER_PROBE).clamp(LATENCY_MIN_PROBES, LATENCY_MAX_PROBES)
}

pub(super) fn latency(
    req: &SimRequest,
    probe: Option<&mut dyn LoopProbe>,
    cancelled: &dyn Fn() -> bool,
) -> Result<SimOutcome, SimError> {
    let Some(probe) = probe else {
        return Err(SimError::Invalid(
            "the latency preset needs the appliance loop probe".into(),
        ));
    };
    let k = latency_probes(req.shots);
    let model = Model::new(&req.plant.noise, &req.controls);
    let ops = [Op::X(0)];
    let sim = simulate(1, &ops, &model);
    let mut rng = rng_for(req.seed);
    let mut samples = Vec::with_capacity(k as usize);
    let mut counts = vec![0u64; 2];
    for i in 0..k {
        check(cancelled)?;
        samples.push(probe.round_trip_us()?);
        // Shots are spread over the K probe circuits, remainder to the first.
        let n = req.shots / k + u64::from(i < req.shots % k);
        for (t, c) in counts.iter_mut().zip(multinomial(&mut rng, n, &sim.dist)) {
            *t += c;
        }
    }
    let (fid, fs) = fidelity_with_spread(&mut rng, &counts, &sim.ideal);
    let p50 = median(&mut samples.clone());
    let p95 = quantile(&mut samples.clone(), 95.0);
    let s50 = spread(bootstrap_samples(&mut rng, &samples, median));
    let s95 = spread(bootstrap_samples(&mut rng, &samples, |x| quantile(x, 95.0)));
    let model_us = sim.shot_ns / 1e3;
    let total_ms: f64 = samples.iter().sum::<f64>() / 1e3;
    Ok(assemble(
        req,
        Parts {
            qubits: 1,
            fidelity: fid,
            latency_us: p50,
            backaction: 0.0,
            raw_counts: count_map(&counts, 1),
            expected: dist_map(&sim.ideal, 1),
            details: vec![
                kpi("fidelity", fid, "fidelity_dist_v1", "estimate", "ratio", fs),
                kpi("latency_us", p50, "latency_loop_v1", "measured", "us", s50),
                kpi("latency_p95_us", p95, "latency_loop_v1", "measured", "us", s95),
                kpi(
                    "latency_model_us",
                    model_us,
                    "latency_model_v1",
                    "model",
                    "us",
                    None,
                ),
                state_fidelity_kpi(sim.state_fidelity),
                backaction_kpi(0.0),
            ],
            measurement: projective_measurement(1),
            sim_only: vec!["SIM_ONLY_STATE_FIDELITY"],
            artifacts: json!({
                "probes": k,
                "probe_circuit": ["x q0", "measure q0"],
                "shots_per_probe": req.shots / k,
                "loop_samples_us": samples,
                "p50_us": p50,
                "p95_us": p95,
                "k_rule": "K = clamp(shots / 64, 8, 32): one 64-shot probe circuit per round trip",
            }),
            warnings: vec![],
            trace: trace(&[
                (
                    "probe",
                    "Loop probes",
                    "tiny circuits through the queue-execute-store loop",
                    total_ms,
                ),
                (
                    "estimate",
                    "Estimate",
                    "p50/p95 with a bootstrap over the round trips",
                    0.0,
                ),
            ]),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model::new(
            &NoiseProfile::builtin("sim_local").expect("builtin"),
            &ControlProfile::default(),
        )
    }

    #[test]
    fn grover_ideal_success_matches_theory_for_every_marked_state() {
        // sin^2(5 theta), sin theta = 1/sqrt(8).
        let theta = (1.0f64 / 8.0).sqrt().asin();
        let expect = (5.0 * theta).sin().powi(2);
        for m in 0..8 {
            let s = bitstring(m, 3);
            let sim = simulate(3, &grover_ops(&s), &model());
            assert!((sim.ideal[m] - expect).abs() < 1e-12, "{s}: {}", sim.ideal[m]);
            assert!(
                sim.dist[m] < expect && sim.dist[m] > 0.5,
                "noise lowers success: {}",
                sim.dist[m]
            );
        }
    }

    #[test]
    fn full_feedback_restores_the_equator_without_noise() {
        let ideal = model().ideal();
        for window in [50.0, 300.0, 2000.0] {
            let c = ControlProfile {
                probe_window_ns: window,
                safety_clamp_ns: 0.0,
                ..Default::default()
            };
            let st = dpd_state(&ideal, &c, 1.0);
            assert!((st.joint[1] + st.joint[3] - 1.0).abs() < 1e-12, "{:?}", st.joint);
            let half = dpd_state(&ideal, &c, 0.5);
            assert!(half.joint[1] + half.joint[3] < 1.0 - 1e-6);
        }
    }

    #[test]
    fn status_thresholds() {
        let c = ControlProfile::default();
        assert_eq!(status(0.89, 0.0, &c), "fail");
        assert_eq!(status(0.93, 0.0, &c), "warn");
        assert_eq!(status(0.95, 0.5, &c), "ok");
        let open = ControlProfile {
            safety_clamp_ns: 0.0,
            ..Default::default()
        };
        assert_eq!(status(0.95, 0.5, &open), "warn");
        let hot = ControlProfile {
            thermal_guard_enabled: false,
            ..Default::default()
        };
        assert_eq!(status(0.95, 0.33, &hot), "warn");
        assert_eq!(status(0.95, 0.31, &hot), "ok");
    }

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
