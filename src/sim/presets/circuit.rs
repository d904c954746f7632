//! circuit: a client's OpenQASM program, parsed and lowered by
//! [`crate::sim::circuit`], run on the target's noise model like every
//! preset. Counts and distributions are keyed by classical bits (bit 0
//! rightmost, last declared register first, docs/api.md "Circuit runs").

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{
    assemble, check, fidelity_with_spread, judge, kpi, latency_model_kpi, model_of, projective_measurement,
    reference_distribution, simulate, standard_trace, state_fidelity_kpi, Parts,
};
use crate::sim::circuit::Circuit;
use crate::sim::engine::{Model, Op, Register};
use crate::sim::estimators::{fidelity_of, multinomial, rng_for, SimRng};
use crate::sim::{SimError, SimOutcome, SimRequest};

/// Purity Tr(sigma^2) of the noise-free final state above which it counts
/// as pure (rounding keeps a pure state a few ulps below 1).
const PURE_ABOVE: f64 = 1.0 - 1e-9;

/// Distributions below this are left out of the result maps, as in the
/// other presets.
const SHOWN_ABOVE: f64 = 1e-12;

/// Counts from an executor are judged against a noisy simulation of the
/// circuit (the status reference), which the executor path otherwise does
/// not need; above this many qubits it is skipped and the status is not
/// judged (the engine path simulates anyway, so it is always judged).
const JUDGED_MAX_QUBITS_FROM_EXECUTOR: usize = 8;

pub(in crate::sim) fn circuit(
    req: &SimRequest,
    circuit: &Circuit,
    cancelled: &dyn Fn() -> bool,
) -> Result<SimOutcome, SimError> {
    check(cancelled)?;
    let model = model_of(&req.plant, &req.controls);
    let sim = simulate(circuit.qubits, &circuit.ops, &model);
    check(cancelled)?;
    let (keys, noisy, ideal) = marginals(circuit, &sim.dist, &sim.ideal);
    let predicted = reference_distribution(
        circuit.qubits,
        &circuit.ops,
        &req.plant,
        &req.controls,
        Some(&sim.dist),
    );
    let reference = fidelity_of(&marginals(circuit, &predicted, &sim.ideal).1, &ideal);
    let mut rng = rng_for(req.seed);
    let counts = multinomial(&mut rng, req.shots, &noisy);
    let pure = ideal_is_pure(circuit.qubits, &circuit.ops, &model);
    let observed = Observed {
        keys,
        counts,
        ideal,
        shot_ns: sim.shot_ns,
        exact: Some((noisy, pure.then_some(sim.state_fidelity))),
        reference: Some(reference),
        executor_plant: None,
        quadrature: Some((sim.grid.nodes, sim.grid.error)),
    };
    Ok(estimate(req, circuit, observed, &mut rng))
}

/// The result of a circuit run from the counts an executor returned (keyed
/// as the program's classical bits). The noise-free reference and the
/// modeled shot time still come from synqc's engine; what only a
/// simulation knows is left out with a note.
pub fn circuit_from_counts(
    req: &SimRequest,
    circuit: &Circuit,
    returned: &BTreeMap<String, u64>,
    plant: Value,
) -> Result<SimOutcome, SimError> {
    let model = model_of(&req.plant, &req.controls);
    let mut reference = Register::new(circuit.qubits, model.ideal());
    reference.run(&circuit.ops);
    let populations = reference.populations();
    let (keys, _, ideal) = marginals(circuit, &populations, &populations);
    let mut counts = vec![0u64; keys.len()];
    for (key, &n) in returned {
        match keys.binary_search(key) {
            Ok(i) => counts[i] += n,
            Err(_) => {
                return Err(SimError::Invalid(format!(
                    "the executor returned the outcome '{key}', which the program's classical bits \
                     cannot read (unmeasured bits read 0); check the executor"
                )))
            }
        }
    }
    if counts.iter().sum::<u64>() != req.shots {
        return Err(SimError::Invalid(format!(
            "the executor returned {} shots for a run of {}; check the executor",
            counts.iter().sum::<u64>(),
            req.shots
        )));
    }
    let reference_fidelity = (circuit.qubits <= JUDGED_MAX_QUBITS_FROM_EXECUTOR).then(|| {
        let predicted = reference_distribution(circuit.qubits, &circuit.ops, &req.plant, &req.controls, None);
        fidelity_of(&marginals(circuit, &predicted, &populations).1, &ideal)
    });
    let observed = Observed {
        keys,
        counts,
        ideal,
        shot_ns: reference.shot_time_ns(),
        exact: None,
        reference: reference_fidelity,
        executor_plant: Some(plant),
        quadrature: None,
    };
    Ok(estimate(req, circuit, observed, &mut rng_for(req.seed)))
}

