//! /runs: submit, inspect, list and cancel runs.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tide::{Request, Response, StatusCode};

use super::{json_body, json_response, session_of};
use crate::controls::{ControlProfile, MAX_NOTES_CHARS};
use crate::error::{ApiError, FieldError};
use crate::queue::run::{Mode, ResultDoc, RunId, RunRecord, RunStatus};
use crate::queue::Cancel;
use crate::sim::{self, Preset};
use crate::store::{IdempotencyKey, ListFilter, Submitted};
use crate::targets::Refusal;
use crate::{now_ms, State};

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
}

/// Checks every field of a run request body and lists every bad one.
/// Unknown fields are ignored (api.md), so newer clients keep working.
pub fn parse_run_request(body: &Value) -> Result<RunRequest, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::Invalid(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )]));
    };
    let mut bad = Vec::new();
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
                let names: Vec<&str> = Preset::ALL.iter().map(|p| p.as_str()).collect();
                bad.push(FieldError::new(
                    "preset",
                    format!("must be one of {}", names.join(", ")),
                ));
            }
            p
        }
    };
    let hardware_target = string("hardware_target", &mut bad).unwrap_or_else(|| "sim_local".into());
    let shot_budget = match present("shot_budget") {
        None => None,
        Some(v) => match v
            .as_i64()
            .or_else(|| v.as_u64().map(|u| u.min(i64::MAX as u64) as i64))
        {
            Some(n) if n >= 1 => Some(n as u64),
            Some(_) => {
                bad.push(FieldError::new("shot_budget", "must be >= 1"));
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
    let seed = match present("seed") {
        None => None,
        Some(v) => v.as_u64().or_else(|| {
            bad.push(FieldError::new("seed", "must be an integer between 0 and 2^64-1"));
            None
        }),
    };
    let compare_with = string("compare_with", &mut bad);
    let marked = string("marked", &mut bad).or_else(|| notes.as_deref().and_then(marked_in_notes));
    if marked.as_deref().is_some_and(|m| !sim::valid_marked(m)) {
        bad.push(FieldError::new("marked", "must be a 3-bit string such as 101"));
    }
    match preset {
        Some(preset) if bad.is_empty() => Ok(RunRequest {
            preset,
            hardware_target,
            shot_budget,
            mode,
            notes,
            control_overrides,
            seed,
            compare_with,
            marked,
        }),
        _ => Err(ApiError::Invalid(bad)),
    }
}

/// grover_demo's marked state may be named in the notes as `marked=110`
/// (physics.md); the old console did so.
fn marked_in_notes(notes: &str) -> Option<String> {
    let rest = &notes[notes.find("marked")? + "marked".len()..];
    let rest = rest.trim_start_matches([' ', ':', '=']);
    let bits: String = rest.chars().take_while(|c| *c == '0' || *c == '1').collect();
    (bits.len() == 3).then_some(bits)
}

/// The control profile a run executes with: the active profile with the
/// run's overrides laid over it, validated with the same ranges.
fn effective_controls(
    state: &State,
    overrides: Option<&Map<String, Value>>,
) -> Result<ControlProfile, ApiError> {
    let active = state.store.control_profile();
    let Some(over) = overrides else { return Ok(active) };
    let mut merged = serde_json::to_value(&active).map_err(|e| ApiError::Internal(e.to_string()))?;
    for (k, v) in over {
        merged[k] = v.clone();
    }
    let profile: ControlProfile = serde_json::from_value(merged).map_err(|e| {
        ApiError::Invalid(vec![FieldError::new(
            "control_overrides",
            format!("invalid: {e}"),
        )])
    })?;
    let bad = profile.validate("control_overrides.");
    if bad.is_empty() {
        Ok(profile)
    } else {
        Err(ApiError::Invalid(bad))
    }
}

fn check_target(state: &State, id: &str) -> Result<(), ApiError> {
    match state.targets.plant(id) {
        Ok(_) => Ok(()),
        Err(Refusal::Unknown) => Err(ApiError::UnknownTarget(id.to_string())),
        Err(Refusal::ProviderSimDisabled) => Err(ApiError::ProviderSimDisabled(id.to_string())),
    }
}

/// The outcome of an accepted submit.
pub enum Accepted {
    New(RunRecord),
    /// An idempotent repeat: the original run.
    Repeat(RunRecord),
}

/// Validates, reserves budget and durably enqueues a run. Shared by
/// POST /runs and the legacy POST /experiments/run. `before_commit` runs
/// with the new run's id before it is stored (the legacy route registers
/// its wait there, so it cannot miss the end).
pub async fn accept(
    req: &mut Request<State>,
    before_commit: impl FnOnce(&RunId),
) -> Result<Accepted, ApiError> {
    let state = req.state().clone();
    if state.lifecycle.is_draining() {
        return Err(ApiError::Backpressure {
            message: "synqc is shutting down; not accepting runs".into(),
            retry_after_s: 10,
        });
    }
    let body = json_body(req).await?;
    let request = parse_run_request(&body)?;
    let controls = effective_controls(&state, request.control_overrides.as_ref())?;
    check_target(&state, &request.hardware_target)?;
    let compare_with = (request.preset == Preset::BackendCompare).then(|| {
        request
            .compare_with
            .clone()
            .unwrap_or_else(|| "ibm_quantum".into())
    });
    if let Some(c) = &compare_with {
        check_target(&state, c)?;
    }
    let cfg = &state.config;
    let requested = request.shot_budget.unwrap_or(cfg.default_shot_budget);
    if requested > cfg.max_shots_per_experiment && request.mode == Mode::Prod {
        return Err(ApiError::BudgetGuardrail {
            message: format!(
                "shot_budget {requested} exceeds max_shots_per_experiment {} (prod mode does not clamp)",
                cfg.max_shots_per_experiment
            ),
            detail: json!({"requested": requested, "max_shots_per_experiment": cfg.max_shots_per_experiment}),
        });
    }
    let shots = requested.min(cfg.max_shots_per_experiment);
    let minimum = sim::min_shots(request.preset);
    if shots < minimum {
        return Err(ApiError::BudgetGuardrail {
            message: format!(
                "{} needs at least {minimum} shots; shot_budget is {shots}",
                request.preset.as_str()
            ),
            detail: json!({"requested": shots, "minimum": minimum, "preset": request.preset}),
        });
    }
    if state.store.counts.get(RunStatus::Queued) >= cfg.max_pending {
        return Err(ApiError::Backpressure {
            message: format!("The queue holds max_pending ({}) runs", cfg.max_pending),
            retry_after_s: 5,
        });
    }
    // Refuse before the disk is full, not at it: sled 0.34 can hang in a
    // flush after a write fails for lack of space.
    if let Some(free) = state.store.free_bytes().filter(|f| *f < cfg.min_free_disk_bytes) {
        return Err(ApiError::StoreUnavailable(format!(
            "disk space low: {free} bytes free on the data directory's file system, min_free_disk_bytes is {}",
            cfg.min_free_disk_bytes
        )));
    }
    let session_id = session_of(req);
    let idem = match req
        .header("Idempotency-Key")
        .map(|h| h.last().as_str().to_string())
    {
        None => None,
        Some(k) if k.is_empty() || k.len() > 255 => {
            return Err(ApiError::Invalid(vec![FieldError::new(
                "Idempotency-Key",
                "must be 1 to 255 characters",
            )]))
        }
        Some(key) => {
            // The body as understood (not as spelled), so reformatting the
            // same request is still the same request.
            let normal = format!("{request:?}");
            Some(IdempotencyKey {
                scope: session_id.clone(),
                key,
                body_digest: Sha256::digest(normal.as_bytes()).into(),
            })
        }
    };
    let now = now_ms();
    let id = state.store.new_run_id();
    let record = RunRecord {
        id,
        preset: request.preset,
        hardware_target: request.hardware_target,
        compare_with,
        mode: request.mode,
        shot_budget: requested,
        shots,
        seed: request.seed.unwrap_or_else(rand::random),
        notes: request.notes,
        marked: request.marked,
        controls,
        session_id: session_id.clone(),
        budget_window_ms: 0,
        status: RunStatus::Queued,
        created_at: id.unix_ms() as f64 / 1000.0,
        started_at: None,
        finished_at: None,
        attempts: 0,
        crashes: 0,
        error: None,
        result: None,
    };
    before_commit(&id);
    // Answered once on disk; a failed flush took the run back already.
    match state.store.submit(&record, idem.as_ref(), now).await? {
        Submitted::Accepted { .. } => {}
        Submitted::Existing(original) => return Ok(Accepted::Repeat(*original)),
        Submitted::KeyConflict => {
            return Err(ApiError::Conflict(
                "Idempotency-Key was already used with a different request".into(),
            ))
        }
        Submitted::BudgetExhausted {
            remaining,
            resets_in_s,
        } => {
            metrics::counter!("synqc_budget_rejections_total", "reason" => "budget_exhausted").increment(1);
            return Err(ApiError::BudgetExhausted {
                session_id,
                remaining,
                requested: shots,
                resets_in_s,
            });
        }
    }
    metrics::counter!(
        "synqc_runs_submitted_total",
        "preset" => record.preset.as_str(),
        "hardware_target" => record.hardware_target.clone(),
        "mode" => record.mode.as_str()
    )
    .increment(1);
    state.events.publish(&record);
    state.engine.wake();
    Ok(Accepted::New(record))
}

/// RunSubmission: the status fields every run view shares.
pub fn submission_json(rec: &RunRecord) -> Value {
    let e = rec.error.as_ref();
    json!({
        "id": rec.id,
        "status": rec.status,
        "created_at": rec.created_at,
        "started_at": rec.started_at,
        "finished_at": rec.finished_at,
        "error": e.map(|e| &e.message),
        "error_code": e.map(|e| &e.code),
        "error_message": e.map(|e| &e.message),
        "error_detail": e.map(|e| &e.detail),
        "action_hint": e.map(|e| &e.action_hint),
    })
}

/// RunStatus: the submission plus what GET /runs/{id} adds, but for the
/// result (see [`WithResult`]).
fn status_json(state: &State, rec: &RunRecord) -> Value {
    let mut v = submission_json(rec);
    let position = if rec.status == RunStatus::Queued {
        state.store.queue_position(rec)
    } else {
        None
    };
    v["attempts"] = json!(rec.attempts);
    v["queue_position"] = json!(position);
    v["mode"] = json!(rec.mode);
    v["preset"] = json!(rec.preset);
    v["hardware_target"] = json!(rec.hardware_target);
    v["shot_budget"] = json!(rec.shot_budget);
    v["seed"] = json!(rec.seed);
    v
}

/// A RunStatus document with its `result` (null until the run succeeded)
/// written after the other fields straight from the stored text.
struct WithResult<'a> {
    status: Value,
    result: Option<&'a ResultDoc>,
}

impl serde::Serialize for WithResult<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let fields = self.status.as_object();
        let mut map = s.serialize_map(Some(fields.map_or(0, |f| f.len()) + 1))?;
        for (k, v) in fields.into_iter().flatten() {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry("result", &self.result)?;
        map.end()
    }
}

