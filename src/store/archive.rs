//! The archive: finished runs, in a second sled database under
//! `<data_dir>/archive`.
//!
//! Why a second database: sled 0.34 reads its whole page table when it
//! opens (about 1.2 µs per page, and a page holds 12 runs on average), so
//! a million finished runs in the main store cost over 100 ms at every
//! start, before the first submit can be accepted. The main store keeps
//! what the hot paths need (queued and running runs, recent results,
//! sessions, counters) and opens in a few milliseconds; the archive opens
//! on its own thread after that, and only the reads that miss the main
//! store wait for it.
//!
//! How a run gets there: a finish writes the record into the archive and
//! flushes it, then the main store's transaction replaces the running run
//! with a one-byte stub (its status) and marks it in `to_archive`. A
//! finish that finds its lease lost takes its record back out. A crash in
//! between leaves the run running in the main store: lease recovery runs
//! it again, and its new record replaces the first. The maintenance
//! loop then drops marked stubs. A cancel of a queued run, and stores of
//! schema 2, leave the whole record in the main store instead; the same
//! pass copies those into the archive (and flushes it) before dropping
//! them. A crash between the two leaves a run in both, with its mark, and
//! the next pass finishes the move. Readers prefer the main store's
//! record, and read a stub's from the archive; listings show each run
//! once. Finished records never change, so either copy is the run.
//!
//! Why straight to the archive: writing every result into the main store
//! first, and moving it later, wrote each result twice, and under
//! sustained load the main store's file grew to hold the results waiting
//! to move. sled shrinks its file only while the segments at its end are
//! free, and rewrites the free segments below that at every open, so the
//! first start after a busy session took 0.2-1.2 s.
//!
//! How a prune stays exact: the finished counters live in the main store,
//! the pruned records in the archive, and no transaction spans both. A
//! prune therefore writes an intent (a sequence number and the counts it
//! removes) into the archive in the same transaction as the removal, then
//! applies the counts to the main store under that sequence number, then
//! drops the intent; an intent found later is applied once by its number.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde::Deserialize;
use sled::transaction::{ConflictableTransactionError as Abortable, TransactionError};
use sled::{IVec, Transactional};

use super::{bump, codec, finished_key, u64_of, Result, Store, StoreError};
use crate::run::{RunId, RunRecord, RunStatus};

/// Runs moved, or pruned, per transaction.
const BATCH: usize = 512;

/// Most batches one pass moves: 524,288 runs, over two minutes of the
/// fastest drain. A pass moves until it has caught up; the cap only ends
/// a pass on a disk that cannot keep up with the finishes.
const MAX_BATCHES: usize = 1024;

/// The archive's key for a prune's intent.
pub(super) const PRUNE_INTENT: &[u8] = b"prune_intent";
/// The main store's key for the last prune whose counts were applied.
const PRUNE_APPLIED: &[u8] = b"prune_applied";

pub(super) struct Archive {
    db: sled::Db,
    pub(super) runs: sled::Tree,
    pub(super) meta: sled::Tree,
}

/// The archive as the store holds it: empty until its thread opened it.
pub(super) type Slot = Arc<OnceLock<std::result::Result<Archive, StoreError>>>;

/// Opens the archive at `path` on its own thread and fills `slot`.
pub(super) fn open_in_background(path: std::path::PathBuf, slot: Slot, cache_bytes: u64) {
    let fill = slot.clone();
    let spawned = std::thread::Builder::new()
        .name("synqc-archive".into())
        .spawn(move || {
            let opened = open(&path, cache_bytes);
            if let Err(e) = &opened {
                log::error!(
                    "cannot open the archive of finished runs at {}: {e}",
                    path.display()
                );
            }
            let _ = fill.set(opened);
        });
    if let Err(e) = spawned {
        let _ = slot.set(Err(StoreError::io("cannot start the archive thread", e)));
    }
}

impl Archive {
    fn insert(&self, records: &[(RunId, Vec<u8>)]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (id, value) in records {
            batch.insert(&id.0, value.as_slice());
        }
        self.runs.apply_batch(batch)?;
        Ok(())
    }
}

/// The archive in `slot`, once open (blocking until then).
fn opened(slot: &Slot) -> Result<&Archive> {
    slot.wait().as_ref().map_err(Clone::clone)
}