/// A circuit run's counts and what is known beside them, over the
/// program's counts keys (sorted).
struct Observed {
    keys: Vec<String>,
    counts: Vec<u64>,
    /// The noise-free distribution.
    ideal: Vec<f64>,
    /// Modeled plant time of one shot.
    shot_ns: f64,
    /// On synqc's engine: the exact noisy distribution, and the state
    /// fidelity when the noise-free final state is pure.
    exact: Option<(Vec<f64>, Option<f64>)>,
    /// The fidelity the target's model predicts with calibrated controls
    /// (the status reference); None when not computed.
    reference: Option<f64>,
    /// physics_contract.plant when an executor ran it.
    executor_plant: Option<Value>,
    /// On synqc's engine: the detuning grid's nodes per qubit and its
    /// distance from the Gaussian average (engine::Grid).
    quadrature: Option<(usize, f64)>,
}

/// A grid further than this from the Gaussian average of the quasi-static
/// detuning is said in the result's warnings.
const QUADRATURE_WARN_ABOVE: f64 = 1e-6;

fn estimate(req: &SimRequest, circuit: &Circuit, obs: Observed, rng: &mut SimRng) -> SimOutcome {
    let n = circuit.qubits;
    let (fid, fs) = fidelity_with_spread(rng, &obs.counts, &obs.ideal);
    let latency_us = obs.shot_ns / 1e3;
    let keyed = |p: &[f64]| -> BTreeMap<String, f64> {
        obs.keys
            .iter()
            .zip(p)
            .filter(|(_, &v)| v > SHOWN_ABOVE)
            .map(|(k, &v)| (k.clone(), v))
            .collect()
    };
    let mut details = vec![kpi("fidelity", fid, "fidelity_dist_v1", "estimate", "ratio", fs)];
    let mut sim_only = vec![];
    let mut warnings = vec![];
    let regs = |rs: &[(String, usize)]| -> Vec<Value> {
        rs.iter()
            .map(|(name, size)| json!({"name": name, "size": size}))
            .collect()
    };
    let mut artifacts = json!({
        "qubits": n,
        "depth": circuit.depth,
        "gate_counts": circuit.gate_counts,
        "sha256": circuit.sha256,
        "clbits": circuit.clbits(),
        "registers": regs(&circuit.registers),
        "quantum_registers": regs(&circuit.qregs),
        "openqasm_version": circuit.version,
    });
    if let Some((nodes, error)) = obs.quadrature {
        artifacts["quadrature"] = json!({"nodes_per_qubit": nodes, "error": error});
        if error > QUADRATURE_WARN_ABOVE {
            warnings.push(format!(
                "quasi-static dephasing is averaged over {nodes} detuning value(s) per qubit on this \
                 {n}-qubit circuit, a coarser grid than its duration needs: coherences that dephase \
                 freely may be off by up to {error:.1e} (docs/physics.md \"Quasi-static dephasing\")"
            ));
        }
    }
    match &obs.exact {
        // <psi|rho|psi> is the state fidelity only against a pure
        // reference. Without reset the noise-free run is unitary from
        // |0...0>, so pure; a reset of an entangled qubit leaves the rest
        // mixed, and then the KPI is left out (a KpiDetail has no null
        // value) and a warning says why.
        Some((noisy, Some(state_fidelity))) => {
            artifacts["noisy_distribution"] = json!(keyed(noisy));
            details.push(state_fidelity_kpi(*state_fidelity));
            sim_only.push("SIM_ONLY_STATE_FIDELITY");
        }
        Some((noisy, None)) => {
            artifacts["noisy_distribution"] = json!(keyed(noisy));
            warnings.push(
                "state_fidelity is not reported: a reset leaves the noise-free final state mixed, \
                 and the overlap with a mixed state is not a fidelity"
                    .to_string(),
            );
        }
        // On an executor assemble() notes why the state fidelity is absent.
        None => sim_only.push("SIM_ONLY_STATE_FIDELITY"),
    }
    details.push(latency_model_kpi(latency_us));
    let status = match obs.reference {
        Some(reference) => {
            judge("fidelity", fid, fs.map(|s| s.stderr), reference).record(&mut artifacts, &mut warnings)
        }
        None => {
            artifacts["status_reference"] =
                json!({"kpi": "fidelity", "reference": null, "rule": "not judged"});
            warnings.push(format!(
                "status is not judged against the target's noise profile: the prediction needs a noisy \
                 simulation of the circuit, which synqc skips for executor counts above \
                 {JUDGED_MAX_QUBITS_FROM_EXECUTOR} qubits; compare the fidelity with the target's \
                 calibration yourself"
            ));
            "ok"
        }
    };
    let mut measurement = projective_measurement(n as u32);
    measurement["descriptor"] = json!(format!(
        "Z readout of the {} measured qubits at the end of the circuit; counts are keyed by classical \
         bits, bit 0 rightmost, registers joined by a space with the last declared first",
        circuit.measures.len()
    ));
    let on_engine = obs.executor_plant.is_none();
    assemble(
        req,
        Parts {
            qubits: n as u32,
            fidelity: fid,
            latency_us,
            backaction: 0.0,
            status,
            raw_counts: obs
                .keys
                .iter()
                .zip(&obs.counts)
                .filter(|(_, &c)| c > 0)
                .map(|(k, &c)| (k.clone(), c))
                .collect(),
            expected: keyed(&obs.ideal),
            details,
            measurement,
            sim_only,
            artifacts,
            warnings,
            trace: standard_trace(req.shots, latency_us, on_engine),
            executor_plant: obs.executor_plant,
        },
    )
}