/// The full RunStatus of a run, result included.
fn status_response(state: &State, status: StatusCode, rec: &RunRecord) -> Response {
    let doc = WithResult {
        status: status_json(state, rec),
        result: rec.result.as_ref(),
    };
    json_response(status, &doc)
}

pub async fn submit(mut req: Request<State>) -> Result<Response, ApiError> {
    match accept(&mut req, |_| {}).await? {
        Accepted::New(rec) => {
            let mut res = json_response(StatusCode::Accepted, &submission_json(&rec));
            res.insert_header("Location", format!("/runs/{}", rec.id));
            Ok(res)
        }
        Accepted::Repeat(rec) => {
            let mut res = json_response(StatusCode::Ok, &submission_json(&rec));
            res.insert_header("Location", format!("/runs/{}", rec.id));
            Ok(res)
        }
    }
}

/// The run named by the `:id` path parameter, or 404.
pub async fn find_run(req: &Request<State>) -> Result<RunRecord, ApiError> {
    let raw = req.param("id").unwrap_or("");
    let missing = || {
        ApiError::NotFound(format!(
            "Unknown run id '{}'",
            raw.chars().take(64).collect::<String>()
        ))
    };
    let id = RunId::parse(raw).ok_or_else(missing)?;
    req.state().store.archive_opened().await;
    req.state().store.get(&id)?.ok_or_else(missing)
}

