//! Store tests: a model-based property test of the run lifecycle (queue
//! order under priorities, earliest starts and pauses, counts, budgets,
//! idempotency, pruning, close-and-reopen) against a
//! plain in-memory model, and focused tests of group commit, quarantine,
//! schema refusal and id ordering. Long: the model and its operations are
//! one piece, and each focused test needs its own fixture.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use smol::block_on;

use super::archive::{encode_intent, PRUNE_INTENT};
use super::commands::Requeue;
use super::layout::{META_QUEUE_AT_STOP, META_QUEUE_AT_STOP_V2, META_SCHEMA, QUEUE_ENTRY};
use super::*;
use crate::budget::Budget;
use crate::controls::ControlProfile;
use crate::run::{ErrorCode, Mode, ResultDoc, RunError, RunId, RunRecord, RunStatus};
use crate::sim::Preset;
use crate::testutil::TempDir;

// ---------------------------------------------------------------- helpers

/// Small per-session budget, a TTL no test outlives: sessions never expire.
const MAX_SHOTS: u64 = 1000;
const TTL_MS: u64 = 30 * 24 * 3600 * 1000;

fn budget() -> Budget {
    Budget {
        max_per_session: MAX_SHOTS,
        ttl_ms: TTL_MS,
    }
}

/// Opens the store, waiting (bounded) for the file lock of a store that was
/// just dropped: a writer thread in the middle of a batch holds the store
/// until the batch is answered, so the lock can outlive the last handle.
fn open_store(path: &Path, budget: Budget) -> Result<Arc<Store>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(path, budget) {
            Err(StoreError::InUse) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => return other,
        }
    }
}

/// What the writer does when a submit's flush fails.
fn unsubmit(store: &Store, run: &RunRecord) {
    store
        .apply(&[Command::Unsubmit { run: run.clone() }])
        .expect("unsubmit");
}

const SESSIONS: [&str; 3] = ["s0", "s1", "s2"];
const TARGETS: [&str; 2] = ["sim_local", "sim_noisy"];
const PRESETS: [Preset; 2] = [Preset::HelloQuantumSim, Preset::GroverDemo];

/// A run as the API builds it (budget_window_ms 0: the store fills it in).
fn record(id: RunId, mode: Mode, shots: u64, session: &str, body: u8) -> RunRecord {
    RunRecord {
        id,
        preset: PRESETS[usize::from(body) % 2],
        hardware_target: TARGETS[usize::from(body / 2) % 2].into(),
        compare_with: None,
        mode,
        shot_budget: shots,
        shots,
        seed: u64::from(body),
        notes: None,
        marked: None,
        qasm: None,
        circuit_qubits: None,
        controls: ControlProfile::default(),
        session_id: session.into(),
        budget_window_ms: 0,
        status: RunStatus::Queued,
        created_at: id.unix_ms() as f64 / 1000.0,
        started_at: None,
        finished_at: None,
        attempts: 0,
        crashes: 0,
        error: None,
        warnings: Vec::new(),
        priority: None,
        not_before: None,
        noise_profile_version: None,
        schedule: None,
        result: None,
    }
}

fn run_error(code: ErrorCode) -> RunError {
    RunError {
        code,
        message: format!("{code} in test"),
        detail: serde_json::json!({}),
        action_hint: "none".into(),
    }
}

fn ids(recs: &[RunRecord]) -> Vec<RunId> {
    recs.iter().map(|r| r.id).collect()
}

// ------------------------------------------------------------- the model

/// One submit request, as a client would send (and maybe resend) it.
#[derive(Clone, Debug)]
struct Req {
    mode: Mode,
    shots: u64,
    session: u8,
    key: Option<u8>,
    body: u8,
    /// None: a record as written before priorities existed.
    priority: Option<u8>,
    /// Earliest start, ms after the submit (0: none).
    delay: u64,
}

impl Req {
    fn session_name(&self) -> &'static str {
        SESSIONS[usize::from(self.session)]
    }

    fn digest(&self) -> [u8; 32] {
        let text = format!(
            "{:?}/{}/{}/{:?}/{}",
            self.mode, self.shots, self.body, self.priority, self.delay
        );
        Sha256::digest(text.as_bytes()).into()
    }

    fn idem(&self) -> Option<IdempotencyKey> {
        self.key.map(|k| IdempotencyKey {
            scope: self.session_name().to_string(),
            key: format!("key-{k}"),
            body_digest: self.digest(),
        })
    }
}

#[derive(Clone, Debug)]
enum Op {
    Submit(Req),
    /// Resends an earlier request verbatim (a client retry).
    Repeat {
        which: usize,
    },
    /// A worker's claim of up to n runs at once.
    Claim {
        n: usize,
    },
    Finish {
        which: usize,
        status: RunStatus,
        refund: bool,
    },
    /// finish/requeue with a token that is not the lease's.
    Stale {
        which: usize,
        requeue: bool,
    },
    Requeue {
        which: usize,
        crashed: bool,
        delay: u64,
    },
    CancelQueued {
        which: usize,
    },
    Unsubmit {
        which: usize,
    },
    /// Moves finished runs to the archive (the model does not change).
    Archive,
    Prune {
        keep: u64,
    },
    Advance {
        ms: u64,
    },
    /// Pause a target (an index into TARGETS) or the whole queue (None),
    /// or resume it.
    Pause {
        target: Option<usize>,
        on: bool,
    },
    /// A restart: after a clean stop (which leaves the queue's copy for
    /// the next open), or after a crash.
    Reopen {
        clean: bool,
    },
}

#[derive(Clone, Debug)]
struct MRun {
    req: Req,
    seq: usize,
    status: RunStatus,
    token: Option<u64>,
    not_before: u64,
    attempts: u32,
    crashes: u32,
}

#[derive(Clone, Copy, Debug)]
struct MSession {
    window_start: u64,
    used: u64,
    last_touch: u64,
}

#[derive(Debug, PartialEq)]
enum Expect {
    Accepted { created: bool },
    Existing(RunId),
    Conflict,
    Exhausted { remaining: u64, resets_in_s: u64 },
}

#[derive(Default)]
struct Model {
    /// Runs in the store, by id.
    runs: BTreeMap<RunId, MRun>,
    /// Every id ever accepted, in submit order (pruned ones included).
    accepted: Vec<RunId>,
    sessions: BTreeMap<u8, MSession>,
    keys: HashMap<(u8, u8), ([u8; 32], RunId)>,
    requests: Vec<Req>,
    next_token: u64,
    /// Paused targets, and the whole queue as WHOLE_QUEUE.
    paused: BTreeSet<String>,
}

fn target_of(req: &Req) -> &'static str {
    TARGETS[usize::from(req.body / 2) % 2]
}

impl Model {
    fn count(&self, s: RunStatus) -> u64 {
        self.runs.values().filter(|r| r.status == s).count() as u64
    }

    /// Queued runs in dispatch order: the highest priority first (a
    /// record without one at its mode's: calibrate 7, the others 4), then
    /// submit order.
    fn queue(&self) -> Vec<RunId> {
        let mut q: Vec<(std::cmp::Reverse<u8>, usize, RunId)> = self
            .runs
            .iter()
            .filter(|(_, r)| r.status == RunStatus::Queued)
            .map(|(id, r)| {
                let priority = r
                    .req
                    .priority
                    .unwrap_or(if r.req.mode == Mode::Calibrate { 7 } else { 4 });
                (std::cmp::Reverse(priority), r.seq, *id)
            })
            .collect();
        q.sort();
        q.into_iter().map(|(_, _, id)| id).collect()
    }

    fn next_claim(&self, now: u64) -> Option<RunId> {
        if self.paused.contains(WHOLE_QUEUE) {
            return None;
        }
        self.queue().into_iter().find(|id| {
            let r = &self.runs[id];
            r.not_before <= now && !self.paused.contains(target_of(&r.req))
        })
    }

    /// Where a queued run stands at `now`: the runs before it in dispatch
    /// order that are due by the time it is, and that are of its own
    /// target or of one not paused.
    fn position(&self, id: &RunId, now: u64) -> Option<u64> {
        let queue = self.queue();
        let at = queue.iter().position(|x| x == id)?;
        let run = &self.runs[id];
        let due_by = run.not_before.max(now);
        let ahead = queue[..at]
            .iter()
            .map(|x| &self.runs[x])
            .filter(|x| x.not_before <= due_by)
            .filter(|x| target_of(&x.req) == target_of(&run.req) || !self.paused.contains(target_of(&x.req)))
            .count();
        Some(ahead as u64)
    }

    fn running(&self) -> Vec<RunId> {
        let mut r: Vec<(usize, RunId)> = self
            .runs
            .iter()
            .filter(|(_, r)| r.status == RunStatus::Running)
            .map(|(id, r)| (r.seq, *id))
            .collect();
        r.sort();
        r.into_iter().map(|(_, id)| id).collect()
    }

    fn refund(&mut self, id: &RunId) {
        let run = &self.runs[id];
        let (session, shots) = (run.req.session, run.req.shots);
        if let Some(s) = self.sessions.get_mut(&session) {
            s.used = s.used.saturating_sub(shots);
        }
    }

