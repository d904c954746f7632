//! Every change of a run's state, as a command. [`Store::apply`] applies a
//! batch of them in one sled transaction; each command's outcome is
//! decided inside it, by reading what the commands before it in the same
//! batch wrote, so a batch means exactly what the same commands one by one
//! would mean. A command that is refused (budget exhausted, lease lost,
//! run not queued) decides so before it writes anything, so it never
//! aborts the batch: only a storage error does.
//!
//! In-memory state (counts, the queue index, session metrics) moves only
//! after the transaction commits, by the effects the commands recorded.
//!
//! Longer than most files on purpose: it is one concept, what each command
//! means inside a transaction. The arms of `apply_one` and the submit and
//! claim steps read and write the same trees under the same rules (refuse
//! before writing, record effects, never abort the batch), and are checked
//! together against the store's model test; apart, each would hide the
//! rule it shares with the others.

use std::collections::BTreeMap;

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use super::layout::{queue_key_of, queue_value, META_PAUSES, QUEUE_BYTES};
use super::queue_index::Pause;
use super::{
    bump, codec, decode_lease, encode_lease, finished_key, queue_key, run_id_of, u64_of, CancelOutcome,
    IdempotencyKey, Lease, Result, Store, StoreError, Submitted, CANCEL_REQUESTED, IDEMPOTENCY_TTL_MS,
};
use crate::budget::{Reservation, SessionRecord};
use crate::run::{RunError, RunId, RunRecord, RunStatus};

pub(super) enum Command {
    /// Accept a run: record, queue entry, budget reservation, idempotency key.
    Submit {
        run: RunRecord,
        idem: Option<IdempotencyKey>,
        now_ms: u64,
        /// The key's original run is in neither database (pruned): the
        /// key no longer stands for it.
        original_gone: bool,
    },
    /// Take back a submit whose flush failed, refunding its shots.
    Unsubmit { run: RunRecord },
    /// Claim the oldest ready run of the highest priority with a lease.
    Claim { now_ms: u64, lease: Lease },
    /// End a running run, if `token` still holds its lease: its record is
    /// already in the archive (see archive.rs), and a stub replaces it.
    Finish {
        id: RunId,
        status: RunStatus,
        token: u64,
        /// Shots to give back to the run's budget window.
        refund: Option<Refund>,
        /// What a succeeded run adds to its targets' qubit counters.
        usage: Vec<super::usage::UsageDelta>,
        /// What a succeeded health run measured (calibration.rs).
        calibration: Option<Box<super::Calibration>>,
        now_ms: u64,
    },
    /// Put a running run back in the queue, if `token` holds its lease.
    Requeue {
        id: RunId,
        token: u64,
        not_before_ms: u64,
        why: Requeue,
    },
    /// Cancel a queued run (shots refunded); report any other state.
    Cancel { id: RunId, error: RunError, now_ms: u64 },
    /// Move an undecodable run record aside, with its queue entry or lease.
    Quarantine { key: Vec<u8>, value: Vec<u8> },
    /// Handle a schedule's period: submit its run (or record why none),
    /// and mark the period fired, in this one transaction (schedules.rs).
    Fire(super::schedules::Firing),
    /// Nothing to apply; answered once everything before it is on disk.
    Flush,
    /// Pause `key` (a target id, or the whole queue: see queue_index.rs)
    /// with this reason, or end its pause (None). A pause already in
    /// place keeps its start and takes the new reason.
    Pause { key: String, pause: Option<Pause> },
}

/// Why a running run goes back to the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Its attempt ended (a transient failure, or given back at shutdown):
    /// the attempt stays counted.
    Retry,
    /// Its worker died holding it: a crash is counted against it too.
    Crashed,
    /// It never started (its target's executor is down): the attempt the
    /// claim counted is given back, so waiting costs it no retries.
    NotStarted,
}

impl Command {
    /// Answered only once on disk. A claim, finish or requeue lost in a
    /// crash is repaired by lease recovery (the run executes again, with
    /// the same seed), so those are answered at commit and ride on the
    /// next flush (sled also flushes on its own every 500 ms).
    pub(super) fn durable(&self) -> bool {
        matches!(
            self,
            Command::Submit { .. }
                | Command::Cancel { .. }
                | Command::Fire(_)
                | Command::Flush
                | Command::Pause { .. }
        )
    }
}

