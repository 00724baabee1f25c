//! Reading what a build left behind, as root, without being led astray.
//! Everything under the build's `/app`, `/cache` and output directory was
//! written by code berth did not write: any name there may be a symlink to
//! a host file, a FIFO that never ends, or gigabytes. These helpers walk a
//! relative path one real directory at a time (no symlink anywhere on the
//! way), open the last name with O_NOFOLLOW, and read regular files only,
//! up to a cap. They run after the sandbox has exited, so nothing inside it
//! can swap a name between the check and the open.

use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfinedError {
    #[error("the build's {name} is not a plain file (a symlink, a directory or a device); berth does not read it")]
    NotPlain { name: String },
    #[error("the build's {name} is over {cap} bytes")]
    TooBig { name: String, cap: u64 },
    #[error("cannot read the build's {name}: {source}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// Where a walk beneath a directory ends.
enum Walk {
    /// Every directory on the way is real; the last name may or may not exist.
    Reached(PathBuf),
    /// A directory on the way does not exist.
    Missing,
    /// A symlink or a file on the way, or a name that climbs out.
    Blocked,
}

fn walk(base: &Path, rel: &Path) -> Walk {
    let parts: Vec<_> = rel.components().collect();
    if parts.is_empty() || !parts.iter().all(|c| matches!(c, Component::Normal(_))) {
        return Walk::Blocked;
    }
    let mut path = base.to_path_buf();
    for part in &parts[..parts.len() - 1] {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return Walk::Blocked,
            Err(_) => return Walk::Missing,
        }
    }
    path.push(parts[parts.len() - 1]);
    Walk::Reached(path)
}

/// `base/rel` when every directory on the way is a real directory (not a
/// symlink) and `rel` stays beneath `base`.
pub fn beneath(base: &Path, rel: &Path) -> Option<PathBuf> {
    match walk(base, rel) {
        Walk::Reached(path) => Some(path),
        Walk::Missing | Walk::Blocked => None,
    }
}

/// Whether `base/rel` is a real directory reached through real directories.
pub fn is_real_dir(base: &Path, rel: &Path) -> bool {
    beneath(base, rel).is_some_and(|p| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir()))
}

/// The bytes of the regular file `base/rel`, at most `cap`; None when
/// nothing is there at all.
pub fn read(base: &Path, rel: impl AsRef<Path>, cap: u64) -> Result<Option<Vec<u8>>, ConfinedError> {
    let name = rel.as_ref().display().to_string();
    let path = match walk(base, rel.as_ref()) {
        Walk::Reached(path) => path,
        Walk::Missing => return Ok(None),
        Walk::Blocked => return Err(ConfinedError::NotPlain { name }),
    };
    let file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(ConfinedError::NotPlain { name }),
        Err(source) => return Err(ConfinedError::Io { name, source }),
    };
    let meta = file.metadata().map_err(|source| ConfinedError::Io { name: name.clone(), source })?;
    if !meta.file_type().is_file() {
        return Err(ConfinedError::NotPlain { name });
    }
    if meta.len() > cap {
        return Err(ConfinedError::TooBig { name, cap });
    }
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes).map_err(|source| ConfinedError::Io { name: name.clone(), source })?;
    if bytes.len() as u64 > cap {
        return Err(ConfinedError::TooBig { name, cap });
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_files_and_refuses_symlinks_devices_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        fs::write(base.join("Procfile"), "web: x\n").unwrap();
        assert_eq!(read(base, "Procfile", 100).unwrap().unwrap(), b"web: x\n");
        assert!(read(base, "missing", 100).unwrap().is_none());
        assert!(read(base, "nodir/missing", 100).unwrap().is_none());
        std::os::unix::fs::symlink("/etc/passwd", base.join("link")).unwrap();
        assert!(matches!(read(base, "link", 100), Err(ConfinedError::NotPlain { .. })));
        std::os::unix::fs::symlink("/etc", base.join("etc")).unwrap();
        assert!(matches!(read(base, "etc/passwd", 10000), Err(ConfinedError::NotPlain { .. })));
        assert!(matches!(read(base, "Procfile", 3), Err(ConfinedError::TooBig { .. })));
        fs::create_dir(base.join("d")).unwrap();
        assert!(matches!(read(base, "d", 100), Err(ConfinedError::NotPlain { .. })));
        assert!(read(base, "../x", 100).is_err());
        assert!(is_real_dir(base, Path::new("d")) && !is_real_dir(base, Path::new("etc")));
    }
}
