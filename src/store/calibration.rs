//! Calibration history: what every succeeded `health` run measured on its
//! target (T1, T2*, T2echo, error per Clifford, readout assignment
//! fidelity when the run measured it, each with its ci95), kept
//! in the `calibrations` tree. Each entry is written in the transaction
//! that finishes its run, so a crash can neither lose one nor write it
//! twice. Two kinds of key:
//!
//! - `h/<target>\0<finished ms, 8 bytes BE><run id>`: the history, in time
//!   order per target, so a listing reads a target's newest entries from
//!   the end of its prefix;
//! - `l/<target>`: the target's latest entry, so start-up restores the
//!   gauges from one key per target instead of scanning the runs.
//!
//! Entries are never pruned with the runs: one health run per hour is a
//! few MB a year per target.
//!
//! The same tree keeps the noise profiles written back from calibrations
//! (`v/<target>\0<version, 4 bytes BE>`), one entry per version, never
//! changed: a revert is a new version with an older one's values, so the
//! version a run records always names the values it ran with.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Result, Store};
use crate::run::{RunId, RunRecord, RunStatus};
use crate::sim::Preset;

const HISTORY: &[u8] = b"h/";
const LATEST: &[u8] = b"l/";
const PROFILE: &[u8] = b"v/";

/// One fitted quantity and its bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub value: f64,
    /// [low, high]; null when the run's result had none.
    pub ci95: Option<[f64; 2]>,
}

/// What one health run measured on its target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub run_id: RunId,
    pub hardware_target: String,
    /// When the run finished, Unix seconds.
    pub calibrated_at: f64,
    pub t1_us: Fitted,
    pub t2star_us: Fitted,
    pub t2echo_us: Fitted,
    pub epc: Fitted,
    /// 1 - (p(1|0) + p(0|1)) / 2; null in an entry from a health run
    /// that did not measure it (before noise model v2).
    #[serde(default)]
    pub readout_assignment_fidelity: Option<Fitted>,
}

impl Calibration {
    /// The calibration a finished run carries: only a succeeded health run
    /// whose result holds all four fits, each finite (and the readout
    /// assignment fidelity when it has one).
    pub fn of(rec: &RunRecord) -> Option<Calibration> {
        if rec.preset != Preset::Health || rec.status != RunStatus::Succeeded {
            return None;
        }
        let result = rec.result.as_ref()?.to_value();
        let details = result.get("kpi_details")?.as_array()?;
        let fitted = |name: &str| -> Option<Fitted> {
            let d = details.iter().find(|d| d["name"] == name)?;
            let value = d["value"].as_f64().filter(|v| v.is_finite())?;
            let ci95 = match &d["ci95"] {
                Value::Array(b) if b.len() == 2 => Some([b[0].as_f64()?, b[1].as_f64()?]),
                _ => None,
            };
            Some(Fitted { value, ci95 })
        };
        Some(Calibration {
            run_id: rec.id,
            hardware_target: rec.hardware_target.clone(),
            calibrated_at: rec.finished_at?,
            t1_us: fitted("t1_us")?,
            t2star_us: fitted("t2star_us")?,
            t2echo_us: fitted("t2echo_us")?,
            epc: fitted("epc")?,
            readout_assignment_fidelity: fitted("readout_assignment_fidelity"),
        })
    }

    fn at_ms(&self) -> u64 {
        (self.calibrated_at * 1000.0).max(0.0) as u64
    }

    pub(super) fn history_key(&self) -> Vec<u8> {
        [
            &history_prefix(&self.hardware_target)[..],
            &self.at_ms().to_be_bytes(),
            &self.run_id.0,
        ]
        .concat()
    }

    pub(super) fn latest_key(&self) -> Vec<u8> {
        latest_key(&self.hardware_target)
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        // Plain numbers, strings and an id: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<Calibration> {
        serde_json::from_slice(bytes).ok()
    }

    /// Whether this entry replaces `current` as its target's latest: a run
    /// that finished later, or (same millisecond) has the later id.
    pub(super) fn supersedes(&self, current: Option<&Calibration>) -> bool {
        current.is_none_or(|c| (self.at_ms(), self.run_id.0) >= (c.at_ms(), c.run_id.0))
    }
}

/// A noise profile version written back to a target: the values a
/// simulated target runs with from then on (docs/api.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileVersion {
    pub hardware_target: String,
    /// 1 for the first write-back; 0 stands for the built-in profile and
    /// is never stored.
    pub version: u32,
    /// Unix seconds.
    pub set_at: f64,
    /// The health run whose fits it holds, if set from one.
    pub from_run: Option<RunId>,
    /// The version whose values it restored, if a revert.
    pub reverted_to: Option<u32>,
    pub t1_us: f64,
    /// The echo (Markovian) T2.
    pub t2_us: f64,
    /// The Ramsey T2*. Absent (null) in a version stored before profiles
    /// had one: that version runs with the configured T2*/T2 ratio
    /// applied to its `t2_us` ([`crate::targets::Calibrated`]).
    #[serde(default)]
    pub t2star_us: Option<f64>,
    /// The published single-qubit gate error (average gate infidelity).
    pub p1q: f64,
}

impl ProfileVersion {
    /// What the target registry keeps of it.
    pub fn calibrated(&self) -> crate::targets::Calibrated {
        crate::targets::Calibrated {
            version: self.version,
            t1_us: self.t1_us,
            t2_us: self.t2_us,
            t2star_us: self.t2star_us,
            p1q: self.p1q,
        }
    }
}

