//! dpd_demo: a weak probe of an equatorial qubit and the feedback that
//! corrects its backaction, scaled by the control profile's gain.

use serde_json::{json, Value};

use super::observed::{CircuitJob, Observed};
use super::{
    assemble, backaction_kpi, backaction_status, calibrated, check, count_map, dist_map, judge, kpi,
    latency_model_kpi, model_of, simulate, state_fidelity_kpi, trace, worse, Parts, BACKACTION_WARN,
};
use crate::controls::ControlProfile;
use crate::sim::engine::{Grid, Model, Op, Register};
use crate::sim::estimators::{
    bootstrap_counts, dist_fidelity, multinomial, proportion_spread, rng_for, SimRng,
};
use crate::sim::{SimError, SimOutcome, SimRequest};

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
    // One shot at a given detuning: the state the probe meets, and the two
    // probe branches after the feedback and the second drive.
    let shot = |mut reg: Register| -> (Register, [Register; 2]) {
        reg.apply(&Op::Rx(0, FRAC_PI_2));
        let mut branches = reg.probe(0, kappa, window);
        for (k, b) in branches.iter_mut().enumerate() {
            b.apply(&Op::Rx(0, gain * dpd_correction_angle(kappa, k)));
            b.apply(&Op::Rx(0, FRAC_PI_2));
            b.sync_all();
        }
        (reg, branches)
    };
    // The noise-free shot has the same durations: it sets the detuning grid.
    let duration = shot(Register::new(1, model.ideal())).1[0].duration_ns();
    let grid = Grid::new(model, 1, duration);
    let mut average: Option<(Register, [Register; 2])> = None;
    for (detuning, w) in grid.points() {
        let (met, branches) = shot(Register::with_detuning(1, model.clone(), detuning.clone()));
        match &mut average {
            None => average = Some((met.scaled(*w), branches.map(|b| b.scaled(*w)))),
            Some((m, b)) => {
                m.add_scaled(&met, *w);
                b[0].add_scaled(&branches[0], *w);
                b[1].add_scaled(&branches[1], *w);
            }
        }
    }
    let (met, branches) = average.expect("a grid has at least one point");
    let backaction = met.probe_backaction(0, kappa);
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

/// The probe as a circuit an executor can run. The weak Z probe is an
/// ancilla (qubit 1) rotated by an angle that depends on the system
/// (qubit 0): ry(acos kappa) and a controlled ry(pi - 2 acos kappa) leave
/// amplitudes sqrt((1 +- kappa)/2) on the ancilla, so reading the ancilla
/// applies exactly M0 / M1 to the system. The feedback the simulator applies
/// per probe outcome becomes a rotation controlled by the ancilla (deferred
/// measurement: no mid-circuit readout or classical branching is needed), and
/// both qubits are read at the end: (probe outcome k, final bit b) is the
/// joint outcome the simulator samples. The probe window is an idle of the
/// system qubit, as in the simulator.
pub(super) fn probe_circuit_ops(c: &ControlProfile) -> Vec<Op> {
    use std::f64::consts::{FRAC_PI_2, PI};
    let kappa = c.probe_kappa();
    let a0 = kappa.clamp(-1.0, 1.0).acos();
    let a1 = PI - a0;
    let correction = c.feedback_gain * dpd_correction_angle(kappa, 0);
    let mut ops = vec![Op::Rx(0, FRAC_PI_2), Op::Ry(1, a0)];
    ops.extend(controlled_ry(0, 1, a1 - a0));
    ops.push(Op::Delay(0, c.effective_probe_window_ns()));
    // +correction after outcome 0, -correction after outcome 1.
    ops.push(Op::Rx(0, correction));
    ops.extend(controlled_rx(1, 0, -2.0 * correction));
    ops.push(Op::Rx(0, FRAC_PI_2));
    ops
}

/// ry(theta) on `t` when `c` is |1>: ry(theta/2), cx, ry(-theta/2), cx.
fn controlled_ry(c: usize, t: usize, theta: f64) -> Vec<Op> {
    vec![
        Op::Ry(t, theta / 2.0),
        Op::Cx(c, t),
        Op::Ry(t, -theta / 2.0),
        Op::Cx(c, t),
    ]
}

