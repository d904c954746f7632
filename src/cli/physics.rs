//! `synqc physics circuits`: every circuit a preset runs on a built-in
//! target, as the OpenQASM 3 an executor is sent, with the exact outcome
//! distribution synqc's engine gives it and the noise parameters it ran
//! under, so an independent simulator can be held to the same numbers
//! (tests/aer/presets_crosscheck.py). Needs no server.

use serde_json::{json, Map, Value};

use synqc::config::Config;
use synqc::controls::ControlProfile;
use synqc::say;
use synqc::sim::circuit::to_qasm3;
use synqc::sim::presets::{exact_circuits, ideal_twin, noise_params, plant_of, IDEAL_TWIN};
use synqc::sim::{Preset, SimRequest, ENGINE_VERSION};
use synqc::targets::Targets;

use super::flags::{no_leftovers, number, parse_flags, take};
use super::help::help_of;

/// Exit status of a request that names something that does not exist (an
/// unknown preset, target or control): a usage error, not a failure.
const USAGE_EXIT: i32 = 2;

pub(super) fn physics(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("circuits") => circuits(&args[1..]),
        _ => Err(format!(
            "physics needs a subcommand\n\n{}",
            help_of(&["physics".to_string()]).unwrap_or_default()
        )),
    }
}

/// Says why the request cannot be met and exits with [`USAGE_EXIT`].
fn refuse(why: String) -> ! {
    eprintln!("synqc: {why}");
    std::process::exit(USAGE_EXIT)
}

fn circuits(args: &[String]) -> Result<(), String> {
    let (mut flags, words) = parse_flags(args)?;
    if let Some(w) = words.first() {
        return Err(format!("unexpected argument '{w}'"));
    }
    let preset_name = take(&mut flags, "preset").ok_or("--preset NAME is required")?;
    let target = take(&mut flags, "target").ok_or("--target ID is required")?;
    let seed: u64 = number(&mut flags, "seed")?.unwrap_or(1);
    let shots: Option<u64> = number(&mut flags, "shots")?;
    let compare_with = take(&mut flags, "compare-with");
    let mut controls = Vec::new();
    while let Some(c) = take(&mut flags, "control") {
        controls.push(c);
    }
    no_leftovers(&flags, "physics circuits")?;

    let preset = match Preset::parse(&preset_name) {
        Some(Preset::Circuit) => refuse(
            "the circuit preset runs a client's program, not circuits of its own; \
             name one of the other presets"
                .to_string(),
        ),
        Some(p) => p,
        None => refuse(format!(
            "unknown preset '{preset_name}'; name one of {}",
            preset_names()
        )),
    };
    // Every built-in target with its built-in profile, provider targets
    // simulated: what a default appliance with provider simulation runs.
    let targets = Targets::new(&Config {
        allow_provider_simulation: true,
        ..Config::default()
    });
    let target_plant = |id: &str| {
        targets.plant(id).unwrap_or_else(|_| {
            refuse(format!(
                "unknown target '{id}'; name one of {}",
                targets.ids().join(", ")
            ))
        })
    };
    let plant = target_plant(&target);
    let compare = (preset == Preset::BackendCompare).then(|| {
        match compare_with
            .as_deref()
            .or_else(|| targets.default_compare(&target))
        {
            Some(IDEAL_TWIN) | None => ideal_twin(&plant),
            Some(id) => target_plant(id),
        }
    });
    let controls = control_profile(&controls).unwrap_or_else(|why| refuse(why));
    let shots = shots
        .unwrap_or(Config::default().default_shot_budget)
        .max(preset.min_shots());

    let req = SimRequest {
        preset,
        plant,
        compare_with: compare,
        shots,
        seed,
        controls,
        marked: None,
        program: None,
    };
    let exact = exact_circuits(&req).map_err(|e| format!("{preset_name} on {target}: {e:?}"))?;
    let circuits: Vec<Value> = exact
        .iter()
        .map(|c| {
            let job = &c.job;
            let plant = plant_of(&req, job);
            let measured: Vec<usize> = (0..job.qubits).collect();
            json!({
                "name": job.name,
                "target": job.target,
                "qubits": job.qubits,
                "qasm": to_qasm3(job.qubits, &job.ops, &measured),
                "noise_params": noise_params(plant, &req.controls),
                "quadrature_nodes": c.nodes,
                "quadrature_error": c.quadrature_error,
                "distribution": keyed(&c.dist, job.qubits),
                "ideal": keyed(&c.ideal, job.qubits),
            })
        })
        .collect();
    let out = json!({
        "engine_version": ENGINE_VERSION,
        "preset": preset.as_str(),
        "target": req.plant.target,
        "compare_with": req.compare_with.as_ref().map(|p| p.target.clone()),
        "seed": seed,
        "shots": shots,
        "controls": req.controls,
        "keys": "as an executor's counts: c[i] = measure q[i], bit 0 rightmost (qubit 0 is the last character)",
        "circuits": circuits,
    });
    say!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn preset_names() -> String {
    let names: Vec<&str> = Preset::ALL
        .iter()
        .filter(|p| **p != Preset::Circuit)
        .map(|p| p.as_str())
        .collect();
    names.join(", ")
}

/// A distribution over engine basis indices (qubit 0 the most significant
/// bit) keyed as an executor keys counts of `c[i] = measure q[i]`: the
/// engine's bit string reversed. Exact zeros are left out.
fn keyed(p: &[f64], qubits: usize) -> Map<String, Value> {
    p.iter()
        .enumerate()
        .filter(|(_, &v)| v != 0.0)
        .map(|(i, &v)| {
            let key: String = synqc::sim::engine::bitstring(i, qubits).chars().rev().collect();
            (key, json!(v))
        })
        .collect()
}

/// The default controls with each `key=value` in place (values as JSON:
/// numbers, true/false), checked as a run's control_overrides are.
fn control_profile(pairs: &[String]) -> Result<ControlProfile, String> {
    let mut value = serde_json::to_value(ControlProfile::default()).map_err(|e| e.to_string())?;
    let Some(fields) = value.as_object_mut() else {
        return Err("the control profile is not an object".to_string());
    };
    for pair in pairs {
        let Some((key, text)) = pair.split_once('=') else {
            return Err(format!(
                "--control takes key=value, not '{pair}'; for example --control drive_bias=1.08"
            ));
        };
        if !fields.contains_key(key) {
            let known: Vec<&str> = fields.keys().map(String::as_str).collect();
            return Err(format!(
                "unknown control '{key}'; name one of {}",
                known.join(", ")
            ));
        }
        let v = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
        fields.insert(key.to_string(), v);
    }
    let controls: ControlProfile = serde_json::from_value(value).map_err(|e| {
        format!(
            "--control: {e}; give numbers for numeric controls and true or false for thermal_guard_enabled"
        )
    })?;
    let bad = controls.validate("");
    if let Some(first) = bad.first() {
        return Err(format!("--control {} {}", first.loc, first.msg));
    }
    Ok(controls)
}