    fn submit(&mut self, id: RunId, req: &Req, now: u64) -> Expect {
        if let Some(k) = req.key {
            if let Some((digest, original)) = self.keys.get(&(req.session, k)) {
                if *digest != req.digest() {
                    return Expect::Conflict;
                }
                if self.runs.contains_key(original) {
                    return Expect::Existing(*original);
                }
                // The original is gone (pruned or taken back): a new run.
            }
        }
        let current = self.sessions.get(&req.session).copied();
        let used = current.map_or(0, |s| s.used);
        let remaining = MAX_SHOTS.saturating_sub(used);
        if req.shots > remaining {
            let resets_at = current.map_or(now, |s| s.last_touch) + TTL_MS;
            return Expect::Exhausted {
                remaining,
                resets_in_s: (resets_at - now).div_ceil(1000),
            };
        }
        let created = current.is_none();
        let session = self.sessions.entry(req.session).or_insert(MSession {
            window_start: now,
            used: 0,
            last_touch: now,
        });
        session.used += req.shots;
        session.last_touch = now;
        if let Some(k) = req.key {
            self.keys.insert((req.session, k), (req.digest(), id));
        }
        let seq = self.accepted.len();
        self.accepted.push(id);
        self.runs.insert(
            id,
            MRun {
                req: req.clone(),
                seq,
                status: RunStatus::Queued,
                token: None,
                not_before: if req.delay == 0 { 0 } else { now + req.delay },
                attempts: 0,
                crashes: 0,
            },
        );
        Expect::Accepted { created }
    }
}

// ------------------------------------------------------ the harness (SUT)

struct Harness {
    // Field order is drop order: the store closes before its directory goes.
    store: Option<Arc<Store>>,
    dir: TempDir,
    model: Model,
    now: u64,
    last_id: Option<RunId>,
}

