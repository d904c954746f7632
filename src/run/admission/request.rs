//! A run request as the client sent it: its fields parsed and checked,
//! every bad one listed, unknown ones named with what they likely meant.

use serde_json::{Map, Value};

use super::suggest::closest;
use super::Refusal;
use crate::controls::{ControlProfile, MAX_NOTES_CHARS};
use crate::run::{Mode, MAX_PRIORITY};
use crate::sim::circuit::{self, Circuit, CircuitLimits};
use crate::sim::presets::IDEAL_TWIN;
use crate::sim::{self, Preset};
use crate::targets::Targets;
use crate::validation::FieldError;

/// A validated run request, before defaults that depend on the server.
#[derive(Debug, PartialEq)]
pub struct RunRequest {
    pub preset: Preset,
    pub hardware_target: String,
    pub shot_budget: Option<u64>,
    pub mode: Mode,
    pub notes: Option<String>,
    pub control_overrides: Option<Map<String, Value>>,
    pub seed: Option<u64>,
    pub compare_with: Option<String>,
    pub marked: Option<String>,
    /// circuit only: the program as sent.
    pub qasm: Option<String>,
    /// Queue priority 0-9 (higher first); none: the mode's default.
    pub priority: Option<u8>,
    /// Earliest start, Unix seconds.
    pub not_before: Option<f64>,
}

/// A run request as understood, with what it runs under and what the
/// answer warns about.
#[derive(Debug)]
pub struct ParsedRun {
    pub request: RunRequest,
    /// The active control profile with the request's overrides laid over it.
    pub controls: ControlProfile,
    /// circuit only: the program, parsed and checked against the limits.
    pub program: Option<Circuit>,
    pub warnings: Vec<String>,
}

/// The run request's fields (docs/api.md), as unknown-field warnings list them.
const FIELDS: [&str; 12] = [
    "preset",
    "hardware_target",
    "shot_budget",
    "mode",
    "notes",
    "control_overrides",
    "seed",
    "compare_with",
    "marked",
    "qasm",
    "priority",
    "not_before",
];

/// Names other clients give the run request's fields, the old Python
/// service's clients first: too far from the real name for an edit distance
/// to find, but plainly meant.
const ALIASES: [(&str, &str); 35] = [
    ("shots", "shot_budget"),
    ("num_shots", "shot_budget"),
    ("n_shots", "shot_budget"),
    ("shot_count", "shot_budget"),
    ("budget", "shot_budget"),
    ("target", "hardware_target"),
    ("backend", "hardware_target"),
    ("backend_id", "hardware_target"),
    ("backend_name", "hardware_target"),
    ("device", "hardware_target"),
    ("hardware", "hardware_target"),
    ("provider", "hardware_target"),
    ("preset_id", "preset"),
    ("preset_name", "preset"),
    ("experiment", "preset"),
    ("compare", "compare_with"),
    ("compare_to", "compare_with"),
    ("compare_target", "compare_with"),
    ("baseline", "compare_with"),
    ("controls", "control_overrides"),
    ("control_profile", "control_overrides"),
    ("overrides", "control_overrides"),
    ("note", "notes"),
    ("description", "notes"),
    ("random_seed", "seed"),
    ("marked_state", "marked"),
    ("run_mode", "mode"),
    ("program", "qasm"),
    ("circuit", "qasm"),
    ("openqasm", "qasm"),
    ("prio", "priority"),
    ("start_at", "not_before"),
    ("start_after", "not_before"),
    ("scheduled_for", "not_before"),
    ("run_at", "not_before"),
];

/// At most this many unknown fields are named one by one; a body with
/// thousands of them gets one more line, not thousands stored with the run.
const MAX_NAMED_UNKNOWN: usize = 16;

/// The run request field an unknown field name most likely meant.
fn field_meant(name: &str) -> Option<&'static str> {
    let normal = name.to_lowercase().replace('-', "_");
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == normal)
        .map(|&(_, field)| field)
        .or_else(|| closest(name, &FIELDS))
}