/// What a new profile version holds, before it has a number.
pub struct NewProfile {
    pub from_run: Option<RunId>,
    pub reverted_to: Option<u32>,
    pub t1_us: f64,
    pub t2_us: f64,
    pub t2star_us: f64,
    pub p1q: f64,
}

fn profile_prefix(target: &str) -> Vec<u8> {
    [PROFILE, target.as_bytes(), b"\0"].concat()
}

fn history_prefix(target: &str) -> Vec<u8> {
    [HISTORY, target.as_bytes(), b"\0"].concat()
}

fn latest_key(target: &str) -> Vec<u8> {
    [LATEST, target.as_bytes()].concat()
}

impl Store {
    /// Every target's latest calibration (one key per target).
    pub fn latest_calibrations(&self) -> Result<Vec<Calibration>> {
        let mut out = Vec::new();
        for item in self.calibrations.scan_prefix(LATEST) {
            let (_, v) = item?;
            out.extend(Calibration::decode(&v));
        }
        Ok(out)
    }

    /// One target's latest calibration.
    pub fn latest_calibration(&self, target: &str) -> Result<Option<Calibration>> {
        Ok(self
            .calibrations
            .get(latest_key(target))?
            .and_then(|v| Calibration::decode(&v)))
    }

    /// The history, newest first, of one target or of all: at most
    /// `limit` entries, read from the end of each target's prefix.
    pub fn calibration_history(&self, target: Option<&str>, limit: usize) -> Result<Vec<Calibration>> {
        let targets: Vec<String> = match target {
            Some(t) => vec![t.to_string()],
            None => self
                .latest_calibrations()?
                .into_iter()
                .map(|c| c.hardware_target)
                .collect(),
        };
        let mut out = Vec::new();
        for t in targets {
            for item in self
                .calibrations
                .scan_prefix(history_prefix(&t))
                .rev()
                .take(limit)
            {
                let (_, v) = item?;
                out.extend(Calibration::decode(&v));
            }
        }
        out.sort_by_key(|c| std::cmp::Reverse((c.at_ms(), c.run_id.0)));
        out.truncate(limit);
        Ok(out)
    }

    /// Stores `new` as `target`'s next profile version, numbered after
    /// the last one in the same transaction, so two writes at once get two
    /// numbers; flushed before it answers.
    pub fn add_profile_version(&self, target: &str, new: &NewProfile, now_ms: u64) -> Result<ProfileVersion> {
        self.writable()?;
        let prefix = profile_prefix(target);
        let stored = self.calibrations.transaction(|tx| {
            // sled's transactions have no scan: the count key says the last number.
            let count_key = [&prefix[..], b"n"].concat();
            let last = tx.get(&count_key)?.map(|v| super::u64_of(&v) as u32).unwrap_or(0);
            let v = ProfileVersion {
                hardware_target: target.to_string(),
                version: last + 1,
                set_at: now_ms as f64 / 1000.0,
                from_run: new.from_run,
                reverted_to: new.reverted_to,
                t1_us: new.t1_us,
                t2_us: new.t2_us,
                t2star_us: Some(new.t2star_us),
                p1q: new.p1q,
            };
            tx.insert(count_key, &u64::from(v.version).to_be_bytes())?;
            tx.insert(
                [&prefix[..], &v.version.to_be_bytes()].concat(),
                serde_json::to_vec(&v).unwrap_or_default(),
            )?;
            Ok::<_, sled::transaction::ConflictableTransactionError<()>>(v)
        });
        let v = match stored {
            Ok(v) => v,
            Err(sled::transaction::TransactionError::Storage(e)) => return Err(self.refuse_writes(e.into())),
            Err(sled::transaction::TransactionError::Abort(())) => {
                return Err(super::StoreError::Unavailable("profile write aborted".into()))
            }
        };
        self.calibrations
            .flush()
            .map_err(|e| self.refuse_writes(e.into()))?;
        Ok(v)
    }

    /// A target's written-back profile versions, oldest first.
    pub fn profile_versions(&self, target: &str) -> Result<Vec<ProfileVersion>> {
        let prefix = profile_prefix(target);
        let mut out = Vec::new();
        for item in self.calibrations.scan_prefix(&prefix) {
            let (k, v) = item?;
            if k.len() == prefix.len() + 4 {
                out.extend(serde_json::from_slice::<ProfileVersion>(&v).ok());
            }
        }
        Ok(out)
    }

    /// Every target's current (last) profile version: a few keys per
    /// target that was ever written back.
    pub fn current_profiles(&self) -> Result<Vec<ProfileVersion>> {
        let mut out: Vec<ProfileVersion> = Vec::new();
        for item in self.calibrations.scan_prefix(PROFILE) {
            let (_, v) = item?;
            if let Ok(p) = serde_json::from_slice::<ProfileVersion>(&v) {
                match out.last_mut() {
                    Some(last) if last.hardware_target == p.hardware_target => *last = p,
                    _ => out.push(p),
                }
            }
        }
        Ok(out)
    }

    /// Adds a restored run's calibration (outside the writer: restore has
    /// the store to itself).
    pub(super) fn add_calibration(&self, rec: &RunRecord) -> Result<()> {
        let Some(c) = Calibration::of(rec) else {
            return Ok(());
        };
        self.calibrations.insert(c.history_key(), c.encode())?;
        let current = self.latest_calibration(&c.hardware_target)?;
        if c.supersedes(current.as_ref()) {
            self.calibrations.insert(c.latest_key(), c.encode())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
