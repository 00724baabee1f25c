//! Running a container to completion, attached: its output goes to the
//! caller line by line as it comes, a wall-clock limit kills it, and
//! everything it held is released afterwards. Build sandboxes run this way.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::control::ControlError;
use super::store::{ContainerConfig, ContainerDir};
use super::{launch, shim};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug)]
pub struct Finished {
    pub exit_code: i32,
    /// The wall-clock limit was reached and the container was killed.
    pub timed_out: bool,
}

/// Creates, runs and removes a container. `on_line` sees every output line.
pub fn run(
    root: &Path,
    config: &ContainerConfig,
    limit: Option<Duration>,
    on_line: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Finished, ControlError> {
    let paths = ContainerDir::create(root, config)?;
    let result = run_created(root, &paths, config, limit, on_line);
    shim::release(root, &paths);
    let _ = super::network::release(root, &config.id);
    let _ = std::fs::remove_dir_all(&paths.dir);
    result
}

fn run_created(
    root: &Path,
    paths: &ContainerDir,
    config: &ContainerConfig,
    limit: Option<Duration>,
    on_line: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Finished, ControlError> {
    let failed = |source| ControlError::Shim { id: config.id.clone(), source: Box::new(source) };
    let warm_up = super::cgroup::warm_up_joins();
    let prepared = shim::prepare(root, paths, config);
    warm_up.wait();
    prepared.map_err(failed)?;
    let (pid, out, err) = shim::start_once(root, paths).map_err(failed)?;
    let (sender, lines) = mpsc::channel::<(Stream, Vec<u8>)>();
    for (pipe, stream) in [(out, Stream::Stdout), (err, Stream::Stderr)] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                let line = buf.strip_suffix(b"\n").unwrap_or(&buf).to_vec();
                if sender.send((stream, line)).is_err() {
                    return;
                }
                buf.clear();
            }
        });
    }
    drop(sender);
    let deadline = limit.map(|l| Instant::now() + l);
    let mut timed_out = false;
    loop {
        let wait = match deadline {
            Some(d) if !timed_out => d.saturating_duration_since(Instant::now()),
            _ => Duration::from_secs(3600),
        };
        match lines.recv_timeout(wait) {
            Ok((stream, line)) => on_line(stream, &line),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                let _ = launch::kill(root, &config.id, "SIGKILL");
            }
            // Both pipes closed: every process of the container is gone.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let exit_code = match waitpid(Pid::from_raw(pid), None) {
        Ok(WaitStatus::Exited(_, code)) => code,
        Ok(WaitStatus::Signaled(_, signal, _)) => 128 + signal as i32,
        _ => 255,
    };
    Ok(Finished { exit_code, timed_out })
}
