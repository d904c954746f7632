//! Execution: workers on the smol executor claim runs from the durable
//! queue in the store, run the simulator on a blocking thread, keep their
//! lease alive while it runs, and write the outcome in one transaction.
//! A maintenance loop takes back runs whose lease expired, prunes old runs
//! and expires budget sessions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use serde_json::json;
use smol::Timer;

use crate::clock::now_ms;
use crate::run::{
    retry_backoff_ms, CancelStage, ErrorCode, ResultDoc, RunError, RunId, RunRecord, RunStatus,
};
use crate::sim::{self, LoopProbe, SimError, SimOutcome, SimRequest};
use crate::store::{CancelOutcome, Finish, Lease, StoreError};
use crate::targets::Refusal;
// Up to the crate root, which holds the executor: a worker needs the
// store, the config, the targets and the event bus it was started with,
// and State is the one handle to all of them.
use crate::State;

/// Where a claimed run stands, and whether it was asked to stop: one
/// atomic, so that a cancel and the worker's next step never both win.
/// Claimed, waiting for its turn in its batch.
const WAITING: u8 = 0;
const EXECUTING: u8 = 1;
/// Cancelled before its simulation started: it ends cancelled unsampled.
const CANCELLED_WAITING: u8 = 2;
/// Cancelled while executing: the simulator stops at its next step.
const CANCELLED_EXECUTING: u8 = 3;
/// Ran past job_timeout_seconds: the simulator stops at its next step.
const TIMED_OUT: u8 = 4;
/// This worker no longer holds the run (lease lost, or given back at
/// shutdown): its outcome will not be stored.
const LAPSED: u8 = 5;
/// The simulation ended: the outcome is decided, too late to cancel.
const DECIDED: u8 = 6;

/// Per claimed run: its state, which the simulator polls between circuits.
pub struct RunControl {
    state: AtomicU8,
    /// The claim's lease token; None for a cancel that reached the run
    /// between the commit of its claim and the claim's registration here.
    token: Option<u64>,
}

impl RunControl {
    fn new(token: Option<u64>, state: u8) -> RunControl {
        RunControl {
            state: AtomicU8::new(state),
            token,
        }
    }

    fn state(&self) -> u8 {
        self.state.load(Ordering::Relaxed)
    }

