//! The read side of the store: one run, a page of runs, the queue's
//! positions, leases, budget sessions and the control profile.

use super::layout::{decode_lease, lease_cancel_requested, run_id_of};
use super::Pause;
use super::{codec, Command, Lease, ListFilter, Result, Store};
use crate::budget::SessionRecord;
use crate::controls::ControlProfile;
use crate::run::{RunId, RunRecord};
use std::collections::BTreeMap;

impl Store {
    /// A run from the main store, or else from the archive: blocks while
    /// the archive opens, so async callers await [`Store::archive_opened`]
    /// first. Main first: a record is in the archive before the main
    /// store's copy becomes a stub or leaves.
    pub fn get(&self, id: &RunId) -> Result<Option<RunRecord>> {
        match self.runs.get(id.0)? {
            Some(v) if codec::stub_status(&v).is_none() => Ok(self.decode_or_quarantine(&id.0, &v)),
            _ => self.get_archived(&id.0),
        }
    }

    /// Decodes a run record; one that cannot be decoded is moved to the
    /// quarantine tree and reported, never allowed to crash a request.
    fn decode_or_quarantine(&self, key: &[u8], value: &[u8]) -> Option<RunRecord> {
        match codec::decode(value) {
            Ok(r) => Some(r),
            Err(e) => {
                log::error!("run record {} cannot be decoded: {e}", crate::budget::hex(key));
                let command = Command::Quarantine {
                    key: key.to_vec(),
                    value: value.to_vec(),
                };
                if let Err(e) = self.apply(&[command]) {
                    log::error!("cannot quarantine it: {e}");
                }
                None
            }
        }
    }

    /// 0-based position among queued runs in dispatch order at `now_ms`
    /// (see `QueueIndex::position` for what a waiting or paused run's is).
    pub fn queue_position(&self, run: &RunRecord, now_ms: u64) -> Option<u64> {
        self.index().position(&run.id, now_ms)
    }

    /// Newest first, filtered, one page plus whether there is more.
    pub fn list(&self, f: &ListFilter) -> Result<(Vec<RunRecord>, bool)> {
        let upper = f.before.map(|id| id.0.to_vec()).unwrap_or_else(|| vec![0xff; 17]);
        let mut out = Vec::with_capacity(f.limit.min(512));
        for item in self.newest_first(&upper)? {
            let (k, v, archived) = item?;
            let decoded = if archived {
                self.decode_archived(&k, &v)
            } else {
                self.decode_or_quarantine(&k, &v)
            };
            let Some(rec) = decoded else {
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

    /// Whether a cancel of this running run was accepted (its lease carries
    /// the mark), so that recovery ends it cancelled rather than running
    /// it again.
    pub fn cancel_requested(&self, id: &RunId) -> Result<bool> {
        Ok(self.leases.get(id.0)?.is_some_and(|l| lease_cancel_requested(&l)))
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

    /// Queued runs due now and queued runs waiting for their earliest
    /// start (a retry backoff or the request's not_before).
    pub fn ready_and_future(&self, now_ms: u64) -> (u64, u64) {
        self.index().ready_and_future(now_ms)
    }

    /// Queued runs due now that no pause holds back.
    pub fn startable(&self, now_ms: u64) -> u64 {
        self.index().startable_count(now_ms)
    }

    /// The pauses in place: target id (or [`WHOLE_QUEUE`]) -> pause.
    pub fn pauses(&self) -> BTreeMap<String, Pause> {
        self.index().pauses().clone()
    }

    /// The submit time (ms) of the oldest queued run the workers could
    /// start at `now_ms` (not waiting for its earliest start or a pause).
    pub fn oldest_queued_ms(&self, now_ms: u64) -> Option<u64> {
        self.index().oldest_ms(now_ms)
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
}