/// rx(theta) on `t` when `c` is |1>: the controlled ry in the frame turned
/// by a quarter turn about z (rx = rz(-pi/2) ry rz(pi/2)).
fn controlled_rx(c: usize, t: usize, theta: f64) -> Vec<Op> {
    use std::f64::consts::FRAC_PI_2;
    let mut ops = vec![Op::Rz(t, FRAC_PI_2)];
    ops.extend(controlled_ry(c, t, theta));
    ops.push(Op::Rz(t, -FRAC_PI_2));
    ops
}

/// One two-qubit circuit (system and probe ancilla) with every shot.
pub(in crate::sim) fn circuits(req: &SimRequest) -> Result<Vec<CircuitJob>, SimError> {
    Ok(vec![CircuitJob {
        name: "dpd_probe_feedback".into(),
        target: req.plant.target.clone(),
        qubits: 2,
        ops: probe_circuit_ops(&req.controls),
        shots: req.shots,
    }])
}

/// The simulator runs the probe as the instrument itself (one qubit, no
/// ancilla), which is the physics the dpd KPIs are defined on; the circuit
/// form exists for executors and gives the same joint distribution without
/// noise, but a noisy ancilla and its two-qubit gates add errors of their
/// own, so the simulator keeps the instrument.
pub(in crate::sim) fn dpd(req: &SimRequest, cancelled: &dyn Fn() -> bool) -> Result<SimOutcome, SimError> {
    check(cancelled)?;
    let c = &req.controls;
    let model = Model::new(&req.plant.noise, c);
    let st = dpd_state(&model, c, c.feedback_gain);
    let cal = calibrated(c);
    let reference = if cal == *c {
        final_one(&st.joint)
    } else {
        final_one(&dpd_state(&Model::new(&req.plant.noise, &cal), &cal, c.feedback_gain).joint)
    };
    let mut rng = rng_for(req.seed);
    let joint_counts = multinomial(&mut rng, req.shots, &st.joint);
    Ok(estimate(req, &st, joint_counts, rng, None, reference))
}

/// The probability that the final bit reads 1 (the ideal outcome) from the
/// instrument's joint (probe outcome k, final bit b) distribution at 2k + b.
fn final_one(joint: &[f64]) -> f64 {
    joint[1] + joint[3]
}

/// `counts` of the circuit of [`circuits`]: index 2b + k with b the system's
/// final bit (qubit 0) and k the probe ancilla's (qubit 1).
pub(in crate::sim) fn from_counts(
    req: &SimRequest,
    counts: &[Vec<u64>],
    plant: Value,
) -> Result<SimOutcome, SimError> {
    let jobs = circuits(req)?;
    let c = &req.controls;
    let model = model_of(&req.plant, c);
    let obs = Observed::from_executor(&jobs, counts, |_| model.clone(), rng_for(req.seed), plant)?;
    let circuit_counts = &obs.counts[0];
    // The simulator's layout: probe outcome k major, final bit b minor.
    let joint: Vec<u64> = (0..4).map(|j| circuit_counts[2 * (j % 2) + j / 2]).collect();
    // The time model and the probe strength are the plant's, wherever the
    // shots ran; the state-dependent parts of `st` are not reported.
    let st = dpd_state(&model, c, c.feedback_gain);
    // The executor ran the ancilla circuit, whose own gates add errors the
    // instrument does not have: the reference is that circuit's exact
    // chance of a final 1 (circuit index 2b + k).
    let cal = calibrated(c);
    let predicted = simulate(2, &probe_circuit_ops(&cal), &model_of(&req.plant, &cal)).dist;
    Ok(estimate(
        req,
        &st,
        joint,
        obs.rng,
        obs.plant,
        predicted[2] + predicted[3],
    ))
}