impl Harness {
    fn new() -> Harness {
        let dir = TempDir::new("model");
        let store = open_store(dir.path(), budget()).expect("open a fresh store");
        Harness {
            store: Some(store),
            dir,
            model: Model::default(),
            now: crate::clock::now_ms(),
            last_id: None,
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("store is open")
    }

    fn apply(&mut self, op: &Op) -> std::result::Result<(), TestCaseError> {
        self.now += 1;
        match op {
            Op::Submit(req) => {
                self.model.requests.push(req.clone());
                self.submit(req)?;
            }
            Op::Repeat { which } => {
                if !self.model.requests.is_empty() {
                    let req = self.model.requests[which % self.model.requests.len()].clone();
                    self.submit(&req)?;
                }
            }
            Op::Claim { n } => {
                let leases: Vec<Lease> = (0..*n)
                    .map(|_| {
                        self.model.next_token += 1;
                        Lease {
                            token: self.model.next_token,
                            expires_ms: self.now + 60_000,
                        }
                    })
                    .collect();
                let got = block_on(self.store().claim(self.now, &leases)).expect("claim");
                let mut expected = Vec::new();
                for lease in &leases {
                    let Some(id) = self.model.next_claim(self.now) else {
                        break;
                    };
                    let m = self.model.runs.get_mut(&id).expect("model run");
                    m.status = RunStatus::Running;
                    m.token = Some(lease.token);
                    m.not_before = 0;
                    m.attempts += 1;
                    expected.push((id, lease.token));
                }
                let got_ids: Vec<(RunId, u64)> = got.iter().map(|(r, l)| (r.id, l.token)).collect();
                prop_assert_eq!(got_ids, expected, "claim picked the wrong runs or leases");
                for (rec, _) in &got {
                    prop_assert_eq!(rec.status, RunStatus::Running);
                    prop_assert_eq!(rec.attempts, self.model.runs[&rec.id].attempts);
                    prop_assert_eq!(rec.started_at, Some(self.now as f64 / 1000.0));
                }
            }
            Op::Finish {
                which,
                status,
                refund,
            } => {
                let running = self.model.running();
                if running.is_empty() {
                    return Ok(());
                }
                let id = running[which % running.len()];
                let token = self.model.runs[&id].token.expect("running run has a token");
                let fin = Finish {
                    status: *status,
                    result: (*status == RunStatus::Succeeded)
                        .then(|| ResultDoc::new(&serde_json::json!({"kpis": {"ok": 1}}))),
                    error: (*status != RunStatus::Succeeded).then(|| run_error(ErrorCode::InternalError)),
                    refund: *refund,
                };
                let run = self
                    .store()
                    .get(&id)
                    .expect("get")
                    .expect("running run is stored");
                let got = block_on(self.store().finish(run, token, fin, self.now)).expect("finish");
                let rec = got.ok_or_else(|| TestCaseError::fail(format!("finish of {id} lost its lease")))?;
                prop_assert_eq!(rec.status, *status);
                prop_assert_eq!(rec.finished_at, Some(self.now as f64 / 1000.0));
                if *refund {
                    self.model.refund(&id);
                }
                let m = self.model.runs.get_mut(&id).expect("model run");
                m.status = *status;
                m.token = None;
            }
            Op::Stale { which, requeue } => {
                let running = self.model.running();
                let (id, token) = match running.get(which % running.len().max(1)) {
                    Some(id) => (*id, self.model.runs[id].token.expect("token") + 1_000_000),
                    None => (RunId::new(1, 0, 7), 1),
                };
                if *requeue {
                    let ok =
                        block_on(self.store().requeue(&id, token, 0, Requeue::Crashed)).expect("requeue");
                    prop_assert!(!ok, "requeue with a foreign token succeeded");
                } else {
                    let fin = Finish {
                        status: RunStatus::Failed,
                        result: None,
                        error: None,
                        refund: true,
                    };
                    let run = match self.store().get(&id).expect("get") {
                        Some(run) => run,
                        None => record(id, Mode::Explore, 1, "s0", 0),
                    };
                    let got = block_on(self.store().finish(run, token, fin, self.now)).expect("finish");
                    prop_assert!(got.is_none(), "finish with a foreign token succeeded");
                }
            }
            Op::Requeue {
                which,
                crashed,
                delay,
            } => {
                let running = self.model.running();
                if running.is_empty() {
                    return Ok(());
                }
                let id = running[which % running.len()];
                let token = self.model.runs[&id].token.expect("token");
                let not_before = if *delay == 0 { 0 } else { self.now + delay };
                let ok = block_on(self.store().requeue(
                    &id,
                    token,
                    not_before,
                    if *crashed {
                        Requeue::Crashed
                    } else {
                        Requeue::Retry
                    },
                ))
                .expect("requeue");
                prop_assert!(ok, "requeue of {} with its own token refused", id);
                let m = self.model.runs.get_mut(&id).expect("model run");
                m.status = RunStatus::Queued;
                m.token = None;
                m.not_before = not_before;
                m.crashes += u32::from(*crashed);
            }
            Op::CancelQueued { which } => {
                let id = match self.model.accepted.get(which % self.model.accepted.len().max(1)) {
                    Some(id) => *id,
                    None => RunId::new(1, 0, 9),
                };
                let got = block_on(self.store().cancel_queued(
                    &id,
                    run_error(ErrorCode::Cancelled),
                    self.now,
                ))
                .expect("cancel");
                match (self.model.runs.get(&id).map(|r| r.status), got) {
                    (None, CancelOutcome::NotFound) => {}
                    (Some(RunStatus::Queued), CancelOutcome::Cancelled(rec)) => {
                        prop_assert_eq!(rec.id, id);
                        prop_assert_eq!(rec.status, RunStatus::Cancelled);
                        prop_assert_eq!(rec.error.map(|e| e.code), Some(ErrorCode::Cancelled));
                        self.model.refund(&id);
                        let m = self.model.runs.get_mut(&id).expect("model run");
                        m.status = RunStatus::Cancelled;
                        m.not_before = 0;
                    }
                    (Some(RunStatus::Running), CancelOutcome::Running) => {}
                    (Some(s), CancelOutcome::AlreadyFinished(got)) if s.is_finished() => {
                        prop_assert_eq!(got, s);
                    }
                    (model, got) => {
                        return Err(TestCaseError::fail(format!(
                            "cancel_queued({id}): model status {model:?}, store said {got:?}"
                        )))
                    }
                }
            }
            Op::Unsubmit { which } => {
                // Only a run just accepted is ever taken back: never claimed.
                let candidates: Vec<RunId> = self
                    .model
                    .queue()
                    .into_iter()
                    .filter(|id| self.model.runs[id].attempts == 0)
                    .collect();
                if candidates.is_empty() {
                    return Ok(());
                }
                let id = candidates[which % candidates.len()];
                // The stored record carries the budget window the shots went
                // to (see `unsubmit_refunds_the_window_of_the_callers_record`).
                let stored = self.store().get(&id).expect("get").expect("queued run is stored");
                unsubmit(self.store(), &stored);
                self.model.refund(&id);
                self.model.runs.remove(&id);
            }
            Op::Prune { keep } => {
                let finished: Vec<RunId> = self
                    .model
                    .runs
                    .iter()
                    .filter(|(_, r)| r.status.is_finished())
                    .map(|(id, _)| *id)
                    .collect();
                let excess = (finished.len() as u64).saturating_sub(*keep) as usize;
                // As the maintenance loop does: archive, then prune.
                self.store().archive_finished().expect("archive");
                let pruned = self.store().prune_finished(*keep).expect("prune");
                prop_assert_eq!(pruned, excess as u64, "prune_finished({}) count", keep);
                for id in &finished[..excess] {
                    self.model.runs.remove(id);
                }
            }
            Op::Archive => {
                self.store().archive_finished().expect("archive");
            }
            Op::Advance { ms } => self.now += ms,
            Op::Pause { target, on } => {
                let key = target.map_or(WHOLE_QUEUE, |t| TARGETS[t % TARGETS.len()]);
                let pause = on.then(|| Pause {
                    reason: format!("step at {}", self.now),
                    since: self.now as f64 / 1000.0,
                });
                let before = self.store().pauses().get(key).cloned();
                let pauses = block_on(self.store().set_pause(key, pause.clone())).expect("pause");
                if *on {
                    self.model.paused.insert(key.to_string());
                    // A second pause keeps the first one's start.
                    let since = before.map_or(self.now as f64 / 1000.0, |b| b.since);
                    prop_assert_eq!(pauses.get(key).map(|p| p.since), Some(since), "pause start");
                } else {
                    self.model.paused.remove(key);
                }
            }
            Op::Reopen { clean } => self.reopen(*clean)?,
        }
        Ok(())
    }

    fn submit(&mut self, req: &Req) -> std::result::Result<(), TestCaseError> {
        let id = self.store().new_run_id();
        if let Some(prev) = self.last_id {
            prop_assert!(id > prev, "new_run_id went backwards: {} after {}", id, prev);
        }
        self.last_id = Some(id);
        let mut rec = record(id, req.mode, req.shots, req.session_name(), req.body);
        rec.priority = req.priority;
        rec.not_before = (req.delay > 0).then(|| (self.now + req.delay) as f64 / 1000.0);
        let got = block_on(self.store().submit(&rec, req.idem().as_ref(), self.now)).expect("submit");
        let expected = self.model.submit(id, req, self.now);
        match (&expected, got) {
            (
                Expect::Accepted { created },
                Submitted::Accepted {
                    session_created,
                    session_expired,
                },
            ) => {
                prop_assert_eq!(*created, session_created, "session_created");
                prop_assert!(!session_expired, "no session can expire in this test");
            }
            (Expect::Existing(original), Submitted::Existing(rec)) => {
                prop_assert_eq!(rec.id, *original);
                prop_assert_eq!(rec.status, self.model.runs[original].status);
            }
            (Expect::Conflict, Submitted::KeyConflict) => {}
            (
                Expect::Exhausted {
                    remaining,
                    resets_in_s,
                },
                Submitted::BudgetExhausted {
                    remaining: r,
                    resets_in_s: s,
                },
            ) => {
                prop_assert_eq!(*remaining, r, "remaining shots");
                prop_assert_eq!(*resets_in_s, s, "resets_in_s");
            }
            (expected, got) => {
                return Err(TestCaseError::fail(format!(
                    "submit {req:?}: model expected {expected:?}, store said {got:?}"
                )))
            }
        }
        Ok(())
    }

    /// Closes the store, cleanly or by dropping it as a crash would, and
    /// opens the same directory again.
    fn reopen(&mut self, clean: bool) -> std::result::Result<(), TestCaseError> {
        let store = self.store.take().expect("store open");
        if clean {
            Store::close_with_snapshot(store, Duration::from_secs(5))
                .map_err(|e| TestCaseError::fail(format!("close: {e}")))?;
        } else {
            drop(store);
        }
        // A restart takes longer than a millisecond; make sure this one does
        // too, so ids from the new process sort after the old ones.
        if let Some(last) = self.last_id {
            while crate::clock::now_ms() <= last.unix_ms() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let store =
            open_store(self.dir.path(), budget()).map_err(|e| TestCaseError::fail(format!("reopen: {e}")))?;
        self.store = Some(store);
        Ok(())
    }

    /// Everything observable agrees with the model.
    fn check(&self) -> std::result::Result<(), TestCaseError> {
        let store = self.store();
        let model = &self.model;
        for s in RunStatus::ALL {
            prop_assert_eq!(store.counts.get(s), model.count(s), "counts of {:?}", s);
        }
        prop_assert_eq!(store.counts.total(), model.runs.len() as u64, "total count");
        prop_assert_eq!(
            store.counts.sessions.load(Ordering::Relaxed),
            model.sessions.len() as u64,
            "live sessions"
        );
        prop_assert_eq!(store.counts.quarantined.load(Ordering::Relaxed), 0, "quarantined");

        // get(): every id ever accepted, present or gone.
        for id in &model.accepted {
            let got = store.get(id).expect("get");
            match (model.runs.get(id), got) {
                (None, None) => {}
                (Some(m), Some(rec)) => {
                    prop_assert_eq!(rec.id, *id);
                    prop_assert_eq!(rec.status, m.status, "status of {}", id);
                    prop_assert_eq!(rec.mode, m.req.mode);
                    prop_assert_eq!(rec.shots, m.req.shots);
                    prop_assert_eq!(rec.session_id.as_str(), m.req.session_name());
                    prop_assert_eq!(rec.attempts, m.attempts, "attempts of {}", id);
                    prop_assert_eq!(rec.crashes, m.crashes, "crashes of {}", id);
                    let window = model.sessions.get(&m.req.session).map(|s| s.window_start);
                    prop_assert_eq!(Some(rec.budget_window_ms), window, "budget window of {}", id);
                    prop_assert_eq!(rec.finished_at.is_some(), m.status.is_finished());
                }
                (m, got) => {
                    return Err(TestCaseError::fail(format!(
                        "get({id}): model {:?}, store {:?}",
                        m.map(|r| r.status),
                        got.map(|r| r.status)
                    )))
                }
            }
        }

        // list(): newest first, filters, pages.
        let newest_first: Vec<RunId> = model.runs.keys().rev().copied().collect();
        let (all, more) = store
            .list(&ListFilter {
                limit: 10_000,
                ..Default::default()
            })
            .expect("list");
        prop_assert_eq!(ids(&all), newest_first.clone(), "unfiltered list");
        prop_assert!(!more);
        for s in RunStatus::ALL {
            let want: Vec<RunId> = newest_first
                .iter()
                .filter(|id| model.runs[*id].status == s)
                .copied()
                .collect();
            let (got, _) = store
                .list(&ListFilter {
                    status: Some(s),
                    limit: 10_000,
                    ..Default::default()
                })
                .expect("list");
            prop_assert_eq!(ids(&got), want, "list status={:?}", s);
        }
        for t in TARGETS {
            let want: Vec<RunId> = newest_first
                .iter()
                .filter(|id| TARGETS[usize::from(model.runs[*id].req.body / 2) % 2] == t)
                .copied()
                .collect();
            let filter = ListFilter {
                hardware_target: Some(t.to_string()),
                limit: 10_000,
                ..Default::default()
            };
            prop_assert_eq!(
                ids(&store.list(&filter).expect("list").0),
                want,
                "list hardware_target={}",
                t
            );
        }
        for p in PRESETS {
            let want: Vec<RunId> = newest_first
                .iter()
                .filter(|id| PRESETS[usize::from(model.runs[*id].req.body) % 2] == p)
                .copied()
                .collect();
            let filter = ListFilter {
                preset: Some(p),
                limit: 10_000,
                ..Default::default()
            };
            prop_assert_eq!(
                ids(&store.list(&filter).expect("list").0),
                want,
                "list preset={:?}",
                p
            );
        }
        let mut paged = Vec::new();
        let mut before = None;
        loop {
            let (page, more) = store
                .list(&ListFilter {
                    before,
                    limit: 3,
                    ..Default::default()
                })
                .expect("list page");
            prop_assert!(page.len() <= 3);
            paged.extend(ids(&page));
            prop_assert_eq!(
                more,
                paged.len() < newest_first.len(),
                "`more` after {} runs",
                paged.len()
            );
            if !more {
                break;
            }
            before = page.last().map(|r| r.id);
        }
        prop_assert_eq!(paged, newest_first, "paged list");

        // Leases: exactly the running runs, with the claim's token.
        let mut leases: Vec<(RunId, u64)> = store
            .leases()
            .expect("leases")
            .into_iter()
            .map(|(id, l)| (id, l.token))
            .collect();
        leases.sort();
        let want: Vec<(RunId, u64)> = model
            .runs
            .iter()
            .filter(|(_, r)| r.status == RunStatus::Running)
            .map(|(id, r)| (*id, r.token.unwrap_or(0)))
            .collect();
        prop_assert_eq!(leases, want, "leases");

        // Queue: positions, oldest, ready/future, pauses.
        let queue = model.queue();
        for id in &queue {
            let rec = store.get(id).expect("get").expect("queued run stored");
            prop_assert_eq!(
                store.queue_position(&rec, self.now),
                model.position(id, self.now),
                "position of {}",
                id
            );
        }
        let startable: Vec<RunId> = if model.paused.contains(WHOLE_QUEUE) {
            Vec::new()
        } else {
            queue
                .iter()
                .filter(|id| {
                    let r = &model.runs[*id];
                    r.not_before <= self.now && !model.paused.contains(target_of(&r.req))
                })
                .copied()
                .collect()
        };
        prop_assert_eq!(
            store.oldest_queued_ms(self.now),
            startable.iter().map(|id| id.unix_ms()).min(),
            "oldest_queued_ms"
        );
        let paused: BTreeSet<String> = store.pauses().into_keys().collect();
        prop_assert_eq!(&paused, &model.paused, "pauses");
        prop_assert_eq!(store.startable(self.now), startable.len() as u64, "startable");
        let future = queue
            .iter()
            .filter(|id| model.runs[*id].not_before > self.now)
            .count() as u64;
        prop_assert_eq!(
            store.ready_and_future(self.now),
            (queue.len() as u64 - future, future),
            "ready_and_future"
        );

        // Budget sessions.
        for (i, name) in SESSIONS.iter().enumerate() {
            let got = store.session(name).expect("session");
            let want = model.sessions.get(&(i as u8));
            prop_assert_eq!(
                got.map(|s| s.used),
                want.map(|s| s.used),
                "used shots of {}",
                name
            );
            prop_assert_eq!(
                got.map(|s| s.window_start_ms),
                want.map(|s| s.window_start),
                "window of {}",
                name
            );
        }
        Ok(())
    }
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Explore), Just(Mode::Calibrate), Just(Mode::Prod)]
}

