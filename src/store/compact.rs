//! Compacting the main store at a clean stop.
//!
//! Why: sled 0.34 never shrinks its file below its last live segment, and
//! at every open it rewrites each free 512 KiB segment under that end.
//! After a backlog of 120,000 runs had passed through, the main store's
//! file stayed at 1.3 GB, and every later start took 0.2-1.1 s although
//! every run had moved to the archive. So when a clean stop finds the file
//! mostly free, it copies the live trees into a fresh database in a new
//! directory and switches to it.
//!
//! Layout: a data dir without a `CURRENT` file keeps the main store at its
//! top, as every store did before; with one, in the `main-N` directory it
//! names. The copy is built in `main-N.tmp`, flushed, renamed to `main-N`,
//! and only then named by `CURRENT` (written aside and renamed into
//! place), so a crash at any point leaves exactly one complete main store
//! in use; what the crash left behind is removed at the next open.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::{open_sled, Result, StoreError};

const CURRENT: &str = "CURRENT";

/// The files and directory of a sled 0.34 database, for removing the
/// main store a compaction left at the top of the data dir.
fn is_sled_file(name: &str) -> bool {
    matches!(name, "db" | "conf" | "blobs") || name.starts_with("snap.")
}

/// The generation of a `main-N` or `main-N.tmp` directory name.
fn generation(name: &str) -> Option<u64> {
    name.strip_prefix("main-")?.trim_end_matches(".tmp").parse().ok()
}

/// When a main store is worth compacting.
#[derive(Clone, Copy)]
pub(super) struct Sparse {
    /// Files smaller than this open fast enough as they are.
    pub(super) min_file: u64,
    /// Copy at most this much live data (key and value bytes), so that the
    /// stop stays short; and only when it is under a quarter of the file.
    pub(super) max_live: u64,
}

pub(super) const SPARSE: Sparse = Sparse {
    min_file: 64 << 20,
    max_live: 64 << 20,
};

/// The directory of the main store in `data_dir` (created if missing).
pub(super) fn main_dir(data_dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(data_dir).map_err(at(data_dir))?;
    Ok(match current(data_dir)? {
        None => data_dir.to_path_buf(),
        Some(name) => data_dir.join(name),
    })
}

/// The generation `CURRENT` names, if there is one; refused when it names
/// no store, rather than guessed.
fn current(data_dir: &Path) -> Result<Option<String>> {
    let file = data_dir.join(CURRENT);
    let name = match fs::read_to_string(&file) {
        Ok(name) => name.trim().to_string(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(at(&file)(e)),
    };
    if generation(&name).is_none() || name.ends_with(".tmp") || !data_dir.join(&name).join("db").is_file() {
        return Err(StoreError::Corrupt(format!(
            "{} names {name:?}, which holds no store; refusing to guess",
            file.display()
        )));
    }
    Ok(Some(name))
}

/// Removes what a compaction left in `data_dir`: a copy never switched to,
/// or the store it replaced. Called only while the main store is open
/// here, whose lock keeps a second synqc from using the data dir.
pub(super) fn remove_leftovers(data_dir: &Path) -> Result<()> {
    let current = current(data_dir)?;
    for entry in fs::read_dir(data_dir).map_err(at(data_dir))? {
        let entry = entry.map_err(at(data_dir))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let stale = if generation(&name).is_some() {
            Some(&name) != current.as_ref()
        } else if name == format!("{CURRENT}.tmp") {
            true
        } else {
            // The top-level store is stale only once CURRENT names another.
            current.is_some() && is_sled_file(&name)
        };
        if stale {
            let path = entry.path();
            if entry.file_type().map_err(at(&path))?.is_dir() {
                fs::remove_dir_all(&path).map_err(at(&path))?;
            } else {
                fs::remove_file(&path).map_err(at(&path))?;
            }
            log::info!("removed {} (left by a compaction)", path.display());
        }
    }
    Ok(())
}

/// What a compaction did: the main store's file size before and after.
#[derive(Debug, PartialEq)]
pub struct Compacted {
    pub before: u64,
    pub after: u64,
}

/// Copies the main store `db` (in `data_dir`) into a fresh database and
/// switches to it, when its file is at least `sparse.min_file` and its
/// live data at most `sparse.max_live` and a quarter of the file.
/// [`remove_leftovers`] then removes the old store. The copy gets a page
/// cache of `cache_bytes`, like the store it replaces.
pub(super) fn compact_if_sparse(
    data_dir: &Path,
    db: &sled::Db,
    sparse: Sparse,
    cache_bytes: u64,
) -> Result<Option<Compacted>> {
    let before = db.size_on_disk()?;
    if before < sparse.min_file {
        return Ok(None);
    }
    let limit = sparse.max_live.min(before / 4);
    let mut live = 0u64;
    for name in db.tree_names() {
        for item in db.open_tree(&name)?.iter() {
            let (k, v) = item?;
            live += (k.len() + v.len()) as u64;
            if live > limit {
                return Ok(None);
            }
        }
    }
    let next = fs::read_dir(data_dir)
        .map_err(at(data_dir))?
        .filter_map(|e| generation(e.ok()?.file_name().to_str()?))
        .max()
        .unwrap_or(0)
        + 1;
    let tmp = data_dir.join(format!("main-{next}.tmp"));
    {
        let fresh = open_sled(&tmp, cache_bytes)?;
        for name in db.tree_names() {
            // One batch per tree: the live data is at most `max_live`.
            let mut batch = sled::Batch::default();
            for item in db.open_tree(&name)?.iter() {
                let (k, v) = item?;
                batch.insert(k, v);
            }
            fresh.open_tree(&name)?.apply_batch(batch)?;
        }
        fresh.flush()?;
    }
    // Opened once more, the copy writes its snapshot, like any store
    // closed cleanly, so the next start has no log to replay.
    let after = open_sled(&tmp, cache_bytes)?.size_on_disk()?;
    let dir = data_dir.join(format!("main-{next}"));
    fs::rename(&tmp, &dir).map_err(at(&dir))?;
    sync_dir(data_dir)?;
    let aside = data_dir.join(format!("{CURRENT}.tmp"));
    fs::File::create(&aside)
        .and_then(|mut f| {
            f.write_all(format!("main-{next}\n").as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&aside, data_dir.join(CURRENT)))
        .map_err(at(&aside))?;
    sync_dir(data_dir)?;
    Ok(Some(Compacted { before, after }))
}

/// Makes the renames in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
}

/// An I/O error, with the path it concerns.
fn at(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::io(path.display().to_string(), e)
}
