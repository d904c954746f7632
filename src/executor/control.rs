//! The executor's registry of the runs claimed in this process: each
//! run's control (where it stands, whether it was asked to stop), the
//! wake-up channel of idle workers and the waiters of the legacy route.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use async_channel::{Receiver, Sender};

use crate::clock::now_ms;
use crate::run::{ErrorCode, RunId, RunRecord, RunStatus};
use crate::store::{Lease, StoreError};

/// Where a claimed run stands, and whether it was asked to stop: one
/// atomic, so that a cancel and the worker's next step never both win.
/// Claimed, waiting for its turn in its batch.
pub(super) const WAITING: u8 = 0;
pub(super) const EXECUTING: u8 = 1;
/// Cancelled before its simulation started: it ends cancelled unsampled.
pub(super) const CANCELLED_WAITING: u8 = 2;
/// Cancelled while executing: the simulator stops at its next step.
pub(super) const CANCELLED_EXECUTING: u8 = 3;
/// Ran past job_timeout_seconds: the simulator stops at its next step.
pub(super) const TIMED_OUT: u8 = 4;
/// This worker no longer holds the run (lease lost, or given back at
/// shutdown): its outcome will not be stored.
pub(super) const LAPSED: u8 = 5;
/// The simulation ended: the outcome is decided, too late to cancel.
pub(super) const DECIDED: u8 = 6;

/// Per claimed run: its state, which the simulator polls between circuits.
pub struct RunControl {
    state: AtomicU8,
    /// The claim's lease token; None for a cancel that reached the run
    /// between the commit of its claim and the claim's registration here.
    pub(super) token: Option<u64>,
}

impl RunControl {
    pub(super) fn new(token: Option<u64>, state: u8) -> RunControl {
        RunControl {
            state: AtomicU8::new(state),
            token,
        }
    }

    pub(super) fn state(&self) -> u8 {
        self.state.load(Ordering::Relaxed)
    }

    /// Moves from one of `from` to `to`; returns the state in force after.
    pub(super) fn step(&self, from: &[u8], to: impl Fn(u8) -> u8) -> u8 {
        match self
            .state
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                from.contains(&s).then(|| to(s))
            }) {
            Ok(s) => to(s),
            Err(s) => s,
        }
    }

    /// A cancel: whatever it returns but CANCELLED_* means it came too late.
    pub(super) fn cancel(&self) -> u8 {
        self.step(&[WAITING, EXECUTING], |s| {
            if s == WAITING {
                CANCELLED_WAITING
            } else {
                CANCELLED_EXECUTING
            }
        })
    }

    /// The worker takes its turn: EXECUTING unless something came first.
    pub(super) fn start(&self) -> u8 {
        self.step(&[WAITING], |_| EXECUTING)
    }

    /// The worker lets go of the run (LAPSED) unless it was cancelled.
    pub(super) fn lapse(&self) -> u8 {
        self.step(&[WAITING, EXECUTING], |_| LAPSED)
    }

    /// The simulation ended: returns the state it ended in (EXECUTING,
    /// or why it was stopped) and closes the door on a cancel.
    pub(super) fn decide(&self) -> u8 {
        match self
            .state
            .compare_exchange(EXECUTING, DECIDED, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(s) | Err(s) => s,
        }
    }
}

/// What a cancel found in the executor (see [`Executor::stop`]).
#[derive(Debug, PartialEq)]
pub(super) enum Stop {
    /// Claimed here: it will end cancelled.
    Stopping,
    /// Its outcome is decided (or it is being given back): wait and look
    /// again.
    Ending,
    /// Back in the queue: cancel it there.
    Queued,
    Finished(RunStatus),
    Gone,
}

