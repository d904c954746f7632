//! Cancelling a run wherever it is: in the queue, waiting in a worker's
//! batch, executing, or with its outcome already decided.

use std::time::{Duration, Instant};

use smol::Timer;

use super::control::{Stop, CANCELLED_EXECUTING};
use super::on_finished;
use crate::clock::now_ms;
use crate::run::{CancelStage, RunError, RunId, RunRecord, RunStatus};
use crate::store::{CancelOutcome, Finish, StoreError};
// Up to the crate root, which holds the executor (see mod.rs).
use crate::State;

/// What a cancel request did.
#[derive(Debug)]
pub enum Cancel {
    /// It was queued: cancelled now, shots refunded (its final record).
    Cancelled(Box<RunRecord>),
    /// It was claimed: it ends cancelled (its record as it is now).
    Stopping(Box<RunRecord>),
    AlreadyFinished(RunStatus),
    NotFound,
}

/// How a claimed run that was cancelled ends, by where the cancel found
/// it (one of the CANCELLED_* states); [`CancelStage::refunds`] says
/// whether its shots go back.
pub(super) fn cancelled(found: u8) -> Finish {
    let stage = if found == CANCELLED_EXECUTING {
        CancelStage::Executing
    } else {
        CancelStage::Waiting
    };
    Finish {
        status: RunStatus::Cancelled,
        result: None,
        error: Some(RunError::cancelled(stage)),
        refund: stage.refunds(),
    }
}

/// How long a cancel waits for a run whose outcome was decided just
/// before it to be stored, so that it can say how the run ended.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// Cancels a run wherever it is: in the queue it is cancelled at once;
/// claimed here (waiting in a batch or executing) it ends cancelled once
/// its worker sees the flag; with its outcome decided it is let finish,
/// and the answer says how it ended.
pub async fn cancel(state: &State, id: &RunId) -> Result<Cancel, StoreError> {
    let deadline = Instant::now() + CANCEL_WAIT;
    loop {
        // The store refunds a queued run's shots.
        let error = RunError::cancelled(CancelStage::Queued);
        match state.store.cancel_queued(id, error, now_ms()).await? {
            CancelOutcome::Cancelled(done) => {
                on_finished(state, &done);
                return Ok(Cancel::Cancelled(done));
            }
            CancelOutcome::AlreadyFinished(s) => return Ok(Cancel::AlreadyFinished(s)),
            CancelOutcome::NotFound => return Ok(Cancel::NotFound),
            CancelOutcome::Running => {}
        }
        // Executor::stop may read the archive, which must be open.
        state.store.archive_opened().await;
        loop {
            match state.executor.stop(&state.store, id)? {
                Stop::Stopping => {
                    return match state.store.get(id)? {
                        Some(rec) => Ok(Cancel::Stopping(Box::new(rec))),
                        None => Ok(Cancel::NotFound),
                    }
                }
                Stop::Finished(s) => return Ok(Cancel::AlreadyFinished(s)),
                Stop::Gone => return Ok(Cancel::NotFound),
                Stop::Queued => break,
                Stop::Ending => {}
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "cancel of {id}: its outcome was not stored within {CANCEL_WAIT:?}"
                )));
            }
            Timer::after(Duration::from_millis(5)).await;
        }
        if Instant::now() >= deadline {
            return Err(StoreError::Unavailable(format!(
                "cancel of {id}: it kept going back to the queue"
            )));
        }
    }
}
