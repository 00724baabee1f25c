//! Persistent storage for apps: host directories bound into every
//! container of an app (`storage:mount APP /host:/container`), kept in the
//! app's metadata so they survive redeploys. Host paths must lie under
//! `$BERTH_ROOT/storage` or a root listed in `[storage] allowed_roots`,
//! unless the admin forces it.

use std::path::{Component, Path, PathBuf};

use crate::model::container::BindMount;

/// Where `storage:ensure-directory NAME` makes directories.
pub fn storage_dir(root: &Path) -> PathBuf {
    root.join("storage")
}

/// The uid and gid app processes run as: ensure-directory hands them the directory.
pub const APP_UID: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0:?} is not HOST:CONTAINER[:ro] with two absolute paths")]
    BadSpec(String),
    #[error("{0:?} must be an absolute path without '..', ':' or ','")]
    BadPath(String),
    #[error("host path {0} does not exist; create it (storage:ensure-directory NAME makes one)")]
    Missing(PathBuf),
    #[error("host path {path} is outside the allowed roots ({allowed}); use --force as the admin if you mean it")]
    NotAllowed { path: PathBuf, allowed: String },
    #[error("container path {0} is reserved by berth")]
    Reserved(String),
    #[error("{0:?} is not a storage name (a-z, 0-9, '.', '_', '-', at most 64)")]
    BadName(String),
    #[error(transparent)]
    Io(#[from] crate::state::PathIo),
}

fn clean_absolute(text: &str) -> Result<(), StorageError> {
    let path = Path::new(text);
    let ok = path.is_absolute()
        && !text.contains([':', ',', '\n', '\0'])
        && path.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && path != Path::new("/");
    if ok { Ok(()) } else { Err(StorageError::BadPath(text.to_owned())) }
}

/// Parses `HOST:CONTAINER[:ro]`, checking both paths.
pub fn parse(spec: &str) -> Result<BindMount, StorageError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, readonly) = match parts.as_slice() {
        [h, c] => (*h, *c, false),
        [h, c, "ro"] => (*h, *c, true),
        [h, c, "rw"] => (*h, *c, false),
        _ => return Err(StorageError::BadSpec(spec.to_owned())),
    };
    clean_absolute(host)?;
    attach(PathBuf::from(host), container, readonly)
}

/// A mount of `host` at `container`, once the container path is checked.
pub fn attach(host: PathBuf, container: &str, readonly: bool) -> Result<BindMount, StorageError> {
    clean_absolute(container)?;
    // What berth itself puts there must stay berth's.
    let reserved = ["/app", "/proc", "/dev", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/tmp"];
    if reserved.iter().any(|r| container == *r || (*r != "/app" && container.starts_with(&format!("{r}/")))) {
        return Err(StorageError::Reserved(container.to_owned()));
    }
    Ok(BindMount { source: host, destination: container.to_owned(), readonly })
}

/// Refuses host paths that do not exist or lie outside the allowed roots
/// (symlinks resolved, so a link cannot lead out).
pub fn check_host(root: &Path, source: &Path, allowed_roots: &[String], force: bool) -> Result<(), StorageError> {
    let real = source.canonicalize().map_err(|_| StorageError::Missing(source.to_owned()))?;
    if force {
        return Ok(());
    }
    let mut allowed: Vec<PathBuf> = vec![storage_dir(root)];
    allowed.extend(allowed_roots.iter().map(PathBuf::from));
    let inside = allowed.iter().any(|a| a.canonicalize().is_ok_and(|a| real.starts_with(&a) && real != a));
    if inside {
        Ok(())
    } else {
        let shown: Vec<String> = allowed.iter().map(|a| a.display().to_string()).collect();
        Err(StorageError::NotAllowed { path: real, allowed: shown.join(", ") })
    }
}

/// A directory `storage:ensure-directory` made becomes the app's when it is
/// mounted, so the app's own uid can write it; other host paths keep their owner.
pub fn hand_to_app(root: &Path, source: &Path, uid: u32) -> Result<(), StorageError> {
    let berth_made = source.parent() == Some(storage_dir(root).as_path());
    let is_dir = std::fs::symlink_metadata(source).is_ok_and(|m| m.is_dir());
    if berth_made && is_dir {
        std::os::unix::fs::lchown(source, Some(uid), Some(uid)).map_err(|source_err| {
            StorageError::Io(crate::state::PathIo { action: "chown", path: source.to_owned(), source: source_err })
        })?;
    }
    Ok(())
}

/// `$BERTH_ROOT/storage/NAME`, created if needed and owned by the stack's app user.
pub fn ensure_directory(root: &Path, name: &str) -> Result<PathBuf, StorageError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if !ok {
        return Err(StorageError::BadName(name.to_owned()));
    }
    let dir = storage_dir(root).join(name);
    std::fs::create_dir_all(&dir)
        .map_err(|source| StorageError::Io(crate::state::PathIo { action: "create", path: dir.clone(), source }))?;
    std::os::unix::fs::chown(&dir, Some(APP_UID), Some(APP_UID))
        .map_err(|source| StorageError::Io(crate::state::PathIo { action: "chown", path: dir.clone(), source }))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let m = parse("/var/lib/berth/storage/db:/data:ro").unwrap();
        assert_eq!((m.destination.as_str(), m.readonly), ("/data", true));
        for bad in ["relative:/data", "/a:data", "/a/../b:/data", "/a:/data:rx", "/a:/", "/a:/proc/x", "/a:/app", "/a", "/a:/b:/c:ro"] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
        assert!(parse("/a:/app/uploads").is_ok());
    }

    #[test]
    fn host_paths_stay_under_the_allowed_roots() {
        let root = tempfile::tempdir().unwrap();
        let inside = ensure_directory(root.path(), "db").unwrap();
        let ok = parse(&format!("{}:/data", inside.display())).unwrap();
        assert!(check_host(root.path(), &ok.source, &[], false).is_ok());
        let outside = parse("/etc:/data").unwrap();
        assert!(check_host(root.path(), &outside.source, &[], false).is_err());
        assert!(check_host(root.path(), &outside.source, &[], true).is_ok());
        std::os::unix::fs::symlink("/etc", inside.join("link")).unwrap();
        let sneaky = parse(&format!("{}/link:/data", inside.display())).unwrap();
        assert!(check_host(root.path(), &sneaky.source, &[], false).is_err(), "a symlink out is outside");
        assert!(ensure_directory(root.path(), "../x").is_err());
    }
}
