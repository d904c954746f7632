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
            let sent = match next {
                None => return Ok(()),
                Some(Some(data)) => sender.send("run", data, None).await,
                Some(None) => sender.send("ping", "{}", None).await,
            };
            // A failed send means the client went away (a closed console
            // tab): the normal end of a stream, so it ends here rather
            // than as an error, which tide would log with a backtrace.
            if let Err(e) = sent {
                log::debug!("SSE client disconnected: {e}");
                return Ok(());
            }
        }
    });
    sse.call(req).await.map_err(|e| ApiError::Internal(e.to_string()))
}
