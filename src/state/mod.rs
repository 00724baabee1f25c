//! Host state under `$BERTH_ROOT`: atomic files, locks, apps and their config vars.

pub mod apps;
pub mod atomic;
pub mod challenges;
pub mod config;
pub mod grants;
pub mod lock;
pub mod releases;
pub mod settings;
pub mod storage;

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
