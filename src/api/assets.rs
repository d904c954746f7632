//! The routes that answer with a file compiled into the binary (see
//! [`crate::assets`]): the console, the API reference, /assets.

use std::sync::OnceLock;

use serde_json::{json, Value};
use tide::{Response, StatusCode};

use crate::assets::{get, paths};
use crate::error::ApiError;
use crate::sim::Preset;

/// The embedded API reference, served with its preset lists filled in.
const OPENAPI: &str = "openapi.json";

pub async fn serve(path: &'static str) -> Result<Response, ApiError> {
    serve_owned(path.to_string()).await
}

pub async fn serve_owned(path: String) -> Result<Response, ApiError> {
    if path.is_empty() {
        let index: Vec<String> = paths().map(|p| format!("/assets/{p}")).collect();
        return Ok(super::json_response(
            StatusCode::Ok,
            &serde_json::json!({ "assets": index }),
        ));
    }
    let (content_type, body) = get(&path).ok_or_else(|| ApiError::NotFound(format!("No asset '{path}'")))?;
    let body = if path == OPENAPI { openapi(body) } else { body };
    let mut res = Response::new(StatusCode::Ok);
    res.set_body(body);
    res.insert_header("Content-Type", content_type);
    res.insert_header("Cache-Control", "no-cache");
    Ok(res)
}

/// The API reference as served, filled once.
fn openapi(raw: &'static str) -> &'static str {
    static FILLED: OnceLock<String> = OnceLock::new();
    FILLED.get_or_init(|| fill_presets(raw))
}

/// assets/openapi.json keeps no list of presets: each place that lists
/// them holds the member `"x-synqc-presets": WHAT` instead, and here it
/// becomes the member WHAT stands for, from the preset registry, so a new
/// preset is in the document without an edit to it. `enum` and `example`
/// become the preset names; `minimum_shots` becomes the `anyOf` that states
/// each preset's smallest shot_budget. The text is replaced member for
/// member, so the document keeps its order and layout.
fn fill_presets(raw: &str) -> String {
    let names = Value::from(Preset::ALL.map(Preset::as_str).to_vec());
    let mut minimums: Vec<u64> = Preset::ALL.map(Preset::min_shots).to_vec();
    minimums.sort_unstable();
    minimums.dedup();
    let branches: Vec<Value> = minimums
        .into_iter()
        .map(|minimum| {
            let named: Vec<&str> = Preset::ALL
                .into_iter()
                .filter(|p| p.min_shots() == minimum)
                .map(Preset::as_str)
                .collect();
            json!({ "properties": { "preset": { "enum": named }, "shot_budget": { "minimum": minimum } } })
        })
        .collect();
    raw.replace(r#""x-synqc-presets": "enum""#, &format!(r#""enum": {names}"#))
        .replace(
            r#""x-synqc-presets": "example""#,
            &format!(r#""example": {names}"#),
        )
        .replace(
            r#""x-synqc-presets": "minimum_shots""#,
            &format!(r#""anyOf": {}"#, Value::from(branches)),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served() -> Value {
        let (_, raw) = get(OPENAPI).expect("openapi.json is embedded");
        serde_json::from_str(openapi(raw)).expect("the served document is JSON")
    }

    #[test]
    fn every_marker_is_filled_and_every_list_names_every_preset() {
        let (_, raw) = get(OPENAPI).expect("openapi.json is embedded");
        for what in ["enum", "example", "minimum_shots"] {
            assert!(
                raw.contains(&format!(r#""x-synqc-presets": "{what}""#)),
                "openapi.json marks no {what}"
            );
        }
        assert!(!openapi(raw).contains("x-synqc-presets"));
        let doc = served();
        let names = Value::from(Preset::ALL.map(Preset::as_str).to_vec());
        let schemas = &doc["components"]["schemas"];
        let listing = doc["paths"]["/runs"]["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "preset"))
            .map(|p| p["schema"]["enum"].clone());
        assert_eq!(listing, Some(names.clone()), "GET /runs ?preset");
        for schema in ["RunRequest", "RunStatus", "RunExperimentResponse"] {
            assert_eq!(schemas[schema]["properties"]["preset"]["enum"], names, "{schema}");
        }
        assert_eq!(schemas["Health"]["properties"]["presets"]["example"], names);
    }

    #[test]
    fn the_openapi_document_states_each_presets_minimum_shots() {
        let doc = served();
        let branches = doc["components"]["schemas"]["RunRequest"]["allOf"][0]["anyOf"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for preset in Preset::ALL {
            let stated = branches.iter().find_map(|b| {
                let names = b["properties"]["preset"]["enum"].as_array()?;
                names
                    .iter()
                    .any(|n| n == preset.as_str())
                    .then(|| b["properties"]["shot_budget"]["minimum"].as_u64())?
            });
            assert_eq!(stated, Some(crate::sim::min_shots(preset)), "{preset:?}");
        }
    }
}
