//! Backup and restore. A backup is a JSON-lines file: a header, the control
//! profile, the budget sessions, every run record, and a trailer that
//! proves the file is complete. It is written while the store serves:
//! each record is read atomically, and restore rebuilds everything derived
//! (queue entries, finished counters) from the run records themselves, so a
//! run caught mid-claim comes back queued and runs again with its seed.

use std::io::{BufRead, Write};
use std::path::Path;

use serde_json::{json, Value};

use super::layout::{queue_key_of, queue_value};
use super::{codec, finished_key, u64_of, Result, Store, StoreError, SCHEMA_VERSION};
use crate::budget::{Budget, SessionRecord};
use crate::run::{RunRecord, RunStatus};

/// Version of the backup file layout.
pub const FORMAT: u64 = 1;

/// What a restore did.
#[derive(Debug, Default, PartialEq)]
pub struct Restored {
    pub runs: u64,
    pub requeued: u64,
    pub sessions: u64,
}

fn line(out: &mut dyn Write, v: &Value) -> Result<()> {
    writeln!(out, "{v}").map_err(|e| StoreError::io("writing backup", e))
}

impl Store {
    /// Writes a backup to `out`. Returns the number of runs written.
    pub fn export(&self, out: &mut dyn Write) -> Result<u64> {
        line(
            out,
            &json!({"synqc_backup": FORMAT, "schema_version": SCHEMA_VERSION,
            "synqc_version": env!("CARGO_PKG_VERSION"), "created_at": crate::clock::now_ms() as f64 / 1000.0}),
        )?;
        line(out, &json!({"control_profile": self.control_profile()}))?;
        for item in self.sessions.iter() {
            let (k, v) = item?;
            if let Some(r) = SessionRecord::decode(&v) {
                line(
                    out,
                    &json!({"session": {"id": String::from_utf8_lossy(&k),
                    "window_start_ms": r.window_start_ms, "used": r.used, "last_touch_ms": r.last_touch_ms}}),
                )?;
            }
        }
        let mut runs = 0;
        // Both databases, newest first, each run once.
        for item in self.newest_first(&[0xff; 17])? {
            let (_, v, _) = item?;
            let record: Value = match codec::decode(&v) {
                Ok(r) => r,
                Err(_) => continue, // undecodable: quarantined on its next read
            };
            line(out, &json!({ "run": record }))?;
            runs += 1;
        }
        line(out, &json!({"end": {"runs": runs}}))?;
        out.flush().map_err(|e| StoreError::io("writing backup", e))?;
        Ok(runs)
    }
}

/// Restores a backup into `dir`, which must not hold a store yet. The
/// store is built in a sibling directory and moved into place only when
/// the whole file (trailer included) was read, so a truncated or corrupt
/// backup leaves nothing behind.
pub fn restore(dir: &Path, input: &mut dyn BufRead) -> Result<Restored> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(StoreError::Unavailable(format!(
            "{} is not empty; restore needs a new data directory",
            dir.display()
        )));
    }
    let staging = dir.with_extension("restoring");
    let _ = std::fs::remove_dir_all(&staging);
    let outcome = restore_into(&staging, input);
    match outcome {
        Ok(done) => {
            if dir.exists() {
                std::fs::remove_dir(dir).map_err(|e| StoreError::io(dir.display().to_string(), e))?;
            }
            std::fs::rename(&staging, dir)
                .map_err(|e| StoreError::io("moving the restored store into place", e))?;
            Ok(done)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

fn restore_into(dir: &Path, input: &mut dyn BufRead) -> Result<Restored> {
    let store = Store::open(
        dir,
        Budget {
            max_per_session: u64::MAX,
            ttl_ms: u64::MAX,
        },
    )?;
    let bad = |n: usize, why: &str| StoreError::Corrupt(format!("backup line {n}: {why}"));
    let mut done = Restored::default();
    let mut finished = [0u64; 5];
    let mut ended = false;
    for (i, text) in input.lines().enumerate() {
        let n = i + 1;
        let text = text.map_err(|e| StoreError::io("reading backup", e))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| bad(n, &e.to_string()))?;
        if ended {
            return Err(bad(n, "data after the end marker"));
        }
        if n == 1 {
            let format = v["synqc_backup"]
                .as_u64()
                .ok_or_else(|| bad(n, "not a synqc backup"))?;
            let schema = v["schema_version"].as_u64().unwrap_or(0);
            if format > FORMAT || schema > SCHEMA_VERSION {
                return Err(bad(n, "written by a newer synqc; restore it with that version"));
            }
            continue;
        }
        if let Some(p) = v.get("control_profile") {
            let p = serde_json::from_value(p.clone()).map_err(|e| bad(n, &e.to_string()))?;
            store.set_control_profile(&p)?;
        } else if let Some(s) = v.get("session") {
            let field = |k: &str| s[k].as_u64().ok_or_else(|| bad(n, "session without numbers"));
            let r = SessionRecord {
                window_start_ms: field("window_start_ms")?,
                used: field("used")?,
                last_touch_ms: field("last_touch_ms")?,
            };
            let id = s["id"].as_str().ok_or_else(|| bad(n, "session without id"))?;
            store.sessions.insert(id.as_bytes(), &r.encode())?;
            done.sessions += 1;
        } else if let Some(r) = v.get("run") {
            let mut rec: RunRecord = serde_json::from_value(r.clone()).map_err(|e| bad(n, &e.to_string()))?;
            if !rec.status.is_finished() {
                // Queued, or running when the backup was taken: it runs
                // (again) after the restore, with the same seed.
                rec.status = RunStatus::Queued;
                rec.started_at = None;
                store.queue.insert(
                    queue_key_of(&rec),
                    queue_value(rec.not_before_ms(), &rec.hardware_target),
                )?;
                done.requeued += 1;
                store.runs.insert(rec.id.0, codec::encode(&rec))?;
            } else {
                finished[rec.status as usize] += 1;
                store.add_usage(&rec)?;
                store.add_calibration(&rec)?;
                store.archive_records(&[(rec.id, codec::encode(&rec))])?;
            }
            done.runs += 1;
        } else if let Some(end) = v.get("end") {
            if end["runs"].as_u64() != Some(done.runs) {
                return Err(bad(n, "run count does not match the end marker"));
            }
            ended = true;
        } else {
            return Err(bad(n, "unknown record"));
        }
    }
    if !ended {
        return Err(StoreError::Corrupt("backup is truncated (no end marker)".into()));
    }
    for s in [RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled] {
        let had = store.meta.get(finished_key(s))?.map(|v| u64_of(&v)).unwrap_or(0);
        store
            .meta
            .insert(finished_key(s), &(had + finished[s as usize]).to_be_bytes())?;
    }
    store.flush_now()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_or_foreign_files_restore_nothing() {
        let base = std::env::temp_dir().join(format!("synqc-restore-{}", rand::random::<u64>()));
        let dir = base.join("data");
        let header = format!("{{\"synqc_backup\":1,\"schema_version\":{SCHEMA_VERSION}}}\n");
        for (text, why) in [
            (header.clone(), "truncated"),
            ("{\"hello\":1}\n".to_string(), "not a synqc backup"),
            (format!("{header}{{\"end\":{{\"runs\":3}}}}\n"), "does not match"),
            ("{\"synqc_backup\":99}\n".to_string(), "newer synqc"),
        ] {
            let err = restore(&dir, &mut text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
            assert!(
                !dir.exists() && !dir.with_extension("restoring").exists(),
                "left a store behind"
            );
        }
        let _ = std::fs::remove_dir_all(&base);
    }
}
