//! GET /calibrations: the calibration history that succeeded health runs
//! left per target (store/calibration.rs), newest first; and the write-back
//! of a calibration to a simulated target's noise profile,
//! GET|POST /hardware/targets/{id}/calibration.

use serde_json::{json, Value};
use tide::{Request, Response, StatusCode};

use super::{json_body, json_response};
use crate::error::{ApiError, FieldError};
use crate::run::RunId;
use crate::store::{Calibration, Fitted, NewProfile, ProfileVersion};
use crate::targets::{Calibrated, DerivedModel};
use crate::State;

/// Entries a listing returns unless `limit` says otherwise, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;

pub async fn list(req: Request<State>) -> Result<Response, ApiError> {
    let mut bad = Vec::new();
    let mut target = None;
    let mut limit = DEFAULT_LIMIT;
    let targets = &req.state().targets;
    for (k, v) in req.url().query_pairs() {
        let shown: String = v.chars().take(64).collect();
        match k.as_ref() {
            "hardware_target" => match super::target_param(targets, &v) {
                Ok(id) => target = Some(id),
                Err(e) => bad.push(e),
            },
            "limit" => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = n,
                _ => bad.push(FieldError::new(
                    "limit",
                    format!("'{shown}' is not an integer from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"),
                )),
            },
            _ => {}
        }
    }
    if !bad.is_empty() {
        return Err(ApiError::Invalid(bad));
    }
    let state = req.state().clone();
    let history = smol::unblock(move || state.store.calibration_history(target.as_deref(), limit)).await?;
    Ok(json_response(StatusCode::Ok, &json!({ "calibrations": history })))
}

/// The target a write-back route names, or 404.
fn target_of(req: &Request<State>) -> Result<&'static str, ApiError> {
    let raw = req.param("id").unwrap_or("");
    let targets = &req.state().targets;
    targets.get(raw).map(|t| t.id).ok_or_else(|| ApiError::Missing {
        what: format!(
            "Unknown hardware target '{}'; nothing was changed.",
            raw.chars().take(64).collect::<String>()
        ),
        hint: format!("Use one of {} (GET /hardware/targets).", targets.ids().join(", ")),
    })
}

/// A target's noise profile as runs use it, with its version, what the
/// engine derives from it and the versions written back so far.
fn profile_document(state: &State, target: &str, versions: &[ProfileVersion]) -> Value {
    let current = state.targets.noise_profile(target);
    json!({
        "hardware_target": target,
        "version": current.as_ref().map(|c| c.1),
        "derived_noise_model": current.as_ref().map(|c| DerivedModel::of(&c.0)),
        "noise_profile": current.map(|c| c.0),
        "versions": versions,
    })
}

/// The T2* a write-back sets from a calibration's fits, and why it is not
/// the fitted one when it is not. The model needs T2* <= T2 (quasi-static
/// dephasing only adds decay). A fitted T2* above the fitted T2echo whose
/// 95% intervals overlap is what noise does to two equal times: the profile
/// gets T2* = T2echo (no quasi-static dephasing) and the answer says so.
/// Beyond the intervals the fits contradict each other, and nothing is
/// written.
fn written_t2star(cal: &Calibration) -> Result<(f64, Option<String>), ApiError> {
    let (star, echo) = (cal.t2star_us, cal.t2echo_us);
    if star.value <= echo.value {
        return Ok((star.value, None));
    }
    let overlap = |a: Fitted, b: Fitted| match (a.ci95, b.ci95) {
        (Some(a), Some(b)) => a[0] <= b[1],
        _ => false,
    };
    if overlap(star, echo) {
        return Ok((
            echo.value,
            Some(format!(
                "t2star_us: the fitted T2* ({} us) is above the fitted T2echo ({} us) within their 95% \
                 intervals, so the profile has T2* = T2echo (no quasi-static dephasing); run health with \
                 a larger shot_budget for a sharper T2*.",
                star.value, echo.value
            )),
        ));
    }
    Err(ApiError::Invalid(vec![FieldError::new(
        "from_run",
        format!(
            "its fitted T2* ({} us, 95% {}) is above its fitted T2echo ({} us, 95% {}) beyond both \
             intervals, which no physical qubit does; nothing was changed. Check the run's Ramsey and \
             echo fits in its artifacts and write back another health run",
            star.value,
            interval(star),
            echo.value,
            interval(echo)
        ),
    )]))
}

