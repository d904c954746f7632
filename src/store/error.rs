//! What the store fails with.

use std::sync::Arc;

use super::SCHEMA_VERSION;

/// Clone, because the writer answers one batch's error to every caller in
/// the batch: the sources are shared behind an `Arc` (sled's own `Clone`
/// rebuilds an I/O error from its text, losing its kind and source).
#[derive(Clone, Debug)]
pub enum StoreError {
    /// sled failed: a log write or flush (full disk, I/O error), a read,
    /// corruption it found.
    Sled(Arc<sled::Error>),
    /// A file of the store outside sled failed (backup, restore,
    /// compaction's renames); `context` says which and where.
    Io {
        context: String,
        source: Arc<std::io::Error>,
    },
    /// Data the store reads breaks its own rules: a damaged backup, a
    /// `CURRENT` that names no store.
    Corrupt(String),
    /// The store cannot do what was asked in the state it is in: its
    /// writer stopped or gave no answer, a cancel did not settle in time,
    /// a restore into a used directory.
    Unavailable(String),
    /// The store was written by a newer synqc.
    TooNew { found: u64 },
    /// Another process holds the store's lock.
    InUse,
    /// Writes are refused until a restart (see [`Store::refuse_writes`]).
    ///
    /// [`Store::refuse_writes`]: super::Store::refuse_writes
    WritesRefused,
}

impl StoreError {
    /// An I/O error of a file the store handles itself, with what was
    /// being done (and to which path).
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Sled(e) => write!(f, "store I/O error: {e}"),
            StoreError::Io { context, source } => write!(f, "store I/O error: {context}: {source}"),
            StoreError::Corrupt(why) => write!(f, "corrupt data: {why}"),
            StoreError::Unavailable(why) => write!(f, "store error: {why}"),
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

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Sled(e) => Some(e.as_ref()),
            StoreError::Io { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// Equal when of the same kind and saying the same: I/O errors have no
/// equality of their own (the tests compare answers with `assert_eq!`).
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (StoreError::Sled(a), StoreError::Sled(b)) => a == b,
            (
                StoreError::Io {
                    context: a,
                    source: x,
                },
                StoreError::Io {
                    context: b,
                    source: y,
                },
            ) => a == b && x.kind() == y.kind() && x.to_string() == y.to_string(),
            (StoreError::Corrupt(a), StoreError::Corrupt(b)) => a == b,
            (StoreError::Unavailable(a), StoreError::Unavailable(b)) => a == b,
            (StoreError::TooNew { found: a }, StoreError::TooNew { found: b }) => a == b,
            (StoreError::InUse, StoreError::InUse) => true,
            (StoreError::WritesRefused, StoreError::WritesRefused) => true,
            _ => false,
        }
    }
}

/// Whether sled failed to open because another handle holds its file
/// lock: sled 0.34 says so only in the message of an `ErrorKind::Other`.
pub(super) fn lock_held(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::Other
        && io.to_string().starts_with("could not acquire lock"))
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        if lock_held(&e) {
            StoreError::InUse
        } else {
            StoreError::Sled(Arc::new(e))
        }
    }
}

pub(super) type Result<T> = std::result::Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::io::{Error as IoError, ErrorKind};

    #[test]
    fn a_sled_io_error_keeps_its_source_through_a_clone() {
        let full = sled::Error::Io(IoError::from_raw_os_error(28));
        let e = StoreError::from(full);
        let copy = e.clone();
        let io = copy
            .source()
            .and_then(|s| s.downcast_ref::<sled::Error>())
            .and_then(|s| match s {
                sled::Error::Io(io) => Some(io),
                _ => None,
            })
            .expect("the sled error and its I/O error");
        assert_eq!(io.raw_os_error(), Some(28), "the errno, not a copy of its text");
        assert!(copy.to_string().starts_with("store I/O error: "), "{copy}");
    }

    #[test]
    fn a_file_error_says_what_and_where_and_keeps_its_kind() {
        let e = StoreError::io(
            "/data/CURRENT",
            IoError::new(ErrorKind::PermissionDenied, "denied"),
        );
        assert_eq!(e.to_string(), "store I/O error: /data/CURRENT: denied");
        let source = e
            .source()
            .and_then(|s| s.downcast_ref::<IoError>())
            .expect("source");
        assert_eq!(source.kind(), ErrorKind::PermissionDenied);
    }

    #[test]
    fn only_a_held_lock_is_in_use() {
        let held = sled::Error::Io(IoError::other("could not acquire lock on \"db\": busy"));
        assert!(lock_held(&held));
        assert_eq!(StoreError::from(held), StoreError::InUse);
        let other = sled::Error::Io(IoError::other("the block device is gone"));
        assert!(!lock_held(&other));
        assert!(matches!(StoreError::from(other), StoreError::Sled(_)));
    }
}
