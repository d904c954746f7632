//! The durable store: runs, the queue, leases, budget sessions, idempotency
//! keys and settings, each in its own sled tree, and the archive of
//! finished runs in a second sled database (archive.rs). Encoding is
//! private to this module; callers see typed records. Every state change of a run is a
//! command applied by the single writer (writer.rs), in one sled
//! transaction with the others waiting, and the per-state counts are
//! updated as those transactions commit, so nothing on a hot path ever
//! scans the store. A run's way through it (submit, claim, finish,
//! requeue, cancel) is in lifecycle.rs, the reads (a run, a page, leases,
//! sessions) in read.rs, a clean stop in close.rs.

mod archive;
mod backup;
mod calibration;
mod close;
mod codec;
mod commands;
mod compact;
mod error;
mod fill;
mod layout;
mod lifecycle;
mod open;
mod queue_index;
mod read;
mod schedules;
mod usage;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::budget::{Budget, SessionRecord};
use crate::controls::ControlProfile;
use crate::run::{RunError, RunId, RunRecord, RunStatus};
pub use backup::{restore, Restored};
pub use calibration::{Calibration, Fitted, NewProfile, ProfileVersion};
pub use commands::Requeue;
use commands::{Command, Outcome};
pub use compact::Compacted;
use error::Result;
pub use error::StoreError;
pub use fill::fill;
use layout::{
    bump, decode_lease, encode_lease, finished_key, queue_key, run_id_of, u64_of, CANCEL_REQUESTED,
    META_PROBE, META_PROFILE,
};
use open::open_sled;
pub use open::{DEFAULT_CACHE_BYTES, SCHEMA_VERSION};
pub use queue_index::{Pause, WHOLE_QUEUE};
pub(crate) use schedules::Firing;
pub use schedules::{Fired, ScheduleWrite};
pub use usage::QubitUsage;

/// Runs per state, kept in memory and moved only by committed transactions.
#[derive(Debug, Default)]
pub struct Counts {
    by_status: [AtomicU64; 5],
    /// Budget sessions with a live window.
    pub sessions: AtomicU64,
    /// Records moved aside because they could not be decoded.
    pub quarantined: AtomicU64,
}

impl Counts {
    pub fn get(&self, s: RunStatus) -> u64 {
        self.by_status[s as usize].load(Ordering::Relaxed)
    }

    pub fn total(&self) -> u64 {
        RunStatus::ALL.iter().map(|s| self.get(*s)).sum()
    }

    fn add(&self, s: RunStatus, n: u64) {
        self.by_status[s as usize].fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, s: RunStatus, n: u64) {
        // Saturating: a count never wraps even if a bug double-moves a run.
        let _ = self.by_status[s as usize].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(n))
        });
    }
}

/// What a submit did.
#[derive(Debug)]
pub enum Submitted {
    Accepted {
        session_created: bool,
        session_expired: bool,
    },
    /// Same idempotency key and body within 24 h: the original run.
    Existing(Box<RunRecord>),
    /// Same idempotency key, different body.
    KeyConflict,
    BudgetExhausted {
        remaining: u64,
        resets_in_s: u64,
    },
}

/// An idempotency key as stored: scoped by budget session, with a digest of
/// the normalized request body.
#[derive(Clone)]
pub struct IdempotencyKey {
    pub scope: String,
    pub key: String,
    pub body_digest: [u8; 32],
}

pub const IDEMPOTENCY_TTL_MS: u64 = 24 * 3600 * 1000;

/// A running run's claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub token: u64,
    pub expires_ms: u64,
}

/// How a run ends.
pub struct Finish {
    pub status: RunStatus,
    pub result: Option<crate::run::ResultDoc>,
    pub error: Option<RunError>,
    /// Give the run's shots back to its budget window.
    pub refund: bool,
}

#[derive(Debug)]
pub enum CancelOutcome {
    Cancelled(Box<RunRecord>),
    /// Running: the worker must stop it.
    Running,
    AlreadyFinished(RunStatus),
    NotFound,
}

/// Filters of GET /runs.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub status: Option<RunStatus>,
    pub preset: Option<crate::sim::Preset>,
    pub hardware_target: Option<String>,
    /// Only runs older than this id (the previous page's last).
    pub before: Option<RunId>,
    pub limit: usize,
}