    /// Moves from one of `from` to `to`; returns the state in force after.
    fn step(&self, from: &[u8], to: impl Fn(u8) -> u8) -> u8 {
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
    fn cancel(&self) -> u8 {
        self.step(&[WAITING, EXECUTING], |s| {
            if s == WAITING {
                CANCELLED_WAITING
            } else {
                CANCELLED_EXECUTING
            }
        })
    }

    /// The worker takes its turn: EXECUTING unless something came first.
    fn start(&self) -> u8 {
        self.step(&[WAITING], |_| EXECUTING)
    }

    /// The worker lets go of the run (LAPSED) unless it was cancelled.
    fn lapse(&self) -> u8 {
        self.step(&[WAITING, EXECUTING], |_| LAPSED)
    }

    /// The simulation ended: returns the state it ended in (EXECUTING,
    /// or why it was stopped) and closes the door on a cancel.
    fn decide(&self) -> u8 {
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
enum Stop {
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

/// Shared execution state: the wake-up channel, the running runs' controls
/// and the waiters of the synchronous legacy route.
pub struct Executor {
    wake_tx: Sender<()>,
    wake_rx: Receiver<()>,
    /// Every run claimed here until its outcome is stored (or it goes
    /// back to the queue): a cancel must find it in each of those steps.
    running: Mutex<HashMap<RunId, Arc<RunControl>>>,
    waiters: Mutex<HashMap<RunId, Vec<Sender<()>>>>,
    next_token: AtomicU64,
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
    fn stop(&self, store: &crate::store::Store, id: &RunId) -> Result<Stop, StoreError> {
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
    fn register(&self, claimed: Vec<(RunRecord, Lease)>) -> Vec<(RunRecord, Lease, Arc<RunControl>)> {
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
    fn lapse(&self, id: &RunId) -> Option<u8> {
        let mut running = self.running();
        let control = running.get(id)?.clone();
        if control.token.is_none() {
            running.remove(id);
        }
        Some(control.lapse())
    }

    pub fn failure_codes(&self) -> std::collections::BTreeMap<String, u64> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs claimed here whose outcomes are not yet stored: a drain waits
    /// for them before it gives leases back.
    pub fn running_here(&self) -> usize {
        self.running().values().filter(|c| c.token.is_some()).count()
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Arc<RunControl>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops a run's control once its outcome is stored or it went back
    /// to the queue; a later claim's control stays.
    fn release(&self, id: &RunId, token: u64) {
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

    fn notify_finished(&self, id: &RunId) {
        if let Some(list) = self.waiters.lock().unwrap_or_else(|p| p.into_inner()).remove(id) {
            for tx in list {
                let _ = tx.try_send(());
            }
        }
    }
}

/// Everything that must happen when a run reaches a final state, whoever
/// ended it (worker, cancel, recovery): metrics, events, waiters.
pub fn on_finished(state: &State, rec: &RunRecord) {
    let labels = [
        ("preset", rec.preset.as_str().to_string()),
        ("hardware_target", rec.hardware_target.clone()),
        ("status", rec.status.as_str().to_string()),
    ];
    metrics::counter!("synqc_runs_finished_total", &labels).increment(1);
    if let Some(e) = &rec.error {
        if rec.status == RunStatus::Failed {
            metrics::counter!("synqc_run_failures_total", "error_code" => e.code.as_str()).increment(1);
            *state
                .executor
                .failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(e.code.as_str().to_string())
                .or_default() += 1;
        }
    }
    if let (Some(start), Some(end)) = (rec.started_at, rec.finished_at) {
        metrics::histogram!("synqc_run_duration_seconds", "preset" => rec.preset.as_str())
            .record((end - start).max(0.0));
    }
    state.events.publish(rec);
    state.executor.notify_finished(&rec.id);
}

/// Most runs a worker claims at once. Every sled transaction seals an I/O
/// buffer and wakes sled's I/O threads whatever it carries, so with quick
/// presets a claim and an outcome per run cost more than the simulation;
/// in batches, two workers keep up with thousands of runs per second.
const MAX_CLAIM: usize = 32;

/// Runs are claimed in batches only while each takes less than this: the
/// rest of a batch waits its turn marked running, so that wait must stay
/// short (at most MAX_CLAIM times this).
const QUICK: Duration = Duration::from_millis(5);

/// Executed batches a worker may run ahead of its stored outcomes.
const AHEAD: usize = 4;

/// One worker: claim, execute, repeat; idle until woken or a tick passes
/// (the tick picks up retries whose backoff ended). Outcomes are stored
/// beside the executions, not between them: storing one means a flush of
/// the archive (see store/archive.rs), and a worker that waited for it
/// left a third of the CPU idle. Whatever executed while a store was in
/// flight is stored together next, so a slow disk gets bigger batches,
/// not a longer wait; at most AHEAD batches wait, so a stuck disk stops
/// the worker instead of piling up results in memory.
pub async fn worker_loop(state: State) {
    let (done, waiting) = async_channel::bounded::<Vec<Executed>>(AHEAD);
    let store = async {
        while let Ok(mut outcomes) = waiting.recv().await {
            while let Ok(more) = waiting.try_recv() {
                outcomes.extend(more);
            }
            store_outcomes(&state, outcomes).await;
        }
    };
    let execute = async {
        let mut batch = 1;
        while !state.lifecycle.is_draining() {
            let (executed, slowest) = claim_and_execute(&state, batch).await;
            if !executed.is_empty() && done.send(executed).await.is_err() {
                break;
            }
            // Grow the batch while runs are quick; one at a time otherwise.
            batch = match slowest {
                Some(t) if t < QUICK => (batch * 2).min(MAX_CLAIM),
                Some(_) => 1,
                None => batch,
            };
        }
        // What was executed is still stored; then the loop above ends.
        done.close();
    };
    smol::future::zip(store, execute).await;
}

/// Claims up to `batch` runs (never more than this worker's share of the
/// ready ones) and executes them in turn. Returns the executions whose
/// outcome is still to store and the longest execution time, None when
/// there was nothing to run (after waiting for work).
async fn claim_and_execute(state: &State, batch: usize) -> (Vec<Executed>, Option<Duration>) {
    match claim(state, batch).await {
        Ok(claimed) if !claimed.is_empty() => {
            let (executed, slowest) = execute_batch(state, claimed).await;
            (executed, Some(slowest))
        }
        Ok(_) => {
            let wake = state.executor.wake_rx.recv();
            smol::future::or(async { wake.await.ok() }, async {
                Timer::after(Duration::from_millis(500)).await;
                None
            })
            .await;
            (Vec::new(), None)
        }
        Err(e) => {
            log::error!("claim failed: {e}; retrying in 1 s");
            Timer::after(Duration::from_secs(1)).await;
            (Vec::new(), None)
        }
    }
}

/// Runs claimed together, each with its lease and its control, which is
/// registered in the executor at once: a cancel must reach a run that is
/// still waiting for its turn in the batch.
struct Claimed {
    runs: Vec<(RunRecord, Lease, Arc<RunControl>)>,
    at: Instant,
    took: Duration,
}

impl Claimed {
    fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

async fn claim(state: &State, batch: usize) -> Result<Claimed, StoreError> {
    let lease_ms = state.config.lease_seconds * 1000;
    let at = Instant::now();
    let now = now_ms();
    let share = state
        .store
        .ready_and_future(now)
        .0
        .div_ceil(state.config.workers.max(1) as u64);
    let leases: Vec<Lease> = (0..batch.min(share as usize).max(1))
        .map(|_| Lease {
            token: state.executor.next_token.fetch_add(1, Ordering::Relaxed),
            expires_ms: now + lease_ms,
        })
        .collect();
    let claimed = state.store.claim(now, &leases).await?;
    Ok(Claimed {
        runs: state.executor.register(claimed),
        at,
        took: at.elapsed(),
    })
}

/// Executes claimed runs in turn; returns those whose outcome is still to
/// store and the longest execution time.
async fn execute_batch(state: &State, claimed: Claimed) -> (Vec<Executed>, Duration) {
    let mut executed = Vec::with_capacity(claimed.runs.len());
    let mut slowest = Duration::ZERO;
    for (rec, lease, control) in claimed.runs {
        let id = rec.id;
        let draining = state.lifecycle.is_draining();
        // A run this worker lets go of (at shutdown it goes back to the
        // queue; a lost lease was taken back), unless a cancel came first.
        if (draining || !lease_held(state, &id, lease.token, claimed.at).await) && control.lapse() == LAPSED {
            if draining {
                if let Err(e) = state.store.requeue(&id, lease.token, 0, false).await {
                    log::error!("run {id}: cannot give it back at shutdown ({e}); it will be recovered");
                }
            }
            state.executor.release(&id, lease.token);
            continue;
        }
        if control.start() != EXECUTING {
            // Cancelled while it waited for its turn: nothing was sampled.
            executed.push(Executed {
                fin: cancelled(CANCELLED_WAITING),
                rec,
                token: lease.token,
                succeeded: None,
                now: now_ms(),
            });
            continue;
        }
        let began = Instant::now();
        if let Some(done) = execute(state, rec, lease.token, claimed.took, control).await {
            executed.push(done);
        }
        slowest = slowest.max(began.elapsed());
    }
    (executed, slowest)
}

/// Whether a run claimed at `claimed_at` still holds its lease. A lease
/// is renewed when a third of it has passed while the run waited for its
/// turn.
async fn lease_held(state: &State, id: &RunId, token: u64, claimed_at: Instant) -> bool {
    let lease_ms = state.config.lease_seconds * 1000;
    if claimed_at.elapsed() < Duration::from_millis(lease_ms / 3) {
        return true;
    }
    match state.store.renew(id, token, now_ms() + lease_ms) {
        Ok(renewed) => renewed,
        Err(e) => {
            log::error!("run {id}: lease renewal failed: {e}");
            false
        }
    }
}

/// How a claimed run that was cancelled ends, by where the cancel found
/// it (one of the CANCELLED_* states); [`CancelStage::refunds`] says
/// whether its shots go back.
fn cancelled(found: u8) -> Finish {
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
                return Err(StoreError::Io(format!(
                    "cancel of {id}: its outcome was not stored within {CANCEL_WAIT:?}"
                )));
            }
            Timer::after(Duration::from_millis(5)).await;
        }
        if Instant::now() >= deadline {
            return Err(StoreError::Io(format!(
                "cancel of {id}: it kept going back to the queue"
            )));
        }
    }
}

/// A run that has ended on this worker, with its outcome still to store.
struct Executed {
    rec: RunRecord,
    token: u64,
    fin: Finish,
    /// What the result document of a succeeded run is made of.
    succeeded: Option<Succeeded>,
    now: u64,
}

struct Succeeded {
    out: SimOutcome,
    claim_time: Duration,
    exec_time: Duration,
}

/// Executes a claimed run whose control is registered in the executor.
async fn execute(
    state: &State,
    mut rec: RunRecord,
    token: u64,
    claim_time: Duration,
    control: Arc<RunControl>,
) -> Option<Executed> {
    let id = rec.id;
    let started = Instant::now();
    // The claim stored the claim time; a run that waited its turn in a
    // batch starts now, and its queue wait runs until now.
    let start = now_ms() as f64 / 1000.0;
    rec.started_at = Some(start);
    state.events.publish(&rec);
    metrics::histogram!("synqc_run_queue_wait_seconds", "preset" => rec.preset.as_str())
        .record((start - rec.created_at).max(0.0));

    let outcome = match sim_request(state, &rec) {
        Err(e) => Err(e),
        Ok(req) => {
            let sim_state = state.clone();
            let sim_control = control.clone();
            let simulate = smol::unblock(move || {
                let mut probe = StoreLoop { state: sim_state };
                let probe: Option<&mut dyn LoopProbe> = if req.preset == sim::Preset::Latency {
                    Some(&mut probe)
                } else {
                    None
                };
                sim::run(&req, probe, &|| sim_control.state() != EXECUTING)
            });
            let guard = keep_lease(state, &rec, token, &control);
            smol::future::or(async { Some(simulate.await) }, async {
                guard.await;
                None
            })
            .await
            .unwrap_or(Err(SimError::Invalid("lease lost".into())))
            .map_err(|e| classify(control.state(), e))
        }
    };
    let ended = control.decide();
    let exec_time = started.elapsed();

    let now = now_ms();
    // The result document is built while the worker already runs the next
    // run (see worker_loop): it is the largest piece of work after the
    // simulation itself.
    let mut succeeded = None;
    let fin = match outcome {
        // The cancel was answered 202 before the outcome was decided.
        _ if ended == CANCELLED_EXECUTING => cancelled(CANCELLED_EXECUTING),
        Ok(out) => {
            metrics::counter!("synqc_shots_executed_total", "hardware_target" => rec.hardware_target.clone())
                .increment(out.shots.executed);
            metrics::gauge!("synqc_run_fidelity", "preset" => rec.preset.as_str(), "hardware_target" => rec.hardware_target.clone())
                .set(out.kpis.fidelity);
            succeeded = Some(Succeeded {
                out,
                claim_time,
                exec_time,
            });
            Finish {
                status: RunStatus::Succeeded,
                result: None,
                error: None,
                refund: false,
            }
        }
        Err(err) if err.retried(rec.attempts, state.config.max_attempts) => {
            match state
                .store
                .requeue(&id, token, now + retry_backoff_ms(rec.attempts), false)
                .await
            {
                Ok(true) => {
                    metrics::counter!("synqc_runs_retried_total").increment(1);
                    log::warn!(
                        "run {id} attempt {} failed with {}; retrying",
                        rec.attempts,
                        err.code
                    );
                }
                Ok(false) => {}
                Err(e) => log::error!("run {id}: requeue after {} failed: {e}", err.code),
            }
            state.executor.release(&id, token);
            return None;
        }
        Err(err) => {
            let refund = err.refunds();
            Finish {
                status: RunStatus::Failed,
                result: None,
                error: Some(err),
                refund,
            }
        }
    };
    Some(Executed {
        rec,
        token,
        fin,
        succeeded,
        now,
    })
}

/// Stores the outcomes of a batch in one transaction, then announces them.
async fn store_outcomes(state: &State, batch: Vec<Executed>) {
    if batch.is_empty() {
        return;
    }
    let runs = batch
        .into_iter()
        .map(|done| {
            let Executed {
                rec,
                token,
                mut fin,
                succeeded,
                now,
            } = done;
            if let Some(s) = succeeded {
                fin.result = Some(ResultDoc::of_success(&rec, s.out, s.claim_time, s.exec_time));
            }
            (rec, token, fin, now)
        })
        .collect::<Vec<_>>();
    let ids: Vec<(RunId, u64)> = runs.iter().map(|(rec, token, ..)| (rec.id, *token)).collect();
    for ((id, token), stored) in ids.into_iter().zip(state.store.finish_all(runs).await) {
        // Released once stored: until then a cancel waits for the outcome.
        state.executor.release(&id, token);
        match stored {
            Ok(Some(done)) => on_finished(state, &done),
            Ok(None) => log::warn!("run {id}: lease was taken back before it finished; result discarded"),
            Err(e) => log::error!("run {id}: cannot store its outcome ({e}); it will be recovered and rerun"),
        }
    }
}

/// Turns a simulator stop into the run's error, by why it was stopped
/// (the control's state).
fn classify(stopped: u8, e: SimError) -> RunError {
    RunError::from_sim(e, stopped == TIMED_OUT)
}

/// Renews the lease while the simulation runs and raises the timeout flag;
/// completes only if the lease is lost.
async fn keep_lease(state: &State, rec: &RunRecord, token: u64, control: &RunControl) {
    let lease_ms = state.config.lease_seconds * 1000;
    let timeout = Duration::from_secs(state.config.job_timeout_seconds);
    let began = Instant::now();
    let tick = Duration::from_millis((lease_ms / 3).clamp(100, 10_000)).min(timeout);
    loop {
        Timer::after(tick).await;
        if began.elapsed() >= timeout {
            control.step(&[EXECUTING], |_| TIMED_OUT);
        }
        match state.store.renew(&rec.id, token, now_ms() + lease_ms) {
            Ok(true) => {}
            Ok(false) => {
                log::warn!("run {}: lease lost while running", rec.id);
                return;
            }
            Err(e) => log::error!("run {}: lease renewal failed: {e}", rec.id),
        }
    }
}

/// The simulator request of a stored run; a target disabled since submit
/// fails the run (before sampling, so the shots are refunded).
fn sim_request(state: &State, rec: &RunRecord) -> Result<SimRequest, RunError> {
    let refused = |id: &str, r: Refusal| match r {
        Refusal::Unknown => RunError::new(
            ErrorCode::InvalidTarget,
            format!("Unknown hardware_target '{id}'"),
            json!({}),
            ErrorCode::InvalidTarget.hint(),
        ),
        Refusal::ProviderSimDisabled => RunError::new(
            ErrorCode::ProviderSimDisabled,
            format!("Provider simulation for '{id}' was disabled after this run was accepted"),
            json!({}),
            ErrorCode::ProviderSimDisabled.hint(),
        ),
    };
    let plant = state
        .targets
        .plant(&rec.hardware_target)
        .map_err(|r| refused(&rec.hardware_target, r))?;
    Ok(SimRequest {
        preset: rec.preset,
        compare_with: match (&rec.compare_with, rec.preset) {
            (Some(c), sim::Preset::BackendCompare) => Some(
                state
                    .targets
                    .compare_plant(c, &plant)
                    .map_err(|r| refused(c, r))?,
            ),
            _ => None,
        },
        plant,
        shots: rec.shots,
        seed: rec.seed,
        controls: rec.controls.clone(),
        marked: rec.marked.clone(),
    })
}

/// The latency preset's view of the appliance: one round trip is a durable
/// enqueue (write + group-commit flush, as a submit), a claim (remove) and a
/// result write, measured on the wall clock.
struct StoreLoop {
    state: State,
}

impl LoopProbe for StoreLoop {
    fn round_trip_us(&mut self) -> Result<f64, SimError> {
        let started = Instant::now();
        self.state
            .store
            .loop_probe()
            .map_err(|e| SimError::Loop(e.to_string()))?;
        Ok(started.elapsed().as_secs_f64() * 1e6)
    }
}

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
        } else if smol::block_on(state.store.requeue(&id, lease.token, 0, true))? {
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
        } else if smol::block_on(state.store.requeue(&id, lease.token, 0, false))? {
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
        // Retries whose backoff ended need a worker even with no submit.
        if state.store.ready_and_future(now_ms()).0 > 0 {
            state.executor.wake();
        }
    }
}

#[cfg(test)]
mod tests;