/// The engine's distributions over basis states summed onto the circuit's
/// counts keys (unmeasured qubits traced out, unwritten bits 0): the keys
/// in order, the noisy and the ideal distribution over them.
fn marginals(circuit: &Circuit, noisy: &[f64], ideal: &[f64]) -> (Vec<String>, Vec<f64>, Vec<f64>) {
    let mut by_key: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (i, (&p, &q)) in noisy.iter().zip(ideal).enumerate() {
        let e = by_key.entry(circuit.basis_key(i)).or_insert((0.0, 0.0));
        e.0 += p;
        e.1 += q;
    }
    let mut keys = Vec::with_capacity(by_key.len());
    let (mut p, mut q) = (Vec::with_capacity(by_key.len()), Vec::with_capacity(by_key.len()));
    for (k, (a, b)) in by_key {
        keys.push(k);
        p.push(a);
        q.push(b);
    }
    (keys, p, q)
}

/// Whether the noise-free final state is pure. Only a reset can make it
/// mixed, so only then is the noise-free run repeated to measure Tr(sigma^2).
fn ideal_is_pure(n: usize, ops: &[Op], model: &Model) -> bool {
    if !ops.iter().any(|op| matches!(op, Op::Reset(_))) {
        return true;
    }
    let mut ideal = Register::new(n, model.ideal());
    ideal.run(ops);
    ideal.overlap(&ideal) > PURE_ABOVE
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::ControlProfile;
    use crate::sim::circuit::{parse, CircuitLimits};
    use crate::sim::{NoiseProfile, Plant, Preset};

    fn req(seed: u64, preset: Preset) -> SimRequest {
        SimRequest {
            preset,
            plant: Plant {
                target: "sim_local".into(),
                kind: "sim".into(),
                noise: NoiseProfile::builtin("sim_local").expect("builtin"),
            },
            compare_with: None,
            shots: 4096,
            seed,
            controls: ControlProfile::default(),
            marked: Some("101".into()),
            program: None,
        }
    }

    fn run(src: &str, seed: u64) -> SimOutcome {
        let c = parse(src, &CircuitLimits::default()).expect("parses");
        circuit(&req(seed, Preset::HelloQuantumSim), &c, &|| false).expect("runs")
    }

    /// A distribution map of a result, its keys reversed or not.
    fn dist(v: &serde_json::Value, reverse: bool) -> BTreeMap<String, f64> {
        let m = v.as_object().expect("map");
        m.iter()
            .map(|(k, v)| {
                let k = if reverse {
                    k.chars().rev().collect()
                } else {
                    k.clone()
                };
                (k, v.as_f64().expect("number"))
            })
            .collect()
    }

    fn assert_same(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) {
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (k, v) in a {
            assert!((v - b[k]).abs() < 1e-12, "{k}: {v} vs {}", b[k]);
        }
    }

    /// The preset's keys are engine bit strings (qubit 0 leftmost); a
    /// circuit measuring q[i] into c[i] keys them reversed.
    fn assert_matches_preset(qasm: &str, preset: &SimOutcome) {
        let out = run(qasm, 7);
        assert_same(
            &dist(&out.artifacts["noisy_distribution"], true),
            &dist(&preset.artifacts["noisy_distribution"], false),
        );
        assert_same(
            &dist(&json!(out.kpis.expected_distribution), true),
            &preset.kpis.expected_distribution,
        );
        let sf = |o: &SimOutcome| {
            o.kpi_details
                .iter()
                .find(|d| d.name == "state_fidelity")
                .map(|d| d.value)
        };
        let (a, b) = (sf(&out).expect("reported"), sf(preset).expect("reported"));
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        assert!((out.kpis.latency_us - preset.kpis.latency_us).abs() < 1e-9);
    }

    #[test]
    fn bell_pair_in_openqasm_is_the_hello_preset() {
        let preset = super::super::hello(&req(7, Preset::HelloQuantumSim), &|| false).expect("runs");
        let v3 = "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[2] q;\nbit[2] c;\nh q[0];\ncx q[0], q[1];\nc = measure q;\n";
        assert_matches_preset(v3, &preset);
        let v2 = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\ncreg c[2];\nh q[0];\nCX q[0],q[1];\nmeasure q -> c;\n";
        assert_matches_preset(v2, &preset);
    }

    #[test]
    fn grover_in_openqasm_is_the_grover_preset() {
        let preset = super::super::grover(&req(7, Preset::GroverDemo), &|| false).expect("runs");
        // grover.rs's ccz is the Toffoli network without the target's
        // Hadamards: a defined gate here.
        let qasm = "OPENQASM 3.0;
include \"stdgates.inc\";
gate ccz a, b, c { cx b, c; tdg c; cx a, c; t c; cx b, c; tdg c; cx a, c; t b; t c; cx a, b; t a; tdg b; cx a, b; }
gate oracle a, b, c { x b; ccz a, b, c; x b; }
gate diffuse a, b, c { h a; h b; h c; x a; x b; x c; ccz a, b, c; x a; x b; x c; h a; h b; h c; }
qubit[3] q;
bit[3] c;
h q;
oracle q[0], q[1], q[2];
diffuse q[0], q[1], q[2];
oracle q[0], q[1], q[2];
diffuse q[0], q[1], q[2];
c = measure q;
";
        let parsed = parse(qasm, &CircuitLimits::default()).expect("parses");
        assert_eq!(parsed.ops, super::super::grover::grover_ops("101"));
        assert_matches_preset(qasm, &preset);
    }

    #[test]
    fn counts_are_reproducible_from_the_seed_and_follow_the_distribution() {
        let src = "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[3] q;\nbit[2] a;\nbit[1] b;\n\
                   h q[0];\ncx q[0], q[1];\nx q[2];\na[0] = measure q[0];\na[1] = measure q[1];\nb[0] = measure q[2];\n";
        let (one, two, other) = (run(src, 11), run(src, 11), run(src, 12));
        assert_eq!(one, two);
        assert_ne!(one.kpis.raw_counts, other.kpis.raw_counts);
        // Last register first, bit 0 rightmost: b="1", a = q1 q0.
        let expected: Vec<&str> = one
            .kpis
            .expected_distribution
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(expected, ["1 00", "1 11"]);
        assert_eq!(one.kpis.raw_counts.values().sum::<u64>(), 4096);
        let noisy = one.artifacts["noisy_distribution"].as_object().expect("map");
        let total: f64 = noisy.values().filter_map(|v| v.as_f64()).sum();
        assert!((total - 1.0).abs() < 1e-9);
        for (k, &c) in &one.kpis.raw_counts {
            let p = noisy.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
            let sd = (4096.0 * p * (1.0 - p)).sqrt().max(1.0);
            assert!((c as f64 - 4096.0 * p).abs() < 6.0 * sd, "{k}: {c} vs {p}");
        }
        assert!(one.kpis.fidelity > 0.9 && one.kpis.fidelity <= 1.0);
        assert_eq!(one.artifacts["clbits"], 3);
        assert_eq!(
            one.artifacts["registers"],
            json!([{"name": "a", "size": 2}, {"name": "b", "size": 1}])
        );
        assert_eq!(
            one.artifacts["gate_counts"],
            json!({"h": 1, "cx": 1, "x": 1, "measure": 3})
        );
        assert_eq!(one.artifacts["depth"], 2);
        assert_eq!(one.qubits_used, 3);
    }

    #[test]
    fn unmeasured_qubits_are_traced_out_and_unwritten_bits_read_zero() {
        // q[1] is flipped but not measured; c[1] is never written.
        let out = run(
            "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[2] q;\nbit[2] c;\nx q[1];\nx q[0];\nc[0] = measure q[0];\n",
            3,
        );
        let keys: Vec<&str> = out
            .kpis
            .expected_distribution
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["01"]);
        assert!(
            out.kpis.raw_counts.keys().all(|k| k.starts_with('0')),
            "{:?}",
            out.kpis.raw_counts
        );
    }

    #[test]
    fn state_fidelity_only_against_a_pure_reference() {
        let has = |o: &SimOutcome| o.kpi_details.iter().any(|d| d.name == "state_fidelity");
        // Resetting half of a Bell pair leaves the other half mixed.
        let mixed = run(
            "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[2] q;\nbit[2] c;\nh q[0];\ncx q[0], q[1];\nreset q[0];\nc = measure q;\n",
            1,
        );
        assert!(!has(&mixed));
        assert!(mixed.warnings.iter().any(|w| w.contains("state_fidelity")));
        assert!(!mixed.assumptions.iter().any(|a| a == "SIM_ONLY_STATE_FIDELITY"));
        // Resetting an unentangled qubit keeps the state pure.
        let pure = run(
            "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[2] q;\nbit[2] c;\nh q[0];\nreset q[0];\nx q[1];\nc = measure q;\n",
            1,
        );
        assert!(has(&pure));
        assert!(pure.warnings.is_empty());
    }

    #[test]
    fn ten_qubits_run() {
        let mut src =
            String::from("OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[10] q;\nbit[10] c;\nh q[0];\n");
        for i in 0..9 {
            src.push_str(&format!("cx q[{i}], q[{}];\n", i + 1));
        }
        src.push_str("c = measure q;\n");
        let out = run(&src, 5);
        let keys: Vec<&str> = out
            .kpis
            .expected_distribution
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["0000000000", "1111111111"]);
        assert_eq!(out.qubits_used, 10);
    }

    /// Executor counts are judged against the engine's prediction like a
    /// simulated run, up to the qubit count where that prediction is
    /// skipped and a warning says so.
    #[test]
    fn executor_counts_are_judged_against_the_engines_prediction() {
        let ghz = |n: usize| {
            let mut src =
                format!("OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[{n}] q;\nbit[{n}] c;\nh q[0];\n");
            for i in 0..n - 1 {
                src.push_str(&format!("cx q[{i}], q[{}];\n", i + 1));
            }
            src.push_str("c = measure q;\n");
            parse(&src, &CircuitLimits::default()).expect("parses")
        };
        let r = req(3, Preset::HelloQuantumSim);
        let small = ghz(3);
        let sim = circuit(&r, &small, &|| false).expect("runs");
        let exe = circuit_from_counts(&r, &small, &sim.kpis.raw_counts, json!({"executor": "test"}))
            .expect("estimates");
        // Same counts, same prediction; only the bootstrap's stderr differs.
        for key in ["reference", "measured", "shortfall"] {
            assert_eq!(
                exe.artifacts["status_reference"][key], sim.artifacts["status_reference"][key],
                "{key}"
            );
        }
        assert_eq!(exe.kpis.status, "ok");
        // Every shot on the wrong outcome: far below the prediction.
        let wrong = BTreeMap::from([("001".to_string(), r.shots)]);
        let bad = circuit_from_counts(&r, &small, &wrong, json!({"executor": "test"})).expect("estimates");
        assert_eq!(bad.kpis.status, "fail");
        assert!(
            bad.warnings
                .iter()
                .any(|w| w.starts_with("status fail: fidelity 0.0000")),
            "{:?}",
            bad.warnings
        );
        let large = ghz(JUDGED_MAX_QUBITS_FROM_EXECUTOR + 1);
        let zeros = "0".repeat(large.qubits);
        let counts = BTreeMap::from([(zeros, r.shots)]);
        let unjudged =
            circuit_from_counts(&r, &large, &counts, json!({"executor": "test"})).expect("estimates");
        assert_eq!(unjudged.kpis.status, "ok");
        assert!(unjudged.artifacts["status_reference"]["reference"].is_null());
        assert!(
            unjudged
                .warnings
                .iter()
                .any(|w| w.starts_with("status is not judged")),
            "{:?}",
            unjudged.warnings
        );
    }

    #[test]
    fn cancellation_stops_before_the_simulation() {
        let c = parse(
            "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit q;\nbit c;\nc = measure q;\n",
            &CircuitLimits::default(),
        )
        .expect("parses");
        assert_eq!(
            circuit(&req(1, Preset::HelloQuantumSim), &c, &|| true),
            Err(SimError::Cancelled)
        );
    }
}