pub struct Store {
    db: sled::Db,
    runs: sled::Tree,
    queue: sled::Tree,
    leases: sled::Tree,
    sessions: sled::Tree,
    idempotency: sled::Tree,
    meta: sled::Tree,
    quarantine: sled::Tree,
    /// Finished runs still in `runs`, waiting to move to the archive.
    to_archive: sled::Tree,
    /// Health runs' fits per target: history and latest (calibration.rs).
    calibrations: sled::Tree,
    /// Schedules by name (schedules.rs).
    schedules: sled::Tree,
    /// The main database's page cache, for its reopening at a stop.
    cache_bytes: u64,
    archive: archive::Slot,
    /// Taken to move runs to the archive; listings hold it shared.
    moving: RwLock<()>,
    path: PathBuf,
    writer: writer::Writer,
    /// Orders [`Store::apply`] calls (see commands.rs).
    write_lock: Mutex<()>,
    pub counts: Counts,
    budget: Budget,
    /// Last id's (ms, sequence), so ids from one process are strictly
    /// increasing even within a millisecond.
    last_id: Mutex<(u64, u16)>,
    /// The queue's order in memory (positions, oldest, backoffs).
    index: Mutex<queue_index::QueueIndex>,
    /// Set when a write failed or a flush hung: writes are refused from
    /// then on, without touching sled, until a restart (see
    /// [`Store::refuse_writes`] and writer.rs).
    write_failed: Arc<AtomicBool>,
    /// The last free-space reading and when it was taken.
    free_space: Mutex<Option<(std::time::Instant, u64)>>,
    /// The active control profile, read by every submit; written through.
    profile: std::sync::RwLock<ControlProfile>,
}

impl Store {
    /// Refuses writes once they failed (see [`Store::refuse_writes`]).
    fn writable(&self) -> Result<()> {
        if self.write_failed.load(Ordering::SeqCst) {
            return Err(StoreError::WritesRefused);
        }
        Ok(())
    }

    /// False once writes are refused; /health's `writable`, and then its
    /// `ok`, readiness and synqc_store_up (the probe) all say so.
    pub fn is_writable(&self) -> bool {
        !self.write_failed.load(Ordering::SeqCst)
    }

    /// After a write to the disk failed (ENOSPC, EIO), writes are refused
    /// until a restart, even once the disk has room again: sled 0.34
    /// keeps the first error of a log write (Config::set_global_error),
    /// checks it before every later write and flush and returns it, and
    /// clears it only when a database is opened (PageCache::start); the
    /// writes of the failed buffer are not on disk though readable in
    /// memory. Only a restart's reopening recovers, replaying the log up
    /// to what did reach the disk. Logs the cause; returns the error
    /// callers pass on.
    pub(crate) fn refuse_writes(&self, cause: StoreError) -> StoreError {
        if !matches!(cause, StoreError::WritesRefused) && !self.write_failed.swap(true, Ordering::SeqCst) {
            log::error!(
                "a write to the store failed ({cause}); writes are refused until synqc restarts: \
                 free space on the data directory's disk and restart synqc"
            );
        }
        StoreError::WritesRefused
    }

