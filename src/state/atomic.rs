//! Atomic state writes: a crash leaves either the old or the new file, never half.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// A temp path next to `path` (same directory, so rename stays on one
/// filesystem), unique within this host for this process.
pub fn temp_path_for(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Writes `bytes` to a temp file, fsyncs it, renames it over `path` and
/// fsyncs the directory so the rename itself survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_with_mode(path, bytes, 0o644)
}

/// `write_atomic` whose temp file has `mode` from its first byte on.
fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| WriteError { path: path.to_owned(), source };
    let tmp = temp_path_for(path);
    let result = (|| {
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Writes a secret (a key, credentials, config vars, a release that copies
/// them) atomically as a root-only file in a root-only directory, which is
/// made if missing. The file is never readable by others, not even as a temp file.
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |at: &Path| {
        let at = at.to_owned();
        move |source| WriteError { path: at, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(err(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err(dir))?;
    write_with_mode(path, bytes, 0o600)?;
    // An older file renamed over keeps nothing: the new inode is 0600 already;
    // this only matters under an umask that took bits away.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(err(path))
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
