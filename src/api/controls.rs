//! GET/POST /controls/profile: the active control profile, validated and
//! persisted. A POST replaces the fields it names and keeps the others.

use serde_json::Value;
use tide::{Request, Response, StatusCode};

use super::{json_body, json_response};
use crate::controls::ControlProfile;
use crate::error::{ApiError, FieldError};
use crate::State;

pub async fn get(req: Request<State>) -> Result<Response, ApiError> {
    Ok(json_response(
        StatusCode::Ok,
        &req.state().store.control_profile(),
    ))
}

pub async fn set(mut req: Request<State>) -> Result<Response, ApiError> {
    let body = json_body(&mut req).await?;
    let Value::Object(fields) = body else {
        return Err(ApiError::Invalid(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )]));
    };
    let state = req.state();
    let mut merged =
        serde_json::to_value(state.store.control_profile()).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut bad = Vec::new();
    for (k, v) in fields {
        let expected_number = matches!(
            k.as_str(),
            "drive_bias" | "probe_window_ns" | "feedback_gain" | "safety_clamp_ns" | "tracer_persistence_ms"
        );
        if expected_number && !v.is_number() {
            bad.push(FieldError::new(k.clone(), "must be a number"));
        } else if k == "thermal_guard_enabled" && !v.is_boolean() {
            bad.push(FieldError::new(k.clone(), "must be true or false"));
        } else if k == "notes" && !(v.is_string() || v.is_null()) {
            bad.push(FieldError::new(k.clone(), "must be a string or null"));
        } else if merged.get(&k).is_some() {
            merged[&k] = v;
        }
    }
    if !bad.is_empty() {
        return Err(ApiError::Invalid(bad));
    }
    let profile: ControlProfile =
        serde_json::from_value(merged).map_err(|e| ApiError::Internal(e.to_string()))?;
    let bad = profile.validate("");
    if !bad.is_empty() {
        return Err(ApiError::Invalid(bad));
    }
    state.store.set_control_profile(&profile)?;
    state.store.flush().await?;
    log::info!("control profile updated: {profile:?}");
    Ok(json_response(StatusCode::Ok, &profile))
}
