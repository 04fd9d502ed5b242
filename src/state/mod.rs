//! The data directory (`state.data_dir`): its locks, its one error type, crash-safe writes and
//! the append-only journal. Usage and the context store keep their files through this module.
//!
//! This is the seam where shared state lives: everything above it asks for "the journal", "a
//! durable document" or "the shared Redis" ([`redis::Redis`]), never for a path or a socket.

mod files;
mod journal;
pub mod redis;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use files::{remove_durably, write_durably};
#[cfg(test)]
pub use journal::MAX_SEQ_GAP;
pub use journal::{Journal, Line, read_lines};

/// Why the data directory (or a file in it) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state.data_dir: cannot use {path}: {cause}")]
    Io {
        path: PathBuf,
        /// Shown in the message, so not a `source` the error chain would print again.
        cause: std::io::Error,
    },
    #[error("state.data_dir: {path} is in use by another running gateway")]
    Locked { path: PathBuf },
    #[error("state.data_dir: {path} is not {what}: {cause}")]
    Corrupt {
        path: PathBuf,
        /// What the file should have held ("a usage snapshot", "a context document").
        what: &'static str,
        /// Shown in the message, so not a `source` the error chain would print again.
        cause: serde_json::Error,
    },
}

/// Maps an I/O error on `path` into a [`StateError`].
pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.to_owned();
    move |cause| StateError::Io { path, cause }
}

/// Creates `dir` if needed and takes its lock file `name`, held for as long as the returned file
/// lives: two gateways writing one directory would each overwrite the other's view.
pub fn claim(dir: &Path, name: &str) -> Result<File, StateError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(name);
    let lock = File::create(&path).map_err(io(&path))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(StateError::Locked {
            path: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io(&path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lock_is_held_by_one_owner_at_a_time() {
        let dir = std::env::temp_dir().join(format!("switchboard-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = claim(&dir, "x.lock").unwrap();
        assert!(matches!(
            claim(&dir, "x.lock"),
            Err(StateError::Locked { .. })
        ));
        assert!(claim(&dir, "y.lock").is_ok(), "locks are per name");
        drop(first);
        assert!(claim(&dir, "x.lock").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
