//! A run's way through the store, one writer command each: submit, claim,
//! finish, requeue and cancel, and the flush a caller can wait on. Each
//! goes to the single writer (writer.rs) and is applied in one
//! transaction (commands.rs).

use super::commands::{Command, Outcome, Refund, Requeue};
use super::error::Result;
use super::schedules::{Fired, Firing};
use super::{archive, codec, usage, Calibration};
use super::{unexpected, CancelOutcome, Finish, IdempotencyKey, Lease, Store, StoreError, Submitted};
use crate::run::{RunError, RunId, RunRecord};

impl Store {
    /// Accepts a run: the record, its queue entry, the budget reservation
    /// and the idempotency key, all or nothing. Answers once the run is on
    /// disk (a flush shared with every write waiting at the same time).
    pub async fn submit(
        &self,
        run: &RunRecord,
        idem: Option<&IdempotencyKey>,
        now_ms: u64,
    ) -> Result<Submitted> {
        let submit = |original_gone| Command::Submit {
            run: run.clone(),
            idem: idem.cloned(),
            now_ms,
            original_gone,
        };
        match self.call(submit(false)).await? {
            Outcome::Submitted(s) => Ok(s),
            // A repeat of a run that finished and moved to the archive,
            // where it is final; if it is not there either, it was pruned
            // and the key no longer stands for it.
            Outcome::OriginalArchived(original) => {
                self.archive_opened().await;
                if let Some(rec) = self.get_archived(&original.0)? {
                    return Ok(Submitted::Existing(Box::new(rec)));
                }
                match self.call(submit(true)).await? {
                    Outcome::Submitted(s) => Ok(s),
                    other => Err(unexpected(other)),
                }
            }
            other => Err(unexpected(other)),
        }
    }

    /// Claims up to one run per lease, in dispatch order (the oldest ready
    /// run of the highest priority first), normally in one transaction;
    /// fewer when fewer are ready. Each claim removes the run's queue
    /// entry, marks it running and records its lease. Each run comes with
    /// its lease (another client's submit may land between two claims, so
    /// a lease that found nothing can precede one that found a run). On
    /// an error, runs claimed by commands that did commit come back
    /// through lease recovery.
    pub async fn claim(&self, now_ms: u64, leases: &[Lease]) -> Result<Vec<(RunRecord, Lease)>> {
        self.writable()?;
        let commands = leases
            .iter()
            .map(|&lease| Command::Claim { now_ms, lease })
            .collect();
        let mut claimed = Vec::with_capacity(leases.len());
        for (answer, lease) in self.writer.call_many(commands).await.into_iter().zip(leases) {
            match answer? {
                Outcome::Claimed(Some(r)) => claimed.push((*r, *lease)),
                Outcome::Claimed(None) => {}
                other => return Err(unexpected(other)),
            }
        }
        Ok(claimed)
    }

    /// Ends a running run (as it was claimed): result and state with the
    /// lease check, the finished counter and any refund. None when the
    /// lease is no longer this token's (the run was taken back).
    pub async fn finish(
        &self,
        rec: RunRecord,
        token: u64,
        fin: Finish,
        now_ms: u64,
    ) -> Result<Option<RunRecord>> {
        self.finish_all(vec![(rec, token, fin, now_ms)])
            .await
            .pop()
            .unwrap_or_else(|| Err(StoreError::Unavailable("the store writer gave no answer".into())))
    }

