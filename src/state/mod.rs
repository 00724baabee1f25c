//! Host state under `$BERTH_ROOT`: atomic files, locks, apps and their config vars.

pub mod apps;
pub mod atomic;
pub mod challenges;
pub mod config;
pub mod events;
pub mod grants;
pub mod lock;
pub mod plugins;
pub mod releases;
pub mod settings;
pub mod storage;
pub mod storage_entries;
pub mod triggers;

use std::path::PathBuf;

/// `$BERTH_ROOT`, default `/var/lib/berth`.
pub fn root_from_env() -> PathBuf {
    std::env::var_os("BERTH_ROOT").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/berth"))
}

/// A file-system call on a path that failed: the one I/O error every
/// module's error enum carries (`Io(#[from] PathIo)`).
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}: {source}")]
pub struct PathIo {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Reads a state file of at most `cap` bytes, never through a symlink
/// (state lives under root-owned directories, but a file app code could
/// have planted is still not followed).
pub fn read_capped(path: &std::path::Path, cap: u64) -> Result<Vec<u8>, PathIo> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| PathIo { action: "read", path: path.to_owned(), source };
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > cap {
        return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("larger than {cap} bytes"))));
    }
    Ok(bytes)
}
