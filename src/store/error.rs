//! What the store fails with.

use super::SCHEMA_VERSION;

#[derive(Clone, Debug, PartialEq)]
pub enum StoreError {
    /// The disk or sled failed (full disk, I/O error, corruption).
    Io(String),
    /// The store was written by a newer synqc.
    TooNew { found: u64 },
    /// Another process holds the store's lock.
    InUse,
    /// Writes are refused until a restart (see [`Store::refuse_writes`]).
    WritesRefused,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "store I/O error: {e}"),
            StoreError::InUse => write!(
                f,
                "the data directory is in use by another synqc process; stop that process, \
                 or give this one its own --data-dir"
            ),
            StoreError::WritesRefused => write!(
                f,
                "the store refuses writes since a write to its disk failed; \
                 free space on the data directory's disk and restart synqc"
            ),
            StoreError::TooNew { found } => write!(
                f,
                "the store has schema version {found}, newer than this synqc supports ({SCHEMA_VERSION}); \
                 run the newer synqc or restore a backup"
            ),
        }
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            // sled reports a held file lock only in its message (0.34).
            sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock") => StoreError::InUse,
            e => StoreError::Io(e.to_string()),
        }
    }
}

pub(super) type Result<T> = std::result::Result<T, StoreError>;
