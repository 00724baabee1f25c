//! `berth shim ID`: the monitor of one container. It detaches from the CLI
//! (fork, setsid, fork), becomes a child subreaper, prepares the root and
//! the network, launches the container so its init is our child, writes its
//! output to the log, records exits and OOM kills, restarts it by policy
//! with exponential backoff, and on SIGTERM stops it: SIGTERM to the init,
//! the stop timeout, then SIGKILL to everything left. When it ends for good
//! it unmounts the root and frees the network.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, setsid};

use super::error::ShimError;
use super::logs::{self, LogWriter, Sink};
use super::store::{ContainerConfig, ContainerDir, ContainerState, Status};
use super::{ContainerId, cgroup, launch, network, rootfs, spec};
use crate::image::unpack;
use crate::image::{Digest, Store};
use crate::state::settings::Settings;

/// The first line the monitor writes to the CLI: `started <pid>` or `error: <why>`.
pub const READY_PREFIX: &str = "started ";

/// Entry point of the internal `shim` command. Returns the exit code of
/// the process the CLI waits for (the first fork's parent).
#[allow(unsafe_code)]
pub fn main(root: &Path, id: &ContainerId) -> i32 {
    // SAFETY: the shim has just been exec'd and has one thread, so fork is sound.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => return 0,
        Ok(ForkResult::Child) => {}
        Err(e) => {
            println!("error: cannot fork the shim: {e}");
            return 1;
        }
    }
    let _ = setsid();
    // SAFETY: still one thread in this process.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(ForkResult::Child) => {}
        Err(e) => {
            println!("error: cannot fork the shim: {e}");
            std::process::exit(1);
        }
    }
    let code = match Monitor::new(root, id) {
        Ok(mut monitor) => {
            let code = monitor.run();
            monitor.finish_log();
            code
        }
        Err(why) => {
            ready(&format!("error: {why}"), None);
            1
        }
    };
    std::process::exit(code)
}

/// Tells the waiting CLI how the first start went, then lets go of its
/// pipe and its stderr. With logging on, the shim's later events (stderr)
/// go to the container's log instead.
fn ready(line: &str, log: Option<&Path>) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
        let events = log.filter(|_| crate::logging::filter().is_some()).and_then(|p| File::options().append(true).open(p).ok());
        let _ = nix::unistd::dup2(events.as_ref().unwrap_or(&null).as_raw_fd(), 2);
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ShimError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ShimError::nix("make a pipe"))
}

struct Monitor {
    root: PathBuf,
    paths: ContainerDir,
    config: ContainerConfig,
    state: ContainerState,
    /// `None` only once the monitor is done and the log is being flushed.
    log: Option<Sink>,
    log_writer: Option<logs::Writer>,
    /// Readable when SIGCHLD arrived.
    child_signals: File,
    /// Readable when SIGTERM or SIGINT arrived.
    stop_signals: File,
    stopping: Option<Instant>,
}

impl Monitor {
    fn new(root: &Path, id: &ContainerId) -> Result<Monitor, ShimError> {
        let paths = ContainerDir::open(root, id)?;
        let config = paths.config()?;
        // PR_SET_CHILD_SUBREAPER: orphans of the container come to us, not to pid 1.
        set_subreaper().map_err(ShimError::sys("become a subreaper"))?;
        let max_bytes = Settings::load(root).map(|s| s.logs.rotation_bytes(config.log_max_bytes)).unwrap_or(logs::MAX_LOG_BYTES);
        let log_file = paths.log_file();
        let log = LogWriter::open(&log_file, max_bytes)
            .map_err(|source| ShimError::File(crate::state::PathIo { action: "open", path: log_file, source }))?;
        let (child_r, child_w) = pipe()?;
        let (stop_r, stop_w) = pipe()?;
        for (signal, fd) in [(libc::SIGCHLD, &child_w), (libc::SIGTERM, &stop_w), (libc::SIGINT, &stop_w)] {
            let copy = fd.try_clone().map_err(ShimError::sys("copy a pipe"))?;
            signal_hook::low_level::pipe::register(signal, File::from(copy)).map_err(ShimError::sys("watch signals"))?;
        }
        for fd in [&child_r, &stop_r] {
            nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
                .map_err(ShimError::nix("make a pipe non-blocking"))?;
        }
        let state = ContainerState { shim_pid: Some(std::process::id() as i32), ..paths.state().unwrap_or_default() };
        let (sink, log_writer) = Sink::start(log);
        Ok(Monitor {
            root: root.to_owned(),
            paths,
            config,
            state,
            log: Some(sink),
            log_writer: Some(log_writer),
            child_signals: File::from(child_r),
            stop_signals: File::from(stop_r),
            stopping: None,
        })
    }