fn finished_status() -> impl Strategy<Value = RunStatus> {
    prop_oneof![
        Just(RunStatus::Succeeded),
        Just(RunStatus::Failed),
        Just(RunStatus::Cancelled)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let req = (
        mode(),
        prop::sample::select(vec![1u64, 100, 250, 400, 700, MAX_SHOTS + 1]),
        0u8..3,
        prop::option::of(0u8..2),
        0u8..4,
        prop::option::of(prop::sample::select(vec![0u8, 4, 7, 9])),
        prop::sample::select(vec![0u64, 0, 0, 30, 150]),
    )
        .prop_map(|(mode, shots, session, key, body, priority, delay)| Req {
            mode,
            shots,
            session,
            key,
            body,
            priority,
            delay,
        });
    prop_oneof![
        6 => req.prop_map(Op::Submit),
        2 => any::<usize>().prop_map(|which| Op::Repeat { which }),
        5 => (1usize..4).prop_map(|n| Op::Claim { n }),
        4 => (any::<usize>(), finished_status(), any::<bool>())
            .prop_map(|(which, status, refund)| Op::Finish { which, status, refund }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(which, requeue)| Op::Stale { which, requeue }),
        2 => (any::<usize>(), any::<bool>(), prop::sample::select(vec![0u64, 0, 30, 100]))
            .prop_map(|(which, crashed, delay)| Op::Requeue { which, crashed, delay }),
        2 => any::<usize>().prop_map(|which| Op::CancelQueued { which }),
        1 => any::<usize>().prop_map(|which| Op::Unsubmit { which }),
        2 => Just(Op::Archive),
        1 => (0u64..4).prop_map(|keep| Op::Prune { keep }),
        1 => prop::sample::select(vec![10u64, 50, 200]).prop_map(|ms| Op::Advance { ms }),
        2 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        2 => (prop::option::of(0usize..2), any::<bool>()).prop_map(|(target, on)| Op::Pause { target, on }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 1000, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        let mut h = Harness::new();
        h.check()?;
        for (step, op) in ops.iter().enumerate() {
            h.apply(op).map_err(|e| TestCaseError::fail(format!("step {step} {op:?}: {e}")))?;
            h.check().map_err(|e| TestCaseError::fail(format!("after step {step} {op:?}: {e}")))?;
        }
        // Whatever happened, a final clean stop and start changes nothing.
        h.reopen(true)?;
        h.check().map_err(|e| TestCaseError::fail(format!("after the final reopen: {e}")))?;
    }
}

// ------------------------------------------------------- focused tests

#[test]
fn group_commit_answers_every_concurrent_caller_and_writes_survive() {
    let dir = TempDir::new("flush");
    let roomy = Budget {
        max_per_session: u64::MAX,
        ttl_ms: TTL_MS,
    };
    let store = open_store(dir.path(), roomy).expect("open");
    let now = crate::clock::now_ms();
    let written: Vec<RunId> = smol::block_on(async {
        let tasks: Vec<smol::Task<RunId>> = (0..200)
            .map(|i| {
                let store = Arc::clone(&store);
                smol::spawn(async move {
                    let id = store.new_run_id();
                    let rec = record(id, Mode::Explore, 10, SESSIONS[i % 3], (i % 4) as u8);
                    let got = store.submit(&rec, None, now).await.expect("submit");
                    assert!(matches!(got, Submitted::Accepted { .. }), "{got:?}");
                    id
                })
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await);
        }
        ids
    });
    // Blocking callers from plain threads are answered too.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || block_on(store.flush()))
        })
        .collect();
    for t in threads {
        t.join().expect("flush thread").expect("flush");
    }
    assert_eq!(
        written.iter().collect::<BTreeSet<_>>().len(),
        200,
        "ids are unique"
    );
    assert_eq!(store.counts.get(RunStatus::Queued), 200);

    // A copy of the directory taken now, while the store is still open, is
    // what a power cut would leave: every flushed write must be in it.
    let snapshot = TempDir::new("flush-snapshot");
    copy_dir(dir.path(), snapshot.path());
    {
        let copy = open_store(snapshot.path(), roomy).expect("open the snapshot");
        assert_eq!(
            copy.counts.get(RunStatus::Queued),
            200,
            "queued runs in the snapshot"
        );
        for id in &written {
            let rec = copy
                .get(id)
                .expect("get")
                .unwrap_or_else(|| panic!("{id} missing from the snapshot"));
            assert_eq!(rec.status, RunStatus::Queued);
        }
    }

    let store = Arc::try_unwrap(store).unwrap_or_else(|_| panic!("tasks still hold the store"));
    drop(store);
    let store = open_store(dir.path(), roomy).expect("reopen");
    assert_eq!(store.counts.get(RunStatus::Queued), 200);
    for id in &written {
        let rec = store
            .get(id)
            .expect("get")
            .unwrap_or_else(|| panic!("{id} missing after reopen"));
        assert_eq!(rec.id, *id);
        assert_eq!(rec.status, RunStatus::Queued);
    }
    let mut sorted = written.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(listed(&store), sorted);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A store whose `runs` tree holds a garbage record that is queued.
fn store_with_garbage_run() -> (TempDir, RunId) {
    let dir = TempDir::new("garbage");
    let id = RunId::new(crate::clock::now_ms(), 0, 42);
    {
        let db = open_sled(dir.path(), DEFAULT_CACHE_BYTES).expect("sled open");
        let runs = db.open_tree("runs").expect("runs");
        let queue = db.open_tree("queue").expect("queue");
        runs.insert(id.0, b"\x00not json{".as_slice()).expect("insert");
        queue.insert(queue_key(1, &id), &[0u8; 8]).expect("insert");
        db.flush().expect("flush");
    }
    (dir, id)
}

fn assert_quarantined_and_gone(store: &Store, id: &RunId) {
    assert_eq!(store.counts.quarantined.load(Ordering::Relaxed), 1, "quarantined");
    assert_eq!(store.get(id).expect("get"), None);
    let (listed, more) = store
        .list(&ListFilter {
            limit: 10,
            ..Default::default()
        })
        .expect("list");
    assert!(listed.is_empty() && !more);
    let lease = Lease {
        token: 9,
        expires_ms: u64::MAX,
    };
    assert!(block_on(store.claim(crate::clock::now_ms(), &[lease]))
        .expect("claim")
        .is_empty());
    assert_eq!(
        store.counts.quarantined.load(Ordering::Relaxed),
        1,
        "quarantined once"
    );
}

#[test]
fn undecodable_record_found_by_claim_is_quarantined() {
    let (dir, id) = store_with_garbage_run();
    let store = open_store(dir.path(), budget()).expect("open");
    assert_eq!(store.counts.get(RunStatus::Queued), 1);
    let lease = Lease {
        token: 1,
        expires_ms: u64::MAX,
    };
    assert!(block_on(store.claim(crate::clock::now_ms(), &[lease]))
        .expect("claim")
        .is_empty());
    assert_quarantined_and_gone(&store, &id);
    assert_eq!(
        store.counts.get(RunStatus::Queued),
        0,
        "the dead queue entry is not counted"
    );
    assert_eq!(store.ready_and_future(crate::clock::now_ms()), (0, 0));
    assert_eq!(store.oldest_queued_ms(crate::clock::now_ms()), None);
    assert!(store.leases().expect("leases").is_empty());
    drop(store);
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert_eq!(
        store.counts.quarantined.load(Ordering::Relaxed),
        1,
        "quarantine survives reopen"
    );
    assert_eq!(store.counts.get(RunStatus::Queued), 0);
}

#[test]
fn undecodable_record_found_by_get_is_quarantined() {
    let (dir, id) = store_with_garbage_run();
    let store = open_store(dir.path(), budget()).expect("open");
    assert_eq!(store.get(&id).expect("get"), None);
    assert_quarantined_and_gone(&store, &id);
    drop(store);
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert_eq!(
        store.counts.quarantined.load(Ordering::Relaxed),
        1,
        "quarantine survives reopen"
    );
    assert_eq!(store.get(&id).expect("get"), None);
}

#[test]
fn undecodable_record_found_by_list_is_quarantined() {
    let (dir, id) = store_with_garbage_run();
    let store = open_store(dir.path(), budget()).expect("open");
    let (listed, more) = store
        .list(&ListFilter {
            limit: 10,
            ..Default::default()
        })
        .expect("list");
    assert!(listed.is_empty() && !more);
    assert_quarantined_and_gone(&store, &id);
}

/// A queued run whose record get()/list() quarantined must leave the queue
/// too: otherwise it is counted queued (and ready) forever, also after a
/// restart, and oldest_queued_ms keeps reporting it, though a claim can
/// never take it.
#[test]
fn quarantined_queued_run_leaves_no_queue_entry() {
    let (dir, id) = store_with_garbage_run();
    let store = open_store(dir.path(), budget()).expect("open");
    assert_eq!(store.get(&id).expect("get"), None);
    assert_eq!(store.counts.quarantined.load(Ordering::Relaxed), 1);
    let lease = Lease {
        token: 1,
        expires_ms: u64::MAX,
    };
    assert!(block_on(store.claim(crate::clock::now_ms(), &[lease]))
        .expect("claim")
        .is_empty());
    assert_eq!(
        store.counts.get(RunStatus::Queued),
        0,
        "queued count after quarantine"
    );
    assert_eq!(store.ready_and_future(crate::clock::now_ms()), (0, 0));
    assert_eq!(store.oldest_queued_ms(crate::clock::now_ms()), None);
    drop(store);
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert_eq!(
        store.counts.get(RunStatus::Queued),
        0,
        "queued count after reopen"
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = TempDir::new("schema");
    {
        let db = open_sled(dir.path(), DEFAULT_CACHE_BYTES).expect("sled open");
        let meta = db.open_tree("meta").expect("meta");
        meta.insert(META_SCHEMA, &(SCHEMA_VERSION + 1).to_be_bytes())
            .expect("insert");
        db.flush().expect("flush");
    }
    match open_store(dir.path(), budget()) {
        Err(StoreError::TooNew { found }) => assert_eq!(found, SCHEMA_VERSION + 1),
        Err(e) => panic!("expected TooNew, got {e}"),
        Ok(_) => panic!("a store from a newer synqc was opened"),
    }
    // The refusal changed nothing: the version is still the newer one.
    let db = open_sled(dir.path(), DEFAULT_CACHE_BYTES).expect("sled open");
    let found = db
        .open_tree("meta")
        .expect("meta")
        .get(META_SCHEMA)
        .expect("get")
        .map(|v| u64_of(&v));
    assert_eq!(found, Some(SCHEMA_VERSION + 1));
}

#[test]
fn a_fresh_store_records_its_schema_version() {
    let dir = TempDir::new("schema-fresh");
    drop(open_store(dir.path(), budget()).expect("open"));
    let db = open_sled(dir.path(), DEFAULT_CACHE_BYTES).expect("sled open");
    let found = db
        .open_tree("meta")
        .expect("meta")
        .get(META_SCHEMA)
        .expect("get")
        .map(|v| u64_of(&v));
    assert_eq!(found, Some(SCHEMA_VERSION));
}

#[test]
fn run_ids_are_strictly_increasing() {
    let dir = TempDir::new("ids");
    let store = open_store(dir.path(), budget()).expect("open");
    let start = crate::clock::now_ms();
    let mut prev = store.new_run_id();
    for _ in 1..10_000 {
        let id = store.new_run_id();
        assert!(id > prev, "{id} is not after {prev}");
        assert_eq!(RunId::parse(&id.to_string()), Some(id));
        prev = id;
    }
    assert!(prev.unix_ms() >= start);
    // Borrowing milliseconds after 4096 ids in one cannot run far ahead.
    assert!(
        prev.unix_ms() <= crate::clock::now_ms() + 3,
        "ids ran ahead of the clock"
    );
}

#[test]
fn control_profile_round_trips_across_reopen() {
    let dir = TempDir::new("profile");
    let store = open_store(dir.path(), budget()).expect("open");
    assert_eq!(store.control_profile(), ControlProfile::default());
    let p = ControlProfile {
        drive_bias: 0.97,
        notes: Some("tuned".into()),
        ..ControlProfile::default()
    };
    store.set_control_profile(&p).expect("set");
    drop(store);
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert_eq!(store.control_profile(), p);
}

#[test]
fn sessions_and_keys_expire_after_the_ttl() {
    let dir = TempDir::new("expire");
    let b = Budget {
        max_per_session: MAX_SHOTS,
        ttl_ms: 60_000,
    };
    let store = open_store(dir.path(), b).expect("open");
    let now = crate::clock::now_ms();
    let req = Req {
        mode: Mode::Prod,
        shots: 700,
        session: 0,
        key: Some(0),
        body: 1,
        priority: None,
        delay: 0,
    };
    let rec = record(store.new_run_id(), req.mode, req.shots, "s0", req.body);
    assert!(matches!(
        block_on(store.submit(&rec, req.idem().as_ref(), now)),
        Ok(Submitted::Accepted { .. })
    ));
    assert_eq!(store.counts.sessions.load(Ordering::Relaxed), 1);
    assert_eq!(store.expire_sessions(now + 59_999).expect("expire"), 0);
    assert_eq!(store.expire_sessions(now + 60_000).expect("expire"), 1);
    assert_eq!(store.counts.sessions.load(Ordering::Relaxed), 0);
    assert_eq!(store.session("s0").expect("session"), None);
    // A new window: the full budget again.
    let rec2 = record(store.new_run_id(), Mode::Prod, MAX_SHOTS, "s0", 3);
    assert!(matches!(
        block_on(store.submit(&rec2, None, now + 60_001)),
        Ok(Submitted::Accepted {
            session_created: true,
            ..
        })
    ));
    // After 24 h the key no longer names the first run: a different body is
    // a new run, not a conflict (and the budget says so, not the key).
    let later = now + IDEMPOTENCY_TTL_MS + 1;
    store.expire_sessions(later).expect("expire");
    let other = Req { body: 2, ..req };
    let rec3 = record(store.new_run_id(), other.mode, other.shots, "s0", other.body);
    assert!(matches!(
        block_on(store.submit(&rec3, other.idem().as_ref(), later)),
        Ok(Submitted::Accepted { .. })
    ));
}

/// The API builds its record with budget_window_ms 0 and, when the flush
/// after an accepted submit fails, hands that same record to `unsubmit`.
/// The shots reserved at submit must come back.
#[test]
fn unsubmit_refunds_the_window_of_the_callers_record() {
    let dir = TempDir::new("unsubmit");
    let store = open_store(dir.path(), budget()).expect("open");
    let rec = record(store.new_run_id(), Mode::Explore, 400, "s0", 0);
    let now = crate::clock::now_ms();
    assert!(matches!(
        block_on(store.submit(&rec, None, now)),
        Ok(Submitted::Accepted { .. })
    ));
    assert_eq!(store.session("s0").expect("session").map(|s| s.used), Some(400));
    unsubmit(&store, &rec);
    assert_eq!(store.get(&rec.id).expect("get"), None);
    assert_eq!(store.counts.get(RunStatus::Queued), 0);
    assert_eq!(
        store.session("s0").expect("session").map(|s| s.used),
        Some(0),
        "shots refunded"
    );
}

// ---------------------------------------------------------------- archive

/// Submits, claims and finishes `n` runs; returns their ids.
fn finished_runs(store: &Store, n: usize) -> Vec<RunId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let rec = record(store.new_run_id(), Mode::Explore, 1, "s0", i as u8);
        let idem = IdempotencyKey {
            scope: "s0".into(),
            key: format!("key-{i}"),
            body_digest: [i as u8; 32],
        };
        let got = block_on(store.submit(&rec, Some(&idem), crate::clock::now_ms())).expect("submit");
        assert!(matches!(got, Submitted::Accepted { .. }), "{got:?}");
        ids.push(rec.id);
    }
    assert_eq!(claim_and_finish(store, n), ids);
    ids
}

