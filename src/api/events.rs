//! GET /events: Server-Sent Events, one `run` event per status change.

use std::time::Duration;

use tide::{Endpoint, Request, Response};

use crate::error::ApiError;
use crate::State;

pub async fn stream(req: Request<State>) -> Result<Response, ApiError> {
    let sse = tide::sse::endpoint(|req: Request<State>, sender| async move {
        let events = req.state().events.subscribe();
        loop {
            // A comment-like ping every 15 s lets proxies and clients see a
            // live connection and lets us notice one that went away.
            let next = smol::future::or(async { events.recv().await.ok().map(Some) }, async {
                smol::Timer::after(Duration::from_secs(15)).await;
                Some(None)
            })
            .await;
            match next {
                None => return Ok(()),
                Some(Some(data)) => sender.send("run", data, None).await?,
                Some(None) => sender.send("ping", "{}", None).await?,
            }
        }
    });
    sse.call(req).await.map_err(|e| ApiError::Internal(e.to_string()))
}
