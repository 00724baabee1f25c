//! Advisory file locks (flock): one writer of an app's state at a time.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
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
        Self::acquire_mode(path, libc::LOCK_EX)
    }

    /// Like `acquire`, but calls `on_wait` first when someone else holds it.
    pub fn acquire_noting_wait(path: &Path, on_wait: impl FnOnce()) -> Result<FileLock, LockError> {
        match Self::acquire_mode(path, libc::LOCK_EX | libc::LOCK_NB) {
            Err(LockError::Io { source, .. }) if source.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                on_wait();
                Self::acquire(path)
            }
            other => other,
        }
    }

    /// A shared lock: many holders at once, none while someone holds it exclusively.
    pub fn acquire_shared(path: &Path) -> Result<FileLock, LockError> {
        Self::acquire_mode(path, libc::LOCK_SH)
    }

    fn acquire_mode(path: &Path, mode: libc::c_int) -> Result<FileLock, LockError> {
        let io_err = |source| LockError::Io { path: path.to_owned(), source };
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(io_err)?;
        flock(&file, mode).map_err(io_err)?;
        let held = file.metadata().map_err(io_err)?;
        match std::fs::metadata(path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => Ok(FileLock { _file: file }),
            _ => Err(LockError::Gone { path: path.to_owned() }),
        }
    }
}

#[allow(unsafe_code)]
fn flock(file: &File, mode: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a valid, owned fd has no memory effects.
        let rc = unsafe { libc::flock(file.as_raw_fd(), mode) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
