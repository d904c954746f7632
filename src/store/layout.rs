//! The main database's key layout: the meta keys, queue keys (priority,
//! then run id), leases and counters as big-endian integers, so scans come
//! out in order. Only the store reads or writes these bytes.

use sled::transaction::{ConflictableTransactionError as Abortable, TransactionalTree};

use super::Lease;
use crate::run::{RunId, RunStatus};

pub(super) const META_SCHEMA: &[u8] = b"schema_version";
pub(super) const META_PROFILE: &[u8] = b"control_profile";
pub(super) const META_PROBE: &[u8] = b"probe";
/// The queue tree's entries, copied into one value by a clean stop (see
/// [`Store::open`]): each a key and an 8-byte value.
pub(super) const META_QUEUE_AT_STOP: &[u8] = b"queue_at_stop";
pub(super) const QUEUE_ENTRY: usize = QUEUE_KEY + 8;
/// A queue key: the priority byte, then the run id.
pub(super) const QUEUE_KEY: usize = 17;

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