    /// [`Store::finish`] for several runs, normally in one transaction;
    /// one answer per run, in order. The records go to the archive, on
    /// disk, before the transaction that ends the runs (see archive.rs).
    pub async fn finish_all(
        &self,
        runs: Vec<(RunRecord, u64, Finish, u64)>,
    ) -> Vec<Result<Option<RunRecord>>> {
        let failed = |e: StoreError, n: usize| (0..n).map(|_| Err(e.clone())).collect();
        if let Err(e) = self.writable() {
            return failed(e, runs.len());
        }
        let (commands, records): (Vec<Command>, Vec<RunRecord>) = runs
            .into_iter()
            .map(|(mut rec, token, fin, now_ms)| {
                rec.status = fin.status;
                rec.finished_at = Some(now_ms as f64 / 1000.0);
                rec.result = fin.result;
                rec.error = fin.error;
                let command = Command::Finish {
                    id: rec.id,
                    status: rec.status,
                    token,
                    refund: fin.refund.then(|| Refund::of(&rec)),
                    usage: usage::deltas(&rec),
                    calibration: Calibration::of(&rec).map(Box::new),
                    now_ms,
                };
                (command, rec)
            })
            .collect();
        // Encoded and written here, off the writer thread: the results are
        // the largest thing the store writes, and submits wait for that
        // thread. Bounded like the writer's own batches (a full disk can
        // hang a sled flush).
        let encoded: Vec<(RunId, Vec<u8>)> = records.iter().map(|r| (r.id, codec::encode(r))).collect();
        let slot = self.archive.clone();
        let written = self
            .writer
            .bounded(smol::unblock(move || {
                archive::write_durably(&slot, &encoded).map(|()| encoded)
            }))
            .await;
        let encoded = match written {
            Ok(encoded) => encoded,
            Err(e) => return failed(self.refuse_writes(e), records.len()),
        };
        let answers = self.writer.call_many(commands).await;
        answers
            .into_iter()
            .zip(records)
            .zip(encoded.iter())
            .map(|((answer, rec), (id, bytes))| match answer? {
                Outcome::Finished(true) => Ok(Some(rec)),
                Outcome::Finished(false) => {
                    self.take_back(id, bytes)?;
                    Ok(None)
                }
                other => Err(unexpected(other)),
            })
            .collect()
    }

    /// Fires one period of a schedule (see [`Firing`]); answered once on disk.
    pub(crate) async fn fire(&self, firing: Firing) -> Result<Fired> {
        match self.call(Command::Fire(firing)).await? {
            Outcome::Fired(f) => Ok(f),
            other => Err(unexpected(other)),
        }
    }

    /// Puts a running run back in the queue (lease expired, retry after a
    /// transient error, given back at shutdown, or not started), counted
    /// as `why` says. False when the lease is not `token`'s.
    pub async fn requeue(&self, id: &RunId, token: u64, not_before_ms: u64, why: Requeue) -> Result<bool> {
        let command = Command::Requeue {
            id: *id,
            token,
            not_before_ms,
            why,
        };
        match self.call(command).await? {
            Outcome::Requeued(done) => Ok(done),
            other => Err(unexpected(other)),
        }
    }

    /// Cancels a queued run at once (shots refunded); reports the state of
    /// any other.
    pub async fn cancel_queued(&self, id: &RunId, error: RunError, now_ms: u64) -> Result<CancelOutcome> {
        match self
            .call(Command::Cancel {
                id: *id,
                error,
                now_ms,
            })
            .await?
        {
            // Not in the main store: it may be finished and archived.
            Outcome::Cancelled(CancelOutcome::NotFound) => {
                self.archive_opened().await;
                Ok(match self.get_archived(&id.0)? {
                    Some(rec) => CancelOutcome::AlreadyFinished(rec.status),
                    None => CancelOutcome::NotFound,
                })
            }
            Outcome::Cancelled(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// Pauses `key` (a target id, or [`super::WHOLE_QUEUE`]) or ends its
    /// pause (None): no run of it starts while paused; running runs go on.
    /// Answers once on disk, with every pause then in place.
    pub async fn set_pause(
        &self,
        key: &str,
        pause: Option<super::Pause>,
    ) -> Result<std::collections::BTreeMap<String, super::Pause>> {
        let command = Command::Pause {
            key: key.to_string(),
            pause,
        };
        match self.call(command).await? {
            Outcome::Paused(pauses) => Ok(pauses),
            other => Err(unexpected(other)),
        }
    }

    /// Resolves once everything written before the call is on disk.
    pub async fn flush(&self) -> Result<()> {
        self.call(Command::Flush).await.map(|_| ())
    }

    pub(super) async fn call(&self, command: Command) -> Result<Outcome> {
        self.writable()?;
        self.writer.call(command).await
    }
}
