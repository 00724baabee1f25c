//! A container's files under `$BERTH_ROOT/containers/<id>/`: what to run
//! (`container.json`, written once) and how it is doing (`state.json`,
//! written by its shim), both written atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ContainerId, NetworkMode};
pub use crate::model::container::{BindMount, Limits, RestartPolicy, parse_size};
use crate::state::atomic::{self, WriteError};

#[derive(Debug, thiserror::Error)]
pub enum ContainerStoreError {
    #[error("container {0} does not exist")]
    NotFound(ContainerId),
    #[error("container {0} already exists")]
    Exists(ContainerId),
    #[error(transparent)]
    Io(#[from] crate::state::PathIo),
    #[error("{path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// What to run: written once by `containers:create`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: ContainerId,
    /// Name used in log lines (`web.1`); the id when not given.
    pub name: String,
    pub image: String,
    pub image_digest: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub network: NetworkMode,
    pub limits: Limits,
    pub restart: RestartPolicy,
    pub stop_timeout_secs: u64,
    pub labels: BTreeMap<String, String>,
    pub created_at: String,
    #[serde(default)]
    pub mounts: Vec<BindMount>,
    /// The image's files are read only (build sandboxes): only mounts and /tmp take writes.
    #[serde(default)]
    pub readonly_root: bool,
    /// The init gets a terminal of its own (one-off `run` from a terminal).
    #[serde(default)]
    pub terminal: bool,
    /// Where the log rotates (`logs:set APP max-size`; 0: never); unset:
    /// the host's `[logs] max_bytes`.
    #[serde(default)]
    pub log_max_bytes: Option<u64>,
    /// On the bridge, only containers of the apps on its allow list
    /// (`containers:allow`) may open connections to it: a backing service.
    #[serde(default)]
    pub isolated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    /// Exited and waiting out its backoff before the next start.
    Restarting,
    /// Ended for good: stopped, or the restart policy gave up.
    Exited,
}

/// How it is doing: written by its shim.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    pub shim_pid: Option<i32>,
    pub pid: Option<i32>,
    pub address: Option<String>,
    pub restarts: u32,
    pub last_exit_code: Option<i32>,
    pub oom_kills: u32,
    pub started_at: Option<String>,
    pub error: Option<String>,
}

/// Paths of one container.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    pub id: ContainerId,
    pub dir: PathBuf,
    /// The berth root's scope tag (see `runtime::scope`).
    pub scope: String,
}

pub fn containers_dir(root: &Path) -> PathBuf {
    root.join("containers")
}

impl ContainerDir {
    pub fn new(root: &Path, id: &ContainerId) -> ContainerDir {
        ContainerDir { id: id.clone(), dir: containers_dir(root).join(id.as_str()), scope: super::scope(root) }
    }

    pub fn config_file(&self) -> PathBuf {
        self.dir.join("container.json")
    }
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("container.log")
    }
    pub fn etc_dir(&self) -> PathBuf {
        self.dir.join("etc")
    }
    /// The apps an isolated container admits (`containers:allow`).
    pub fn allowed_file(&self) -> PathBuf {
        self.dir.join("allowed.json")
    }

    /// The apps allowed to connect; none when the file is missing.
    pub fn allowed(&self) -> Result<BTreeSet<String>, ContainerStoreError> {
        match self.allowed_file().exists() {
            true => Self::read_json(&self.allowed_file()),
            false => Ok(BTreeSet::new()),
        }
    }

    pub fn write_allowed(&self, apps: &BTreeSet<String>) -> Result<(), ContainerStoreError> {
        Ok(atomic::write_atomic(&self.allowed_file(), &serde_json::to_vec_pretty(apps).expect("a set serialises"))?)
    }

    pub fn exists(&self) -> bool {
        self.config_file().is_file()
    }

    /// Creates the directory with its config; refuses an id already in use.
    pub fn create(root: &Path, config: &ContainerConfig) -> Result<ContainerDir, ContainerStoreError> {
        let paths = ContainerDir::new(root, &config.id);
        let parent = containers_dir(root);
        fs::create_dir_all(&parent)
            .map_err(|source| ContainerStoreError::Io(crate::state::PathIo { action: "create", path: parent.clone(), source }))?;
        match fs::create_dir(&paths.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(ContainerStoreError::Exists(config.id.clone())),
            Err(source) => return Err(ContainerStoreError::Io(crate::state::PathIo { action: "create", path: paths.dir.clone(), source })),
        }
        for dir in [paths.upper(), paths.work(), paths.rootfs(), paths.etc_dir()] {
            fs::create_dir_all(&dir)
                .map_err(|source| ContainerStoreError::Io(crate::state::PathIo { action: "create", path: dir.clone(), source }))?;
        }
        paths.write_state(&ContainerState::default())?;
        atomic::write_secret(&paths.config_file(), &serde_json::to_vec_pretty(config).expect("config serialises"))?;
        Ok(paths)
    }

    pub fn open(root: &Path, id: &ContainerId) -> Result<ContainerDir, ContainerStoreError> {
        let paths = ContainerDir::new(root, id);
        if paths.exists() { Ok(paths) } else { Err(ContainerStoreError::NotFound(id.clone())) }
    }

    fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ContainerStoreError> {
        let bytes = fs::read(path)
            .map_err(|source| ContainerStoreError::Io(crate::state::PathIo { action: "read", path: path.to_owned(), source }))?;
        serde_json::from_slice(&bytes).map_err(|source| ContainerStoreError::Corrupt { path: path.to_owned(), source })
    }

    pub fn config(&self) -> Result<ContainerConfig, ContainerStoreError> {
        Self::read_json(&self.config_file())
    }

    pub fn state(&self) -> Result<ContainerState, ContainerStoreError> {
        Self::read_json(&self.state_file())
    }

    pub fn write_state(&self, state: &ContainerState) -> Result<(), ContainerStoreError> {
        Ok(atomic::write_atomic(&self.state_file(), &serde_json::to_vec_pretty(state).expect("state serialises"))?)
    }
}

/// Every container id on this host, sorted.
pub fn list(root: &Path) -> Vec<ContainerId> {
    let mut ids: Vec<ContainerId> = fs::read_dir(containers_dir(root))
        .map(|entries| entries.flatten().filter_map(|e| ContainerId::parse(&e.file_name().to_string_lossy()).ok()).collect())
        .unwrap_or_default();
    ids.retain(|id| ContainerDir::new(root, id).exists());
    ids.sort();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert_eq!("on-failure:3".parse::<RestartPolicy>().unwrap(), RestartPolicy::OnFailure { max_retries: 3 });
        assert_eq!("unless-stopped".parse::<RestartPolicy>().unwrap(), RestartPolicy::Always);
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        let p = RestartPolicy::OnFailure { max_retries: 2 };
        assert!(p.restarts(1, 1) && !p.restarts(1, 2) && !p.restarts(0, 0));
        assert!(RestartPolicy::Always.restarts(0, 100));
        assert!(!RestartPolicy::No.restarts(1, 0));
    }
}