/// Claims up to `n` queued runs and finishes them as succeeded; returns
/// their ids in claim order.
fn claim_and_finish(store: &Store, n: usize) -> Vec<RunId> {
    let lease = |token| Lease {
        token,
        expires_ms: u64::MAX,
    };
    let leases: Vec<Lease> = (100..100 + n as u64).map(lease).collect();
    let claimed = block_on(store.claim(crate::clock::now_ms(), &leases)).expect("claim");
    let finishes = claimed
        .into_iter()
        .map(|(rec, l)| {
            let fin = Finish {
                status: RunStatus::Succeeded,
                result: None,
                error: None,
                refund: false,
            };
            (rec, l.token, fin, crate::clock::now_ms())
        })
        .collect();
    block_on(store.finish_all(finishes))
        .into_iter()
        .map(|done| done.expect("finish").expect("lease held").id)
        .collect()
}

/// Every run the store lists, newest first (at most 1,000).
fn listed(store: &Store) -> Vec<RunId> {
    let (runs, more) = store
        .list(&ListFilter {
            limit: 1000,
            ..Default::default()
        })
        .expect("list");
    assert!(!more);
    ids(&runs)
}

/// Turns finished runs back into what a cancel, or a store of schema 2,
/// leaves: the whole record in the main store, not yet in the archive.
fn whole_in_main(store: &Store, ids: &[RunId]) {
    let archive = store.archive().expect("archive");
    for id in ids {
        let record = archive.runs.remove(id.0).expect("remove").expect("archived");
        store.runs.insert(id.0, record).expect("insert");
    }
}

