//! /schedules: periodic runs (docs/operations.md, "Schedules"). A
//! schedule's run request is checked by the same admission as POST /runs
//! when it is stored, so a schedule that would be refused every period is
//! refused once, at once.

use serde_json::json;
use tide::{Request, Response, StatusCode};

use super::{json_body, json_response};
use crate::clock::now_ms;
use crate::error::{ApiError, FieldError};
use crate::run::admission::{self, Refusal, Stamp};
use crate::schedule::{parse_fields, session_of, valid_name, Fields, ScheduleRecord};
use crate::store::ScheduleWrite;
use crate::State;

/// Checks a schedule's run request through admission; a field it names
/// is reported under `request.`.
fn check_request(state: &State, name: &str, request: &serde_json::Value) -> Result<(), ApiError> {
    let stamp = Stamp {
        id: state.store.new_run_id(),
        session_id: session_of(name),
        random_seed: 0,
    };
    admission::admit(
        request,
        &state.admission_limits(),
        &state.targets,
        &state.store.control_profile(),
        stamp,
    )
    .map(drop)
    .map_err(|r| match r {
        Refusal::Invalid(fields) => ApiError::Invalid(
            fields
                .into_iter()
                .map(|f| FieldError::new(format!("request.{}", f.loc), f.msg))
                .collect(),
        ),
        other => other.into(),
    })
}

fn view(state: &State, s: &ScheduleRecord) -> serde_json::Value {
    s.view(now_ms(), state.up_since_ms())
}

/// The `:name` path parameter, or 404.
fn name_of(req: &Request<State>) -> Result<String, ApiError> {
    let raw = req.param("name").unwrap_or("");
    if valid_name(raw) {
        Ok(raw.to_string())
    } else {
        Err(ApiError::UnknownSchedule(raw.chars().take(64).collect()))
    }
}

pub async fn create(mut req: Request<State>) -> Result<Response, ApiError> {
    let body = json_body(&mut req).await?;
    let state = req.state().clone();
    let fields = parse_fields(&body, true).map_err(ApiError::Invalid)?;
    // parse_fields with `creating` saw name, request and a timing.
    let rec = ScheduleRecord::create(fields, now_ms()).ok_or_else(|| {
        ApiError::Invalid(vec![FieldError::new(
            "body",
            "name, request and a timing are required",
        )])
    })?;
    check_request(&state, &rec.name, &rec.request)?;
    let name = rec.name.clone();
    match state.store.create_schedule(&rec).await? {
        ScheduleWrite::Done(_) => {
            let mut res = json_response(StatusCode::Created, &view(&state, &rec));
            res.insert_header("Location", format!("/schedules/{name}"));
            Ok(res)
        }
        ScheduleWrite::Exists => Err(ApiError::ScheduleExists(name)),
        ScheduleWrite::NotFound => Err(ApiError::UnknownSchedule(name)),
    }
}

pub async fn list(req: Request<State>) -> Result<Response, ApiError> {
    let state = req.state();
    let items: Vec<_> = state.store.schedules()?.iter().map(|s| view(state, s)).collect();
    Ok(json_response(StatusCode::Ok, &json!({ "schedules": items })))
}

pub async fn get(req: Request<State>) -> Result<Response, ApiError> {
    let name = name_of(&req)?;
    let state = req.state();
    match state.store.schedule(&name)? {
        Some(s) => Ok(json_response(StatusCode::Ok, &view(state, &s))),
        None => Err(ApiError::UnknownSchedule(name)),
    }
}

pub async fn patch(mut req: Request<State>) -> Result<Response, ApiError> {
    let name = name_of(&req)?;
    let body = json_body(&mut req).await?;
    let state = req.state().clone();
    let Fields {
        request,
        timing,
        enabled,
        catch_up,
        ..
    } = parse_fields(&body, false).map_err(ApiError::Invalid)?;
    if state.store.schedule(&name)?.is_none() {
        return Err(ApiError::UnknownSchedule(name));
    }
    if let Some(r) = &request {
        check_request(&state, &name, r)?;
    }
    let now = now_ms();
    let written = state
        .store
        .update_schedule(&name, |s| {
            let f = Fields {
                name: None,
                request: request.clone(),
                timing: timing.clone(),
                enabled,
                catch_up,
            };
            s.patch(f, now);
        })
        .await?;
    match written {
        ScheduleWrite::Done(Some(s)) => Ok(json_response(StatusCode::Ok, &view(&state, &s))),
        _ => Err(ApiError::UnknownSchedule(name)),
    }
}

pub async fn delete(req: Request<State>) -> Result<Response, ApiError> {
    let name = name_of(&req)?;
    match req.state().store.delete_schedule(&name).await? {
        ScheduleWrite::Done(_) => Ok(Response::new(StatusCode::NoContent)),
        _ => Err(ApiError::UnknownSchedule(name)),
    }
}
