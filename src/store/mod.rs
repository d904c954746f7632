//! The durable store: runs, the queue, leases, budget sessions, idempotency
//! keys and settings, each in its own sled tree. Encoding is private to this
//! module; callers see typed records. Every state change of a run is one
//! sled transaction, and the per-state counts are updated as those
//! transactions commit, so nothing on a hot path ever scans the store.

mod backup;
mod flush;
mod queue_index;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sled::transaction::{ConflictableTransactionError as Abortable, TransactionError, TransactionalTree};
use sled::Transactional;

use crate::budget::{Budget, Reservation, SessionRecord};
use crate::controls::ControlProfile;
use crate::queue::run::{RunError, RunId, RunRecord, RunStatus};
pub use backup::{restore, Restored};
pub use flush::Flusher;

/// Version of the on-disk layout. Bump with a migration in [`Store::open`].
pub const SCHEMA_VERSION: u64 = 1;

#[derive(Clone, Debug, PartialEq)]
pub enum StoreError {
    /// The disk or sled failed (full disk, I/O error, corruption).
    Io(String),
    /// The store was written by a newer synqc.
    TooNew { found: u64 },
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "store I/O error: {e}"),
            StoreError::TooNew { found } => write!(
                f,
                "the store has schema version {found}, newer than this synqc supports ({SCHEMA_VERSION}); \
                 run the newer synqc or restore a backup"
            ),
        }
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

type Result<T> = std::result::Result<T, StoreError>;

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

    fn moved(&self, from: RunStatus, to: RunStatus) {
        self.sub(from, 1);
        self.add(to, 1);
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
    pub result: Option<serde_json::Value>,
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
    path: PathBuf,
    flusher: Flusher,
    pub counts: Counts,
    budget: Budget,
    /// Last id's (ms, sequence), so ids from one process are strictly
    /// increasing even within a millisecond.
    last_id: Mutex<(u64, u16)>,
    /// The queue's order in memory (positions, oldest, backoffs).
    index: Mutex<queue_index::QueueIndex>,
    /// Set when a flush hung: writes are refused from then on,
    /// without touching sled, until a restart (see flush.rs).
    write_failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The active control profile, read by every submit; written through.
    profile: std::sync::RwLock<ControlProfile>,
}

const META_SCHEMA: &[u8] = b"schema_version";
const META_PROFILE: &[u8] = b"control_profile";
const META_PROBE: &[u8] = b"probe";

fn finished_key(s: RunStatus) -> Vec<u8> {
    format!("finished/{}", s.as_str()).into_bytes()
}

fn queue_key(priority: u8, id: &RunId) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = priority;
    k[1..].copy_from_slice(&id.0);
    k
}

fn u64_of(bytes: &[u8]) -> u64 {
    bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

fn encode_lease(l: Lease) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&l.token.to_be_bytes());
    b[8..].copy_from_slice(&l.expires_ms.to_be_bytes());
    b
}

fn decode_lease(b: &[u8]) -> Lease {
    Lease {
        token: u64_of(b),
        expires_ms: u64_of(b.get(8..).unwrap_or(&[])),
    }
}

fn encode_run(r: &RunRecord) -> Vec<u8> {
    // Serializing plain data structs cannot fail.
    serde_json::to_vec(r).unwrap_or_default()
}

fn run_id_of(key: &[u8]) -> Option<RunId> {
    key.try_into().ok().map(RunId)
}

/// Aborts a transaction with a typed reason.
enum Abort {
    Conflict,
    Existing(Box<RunRecord>),
    Exhausted { remaining: u64, resets_in_s: u64 },
    LeaseLost,
    Gone,
    Undecodable,
    NotQueued(RunStatus),
}

fn abort<T>(a: Abort) -> std::result::Result<T, Abortable<Abort>> {
    Err(Abortable::Abort(a))
}

fn decode_in_tx(tree: &TransactionalTree, id: &RunId) -> std::result::Result<RunRecord, Abortable<Abort>> {
    match tree.get(id.0)? {
        None => abort(Abort::Gone),
        Some(v) => serde_json::from_slice(&v).or_else(|_| abort(Abort::Undecodable)),
    }
}