fn in_main(store: &Store, id: &RunId) -> bool {
    store.runs.contains_key(id.0).expect("contains")
}

#[test]
fn finished_runs_move_to_the_archive_and_read_the_same() {
    let dir = TempDir::new("archive-move");
    let store = open_store(dir.path(), budget()).expect("open");
    let ids = finished_runs(&store, 3);
    let before: Vec<RunRecord> = ids
        .iter()
        .map(|id| store.get(id).expect("get").expect("run"))
        .collect();
    assert_eq!(store.archive_finished().expect("archive"), 3);
    assert_eq!(store.archive_finished().expect("archive"), 0, "moved once");
    for (id, rec) in ids.iter().zip(&before) {
        assert!(!in_main(&store, id), "left the main store");
        assert_eq!(store.get(id).expect("get").as_ref(), Some(rec));
    }
    assert_eq!(listed(&store), ids.iter().rev().copied().collect::<Vec<_>>());
    // A client's retry of an archived run gets the original, not a new run.
    let idem = IdempotencyKey {
        scope: "s0".into(),
        key: "key-1".into(),
        body_digest: [1; 32],
    };
    let retry = record(store.new_run_id(), Mode::Explore, 1, "s0", 1);
    match block_on(store.submit(&retry, Some(&idem), crate::clock::now_ms())).expect("submit") {
        Submitted::Existing(rec) => assert_eq!(rec.id, ids[1]),
        other => panic!("a retry of an archived run answered {other:?}"),
    }
    // Cancelling it reports its end state.
    let cancel =
        block_on(store.cancel_queued(&ids[0], run_error(ErrorCode::Cancelled), crate::clock::now_ms()))
            .expect("cancel");
    assert!(
        matches!(cancel, CancelOutcome::AlreadyFinished(RunStatus::Succeeded)),
        "{cancel:?}"
    );
    assert_eq!(store.counts.get(RunStatus::Succeeded), 3);
    drop(store);
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert_eq!(store.counts.get(RunStatus::Succeeded), 3, "counts survive");
    assert_eq!(listed(&store).len(), 3, "archive survives");
}

#[test]
fn a_finish_writes_the_archive_and_leaves_a_stub_that_the_next_pass_drops() {
    let dir = TempDir::new("archive-stub");
    let store = open_store(dir.path(), budget()).expect("open");
    let ids = finished_runs(&store, 2);
    let archive = store.archive().expect("archive");
    for id in &ids {
        let main = store.runs.get(id.0).expect("get").expect("stub");
        assert_eq!(codec::stub_status(&main), Some(RunStatus::Succeeded));
        let archived = archive.runs.get(id.0).expect("get").expect("record");
        let rec: RunRecord = codec::decode(&archived).expect("decode");
        assert_eq!(rec.status, RunStatus::Succeeded);
        assert_eq!(store.get(id).expect("get"), Some(rec), "read through the stub");
    }
    assert_eq!(listed(&store), vec![ids[1], ids[0]], "each run once");
    let cancel =
        block_on(store.cancel_queued(&ids[0], run_error(ErrorCode::Cancelled), crate::clock::now_ms()))
            .expect("cancel");
    assert!(
        matches!(cancel, CancelOutcome::AlreadyFinished(RunStatus::Succeeded)),
        "{cancel:?}"
    );
    assert_eq!(store.archive_finished().expect("archive"), 2, "the stubs");
    assert!(ids.iter().all(|id| !in_main(&store, id)));
    assert_eq!(listed(&store), vec![ids[1], ids[0]]);
    assert_eq!(store.counts.get(RunStatus::Succeeded), 2);
}

#[test]
fn a_finish_cut_short_or_refused_leaves_the_run_to_run_again() {
    let dir = TempDir::new("archive-cut-finish");
    let store = open_store(dir.path(), budget()).expect("open");
    let run = record(store.new_run_id(), Mode::Explore, 1, "s0", 1);
    block_on(store.submit(&run, None, crate::clock::now_ms())).expect("submit");
    let lease = Lease {
        token: 7,
        expires_ms: u64::MAX,
    };
    let (claimed, _) = block_on(store.claim(crate::clock::now_ms(), &[lease]))
        .expect("claim")
        .pop()
        .expect("claimed");
    let ended = |rec: &RunRecord| {
        let mut rec = rec.clone();
        rec.status = RunStatus::Succeeded;
        rec
    };
    // A finish with another token: refused, and its record taken back.
    let fin = Finish {
        status: RunStatus::Succeeded,
        result: None,
        error: None,
        refund: false,
    };
    let got = block_on(store.finish(claimed.clone(), 8, fin, crate::clock::now_ms())).expect("finish");
    assert!(got.is_none());
    assert!(
        store.get_archived(&run.id.0).expect("get").is_none(),
        "taken back"
    );
    // A crash after the archive write, before the main store's transaction.
    store
        .archive_records(&[(run.id, codec::encode(&ended(&claimed)))])
        .expect("write");
    store.flush_now().expect("flush");
    drop(store);
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert_eq!(store.counts.get(RunStatus::Running), 1);
    assert_eq!(store.counts.get(RunStatus::Succeeded), 0);
    let rec = store.get(&run.id).expect("get").expect("run");
    assert_eq!(rec.status, RunStatus::Running, "the main store's record wins");
    assert_eq!(listed(&store), vec![run.id], "listed once");
    assert_eq!(store.prune_finished(0).expect("prune"), 0, "not finished yet");
    assert_eq!(store.counts.get(RunStatus::Succeeded), 0);
    // Lease recovery puts it back; its next finish replaces the record.
    assert!(block_on(store.requeue(&run.id, 7, 0, Requeue::Crashed)).expect("requeue"));
    assert_eq!(claim_and_finish(&store, 1), vec![run.id]);
    let rec = store.get(&run.id).expect("get").expect("run");
    assert_eq!((rec.status, rec.crashes), (RunStatus::Succeeded, 1));
    assert_eq!(store.counts.get(RunStatus::Succeeded), 1);
}

#[test]
fn a_move_cut_short_by_a_crash_is_finished_by_the_next_pass() {
    let dir = TempDir::new("archive-cut");
    let store = open_store(dir.path(), budget()).expect("open");
    let ids = finished_runs(&store, 2);
    whole_in_main(&store, &ids);
    // The copy reached the archive; the removal from the main store did not.
    let copies: Vec<(RunId, Vec<u8>)> = ids
        .iter()
        .map(|id| (*id, store.runs.get(id.0).expect("get").expect("run").to_vec()))
        .collect();
    store.archive_records(&copies).expect("copy");
    store.flush_now().expect("flush");
    drop(store);
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert_eq!(listed(&store), vec![ids[1], ids[0]], "each run once");
    // A prune before the move is finished leaves the runs alone.
    assert_eq!(store.prune_finished(0).expect("prune"), 0);
    assert_eq!(store.archive_finished().expect("archive"), 2);
    assert!(ids.iter().all(|id| !in_main(&store, id)));
    assert_eq!(listed(&store), vec![ids[1], ids[0]]);
    assert_eq!(store.prune_finished(1).expect("prune"), 1);
    assert_eq!(listed(&store), vec![ids[1]], "the oldest went");
    assert_eq!(store.counts.get(RunStatus::Succeeded), 1);
}

#[test]
fn a_prune_cut_short_by_a_crash_is_counted_once() {
    let dir = TempDir::new("archive-prune");
    let store = open_store(dir.path(), budget()).expect("open");
    let ids = finished_runs(&store, 3);
    store.archive_finished().expect("archive");
    // The archive removed the oldest run and wrote its intent; the crash
    // came before the main store's counts moved.
    let archive = store.archive().expect("archive");
    archive.runs.remove(ids[0].0).expect("remove");
    archive
        .meta
        .insert(
            PRUNE_INTENT,
            encode_intent(1, &{
                let mut c = [0u64; 5];
                c[RunStatus::Succeeded as usize] = 1;
                c
            }),
        )
        .expect("intent");
    store.flush_now().expect("flush");
    drop(store);
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert_eq!(store.counts.get(RunStatus::Succeeded), 3, "not applied yet");
    assert_eq!(store.prune_finished(10).expect("prune"), 0, "nothing beyond keep");
    assert_eq!(store.counts.get(RunStatus::Succeeded), 2, "the intent applied");
    drop(store);
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert_eq!(store.counts.get(RunStatus::Succeeded), 2, "persisted");
    store.prune_finished(10).expect("prune");
    assert_eq!(store.counts.get(RunStatus::Succeeded), 2, "applied once");
    assert_eq!(listed(&store), vec![ids[2], ids[1]]);
}

#[test]
fn a_schema_1_store_moves_its_finished_runs_to_the_archive() {
    let dir = TempDir::new("archive-migrate");
    let store = open_store(dir.path(), budget()).expect("open");
    let ids = finished_runs(&store, 2);
    // Schema 1 had no marks and no archive.
    whole_in_main(&store, &ids);
    store.to_archive.clear().expect("clear");
    store
        .meta
        .insert(META_SCHEMA, &1u64.to_be_bytes())
        .expect("schema");
    store.flush_now().expect("flush");
    drop(store);
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert_eq!(store.archive_finished().expect("archive"), 2);
    assert!(ids.iter().all(|id| !in_main(&store, id)));
    assert_eq!(listed(&store), vec![ids[1], ids[0]]);
    let schema = store.meta.get(META_SCHEMA).expect("get").map(|v| u64_of(&v));
    assert_eq!(schema, Some(SCHEMA_VERSION));
}

