//! Whole-preset tests: the statistical and control-effect cases, and the
//! digest that pins every preset's output (long: one case per behaviour).
//! Analytic engine cases live beside the engine (engine.rs, health.rs).

use super::*;
use crate::controls::ControlProfile;

/// A built-in target's plant (shared with the presets' tests).
pub(in crate::sim) fn plant(target: &str) -> Plant {
    Plant {
        target: target.to_string(),
        kind: if target == "sim_local" {
            "sim"
        } else {
            "superconducting"
        }
        .to_string(),
        noise: NoiseProfile::builtin(target).expect("builtin target"),
    }
}

/// A request of `preset` on `target`, compare_with ibm_quantum.
pub(in crate::sim) fn req(preset: Preset, target: &str, shots: u64, seed: u64) -> SimRequest {
    SimRequest {
        preset,
        plant: plant(target),
        compare_with: Some(plant("ibm_quantum")),
        shots,
        seed,
        controls: ControlProfile::default(),
        marked: None,
        program: None,
    }
}

fn go(r: &SimRequest) -> SimOutcome {
    run(r, None, &|| false).expect("preset runs")
}

fn detail<'a>(o: &'a SimOutcome, name: &str) -> &'a KpiDetail {
    o.kpi_details
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no kpi {name}"))
}

fn within(value: f64, truth: f64, rel: f64) -> bool {
    ((value - truth) / truth).abs() <= rel
}

#[test]
fn minimums_fit_the_default_budget() {
    for p in Preset::ALL {
        assert!(min_shots(p) <= 2048, "{p:?}");
        assert!(min_shots(p) >= 1);
    }
    assert!(min_shots(Preset::Health) <= 1000);
    let r = req(Preset::Health, "sim_local", min_shots(Preset::Health) - 1, 1);
    assert!(matches!(run(&r, None, &|| false), Err(SimError::Invalid(_))));
    let r = req(Preset::Health, "sim_local", min_shots(Preset::Health), 1);
    assert!(run(&r, None, &|| false).is_ok());
}

#[test]
fn invalid_requests_are_refused() {
    let r = req(Preset::Latency, "sim_local", 2048, 1);
    assert!(matches!(run(&r, None, &|| false), Err(SimError::Invalid(_))));
    let mut r = req(Preset::BackendCompare, "sim_local", 2048, 1);
    r.compare_with = None;
    assert!(matches!(run(&r, None, &|| false), Err(SimError::Invalid(_))));
    let mut r = req(Preset::GroverDemo, "sim_local", 2048, 1);
    for bad in ["10", "1011", "10a", "", "１01"] {
        assert!(!valid_marked(bad), "{bad}");
        r.marked = Some(bad.to_string());
        assert!(
            matches!(run(&r, None, &|| false), Err(SimError::Invalid(_))),
            "{bad}"
        );
    }
    assert!(valid_marked("000") && valid_marked("111"));
}

#[test]
fn cancellation_is_honoured_between_circuits() {
    for p in [
        Preset::HelloQuantumSim,
        Preset::Health,
        Preset::BackendCompare,
        Preset::DpdDemo,
        Preset::GroverDemo,
    ] {
        let r = req(p, "sim_local", 2048, 1);
        assert_eq!(run(&r, None, &|| true), Err(SimError::Cancelled), "{p:?}");
    }
    // Health stops part way through: the flag flips after 10 polls.
    let polls = std::cell::Cell::new(0);
    let r = req(Preset::Health, "sim_local", 2048, 1);
    let res = run(&r, None, &|| {
        polls.set(polls.get() + 1);
        polls.get() > 10
    });
    assert_eq!(res, Err(SimError::Cancelled));
    assert_eq!(polls.get(), 11);
}

