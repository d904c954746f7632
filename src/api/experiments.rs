//! The legacy synchronous routes of the service synqc replaces:
//! POST /experiments/run answers with the finished result, and
//! /experiments/recent and /experiments/{id} read finished results.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use tide::{Request, Response, StatusCode};

use super::json_response;
use super::runs::{accept, find_run, Accepted};
use crate::error::ApiError;
use crate::run::{RunId, RunRecord, RunStatus};
use crate::sim::Preset;
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
    if let (Some(w), false) = (watch, finished) {
        // Long enough for every attempt to time out, and then some.
        let cfg = &state.config;
        let limit = Duration::from_secs(cfg.job_timeout_seconds * u64::from(cfg.max_attempts) + 30);
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

/// The parts of a stored result a summary repeats, copied as the JSON text
/// they are stored as: a listing picks fields out of up to 500 results and
/// builds no tree of any of them.
#[derive(Default, Deserialize)]
struct ResultParts<'a> {
    #[serde(borrow)]
    engine_version: Option<&'a RawValue>,
    #[serde(borrow)]
    qubits_used: Option<&'a RawValue>,
    #[serde(borrow)]
    kpis: Option<&'a RawValue>,
    #[serde(borrow)]
    shots: Option<&'a RawValue>,
    #[serde(borrow)]
    kpi_details: Option<&'a RawValue>,
    #[serde(borrow)]
    warnings: Option<&'a RawValue>,
    #[serde(borrow)]
    error_code: Option<&'a RawValue>,
    #[serde(borrow)]
    error_message: Option<&'a RawValue>,
    #[serde(borrow)]
    error_detail: Option<&'a RawValue>,
    #[serde(borrow)]
    action_hint: Option<&'a RawValue>,
}

/// A result summary: what a list of recent experiments shows, the
/// result's own fields under the same names as in the full result.
#[derive(Serialize)]
struct Summary<'a> {
    id: RunId,
    preset: Preset,
    hardware_target: &'a str,
    created_at: f64,
    finished_at: Option<f64>,
    notes: Option<&'a str>,
    seed: u64,
    status: &'static str,
    engine_version: Option<&'a RawValue>,
    qubits_used: Option<&'a RawValue>,
    kpis: Option<&'a RawValue>,
    shots: Option<&'a RawValue>,
    kpi_details: Option<&'a RawValue>,
    warnings: Option<&'a RawValue>,
    error_code: Option<&'a RawValue>,
    error_message: Option<&'a RawValue>,
    error_detail: Option<&'a RawValue>,
    action_hint: Option<&'a RawValue>,
}

impl<'a> Summary<'a> {
    /// `result` is the run's stored result as JSON text.
    fn of(rec: &'a RunRecord, result: &'a str) -> Summary<'a> {
        // A result that does not parse (it always should) still lists the
        // run, with its result fields null.
        let r: ResultParts<'a> = serde_json::from_str(result).unwrap_or_default();
        Summary {
            id: rec.id,
            preset: rec.preset,
            hardware_target: &rec.hardware_target,
            created_at: rec.created_at,
            finished_at: rec.finished_at,
            notes: rec.notes.as_deref(),
            seed: rec.seed,
            status: rec.status.as_str(),
            engine_version: r.engine_version,
            qubits_used: r.qubits_used,
            kpis: r.kpis,
            shots: r.shots,
            kpi_details: r.kpi_details,
            warnings: r.warnings,
            error_code: r.error_code,
            error_message: r.error_message,
            error_detail: r.error_detail,
            action_hint: r.action_hint,
        }
    }
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
