//! Admission: whether a run request becomes a run, and which run. From the
//! parsed body, the limits of the configuration, the targets and the
//! active control profile to either the run record to store or the reason
//! it is refused. No I/O: what depends on the store (the queue's length,
//! free disk, the budget window, the idempotency key) is checked by the
//! caller, and the caller hands in the id, session and random seed.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{Mode, RunId, RunRecord, RunStatus};
use crate::controls::ControlProfile;
use crate::sim::circuit::CircuitLimits;
use crate::sim::presets::IDEAL_TWIN;
use crate::sim::{self, Preset};
use crate::targets::{self, Targets};
use crate::validation::FieldError;

mod request;
mod suggest;
pub use request::preset_choices;
pub use request::unknown_target;
use request::{parse_run_request, ParsedRun};

/// Why a run request is not admitted. The HTTP layer turns each into the
/// `ApiError` of the same name, which renders it.
#[derive(Debug)]
pub enum Refusal {
    /// 422: every bad field of the request.
    Invalid(Vec<FieldError>),
    /// 400 INVALID_TARGET: `field` names no target.
    UnknownTarget {
        field: &'static str,
        given: String,
        did_you_mean: Option<String>,
        /// Every value the field accepts.
        valid: Vec<String>,
    },
    /// 403: `field` names a provider target whose simulation is disabled.
    ProviderSimDisabled { field: &'static str, target: String },
    /// 422: a guardrail on the shots (the per-run cap in prod mode, the
    /// preset's protocol minimum).
    BudgetGuardrail { message: String, detail: Value },
}

/// The configuration values admission depends on.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The shots of a request that names no shot_budget.
    pub default_shot_budget: u64,
    /// The per-run cap: clamped to in explore and calibrate, refused in prod.
    pub max_shots_per_experiment: u64,
    /// What a circuit run's program may ask for.
    pub circuit: CircuitLimits,
}

/// What the caller supplies that admission may not make itself: the new
/// run's id, its budget session and a random seed for a request that
/// names none.
#[derive(Clone, Debug)]
pub struct Stamp {
    pub id: RunId,
    pub session_id: String,
    pub random_seed: u64,
}

/// An admitted run: the record to submit (its warnings in it) and the
/// digest of the request as understood, which an Idempotency-Key is bound to.
#[derive(Debug)]
pub struct Admitted {
    pub record: RunRecord,
    pub request_digest: [u8; 32],
}

/// Why `field` cannot name target `id`, as a refusal.
fn refused(targets: &Targets, field: &'static str, id: &str, why: targets::Refusal) -> Refusal {
    match why {
        targets::Refusal::Unknown => unknown_target(targets, field, id),
        targets::Refusal::ProviderSimDisabled => Refusal::ProviderSimDisabled {
            field,
            target: id.to_string(),
        },
    }
}

/// backend_compare's compare_with when the request names none, and the
/// warning that says so (docs/api.md): the first other available target, else
/// the noise-free twin, so the preset works on a default install.
fn default_compare(targets: &Targets, hardware_target: &str) -> (String, String) {
    match targets.default_compare(hardware_target) {
        Some(other) => (
            other.to_string(),
            format!(
                "compare_with was not set, so backend_compare compares {hardware_target} with \
                 {other}, the first other available target in /hardware/targets; set compare_with \
                 to choose another, or to ideal for the noise-free twin."
            ),
        ),
        None => (
            IDEAL_TWIN.to_string(),
            format!(
                "compare_with was not set and no target other than {hardware_target} is available, \
                 so backend_compare compares it with ideal, the noise-free twin of the same circuit; \
                 set compare_with to choose the second target, or enable allow_provider_simulation \
                 to compare with a provider's simulated noise profile."
            ),
        ),
    }
}