/// Writes finished records into the archive, waiting for it to open,
/// and returns once they are on disk.
pub(super) fn write_durably(slot: &Slot, records: &[(RunId, Vec<u8>)]) -> Result<()> {
    let archive = opened(slot)?;
    archive.insert(records)?;
    archive.db.flush()?;
    Ok(())
}

/// Opens the archive's database and its trees.
fn open(path: &std::path::Path, cache_bytes: u64) -> std::result::Result<Archive, StoreError> {
    let started = Instant::now();
    let db = super::open_sled(path, cache_bytes)?;
    let archive = Archive {
        runs: db.open_tree("runs")?,
        meta: db.open_tree("meta")?,
        db,
    };
    log::info!(
        "archive of finished runs open in {} ms",
        started.elapsed().as_millis()
    );
    Ok(archive)
}

/// The one field a prune or the schema-1 migration needs from a record.
#[derive(Deserialize)]
pub(super) struct StatusOnly {
    pub(super) status: RunStatus,
}

/// Newest first over the main store's runs and the archive's, a run in
/// both (a finish's stub, or a move cut short) once, and always as its
/// record. Items are (key, record, archived).
pub(super) struct NewestFirst<'a> {
    live: std::iter::Peekable<std::iter::Rev<sled::Iter>>,
    archived: std::iter::Peekable<std::iter::Rev<sled::Iter>>,
    /// Where a stub whose record the archive side has passed is read.
    archive_runs: &'a sled::Tree,
    /// Holds off the dropping of stubs and moved records while the caller
    /// iterates, so no run is seen in neither store.
    _moving: std::sync::RwLockReadGuard<'a, ()>,
}

impl Iterator for NewestFirst<'_> {
    type Item = Result<(IVec, IVec, bool)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            // An error on either side is reported before anything else.
            let (take_live, duplicate) = match (self.live.peek(), self.archived.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) | (Some(Ok(_)), None) => (true, false),
                (None, Some(_)) | (_, Some(Err(_))) => (false, false),
                (Some(Ok((l, _))), Some(Ok((a, _)))) => (l >= a, l == a),
            };
            if !take_live {
                return self.archived.next().map(archived);
            }
            let (key, value) = match self.live.next()? {
                Err(e) => return Some(Err(e.into())),
                Ok(kv) => kv,
            };
            if codec::stub_status(&value).is_none() {
                if duplicate {
                    self.archived.next();
                }
                return Some(Ok((key, value, false)));
            }
            if duplicate {
                return self.archived.next().map(archived);
            }
            // The archive side passed this key before the finish wrote it.
            match self.archive_runs.get(&key) {
                Err(e) => return Some(Err(e.into())),
                Ok(Some(record)) => return Some(Ok((key, record, true))),
                // A stub without its record (a damaged archive): no run.
                Ok(None) => continue,
            }
        }
    }
}

/// An item of the archive's side, as NewestFirst yields it.
fn archived(item: sled::Result<(IVec, IVec)>) -> Result<(IVec, IVec, bool)> {
    Ok(item.map(|(k, v)| (k, v, true))?)
}

impl Store {
    /// The archive, once open (blocking until then).
    pub(super) fn archive(&self) -> Result<&Archive> {
        opened(&self.archive)
    }

    /// Resolves once the archive is open (or failed to open), without
    /// holding an executor thread. Async callers of [`Store::get`] and
    /// friends await this first: right after a start they would block.
    pub async fn archive_opened(&self) {
        if self.archive.get().is_none() {
            let slot = self.archive.clone();
            smol::unblock(move || {
                slot.wait();
            })
            .await;
        }
    }

