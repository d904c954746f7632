//! Opening the store: the two databases, the schema check and migrations,
//! and the in-memory state (counts, queue index, profile) rebuilt from disk.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::layout::{
    finished_key, queue_value_target, run_id_of, u64_of, META_PAUSES, META_PROFILE, META_QUEUE_AT_STOP,
    META_QUEUE_AT_STOP_V2, META_SCHEMA, QUEUE_ENTRY, QUEUE_KEY,
};
use super::{archive, codec, compact, queue_index, writer, Counts, Result, Store, StoreError};
use crate::budget::{Budget, SessionRecord};
use crate::run::{RunId, RunStatus};

/// Version of the on-disk layout. Bump with a migration in [`Store::open`].
/// 2: finished runs move to the archive database.
/// 3: a finish writes the record straight to the archive and leaves a
/// one-byte stub in the main store, and records of 1 KiB or more are
/// LZ4-compressed (an older synqc would quarantine both; see codec.rs).
pub const SCHEMA_VERSION: u64 = 3;

/// The configuration's default (store_cache_bytes), for a store opened
/// without one (tests, `synqc bench fill`).
pub use crate::config::DEFAULT_STORE_CACHE_BYTES as DEFAULT_CACHE_BYTES;

/// The page cache of the main database and of the archive, out of
/// `total`: half each. The main store is small but every submit, claim
/// and finish writes it; the archive takes every result and serves the
/// reads of finished runs.
fn cache_split(total: u64) -> (u64, u64) {
    let main = total / 2;
    (main, total - main)
}

