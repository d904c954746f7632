//! The legacy synchronous routes of the service synqc replaces:
//! POST /experiments/run answers with the finished result, and
//! /experiments/recent and /experiments/{id} read finished results.

use std::time::Duration;

use serde_json::json;
use tide::{Request, Response, StatusCode};

use super::json_response;
use super::runs::{accept, find_run, Accepted};
use crate::error::ApiError;
use crate::run::views::{self, Summary};
use crate::run::{RunRecord, RunStatus};
use crate::store::ListFilter;
use crate::State;

pub async fn run_sync(mut req: Request<State>) -> Result<Response, ApiError> {
    let state = req.state().clone();
    let mut watch = None;
    let accepted = accept(&mut req, |id| watch = Some(state.executor.watch(*id))).await?;
    let rec = match accepted {
        Accepted::New(rec) => rec,
        Accepted::Repeat(rec) => {
            watch = Some(state.executor.watch(rec.id));
            rec
        }
    };
    state.store.archive_opened().await;
    let finished = state.store.get(&rec.id)?.is_some_and(|r| r.status.is_finished());
    // A run that cannot start yet (its not_before is ahead, or its queue is
    // paused) is not waited for: the answer says at once to poll it.
    let pauses = state.store.pauses();
    let held = rec.not_before_ms() > crate::clock::now_ms()
        || pauses.contains_key(crate::store::WHOLE_QUEUE)
        || pauses.contains_key(rec.hardware_target.as_str());
    if let (Some(w), false, false) = (watch, finished, held) {
        // Long enough for every attempt to time out, and then some.
        let cfg = &state.config;
        let limit = cfg.job_timeout_seconds * cfg.max_attempts + Duration::from_secs(30);
        smol::future::or(async { w.recv().await.ok() }, async {
            smol::Timer::after(limit).await;
            None
        })
        .await;
    }
    let done = state
        .store
        .get(&rec.id)?
        .ok_or_else(|| ApiError::Internal(format!("run {} vanished", rec.id)))?;
    if held && !done.status.is_finished() {
        // Accepted, not failed: the run waits for its time or its resume.
        let mut res = json_response(StatusCode::Accepted, &views::submission(&done));
        res.insert_header("Deprecation", "true");
        res.insert_header("Location", format!("/runs/{}", done.id));
        return Ok(res);
    }
    let mut res = finished_response(&done)?;
    res.insert_header("Deprecation", "true");
    res.insert_header("Location", format!("/runs/{}", done.id));
    Ok(res)
}

/// The full result of a succeeded run; the run's own error otherwise.
fn finished_response(rec: &RunRecord) -> Result<Response, ApiError> {
    match (&rec.status, &rec.result, &rec.error) {
        (RunStatus::Succeeded, Some(result), _) => Ok(json_response(StatusCode::Ok, result)),
        (RunStatus::Failed | RunStatus::Cancelled, _, Some(err)) => Err(ApiError::RunFailed(err.clone())),
        (status, _, _) => Err(ApiError::RunFailed(crate::run::RunError {
            code: crate::run::ErrorCode::Timeout,
            message: format!(
                "Run {} is still {}; poll /runs/{}",
                rec.id,
                status.as_str(),
                rec.id
            ),
            detail: json!({"run_id": rec.id}),
            action_hint: "Poll GET /runs/{id}, or use POST /runs for long runs.".into(),
        })),
    }
}

pub async fn recent(req: Request<State>) -> Result<Response, ApiError> {
    let limit = match req
        .url()
        .query_pairs()
        .find(|(k, _)| k == "limit")
        .map(|(_, v)| v.parse::<usize>())
    {
        None => 50,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::Invalid(vec![crate::error::FieldError::new(
                "limit",
                "must be an integer from 1 to 500",
            )]))
        }
    };
    let state = req.state().clone();
    let filter = ListFilter {
        status: Some(RunStatus::Succeeded),
        limit,
        ..Default::default()
    };
    let (runs, _) = smol::unblock(move || state.store.list(&filter)).await?;
    let texts: Vec<String> = runs
        .iter()
        .map(|r| serde_json::to_string(&r.result).map_err(|e| ApiError::Internal(e.to_string())))
        .collect::<Result<_, _>>()?;
    let items: Vec<Summary> = runs
        .iter()
        .zip(&texts)
        .map(|(rec, text)| Summary::of(rec, text))
        .collect();
    Ok(json_response(StatusCode::Ok, &items))
}

pub async fn get(req: Request<State>) -> Result<Response, ApiError> {
    let rec = find_run(&req).await?;
    match &rec.result {
        Some(result) if rec.status == RunStatus::Succeeded => Ok(json_response(StatusCode::Ok, result)),
        _ => Err(ApiError::NotFound(format!(
            "Run {} has no result (status {})",
            rec.id,
            rec.status.as_str()
        ))),
    }
}
