//! GET /calibrations: the calibration history that succeeded health runs
//! left per target (store/calibration.rs), newest first.

use serde_json::json;
use tide::{Request, Response, StatusCode};

use super::json_response;
use crate::error::{ApiError, FieldError};
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
            "hardware_target" => match targets.get(&v) {
                Some(t) => target = Some(t.id.to_string()),
                None => bad.push(FieldError::new(
                    "hardware_target",
                    format!(
                        "unknown target '{shown}'; must be one of {}",
                        targets.ids().join(", ")
                    ),
                )),
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