impl Store {
    /// [`Store::open_with_cache`] with the default page cache.
    pub fn open(path: &Path, budget: Budget) -> Result<Arc<Store>> {
        Store::open_with_cache(path, budget, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the store, checks and migrates its schema, and
    /// loads the counts: queued and running from their (bounded) trees,
    /// finished ones from persisted counters, so start-up does not depend
    /// on how many runs are stored. `cache_bytes` bounds sled's page
    /// caches of both databases together.
    pub fn open_with_cache(path: &Path, budget: Budget, cache_bytes: u64) -> Result<Arc<Store>> {
        let (main_cache, archive_cache) = cache_split(cache_bytes);
        let db = sled::Config::new()
            .path(compact::main_dir(path)?)
            .cache_capacity(main_cache)
            .open()?;
        compact::remove_leftovers(path)?;
        let meta = db.open_tree("meta")?;
        let schema = meta.get(META_SCHEMA)?.map(|v| u64_of(&v));
        if let Some(v) = schema.filter(|v| *v > SCHEMA_VERSION) {
            return Err(StoreError::TooNew { found: v });
        }
        let write_failed = Arc::new(AtomicBool::new(false));
        let profile = meta
            .get(META_PROFILE)?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default();
        let (runs, queue, leases) = (
            db.open_tree("runs")?,
            db.open_tree("queue")?,
            db.open_tree("leases")?,
        );
        let (sessions, idempotency) = (db.open_tree("sessions")?, db.open_tree("idempotency")?);
        let (quarantine, to_archive) = (db.open_tree("quarantine")?, db.open_tree("to_archive")?);
        let calibrations = db.open_tree("calibrations")?;
        let schedules = db.open_tree("schedules")?;
        if schema == Some(1) {
            mark_finished_for_archive(&runs, &to_archive)?;
        }
        if schema != Some(SCHEMA_VERSION) {
            meta.insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
        }
        let archive = archive::Slot::default();
        archive::open_in_background(path.join("archive"), archive.clone(), archive_cache);
        let store = Arc::new_cyclic(|weak| Store {
            writer: writer::Writer::start(weak.clone(), write_failed.clone()),
            write_lock: Mutex::new(()),
            runs,
            queue,
            leases,
            sessions,
            idempotency,
            quarantine,
            to_archive,
            calibrations,
            schedules,
            cache_bytes: main_cache,
            archive,
            moving: RwLock::new(()),
            meta,
            path: path.to_path_buf(),
            write_failed,
            counts: Counts::default(),
            budget,
            last_id: Mutex::new((0, 0)),
            index: Mutex::new(queue_index::QueueIndex::default()),
            profile: std::sync::RwLock::new(profile),
            free_space: Mutex::new(None),
            db,
        });
        // The queue index, from the copy a clean stop left: one read,
        // where walking the queue tree reads page after page (150 ms for
        // 115,000 queued runs). The copy is taken out before anything can
        // change the queue, so a later start never reads it stale.
        let mut queued = 0;
        let mut index = store.index();
        let mut add = |k: &[u8], v: &[u8]| -> Result<()> {
            queued += 1;
            if let Some(id) = k.get(1..).and_then(run_id_of) {
                let target = match queue_value_target(v) {
                    Some(t) => t.to_string(),
                    None => target_of_record(&store.runs, &id)?,
                };
                index.insert(k[0], id, &target, u64_of(v));
            }
            Ok(())
        };
        let copy = store.meta.remove(META_QUEUE_AT_STOP_V2)?;
        let old_copy = store.meta.remove(META_QUEUE_AT_STOP)?;
        let entries = match (copy, old_copy) {
            (Some(copy), _) => split_copy(&copy),
            // Left by a synqc without priorities: its values are 8 bytes.
            (None, Some(copy)) if copy.len() % QUEUE_ENTRY == 0 => Some(
                copy.chunks(QUEUE_ENTRY)
                    .map(|e| e.split_at(QUEUE_KEY))
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect(),
            ),
            (None, Some(_)) => None,
            (None, None) => Some(Vec::new()).filter(|_| store.queue.is_empty()),
        };
        match entries {
            Some(entries) => {
                for (k, v) in entries {
                    add(&k, &v)?;
                }
            }
            None => {
                if !store.queue.is_empty() {
                    log::info!("no usable copy of the queue from the last stop; reading the queue itself");
                }
                for item in store.queue.iter() {
                    let (k, v) = item?;
                    add(&k, &v)?;
                }
            }
        }
        let pauses: std::collections::BTreeMap<String, super::Pause> = store
            .meta
            .get(META_PAUSES)?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default();
        for (key, pause) in pauses {
            index.set_pause(&key, Some(pause));
        }
        drop(index);
        store.counts.add(RunStatus::Queued, queued);
        store.counts.add(RunStatus::Running, store.leases.len() as u64);
        for s in [RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled] {
            store.counts.add(
                s,
                store.meta.get(finished_key(s))?.map(|v| u64_of(&v)).unwrap_or(0),
            );
        }
        store
            .counts
            .quarantined
            .store(store.quarantine.len() as u64, Ordering::Relaxed);
        let now = crate::clock::now_ms();
        let live = store
            .sessions
            .iter()
            .values()
            .filter_map(|v| v.ok().and_then(|v| SessionRecord::decode(&v)))
            .filter(|r| !store.budget.is_expired(r, now))
            .count();
        store.counts.sessions.store(live as u64, Ordering::Relaxed);
        store.db.flush()?;
        Ok(store)
    }
}

/// Migration from schema 1, where finished runs stayed in `runs`: marks
/// them all, so the maintenance loop moves them to the archive.
fn mark_finished_for_archive(runs: &sled::Tree, to_archive: &sled::Tree) -> Result<()> {
    let mut batch = sled::Batch::default();
    for item in runs.iter() {
        let (k, v) = item?;
        let finished = codec::decode::<archive::StatusOnly>(&v).is_ok_and(|r| r.status.is_finished());
        if finished {
            batch.insert(k, &[]);
        }
    }
    to_archive.apply_batch(batch)?;
    Ok(())
}

/// The hardware target of a queued run, from its record, for a queue
/// entry written before entries named it; "" when the record is missing
/// or unreadable (a claim then removes or quarantines it).
fn target_of_record(runs: &sled::Tree, id: &RunId) -> Result<String> {
    #[derive(serde::Deserialize)]
    struct TargetOnly {
        hardware_target: String,
    }
    Ok(runs
        .get(id.0)?
        .and_then(|v| codec::decode::<TargetOnly>(&v).ok())
        .map(|r| r.hardware_target)
        .unwrap_or_default())
}

/// The entries of a clean stop's queue copy (see close.rs), or None if it
/// is damaged.
fn split_copy(mut copy: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut entries = Vec::new();
    while !copy.is_empty() {
        let (key, rest) = copy.split_at_checked(QUEUE_KEY)?;
        let (len, rest) = rest.split_at_checked(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (value, rest) = rest.split_at_checked(len)?;
        entries.push((key.to_vec(), value.to_vec()));
        copy = rest;
    }
    Some(entries)
}

/// Opens the sled database at `path` with a page cache of `cache_bytes`,
/// waiting (bounded) for the file lock of a handle dropped a moment ago:
/// sled releases it only when its own threads (and our writer thread,
/// mid-batch) have let go.
pub(super) fn open_sled(path: &Path, cache_bytes: u64) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::Config::new().path(path).cache_capacity(cache_bytes).open() {
            Err(e) if super::error::lock_held(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            other => return Ok(other?),
        }
    }
}
