//! The container's root: the image's unpacked layers as read-only overlay
//! lowerdirs, with the container's own upper and work dirs on top. Writes
//! land in the upper dir only; the shared layers never change.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::store::ContainerDir;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("cannot mount the overlay root at {path}: {source}")]
    Mount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot unmount {path}: {source}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Whether `path` is a mount point, from /proc/self/mountinfo.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let wanted = path.to_string_lossy();
    info.lines().any(|line| line.split(' ').nth(4) == Some(&wanted))
}

/// Mounts the overlay; `layers` bottom first, as images list them.
pub fn mount(paths: &ContainerDir, layers: &[PathBuf]) -> Result<(), RootfsError> {
    tracing::debug!(container = %paths.id, layers = layers.len(), "mounting the overlay root");
    let target = paths.rootfs();
    if is_mounted(&target) {
        return Ok(());
    }
    // overlayfs lists the top layer first.
    let lower: Vec<String> = layers.iter().rev().map(|p| p.to_string_lossy().into_owned()).collect();
    let options = format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), paths.upper().display(), paths.work().display());
    nix::mount::mount(Some("overlay"), &target, Some("overlay"), MsFlags::empty(), Some(options.as_str()))
        .map_err(|source| RootfsError::Mount { path: target.clone(), source })
}

/// Unmounts the root if mounted (lazily, so a process still holding a file
/// there cannot keep the container from being cleaned up).
pub fn unmount(paths: &ContainerDir) -> Result<(), RootfsError> {
    let target = paths.rootfs();
    if !is_mounted(&target) {
        return Ok(());
    }
    nix::mount::umount2(&target, MntFlags::MNT_DETACH).map_err(|source| RootfsError::Unmount { path: target, source })
}

/// /etc/hosts, /etc/hostname and /etc/resolv.conf for the container, bound
/// over the image's own by the runtime spec.
pub fn write_etc(paths: &ContainerDir, hostname: &str, address: Option<&str>) -> Result<(), RootfsError> {
    let dir = paths.etc_dir();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| RootfsError::Write { path, source })
    };
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    hosts.push_str(&format!("{}\t{hostname}\n", address.unwrap_or("127.0.1.1")));
    write("hosts", hosts)?;
    write("hostname", format!("{hostname}\n"))?;
    // The host's resolvers, unless they only listen on the host's loopback,
    // which a container in its own network namespace cannot reach.
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let usable: Vec<&str> =
        host.lines().filter(|l| !(l.starts_with("nameserver") && (l.contains(" 127.") || l.contains(" ::1")))).collect();
    write("resolv.conf", usable.join("\n") + "\n")
}