/// Makes the main store's file mostly free space: 8 MiB written to a
/// scratch tree, then dropped.
fn churn(store: &Store) {
    let junk = store.db.open_tree("junk").expect("tree");
    for i in 0..2048u32 {
        junk.insert(i.to_be_bytes(), vec![7u8; 4096]).expect("insert");
    }
    store.db.flush().expect("flush");
    assert!(store.db.drop_tree("junk").expect("drop tree"));
    store.db.flush().expect("flush");
}

const SMALL: compact::Sparse = compact::Sparse {
    min_file: 1 << 20,
    max_live: 1 << 20,
};

fn root_has_sled_files(dir: &Path) -> bool {
    dir.join("db").exists() || dir.join("conf").exists()
}

#[test]
fn a_sparse_main_store_is_compacted_and_reads_the_same() {
    let dir = TempDir::new("compact");
    let store = open_store(dir.path(), budget()).expect("open");
    let finished = finished_runs(&store, 3);
    let queued = record(store.new_run_id(), Mode::Calibrate, 1, "s0", 9);
    block_on(store.submit(&queued, None, crate::clock::now_ms())).expect("submit");
    churn(&store);
    let before = (listed(&store), store.counts.get(RunStatus::Succeeded));
    drop(store);

    let db = open_sled(&compact::main_dir(dir.path()).expect("main"), DEFAULT_CACHE_BYTES).expect("sled");
    let c = compact::compact_if_sparse(dir.path(), &db, SMALL, DEFAULT_CACHE_BYTES)
        .expect("compact")
        .expect("sparse enough");
    assert!(c.after * 2 < c.before, "{c:?}");
    drop(db);
    // As after a crash before the old store was removed: the next open
    // uses the copy and removes the rest.
    assert!(root_has_sled_files(dir.path()));
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert!(!root_has_sled_files(dir.path()), "the old store is removed");
    assert!(dir.path().join("main-1").join("db").is_file());
    assert_eq!((listed(&store), store.counts.get(RunStatus::Succeeded)), before);
    assert_eq!(store.counts.get(RunStatus::Queued), 1);
    let claimed = block_on(store.claim(
        crate::clock::now_ms(),
        &[Lease {
            token: 1,
            expires_ms: u64::MAX,
        }],
    ))
    .expect("claim");
    assert_eq!(claimed[0].0.id, queued.id, "the queue came along");
    assert_eq!(store.archive_finished().expect("archive"), 3, "and the marks");
    assert!(finished.iter().all(|id| !in_main(&store, id)));

    // A second compaction replaces the first copy.
    churn(&store);
    drop(store);
    let db = open_sled(&compact::main_dir(dir.path()).expect("main"), DEFAULT_CACHE_BYTES).expect("sled");
    assert!(
        compact::compact_if_sparse(dir.path(), &db, SMALL, DEFAULT_CACHE_BYTES)
            .expect("compact")
            .is_some()
    );
    drop(db);
    assert_eq!(
        compact::main_dir(dir.path()).expect("main"),
        dir.path().join("main-2")
    );
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert!(!dir.path().join("main-1").exists(), "the first copy is removed");
    assert_eq!(listed(&store), before.0);
}

#[test]
fn a_main_store_with_much_live_data_is_left_as_it_is() {
    let dir = TempDir::new("compact-live");
    let store = open_store(dir.path(), budget()).expect("open");
    let keep = store.db.open_tree("keep").expect("tree");
    for i in 0..512u32 {
        keep.insert(i.to_be_bytes(), vec![7u8; 4096]).expect("insert");
    }
    drop(keep);
    churn(&store);
    drop(store);
    let db = open_sled(dir.path(), DEFAULT_CACHE_BYTES).expect("sled");
    assert_eq!(
        compact::compact_if_sparse(dir.path(), &db, SMALL, DEFAULT_CACHE_BYTES).expect("compact"),
        None
    );
    assert!(!dir.path().join("CURRENT").exists());
}

#[test]
fn a_compaction_cut_short_leaves_the_store_it_had() {
    let dir = TempDir::new("compact-cut");
    let store = open_store(dir.path(), budget()).expect("open");
    let ids = finished_runs(&store, 2);
    drop(store);
    // A copy that was never switched to, at each step it can stop at.
    for leftover in ["main-1.tmp", "main-2"] {
        std::fs::create_dir_all(dir.path().join(leftover).join("blobs")).expect("mkdir");
        std::fs::write(dir.path().join(leftover).join("db"), b"partial").expect("write");
    }
    std::fs::write(dir.path().join("CURRENT.tmp"), b"main-2\n").expect("write");
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert_eq!(listed(&store), vec![ids[1], ids[0]]);
    for leftover in ["main-1.tmp", "main-2", "CURRENT.tmp"] {
        assert!(!dir.path().join(leftover).exists(), "{leftover} removed");
    }
    drop(store);
    // CURRENT naming nothing is refused, not replaced by a guess.
    std::fs::write(dir.path().join("CURRENT"), b"main-7\n").expect("write");
    match Store::open(dir.path(), budget()) {
        Err(StoreError::Corrupt(e)) => assert!(e.contains("holds no store"), "{e}"),
        other => panic!("opened: {:?}", other.map(|_| ())),
    }
    assert!(root_has_sled_files(dir.path()), "nothing removed");
}

// ------------------------------------------------------- the queue's copy

/// The queue's copy that a clean stop leaves, straight from the database.
fn queue_copy(dir: &Path) -> Option<Vec<u8>> {
    let db = open_sled(&compact::main_dir(dir).expect("main dir"), DEFAULT_CACHE_BYTES).expect("open");
    let meta = db.open_tree("meta").expect("meta");
    meta.get(META_QUEUE_AT_STOP_V2).expect("get").map(|v| v.to_vec())
}

/// Writes `key` = `value` into the meta tree of the closed store at `dir`.
fn put_meta(dir: &Path, key: &[u8], value: &[u8]) {
    let db = open_sled(&compact::main_dir(dir).expect("main dir"), DEFAULT_CACHE_BYTES).expect("open");
    db.open_tree("meta")
        .expect("meta")
        .insert(key, value)
        .expect("insert");
    db.flush().expect("flush");
}

#[test]
fn the_queue_copy_of_a_clean_stop_is_read_once_and_a_damaged_one_ignored() {
    let dir = TempDir::new("queuecopy");
    let store = open_store(dir.path(), budget()).expect("open");
    let now = crate::clock::now_ms();
    for (i, mode) in [Mode::Explore, Mode::Calibrate, Mode::Explore]
        .into_iter()
        .enumerate()
    {
        let rec = record(store.new_run_id(), mode, 1, "s0", i as u8);
        let got = block_on(store.submit(&rec, None, now)).expect("submit");
        assert!(matches!(got, Submitted::Accepted { .. }), "{got:?}");
    }
    Store::close_with_snapshot(store, Duration::from_secs(5)).expect("close");
    // Each entry: key, value length, 8-byte earliest start and target id.
    let targets: usize = (0..3u8)
        .map(|body| TARGETS[usize::from(body / 2) % 2].len())
        .sum();
    assert_eq!(
        queue_copy(dir.path()).map(|c| c.len()),
        Some(3 * (QUEUE_ENTRY + 2) + targets)
    );

    // Read at open, and taken out: the claim below changes the queue, and
    // a crash after it must not bring the claimed run back as queued.
    let store = open_store(dir.path(), budget()).expect("open");
    assert_eq!(store.counts.get(RunStatus::Queued), 3);
    let lease = Lease {
        token: 1,
        expires_ms: u64::MAX,
    };
    let claimed = block_on(store.claim(crate::clock::now_ms(), &[lease])).expect("claim");
    assert_eq!(claimed[0].0.mode, Mode::Calibrate, "calibrate runs first");
    drop(store);
    assert_eq!(queue_copy(dir.path()), None);
    let store = open_store(dir.path(), budget()).expect("open after a crash");
    assert_eq!(store.counts.get(RunStatus::Queued), 2);
    assert_eq!(store.counts.get(RunStatus::Running), 1);

    // A copy of the wrong length is not trusted: the queue itself is read.
    Store::close_with_snapshot(store, Duration::from_secs(5)).expect("close");
    put_meta(dir.path(), META_QUEUE_AT_STOP_V2, &[7u8; 30]);
    let store = open_store(dir.path(), budget()).expect("open with a damaged copy");
    assert_eq!(store.counts.get(RunStatus::Queued), 2);
    assert_eq!(store.ready_and_future(crate::clock::now_ms()), (2, 0));
    assert_eq!(store.meta.get(META_QUEUE_AT_STOP_V2).expect("get"), None);
}