/// Shots going back to the budget window they were reserved in.
pub(super) struct Refund {
    pub session_id: String,
    pub shots: u64,
    pub window_ms: u64,
}

impl Refund {
    pub(super) fn of(run: &RunRecord) -> Refund {
        Refund {
            session_id: run.session_id.clone(),
            shots: run.shots,
            window_ms: run.budget_window_ms,
        }
    }
}

#[derive(Debug)]
pub(super) enum Outcome {
    Submitted(Submitted),
    /// The idempotency key's original run left the main store: the caller
    /// looks in the archive (which a transaction must not read: sled's
    /// lock is global, and a read inside a transaction never gets it).
    OriginalArchived(RunId),
    Claimed(Option<Box<RunRecord>>),
    /// False when the lease was no longer the caller's.
    Finished(bool),
    Requeued(bool),
    Cancelled(CancelOutcome),
    /// Every pause in place after the command.
    Paused(BTreeMap<String, Pause>),
    Fired(super::schedules::Fired),
    /// Unsubmit, quarantine and flush answer nothing more.
    Done,
}

/// What moves in memory once the transaction commits.
enum Effect {
    Moved {
        from: Option<RunStatus>,
        to: Option<RunStatus>,
    },
    Enqueued {
        /// The queue key's first byte.
        byte: u8,
        id: RunId,
        target: String,
        not_before_ms: u64,
    },
    Dequeued {
        id: RunId,
    },
    Paused {
        key: String,
        pause: Option<Pause>,
    },
    Session {
        created: bool,
        expired: bool,
    },
    Quarantined {
        key: Vec<u8>,
    },
}

/// Only storage errors abort a batch.
type TxResult<T> = std::result::Result<T, ConflictableTransactionError<()>>;

/// The transaction's view of the trees a command may touch.
struct Tx<'a> {
    runs: &'a TransactionalTree,
    queue: &'a TransactionalTree,
    leases: &'a TransactionalTree,
    sessions: &'a TransactionalTree,
    idempotency: &'a TransactionalTree,
    meta: &'a TransactionalTree,
    quarantine: &'a TransactionalTree,
    to_archive: &'a TransactionalTree,
    calibrations: &'a TransactionalTree,
    schedules: &'a TransactionalTree,
}

/// A stored run as the transaction sees it.
enum Found {
    Run(Box<RunRecord>),
    /// Finished, its record in the archive (which a transaction cannot read).
    Archived(RunStatus),
    Missing,
    Undecodable(Vec<u8>),
}

impl Tx<'_> {
    fn run(&self, id: &RunId) -> TxResult<Found> {
        Ok(match self.runs.get(id.0)? {
            None => Found::Missing,
            Some(v) => match codec::stub_status(&v) {
                Some(status) => Found::Archived(status),
                None => match codec::decode(&v) {
                    Ok(r) => Found::Run(Box::new(r)),
                    Err(_) => Found::Undecodable(v.to_vec()),
                },
            },
        })
    }

    fn lease_is(&self, id: &RunId, token: u64) -> TxResult<bool> {
        Ok(self
            .leases
            .get(id.0)?
            .is_some_and(|l| decode_lease(&l).token == token))
    }

    fn refund(&self, store: &Store, refund: &Refund, now_ms: u64) -> TxResult<()> {
        let session = refund.session_id.as_bytes();
        let current = self
            .sessions
            .get(session)?
            .and_then(|v| SessionRecord::decode(&v));
        if let Some(r) = store
            .budget
            .refund(current, refund.shots, refund.window_ms, now_ms)
        {
            self.sessions.insert(session, &r.encode())?;
        }
        Ok(())
    }
}