    /// Free bytes on the data directory's file system. Every submit asks
    /// (the disk reserve), and a statvfs per submit cost 2% of the CPU at
    /// 10,000 submits/s, so a reading far from full is reused for 100 ms;
    /// below 64 MiB every call measures.
    pub fn free_bytes(&self) -> Option<u64> {
        const FRESH: std::time::Duration = std::time::Duration::from_millis(100);
        const ROOMY: u64 = 64 << 20;
        let mut last = self.free_space.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, free)) = *last {
            if free > ROOMY && at.elapsed() < FRESH {
                return Some(free);
            }
        }
        let free = rustix::fs::statvfs(&self.path)
            .ok()
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize));
        *last = free.map(|f| (std::time::Instant::now(), f));
        free
    }

    fn index(&self) -> std::sync::MutexGuard<'_, queue_index::QueueIndex> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Both databases (the archive once it is open).
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()? + self.archive_size_on_disk()?)
    }

    /// A read and a write, for /health and synqc_store_up. A failed write
    /// refuses writes from then on, so every health field agrees.
    pub fn probe(&self) -> Result<()> {
        self.writable()?;
        self.meta
            .insert(META_PROBE, &crate::clock::now_ms().to_be_bytes())
            .map_err(|e| self.refuse_writes(e.into()))?;
        self.meta.get(META_PROBE)?;
        Ok(())
    }

    /// A fresh, time-ordered run id.
    pub fn new_run_id(&self) -> RunId {
        let now = crate::clock::now_ms();
        let mut last = self.last_id.lock().unwrap_or_else(|p| p.into_inner());
        let (ms, seq) = if now > last.0 {
            (now, 0)
        } else if last.1 < 0x0fff {
            (last.0, last.1 + 1)
        } else {
            // 4096 ids in one millisecond: borrow the next millisecond.
            (last.0 + 1, 0)
        };
        *last = (ms, seq);
        RunId::new(ms, seq, rand::random())
    }

    fn session_window_changed(&self, created: bool, expired: bool) {
        if created {
            metrics::counter!("synqc_budget_session_key_churn_total", "backend" => "sled").increment(1);
            if !expired {
                self.counts.sessions.fetch_add(1, Ordering::Relaxed);
            }
        }
        if expired {
            metrics::counter!("synqc_budget_session_key_churn_total", "backend" => "sled").increment(1);
        }
    }

    /// Extends a lease, keeping its cancel mark; false when the lease is
    /// no longer this token's.
    pub fn renew(&self, id: &RunId, token: u64, expires_ms: u64) -> Result<bool> {
        self.writable()?;
        loop {
            let Some(current) = self.leases.get(id.0)? else {
                return Ok(false);
            };
            if decode_lease(&current).token != token {
                return Ok(false);
            }
            let mut new = encode_lease(Lease { token, expires_ms }).to_vec();
            new.extend_from_slice(current.get(16..).unwrap_or(&[]));
            let swapped = self
                .leases
                .compare_and_swap(id.0, Some(current), Some(new))
                .map_err(|e| self.refuse_writes(e.into()))?;
            // Lost only to a cancel marking the same lease: read it again.
            if swapped.is_ok() {
                return Ok(true);
            }
        }
    }

    /// Drops expired budget sessions and stale idempotency keys. Returns
    /// the number of sessions that expired.
    pub fn expire_sessions(&self, now_ms: u64) -> Result<u64> {
        self.writable()?;
        let mut expired = 0;
        for item in self.sessions.iter() {
            let (k, v) = item?;
            let stale = SessionRecord::decode(&v).is_none_or(|r| self.budget.is_expired(&r, now_ms));
            // compare_and_swap: a reservation that raced in keeps its session.
            if stale
                && self
                    .sessions
                    .compare_and_swap(&k, Some(&v), None as Option<&[u8]>)?
                    .is_ok()
            {
                expired += 1;
            }
        }
        if expired > 0 {
            let _ = self
                .counts
                .sessions
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(expired))
                });
            metrics::counter!("synqc_budget_session_key_churn_total", "backend" => "sled").increment(expired);
        }
        for item in self.idempotency.iter() {
            let (k, v) = item?;
            if now_ms >= u64_of(v.get(48..).unwrap_or(&[])).saturating_add(IDEMPOTENCY_TTL_MS) {
                self.idempotency
                    .compare_and_swap(&k, Some(&v), None as Option<&[u8]>)?
                    .ok();
            }
        }
        Ok(expired)
    }

    pub fn set_control_profile(&self, p: &ControlProfile) -> Result<()> {
        self.writable()?;
        self.meta
            .insert(META_PROFILE, serde_json::to_vec(p).unwrap_or_default())?;
        *self.profile.write().unwrap_or_else(|e| e.into_inner()) = p.clone();
        Ok(())
    }

    /// One round trip of the appliance's own loop for the latency preset:
    /// a durable enqueue (write, then the shared group-commit flush), a
    /// claim (remove) and a result write, on a scratch key of the meta tree.
    pub fn loop_probe(&self) -> Result<()> {
        self.writable()?;
        let key = [b"loop/".as_slice(), &rand::random::<u64>().to_be_bytes()].concat();
        self.meta.insert(&key, &crate::clock::now_ms().to_be_bytes())?;
        smol::block_on(self.flush())?;
        self.meta.remove(&key)?;
        self.meta.insert(&key, b"done".as_slice())?;
        self.meta.remove(&key)?;
        Ok(())
    }

    /// Blocks until everything written so far is on disk, in both
    /// databases.
    pub fn flush_now(&self) -> Result<()> {
        self.db.flush()?;
        self.flush_archive()
    }
}

impl Drop for Store {
    /// Waits for the archive's thread to have opened it (milliseconds):
    /// no thread of a dropped store may still create files in its data
    /// directory, which a failed restore and the tests then remove.
    fn drop(&mut self) {
        self.archive.wait();
    }
}

fn unexpected(outcome: Outcome) -> StoreError {
    StoreError::Unavailable(format!(
        "the store writer answered {outcome:?} to another command"
    ))
}

#[cfg(test)]
mod tests;
