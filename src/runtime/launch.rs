//! The calls into youki's libcontainer: create and start a container whose
//! init is our child, signal it, delete it (cgroup and state included).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;

use super::ContainerId;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("libcontainer could not {action} container {id}: {source}")]
    Libcontainer {
        action: &'static str,
        id: ContainerId,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    #[error("container {0} started without a pid")]
    NoPid(ContainerId),
}

/// Where libcontainer keeps its own state for this berth root.
pub fn state_root(berth_root: &Path) -> PathBuf {
    berth_root.join("run")
}

/// What the container's init is connected to.
pub struct Io {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// For a container with a terminal: the unix socket its pty master is
    /// sent to (the stdio fds are then unused).
    pub console_socket: Option<PathBuf>,
}

impl Io {
    /// Output to these two pipe ends, stdin from /dev/null.
    pub fn pipes(stdout: OwnedFd, stderr: OwnedFd) -> std::io::Result<Io> {
        let stdin = OwnedFd::from(std::fs::File::open("/dev/null")?);
        Ok(Io { stdin, stdout, stderr, console_socket: None })
    }
}

/// Creates and starts the container from its bundle; returns the init's pid.
pub fn start(berth_root: &Path, id: &ContainerId, bundle: &Path, io: Io) -> Result<i32, LaunchError> {
    tracing::debug!(container = %id, bundle = %bundle.display(), "libcontainer: create and start");
    let err = |action| move |source| LaunchError::Libcontainer { action, id: id.clone(), source: Box::new(source) };
    let state = state_root(berth_root);
    std::fs::create_dir_all(&state).map_err(|e| err("prepare state for")(libcontainer::error::LibcontainerError::OtherIO(e)))?;
    let mut container = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(state)
        .map_err(err("configure"))?
        .with_console_socket(io.console_socket)
        .with_stdin(io.stdin)
        .with_stdout(io.stdout)
        .with_stderr(io.stderr)
        .as_init(bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(err("create"))?;
    container.start().map_err(err("start"))?;
    container.pid().map(|p| p.as_raw()).ok_or_else(|| LaunchError::NoPid(id.clone()))
}

/// Starts the process described by `process_file` (an OCI process JSON)
/// inside the running container; returns its pid.
pub fn exec(berth_root: &Path, id: &ContainerId, process_file: &Path, io: Io) -> Result<i32, LaunchError> {
    let err = |action| move |source| LaunchError::Libcontainer { action, id: id.clone(), source: Box::new(source) };
    let detach = io.console_socket.is_some();
    let pid = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(state_root(berth_root))
        .map_err(err("configure"))?
        .with_console_socket(io.console_socket)
        .with_stdin(io.stdin)
        .with_stdout(io.stdout)
        .with_stderr(io.stderr)
        .as_tenant()
        .with_process(Some(process_file))
        .with_detach(detach)
        .build()
        .map_err(err("exec in"))?;
    Ok(pid.as_raw())
}

fn load(berth_root: &Path, id: &ContainerId) -> Option<Container> {
    let dir = state_root(berth_root).join(id.as_str());
    if dir.exists() { Container::load(dir).ok() } else { None }
}

/// Sends `signal` to every process of the container, if it exists.
pub fn kill(berth_root: &Path, id: &ContainerId, signal: &str) -> Result<(), LaunchError> {
    let Some(mut container) = load(berth_root, id) else { return Ok(()) };
    let signal = Signal::try_from(signal).unwrap_or(Signal::try_from("SIGKILL").expect("SIGKILL exists"));
    if container.can_kill() {
        container.kill(signal, true).map_err(|source| LaunchError::Libcontainer {
            action: "signal",
            id: id.clone(),
            source: Box::new(source),
        })?;
    }
    Ok(())
}

/// Deletes the container's libcontainer state and cgroup, killing what is
/// left. Safe to call when nothing exists.
pub fn delete(berth_root: &Path, id: &ContainerId) -> Result<(), LaunchError> {
    tracing::debug!(container = %id, "libcontainer: delete");
    let Some(mut container) = load(berth_root, id) else { return Ok(()) };
    container.delete(true).map_err(|source| LaunchError::Libcontainer { action: "delete", id: id.clone(), source: Box::new(source) })
}