/// The KPIs of joint (probe outcome k, final bit b) counts at index 2k + b.
/// With `plant` None the counts were sampled from `st` by synqc's engine
/// and its simulator-only facts are reported; else they came from an
/// executor and only `st`'s time model is used. `reference` is the
/// fidelity the target's model predicts with calibrated controls.
fn estimate(
    req: &SimRequest,
    st: &DpdState,
    joint_counts: Vec<u64>,
    mut rng: SimRng,
    plant: Option<Value>,
    reference: f64,
) -> SimOutcome {
    let c = &req.controls;
    let on_engine = plant.is_none();
    let marginal = |j: &[u64]| [j[0] + j[2], j[1] + j[3]];
    let q = [0.0, 1.0];
    let fid = dist_fidelity(&marginal(&joint_counts), &q);
    let reps = bootstrap_counts(&mut rng, &joint_counts, |j| dist_fidelity(&marginal(j), &q));
    let fs = proportion_spread(fid, req.shots, reps);
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
    if on_engine && st.backaction > BACKACTION_WARN {
        warnings.push(format!(
            "probe backaction {:.3} exceeds {BACKACTION_WARN}",
            st.backaction
        ));
    }
    let cond_obs = |k: usize| {
        let n = joint_counts[2 * k] + joint_counts[2 * k + 1];
        json!({"0": joint_counts[2 * k], "1": joint_counts[2 * k + 1], "shots": n})
    };
    let mut details = vec![kpi("fidelity", fid, "fidelity_dist_v1", "estimate", "ratio", fs)];
    let mut artifacts = json!({
        "circuit": ["rx(pi/2*bias) q0", "probe(kappa) q0", "rx(+-gain*asin(kappa)*bias) q0 by probe outcome", "rx(pi/2*bias) q0", "measure q0"],
        "kappa": kappa,
        "probe_window_ns": c.effective_probe_window_ns(),
        "feedback_gain": c.feedback_gain,
        "correction_angle_rad": {"0": c.feedback_gain * dpd_correction_angle(kappa, 0), "1": c.feedback_gain * dpd_correction_angle(kappa, 1)},
        "probe_outcome_counts": {"0": joint_counts[0] + joint_counts[1], "1": joint_counts[2] + joint_counts[3]},
        "conditional_counts": {"0": cond_obs(0), "1": cond_obs(1)},
        "loop_latency_factor": loop_latency_factor(c.feedback_gain),
        "loop_time_ns": st.times.1,
    });
    let verdict = judge("fidelity", fid, fs.map(|s| s.stderr), reference);
    let (backaction, qubits) = if on_engine {
        details.push(state_fidelity_kpi(st.state_fidelity));
        details.push(backaction_kpi(st.backaction));
        artifacts["probe_outcome_probabilities"] = json!({"0": st.probe_p[0], "1": st.probe_p[1]});
        artifacts["conditional_distributions"] = json!({
            "0": {"0": st.conditional[0][0], "1": st.conditional[0][1]},
            "1": {"0": st.conditional[1][0], "1": st.conditional[1][1]},
        });
        (st.backaction, 1)
    } else {
        artifacts["circuit"] = json!([
            "rx(pi/2*bias) q0",
            "probe: ry(acos(kappa)) q1; controlled ry(pi - 2 acos(kappa)) q0 -> q1; delay[window] q0",
            "rx(gain*asin(kappa)*bias) q0; controlled rx(-2 gain*asin(kappa)*bias) q1 -> q0",
            "rx(pi/2*bias) q0",
            "measure q0 (final bit), q1 (probe outcome)",
        ]);
        // The probe outcome is read from the ancilla, a second qubit.
        (0.0, 2)
    };
    details.push(latency_model_kpi(latency_us));
    // The probe rule needs the backaction, which only the simulator knows.
    let status = worse(
        verdict.record(&mut artifacts, &mut warnings),
        backaction_status(backaction, c),
    );
    assemble(
        req,
        Parts {
            qubits,
            fidelity: fid,
            latency_us,
            backaction,
            status,
            raw_counts: count_map(&counts, 1),
            expected: dist_map(&q, 1),
            details,
            measurement: json!({
                "model": "weak_z_probe_then_projective_z",
                "basis": "Z",
                "povm": "probe: M0 = sqrt((1+k)/2)|0><0| + sqrt((1-k)/2)|1><1|, M1 = sqrt((1-k)/2)|0><0| + sqrt((1+k)/2)|1><1|; final: Z projectors with readout confusion",
                "descriptor": format!("probe kappa {kappa:.4} from a {:.1} ns window", c.effective_probe_window_ns()),
                "kappa": kappa,
            }),
            sim_only: vec!["SIM_ONLY_STATE_FIDELITY", "SIM_ONLY_BACKACTION"],
            artifacts,
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
                    "KPIs with 95% score intervals; stderr from a 200-resample multinomial bootstrap",
                    0.0,
                ),
            ]),
            executor_plant: plant,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::presets::sim_local_model;

    #[test]
    fn full_feedback_restores_the_equator_without_noise() {
        let ideal = sim_local_model().ideal();
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

    /// The ancilla circuit without noise has exactly the instrument's joint
    /// distribution (probe outcome, final bit), for weak and strong probes
    /// and any feedback gain.
    #[test]
    fn the_ancilla_circuit_is_the_probe_instrument() {
        let ideal = sim_local_model().ideal();
        for (window, gain) in [(20.0, 0.35), (120.0, 1.0), (900.0, 0.0), (5000.0, 2.5)] {
            let c = ControlProfile {
                probe_window_ns: window,
                feedback_gain: gain,
                safety_clamp_ns: 0.0,
                ..Default::default()
            };
            let st = dpd_state(&ideal, &c, gain);
            let mut reg = Register::new(2, ideal.clone());
            reg.run(&probe_circuit_ops(&c));
            let p = reg.populations();
            // Circuit index 2b + k; the instrument's 2k + b.
            let joint: Vec<f64> = (0..4).map(|j| p[2 * (j % 2) + j / 2]).collect();
            for (a, b) in joint.iter().zip(&st.joint) {
                assert!(
                    (a - b).abs() < 1e-12,
                    "window {window} gain {gain}: {joint:?} vs {:?}",
                    st.joint
                );
            }
        }
    }

    /// Counts of the ancilla circuit sampled on the noisy engine: the
    /// estimator is the simulator's, and the ancilla's own gate errors move
    /// the fidelity only a little on a good plant.
    #[test]
    fn executor_counts_of_the_ancilla_circuit_agree_with_the_simulator() {
        use crate::sim::{NoiseProfile, Plant, Preset};
        for (gain, window) in [(0.35, 120.0), (1.0, 1000.0)] {
            let req = SimRequest {
                preset: Preset::DpdDemo,
                plant: Plant {
                    target: "ibm_quantum".into(),
                    kind: "superconducting".into(),
                    noise: NoiseProfile::builtin("ibm_quantum").expect("builtin"),
                },
                compare_with: None,
                shots: 40_000,
                seed: 4,
                controls: ControlProfile {
                    feedback_gain: gain,
                    probe_window_ns: window,
                    safety_clamp_ns: 0.0,
                    ..Default::default()
                },
                marked: None,
                program: None,
            };
            let sim = dpd(&req, &|| false).expect("simulates");
            let jobs = circuits(&req).expect("circuits");
            let model = model_of(&req.plant, &req.controls);
            let counts = Observed::on_engine(&jobs, |_| model.clone(), rng_for(9), &|| false)
                .expect("samples")
                .counts;
            let exe = from_counts(&req, &counts, json!({"executor": "test"})).expect("estimates");
            let (f_sim, f_exe) = (sim.kpis.fidelity, exe.kpis.fidelity);
            assert!((f_sim - f_exe).abs() < 0.02, "gain {gain}: {f_sim} vs {f_exe}");
            assert_eq!(exe.kpis.latency_us, sim.kpis.latency_us);
            assert_eq!(exe.qubits_used, 2);
            let names: Vec<&str> = exe.kpi_details.iter().map(|d| d.name.as_str()).collect();
            assert_eq!(names, ["fidelity", "latency_us"]);
            let probe = &exe.artifacts["probe_outcome_counts"];
            assert_eq!(
                probe["0"].as_u64().unwrap_or(0) + probe["1"].as_u64().unwrap_or(0),
                40_000
            );
            assert!(exe
                .warnings
                .iter()
                .any(|w| w.starts_with("SIM_ONLY_BACKACTION: ")));
        }
    }
}
