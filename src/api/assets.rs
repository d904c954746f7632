//! The routes that answer with a file compiled into the binary (see
//! [`crate::assets`]): the console, the API reference, /assets.

use tide::{Response, StatusCode};

use crate::assets::{get, paths};
use crate::error::ApiError;

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
    let mut res = Response::new(StatusCode::Ok);
    res.set_body(body);
    res.insert_header("Content-Type", content_type);
    res.insert_header("Cache-Control", "no-cache");
    Ok(res)
}
