//! The `schedules` tree: one JSON record per schedule, keyed by its name.
//!
//! A firing goes through the writer (`Command::Fire`, commands.rs; sent
//! by `Store::fire` in lifecycle.rs with the other commands), so
//! its run and the mark of its period commit in one transaction: after a
//! crash both are there or neither is, and a period is never fired twice.
//! Creating, changing and deleting a schedule are compare-and-swaps on
//! the tree, which sled orders against the writer's transactions, so a
//! PATCH never writes back a period mark older than a firing that
//! committed in between.

use super::error::Result;
use super::{Store, StoreError};
use crate::run::RunRecord;
use crate::schedule::ScheduleRecord;

/// One period of a schedule to fire: the run admission built for it, or
/// the sentence saying why admission refused it.
pub(crate) struct Firing {
    pub name: String,
    /// The arming the loop read: a schedule re-armed (or deleted and
    /// created again) since then is not fired for an old period.
    pub armed_ms: u64,
    pub period_ms: u64,
    pub run: std::result::Result<RunRecord, String>,
    pub now_ms: u64,
}

/// What a firing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    Submitted,
    /// Nothing was submitted, for this reason (recorded on the schedule).
    Refused(String),
    /// The period was already handled (by this process or before a crash).
    AlreadyFired,
    /// The schedule was deleted, disabled or re-armed meanwhile.
    Gone,
}

/// The outcome of a create, change or delete.
#[derive(Debug)]
pub enum ScheduleWrite {
    /// Done, with the schedule as stored (none after a delete).
    Done(Option<Box<ScheduleRecord>>),
    /// A create whose name is taken.
    Exists,
    NotFound,
}

pub(super) fn encode(s: &ScheduleRecord) -> Vec<u8> {
    serde_json::to_vec(s).unwrap_or_default()
}

pub(super) fn decode(v: &[u8]) -> Option<ScheduleRecord> {
    serde_json::from_slice(v).ok()
}

/// A compare-and-swap that lost only to a concurrent write is tried again,
/// this many times at most.
const CAS_TRIES: usize = 100;

impl Store {
    /// Every schedule, by name. Undecodable records are skipped (logged).
    pub fn schedules(&self) -> Result<Vec<ScheduleRecord>> {
        let mut out = Vec::new();
        for item in self.schedules.iter() {
            let (k, v) = item?;
            match decode(&v) {
                Some(s) => out.push(s),
                None => log::error!(
                    "schedule record {} cannot be decoded; it is ignored",
                    String::from_utf8_lossy(&k)
                ),
            }
        }
        Ok(out)
    }

    pub fn schedule(&self, name: &str) -> Result<Option<ScheduleRecord>> {
        Ok(self.schedules.get(name.as_bytes())?.and_then(|v| decode(&v)))
    }

    /// Stores a new schedule, on disk before it answers.
    pub async fn create_schedule(&self, s: &ScheduleRecord) -> Result<ScheduleWrite> {
        self.writable()?;
        let swapped = self
            .schedules
            .compare_and_swap(s.name.as_bytes(), None as Option<&[u8]>, Some(encode(s)))
            .map_err(|e| self.refuse_writes(e.into()))?;
        if swapped.is_err() {
            return Ok(ScheduleWrite::Exists);
        }
        self.flush().await?;
        Ok(ScheduleWrite::Done(Some(Box::new(s.clone()))))
    }

    /// Changes a schedule with `change` (applied again if a firing
    /// committed meanwhile), on disk before it answers.
    pub async fn update_schedule(
        &self,
        name: &str,
        mut change: impl FnMut(&mut ScheduleRecord),
    ) -> Result<ScheduleWrite> {
        self.writable()?;
        for _ in 0..CAS_TRIES {
            let Some(old) = self.schedules.get(name.as_bytes())? else {
                return Ok(ScheduleWrite::NotFound);
            };
            let Some(mut s) = decode(&old) else {
                return Err(StoreError::Unavailable(format!(
                    "schedule {name} cannot be decoded"
                )));
            };
            change(&mut s);
            let swapped = self
                .schedules
                .compare_and_swap(name.as_bytes(), Some(old), Some(encode(&s)))
                .map_err(|e| self.refuse_writes(e.into()))?;
            if swapped.is_ok() {
                self.flush().await?;
                return Ok(ScheduleWrite::Done(Some(Box::new(s))));
            }
        }
        Err(StoreError::Unavailable(format!(
            "schedule {name} kept changing during the update"
        )))
    }

    /// Deletes a schedule (its runs stay), on disk before it answers.
    pub async fn delete_schedule(&self, name: &str) -> Result<ScheduleWrite> {
        self.writable()?;
        let removed = self
            .schedules
            .remove(name.as_bytes())
            .map_err(|e| self.refuse_writes(e.into()))?;
        if removed.is_none() {
            return Ok(ScheduleWrite::NotFound);
        }
        self.flush().await?;
        Ok(ScheduleWrite::Done(None))
    }

    /// Records that a run of schedule `name` succeeded at `at_ms`. Not
    /// flushed: it rides on the next flush, and one lost in a crash only
    /// makes the schedule look older until its next success.
    pub fn schedule_succeeded(&self, name: &str, at_ms: u64) -> Result<()> {
        self.writable()?;
        for _ in 0..CAS_TRIES {
            let Some(old) = self.schedules.get(name.as_bytes())? else {
                return Ok(());
            };
            let Some(mut s) = decode(&old) else { return Ok(()) };
            if s.last_success_ms.is_some_and(|t| t >= at_ms) {
                return Ok(());
            }
            s.last_success_ms = Some(at_ms);
            let swapped = self
                .schedules
                .compare_and_swap(name.as_bytes(), Some(old), Some(encode(&s)))
                .map_err(|e| self.refuse_writes(e.into()))?;
            if swapped.is_ok() {
                return Ok(());
            }
        }
        Ok(())
    }
}