#[test]
fn ideal_bell_on_a_quiet_plant_and_result_shape() {
    // azure_quantum: T1 = 10 s, 2q error 2e-3; the Bell state is nearly ideal.
    let o = go(&req(Preset::HelloQuantumSim, "azure_quantum", 4096, 5));
    assert!(detail(&o, "state_fidelity").value > 0.99);
    let odd: u64 = o
        .kpis
        .raw_counts
        .iter()
        .filter(|(k, _)| *k == "01" || *k == "10")
        .map(|(_, v)| v)
        .sum();
    assert!((odd as f64) < 0.03 * 4096.0, "{:?}", o.kpis.raw_counts);
    assert_eq!(o.kpis.expected_distribution.len(), 2);
    assert_eq!(o.kpis.raw_counts.values().sum::<u64>(), 4096);
    assert!(o
        .assumptions
        .iter()
        .any(|a| a == "PROVIDER_NOISE_PROFILE_SIMULATED"));
    assert!(o.assumptions.iter().any(|a| a == "SIM_ONLY_STATE_FIDELITY"));
    let local = go(&req(Preset::HelloQuantumSim, "sim_local", 2048, 5));
    assert!(!local
        .assumptions
        .iter()
        .any(|a| a == "PROVIDER_NOISE_PROFILE_SIMULATED"));
    // Critical path: h, cx, readout.
    let n = &local.physics_contract["noise"]["params"];
    let expect = (n["gate_1q_ns"].as_f64().unwrap_or(0.0) + 300.0 + 1000.0) / 1e3;
    assert!((local.kpis.latency_us - expect).abs() < 1e-9);
    for d in &local.kpi_details {
        assert_eq!(d.ci95, d.ci_95);
        if let Some([lo, hi]) = d.ci95 {
            assert!(lo <= d.value + 1e-9 && d.value <= hi + 1e-9, "{d:?}");
            assert!(d.stderr.is_some_and(|s| s > 0.0));
        }
    }
    assert!(detail(&local, "fidelity").ci95.is_some());
    serde_json::to_string(&local).expect("outcome serializes");
}

const CHILD_ENV: &str = "SYNQC_SIM_REPRO_CHILD";

fn repro_outcomes(seed: u64) -> String {
    let mut lines = Vec::new();
    for p in [
        Preset::HelloQuantumSim,
        Preset::Health,
        Preset::BackendCompare,
        Preset::DpdDemo,
        Preset::GroverDemo,
    ] {
        let o = go(&req(p, "aws_braket", 2048, seed));
        lines.push(serde_json::to_string(&o).expect("outcome serializes"));
    }
    lines.join("\n")
}