    /// "opening", "open" or "failed" (the error is logged), for /health.
    pub fn archive_state(&self) -> &'static str {
        match self.archive.get() {
            None => "opening",
            Some(Ok(_)) => "open",
            Some(Err(_)) => "failed",
        }
    }

    /// A run the archive holds, if any. An undecodable record is moved to
    /// the quarantine tree, like one in the main store.
    pub(super) fn get_archived(&self, key: &[u8]) -> Result<Option<RunRecord>> {
        let archive = self.archive()?;
        match archive.runs.get(key)? {
            None => Ok(None),
            Some(v) => Ok(self.decode_archived(key, &v)),
        }
    }

    pub(super) fn decode_archived(&self, key: &[u8], value: &[u8]) -> Option<RunRecord> {
        match codec::decode(value) {
            Ok(r) => Some(r),
            Err(e) => {
                log::error!(
                    "archived run record {} cannot be decoded: {e}",
                    crate::budget::hex(key)
                );
                if let Err(e) = self.quarantine_archived(key, value) {
                    log::error!("cannot quarantine it: {e}");
                }
                None
            }
        }
    }

    /// Copies the record into the quarantine tree, durably, before it
    /// leaves the archive: it is never in neither.
    fn quarantine_archived(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.writable()?;
        let archive = self.archive()?;
        self.quarantine
            .insert([b"archive\0".as_slice(), key].concat(), value)?;
        self.db.flush()?;
        if archive
            .runs
            .compare_and_swap(key, Some(value), None as Option<&[u8]>)?
            .is_ok()
        {
            self.counts
                .quarantined
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// Both stores' runs newest first, below `upper`.
    pub(super) fn newest_first(&self, upper: &[u8]) -> Result<NewestFirst<'_>> {
        let archive = self.archive()?;
        let moving = self.moving.read().unwrap_or_else(|p| p.into_inner());
        Ok(NewestFirst {
            live: self.runs.range(..upper.to_vec()).rev().peekable(),
            archived: archive.runs.range(..upper.to_vec()).rev().peekable(),
            archive_runs: &archive.runs,
            _moving: moving,
        })
    }

    /// Drops the stubs of finished runs from the main store, and moves
    /// the whole records a cancel (or an older synqc) left there to the
    /// archive, until fewer than a batch are left. Returns how many runs
    /// left the main store.
    pub fn archive_finished(&self) -> Result<u64> {
        self.writable()?;
        let archive = self.archive()?;
        let mut moved = 0;
        for _ in 0..MAX_BATCHES {
            let mut batch = Vec::with_capacity(BATCH);
            for item in self.to_archive.iter().keys().take(BATCH) {
                let key = item?;
                let value = self.runs.get(&key)?;
                batch.push((key, value));
            }
            if batch.is_empty() {
                break;
            }
            let caught_up = batch.len() < BATCH;
            let _moving = self.moving.write().unwrap_or_else(|p| p.into_inner());
            let mut copy = sled::Batch::default();
            let mut copies = false;
            for (key, value) in &batch {
                if let Some(v) = value.as_ref().filter(|v| codec::stub_status(v).is_none()) {
                    copy.insert(key, v);
                    copies = true;
                }
            }
            if copies {
                archive.runs.apply_batch(copy)?;
                archive.db.flush()?;
            }
            // Removed only where unchanged: a finished record is final,
            // but a quarantine may have taken it meanwhile.
            let removed = (&self.runs, &self.to_archive).transaction(|(runs, to_archive)| {
                let mut n = 0u64;
                for (key, value) in &batch {
                    if value.is_some() && runs.get(key)? == *value {
                        runs.remove(key)?;
                        n += 1;
                    }
                    to_archive.remove(key)?;
                }
                Ok::<_, Abortable<()>>(n)
            });
            match removed {
                Ok(n) => moved += n,
                Err(TransactionError::Storage(e)) => return Err(e.into()),
                Err(TransactionError::Abort(())) => {}
            }
            if caught_up {
                break;
            }
        }
        Ok(moved)
    }

    /// Deletes the oldest archived runs beyond `keep` finished runs.
    /// Returns how many.
    pub fn prune_finished(&self, keep: u64) -> Result<u64> {
        self.writable()?;
        let archive = self.archive()?;
        self.apply_prune_intent(archive)?;
        let finished = [RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled]
            .iter()
            .map(|s| self.counts.get(*s))
            .sum::<u64>();
        let mut excess = finished.saturating_sub(keep);
        let mut pruned = 0;
        while excess > 0 {
            let mut keys = Vec::new();
            let mut counts = [0u64; 5];
            for item in archive.runs.iter().take(BATCH.min(excess as usize)) {
                let (k, v) = item?;
                if self.runs.contains_key(&k)? {
                    // Still in the main store: a stub or a record not yet
                    // dropped, or (a finish cut short by a crash) a run
                    // that is to run again. Only the main store counts a
                    // run as finished, so the archive's copy waits.
                    break;
                }
                match codec::decode::<StatusOnly>(&v) {
                    Ok(r) => counts[r.status as usize] += 1,
                    Err(_) => {
                        // Quarantined instead: it is not counted as finished.
                        self.decode_archived(&k, &v);
                        continue;
                    }
                }
                keys.push(k);
            }
            if keys.is_empty() {
                break;
            }
            let seq = self.meta.get(PRUNE_APPLIED)?.map(|v| u64_of(&v)).unwrap_or(0) + 1;
            let intent = encode_intent(seq, &counts);
            let written = (&archive.runs, &archive.meta).transaction(|(runs, meta)| {
                for k in &keys {
                    runs.remove(k)?;
                }
                meta.insert(PRUNE_INTENT, intent.as_slice())?;
                Ok::<_, Abortable<()>>(())
            });
            match written {
                Ok(()) => {}
                Err(TransactionError::Storage(e)) => return Err(e.into()),
                Err(TransactionError::Abort(())) => break,
            }
            archive.db.flush()?;
            self.apply_prune_intent(archive)?;
            let n = keys.len() as u64;
            pruned += n;
            excess = excess.saturating_sub(n);
        }
        Ok(pruned)
    }

    /// Applies a prune's counts to the main store once, by its sequence
    /// number, then drops the intent.
    fn apply_prune_intent(&self, archive: &Archive) -> Result<()> {
        let Some(intent) = archive.meta.get(PRUNE_INTENT)? else {
            return Ok(());
        };
        let (seq, counts) = decode_intent(&intent);
        let applied = self.meta.transaction(|meta| {
            if meta.get(PRUNE_APPLIED)?.map(|v| u64_of(&v)).unwrap_or(0) >= seq {
                return Ok(false);
            }
            for s in [RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled] {
                bump(meta, &finished_key(s), -(counts[s as usize] as i64))?;
            }
            meta.insert(PRUNE_APPLIED, &seq.to_be_bytes())?;
            Ok::<_, Abortable<()>>(true)
        });
        match applied {
            Ok(true) => {
                for s in [RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled] {
                    self.counts.sub(s, counts[s as usize]);
                }
            }
            Ok(false) | Err(TransactionError::Abort(())) => {}
            Err(TransactionError::Storage(e)) => return Err(e.into()),
        }
        // The intent goes only once the counts are on disk.
        self.db.flush()?;
        archive
            .meta
            .compare_and_swap(PRUNE_INTENT, Some(intent), None as Option<&[u8]>)?
            .ok();
        Ok(())
    }

    /// Takes a record out of the archive again after its finish found the
    /// lease lost (the run is to run again, or was never this worker's);
    /// left if another finish has replaced it since.
    pub(super) fn take_back(&self, id: &RunId, written: &[u8]) -> Result<()> {
        let archive = self.archive()?;
        let _ = archive
            .runs
            .compare_and_swap(id.0, Some(written), None as Option<&[u8]>)?;
        Ok(())
    }

    /// Stores finished runs straight in the archive (restore, bench fill).
    pub(super) fn archive_records(&self, records: &[(RunId, Vec<u8>)]) -> Result<()> {
        self.archive()?.insert(records)
    }

    /// The archive's size, 0 until it is open: /health and /metrics
    /// must not wait for it.
    pub(super) fn archive_size_on_disk(&self) -> Result<u64> {
        match self.archive.get() {
            Some(Ok(archive)) => Ok(archive.db.size_on_disk()?),
            _ => Ok(0),
        }
    }

    /// Flushes the archive if it is open (nothing was written otherwise).
    pub(super) fn flush_archive(&self) -> Result<()> {
        if let Some(Ok(archive)) = self.archive.get() {
            archive.db.flush()?;
        }
        Ok(())
    }
}

pub(super) fn encode_intent(seq: u64, counts: &[u64; 5]) -> Vec<u8> {
    std::iter::once(seq)
        .chain(counts.iter().copied())
        .flat_map(u64::to_be_bytes)
        .collect()
}

fn decode_intent(bytes: &[u8]) -> (u64, [u64; 5]) {
    let word = |i: usize| u64_of(bytes.get(i * 8..).unwrap_or(&[]));
    (word(0), [word(1), word(2), word(3), word(4), word(5)])
}
