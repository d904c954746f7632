//! GET /hardware/targets.

use serde_json::json;
use tide::{Request, Response, StatusCode};

use super::json_response;
use crate::error::ApiError;
use crate::State;

pub async fn list(req: Request<State>) -> Result<Response, ApiError> {
    Ok(json_response(
        StatusCode::Ok,
        &json!({ "targets": req.state().targets.all() }),
    ))
}
