//! GET /hardware/targets.

use serde_json::json;
use tide::{Request, Response, StatusCode};

use super::json_response;
use crate::error::ApiError;
use crate::State;

pub async fn list(req: Request<State>) -> Result<Response, ApiError> {
    let state = req.state();
    Ok(json_response(
        StatusCode::Ok,
        &json!({ "targets": state.targets.all().iter().map(|t| state.target_view(t)).collect::<Vec<_>>() }),
    ))
}