/// The warnings for fields the request names but synqc does not know.
fn unknown_field_warnings(obj: &Map<String, Value>) -> Vec<String> {
    let unknown: Vec<&String> = obj.keys().filter(|k| !FIELDS.contains(&k.as_str())).collect();
    let mut warnings: Vec<String> = unknown
        .iter()
        .take(MAX_NAMED_UNKNOWN)
        .map(|name| {
            let shown: String = name.chars().take(64).collect();
            match field_meant(name) {
                Some(field) => {
                    format!("Unknown field '{shown}' was ignored; did you mean '{field}'?")
                }
                None => format!(
                    "Unknown field '{shown}' was ignored; the run request fields are {}.",
                    FIELDS.join(", ")
                ),
            }
        })
        .collect();
    if unknown.len() > MAX_NAMED_UNKNOWN {
        warnings.push(format!(
            "{} more unknown fields were ignored.",
            unknown.len() - MAX_NAMED_UNKNOWN
        ));
    }
    warnings
}

/// What `field` (hardware_target or compare_with) accepts.
fn target_values(targets: &Targets, field: &str) -> Vec<&'static str> {
    let mut valid = targets.ids();
    if field == "compare_with" {
        valid.insert(0, IDEAL_TWIN);
    }
    valid
}

/// 400 INVALID_TARGET for `given` in `field`, with the values it accepts.
pub fn unknown_target(targets: &Targets, field: &'static str, given: &str) -> Refusal {
    let valid = target_values(targets, field);
    Refusal::UnknownTarget {
        field,
        given: given.chars().take(64).collect(),
        did_you_mean: closest(given, &valid).map(str::to_string),
        valid: valid.into_iter().map(str::to_string).collect(),
    }
}