impl Store {
    /// Applies `commands` in one transaction, then moves the in-memory
    /// state. Not flushed: the writer flushes for durable commands.
    pub(super) fn apply(&self, commands: &[Command]) -> Result<Vec<Outcome>> {
        self.writable()?;
        // The writer thread is the only caller in production; the lock
        // keeps a quarantine from a reader (and tests) in the same order.
        let _serial = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let trees = (
            &self.runs,
            &self.queue,
            &self.leases,
            &self.sessions,
            &self.idempotency,
            &self.meta,
            &self.quarantine,
            &self.to_archive,
            &self.calibrations,
            &self.schedules,
        );
        let committed = trees.transaction(
            |(
                runs,
                queue,
                leases,
                sessions,
                idempotency,
                meta,
                quarantine,
                to_archive,
                calibrations,
                schedules,
            )| {
                let tx = Tx {
                    runs,
                    queue,
                    leases,
                    sessions,
                    idempotency,
                    meta,
                    quarantine,
                    to_archive,
                    calibrations,
                    schedules,
                };
                // Fresh on every attempt: sled may run this closure again.
                let mut effects = Vec::new();
                let mut claimed = Vec::new();
                let outcomes = commands
                    .iter()
                    .map(|c| self.apply_one(&tx, c, &mut effects, &mut claimed))
                    .collect::<TxResult<Vec<_>>>()?;
                Ok((outcomes, effects))
            },
        );
        let (outcomes, effects) = match committed {
            Ok(done) => done,
            Err(TransactionError::Storage(e)) => return Err(e.into()),
            Err(TransactionError::Abort(())) => {
                return Err(StoreError::Unavailable("write batch aborted".into()))
            }
        };
        let mut index = self.index();
        for effect in effects {
            match effect {
                Effect::Moved { from, to } => {
                    if let Some(s) = from {
                        self.counts.sub(s, 1);
                    }
                    if let Some(s) = to {
                        self.counts.add(s, 1);
                    }
                }
                Effect::Enqueued {
                    byte,
                    id,
                    target,
                    not_before_ms,
                } => index.insert(byte, id, &target, not_before_ms),
                Effect::Dequeued { id } => index.remove(&id),
                Effect::Paused { key, pause } => index.set_pause(&key, pause),
                Effect::Session { created, expired } => self.session_window_changed(created, expired),
                Effect::Quarantined { key } => {
                    // Logged here, not in the transaction, which sled may run
                    // more than once.
                    log::error!("quarantined undecodable run record {}", crate::budget::hex(&key));
                    self.counts
                        .quarantined
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        Ok(outcomes)
    }

    fn apply_one(
        &self,
        tx: &Tx,
        command: &Command,
        effects: &mut Vec<Effect>,
        claimed: &mut Vec<RunId>,
    ) -> TxResult<Outcome> {
        Ok(match command {
            Command::Submit {
                run,
                idem,
                now_ms,
                original_gone,
            } => match self.submit_in(tx, run, idem.as_ref(), *now_ms, *original_gone, effects)? {
                Ok(submitted) => Outcome::Submitted(submitted),
                Err(original) => Outcome::OriginalArchived(original),
            },
            Command::Unsubmit { run } => {
                let key = queue_key_of(run);
                // The stored copy knows the budget window the shots went to.
                if let (Found::Run(stored), Some(_)) = (tx.run(&run.id)?, tx.queue.get(key)?) {
                    tx.queue.remove(&key)?;
                    tx.runs.remove(&run.id.0)?;
                    tx.refund(self, &Refund::of(&stored), crate::clock::now_ms())?;
                    effects.push(Effect::Moved {
                        from: Some(RunStatus::Queued),
                        to: None,
                    });
                    effects.push(Effect::Dequeued { id: run.id });
                }
                Outcome::Done
            }
            Command::Claim { now_ms, lease } => {
                Outcome::Claimed(self.claim_in(tx, *now_ms, *lease, effects, claimed)?)
            }
            Command::Finish {
                id,
                status,
                token,
                refund,
                usage,
                calibration,
                now_ms,
            } => {
                if !tx.lease_is(id, *token)? {
                    return Ok(Outcome::Finished(false));
                }
                tx.leases.remove(&id.0)?;
                tx.runs.insert(&id.0, &codec::stub(*status))?;
                tx.to_archive.insert(&id.0, &[])?;
                bump(tx.meta, &finished_key(*status), 1)?;
                for d in usage {
                    let k = super::usage::key(&d.target);
                    let old = tx.meta.get(&k)?;
                    tx.meta
                        .insert(k, super::usage::added(old.as_deref(), d, *now_ms))?;
                }
                if let Some(refund) = refund {
                    tx.refund(self, refund, *now_ms)?;
                }
                if let Some(c) = calibration {
                    tx.calibrations.insert(c.history_key(), c.encode())?;
                    let latest = c.latest_key();
                    let current = tx.calibrations.get(&latest)?;
                    if c.supersedes(current.and_then(|v| super::Calibration::decode(&v)).as_ref()) {
                        tx.calibrations.insert(latest, c.encode())?;
                    }
                }
                effects.push(Effect::Moved {
                    from: Some(RunStatus::Running),
                    to: Some(*status),
                });
                Outcome::Finished(true)
            }
            Command::Requeue {
                id,
                token,
                not_before_ms,
                why,
            } => {
                let Found::Run(mut rec) = tx.run(id)? else {
                    return Ok(Outcome::Requeued(false));
                };
                if !tx.lease_is(id, *token)? {
                    return Ok(Outcome::Requeued(false));
                }
                tx.leases.remove(&id.0)?;
                rec.status = RunStatus::Queued;
                rec.started_at = None;
                match why {
                    Requeue::Retry => {}
                    Requeue::Crashed => rec.crashes += 1,
                    // The claim counted an attempt the run never made.
                    Requeue::NotStarted => rec.attempts = rec.attempts.saturating_sub(1),
                }
                let key = queue_key_of(&rec);
                tx.runs.insert(&id.0, codec::encode(&rec))?;
                tx.queue
                    .insert(&key, queue_value(*not_before_ms, &rec.hardware_target))?;
                effects.push(Effect::Moved {
                    from: Some(RunStatus::Running),
                    to: Some(RunStatus::Queued),
                });
                effects.push(Effect::Enqueued {
                    byte: key[0],
                    id: *id,
                    target: rec.hardware_target.clone(),
                    not_before_ms: *not_before_ms,
                });
                Outcome::Requeued(true)
            }
            Command::Cancel { id, error, now_ms } => {
                let mut rec = match tx.run(id)? {
                    Found::Run(rec) => rec,
                    Found::Archived(s) => return Ok(Outcome::Cancelled(CancelOutcome::AlreadyFinished(s))),
                    Found::Missing | Found::Undecodable(_) => {
                        return Ok(Outcome::Cancelled(CancelOutcome::NotFound))
                    }
                };
                match rec.status {
                    RunStatus::Queued => {}
                    RunStatus::Running => {
                        // The cancel may be answered 202, a promise that
                        // must outlive a crash: mark the run's lease (this
                        // command is flushed before it is answered); the
                        // mark ends with the lease, when the run ends or
                        // goes back to the queue.
                        if let Some(l) = tx.leases.get(id.0)? {
                            let mut marked = l[..l.len().min(16)].to_vec();
                            marked.push(CANCEL_REQUESTED);
                            tx.leases.insert(&id.0, marked)?;
                        }
                        return Ok(Outcome::Cancelled(CancelOutcome::Running));
                    }
                    s => return Ok(Outcome::Cancelled(CancelOutcome::AlreadyFinished(s))),
                }
                tx.queue.remove(&queue_key_of(&rec))?;
                rec.status = RunStatus::Cancelled;
                rec.finished_at = Some(*now_ms as f64 / 1000.0);
                rec.error = Some(error.clone());
                tx.runs.insert(&id.0, codec::encode(&rec))?;
                tx.to_archive.insert(&id.0, &[])?;
                bump(tx.meta, &finished_key(RunStatus::Cancelled), 1)?;
                tx.refund(self, &Refund::of(&rec), *now_ms)?;
                effects.push(Effect::Moved {
                    from: Some(RunStatus::Queued),
                    to: Some(RunStatus::Cancelled),
                });
                effects.push(Effect::Dequeued { id: *id });
                Outcome::Cancelled(CancelOutcome::Cancelled(rec))
            }
            Command::Quarantine { key, value } => {
                quarantine_in(tx, key, value, effects)?;
                Outcome::Done
            }
            Command::Fire(firing) => Outcome::Fired(self.fire_in(tx, firing, effects)?),
            Command::Flush => Outcome::Done,
            Command::Pause { key, pause } => {
                let mut pauses: BTreeMap<String, Pause> = tx
                    .meta
                    .get(META_PAUSES)?
                    .and_then(|v| serde_json::from_slice(&v).ok())
                    .unwrap_or_default();
                let pause = pause.clone().map(|new| match pauses.get(key) {
                    Some(old) => Pause {
                        since: old.since,
                        ..new
                    },
                    None => new,
                });
                match &pause {
                    Some(p) => pauses.insert(key.clone(), p.clone()),
                    None => pauses.remove(key),
                };
                // A map of strings and numbers always serializes.
                tx.meta
                    .insert(META_PAUSES, serde_json::to_vec(&pauses).unwrap_or_default())?;
                effects.push(Effect::Paused {
                    key: key.clone(),
                    pause,
                });
                Outcome::Paused(pauses)
            }
        })
    }

    /// What a submit does, or (Err) the id of the key's original run
    /// when only the archive can tell whether it still exists.
    fn submit_in(
        &self,
        tx: &Tx,
        run: &RunRecord,
        idem: Option<&IdempotencyKey>,
        now_ms: u64,
        original_gone: bool,
        effects: &mut Vec<Effect>,
    ) -> TxResult<std::result::Result<Submitted, RunId>> {
        let idem_key = idem.map(|k| [k.scope.as_bytes(), b"\0", k.key.as_bytes()].concat());
        if let (Some(k), Some(ik)) = (idem, &idem_key) {
            if let Some(v) = tx.idempotency.get(ik)? {
                let fresh = now_ms < u64_of(v.get(48..).unwrap_or(&[])).saturating_add(IDEMPOTENCY_TTL_MS);
                if fresh && v.len() == 56 {
                    if v[..32] != k.body_digest {
                        return Ok(Ok(Submitted::KeyConflict));
                    }
                    let original = RunId(v[32..48].try_into().unwrap_or([0; 16]));
                    if let Found::Run(rec) = tx.run(&original)? {
                        return Ok(Ok(Submitted::Existing(rec)));
                    }
                    if !original_gone {
                        return Ok(Err(original));
                    }
                    // The original was pruned: accept as new.
                }
            }
        }
        let current = tx
            .sessions
            .get(run.session_id.as_bytes())?
            .and_then(|v| SessionRecord::decode(&v));
        let (record, created, expired) = match self.budget.reserve(current, run.shots, now_ms) {
            Reservation::Exhausted {
                remaining,
                resets_in_s,
            } => {
                return Ok(Ok(Submitted::BudgetExhausted {
                    remaining,
                    resets_in_s,
                }))
            }
            Reservation::Granted {
                record,
                created,
                expired,
            } => (record, created, expired),
        };
        let mut stored = run.clone();
        stored.budget_window_ms = record.window_start_ms;
        tx.sessions.insert(run.session_id.as_bytes(), &record.encode())?;
        tx.runs.insert(&run.id.0, codec::encode(&stored))?;
        let key = queue_key_of(run);
        tx.queue
            .insert(&key, queue_value(run.not_before_ms(), &run.hardware_target))?;
        if let (Some(k), Some(ik)) = (idem, idem_key) {
            let v = [&k.body_digest[..], &run.id.0[..], &now_ms.to_be_bytes()[..]].concat();
            tx.idempotency.insert(ik, v)?;
        }
        effects.push(Effect::Moved {
            from: None,
            to: Some(RunStatus::Queued),
        });
        effects.push(Effect::Enqueued {
            byte: key[0],
            id: run.id,
            target: run.hardware_target.clone(),
            not_before_ms: run.not_before_ms(),
        });
        effects.push(Effect::Session { created, expired });
        Ok(Ok(Submitted::Accepted {
            session_created: created,
            session_expired: expired,
        }))
    }

    /// A schedule's firing: refused unless the schedule is still the one
    /// the loop read (same arming) and the period is newer than its last;
    /// then the run is submitted as any other (budget reservation
    /// included) and the outcome, accepted or refused, marks the period.
    fn fire_in(
        &self,
        tx: &Tx,
        firing: &super::schedules::Firing,
        effects: &mut Vec<Effect>,
    ) -> TxResult<super::schedules::Fired> {
        use super::schedules::{decode, encode, Fired};
        let Some(mut sched) = tx.schedules.get(firing.name.as_bytes())?.and_then(|v| decode(&v)) else {
            return Ok(Fired::Gone);
        };
        if sched.armed_ms != firing.armed_ms || !sched.enabled {
            return Ok(Fired::Gone);
        }
        if sched.last_period_ms.is_some_and(|p| p >= firing.period_ms) {
            return Ok(Fired::AlreadyFired);
        }
        let outcome = match &firing.run {
            Err(refusal) => Fired::Refused(refusal.clone()),
            Ok(run) => match self.submit_in(tx, run, None, firing.now_ms, false, effects)? {
                Ok(Submitted::Accepted { .. }) => Fired::Submitted,
                Ok(Submitted::BudgetExhausted {
                    remaining,
                    resets_in_s,
                }) => Fired::Refused(format!(
                    "The budget session {} has {remaining} shots left, fewer than the {} this run \
                     needs; the window resets in {resets_in_s} s. Lower the request's shot_budget or \
                     raise max_shots_per_session.",
                    run.session_id, run.shots
                )),
                // Without an idempotency key a submit is accepted or exhausted.
                Ok(other) => Fired::Refused(format!("the submit answered {other:?}")),
                Err(_) => Fired::Refused("the submit answered with an archived run".into()),
            },
        };
        sched.last_period_ms = Some(firing.period_ms);
        sched.last_fired_ms = Some(firing.now_ms);
        match (&outcome, &firing.run) {
            (Fired::Submitted, Ok(run)) => {
                sched.submitted += 1;
                sched.last_run_id = Some(run.id);
                sched.last_error = None;
            }
            (Fired::Refused(why), _) => {
                sched.refused += 1;
                sched.last_error = Some(why.clone());
            }
            _ => {}
        }
        tx.schedules.insert(firing.name.as_bytes(), encode(&sched))?;
        Ok(outcome)
    }

    /// Picks candidates in dispatch order from the queue index (which
    /// matches the committed queue); `claimed` keeps one batch from
    /// handing out a run twice. A candidate the batch already dequeued or
    /// whose record is unusable is skipped (the unusable one quarantined).
    fn claim_in(
        &self,
        tx: &Tx,
        now_ms: u64,
        lease: Lease,
        effects: &mut Vec<Effect>,
        claimed: &mut Vec<RunId>,
    ) -> TxResult<Option<Box<RunRecord>>> {
        loop {
            let Some((byte, id)) = self.index().next_ready(now_ms, claimed) else {
                return Ok(None);
            };
            claimed.push(id);
            let key = queue_key(byte, &id);
            if tx.queue.get(key)?.is_none() {
                continue; // cancelled earlier in this batch
            }
            let mut rec = match tx.run(&id)? {
                Found::Run(rec) => rec,
                // A finished run has no queue entry; one that has is stale.
                Found::Missing | Found::Archived(_) => {
                    tx.queue.remove(&key)?;
                    effects.push(Effect::Moved {
                        from: Some(RunStatus::Queued),
                        to: None,
                    });
                    effects.push(Effect::Dequeued { id });
                    continue;
                }
                Found::Undecodable(value) => {
                    quarantine_in(tx, &id.0, &value, effects)?;
                    continue;
                }
            };
            tx.queue.remove(&key)?;
            rec.status = RunStatus::Running;
            rec.started_at = Some(now_ms as f64 / 1000.0);
            rec.attempts += 1;
            tx.runs.insert(&id.0, codec::encode(&rec))?;
            tx.leases.insert(&id.0, &encode_lease(lease))?;
            effects.push(Effect::Moved {
                from: Some(RunStatus::Queued),
                to: Some(RunStatus::Running),
            });
            effects.push(Effect::Dequeued { id });
            return Ok(Some(rec));
        }
    }
}

/// Moves a run record aside with its queue entry or lease, so the run is
/// not counted as queued (or running) forever with nothing to execute.
fn quarantine_in(tx: &Tx, key: &[u8], value: &[u8], effects: &mut Vec<Effect>) -> TxResult<()> {
    if tx.runs.remove(key)?.is_none() {
        return Ok(());
    }
    tx.to_archive.remove(key)?;
    tx.quarantine
        .insert([b"runs\0".as_slice(), key].concat(), value)?;
    effects.push(Effect::Quarantined { key: key.to_vec() });
    // Queue keys are made of a run id; a key that is none has no entry.
    if let Some(id) = run_id_of(key) {
        for byte in QUEUE_BYTES {
            if tx.queue.remove(&queue_key(byte, &id))?.is_some() {
                effects.push(Effect::Moved {
                    from: Some(RunStatus::Queued),
                    to: None,
                });
                effects.push(Effect::Dequeued { id });
            }
        }
    }
    if tx.leases.remove(key)?.is_some() {
        effects.push(Effect::Moved {
            from: Some(RunStatus::Running),
            to: None,
        });
    }
    Ok(())
}