fn bump(tree: &TransactionalTree, key: &[u8], delta: i64) -> std::result::Result<(), Abortable<Abort>> {
    let current = tree.get(key)?.map(|v| u64_of(&v)).unwrap_or(0);
    let next = if delta >= 0 {
        current.saturating_add(delta as u64)
    } else {
        current.saturating_sub(delta.unsigned_abs())
    };
    tree.insert(key, &next.to_be_bytes())?;
    Ok(())
}

impl Store {
    /// Opens (or creates) the store, checks and migrates its schema, and
    /// loads the counts: queued and running from their (bounded) trees,
    /// finished ones from persisted counters, so start-up does not depend
    /// on how many runs are stored.
    pub fn open(path: &Path, budget: Budget) -> Result<Store> {
        let db = sled::Config::new().path(path).open()?;
        let meta = db.open_tree("meta")?;
        match meta.get(META_SCHEMA)?.map(|v| u64_of(&v)) {
            Some(v) if v > SCHEMA_VERSION => return Err(StoreError::TooNew { found: v }),
            Some(v) if v == SCHEMA_VERSION => {}
            // A new store, or (future) an older layout to migrate here.
            _ => {
                meta.insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
            }
        }
        let write_failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let profile = meta
            .get(META_PROFILE)?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default();
        let store = Store {
            runs: db.open_tree("runs")?,
            queue: db.open_tree("queue")?,
            leases: db.open_tree("leases")?,
            sessions: db.open_tree("sessions")?,
            idempotency: db.open_tree("idempotency")?,
            quarantine: db.open_tree("quarantine")?,
            meta,
            path: path.to_path_buf(),
            flusher: Flusher::start(db.clone(), write_failed.clone()),
            write_failed,
            counts: Counts::default(),
            budget,
            last_id: Mutex::new((0, 0)),
            index: Mutex::new(queue_index::QueueIndex::default()),
            profile: std::sync::RwLock::new(profile),
            db,
        };
        let mut queued = 0;
        for item in store.queue.iter() {
            let (k, v) = item?;
            queued += 1;
            if let Some(id) = k.get(1..).and_then(run_id_of) {
                store.index().insert(k[0], id, u64_of(&v));
            }
        }
        store.counts.add(RunStatus::Queued, queued);
        store.counts.add(RunStatus::Running, store.leases.len() as u64);
        for s in [RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled] {
            store.counts.add(
                s,
                store.meta.get(finished_key(s))?.map(|v| u64_of(&v)).unwrap_or(0),
            );
        }
        store
            .counts
            .quarantined
            .store(store.quarantine.len() as u64, Ordering::Relaxed);
        let now = crate::now_ms();
        let live = store
            .sessions
            .iter()
            .values()
            .filter_map(|v| v.ok().and_then(|v| SessionRecord::decode(&v)))
            .filter(|r| !store.budget.is_expired(r, now))
            .count();
        store.counts.sessions.store(live as u64, Ordering::Relaxed);
        store.db.flush()?;
        Ok(store)
    }

    /// Refuses writes once a flush hung: sled may then block any
    /// write forever, and a request must get its error instead.
    fn writable(&self) -> Result<()> {
        if self.write_failed.load(Ordering::SeqCst) {
            return Err(StoreError::Io(
                "the store is read-only after a flush hung; restart synqc once the disk has room".into(),
            ));
        }
        Ok(())
    }

    /// False once writes are refused (see [`Store::writable`]).
    pub fn is_writable(&self) -> bool {
        !self.write_failed.load(Ordering::SeqCst)
    }

    /// Free bytes on the data directory's file system.
    pub fn free_bytes(&self) -> Option<u64> {
        rustix::fs::statvfs(&self.path)
            .ok()
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
    }