/// Runs this very test in a child process and compares its outcomes with
/// ours: no hidden per-process state (hash seeds, addresses) leaks in.
#[test]
fn same_seed_gives_identical_outcomes_across_processes() {
    let mine = repro_outcomes(99);
    if std::env::var_os(CHILD_ENV).is_some() {
        println!("BEGIN-OUTCOMES\n{mine}\nEND-OUTCOMES");
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let module = module_path!()
        .split_once("::")
        .map_or(module_path!(), |(_, rest)| rest);
    let name = format!("{module}::same_seed_gives_identical_outcomes_across_processes");
    let out = std::process::Command::new(exe)
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("child test process runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let theirs = text
        .split_once("BEGIN-OUTCOMES\n")
        .and_then(|(_, rest)| rest.split_once("\nEND-OUTCOMES"))
        .map(|(body, _)| body.to_string())
        .unwrap_or_else(|| panic!("child printed no outcomes: {text}"));
    assert_eq!(mine, theirs);
    assert_ne!(mine, repro_outcomes(100), "different seeds must differ");
}

#[test]
fn different_seeds_give_different_counts() {
    let a = go(&req(Preset::HelloQuantumSim, "sim_local", 2048, 1));
    let b = go(&req(Preset::HelloQuantumSim, "sim_local", 2048, 2));
    assert_ne!(a.kpis.raw_counts, b.kpis.raw_counts);
    assert_eq!(a, go(&req(Preset::HelloQuantumSim, "sim_local", 2048, 1)));
}

#[test]
fn ci_width_shrinks_like_inverse_sqrt_shots() {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for n in [100u64, 400, 1600, 6400] {
        // Average a few seeds: one bootstrap's percentile width is itself noisy.
        let w: f64 = (0..4)
            .map(|s| {
                let o = go(&req(Preset::HelloQuantumSim, "rigetti_forest", n, 1000 + s));
                let [lo, hi] = detail(&o, "fidelity").ci95.expect("sampled kpi has ci95");
                hi - lo
            })
            .sum::<f64>()
            / 4.0;
        xs.push((n as f64).ln());
        ys.push(w.ln());
    }
    let (slope, _) = estimators::linear_fit(&xs, &ys).expect("four points");
    assert!((slope + 0.5).abs() <= 0.1, "slope {slope}");
}

/// Every target with a built-in noise profile.
pub(in crate::sim) const BUILTIN_TARGETS: [&str; 6] = [
    "sim_local",
    "ibm_quantum",
    "aws_braket",
    "rigetti_forest",
    "azure_quantum",
    "ionq_cloud",
];

/// One seed at a large budget on every built-in target: the fits land near
/// the profile, T2* below T2echo, EPC near the published p1q, and
/// the readout assignment fidelity is the profile's (plus the residual
/// excitation and the x gate's error on prepare 1).
#[test]
fn health_fits_recover_the_profile() {
    for target in BUILTIN_TARGETS {
        let o = go(&req(Preset::Health, target, 40_000, 7));
        let n = NoiseProfile::builtin(target).expect("builtin");
        let t1 = detail(&o, "t1_us").value;
        let t2s = detail(&o, "t2star_us").value;
        let t2e = detail(&o, "t2echo_us").value;
        assert!(within(t1, n.t1_us, 0.15), "{target} T1 {t1} vs {}", n.t1_us);
        assert!(
            within(t2s, n.t2star_us, 0.15),
            "{target} T2* {t2s} vs {}",
            n.t2star_us
        );
        assert!(within(t2e, n.t2_us, 0.15), "{target} T2echo {t2e} vs {}", n.t2_us);
        assert!(t2s < t2e, "{target} T2* {t2s} >= T2echo {t2e}");
        for name in ["t1_us", "t2star_us", "t2echo_us"] {
            let d = detail(&o, name);
            let [lo, hi] = d.ci95.expect("ci95");
            assert!(lo < d.value && d.value < hi, "{target} {name}");
        }
        // EPC is the published error, not model 1's half of it; whether its
        // ci95 holds p1q as often as it should is stats_health_fit_recovery's
        // to say over many seeds, not one seed's.
        let epc = detail(&o, "epc");
        assert!(
            within(epc.value, n.p1q, 0.4),
            "{target} EPC {} vs {}",
            epc.value,
            n.p1q
        );
        let [lo, hi] = epc.ci95.expect("epc ci");
        assert!(lo < epc.value && epc.value < hi, "{target} EPC ci95 {lo}..{hi}");
        assert!((o.kpis.fidelity - (1.0 - epc.value)).abs() < 1e-15);
        let ro = detail(&o, "readout_assignment_fidelity");
        let profile_ro = 1.0 - (n.readout_p10 + n.readout_p01) / 2.0;
        assert!(
            (ro.value - profile_ro).abs() < 0.01,
            "{target} assignment {} vs {profile_ro}",
            ro.value
        );
        assert_eq!(ro.definition_id, "readout_assignment_v1");
        assert_eq!(o.artifacts["rb"]["clifford_group_size"], 24);
        assert_eq!(o.artifacts["profile_check"]["status"], "ok", "{target}");
    }
}

/// The physics claim behind health (docs/physics.md "Presets"): at 20,000
/// shots, over 200 seeds on every built-in target, the fitted T1, T2* and
/// T2echo fall within 15% of the profile in at least 95% of seeds, EPC's
/// ci95 holds the profile's p1q in at least 90%, and T2* < T2echo in every
/// seed. Prints the per-target table (run with --nocapture).
#[test]
#[ignore = "statistics over 1,200 runs: cargo test --profile stats --lib stats_ -- --ignored --nocapture"]
fn stats_health_fit_recovery() {
    const SEEDS: u64 = 200;
    let mut failures = Vec::new();
    println!(
        "target          T1 in 15%  T2* in 15%  T2echo in 15%  EPC ci95 holds p1q  T2*<T2echo  \
         fitted/profile mean+-sd: T1, T2*, T2echo"
    );
    for target in BUILTIN_TARGETS {
        let n = NoiseProfile::builtin(target).expect("builtin");
        let mut hits = [0u64; 5];
        let mut ratios: [Vec<f64>; 3] = Default::default();
        for seed in 0..SEEDS {
            let o = go(&req(Preset::Health, target, 20_000, 10_000 + seed));
            let v = |name: &str| detail(&o, name).value;
            let (t1, t2s, t2e) = (v("t1_us"), v("t2star_us"), v("t2echo_us"));
            let [lo, hi] = detail(&o, "epc").ci95.expect("epc ci95");
            for (r, (v, truth)) in ratios
                .iter_mut()
                .zip([(t1, n.t1_us), (t2s, n.t2star_us), (t2e, n.t2_us)])
            {
                r.push(v / truth);
            }
            for (hit, ok) in hits.iter_mut().zip([
                within(t1, n.t1_us, 0.15),
                within(t2s, n.t2star_us, 0.15),
                within(t2e, n.t2_us, 0.15),
                lo <= n.p1q && n.p1q <= hi,
                t2s < t2e,
            ]) {
                *hit += u64::from(ok);
            }
        }
        let pct = hits.map(|h| 100.0 * h as f64 / SEEDS as f64);
        let moments: Vec<String> = ratios
            .iter()
            .map(|r| {
                let mean = r.iter().sum::<f64>() / r.len() as f64;
                let var = r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (r.len() - 1) as f64;
                format!("{mean:.3}+-{:.3}", var.sqrt())
            })
            .collect();
        println!(
            "{target:<15} {:>8.0}%  {:>9.0}%  {:>12.0}%  {:>17.0}%  {:>9.0}%  {}",
            pct[0],
            pct[1],
            pct[2],
            pct[3],
            pct[4],
            moments.join(", ")
        );
        for (name, p, need) in [
            ("T1", pct[0], 95.0),
            ("T2*", pct[1], 95.0),
            ("T2echo", pct[2], 95.0),
            ("EPC coverage", pct[3], 90.0),
            ("T2* < T2echo", pct[4], 100.0),
        ] {
            if p < need {
                failures.push(format!("{target} {name}: {p:.0}% < {need:.0}%"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn health_at_default_budget_is_fast() {
    let r = req(Preset::Health, "sim_local", 2048, 3);
    let t = std::time::Instant::now();
    let o = go(&r);
    let ms = t.elapsed().as_secs_f64() * 1e3;
    // Release target: well under 100 ms; the dev profile gets slack.
    let limit = if cfg!(debug_assertions) { 1000.0 } else { 50.0 };
    assert!(ms < limit, "health took {ms:.1} ms");
    assert!(o.kpis.fidelity > 0.99 && o.kpis.status == "ok");
    assert_eq!(
        o.artifacts["profile_check"]["status"], "ok",
        "{:?}",
        o.artifacts["profile_check"]
    );
}

fn with_controls(mut r: SimRequest, c: ControlProfile) -> SimRequest {
    r.controls = c;
    r
}

#[test]
fn drive_bias_away_from_one_lowers_fidelity() {
    let f = |bias: f64| {
        let c = ControlProfile {
            drive_bias: bias,
            ..Default::default()
        };
        go(&with_controls(
            req(Preset::HelloQuantumSim, "sim_local", 50_000, 11),
            c,
        ))
        .kpis
        .fidelity
    };
    let (low, mid, one, high) = (f(0.7), f(0.85), f(1.0), f(1.3));
    assert!(low < mid && mid < one && high < one, "{low} {mid} {one} {high}");
}

#[test]
fn dpd_fidelity_peaks_near_full_feedback_gain() {
    let gains = [0.0, 0.5, 0.8, 1.0, 1.2, 1.5, 2.0];
    let fids: Vec<f64> = gains
        .iter()
        .map(|&g| {
            let c = ControlProfile {
                feedback_gain: g,
                probe_window_ns: 1000.0,
                safety_clamp_ns: 0.0,
                ..Default::default()
            };
            go(&with_controls(req(Preset::DpdDemo, "sim_local", 50_000, 5), c))
                .kpis
                .fidelity
        })
        .collect();
    let best = fids
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| gains[i]);
    assert!(best.is_some_and(|g| (0.8..=1.2).contains(&g)), "{fids:?}");
    assert!(fids[0] < fids[3] - 0.05 && fids[6] < fids[3] - 0.05, "{fids:?}");
}

#[test]
fn backaction_rises_with_window_and_is_capped_by_clamp() {
    let ba = |w: f64, clamp: f64| {
        let c = ControlProfile {
            probe_window_ns: w,
            safety_clamp_ns: clamp,
            ..Default::default()
        };
        go(&with_controls(req(Preset::DpdDemo, "sim_local", 2048, 1), c))
            .kpis
            .backaction
    };
    let open: Vec<f64> = [50.0, 200.0, 800.0, 3000.0].iter().map(|&w| ba(w, 0.0)).collect();
    assert!(open.windows(2).all(|w| w[0] < w[1]), "{open:?}");
    let capped = ba(600.0, 600.0);
    assert!((ba(800.0, 600.0) - capped).abs() < 1e-15 && (ba(3000.0, 600.0) - capped).abs() < 1e-15);
    assert!(capped < open[2]);
    // A strong unclamped probe warns.
    let c = ControlProfile {
        probe_window_ns: 5000.0,
        safety_clamp_ns: 0.0,
        ..Default::default()
    };
    let o = go(&with_controls(req(Preset::DpdDemo, "sim_local", 2048, 1), c));
    assert!(o.kpis.backaction > 0.32, "{}", o.kpis.backaction);
    assert_ne!(o.kpis.status, "ok");
    assert!(o.assumptions.iter().any(|a| a == "SIM_ONLY_BACKACTION"));
    let counts = &o.artifacts["probe_outcome_counts"];
    assert_eq!(
        counts["0"].as_u64().unwrap_or(0) + counts["1"].as_u64().unwrap_or(0),
        2048
    );
}

#[test]
fn dpd_loop_latency_shrinks_with_gain() {
    let lat = |g: f64| {
        let c = ControlProfile {
            feedback_gain: g,
            ..Default::default()
        };
        go(&with_controls(req(Preset::DpdDemo, "sim_local", 2048, 1), c))
            .kpis
            .latency_us
    };
    let (l0, l1, l10) = (lat(0.0), lat(1.0), lat(3.0));
    let loop_us = (120.0 + 35.0) / 1e3;
    assert!((l0 - l1 - 0.04 * loop_us).abs() < 1e-9);
    assert!((l0 - l10 - 0.12 * loop_us).abs() < 1e-9);
}

#[test]
fn thermal_guard_off_costs_fidelity_and_tracer_does_nothing() {
    let base = req(Preset::HelloQuantumSim, "sim_local", 50_000, 4);
    let on = go(&base);
    let off = go(&with_controls(
        base.clone(),
        ControlProfile {
            thermal_guard_enabled: false,
            ..Default::default()
        },
    ));
    assert!(detail(&off, "state_fidelity").value < detail(&on, "state_fidelity").value);
    assert!(off.kpis.fidelity < on.kpis.fidelity);
    assert_eq!(off.noise["params"]["readout_p10"].as_f64(), Some(0.02));
    let traced = go(&with_controls(
        base,
        ControlProfile {
            tracer_persistence_ms: 9000.0,
            ..Default::default()
        },
    ));
    assert_eq!(traced.kpis, on.kpis);
}

#[test]
fn backend_compare_splits_shots_and_reports_the_difference() {
    let o = go(&req(Preset::BackendCompare, "aws_braket", 2049, 8));
    let per = &o.artifacts["per_target"];
    assert_eq!(per["aws_braket"]["shots"].as_u64(), Some(1025));
    assert_eq!(per["ibm_quantum"]["shots"].as_u64(), Some(1024));
    let f1 = detail(&o, "fidelity").value;
    let f2 = detail(&o, "fidelity_compare").value;
    let d = detail(&o, "fidelity_difference");
    assert!((d.value - (f1 - f2)).abs() < 1e-15 && d.ci95.is_some());
    // ibm_quantum is the quieter plant.
    assert!(d.value < 0.0, "{f1} {f2}");
}

#[test]
fn grover_finds_the_marked_state() {
    for m in ["101", "010"] {
        let mut r = req(Preset::GroverDemo, "ionq_cloud", 4096, 2);
        r.marked = Some(m.to_string());
        let o = go(&r);
        let top = o
            .kpis
            .raw_counts
            .iter()
            .max_by_key(|(_, &c)| c)
            .map(|(k, _)| k.clone());
        assert_eq!(top.as_deref(), Some(m));
        let s = detail(&o, "success_probability").value;
        assert!(s > 0.6 && s < 0.95, "{s}");
    }
}

struct FakeLoop(Vec<f64>);

impl LoopProbe for FakeLoop {
    fn round_trip_us(&mut self) -> Result<f64, SimError> {
        self.0
            .pop()
            .ok_or_else(|| SimError::Loop("no more samples".into()))
    }
}

#[test]
fn latency_reports_the_measured_median_and_p95() {
    let r = req(Preset::Latency, "sim_local", 2048, 1);
    let k = presets::latency_probes(2048) as usize;
    assert_eq!(k, 32);
    let mut probe = FakeLoop((1..=k).map(|i| i as f64 * 10.0).collect());
    let o = run(&r, Some(&mut probe), &|| false).expect("latency runs");
    assert!((o.kpis.latency_us - 165.0).abs() < 1e-9, "{}", o.kpis.latency_us);
    let p95 = detail(&o, "latency_p95_us");
    assert!((p95.value - 304.5).abs() < 1e-9, "{}", p95.value);
    let [lo, hi] = detail(&o, "latency_us").ci95.expect("ci");
    assert!(lo < 165.0 && 165.0 < hi);
    assert_eq!(detail(&o, "latency_us").definition_id, "latency_loop_v1");
    let mut failing = FakeLoop(vec![]);
    assert!(matches!(
        run(&r, Some(&mut failing), &|| false),
        Err(SimError::Loop(_))
    ));
}

#[test]
fn bench_report_lists_every_preset() {
    let report = bench::bench_report();
    for p in Preset::ALL {
        assert!(report.contains(p.as_str()), "{report}");
    }
    assert!(!report.contains("failed"), "{report}");
}

/// Every preset on every built-in target (and the ideal twin for
/// backend_compare), three seeds, a reduced health budget and non-default
/// controls: the serialized outcomes, hashed together.
fn outcome_digest() -> String {
    use sha2::Digest;
    const TARGETS: [&str; 6] = BUILTIN_TARGETS;
    let controls = [
        ControlProfile::default(),
        ControlProfile {
            drive_bias: 1.1,
            probe_window_ns: 900.0,
            feedback_gain: 1.0,
            safety_clamp_ns: 0.0,
            thermal_guard_enabled: false,
            ..Default::default()
        },
    ];
    let mut h = sha2::Sha256::new();
    // The six presets the digest was taken on; circuit runs have their
    // own tests (presets/circuit.rs).
    for preset in Preset::ALL.into_iter().filter(|p| *p != Preset::Circuit) {
        for target in TARGETS {
            for seed in [1, 2, 3] {
                for (ci, c) in controls.iter().enumerate() {
                    for shots in [2048, 257] {
                        let mut r = with_controls(req(preset, target, shots, seed), c.clone());
                        if preset == Preset::BackendCompare && seed == 3 {
                            r.compare_with = Some(presets::ideal_twin(&r.plant));
                        }
                        if preset == Preset::GroverDemo && ci == 1 {
                            r.marked = Some("010".into());
                        }
                        let mut probe = FakeLoop((0..40).map(|i| 50.0 + f64::from(i) * 3.5).collect());
                        let line = match run(&r, Some(&mut probe), &|| false) {
                            Ok(o) => serde_json::to_string(&o).expect("outcome serializes"),
                            Err(e) => format!("{e:?}"),
                        };
                        h.update(line.as_bytes());
                        h.update(b"\n");
                    }
                }
            }
        }
    }
    crate::budget::hex(&h.finalize())
}

/// Pins the simulator's output across the refactor that split the presets
/// into circuits and estimators: the same request and seed give the same
/// bytes. A deliberate physics change bumps ENGINE_VERSION and this digest.
#[test]
fn outcomes_are_pinned_across_presets_targets_and_seeds() {
    assert_eq!(
        outcome_digest(),
        "187618eefdd775257d8a726442086b5ec1ed489c895373b2bed2774cf3fb103f"
    );
}