    /// Lets the log writer put every queued line on disk before we exit.
    fn finish_log(&mut self) {
        self.log = None;
        if let Some(writer) = self.log_writer.take() {
            writer.finish(Duration::from_secs(5));
        }
    }

    /// Records the state; a container behind a vip then joins or leaves
    /// its set as its process runs or not.
    fn save(&self) {
        let _ = self.paths.write_state(&self.state);
        if super::balancer::serving(&self.root, &self.config.id).is_some()
            && let Err(e) = super::balancer::sync(&self.root)
        {
            self.note(&format!("cannot update the routes to this container: {e}"));
        }
    }

    fn note(&self, text: &str) {
        if let Some(log) = &self.log {
            log.line("berth", "shim", text.as_bytes());
        }
    }

    /// Root, network and bundle: made once, kept across restarts.
    fn prepare(&mut self) -> Result<(), ShimError> {
        self.state.address = prepare(&self.root, &self.paths, &self.config)?;
        Ok(())
    }

    fn release(&self) {
        release(&self.root, &self.paths);
    }

    fn start_once(&mut self) -> Result<i32, ShimError> {
        let (pid, out_r, err_r) = start_once(&self.root, &self.paths)?;
        if let Some(log) = &self.log {
            logs::pump(out_r, log.clone(), self.config.name.clone(), "stdout");
            logs::pump(err_r, log.clone(), self.config.name.clone(), "stderr");
        }
        Ok(pid)
    }

    fn run(&mut self) -> i32 {
        // The state file keeps the reason as text for `containers:list`.
        // (The CLI that started us began the cgroup lock's warm-up.)
        if let Err(why) = self.prepare().map_err(|e| e.to_string()) {
            self.release();
            self.state = ContainerState { status: Status::Exited, error: Some(why.clone()), ..self.state.clone() };
            self.state.shim_pid = None;
            self.save();
            ready(&format!("error: {why}"), None);
            return 1;
        }
        let mut first = true;
        loop {
            let pid = match self.start_once().map_err(|e| e.to_string()) {
                Ok(pid) => pid,
                Err(why) if first => {
                    self.release();
                    self.state = ContainerState { status: Status::Exited, error: Some(why.clone()), shim_pid: None, ..self.state.clone() };
                    self.save();
                    ready(&format!("error: {why}"), None);
                    return 1;
                }
                Err(why) => {
                    self.note(&format!("restart failed: {why}"));
                    self.state.error = Some(why);
                    break;
                }
            };
            self.state.status = Status::Running;
            self.state.pid = Some(pid);
            self.state.error = None;
            self.state.started_at = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            self.save();
            if first {
                tracing::info!(container = %self.config.id, pid, "the container runs");
                ready(&format!("{READY_PREFIX}{pid}"), Some(&self.paths.log_file()));
                super::trim::release_executable_pages();
                first = false;
            }
            let code = self.wait_for(pid);
            let cgroup = spec::cgroup_path(&self.paths);
            if cgroup::oom_kills(&cgroup) > 0 {
                self.state.oom_kills += 1;
                self.note("the process was killed for running out of memory (OOM)");
            }
            let _ = launch::delete(&self.root, &self.config.id);
            self.state.pid = None;
            self.state.last_exit_code = Some(code);
            self.note(&format!("process exited with code {code}"));
            if self.stopping.is_some() || !self.config.restart.restarts(code, self.state.restarts) {
                break;
            }
            self.state.restarts += 1;
            self.state.status = Status::Restarting;
            self.save();
            // 100 ms, 200 ms, 400 ms ... at most 30 s between attempts.
            let backoff = Duration::from_millis(100u64.saturating_mul(1 << (self.state.restarts - 1).min(9))).min(Duration::from_secs(30));
            self.note(&format!("restarting in {} ms (restart {})", backoff.as_millis(), self.state.restarts));
            if self.sleep_unless_stopped(backoff) {
                break;
            }
        }
        self.release();
        self.state.status = Status::Exited;
        self.state.shim_pid = None;
        self.save();
        0
    }