/// Checks every field of a run request body and lists every bad one: one
/// 422 names them all, an unknown target among them. An unknown target
/// that is the only problem is 400 INVALID_TARGET (docs/api.md). Unknown fields
/// are accepted (old clients send extras) and named in the warnings.
pub fn parse_run_request(
    body: &Value,
    targets: &Targets,
    active: &ControlProfile,
    circuit_limits: &CircuitLimits,
) -> Result<ParsedRun, Refusal> {
    let Some(obj) = body.as_object() else {
        return Err(Refusal::Invalid(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )]));
    };
    let mut warnings = unknown_field_warnings(obj);
    let mut bad = Vec::new();
    // Unknown target ids, also listed in `bad`.
    let mut unknown_targets = Vec::new();
    let mut check_target = |field: &'static str, id: &str, bad: &mut Vec<FieldError>| {
        if !target_values(targets, field).contains(&id) {
            let e = unknown_target(targets, field, id);
            if let Refusal::UnknownTarget {
                given,
                did_you_mean,
                valid,
                ..
            } = &e
            {
                let guess = did_you_mean
                    .as_ref()
                    .map(|d| format!(" (did you mean '{d}'?)"))
                    .unwrap_or_default();
                bad.push(FieldError::new(
                    field,
                    format!(
                        "unknown target '{given}'{guess}; must be one of {}",
                        valid.join(", ")
                    ),
                ));
            }
            unknown_targets.push(e);
        }
    };
    let present = |k: &str| obj.get(k).filter(|v| !v.is_null());
    let string = |k: &str, bad: &mut Vec<FieldError>| match present(k) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            bad.push(FieldError::new(k, "must be a string"));
            None
        }
    };
    let preset = match present("preset") {
        None => {
            bad.push(FieldError::new("preset", "field required"));
            None
        }
        Some(v) => {
            let p = v.as_str().and_then(Preset::parse);
            if p.is_none() {
                bad.push(FieldError::new("preset", preset_choices(v.as_str())));
            }
            p
        }
    };
    let hardware_target = string("hardware_target", &mut bad).unwrap_or_else(|| "sim_local".into());
    check_target("hardware_target", &hardware_target, &mut bad);
    let shot_budget = match present("shot_budget") {
        None => None,
        // An int64 as the OpenAPI document says: a larger integer is
        // refused, never saturated into another number.
        Some(v) => match v.as_i64() {
            Some(n) if n >= 1 => Some(n as u64),
            Some(_) => {
                bad.push(FieldError::new("shot_budget", "must be >= 1"));
                None
            }
            None if v.is_u64() => {
                bad.push(FieldError::new(
                    "shot_budget",
                    format!("must be at most {} (a 64-bit signed integer)", i64::MAX),
                ));
                None
            }
            None => {
                bad.push(FieldError::new("shot_budget", "must be an integer >= 1"));
                None
            }
        },
    };
    let mode = match string("mode", &mut bad) {
        None => Mode::Explore,
        Some(m) => Mode::parse(&m).unwrap_or_else(|| {
            bad.push(FieldError::new("mode", "must be one of explore, calibrate, prod"));
            Mode::Explore
        }),
    };
    let notes = string("notes", &mut bad);
    if notes
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTES_CHARS)
    {
        bad.push(FieldError::new(
            "notes",
            format!("at most {MAX_NOTES_CHARS} characters"),
        ));
    }
    let control_overrides = match present("control_overrides") {
        None => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => {
            bad.push(FieldError::new("control_overrides", "must be an object"));
            None
        }
    };
    let controls = effective_controls(active, control_overrides.as_ref()).unwrap_or_else(|e| {
        bad.extend(e);
        active.clone()
    });
    let seed = match present("seed") {
        None => None,
        Some(v) => v.as_u64().or_else(|| {
            bad.push(FieldError::new("seed", "must be an integer between 0 and 2^64-1"));
            None
        }),
    };
    let compare_with = string("compare_with", &mut bad);
    // A compare_with that names no target is refused whatever the preset
    // (the API document lists the values it takes); for presets other than
    // backend_compare a valid one is ignored with a warning.
    if let Some(c) = &compare_with {
        check_target("compare_with", c, &mut bad);
    }
    match (&compare_with, preset) {
        (Some(_), Some(p)) if p != Preset::BackendCompare => warnings.push(format!(
            "compare_with is used only by backend_compare; it was ignored for preset {}.",
            p.as_str()
        )),
        _ => {}
    }
    let named_marked = string("marked", &mut bad);
    if let (Some(_), Some(p)) = (&named_marked, preset) {
        if p != Preset::GroverDemo {
            warnings.push(format!(
                "marked is used only by grover_demo; it was ignored for preset {}.",
                p.as_str()
            ));
        }
    }
    let marked = named_marked.or_else(|| notes.as_deref().and_then(marked_in_notes));
    if marked.as_deref().is_some_and(|m| !sim::valid_marked(m)) {
        bad.push(FieldError::new("marked", "must be a 3-bit string such as 101"));
    }
    let named_qasm = string("qasm", &mut bad);
    let (qasm, program) = match (preset, named_qasm) {
        (Some(Preset::Circuit), None) => {
            bad.push(FieldError::new(
                "qasm",
                "field required for preset circuit: the OpenQASM 3 or 2 program to run",
            ));
            (None, None)
        }
        (Some(Preset::Circuit), Some(src)) => match circuit::parse(&src, circuit_limits) {
            Ok(program) => (Some(src), Some(program)),
            Err(e) => {
                bad.push(FieldError::new("qasm", e.to_string()));
                (None, None)
            }
        },
        (Some(p), Some(_)) => {
            warnings.push(format!(
                "qasm is used only by preset circuit; it was ignored for preset {}.",
                p.as_str()
            ));
            (None, None)
        }
        (_, None) | (None, _) => (None, None),
    };
    let priority = match present("priority") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(p) if p <= u64::from(MAX_PRIORITY) => Some(p as u8),
            _ => {
                bad.push(FieldError::new(
                    "priority",
                    format!(
                        "must be an integer from 0 to {MAX_PRIORITY} (higher runs first; \
                         leave it out for {} in calibrate mode, {} otherwise)",
                        Mode::Calibrate.priority(),
                        Mode::Explore.priority()
                    ),
                ));
                None
            }
        },
    };
    let not_before = present("not_before").and_then(|v| {
        not_before_of(v)
            .map_err(|why| bad.push(FieldError::new("not_before", why)))
            .ok()
    });
    match preset {
        Some(preset) if bad.is_empty() => Ok(ParsedRun {
            request: RunRequest {
                preset,
                hardware_target,
                shot_budget,
                mode,
                notes,
                control_overrides,
                seed,
                compare_with,
                marked,
                qasm,
                priority,
                not_before,
            },
            controls,
            program,
            warnings,
        }),
        _ if bad.len() == 1 && unknown_targets.len() == 1 => Err(unknown_targets.remove(0)),
        _ => Err(Refusal::Invalid(bad)),
    }
}

