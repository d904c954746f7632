//! Physics statistics checks, too slow for every `cargo test`: run them with
//! `cargo test --profile stats --lib stats_ -- --ignored --nocapture`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::estimators::fidelity_of;
use super::tests::req;
use super::*;

/// A distribution map of a result (bit string to probability) as a lookup.
fn probabilities(v: &Value) -> BTreeMap<String, f64> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, p)| (k.clone(), p.as_f64().unwrap_or(f64::NAN)))
                .collect()
        })
        .unwrap_or_default()
}

/// fidelity_dist_v1 of the exact noisy distribution `noisy` against the
/// result's noise-free one: the value the sampled fidelity estimates.
fn exact_fidelity(noisy: &Value, ideal: &BTreeMap<String, f64>) -> f64 {
    let noisy = probabilities(noisy);
    let keys: BTreeSet<&String> = noisy.keys().chain(ideal.keys()).collect();
    let at = |m: &BTreeMap<String, f64>, k: &String| m.get(k).copied().unwrap_or(0.0);
    let p: Vec<f64> = keys.iter().map(|k| at(&noisy, k)).collect();
    let q: Vec<f64> = keys.iter().map(|k| at(ideal, k)).collect();
    fidelity_of(&p, &q)
}

/// The exact value of KPI `name` of a run on synqc's engine, from what the
/// result reports beside its counts.
fn exact_value(preset: Preset, name: &str, o: &SimOutcome) -> f64 {
    let a = &o.artifacts;
    match (preset, name) {
        (Preset::GroverDemo, "success_probability") => {
            let marked = a["marked"].as_str().unwrap_or_default();
            probabilities(&a["noisy_distribution"])
                .get(marked)
                .copied()
                .unwrap_or(f64::NAN)
        }
        // The ideal final bit is 1: the chance of reading it, over both
        // probe outcomes.
        (Preset::DpdDemo, _) => (0..2)
            .map(|k| {
                let k = k.to_string();
                a["probe_outcome_probabilities"][&k].as_f64().unwrap_or(f64::NAN)
                    * a["conditional_distributions"][&k]["1"]
                        .as_f64()
                        .unwrap_or(f64::NAN)
            })
            .sum(),
        (Preset::BackendCompare, _) => {
            let first = a["targets"][0].as_str().unwrap_or_default();
            exact_fidelity(
                &a["per_target"][first]["noisy_distribution"],
                &o.kpis.expected_distribution,
            )
        }
        _ => exact_fidelity(&a["noisy_distribution"], &o.kpis.expected_distribution),
    }
}

/// Interval coverage (issue 21): at 1,024 shots the reported ci95 of each
/// sampled headline KPI must contain the KPI's exact value (from the exact
/// noisy distribution) 94-96% of the time. Seeds: a coverage estimate over
/// 1,000 has a binomial standard error of 0.7%, so [94%, 96%] is only
/// +-1.45 of them and a method at exactly 95.0% would miss it in about one
/// case in seven (here one of twelve did); over 10,000 the band is +-4.5
/// standard errors, so the test fails for a method that is off, not for
/// one that was unlucky.
#[test]
#[ignore]
fn stats_interval_coverage() {
    const SEEDS: u64 = 10_000;
    const SHOTS: u64 = 1024;
    let ghz = circuit::parse(
        "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[3] q;\nbit[3] c;\nh q[0];\ncx q[0], q[1];\n\
         cx q[1], q[2];\nc = measure q;\n",
        &circuit::CircuitLimits::default(),
    )
    .expect("the GHZ program parses");
    let cases: [(Preset, &[&str]); 5] = [
        (Preset::HelloQuantumSim, &["fidelity"]),
        (Preset::GroverDemo, &["fidelity", "success_probability"]),
        (Preset::DpdDemo, &["fidelity"]),
        // The first target's fidelity, from its half of the shots.
        (Preset::BackendCompare, &["fidelity"]),
        (Preset::Circuit, &["fidelity"]),
    ];
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    for target in ["sim_local", "rigetti_forest"] {
        for (preset, names) in cases {
            let mut covered = vec![0u64; names.len()];
            let (mut exact_seen, mut width) = (vec![f64::NAN; names.len()], vec![0.0; names.len()]);
            for seed in 1..=SEEDS {
                let mut r = req(preset, target, SHOTS, seed);
                if preset == Preset::Circuit {
                    r.program = Some(ghz.clone());
                }
                let o = run(&r, None, &|| false).expect("the preset runs");
                for (i, name) in names.iter().enumerate() {
                    let d = o
                        .kpi_details
                        .iter()
                        .find(|d| d.name == *name)
                        .unwrap_or_else(|| panic!("{preset:?} reports {name}"));
                    let exact = exact_value(preset, name, &o);
                    assert!(exact.is_finite(), "{preset:?} {target}: exact {name}");
                    let [lo, hi] = d.ci95.unwrap_or_else(|| panic!("{preset:?} {name} has a ci95"));
                    covered[i] += u64::from(lo <= exact && exact <= hi);
                    exact_seen[i] = exact;
                    width[i] += (hi - lo) / SEEDS as f64;
                }
            }
            for (i, name) in names.iter().enumerate() {
                let coverage = 100.0 * covered[i] as f64 / SEEDS as f64;
                rows.push((
                    format!("{} {target} {name}", preset.as_str()),
                    exact_seen[i],
                    width[i],
                    coverage,
                ));
            }
        }
    }
    println!(
        "{:<52} {:>8} {:>10} {:>9}",
        "preset target kpi", "exact", "mean width", "coverage"
    );
    for (label, exact, width, coverage) in &rows {
        println!("{label:<52} {exact:>8.4} {width:>10.4} {coverage:>8.1}%");
    }
    println!(
        "{} seeds x {} cases at {SHOTS} shots in {:.1} s",
        SEEDS,
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    let outside: Vec<&String> = rows
        .iter()
        .filter(|r| !(94.0..=96.0).contains(&r.3))
        .map(|r| &r.0)
        .collect();
    assert!(outside.is_empty(), "coverage outside [94%, 96%]: {outside:?}");
}