fn interval(f: Fitted) -> String {
    f.ci95
        .map(|[lo, hi]| format!("{lo} to {hi}"))
        .unwrap_or_else(|| "not known".to_string())
}

/// GET /hardware/targets/{id}/calibration.
pub async fn profile(req: Request<State>) -> Result<Response, ApiError> {
    let target = target_of(&req)?;
    let state = req.state().clone();
    let versions = smol::unblock(move || state.store.profile_versions(target)).await?;
    Ok(json_response(
        StatusCode::Ok,
        &profile_document(req.state(), target, &versions),
    ))
}

/// What a write-back asks for.
enum WriteBack {
    FromRun(RunId),
    Version(u32),
}

fn write_back_of(body: &Value) -> Result<WriteBack, ApiError> {
    let invalid = |loc: &str, msg: &str| ApiError::Invalid(vec![FieldError::new(loc, msg)]);
    let Value::Object(fields) = body else {
        return Err(invalid("body", "must be a JSON object with from_run or version"));
    };
    if let Some(unknown) = fields.keys().find(|k| *k != "from_run" && *k != "version") {
        return Err(invalid(
            unknown,
            "is not a field of a calibration write-back; send from_run or version",
        ));
    }
    match (fields.get("from_run"), fields.get("version")) {
        (Some(run), None) => run
            .as_str()
            .and_then(RunId::parse)
            .map(WriteBack::FromRun)
            .ok_or_else(|| {
                invalid(
                    "from_run",
                    "must be the id of a succeeded health run on this target",
                )
            }),
        (None, Some(v)) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .map(WriteBack::Version)
            .ok_or_else(|| invalid("version", "must be an integer from 0 (the configured profile) up")),
        _ => Err(invalid(
            "body",
            "needs exactly one of from_run (a health run's id) and version (a profile version to restore)",
        )),
    }
}

