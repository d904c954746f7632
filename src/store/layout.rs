//! The main database's key layout: the meta keys, queue keys (priority,
//! then run id), leases and counters as big-endian integers, so scans come
//! out in order. Only the store reads or writes these bytes.

use sled::transaction::{ConflictableTransactionError as Abortable, TransactionalTree};

use super::Lease;
use crate::run::{Mode, RunId, RunRecord, RunStatus, MAX_PRIORITY};

pub(super) const META_SCHEMA: &[u8] = b"schema_version";
pub(super) const META_PROFILE: &[u8] = b"control_profile";
pub(super) const META_PROBE: &[u8] = b"probe";
/// The queue tree's entries as a clean stop of a synqc without priorities
/// copied them: each a key and an 8-byte value. Read once, on upgrade.
pub(super) const META_QUEUE_AT_STOP: &[u8] = b"queue_at_stop";
pub(super) const QUEUE_ENTRY: usize = QUEUE_KEY + 8;
/// The queue tree's entries, copied into one value by a clean stop (see
/// [`Store::open`]): each a key, its value's length (2 bytes) and value.
pub(super) const META_QUEUE_AT_STOP_V2: &[u8] = b"queue_at_stop_v2";
/// The pauses (JSON: pause key -> `Pause`, see queue_index.rs).
pub(super) const META_PAUSES: &[u8] = b"queue_pauses";
/// A queue key: the priority byte, then the run id.
pub(super) const QUEUE_KEY: usize = 17;

/// Queue key bytes 0 and 1 are entries written before priorities existed
/// (0 calibrate, 1 the others: what `Mode` then gave); a run with a
/// priority has byte `2 + (9 - priority)`. So old entries are found where
/// they were written, the tree still sorts by priority within each
/// scheme, and the index orders both schemes by [`priority_of_byte`].
pub(super) const QUEUE_BYTES: std::ops::RangeInclusive<u8> = 0..=2 + MAX_PRIORITY;

/// The queue key byte of a run with `priority` (None: a record from before
/// priorities) and `mode`.
pub(super) fn priority_byte(priority: Option<u8>, mode: Mode) -> u8 {
    match priority {
        None if mode == Mode::Calibrate => 0,
        None => 1,
        Some(p) => 2 + (MAX_PRIORITY - p.min(MAX_PRIORITY)),
    }
}

/// The priority (0-9, higher first) a queue key byte stands for.
pub(super) fn priority_of_byte(byte: u8) -> u8 {
    match byte {
        0 => Mode::Calibrate.priority(),
        1 => Mode::Explore.priority(),
        b => MAX_PRIORITY.saturating_sub(b - 2),
    }
}

/// The queue key of a queued run.
pub(super) fn queue_key_of(rec: &RunRecord) -> [u8; QUEUE_KEY] {
    queue_key(priority_byte(rec.priority, rec.mode), &rec.id)
}

/// A queue entry's value: its earliest start (ms, 0: none), then its
/// hardware target, so that the index is rebuilt without the records.
/// Entries written before pauses existed have the 8 bytes only.
pub(super) fn queue_value(not_before_ms: u64, target: &str) -> Vec<u8> {
    [&not_before_ms.to_be_bytes()[..], target.as_bytes()].concat()
}

/// The target a queue entry's value names, if it names one.
pub(super) fn queue_value_target(value: &[u8]) -> Option<&str> {
    value
        .get(8..)
        .filter(|t| !t.is_empty())
        .and_then(|t| std::str::from_utf8(t).ok())
}

pub(super) fn finished_key(s: RunStatus) -> Vec<u8> {
    format!("finished/{}", s.as_str()).into_bytes()
}

pub(super) fn queue_key(priority: u8, id: &RunId) -> [u8; QUEUE_KEY] {
    let mut k = [0u8; QUEUE_KEY];
    k[0] = priority;
    k[1..].copy_from_slice(&id.0);
    k
}

pub(super) fn u64_of(bytes: &[u8]) -> u64 {
    bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

pub(super) fn encode_lease(l: Lease) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&l.token.to_be_bytes());
    b[8..].copy_from_slice(&l.expires_ms.to_be_bytes());
    b
}

/// The byte after an encoded lease that marks its run's cancel as
/// accepted (see `Command::Cancel`): the mark lives and ends with the lease.
pub(super) const CANCEL_REQUESTED: u8 = 1;

pub(super) fn lease_cancel_requested(b: &[u8]) -> bool {
    b.get(16) == Some(&CANCEL_REQUESTED)
}

pub(super) fn decode_lease(b: &[u8]) -> Lease {
    Lease {
        token: u64_of(b),
        expires_ms: u64_of(b.get(8..).unwrap_or(&[])),
    }
}

pub(super) fn run_id_of(key: &[u8]) -> Option<RunId> {
    key.try_into().ok().map(RunId)
}

pub(super) fn bump<E>(
    tree: &TransactionalTree,
    key: &[u8],
    delta: i64,
) -> std::result::Result<(), Abortable<E>> {
    let current = tree.get(key)?.map(|v| u64_of(&v)).unwrap_or(0);
    let next = if delta >= 0 {
        current.saturating_add(delta as u64)
    } else {
        current.saturating_sub(delta.unsigned_abs())
    };
    tree.insert(key, &next.to_be_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_bytes_sort_by_priority_and_keep_the_old_entries_apart() {
        let bytes: Vec<u8> = (0..=MAX_PRIORITY)
            .rev()
            .map(|p| priority_byte(Some(p), Mode::Explore))
            .collect();
        assert!(bytes.windows(2).all(|w| w[0] < w[1]), "{bytes:?}");
        assert!(bytes.iter().all(|b| QUEUE_BYTES.contains(b) && *b >= 2));
        for p in 0..=MAX_PRIORITY {
            assert_eq!(priority_of_byte(priority_byte(Some(p), Mode::Calibrate)), p);
        }
        assert_eq!(priority_of_byte(priority_byte(None, Mode::Calibrate)), 7);
        assert_eq!(priority_of_byte(priority_byte(None, Mode::Prod)), 4);
        assert_eq!(
            queue_value_target(&queue_value(5, "sim_noisy")),
            Some("sim_noisy")
        );
        assert_eq!(u64_of(&queue_value(5, "sim_noisy")), 5);
        assert_eq!(queue_value_target(&0u64.to_be_bytes()), None, "an old entry");
    }
}