/// The latest earliest start accepted: the end of year 9999, so that
/// milliseconds sent where seconds belong are refused, not read as a date
/// thousands of years ahead.
const LATEST_NOT_BEFORE: f64 = 253_402_300_799.0;

/// A not_before value: Unix seconds, or an RFC 3339 date-time.
fn not_before_of(v: &Value) -> Result<f64, String> {
    let what = "must be Unix seconds (a number) or an RFC 3339 date-time such as \
                2030-01-31T08:00:00Z";
    let secs = match v {
        Value::Number(n) => match n.as_f64() {
            Some(secs) if secs.is_finite() && secs >= 0.0 => secs,
            _ => return Err(format!("{what}, not before 1970")),
        },
        // Any date-time is one; one in the past, before 1970 too, starts
        // as soon as it can.
        Value::String(text) => crate::clock::parse_rfc3339(text)
            .ok_or_else(|| {
                format!(
                    "'{}' is not an RFC 3339 date-time; {what}",
                    text.chars().take(64).collect::<String>()
                )
            })?
            .max(0.0),
        _ => return Err(what.to_string()),
    };
    if secs > LATEST_NOT_BEFORE {
        return Err(format!(
            "{secs} is after the year 9999: give seconds, not milliseconds; {what}"
        ));
    }
    Ok(secs)
}

/// A field error's text for a preset name that is not one, with the names
/// that are.
pub fn preset_choices(given: Option<&str>) -> String {
    let names: Vec<&str> = Preset::ALL.iter().map(|p| p.as_str()).collect();
    let guess = given
        .and_then(|g| closest(g, &names))
        .map(|d| format!(" (did you mean '{d}'?)"))
        .unwrap_or_default();
    match given {
        Some(g) => format!(
            "unknown preset '{}'{guess}; must be one of {}",
            g.chars().take(64).collect::<String>(),
            names.join(", ")
        ),
        None => format!("must be a string, one of {}", names.join(", ")),
    }
}

/// grover_demo's marked state may be named in the notes as `marked=110`
/// (docs/physics.md); the old console did so.
fn marked_in_notes(notes: &str) -> Option<String> {
    let rest = &notes[notes.find("marked")? + "marked".len()..];
    let rest = rest.trim_start_matches([' ', ':', '=']);
    let bits: String = rest.chars().take_while(|c| *c == '0' || *c == '1').collect();
    (bits.len() == 3).then_some(bits)
}

/// The control profile a run executes with: the active profile with the
/// run's overrides laid over it, validated with the same ranges.
fn effective_controls(
    active: &ControlProfile,
    overrides: Option<&Map<String, Value>>,
) -> Result<ControlProfile, Vec<FieldError>> {
    let Some(over) = overrides else {
        return Ok(active.clone());
    };
    let invalid = |why: String| vec![FieldError::new("control_overrides", format!("invalid: {why}"))];
    let mut merged = serde_json::to_value(active).map_err(|e| invalid(e.to_string()))?;
    for (k, v) in over {
        merged[k] = v.clone();
    }
    let profile: ControlProfile = serde_json::from_value(merged).map_err(|e| invalid(e.to_string()))?;
    let bad = profile.validate("control_overrides.");
    if bad.is_empty() {
        Ok(profile)
    } else {
        Err(bad)
    }
}

#[cfg(test)]
mod tests;
