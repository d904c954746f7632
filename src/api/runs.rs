//! /runs: submit, inspect, list and cancel runs.

use serde_json::{json, Value};
use tide::{Request, Response, StatusCode};

use super::{json_body, json_response, session_of};
use crate::clock::now_ms;
use crate::error::{ApiError, FieldError};
use crate::executor::Cancel;
use crate::run::admission::{self, preset_choices, Admitted, Stamp};
use crate::run::{views, RunId, RunRecord, RunStatus};
use crate::sim::Preset;
use crate::store::{IdempotencyKey, ListFilter, Submitted};
use crate::State;

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
            message: "synqc is shutting down and accepts no new runs; nothing was submitted.".into(),
            retry_after_s: 10,
        });
    }
    let body = json_body(req).await?;
    let limits = state.admission_limits();
    let session_id = session_of(req);
    let stamp = Stamp {
        id: state.store.new_run_id(),
        session_id: session_id.clone(),
        random_seed: rand::random(),
    };
    let Admitted {
        mut record,
        request_digest,
    } = admission::admit(
        &body,
        &limits,
        &state.targets,
        &state.store.control_profile(),
        stamp,
    )?;
    // A bound target whose executor is down still takes runs: they wait
    // in the queue until it is back (docs/circuits.md).
    if let Some(t) = state.targets.get(&record.hardware_target) {
        if let (false, why) = state.availability(t) {
            record.warnings.push(format!(
                "{} is not available now ({why}); the run waits in the queue until its executor is back.",
                t.id
            ));
        }
    }
    let pauses = state.store.pauses();
    for key in [crate::store::WHOLE_QUEUE, record.hardware_target.as_str()] {
        if let Some(p) = pauses.get(key) {
            record.warnings.push(format!(
                "{} is paused ({}); the run was accepted and waits in the queue until it is resumed \
                 (POST /queue/resume, or synqc resume).",
                super::queue::what(key),
                p.reason
            ));
        }
    }
    state.room_for_a_run()?;
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
        Some(key) => Some(IdempotencyKey {
            scope: session_id.clone(),
            key,
            body_digest: request_digest,
        }),
    };
    let now = now_ms();
    let id = record.id;
    let shots = record.shots;
    before_commit(&id);
    // Answered once on disk; a failed flush took the run back already.
    match state.store.submit(&record, idem.as_ref(), now).await? {
        Submitted::Accepted { .. } => {}
        Submitted::Existing(original) => return Ok(Accepted::Repeat(*original)),
        Submitted::KeyConflict => {
            return Err(ApiError::IdempotencyConflict {
                key: idem.map(|k| k.key).unwrap_or_default(),
            })
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
    crate::executor::on_submitted(&state, &record);
    Ok(Accepted::New(record))
}

/// The run's place in the queue while it is queued.
fn position(state: &State, rec: &RunRecord) -> Option<u64> {
    if rec.status == RunStatus::Queued {
        state.store.queue_position(rec, crate::clock::now_ms())
    } else {
        None
    }
}

/// The full RunStatus of a run, result included.
fn status_response(state: &State, status: StatusCode, rec: &RunRecord) -> Response {
    json_response(status, &views::full_status(rec, position(state, rec)))
}

pub async fn submit(mut req: Request<State>) -> Result<Response, ApiError> {
    match accept(&mut req, |_| {}).await? {
        Accepted::New(rec) => {
            let mut res = json_response(StatusCode::Accepted, &views::submission(&rec));
            res.insert_header("Location", format!("/runs/{}", rec.id));
            Ok(res)
        }
        Accepted::Repeat(rec) => {
            let mut res = json_response(StatusCode::Ok, &views::submission(&rec));
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
    let targets = &req.state().targets;
    for (k, v) in req.url().query_pairs() {
        let shown: String = v.chars().take(64).collect();
        match k.as_ref() {
            "status" => match RunStatus::parse(&v) {
                Some(s) => filter.status = Some(s),
                None => {
                    let names: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
                    bad.push(FieldError::new(
                        "status",
                        format!("unknown status '{shown}'; must be one of {}", names.join(", ")),
                    ))
                }
            },
            "preset" => match Preset::parse(&v) {
                Some(p) => filter.preset = Some(p),
                None => bad.push(FieldError::new("preset", preset_choices(Some(&v)))),
            },
            "hardware_target" => match super::target_param(targets, &v) {
                Ok(id) => filter.hardware_target = Some(id),
                Err(e) => bad.push(e),
            },
            "limit" => match v.parse::<usize>() {
                Ok(n) if (1..=500).contains(&n) => filter.limit = n,
                _ => bad.push(FieldError::new(
                    "limit",
                    format!("'{shown}' is not an integer from 1 to 500 (default 50)"),
                )),
            },
            "cursor" if !v.is_empty() => match RunId::parse(&v) {
                Some(id) => filter.before = Some(id),
                None => bad.push(FieldError::new(
                    "cursor",
                    format!(
                        "'{shown}' is not a cursor: pass the next_cursor of the previous page, or \
                         leave cursor out for the first page"
                    ),
                )),
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
    let items: Vec<Value> = runs
        .iter()
        .map(|r| views::status(r, position(req.state(), r)))
        .collect();
    Ok(json_response(
        StatusCode::Ok,
        &json!({ "runs": items, "next_cursor": next_cursor }),
    ))
}

pub async fn cancel(req: Request<State>) -> Result<Response, ApiError> {
    let rec = find_run(&req).await?;
    let state = req.state();
    match crate::executor::cancel(state, &rec.id).await? {
        Cancel::Cancelled(done) => Ok(status_response(state, StatusCode::Ok, &done)),
        Cancel::Stopping(now) => Ok(json_response(
            StatusCode::Accepted,
            &views::status(&now, position(state, &now)),
        )),
        Cancel::AlreadyFinished(status) => Err(ApiError::AlreadyFinished { run: rec.id, status }),
        Cancel::NotFound => Err(ApiError::NotFound(format!("Unknown run id '{}'", rec.id))),
    }
}
