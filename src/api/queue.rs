//! POST /queue/pause and /queue/resume: a hardware target, or the whole
//! queue, starts no new run while paused (running runs finish; submits
//! are still accepted and wait). Pauses are kept in the store, so they
//! outlive a restart.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use tide::{Request, Response, StatusCode};

use super::{json_body, json_response};
use crate::error::{ApiError, FieldError};
use crate::run::admission::unknown_target;
use crate::store::{Pause, WHOLE_QUEUE};
use crate::State;

/// The longest reason kept with a pause.
const MAX_REASON_CHARS: usize = 500;

/// What a pause or resume request names.
struct PauseRequest {
    /// None: the whole queue.
    target: Option<String>,
    reason: Option<String>,
}

/// Reads the body (optional: an empty one names the whole queue) and
/// checks its fields, listing every bad one.
async fn request(req: &mut Request<State>) -> Result<PauseRequest, ApiError> {
    let body = if req.len() == Some(0) {
        Value::Object(Map::new())
    } else {
        json_body(req).await?
    };
    let Value::Object(fields) = body else {
        return Err(ApiError::Invalid(vec![FieldError::new(
            "body",
            "must be a JSON object with the optional fields hardware_target and reason",
        )]));
    };
    let mut bad = Vec::new();
    for k in fields
        .keys()
        .filter(|k| !["hardware_target", "reason"].contains(&k.as_str()))
    {
        bad.push(FieldError::new(
            k.chars().take(64).collect::<String>(),
            "unknown field; the fields are hardware_target (leave it out for the whole queue) and reason",
        ));
    }
    let string = |k: &str, bad: &mut Vec<FieldError>| match fields.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            bad.push(FieldError::new(k, "must be a string"));
            None
        }
    };
    let target = string("hardware_target", &mut bad);
    let reason = string("reason", &mut bad);
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        bad.push(FieldError::new(
            "reason",
            format!("at most {MAX_REASON_CHARS} characters"),
        ));
    }
    let targets = &req.state().targets;
    match &target {
        Some(t) if targets.get(t).is_none() => {
            if bad.is_empty() {
                return Err(unknown_target(targets, "hardware_target", t).into());
            }
            bad.push(FieldError::new(
                "hardware_target",
                format!("unknown target; must be one of {}", targets.ids().join(", ")),
            ));
        }
        _ => {}
    }
    if !bad.is_empty() {
        return Err(ApiError::Invalid(bad));
    }
    Ok(PauseRequest { target, reason })
}

/// The pauses in place, as /health, /queue/pause and /queue/resume show
/// them: the whole queue's (or null) and each paused target's.
pub fn paused_view(pauses: &BTreeMap<String, Pause>) -> Value {
    let targets: Map<String, Value> = pauses
        .iter()
        .filter(|(k, _)| k.as_str() != WHOLE_QUEUE)
        .map(|(k, p)| (k.clone(), json!(p)))
        .collect();
    json!({"queue": pauses.get(WHOLE_QUEUE), "targets": targets})
}

/// What the pause of a target (or of the whole queue) says in a warning.
pub fn what(key: &str) -> String {
    if key == WHOLE_QUEUE {
        "the whole queue".to_string()
    } else {
        format!("hardware target {key}")
    }
}

pub async fn pause(mut req: Request<State>) -> Result<Response, ApiError> {
    let asked = request(&mut req).await?;
    let key = asked.target.as_deref().unwrap_or(WHOLE_QUEUE);
    let pause = Pause {
        reason: asked
            .reason
            .unwrap_or_else(|| "paused by an operator".to_string()),
        since: crate::clock::now_ms() as f64 / 1000.0,
    };
    let state = req.state();
    let pauses = state.store.set_pause(key, Some(pause)).await?;
    log::warn!(
        "{} paused: {}",
        what(key),
        pauses.get(key).map_or("", |p| p.reason.as_str())
    );
    Ok(json_response(
        StatusCode::Ok,
        &json!({
            "hardware_target": asked.target,
            "paused": paused_view(&pauses),
            "message": format!(
                "{} starts no new run until it is resumed (POST /queue/resume or synqc resume); \
                 running runs finish and submits are still accepted.",
                what(key)
            ),
        }),
    ))
}

pub async fn resume(mut req: Request<State>) -> Result<Response, ApiError> {
    let asked = request(&mut req).await?;
    let key = asked.target.as_deref().unwrap_or(WHOLE_QUEUE);
    let state = req.state().clone();
    let was_paused = state.store.pauses().contains_key(key);
    let pauses = state.store.set_pause(key, None).await?;
    if was_paused {
        let why = asked.reason.map(|r| format!(": {r}")).unwrap_or_default();
        log::warn!("{} resumed{why}", what(key));
        state.executor.wake();
    }
    let mut message = if was_paused {
        format!("{} is resumed; its queued runs start in turn.", what(key))
    } else {
        format!("{} was not paused; nothing changed.", what(key))
    };
    if key != WHOLE_QUEUE && pauses.contains_key(WHOLE_QUEUE) {
        message.push_str(" The whole queue is still paused: resume it without hardware_target.");
    }
    Ok(json_response(
        StatusCode::Ok,
        &json!({
            "hardware_target": asked.target,
            "was_paused": was_paused,
            "paused": paused_view(&pauses),
            "message": message,
        }),
    ))
}
