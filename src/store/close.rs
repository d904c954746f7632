//! A clean stop: the queue's copy for the next start, sled's recovery
//! snapshot, and compaction of a sparse main store.

use std::sync::Arc;

use super::compact::{self, Compacted};
use super::layout::{META_QUEUE_AT_STOP_V2, QUEUE_ENTRY};
use super::open::open_sled;
use super::{Result, Store, StoreError};
use crate::run::RunStatus;

impl Store {
    /// Closes the store, then opens and closes its main database once
    /// more, so that the next start is fast: sled 0.34 writes its recovery
    /// snapshot only when it opens a database, and a start otherwise
    /// replays all the log written since the previous start (most of a
    /// second after a busy day, see tests/bench.sh). While it is open, a
    /// main store whose file is mostly free space is compacted (see
    /// compact.rs). Waits up to `wait` for other handles to go (the writer
    /// thread holds the store while it answers a batch), and is refused
    /// unless `store` is then the last one.
    pub fn close_with_snapshot(store: Arc<Store>, wait: std::time::Duration) -> Result<Option<Compacted>> {
        let began = std::time::Instant::now();
        while Arc::strong_count(&store) > 1 && began.elapsed() < wait {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let store =
            Arc::try_unwrap(store).map_err(|_| StoreError::Unavailable("still in use elsewhere".into()))?;
        // Nothing changes the queue from here on: its copy for the next
        // start is exact.
        let mut copy = Vec::with_capacity(store.counts.get(RunStatus::Queued) as usize * QUEUE_ENTRY);
        for item in store.queue.iter() {
            let (k, v) = item?;
            // A value is 8 bytes and a target id; one that would not fit
            // its length leaves no copy, and the next start reads the tree.
            let Ok(len) = u16::try_from(v.len()) else {
                copy.clear();
                break;
            };
            copy.extend_from_slice(&k);
            copy.extend_from_slice(&len.to_be_bytes());
            copy.extend_from_slice(&v);
        }
        if !copy.is_empty() {
            store.meta.insert(META_QUEUE_AT_STOP_V2, copy)?;
        }
        store.db.flush()?;
        let (data_dir, cache) = (store.path.clone(), store.cache_bytes);
        drop(store);
        let db = open_sled(&compact::main_dir(&data_dir)?, cache)?;
        let compacted = compact::compact_if_sparse(&data_dir, &db, compact::SPARSE, cache)?;
        drop(db);
        if compacted.is_some() {
            // Held while the old store's files go, so that no second synqc
            // can start on this data dir in the meantime.
            let _fresh = open_sled(&compact::main_dir(&data_dir)?, cache)?;
            compact::remove_leftovers(&data_dir)?;
        }
        Ok(compacted)
    }
}
