//! Runs left behind: leases that expired (a worker that died) taken back
//! at start-up and by the maintenance loop, leases given back at shutdown,
//! and the loop's other housekeeping.

use std::time::Duration;

use serde_json::json;
use smol::Timer;

use super::cancel::cancelled;
use super::control::{CANCELLED_EXECUTING, CANCELLED_WAITING, LAPSED};
use super::on_finished;
use crate::clock::now_ms;
use crate::run::{CancelStage, ErrorCode, RunError, RunStatus};
use crate::store::{Finish, Requeue, StoreError};
// Up to the crate root, which holds the executor (see mod.rs).
use crate::State;

/// Takes back runs whose worker died: at start-up every lease is from a
/// dead process; while serving, only expired ones. A run whose worker died
/// max_attempts times fails with INTERNAL_ERROR instead of looping.
pub fn recover_leases(state: &State, at_startup: bool) -> Result<u64, StoreError> {
    let now = now_ms();
    let mut recovered = 0;
    for (id, lease) in state.store.leases()? {
        if !at_startup && lease.expires_ms > now {
            continue;
        }
        // A live worker of this process whose lease lapsed is told to stop.
        let here = state.executor.lapse(&id);
        if here == Some(LAPSED) {
            log::warn!("run {id}: lease expired while its worker was still running");
        }
        let Some(rec) = state.store.get(&id)? else {
            continue;
        };
        if let Some(found @ (CANCELLED_WAITING | CANCELLED_EXECUTING)) = here {
            // Its cancel was answered 202: it ends so, not in the queue.
            if let Some(done) = smol::block_on(state.store.finish(rec, lease.token, cancelled(found), now))? {
                on_finished(state, &done);
            }
        } else if state.store.cancel_requested(&id)? {
            // Its cancel was accepted before a crash took the worker: the
            // mark on its lease is the promise, kept across the restart.
            let fin = Finish {
                status: RunStatus::Cancelled,
                result: None,
                error: Some(RunError::cancelled(CancelStage::Interrupted)),
                refund: CancelStage::Interrupted.refunds(),
            };
            if let Some(done) = smol::block_on(state.store.finish(rec, lease.token, fin, now))? {
                on_finished(state, &done);
            }
        } else if rec.crashes + 1 >= state.config.max_attempts {
            let err = RunError::new(
                ErrorCode::InternalError,
                format!("The worker died {} times while running this run", rec.crashes + 1),
                json!({"crashes": rec.crashes + 1}),
                "Check the synqc log around the run's start time.",
            );
            let fin = Finish {
                status: RunStatus::Failed,
                result: None,
                error: Some(err),
                refund: true,
            };
            if let Some(done) = smol::block_on(state.store.finish(rec, lease.token, fin, now))? {
                on_finished(state, &done);
            }
        } else if smol::block_on(state.store.requeue(&id, lease.token, 0, Requeue::Crashed))? {
            recovered += 1;
            log::warn!(
                "run {id}: recovered from an expired lease (crash {})",
                rec.crashes + 1
            );
        }
    }
    if recovered > 0 {
        metrics::counter!("synqc_runs_recovered_total").increment(recovered);
        state.executor.wake();
    }
    Ok(recovered)
}

/// Hands the leases of runs still executing back to the queue at shutdown,
/// without counting a crash: they run again after the restart.
pub fn give_back_leases(state: &State) -> Result<u64, StoreError> {
    let mut given = 0;
    for (id, lease) in state.store.leases()? {
        if let Some(found @ (CANCELLED_WAITING | CANCELLED_EXECUTING)) = state.executor.lapse(&id) {
            // Its cancel was answered 202: it ends so, not in the queue.
            if let Some(rec) = state.store.get(&id)? {
                if let Some(done) =
                    smol::block_on(state.store.finish(rec, lease.token, cancelled(found), now_ms()))?
                {
                    on_finished(state, &done);
                }
            }
        } else if smol::block_on(state.store.requeue(&id, lease.token, 0, Requeue::Retry))? {
            given += 1;
        }
    }
    Ok(given)
}

/// Housekeeping every few seconds: expired leases, the archive,
/// retention, sessions.
pub async fn maintenance_loop(state: State) {
    while !state.lifecycle.is_draining() {
        Timer::after(Duration::from_secs(2)).await;
        let state2 = state.clone();
        let outcome = smol::unblock(move || -> Result<(), StoreError> {
            recover_leases(&state2, false)?;
            state2.store.archive_finished()?;
            // After the move: a prune leaves runs whose move a crash cut
            // short to the next pass.
            state2.store.prune_finished(state2.config.retention_runs)?;
            state2.store.expire_sessions(now_ms())?;
            Ok(())
        })
        .await;
        if let Err(e) = outcome {
            metrics::counter!("synqc_metrics_collection_errors_total").increment(1);
            log::error!("maintenance failed: {e}");
        }
        // Retries whose backoff ended, runs whose not_before came and runs
        // of a resumed target need a worker even with no submit.
        if state.store.startable(now_ms()) > 0 {
            state.executor.wake();
        }
    }
}
