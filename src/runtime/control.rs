//! Starting, stopping, signalling and removing containers: what the CLI
//! (and later deploys) call. The shim does the watching; this talks to it.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::store::{ContainerConfig, ContainerDir, ContainerState, ContainerStoreError, Status};
use super::{ContainerId, launch, network, rootfs, shim};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Store(#[from] ContainerStoreError),
    #[error("container {0} is already running")]
    Running(ContainerId),
    #[error("container {0} is running; stop it first or use --force")]
    StillRunning(ContainerId),
    /// What the shim, another process, said.
    #[error("container {id} did not start: {why}")]
    StartFailed { id: ContainerId, why: String },
    #[error("container {id} did not start: {source}")]
    Shim {
        id: ContainerId,
        #[source]
        source: Box<super::error::ShimError>,
    },
    #[error("cannot run the shim: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the shim of container {0} did not stop in time")]
    StopTimeout(ContainerId),
    #[error("container {id}'s process {pid} outlived its stop; kill it with containers:kill {id} KILL")]
    Outlived { id: ContainerId, pid: i32 },
    #[error("cannot remove {path}: {source}")]
    Remove {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is not a signal name like SIGTERM or HUP")]
    BadSignal(String),
}

/// Whether the process with this pid exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

/// The state with a dead shim accounted for: a container whose shim is
/// gone is not running, whatever the file last said.
pub fn current_state(paths: &ContainerDir) -> Result<ContainerState, ContainerStoreError> {
    let mut state = paths.state()?;
    if state.shim_pid.is_some_and(|p| !alive(p)) {
        state.status = Status::Exited;
        state.error.get_or_insert_with(|| "its shim died".into());
        state.shim_pid = None;
        state.pid = None;
    }
    Ok(state)
}

pub fn create(root: &Path, config: &ContainerConfig) -> Result<ContainerDir, ControlError> {
    Ok(ContainerDir::create(root, config)?)
}

/// Creates and starts a container; one that cannot start is removed again.
pub fn create_and_start(root: &Path, config: &ContainerConfig) -> Result<i32, ControlError> {
    create(root, config)?;
    start(root, &config.id).inspect_err(|_| {
        let _ = remove(root, &config.id, true);
    })
}

/// Starts the container's shim and waits for its first start. Returns the
/// container init's pid. The shim detaches: this process may exit at once.
pub fn start(root: &Path, id: &ContainerId) -> Result<i32, ControlError> {
    // Begun here, the wait for the cgroup lock overlaps the shim's own start.
    let warm_up = super::cgroup::warm_up_joins();
    let paths = ContainerDir::open(root, id)?;
    if current_state(&paths)?.shim_pid.is_some() {
        return Err(ControlError::Running(id.clone()));
    }
    // Started again by hand, a container serves only once a deploy admits it.
    let _ = super::balancer::withdraw(root, id);
    let exe = std::env::current_exe().map_err(ControlError::Spawn)?;
    let mut command = Command::new(exe);
    command.args(["shim", id.as_str()]).env("BERTH_ROOT", root).stdin(Stdio::null()).stdout(Stdio::piped());
    // With logging on, the shim's events (and libcontainer's, which run in
    // it) come to our stderr until the container runs.
    match crate::logging::filter() {
        Some(filter) => command.env("BERTH_LOG", filter).stderr(Stdio::inherit()),
        None => command.env_remove("BERTH_LOG").stderr(Stdio::null()),
    };
    tracing::info!(container = %id, "starting the container's shim");
    let mut child = command.spawn().map_err(ControlError::Spawn)?;
    let mut line = String::new();
    let read = std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line);
    let _ = child.wait();
    warm_up.wait();
    let line = line.trim_end();
    match (read, line.strip_prefix(shim::READY_PREFIX).and_then(|p| p.parse().ok())) {
        (Ok(_), Some(pid)) => Ok(pid),
        _ => {
            let why = line.strip_prefix("error: ").unwrap_or(if line.is_empty() { "the shim exited without a word" } else { line });
            Err(ControlError::StartFailed { id: id.clone(), why: why.to_owned() })
        }
    }
}

