//! Calibration history: what every succeeded `health` run measured on its
//! target (T1, T2*, T2echo, error per Clifford, each with its ci95), kept
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
}

impl Calibration {
    /// The calibration a finished run carries: only a succeeded health run
    /// whose result holds all four fits, each finite.
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
    pub t2_us: f64,
    pub p1q: f64,
}

impl ProfileVersion {
    /// What the target registry keeps of it.
    pub fn calibrated(&self) -> crate::targets::Calibrated {
        crate::targets::Calibrated {
            version: self.version,
            t1_us: self.t1_us,
            t2_us: self.t2_us,
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
mod tests {
    use serde_json::json;
    use smol::block_on;

    use super::*;
    use crate::budget::Budget;
    use crate::run::ResultDoc;
    use crate::store::{Finish, Lease};
    use crate::testutil::TempDir;

    fn budget() -> Budget {
        Budget {
            max_per_session: u64::MAX,
            ttl_ms: u64::MAX / 2,
        }
    }

    /// A run as the API builds it, through its stored form, so fields
    /// other modules add with a default need no change here.
    fn record(store: &Store, preset: &str, target: &str) -> RunRecord {
        let id = store.new_run_id();
        serde_json::from_value(json!({
            "id": id, "preset": preset, "hardware_target": target, "compare_with": null,
            "mode": "calibrate", "shot_budget": 900, "shots": 900, "seed": 1, "notes": null,
            "marked": null, "controls": crate::controls::ControlProfile::default(),
            "session_id": "s", "budget_window_ms": 0, "status": "queued",
            "created_at": id.unix_ms() as f64 / 1000.0, "started_at": null, "finished_at": null,
            "attempts": 0, "crashes": 0, "error": null, "result": null,
        }))
        .expect("a run record")
    }

    fn result(t1: f64) -> ResultDoc {
        let kpi = |name: &str, value: f64| json!({"name": name, "value": value, "ci95": [value * 0.9, value * 1.1]});
        ResultDoc::new(&json!({"kpi_details": [
            kpi("fidelity", 0.99), kpi("epc", 0.01), kpi("t1_us", t1),
            kpi("t2star_us", t1 / 2.0), kpi("t2echo_us", t1 * 0.8),
        ]}))
    }

    /// Submits, claims and finishes one run as succeeded at `at_ms`.
    fn run_to_end(store: &Store, rec: RunRecord, doc: Option<ResultDoc>, at_ms: u64) -> RunRecord {
        block_on(store.submit(&rec, None, at_ms)).expect("submit");
        let lease = Lease {
            token: at_ms,
            expires_ms: at_ms + 60_000,
        };
        let (claimed, _) = block_on(store.claim(at_ms, &[lease]))
            .expect("claim")
            .pop()
            .expect("claimed");
        let fin = Finish {
            status: RunStatus::Succeeded,
            result: doc,
            error: None,
            refund: false,
        };
        block_on(store.finish(claimed, at_ms, fin, at_ms))
            .expect("finish")
            .expect("lease held")
    }

    #[test]
    fn health_finishes_write_history_and_latest_in_order() {
        let dir = TempDir::new("calibration");
        let store = Store::open(dir.path(), budget()).expect("open");
        let t0 = crate::clock::now_ms();
        let first = run_to_end(
            &store,
            record(&store, "health", "ibm_quantum"),
            Some(result(100.0)),
            t0,
        );
        let second = run_to_end(
            &store,
            record(&store, "health", "ibm_quantum"),
            Some(result(80.0)),
            t0 + 5,
        );
        let other = run_to_end(
            &store,
            record(&store, "health", "sim_local"),
            Some(result(50.0)),
            t0 + 10,
        );
        // Not calibrations: another preset, and a health run without fits.
        run_to_end(
            &store,
            record(&store, "grover_demo", "ibm_quantum"),
            Some(result(1.0)),
            t0 + 20,
        );
        run_to_end(&store, record(&store, "health", "ibm_quantum"), None, t0 + 30);

        let latest = store
            .latest_calibration("ibm_quantum")
            .expect("read")
            .expect("latest");
        assert_eq!(latest.run_id, second.id);
        assert_eq!(latest.t1_us.value, 80.0);
        assert_eq!(latest.t2echo_us.ci95, Some([64.0 * 0.9, 64.0 * 1.1]));
        assert_eq!(latest.calibrated_at, (t0 + 5) as f64 / 1000.0);
        let ids = |v: Vec<Calibration>| v.iter().map(|c| c.run_id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.calibration_history(None, 10).expect("list")),
            [other.id, second.id, first.id]
        );
        assert_eq!(
            ids(store.calibration_history(Some("ibm_quantum"), 10).expect("list")),
            [second.id, first.id]
        );
        assert_eq!(
            ids(store.calibration_history(None, 2).expect("list")),
            [other.id, second.id]
        );
        assert!(store
            .calibration_history(Some("aws_braket"), 10)
            .expect("list")
            .is_empty());

        // Closed, not dropped: the writer's thread lets go of the store a
        // moment after its last command, and the reopen must not race it.
        Store::close_with_snapshot(store, std::time::Duration::from_secs(5)).expect("close");
        let store = Store::open(dir.path(), budget()).expect("reopen");
        let mut targets: Vec<_> = store
            .latest_calibrations()
            .expect("read")
            .into_iter()
            .map(|c| (c.hardware_target, c.run_id))
            .collect();
        targets.sort();
        assert_eq!(
            targets,
            [
                ("ibm_quantum".to_string(), second.id),
                ("sim_local".to_string(), other.id)
            ]
        );
    }

    #[test]
    fn an_older_finish_does_not_replace_the_latest() {
        let dir = TempDir::new("calibration-order");
        let store = Store::open(dir.path(), budget()).expect("open");
        let t0 = crate::clock::now_ms();
        let newer = run_to_end(
            &store,
            record(&store, "health", "sim_local"),
            Some(result(90.0)),
            t0 + 1000,
        );
        let older = run_to_end(
            &store,
            record(&store, "health", "sim_local"),
            Some(result(70.0)),
            t0,
        );
        let latest = store
            .latest_calibration("sim_local")
            .expect("read")
            .expect("latest");
        assert_eq!(latest.run_id, newer.id);
        let ids: Vec<_> = store
            .calibration_history(Some("sim_local"), 10)
            .expect("list")
            .iter()
            .map(|c| c.run_id)
            .collect();
        assert_eq!(ids, [newer.id, older.id]);
    }

    #[test]
    fn a_restore_rebuilds_history_and_latest_from_the_backup() {
        let dir = TempDir::new("calibration-restore");
        let store = Store::open(&dir.path().join("a"), budget()).expect("open");
        let t0 = crate::clock::now_ms();
        let first = run_to_end(
            &store,
            record(&store, "health", "ibm_quantum"),
            Some(result(100.0)),
            t0,
        );
        let second = run_to_end(
            &store,
            record(&store, "health", "ibm_quantum"),
            Some(result(60.0)),
            t0 + 5,
        );
        let want = store.calibration_history(None, 10).expect("list");
        let mut backup = Vec::new();
        store.export(&mut backup).expect("export");
        drop(store);
        let into = dir.path().join("b");
        crate::store::restore(&into, &mut backup.as_slice()).expect("restore");
        let restored = Store::open(&into, budget()).expect("open restored");
        assert_eq!(restored.calibration_history(None, 10).expect("list"), want);
        assert_eq!(
            want.iter().map(|c| c.run_id).collect::<Vec<_>>(),
            [second.id, first.id]
        );
        let latest = restored
            .latest_calibration("ibm_quantum")
            .expect("read")
            .expect("latest");
        assert_eq!(latest.run_id, second.id);
    }
}
