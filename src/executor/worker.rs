//! A worker: claims a batch of runs from the durable queue, runs each on
//! the simulator on a blocking thread while keeping its lease alive, and
//! stores the outcomes in one transaction.
//!
//! A little over the usual length, as one concept: the claim, the
//! execution (simulated or on an executor) and the stored outcome share
//! the lease and the run's control, which split files would pass around.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use smol::Timer;

use super::cancel::cancelled;
use super::control::{RunControl, CANCELLED_EXECUTING, CANCELLED_WAITING, EXECUTING, LAPSED, TIMED_OUT};
use super::on_finished;
use super::remote::{self, Remote};
use crate::clock::now_ms;
use crate::run::{retry_backoff_ms, ErrorCode, ResultDoc, RunError, RunId, RunRecord, RunStatus};
use crate::sim::circuit::{self, Circuit, CircuitLimits};
use crate::sim::{self, LoopProbe, SimError, SimOutcome, SimRequest};
use crate::store::{Finish, Lease, Requeue, StoreError};
use crate::targets::Refusal;
// Up to the crate root, which holds the executor (see mod.rs).
use crate::State;

/// Most runs a worker claims at once. Every sled transaction seals an I/O
/// buffer and wakes sled's I/O threads whatever it carries, so with quick
/// presets a claim and an outcome per run cost more than the simulation;
/// in batches, two workers keep up with thousands of runs per second.
pub(super) const MAX_CLAIM: usize = 32;

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
pub(super) struct Claimed {
    pub(super) runs: Vec<(RunRecord, Lease, Arc<RunControl>)>,
    pub(super) at: Instant,
    pub(super) took: Duration,
}

impl Claimed {
    pub(super) fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

pub(super) async fn claim(state: &State, batch: usize) -> Result<Claimed, StoreError> {
    let lease_ms = state.config.lease_seconds.as_millis() as u64;
    let at = Instant::now();
    let now = now_ms();
    // Runs a pause holds back are not work to share.
    let share = state
        .store
        .startable(now)
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
pub(super) async fn execute_batch(state: &State, claimed: Claimed) -> (Vec<Executed>, Duration) {
    let mut executed = Vec::with_capacity(claimed.runs.len());
    let mut slowest = Duration::ZERO;
    for (rec, lease, control) in claimed.runs {
        let id = rec.id;
        let draining = state.lifecycle.is_draining();
        // A run this worker lets go of (at shutdown it goes back to the
        // queue; a lost lease was taken back), unless a cancel came first.
        if (draining || !lease_held(state, &id, lease.token, claimed.at).await) && control.lapse() == LAPSED {
            if draining {
                if let Err(e) = state.store.requeue(&id, lease.token, 0, Requeue::Retry).await {
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
    let lease_ms = state.config.lease_seconds.as_millis() as u64;
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

/// A run that has ended on this worker, with its outcome still to store.
pub(super) struct Executed {
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
pub(super) async fn execute(
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

    let request = sim_request(state, &rec).map(|(req, version)| {
        // A profile written back from a calibration: the run records which.
        rec.noise_profile_version = (version > 0).then_some(version);
        req
    });
    let outcome = match request {
        Err(e) => Err(e),
        Ok(req) if remote::is_remote(state, &rec) => {
            let (remote_state, remote_control, remote_rec) = (state.clone(), control.clone(), rec.clone());
            let work = smol::unblock(move || {
                remote::run_remote(&remote_state, &remote_rec, &req, &|| {
                    remote_control.state() != EXECUTING
                })
            });
            let guard = keep_lease(state, &rec, token, &control);
            match smol::future::or(async { Some(work.await) }, async {
                guard.await;
                None
            })
            .await
            {
                Some(Remote::Done(out)) => Ok(*out),
                Some(Remote::Stopped(e)) => Err(classify(control.state(), e)),
                Some(Remote::Failed(err)) => Err(err),
                Some(Remote::Wait(why)) => {
                    wait_for_executor(state, &rec, token, &why).await;
                    return None;
                }
                None => Err(classify(control.state(), SimError::Invalid("lease lost".into()))),
            }
        }
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
                .requeue(&id, token, now + retry_backoff_ms(rec.attempts), Requeue::Retry)
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

/// How long a run whose executor is down waits before it is tried again.
const EXECUTOR_WAIT_MS: u64 = 2_000;

/// A run whose target's executor is down goes back to the queue, without
/// spending an attempt, to be tried again shortly (docs/circuits.md: its
/// runs wait, they are not failed).
async fn wait_for_executor(state: &State, rec: &RunRecord, token: u64, why: &str) {
    log::debug!(
        "run {}: waiting for the executor of {}: {why}",
        rec.id,
        rec.hardware_target
    );
    if let Err(e) = state
        .store
        .requeue(&rec.id, token, now_ms() + EXECUTOR_WAIT_MS, Requeue::NotStarted)
        .await
    {
        log::error!(
            "run {}: cannot put it back to wait for its executor ({e}); it will be recovered",
            rec.id
        );
    }
    state.executor.release(&rec.id, token);
}

/// Stores the outcomes of a batch in one transaction, then announces them.
pub(super) async fn store_outcomes(state: &State, batch: Vec<Executed>) {
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
pub(super) fn classify(stopped: u8, e: SimError) -> RunError {
    RunError::from_sim(e, stopped == TIMED_OUT)
}

/// Renews the lease while the simulation runs and raises the timeout flag;
/// completes only if the lease is lost.
async fn keep_lease(state: &State, rec: &RunRecord, token: u64, control: &RunControl) {
    let lease_ms = state.config.lease_seconds.as_millis() as u64;
    let timeout = state.config.job_timeout_seconds;
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
/// The request to simulate, and the version of the target's noise profile
/// in it (0: as configured).
fn sim_request(state: &State, rec: &RunRecord) -> Result<(SimRequest, u32), RunError> {
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
    let (plant, version) = state
        .targets
        .versioned_plant(&rec.hardware_target)
        .map_err(|r| refused(&rec.hardware_target, r))?;
    let req = SimRequest {
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
        program: rec.qasm.as_deref().map(|src| program(state, src)).transpose()?,
    };
    Ok((req, version))
}

/// A circuit run's program, parsed again as at submit (it passed then; a
/// server restarted with tighter limits refuses it now, before sampling).
fn program(state: &State, src: &str) -> Result<Circuit, RunError> {
    let limits = CircuitLimits {
        max_qubits: state.config.max_circuit_qubits,
        max_ops: state.config.max_circuit_ops,
    };
    circuit::parse(src, &limits).map_err(|e| {
        RunError::new(
            ErrorCode::InvalidRequest,
            format!("qasm: {e}"),
            json!({}),
            ErrorCode::InvalidRequest.hint(),
        )
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