/// Starts again a container whose monitor died under it (a reboot, a kill)
/// when its restart policy asks for that; one stopped on purpose, ended
/// for good, or still watched is left alone. Returns the new init's pid.
pub fn revive(root: &Path, id: &ContainerId) -> Result<Option<i32>, ControlError> {
    let paths = ContainerDir::open(root, id)?;
    let config = paths.config()?;
    let state = paths.state()?;
    let orphaned = state.shim_pid.is_some_and(|p| !alive(p));
    if !orphaned || config.restart == super::RestartPolicy::No {
        return Ok(None);
    }
    clean_up(root, &paths, state)?;
    start(root, id).map(Some)
}

/// Asks the shim to stop the container (SIGTERM, stop timeout, SIGKILL)
/// and waits until it is gone. A container whose shim died is cleaned up here.
pub fn stop(root: &Path, id: &ContainerId) -> Result<(), ControlError> {
    tracing::info!(container = %id, "stopping");
    let paths = ContainerDir::open(root, id)?;
    let config = paths.config()?;
    let state = paths.state()?;
    match state.shim_pid.filter(|p| alive(*p)) {
        Some(shim) => {
            let _ = kill(Pid::from_raw(shim), Signal::SIGTERM);
            // Bounded whatever a config file says: no overflow, no endless wait.
            let grace = config.stop_timeout_secs.min(3600).saturating_add(10);
            let deadline = Instant::now() + Duration::from_secs(grace);
            while alive(shim) {
                if Instant::now() > deadline {
                    return Err(ControlError::StopTimeout(id.clone()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        None => clean_up(root, &paths, state.clone())?,
    }
    // The monitor is gone; its process must be too, or the stop did not happen.
    if let Some(pid) = state.pid.filter(|p| alive(*p) && !is_zombie(*p)) {
        return Err(ControlError::Outlived { id: id.clone(), pid });
    }
    Ok(())
}

/// A process that exited and waits for its parent to reap it.
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// What a shim would have released, done by hand: after the shim was killed.
fn clean_up(root: &Path, paths: &ContainerDir, mut state: ContainerState) -> Result<(), ControlError> {
    let _ = launch::kill(root, &paths.id, "SIGKILL");
    let _ = launch::delete(root, &paths.id);
    let _ = rootfs::unmount(paths);
    let _ = network::detach(root, &paths.id);
    state.status = Status::Exited;
    state.shim_pid = None;
    state.pid = None;
    paths.write_state(&state)?;
    Ok(())
}

/// Sends a signal to the container's init (`SIGHUP`, `HUP`, `1`).
pub fn signal(root: &Path, id: &ContainerId, name: &str) -> Result<(), ControlError> {
    let paths = ContainerDir::open(root, id)?;
    let signal = parse_signal(name)?;
    let state = current_state(&paths)?;
    match state.pid {
        Some(pid) if state.status == Status::Running => {
            kill(Pid::from_raw(pid), signal).map_err(|e| ControlError::Spawn(e.into()))?;
            Ok(())
        }
        _ => Err(ControlError::StartFailed { id: id.clone(), why: "it is not running".into() }),
    }
}

fn parse_signal(name: &str) -> Result<Signal, ControlError> {
    if let Ok(n) = name.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| ControlError::BadSignal(name.to_owned()));
    }
    let full = if name.starts_with("SIG") { name.to_owned() } else { format!("SIG{name}") };
    full.parse::<Signal>().map_err(|_| ControlError::BadSignal(name.to_owned()))
}

/// Removes the container and everything it held: processes, cgroup,
/// mounts, network namespace, veth, address, files.
pub fn remove(root: &Path, id: &ContainerId, force: bool) -> Result<(), ControlError> {
    let paths = ContainerDir::open(root, id)?;
    let state = current_state(&paths)?;
    if state.shim_pid.is_some() {
        if !force {
            return Err(ControlError::StillRunning(id.clone()));
        }
        if let Some(shim) = state.shim_pid {
            let _ = kill(Pid::from_raw(shim), Signal::SIGKILL);
        }
    }
    clean_up(root, &paths, state)?;
    std::fs::remove_dir_all(&paths.dir).map_err(|source| ControlError::Remove { path: paths.dir.clone(), source })?;
    let _ = network::release(root, id);
    // Its address may go to another container: no rule may still name it.
    if let Err(e) = super::firewall::sync(root) {
        tracing::warn!(error = %e, "the service firewall was not brought up to date");
    }
    Ok(())
}
