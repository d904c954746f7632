//! Qubit usage counters: per hardware target and qubit, the succeeded
//! runs that used it, the shots they executed and when it was last used.
//! They live in the meta tree, one small value per target, and move in the
//! same transaction that ends a run, so GET /telemetry/qubits reads a few
//! keys instead of scanning runs. They count over the store's lifetime:
//! pruning finished runs does not lower them; a restore rebuilds them from
//! the restored records.

use serde::Serialize;

use super::{Result, Store};
use crate::run::{RunRecord, RunStatus};

const PREFIX: &str = "usage/";
/// runs, shots, last_used_ms: one big-endian u64 each, per qubit.
const ENTRY: usize = 24;

/// One qubit's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct QubitUsage {
    pub runs: u64,
    pub shots: u64,
    /// Unix milliseconds of the last finish that used it; 0 = never.
    pub last_used_ms: u64,
}

/// What one succeeded run adds on one target.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct UsageDelta {
    pub target: String,
    pub qubits: u32,
    pub shots: u64,
}

/// The targets a succeeded run used, merged per target (backend_compare
/// may name the same target twice). Nothing for any other outcome.
pub(super) fn deltas(rec: &RunRecord) -> Vec<UsageDelta> {
    if rec.status != RunStatus::Succeeded {
        return Vec::new();
    }
    let mut out: Vec<UsageDelta> = Vec::new();
    let shares = crate::sim::shots_per_target(
        rec.preset,
        &rec.hardware_target,
        rec.compare_with.as_deref(),
        rec.shots,
    );
    for (target, shots) in shares {
        match out.iter_mut().find(|d| d.target == target) {
            Some(d) => d.shots += shots,
            None => out.push(UsageDelta {
                target: target.to_string(),
                qubits: rec.circuit_qubits.unwrap_or(rec.preset.qubits()),
                shots,
            }),
        }
    }
    out
}

pub(super) fn key(target: &str) -> Vec<u8> {
    format!("{PREFIX}{target}").into_bytes()
}

fn decode(bytes: &[u8]) -> Vec<QubitUsage> {
    bytes
        .chunks_exact(ENTRY)
        .map(|c| QubitUsage {
            runs: super::u64_of(c),
            shots: super::u64_of(&c[8..]),
            last_used_ms: super::u64_of(&c[16..]),
        })
        .collect()
}

/// A target's value with one run's delta added.
pub(super) fn added(old: Option<&[u8]>, d: &UsageDelta, at_ms: u64) -> Vec<u8> {
    let mut qubits = old.map(decode).unwrap_or_default();
    let n = d.qubits as usize;
    if qubits.len() < n {
        qubits.resize(n, QubitUsage::default());
    }
    for q in &mut qubits[..n] {
        q.runs = q.runs.saturating_add(1);
        q.shots = q.shots.saturating_add(d.shots);
        q.last_used_ms = q.last_used_ms.max(at_ms);
    }
    qubits
        .iter()
        .flat_map(|q| [q.runs, q.shots, q.last_used_ms])
        .flat_map(u64::to_be_bytes)
        .collect()
}

impl Store {
    /// Every target's qubit counters, qubit 0 first.
    pub fn qubit_usage(&self) -> Result<Vec<(String, Vec<QubitUsage>)>> {
        let mut out = Vec::new();
        for item in self.meta.scan_prefix(PREFIX.as_bytes()) {
            let (k, v) = item?;
            let target = String::from_utf8_lossy(&k[PREFIX.len()..]).into_owned();
            out.push((target, decode(&v)));
        }
        Ok(out)
    }

    /// Adds a restored run's usage (outside the writer: restore has the
    /// store to itself).
    pub(super) fn add_usage(&self, rec: &RunRecord) -> Result<()> {
        let at_ms = rec.finished_at.map_or(0, |t| (t * 1000.0) as u64);
        for d in deltas(rec) {
            let k = key(&d.target);
            let old = self.meta.get(&k)?;
            self.meta.insert(k, added(old.as_deref(), &d, at_ms))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_add_per_qubit_and_keep_the_latest_time() {
        let two = UsageDelta {
            target: "sim_local".into(),
            qubits: 2,
            shots: 100,
        };
        let three = UsageDelta {
            qubits: 3,
            shots: 7,
            ..two.clone()
        };
        let v = added(None, &two, 50);
        let v = added(Some(&v), &three, 40);
        assert_eq!(
            decode(&v),
            [
                QubitUsage {
                    runs: 2,
                    shots: 107,
                    last_used_ms: 50
                },
                QubitUsage {
                    runs: 2,
                    shots: 107,
                    last_used_ms: 50
                },
                QubitUsage {
                    runs: 1,
                    shots: 7,
                    last_used_ms: 40
                },
            ]
        );
    }
}
