//! The run event bus behind GET /events: one `run` event per status change.
//! Subscribers get a bounded channel each; a subscriber too slow to keep up
//! loses events rather than slowing the workers down.

use std::sync::Mutex;

use async_channel::{Receiver, Sender};
use serde_json::json;

use crate::run::RunRecord;

#[derive(Default)]
pub struct Events {
    subscribers: Mutex<Vec<Sender<String>>>,
}

/// Events a subscriber may have pending before it starts losing them.
const BACKLOG: usize = 1024;

impl Events {
    pub fn subscribe(&self) -> Receiver<String> {
        let (tx, rx) = async_channel::bounded(BACKLOG);
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        rx
    }

    /// Sends the run's current status to every subscriber (JSON text).
    pub fn publish(&self, rec: &RunRecord) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        if subs.is_empty() {
            return;
        }
        let data = json!({
            "id": rec.id, "status": rec.status, "preset": rec.preset,
            "hardware_target": rec.hardware_target, "created_at": rec.created_at,
            "started_at": rec.started_at, "finished_at": rec.finished_at,
        })
        .to_string();
        // Closed receivers (client gone) are dropped here.
        subs.retain(|tx| {
            !tx.is_closed()
                && !matches!(
                    tx.try_send(data.clone()),
                    Err(async_channel::TrySendError::Closed(_))
                )
        });
    }
}
