//! What preparing, launching and attaching to a container can fail with:
//! the shim's, `run`'s and `enter`'s one error type, so a failure keeps its
//! cause instead of a string.

use std::io;
use std::path::PathBuf;

use super::firewall::FirewallError;
use super::launch::LaunchError;
use super::network::NetworkError;
use super::rootfs::RootfsError;
use super::store::ContainerStoreError;
use crate::image::digest::InvalidDigest;
use crate::image::store::StoreError;
use crate::image::unpack::UnpackError;
use crate::state::settings::SettingsError;

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// A system call of the monitor itself (pipes, signals, descriptors).
    #[error("cannot {action}: {source}")]
    Sys {
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    File(#[from] crate::state::PathIo),
    #[error("the container's spec {path} cannot be used: {source}")]
    Spec {
        path: PathBuf,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("the container's spec has no process")]
    NoProcess,
    #[error("the container's terminal never arrived: {0}")]
    NoTerminal(String),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Digest(#[from] InvalidDigest),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Container(#[from] ContainerStoreError),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
}

impl ShimError {
    /// `map_err` for a system call the monitor makes.
    pub fn sys(action: &'static str) -> impl FnOnce(io::Error) -> ShimError {
        move |source| ShimError::Sys { action, source }
    }

    /// `map_err` for a nix call the monitor makes.
    pub fn nix(action: &'static str) -> impl FnOnce(nix::Error) -> ShimError {
        move |e| ShimError::Sys { action, source: e.into() }
    }
}
