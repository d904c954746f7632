//! GET /hardware/targets.

use serde_json::{json, Value};
use tide::{Request, Response, StatusCode};

use super::json_response;
use crate::error::ApiError;
use crate::sim::NoiseProfile;
use crate::targets::DerivedModel;
use crate::State;

pub async fn list(req: Request<State>) -> Result<Response, ApiError> {
    let state = req.state();
    let targets: Vec<Value> = state
        .targets
        .all()
        .iter()
        .map(|t| with_derived_model(state.target_view(t)))
        .collect();
    Ok(json_response(StatusCode::Ok, &json!({ "targets": targets })))
}

/// `view` with what the engine derives from the noise profile it shows,
/// computed from that very profile so the two agree even when a
/// write-back lands while the list is built.
fn with_derived_model(mut view: Value) -> Value {
    if let Ok(profile) = serde_json::from_value::<NoiseProfile>(view["noise_profile"].clone()) {
        view["derived_noise_model"] = json!(DerivedModel::of(&profile));
    }
    view
}