/// Admits a run request body: parses and validates it, checks its targets,
/// applies the shot guardrails (the prod clamp refusal, the preset's
/// protocol minimum) and builds the run record under `stamp`.
pub fn admit(
    body: &Value,
    limits: &Limits,
    targets: &Targets,
    active: &ControlProfile,
    stamp: Stamp,
) -> Result<Admitted, Refusal> {
    let ParsedRun {
        request,
        controls,
        program,
        mut warnings,
    } = parse_run_request(body, targets, active, &limits.circuit)?;
    let plant = targets
        .plant(&request.hardware_target)
        .map_err(|r| refused(targets, "hardware_target", &request.hardware_target, r))?;
    let compare_with = match (request.preset, &request.compare_with) {
        (Preset::BackendCompare, Some(named)) => Some(named.clone()),
        (Preset::BackendCompare, None) => {
            let (chosen, why) = default_compare(targets, &request.hardware_target);
            warnings.push(why);
            Some(chosen)
        }
        _ => None,
    };
    if let Some(c) = &compare_with {
        targets
            .compare_plant(c, &plant)
            .map_err(|r| refused(targets, "compare_with", c, r))?;
    }
    let cap = limits.max_shots_per_experiment;
    let requested = request.shot_budget.unwrap_or(limits.default_shot_budget);
    if requested > cap && request.mode == Mode::Prod {
        return Err(Refusal::BudgetGuardrail {
            message: format!(
                "shot_budget {requested} exceeds max_shots_per_experiment {cap}, and prod mode does not \
                 clamp; nothing was submitted."
            ),
            detail: json!({"requested": requested, "max_shots_per_experiment": cap}),
        });
    }
    let shots = requested.min(cap);
    let minimum = sim::min_shots(request.preset);
    if shots < minimum {
        return Err(Refusal::BudgetGuardrail {
            message: format!(
                "{} needs at least {minimum} shots and shot_budget is {shots}; nothing was submitted.",
                request.preset.as_str()
            ),
            detail: json!({"requested": shots, "minimum": minimum, "preset": request.preset}),
        });
    }
    // The body as understood (not as spelled), so reformatting the same
    // request is still the same request. Unknown fields (and the warnings
    // naming them) are left out on purpose: they change nothing about the
    // run, so a retry with the same key and other ignored extras returns
    // the same run.
    let request_digest = Sha256::digest(format!("{request:?}").as_bytes()).into();
    let Stamp {
        id,
        session_id,
        random_seed,
    } = stamp;
    let record = RunRecord {
        id,
        preset: request.preset,
        hardware_target: request.hardware_target,
        compare_with,
        mode: request.mode,
        shot_budget: requested,
        shots,
        seed: request.seed.unwrap_or(random_seed),
        notes: request.notes,
        marked: request.marked,
        qasm: request.qasm,
        circuit_qubits: program.map(|p| p.qubits as u32),
        controls,
        session_id,
        budget_window_ms: 0,
        status: RunStatus::Queued,
        created_at: id.unix_ms() as f64 / 1000.0,
        started_at: None,
        finished_at: None,
        attempts: 0,
        crashes: 0,
        error: None,
        result: None,
        warnings,
        priority: Some(request.priority.unwrap_or_else(|| request.mode.priority())),
        not_before: request.not_before,
        noise_profile_version: None,
        schedule: None,
    };
    Ok(Admitted {
        record,
        request_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn admit_with(body: Value, cap: u64) -> Result<Admitted, Refusal> {
        let limits = Limits {
            default_shot_budget: 1024,
            max_shots_per_experiment: cap,
            circuit: CircuitLimits::default(),
        };
        let stamp = Stamp {
            id: RunId::new(1_700_000_000_000, 0, 7),
            session_id: "lab".into(),
            random_seed: 42,
        };
        admit(
            &body,
            &limits,
            &Targets::new(&Config::default()),
            &ControlProfile::default(),
            stamp,
        )
    }

    #[test]
    fn admission_clamps_to_the_cap_but_prod_is_refused_above_it() {
        let rec = match admit_with(json!({"preset": "health", "shot_budget": 5000}), 2000) {
            Ok(a) => a.record,
            Err(e) => panic!("expected an admitted run, got {e:?}"),
        };
        assert_eq!((rec.shot_budget, rec.shots), (5000, 2000));
        assert_eq!(rec.seed, 42, "the stamp's seed when the request names none");
        assert_eq!(rec.session_id, "lab");
        assert_eq!(rec.status, RunStatus::Queued);
        assert!(matches!(
            admit_with(
                json!({"preset": "health", "shot_budget": 5000, "mode": "prod"}),
                2000
            ),
            Err(Refusal::BudgetGuardrail { .. })
        ));
        let minimum = sim::min_shots(Preset::Health);
        assert!(matches!(
            admit_with(json!({"preset": "health", "shot_budget": minimum - 1}), 2000),
            Err(Refusal::BudgetGuardrail { .. })
        ));
    }

    #[test]
    fn the_digest_is_of_the_request_as_understood() {
        let digest = |body| admit_with(body, 2000).map(|a| a.request_digest).ok();
        let plain = digest(json!({"preset": "health", "seed": 3}));
        assert!(plain.is_some());
        assert_eq!(plain, digest(json!({"seed": 3, "preset": "health", "colour": 1})));
        assert_ne!(plain, digest(json!({"preset": "health", "seed": 4})));
    }
}
