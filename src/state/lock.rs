//! Advisory file locks (flock, through std's File::lock): one writer of an app's state at a time.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} went away while waiting for its lock")]
    Gone { path: PathBuf },
    /// Someone else holds it (only from the non-blocking attempt).
    #[error("the lock is held by another process")]
    Busy,
}

/// An exclusive flock, released when dropped (the kernel drops it with the fd).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the lock on `path` is held. The file is created if
    /// missing. Fails with `Gone` when the file was renamed or removed while
    /// we waited (an app renamed or destroyed under us), so a waiter never
    /// writes into a directory that is no longer the app's.
    pub fn acquire(path: &Path) -> Result<FileLock, LockError> {
        Self::acquire_mode(path, Mode::Exclusive)
    }

    /// Like `acquire`, but calls `on_wait` first when someone else holds it.
    pub fn acquire_noting_wait(path: &Path, on_wait: impl FnOnce()) -> Result<FileLock, LockError> {
        match Self::acquire_mode(path, Mode::ExclusiveNow) {
            Err(LockError::Busy) => {
                on_wait();
                Self::acquire(path)
            }
            other => other,
        }
    }

    /// The lock if nobody holds it, else `Busy` at once.
    pub fn try_acquire(path: &Path) -> Result<FileLock, LockError> {
        Self::acquire_mode(path, Mode::ExclusiveNow)
    }

    /// A shared lock: many holders at once, none while someone holds it exclusively.
    pub fn acquire_shared(path: &Path) -> Result<FileLock, LockError> {
        Self::acquire_mode(path, Mode::Shared)
    }

    fn acquire_mode(path: &Path, mode: Mode) -> Result<FileLock, LockError> {
        let io_err = |source| LockError::Io { path: path.to_owned(), source };
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(io_err)?;
        match mode {
            Mode::Exclusive => file.lock().map_err(io_err)?,
            Mode::Shared => file.lock_shared().map_err(io_err)?,
            Mode::ExclusiveNow => match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Err(LockError::Busy),
                Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
            },
        }
        let held = file.metadata().map_err(io_err)?;
        match std::fs::metadata(path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => Ok(FileLock { _file: file }),
            _ => Err(LockError::Gone { path: path.to_owned() }),
        }
    }
}

/// How a lock is taken.
#[derive(Clone, Copy)]
enum Mode {
    Exclusive,
    /// Exclusive, or `Busy` at once if someone holds it.
    ExclusiveNow,
    Shared,
}