/// Shared execution state: the wake-up channel, the running runs' controls
/// and the waiters of the synchronous legacy route.
pub struct Executor {
    wake_tx: Sender<()>,
    pub(super) wake_rx: Receiver<()>,
    /// Every run claimed here until its outcome is stored (or it goes
    /// back to the queue): a cancel must find it in each of those steps.
    running: Mutex<HashMap<RunId, Arc<RunControl>>>,
    waiters: Mutex<HashMap<RunId, Vec<Sender<()>>>>,
    pub(super) next_token: AtomicU64,
    /// Failed runs by error code since start-up (the health document's
    /// failure_codes; the metric of the same meaning is a counter).
    failures: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Executor {
    pub fn new(workers: usize) -> Executor {
        // One pending wake-up per worker is enough: each wakes one idle
        // worker, and a worker drains the queue before it waits again.
        let (wake_tx, wake_rx) = async_channel::bounded(workers.max(1));
        Executor {
            wake_tx,
            wake_rx,
            running: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            // Tokens only need to differ between claims of the same run
            // across restarts; the clock gives that without persisting.
            next_token: AtomicU64::new(now_ms() << 16),
            failures: Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    /// Tells an idle worker there is work.
    pub fn wake(&self) {
        let _ = self.wake_tx.try_send(());
    }

    /// Cancels a run the store has as running. Its control is looked up
    /// under the lock that claims register and workers release under, so
    /// with no control here the store's state is read after the last
    /// release: running then means a claim committed and about to
    /// register, which adopts the cancel left for it.
    pub(super) fn stop(&self, store: &crate::store::Store, id: &RunId) -> Result<Stop, StoreError> {
        let mut running = self.running();
        if let Some(c) = running.get(id) {
            return Ok(match c.cancel() {
                CANCELLED_WAITING | CANCELLED_EXECUTING => Stop::Stopping,
                _ => Stop::Ending,
            });
        }
        Ok(match store.get(id)? {
            Some(rec) if rec.status == RunStatus::Running => {
                running.insert(*id, Arc::new(RunControl::new(None, CANCELLED_WAITING)));
                Stop::Stopping
            }
            Some(rec) if rec.status == RunStatus::Queued => Stop::Queued,
            Some(rec) => Stop::Finished(rec.status),
            None => Stop::Gone,
        })
    }

    /// Registers claimed runs; a cancel that came since the claim's commit
    /// is adopted, a stale control of an earlier claim replaced.
    pub(super) fn register(
        &self,
        claimed: Vec<(RunRecord, Lease)>,
    ) -> Vec<(RunRecord, Lease, Arc<RunControl>)> {
        let mut running = self.running();
        claimed
            .into_iter()
            .map(|(rec, lease)| {
                let cancelled = running
                    .get(&rec.id)
                    .is_some_and(|c| c.token.is_none() && c.state() == CANCELLED_WAITING);
                let state = if cancelled { CANCELLED_WAITING } else { WAITING };
                let control = Arc::new(RunControl::new(Some(lease.token), state));
                running.insert(rec.id, control.clone());
                (rec, lease, control)
            })
            .collect()
    }

    /// Tells a worker of this process that its run's lease lapsed; the
    /// run's state after (None when no worker here holds it). A cancel
    /// left for a claim that never registered goes: the caller ends the
    /// run.
    pub(super) fn lapse(&self, id: &RunId) -> Option<u8> {
        let mut running = self.running();
        let control = running.get(id)?.clone();
        if control.token.is_none() {
            running.remove(id);
        }
        Some(control.lapse())
    }

    /// Counts a failed run in the health document's failure_codes.
    pub(super) fn count_failure(&self, code: ErrorCode) {
        *self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(code.as_str().to_string())
            .or_default() += 1;
    }

    pub fn failure_codes(&self) -> std::collections::BTreeMap<String, u64> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs claimed here whose outcomes are not yet stored: a drain waits
    /// for them before it gives leases back.
    pub fn running_here(&self) -> usize {
        self.running().values().filter(|c| c.token.is_some()).count()
    }

    pub(super) fn running(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Arc<RunControl>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops a run's control once its outcome is stored or it went back
    /// to the queue; a later claim's control stays.
    pub(super) fn release(&self, id: &RunId, token: u64) {
        let mut running = self.running();
        if running.get(id).is_some_and(|c| c.token == Some(token)) {
            running.remove(id);
        }
    }

    /// A receiver that yields (or closes) once `id` reaches a final state.
    pub fn watch(&self, id: RunId) -> Receiver<()> {
        let (tx, rx) = async_channel::bounded(1);
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id)
            .or_default()
            .push(tx);
        rx
    }

    pub(super) fn notify_finished(&self, id: &RunId) {
        if let Some(list) = self.waiters.lock().unwrap_or_else(|p| p.into_inner()).remove(id) {
            for tx in list {
                let _ = tx.try_send(());
            }
        }
    }
}