#[test]
fn a_queue_from_before_priorities_and_pauses_keeps_its_order_and_learns_its_targets() {
    let dir = TempDir::new("oldqueue");
    let store = open_store(dir.path(), budget()).expect("open");
    let now = crate::clock::now_ms();
    // As an older synqc wrote them: no priority in the record, the key's
    // byte from the mode, an 8-byte value, and a copy of fixed entries.
    let mut copy = Vec::new();
    let mut submitted = Vec::new();
    for (mode, body) in [(Mode::Explore, 2u8), (Mode::Calibrate, 0), (Mode::Prod, 2)] {
        let rec = record(store.new_run_id(), mode, 1, "s0", body);
        let got = block_on(store.submit(&rec, None, now)).expect("submit");
        assert!(matches!(got, Submitted::Accepted { .. }), "{got:?}");
        let key = super::layout::queue_key_of(&rec);
        assert_eq!(key[0], u8::from(mode != Mode::Calibrate));
        store.queue.insert(key, &0u64.to_be_bytes()).expect("old value");
        copy.extend_from_slice(&key);
        copy.extend_from_slice(&0u64.to_be_bytes());
        submitted.push(rec);
    }
    // A newer run at the old calibrate default goes after the old one.
    let mut newer = record(store.new_run_id(), Mode::Explore, 1, "s0", 0);
    newer.priority = Some(7);
    assert!(matches!(
        block_on(store.submit(&newer, None, now)).expect("submit"),
        Submitted::Accepted { .. }
    ));
    copy.extend_from_slice(&super::layout::queue_key_of(&newer));
    copy.extend_from_slice(&0u64.to_be_bytes());
    drop(store);
    put_meta(dir.path(), META_QUEUE_AT_STOP, &copy);
    let store = open_store(dir.path(), budget()).expect("open");
    assert_eq!(
        store.meta.get(META_QUEUE_AT_STOP).expect("get"),
        None,
        "read once"
    );
    let now = crate::clock::now_ms();
    let position = |r: &RunRecord| store.queue_position(r, now);
    assert_eq!(position(&submitted[1]), Some(0), "calibrate first");
    assert_eq!(position(&newer), Some(1));
    assert_eq!(position(&submitted[0]), Some(2));
    assert_eq!(position(&submitted[2]), Some(3));
    // The targets came from the records: pausing sim_noisy holds back the
    // two runs of body 2.
    block_on(store.set_pause(
        "sim_noisy",
        Some(Pause {
            reason: "test".into(),
            since: 1.0,
        }),
    ))
    .expect("pause");
    assert_eq!(store.startable(now), 2);
    let leases: Vec<Lease> = (1..=4)
        .map(|token| Lease {
            token,
            expires_ms: u64::MAX,
        })
        .collect();
    let claimed = block_on(store.claim(now, &leases)).expect("claim");
    let claimed: Vec<RunId> = claimed.iter().map(|(r, _)| r.id).collect();
    assert_eq!(claimed, vec![submitted[1].id, newer.id]);
}

// ------------------------------------------------------- a failed write

#[test]
fn a_failed_write_refuses_every_write_after_it_and_says_restart() {
    let dir = TempDir::new("store-refuses");
    let store = open_store(dir.path(), budget()).expect("open");
    assert!(store.is_writable());
    store.probe().expect("probe");
    let cause = StoreError::io("writing the log", std::io::Error::from_raw_os_error(28));
    assert_eq!(store.refuse_writes(cause), StoreError::WritesRefused);
    assert!(!store.is_writable());
    assert_eq!(store.probe(), Err(StoreError::WritesRefused));
    let run = record(store.new_run_id(), Mode::Explore, 10, "s0", 0);
    assert_eq!(
        block_on(store.submit(&run, None, crate::clock::now_ms())).map(|_| ()),
        Err(StoreError::WritesRefused)
    );
    assert!(StoreError::WritesRefused
        .to_string()
        .ends_with("free space on the data directory's disk and restart synqc"));
    // A restart's reopening writes again.
    drop(store);
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert!(store.is_writable());
    store.probe().expect("probe after restart");
}

#[test]
fn an_accepted_cancel_of_a_running_run_is_marked_on_its_lease_until_it_ends() {
    let dir = TempDir::new("cancel-mark");
    let store = open_store(dir.path(), budget()).expect("open");
    let now = crate::clock::now_ms();
    let rec = record(store.new_run_id(), Mode::Explore, 8, "s0", 1);
    block_on(store.submit(&rec, None, now)).expect("submit");
    let lease = Lease {
        token: 7,
        expires_ms: now + 30_000,
    };
    let claimed = block_on(store.claim(now, &[lease])).expect("claim");
    assert_eq!(claimed.len(), 1);
    assert!(!store.cancel_requested(&rec.id).expect("read"));
    let outcome =
        block_on(store.cancel_queued(&rec.id, run_error(ErrorCode::Cancelled), now)).expect("cancel");
    assert!(matches!(outcome, CancelOutcome::Running), "{outcome:?}");
    assert!(store.cancel_requested(&rec.id).expect("read"));
    // Renewing keeps the mark, and the lease stays the worker's.
    assert!(store.renew(&rec.id, 7, now + 60_000).expect("renew"));
    assert!(store.cancel_requested(&rec.id).expect("read"));
    assert_eq!(store.leases().expect("leases")[0].1.expires_ms, now + 60_000);
    // It survives a reopen (a crash), and ends with the lease.
    drop(claimed);
    drop(store);
    let store = open_store(dir.path(), budget()).expect("reopen");
    assert!(store.cancel_requested(&rec.id).expect("read"));
    let running = store.get(&rec.id).expect("get").expect("the run");
    let fin = Finish {
        status: RunStatus::Cancelled,
        result: None,
        error: Some(run_error(ErrorCode::Cancelled)),
        refund: true,
    };
    block_on(store.finish(running, 7, fin, now)).expect("finish");
    assert!(!store.cancel_requested(&rec.id).expect("read"));
}

// ------------------------------------------------------------- schedules

#[test]
fn a_schedule_period_fires_once_with_its_run_and_a_refusal_is_recorded_once() {
    use crate::schedule::{parse_fields, ScheduleRecord};
    let dir = TempDir::new("schedules");
    let fields = parse_fields(
        &serde_json::json!({"name": "h", "request": {"preset": "health"}, "every_seconds": 10}),
        true,
    )
    .unwrap();
    let sched = ScheduleRecord::create(fields, 1_000).unwrap();
    let firing = |store: &Store, period_ms: u64, shots: u64, armed_ms: u64| {
        let mut run = record(store.new_run_id(), Mode::Explore, shots, "schedule:h", 0);
        run.schedule = Some(crate::run::FiredBy {
            name: "h".into(),
            period_ms,
        });
        let firing = Firing {
            name: "h".into(),
            armed_ms,
            period_ms,
            run: Ok(run.clone()),
            now_ms: period_ms,
        };
        (block_on(store.fire(firing)).unwrap(), run)
    };
    {
        let store = open_store(dir.path(), budget()).unwrap();
        assert!(matches!(
            block_on(store.create_schedule(&sched)).unwrap(),
            ScheduleWrite::Done(_)
        ));
        assert!(matches!(
            block_on(store.create_schedule(&sched)).unwrap(),
            ScheduleWrite::Exists
        ));
        let (fired, run) = firing(&store, 11_000, 100, 1_000);
        assert_eq!(fired, Fired::Submitted);
        let stored = store.get(&run.id).unwrap().unwrap();
        assert_eq!(stored.schedule.as_ref().map(|b| b.period_ms), Some(11_000));
        let (again, dup) = firing(&store, 11_000, 100, 1_000);
        assert_eq!(again, Fired::AlreadyFired);
        assert!(
            store.get(&dup.id).unwrap().is_none(),
            "no second run for the period"
        );
        assert_eq!(store.counts.get(RunStatus::Queued), 1);
        // A schedule re-armed since the loop read it is not fired.
        assert_eq!(firing(&store, 21_000, 100, 999).0, Fired::Gone);
    }
    // What committed is on disk: the period's mark and its run together.
    let store = open_store(dir.path(), budget()).unwrap();
    let s = store.schedule("h").unwrap().unwrap();
    assert_eq!((s.last_period_ms, s.submitted, s.refused), (Some(11_000), 1, 0));
    assert_eq!(store.counts.get(RunStatus::Queued), 1);
    // More shots than the session has left: refused, recorded once.
    let (refused, run) = firing(&store, 21_000, MAX_SHOTS, 1_000);
    assert!(
        matches!(&refused, Fired::Refused(why) if why.contains("schedule:h")),
        "{refused:?}"
    );
    assert!(store.get(&run.id).unwrap().is_none());
    assert_eq!(firing(&store, 21_000, 1, 1_000).0, Fired::AlreadyFired);
    let s = store.schedule("h").unwrap().unwrap();
    assert_eq!((s.last_period_ms, s.submitted, s.refused), (Some(21_000), 1, 1));
    assert!(s.last_error.is_some());
    // The next period submits again and clears the error.
    assert_eq!(firing(&store, 31_000, 1, 1_000).0, Fired::Submitted);
    assert_eq!(store.schedule("h").unwrap().unwrap().last_error, None);
    assert!(matches!(
        block_on(store.delete_schedule("h")).unwrap(),
        ScheduleWrite::Done(None)
    ));
    assert_eq!(firing(&store, 41_000, 1, 1_000).0, Fired::Gone);
}