/// POST /hardware/targets/{id}/calibration: a simulated target runs with
/// a health run's fits from now on (`from_run`), or with an earlier
/// version's values again (`version`); either way a new version.
pub async fn write_back(mut req: Request<State>) -> Result<Response, ApiError> {
    let body = json_body(&mut req).await?;
    let target = target_of(&req)?;
    let state = req.state().clone();
    let wanted = write_back_of(&body)?;
    if state
        .targets
        .get(target)
        .is_some_and(|t| t.execution == "executor")
    {
        return Err(ApiError::TargetBound {
            target: target.to_string(),
        });
    }
    let configured = match state.targets.get(target) {
        Some(t) => t.noise_profile.clone(),
        None => return Err(ApiError::Internal(format!("target {target} left the registry"))),
    };
    // What the answer must say was not taken as measured.
    let mut adjustments = Vec::new();
    let new = match wanted {
        WriteBack::FromRun(id) => {
            state.store.archive_opened().await;
            let rec = state.store.get(&id)?;
            let cal = rec
                .as_ref()
                .and_then(Calibration::of)
                .filter(|c| c.hardware_target == target)
                .ok_or_else(|| ApiError::Missing {
                    what: format!("No calibration of {target} from run {id}; nothing was changed."),
                    hint: format!(
                        "Set from_run to a succeeded health run on {target}: GET \
                         /calibrations?hardware_target={target} lists them."
                    ),
                })?;
            let (t2star_us, note) = written_t2star(&cal)?;
            adjustments.extend(note);
            NewProfile {
                from_run: Some(id),
                reverted_to: None,
                t1_us: cal.t1_us.value,
                // The model's T2 is the Markovian coherence time, which
                // an echo measures; T2* adds the quasi-static part that
                // Ramsey sees (docs/physics.md).
                t2_us: cal.t2echo_us.value,
                t2star_us,
                // p1q is the published average gate error, which is what
                // randomized benchmarking's error per Clifford measures.
                p1q: cal.epc.value,
            }
        }
        WriteBack::Version(0) => NewProfile {
            from_run: None,
            reverted_to: Some(0),
            t1_us: configured.t1_us,
            t2_us: configured.t2_us,
            t2star_us: configured.t2star_us,
            p1q: configured.p1q,
        },
        WriteBack::Version(n) => {
            let versions = state.store.profile_versions(target)?;
            let old = versions
                .iter()
                .find(|v| v.version == n)
                .ok_or_else(|| ApiError::Missing {
                    what: format!("{target} has no noise profile version {n}; nothing was changed."),
                    hint: format!(
                        "Pick a version that GET /hardware/targets/{target}/calibration lists, or 0 for \
                         the configured profile."
                    ),
                })?;
            // A version stored before T2* existed restores with the T2*
            // it ran with (the configured ratio), written out.
            let restored = old.calibrated().apply(&configured);
            NewProfile {
                from_run: None,
                reverted_to: Some(n),
                t1_us: restored.t1_us,
                t2_us: restored.t2_us,
                t2star_us: restored.t2star_us,
                p1q: restored.p1q,
            }
        }
    };
    let candidate = Calibrated {
        version: 0,
        t1_us: new.t1_us,
        t2_us: new.t2_us,
        t2star_us: Some(new.t2star_us),
        p1q: new.p1q,
    }
    .apply(&configured);
    let problems = candidate.problems();
    if !problems.is_empty() {
        let loc = if matches!(wanted, WriteBack::FromRun(_)) {
            "from_run"
        } else {
            "version"
        };
        return Err(ApiError::Invalid(vec![FieldError::new(
            loc,
            format!(
                "its values would make an unphysical noise profile ({}); nothing was changed",
                problems.join(", ")
            ),
        )]));
    }
    let writer = state.clone();
    let stored = smol::unblock(move || {
        writer
            .store
            .add_profile_version(target, &new, crate::clock::now_ms())
    })
    .await?;
    state.targets.set_calibrated(target, stored.calibrated());
    log::info!(
        "noise profile of {target} is version {} (t1_us {}, t2_us {}, t2star_us {}, p1q {})",
        stored.version,
        stored.t1_us,
        stored.t2_us,
        candidate.t2star_us,
        stored.p1q
    );
    for a in &adjustments {
        log::warn!("noise profile of {target} version {}: {a}", stored.version);
    }
    let versions = state.store.profile_versions(target)?;
    let mut answer = profile_document(&state, target, &versions);
    answer["adjustments"] = json!(adjustments);
    Ok(json_response(StatusCode::Ok, &answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(star: f64, star_ci: Option<[f64; 2]>, echo: f64, echo_ci: Option<[f64; 2]>) -> Calibration {
        let f = |value: f64| Fitted { value, ci95: None };
        Calibration {
            run_id: RunId([7; 16]),
            hardware_target: "sim_local".into(),
            calibrated_at: 1.0,
            t1_us: f(120.0),
            t2star_us: Fitted {
                value: star,
                ci95: star_ci,
            },
            t2echo_us: Fitted {
                value: echo,
                ci95: echo_ci,
            },
            epc: f(5e-4),
            readout_assignment_fidelity: None,
        }
    }

    #[test]
    fn a_t2star_above_t2echo_is_capped_within_the_intervals_and_refused_beyond() {
        // Below T2echo: taken as fitted, nothing to say.
        let ok = written_t2star(&cal(60.0, None, 90.0, None)).expect("physical");
        assert_eq!(ok, (60.0, None));
        // Above, but the intervals overlap: T2* = T2echo, and a note.
        let (t2star, note) =
            written_t2star(&cal(92.0, Some([85.0, 99.0]), 90.0, Some([84.0, 96.0]))).expect("consistent");
        assert_eq!(t2star, 90.0);
        assert!(note.is_some_and(|n| n.contains("T2* = T2echo")));
        // Above beyond both intervals, or with no interval to judge by: refused.
        for c in [
            cal(120.0, Some([110.0, 130.0]), 90.0, Some([84.0, 96.0])),
            cal(92.0, None, 90.0, Some([84.0, 96.0])),
        ] {
            match written_t2star(&c) {
                Err(ApiError::Invalid(fields)) => {
                    assert_eq!(fields.len(), 1);
                    let text = format!("{fields:?}");
                    assert!(
                        text.contains("from_run") && text.contains("nothing was changed"),
                        "{text}"
                    );
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    }
}