    /// Sleeps, returning early (true) if asked to stop.
    fn sleep_unless_stopped(&mut self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if self.poll(Some(left)).1 {
                self.stopping = Some(Instant::now());
                return true;
            }
            self.reap_others(None);
        }
        false
    }

    /// Waits until `signals` are readable or `timeout`; returns (child, stop).
    fn poll(&mut self, timeout: Option<Duration>) -> (bool, bool) {
        let ms = timeout.map(|t| t.as_millis().min(i32::MAX as u128) as i32).unwrap_or(-1);
        let mut fds =
            [PollFd::new(self.child_signals.as_fd(), PollFlags::POLLIN), PollFd::new(self.stop_signals.as_fd(), PollFlags::POLLIN)];
        let _ = nix::poll::poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::NONE));
        let readable = |fd: &PollFd| fd.revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
        let (child, stop) = (readable(&fds[0]), readable(&fds[1]));
        let mut sink = [0u8; 64];
        if child {
            let _ = self.child_signals.read(&mut sink);
        }
        if stop {
            let _ = self.stop_signals.read(&mut sink);
        }
        (child, stop)
    }

    /// Reaps exited children; returns the exit code if `init` was among them.
    fn reap_others(&mut self, init: Option<i32>) -> Option<i32> {
        let mut init_code = None;
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if Some(pid.as_raw()) == init => init_code = Some(code),
                Ok(WaitStatus::Signaled(pid, signal, _)) if Some(pid.as_raw()) == init => init_code = Some(128 + signal as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => return init_code,
                Ok(_) => {}
            }
        }
    }

    /// Waits for the init to exit, handling stop requests meanwhile.
    fn wait_for(&mut self, pid: i32) -> i32 {
        loop {
            if let Some(code) = self.reap_others(Some(pid)) {
                return code;
            }
            let timeout = match self.stopping {
                Some(since) => {
                    let deadline = since + Duration::from_secs(self.config.stop_timeout_secs);
                    match deadline.checked_duration_since(Instant::now()) {
                        Some(left) => left.min(Duration::from_secs(1)),
                        None => {
                            self.note("stop timeout reached; sending SIGKILL");
                            let _ = launch::kill(&self.root, &self.config.id, "SIGKILL");
                            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                            Duration::from_secs(1)
                        }
                    }
                }
                None => Duration::from_secs(1),
            };
            let (_, stop) = self.poll(Some(timeout));
            if stop && self.stopping.is_none() {
                self.stopping = Some(Instant::now());
                self.note("stopping: sending SIGTERM");
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
    }
}

/// Unpacks the image, makes the network, /etc files and overlay root, and
/// writes the bundle. Returns the container's address when bridged.
pub fn prepare(root: &Path, paths: &ContainerDir, config: &ContainerConfig) -> Result<Option<String>, ShimError> {
    let settings = Settings::load(root)?;
    let store = Store::open(root)?;
    let digest: Digest = config.image_digest.parse()?;
    let image = store.image_by_digest(&digest)?;
    let mut layers = Vec::new();
    for layer in image.layers()? {
        layers.push(unpack::unpacked(root, &store, &layer)?);
    }
    let address = network::attach(root, &settings, &config.id, config.network)?.map(|a| a.to_string());
    if address.is_some() {
        guard(root, config)?;
    }
    rootfs::write_etc(paths, config.id.as_str(), address.as_deref())?;
    rootfs::mount(paths, &layers)?;
    let spec = spec::build(config, paths);
    // The spec holds the app's config vars: root's eyes only.
    let spec_file = paths.bundle().join("config.json");
    spec.save(&spec_file).map_err(|source| ShimError::Spec { path: spec_file.clone(), source })?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&spec_file, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| ShimError::File(crate::state::PathIo { action: "protect", path: spec_file.clone(), source }))?;
    Ok(address)
}

/// Lets the new address through to the services its app is linked to.
/// Fails closed: an address handed on from a container that was allowed
/// somewhere must be judged again before its new holder runs. Only a host
/// without nft (where no rule can exist) goes on without.
fn guard(root: &Path, config: &ContainerConfig) -> Result<(), ShimError> {
    match super::firewall::sync(root) {
        Err(super::firewall::FirewallError::Nft(super::nft::NftError::Spawn(e)))
            if e.kind() == std::io::ErrorKind::NotFound && !config.isolated =>
        {
            tracing::warn!(error = %e, "no nft here: services cannot be isolated");
            Ok(())
        }
        result => Ok(result?),
    }
}

/// Undoes `prepare` and deletes the libcontainer container; safe to repeat.
pub fn release(root: &Path, paths: &ContainerDir) {
    let _ = launch::delete(root, &paths.id);
    let _ = rootfs::unmount(paths);
    let _ = network::detach(root, &paths.id);
}

/// Launches the prepared container; returns its init pid and the read ends
/// of its stdout and stderr.
pub fn start_once(root: &Path, paths: &ContainerDir) -> Result<(i32, File, File), ShimError> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // A previous run's leftovers (a crash between start and delete) would make "exists".
    let _ = launch::delete(root, &paths.id);
    let io = launch::Io::pipes(out_w, err_w).map_err(ShimError::sys("open /dev/null"))?;
    let pid = launch::start(root, &paths.id, &paths.bundle(), io)?;
    Ok((pid, File::from(out_r), File::from(err_r)))
}

/// Orphans inside the container are reparented to the shim, which reaps them.
fn set_subreaper() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)
}
