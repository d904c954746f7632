//! GET /admin/backup: a backup of the store streamed while serving (see
//! store/backup.rs). Behind the API key like every non-public route.

use tide::{Request, Response, StatusCode};

use crate::error::ApiError;
use crate::State;

pub async fn backup(req: Request<State>) -> Result<Response, ApiError> {
    // An OS pipe: a thread writes the export at its own pace, the response
    // streams it; nothing the size of the store is held in memory.
    let (reader, writer) = std::io::pipe().map_err(|e| ApiError::Internal(format!("backup pipe: {e}")))?;
    let state = req.state().clone();
    std::thread::Builder::new()
        .name("synqc-backup".into())
        .spawn(move || {
            let mut out = std::io::BufWriter::with_capacity(256 * 1024, writer);
            // A failed or cut export lacks its end marker, which restore
            // refuses, so a partial backup can never pass for a whole one.
            match state.store.export(&mut out) {
                Ok(n) => log::info!("backup streamed: {n} runs"),
                Err(e) => log::error!("backup stopped: {e}"),
            }
        })
        .map_err(|e| ApiError::Internal(format!("backup thread: {e}")))?;
    let body = smol::io::BufReader::new(smol::Unblock::new(reader));
    let mut res = Response::new(StatusCode::Ok);
    res.set_body(tide::Body::from_reader(body, None));
    res.insert_header("Content-Type", "application/x-ndjson");
    let name = format!(
        "synqc-backup-{}.jsonl",
        crate::clock::rfc3339(crate::clock::now_ms() as f64 / 1000.0).replace(':', "")
    );
    res.insert_header("Content-Disposition", format!("attachment; filename=\"{name}\""));
    Ok(res)
}