    fn index(&self) -> std::sync::MutexGuard<'_, queue_index::QueueIndex> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn flusher(&self) -> &Flusher {
        &self.flusher
    }

    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }

    /// A read and a write, for /health and synqc_store_up.
    pub fn probe(&self) -> Result<()> {
        self.writable()?;
        self.meta.insert(META_PROBE, &crate::now_ms().to_be_bytes())?;
        self.meta.get(META_PROBE)?;
        Ok(())
    }

    /// A fresh, time-ordered run id.
    pub fn new_run_id(&self) -> RunId {
        let now = crate::now_ms();
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

    /// Accepts a run: the record, its queue entry, the budget reservation
    /// and the idempotency key, all or nothing. Not yet durable: the caller
    /// awaits [`Flusher::flush`] before answering 202.
    pub fn submit(&self, run: &RunRecord, idem: Option<&IdempotencyKey>, now_ms: u64) -> Result<Submitted> {
        self.writable()?;
        let budget = self.budget;
        let outcome = (&self.runs, &self.queue, &self.sessions, &self.idempotency).transaction(
            |(runs, queue, sessions, idempotency)| {
                let idem_key = idem.map(|k| [k.scope.as_bytes(), b"\0", k.key.as_bytes()].concat());
                if let (Some(k), Some(ik)) = (idem, &idem_key) {
                    if let Some(v) = idempotency.get(ik)? {
                        let fresh =
                            now_ms < u64_of(v.get(48..).unwrap_or(&[])).saturating_add(IDEMPOTENCY_TTL_MS);
                        if fresh && v.len() == 56 {
                            if v[..32] != k.body_digest {
                                return abort(Abort::Conflict);
                            }
                            let original = RunId(v[32..48].try_into().unwrap_or([0; 16]));
                            if let Ok(rec) = decode_in_tx(runs, &original) {
                                return abort(Abort::Existing(Box::new(rec)));
                            }
                            // The original was pruned: accept as new.
                        }
                    }
                }
                let current = sessions
                    .get(run.session_id.as_bytes())?
                    .and_then(|v| SessionRecord::decode(&v));
                let (record, created, expired) = match budget.reserve(current, run.shots, now_ms) {
                    Reservation::Exhausted {
                        remaining,
                        resets_in_s,
                    } => {
                        return abort(Abort::Exhausted {
                            remaining,
                            resets_in_s,
                        })
                    }
                    Reservation::Granted {
                        record,
                        created,
                        expired,
                    } => (record, created, expired),
                };
                let mut stored = run.clone();
                stored.budget_window_ms = record.window_start_ms;
                sessions.insert(run.session_id.as_bytes(), &record.encode())?;
                runs.insert(&run.id.0, encode_run(&stored))?;
                queue.insert(&queue_key(run.mode.priority(), &run.id), &0u64.to_be_bytes())?;
                if let (Some(k), Some(ik)) = (idem, idem_key) {
                    let v = [&k.body_digest[..], &run.id.0[..], &now_ms.to_be_bytes()[..]].concat();
                    idempotency.insert(ik, v)?;
                }
                Ok((created, expired))
            },
        );
        match outcome {
            Ok((created, expired)) => {
                self.counts.add(RunStatus::Queued, 1);
                self.index().insert(run.mode.priority(), run.id, 0);
                self.session_window_changed(created, expired);
                Ok(Submitted::Accepted {
                    session_created: created,
                    session_expired: expired,
                })
            }
            Err(TransactionError::Abort(Abort::Conflict)) => Ok(Submitted::KeyConflict),
            Err(TransactionError::Abort(Abort::Existing(r))) => Ok(Submitted::Existing(r)),
            Err(TransactionError::Abort(Abort::Exhausted {
                remaining,
                resets_in_s,
            })) => Ok(Submitted::BudgetExhausted {
                remaining,
                resets_in_s,
            }),
            Err(TransactionError::Abort(_)) => Err(StoreError::Io("unexpected submit abort".into())),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Takes back an accepted-but-not-durable submit after its flush failed,
    /// so a client that saw an error never finds the run executing later.
    pub fn unsubmit(&self, run: &RunRecord) -> Result<()> {
        self.writable()?;
        let budget = self.budget;
        let now = crate::now_ms();
        let done = (&self.runs, &self.queue, &self.sessions).transaction(|(runs, queue, sessions)| {
            if queue.remove(&queue_key(run.mode.priority(), &run.id))?.is_none() {
                return Ok(false);
            }
            // The stored copy knows the budget window the shots went to.
            let stored = decode_in_tx(runs, &run.id)?;
            runs.remove(&run.id.0)?;
            let current = sessions
                .get(stored.session_id.as_bytes())?
                .and_then(|v| SessionRecord::decode(&v));
            if let Some(r) = budget.refund(current, stored.shots, stored.budget_window_ms, now) {
                sessions.insert(stored.session_id.as_bytes(), &r.encode())?;
            }
            Ok(true)
        });
        match done {
            Ok(true) => {
                self.counts.sub(RunStatus::Queued, 1);
                self.index().remove(run.mode.priority(), &run.id);
                Ok(())
            }
            Ok(false) | Err(TransactionError::Abort(_)) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
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

    pub fn get(&self, id: &RunId) -> Result<Option<RunRecord>> {
        match self.runs.get(id.0)? {
            None => Ok(None),
            Some(v) => Ok(self.decode_or_quarantine(&id.0, &v)),
        }
    }

    /// Decodes a run record; one that cannot be decoded is moved to the
    /// quarantine tree and reported, never allowed to crash a request.
    fn decode_or_quarantine(&self, key: &[u8], value: &[u8]) -> Option<RunRecord> {
        match serde_json::from_slice(value) {
            Ok(r) => Some(r),
            Err(e) => {
                log::error!(
                    "quarantining undecodable run record {}: {e}",
                    crate::budget::hex(key)
                );
                let qkey = [b"runs\0".as_slice(), key].concat();
                // Its queue entry or lease goes too, or the run would count
                // as queued (or running) forever with nothing to execute.
                let moved = (&self.runs, &self.queue, &self.leases, &self.quarantine).transaction(
                    |(runs, queue, leases, quarantine)| {
                        if runs.remove(key)?.is_none() {
                            return Ok(None);
                        }
                        quarantine.insert(qkey.as_slice(), value)?;
                        let mut queued = false;
                        for priority in [0u8, 1u8] {
                            let qk = [&[priority][..], key].concat();
                            queued |= queue.remove(qk)?.is_some();
                        }
                        let running = leases.remove(key)?.is_some();
                        Ok::<_, Abortable<()>>(Some((queued, running)))
                    },
                );
                if let Ok(Some((queued, running))) = moved {
                    self.counts.quarantined.fetch_add(1, Ordering::Relaxed);
                    if queued {
                        self.counts.sub(RunStatus::Queued, 1);
                        if let Some(id) = run_id_of(key) {
                            let mut index = self.index();
                            index.remove(0, &id);
                            index.remove(1, &id);
                        }
                    }
                    if running {
                        self.counts.sub(RunStatus::Running, 1);
                    }
                }
                None
            }
        }
    }

    /// 0-based position among queued runs in dispatch order.
    pub fn queue_position(&self, run: &RunRecord) -> Option<u64> {
        self.index().position(run.mode.priority(), &run.id)
    }

    /// Newest first, filtered, one page plus whether there is more.
    pub fn list(&self, f: &ListFilter) -> Result<(Vec<RunRecord>, bool)> {
        let upper = f.before.map(|id| id.0.to_vec()).unwrap_or_else(|| vec![0xff; 17]);
        let mut out = Vec::with_capacity(f.limit.min(512));
        for item in self.runs.range(..upper).rev() {
            let (k, v) = item?;
            let Some(rec) = self.decode_or_quarantine(&k, &v) else {
                continue;
            };
            if f.status.is_some_and(|s| s != rec.status)
                || f.preset.is_some_and(|p| p != rec.preset)
                || f.hardware_target
                    .as_ref()
                    .is_some_and(|t| *t != rec.hardware_target)
            {
                continue;
            }
            if out.len() == f.limit {
                return Ok((out, true));
            }
            out.push(rec);
        }
        Ok((out, false))
    }

    /// Claims the oldest ready run of the highest priority: removes its
    /// queue entry, marks it running and records a lease, in one transaction.
    pub fn claim_next(&self, now_ms: u64, lease: Lease) -> Result<Option<RunRecord>> {
        self.writable()?;
        for item in self.queue.iter() {
            let (key, not_before) = item?;
            if u64_of(&not_before) > now_ms {
                continue;
            }
            let Some(id) = key.get(1..).and_then(run_id_of) else {
                continue;
            };
            let claimed = (&self.runs, &self.queue, &self.leases).transaction(|(runs, queue, leases)| {
                if queue.remove(&key)?.is_none() {
                    return abort(Abort::Gone);
                }
                // A missing record is as unusable as an undecodable one:
                // either way the entry must leave the queue (below).
                let mut rec = match decode_in_tx(runs, &id) {
                    Err(Abortable::Abort(Abort::Gone)) => return abort(Abort::Undecodable),
                    other => other?,
                };
                rec.status = RunStatus::Running;
                rec.started_at = Some(now_ms as f64 / 1000.0);
                rec.attempts += 1;
                runs.insert(&id.0, encode_run(&rec))?;
                leases.insert(&id.0, &encode_lease(lease))?;
                Ok(rec)
            });
            match claimed {
                Ok(rec) => {
                    self.counts.moved(RunStatus::Queued, RunStatus::Running);
                    self.index().remove(key[0], &id);
                    return Ok(Some(rec));
                }
                // Cancelled between the scan and the claim: try the next.
                Err(TransactionError::Abort(Abort::Gone)) => continue,
                Err(TransactionError::Abort(_)) => {
                    // The record is unreadable: move it aside (with its
                    // queue entry) rather than retrying it forever.
                    match self.runs.get(id.0)? {
                        Some(v) => {
                            self.decode_or_quarantine(&id.0, &v);
                        }
                        None => {
                            if self.queue.remove(&key)?.is_some() {
                                self.counts.sub(RunStatus::Queued, 1);
                                self.index().remove(key[0], &id);
                            }
                        }
                    }
                }
                Err(TransactionError::Storage(e)) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Extends a lease; false when the lease is no longer this token's.
    pub fn renew(&self, id: &RunId, token: u64, expires_ms: u64) -> Result<bool> {
        self.writable()?;
        let current = self.leases.get(id.0)?.map(|v| decode_lease(&v));
        if current.map(|l| l.token) != Some(token) {
            return Ok(false);
        }
        let new = encode_lease(Lease { token, expires_ms });
        Ok(self
            .leases
            .compare_and_swap(id.0, current.map(encode_lease), Some(&new[..]))?
            .is_ok())
    }

    pub fn leases(&self) -> Result<Vec<(RunId, Lease)>> {
        self.leases
            .iter()
            .map(|item| {
                let (k, v) = item?;
                Ok((run_id_of(&k).unwrap_or(RunId([0; 16])), decode_lease(&v)))
            })
            .collect()
    }

    /// Ends a running run: result and state in one transaction with the
    /// lease check, the finished counter and any refund. None when the
    /// lease is no longer this token's (the run was taken back).
    pub fn finish(&self, id: &RunId, token: u64, fin: Finish, now_ms: u64) -> Result<Option<RunRecord>> {
        self.writable()?;
        // Only the lease holder changes a running run's record, so it can be
        // read and encoded before the transaction: the (large) result is
        // serialized outside sled's global transaction lock.
        let Some(mut rec) = self.get(id)? else {
            return Ok(None);
        };
        rec.status = fin.status;
        rec.finished_at = Some(now_ms as f64 / 1000.0);
        rec.result = fin.result;
        rec.error = fin.error;
        let encoded = encode_run(&rec);
        let budget = self.budget;
        let done = (&self.runs, &self.leases, &self.meta, &self.sessions).transaction(
            |(runs, leases, meta, sessions)| {
                match leases.get(id.0)? {
                    Some(l) if decode_lease(&l).token == token => {}
                    _ => return abort(Abort::LeaseLost),
                }
                leases.remove(&id.0)?;
                runs.insert(&id.0, encoded.as_slice())?;
                bump(meta, &finished_key(rec.status), 1)?;
                if fin.refund {
                    let current = sessions
                        .get(rec.session_id.as_bytes())?
                        .and_then(|v| SessionRecord::decode(&v));
                    if let Some(r) = budget.refund(current, rec.shots, rec.budget_window_ms, now_ms) {
                        sessions.insert(rec.session_id.as_bytes(), &r.encode())?;
                    }
                }
                Ok(())
            },
        );
        match done {
            Ok(()) => {
                self.counts.moved(RunStatus::Running, rec.status);
                Ok(Some(rec))
            }
            Err(TransactionError::Abort(_)) => Ok(None),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Puts a running run back in the queue (lease expired, retry after a
    /// transient error, or given back at shutdown). `crashed` counts a
    /// worker death against the run. False when the lease is not `token`'s.
    pub fn requeue(&self, id: &RunId, token: u64, not_before_ms: u64, crashed: bool) -> Result<bool> {
        self.writable()?;
        let done = (&self.runs, &self.queue, &self.leases).transaction(|(runs, queue, leases)| {
            match leases.get(id.0)? {
                Some(l) if decode_lease(&l).token == token => {}
                _ => return abort(Abort::LeaseLost),
            }
            leases.remove(&id.0)?;
            let mut rec = decode_in_tx(runs, id)?;
            rec.status = RunStatus::Queued;
            rec.started_at = None;
            if crashed {
                rec.crashes += 1;
            }
            runs.insert(&id.0, encode_run(&rec))?;
            queue.insert(&queue_key(rec.mode.priority(), id), &not_before_ms.to_be_bytes())?;
            Ok(rec.mode.priority())
        });
        match done {
            Ok(priority) => {
                self.counts.moved(RunStatus::Running, RunStatus::Queued);
                self.index().insert(priority, *id, not_before_ms);
                Ok(true)
            }
            Err(TransactionError::Abort(Abort::LeaseLost)) => Ok(false),
            Err(TransactionError::Abort(_)) => {
                Err(StoreError::Io(format!("run {id} record unreadable at requeue")))
            }
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Cancels a queued run at once (shots refunded); reports the state of
    /// any other.
    pub fn cancel_queued(&self, id: &RunId, error: RunError, now_ms: u64) -> Result<CancelOutcome> {
        self.writable()?;
        let budget = self.budget;
        let done = (&self.runs, &self.queue, &self.meta, &self.sessions).transaction(
            |(runs, queue, meta, sessions)| {
                let mut rec = decode_in_tx(runs, id)?;
                if rec.status != RunStatus::Queued {
                    return abort(Abort::NotQueued(rec.status));
                }
                queue.remove(&queue_key(rec.mode.priority(), id))?;
                rec.status = RunStatus::Cancelled;
                rec.finished_at = Some(now_ms as f64 / 1000.0);
                rec.error = Some(error.clone());
                runs.insert(&id.0, encode_run(&rec))?;
                bump(meta, &finished_key(RunStatus::Cancelled), 1)?;
                let current = sessions
                    .get(rec.session_id.as_bytes())?
                    .and_then(|v| SessionRecord::decode(&v));
                if let Some(r) = budget.refund(current, rec.shots, rec.budget_window_ms, now_ms) {
                    sessions.insert(rec.session_id.as_bytes(), &r.encode())?;
                }
                Ok(rec)
            },
        );
        match done {
            Ok(rec) => {
                self.counts.moved(RunStatus::Queued, RunStatus::Cancelled);
                self.index().remove(rec.mode.priority(), id);
                Ok(CancelOutcome::Cancelled(Box::new(rec)))
            }
            Err(TransactionError::Abort(Abort::Gone | Abort::Undecodable)) => Ok(CancelOutcome::NotFound),
            Err(TransactionError::Abort(Abort::NotQueued(RunStatus::Running))) => Ok(CancelOutcome::Running),
            Err(TransactionError::Abort(Abort::NotQueued(s))) => Ok(CancelOutcome::AlreadyFinished(s)),
            Err(TransactionError::Abort(_)) => Ok(CancelOutcome::NotFound),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Queued runs due now and queued runs waiting for a retry backoff.
    pub fn ready_and_future(&self, now_ms: u64) -> (u64, u64) {
        self.index().ready_and_future(now_ms)
    }

    /// The oldest queued run's submit time (ms).
    pub fn oldest_queued_ms(&self) -> Option<u64> {
        self.index().oldest_ms()
    }

    /// Deletes the oldest finished runs beyond `keep`. Returns how many.
    pub fn prune_finished(&self, keep: u64) -> Result<u64> {
        self.writable()?;
        let finished =
            |c: &Counts| c.get(RunStatus::Succeeded) + c.get(RunStatus::Failed) + c.get(RunStatus::Cancelled);
        let mut excess = finished(&self.counts).saturating_sub(keep);
        let mut pruned = 0;
        let mut iter = self.runs.iter();
        while excess > 0 {
            let Some(item) = iter.next() else { break };
            let (k, v) = item?;
            let Some(rec) = self.decode_or_quarantine(&k, &v) else {
                continue;
            };
            if !rec.status.is_finished() {
                continue;
            }
            let removed = (&self.runs, &self.meta).transaction(|(runs, meta)| {
                if runs.remove(&k)?.is_none() {
                    return Ok(false);
                }
                bump(meta, &finished_key(rec.status), -1)?;
                Ok::<_, Abortable<Abort>>(true)
            });
            match removed {
                Ok(true) => {
                    self.counts.sub(rec.status, 1);
                    pruned += 1;
                    excess -= 1;
                }
                Ok(false) | Err(TransactionError::Abort(_)) => {}
                Err(TransactionError::Storage(e)) => return Err(e.into()),
            }
        }
        Ok(pruned)
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

    pub fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        Ok(self
            .sessions
            .get(id.as_bytes())?
            .and_then(|v| SessionRecord::decode(&v)))
    }

    pub fn control_profile(&self) -> ControlProfile {
        self.profile.read().unwrap_or_else(|p| p.into_inner()).clone()
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
        self.meta.insert(&key, &crate::now_ms().to_be_bytes())?;
        self.flusher.flush_blocking()?;
        self.meta.remove(&key)?;
        self.meta.insert(&key, b"done".as_slice())?;
        self.meta.remove(&key)?;
        Ok(())
    }

    /// Blocks until everything written so far is on disk.
    pub fn flush_now(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

/// Writes `runs` finished runs straight into the store at `path` (which
/// must not be in use): the fixture for the start-up and scrape-cost
/// benchmarks with a large store.
pub fn fill(path: &Path, runs: u64) -> Result<()> {
    let store = Store::open(
        path,
        Budget {
            max_per_session: u64::MAX,
            ttl_ms: 3_600_000,
        },
    )?;
    let template = |id: RunId| RunRecord {
        id,
        preset: crate::sim::Preset::HelloQuantumSim,
        hardware_target: "sim_local".into(),
        compare_with: None,
        mode: crate::queue::run::Mode::Explore,
        shot_budget: 2048,
        shots: 2048,
        seed: 1,
        notes: None,
        marked: None,
        controls: ControlProfile::default(),
        session_id: "bench-fill".into(),
        budget_window_ms: 0,
        status: RunStatus::Succeeded,
        created_at: id.unix_ms() as f64 / 1000.0,
        started_at: None,
        finished_at: None,
        attempts: 1,
        crashes: 0,
        error: None,
        result: Some(serde_json::json!({"kpis": {"fidelity": 0.97}})),
    };
    let mut batch = sled::Batch::default();
    for i in 0..runs {
        let rec = template(store.new_run_id());
        batch.insert(&rec.id.0, encode_run(&rec));
        if i % 10_000 == 9_999 {
            store.runs.apply_batch(std::mem::take(&mut batch))?;
        }
    }
    store.runs.apply_batch(batch)?;
    let key = finished_key(RunStatus::Succeeded);
    let had = store.meta.get(&key)?.map(|v| u64_of(&v)).unwrap_or(0);
    store.meta.insert(key, &(had + runs).to_be_bytes())?;
    store.flush_now()?;
    println!(
        "filled {} with {runs} finished runs ({} bytes on disk)",
        path.display(),
        store.size_on_disk()?
    );
    Ok(())
}

#[cfg(test)]
mod tests;