pub async fn get(req: Request<State>) -> Result<Response, ApiError> {
    let rec = find_run(&req).await?;
    Ok(status_response(req.state(), StatusCode::Ok, &rec))
}

pub async fn list(req: Request<State>) -> Result<Response, ApiError> {
    let mut bad = Vec::new();
    let mut filter = ListFilter {
        limit: 50,
        ..Default::default()
    };
    for (k, v) in req.url().query_pairs() {
        match k.as_ref() {
            "status" => match RunStatus::parse(&v) {
                Some(s) => filter.status = Some(s),
                None => bad.push(FieldError::new(
                    "status",
                    "must be one of queued, running, succeeded, failed, cancelled",
                )),
            },
            "preset" => match Preset::parse(&v) {
                Some(p) => filter.preset = Some(p),
                None => bad.push(FieldError::new("preset", "unknown preset")),
            },
            "hardware_target" => filter.hardware_target = Some(v.to_string()),
            "limit" => match v.parse::<usize>() {
                Ok(n) if (1..=500).contains(&n) => filter.limit = n,
                _ => bad.push(FieldError::new("limit", "must be an integer from 1 to 500")),
            },
            "cursor" if !v.is_empty() => match RunId::parse(&v) {
                Some(id) => filter.before = Some(id),
                None => bad.push(FieldError::new("cursor", "not a cursor from a previous page")),
            },
            _ => {}
        }
    }
    if !bad.is_empty() {
        return Err(ApiError::Invalid(bad));
    }
    let state = req.state().clone();
    // A filtered page may scan many records: off the HTTP executor.
    let (runs, more) = smol::unblock(move || state.store.list(&filter)).await?;
    let next_cursor = if more {
        runs.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let items: Vec<Value> = runs.iter().map(|r| status_json(req.state(), r)).collect();
    Ok(json_response(
        StatusCode::Ok,
        &json!({ "runs": items, "next_cursor": next_cursor }),
    ))
}

pub async fn cancel(req: Request<State>) -> Result<Response, ApiError> {
    let rec = find_run(&req).await?;
    let state = req.state();
    match crate::queue::cancel(state, &rec.id).await? {
        Cancel::Cancelled(done) => Ok(status_response(state, StatusCode::Ok, &done)),
        Cancel::Stopping(now) => Ok(json_response(StatusCode::Accepted, &status_json(state, &now))),
        Cancel::AlreadyFinished(s) => Err(ApiError::Conflict(format!(
            "Run {} is already {}",
            rec.id,
            s.as_str()
        ))),
        Cancel::NotFound => Err(ApiError::NotFound(format!("Unknown run id '{}'", rec.id))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: ApiError) -> Vec<String> {
        match e {
            ApiError::Invalid(f) => f.into_iter().map(|f| f.loc).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn the_old_clients_minimal_body_is_valid() {
        let r = parse_run_request(&json!({"preset": "health", "extra": 1})).unwrap();
        assert_eq!(r.preset, Preset::Health);
        assert_eq!(r.hardware_target, "sim_local");
        assert_eq!(r.mode, Mode::Explore);
        assert_eq!(r.shot_budget, None);
    }

    #[test]
    fn every_bad_field_is_listed_at_once() {
        let e = parse_run_request(&json!({
            "preset": "nope", "shot_budget": 0, "mode": "fast", "notes": 5, "seed": -1, "control_overrides": []
        }))
        .unwrap_err();
        assert_eq!(
            fields(e),
            [
                "preset",
                "shot_budget",
                "mode",
                "notes",
                "control_overrides",
                "seed"
            ]
        );
        assert_eq!(fields(parse_run_request(&json!([1])).unwrap_err()), ["body"]);
        assert_eq!(fields(parse_run_request(&json!({})).unwrap_err()), ["preset"]);
        assert_eq!(
            fields(parse_run_request(&json!({"preset": "health", "shot_budget": 1.5})).unwrap_err()),
            ["shot_budget"]
        );
    }

    #[test]
    fn marked_state_comes_from_the_field_or_the_notes() {
        let r = parse_run_request(&json!({"preset": "grover_demo", "notes": "search marked=110 please"}))
            .unwrap();
        assert_eq!(r.marked.as_deref(), Some("110"));
        let r = parse_run_request(&json!({"preset": "grover_demo", "marked": "011", "notes": "marked=110"}))
            .unwrap();
        assert_eq!(r.marked.as_deref(), Some("011"));
        assert_eq!(
            fields(parse_run_request(&json!({"preset": "grover_demo", "marked": "12"})).unwrap_err()),
            ["marked"]
        );
    }
}
