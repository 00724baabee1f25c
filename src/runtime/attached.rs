//! One-off containers attached to the caller (`berth run`): the init uses
//! the caller's stdin, stdout and stderr, or, when the caller sits at a
//! terminal, a pty of its own inside the container whose master berth
//! relays to the caller's terminal in raw mode. The caller gets the init's
//! exit code; a hangup or interrupt of berth itself ends the container.
//! Everything the container held goes when it ends.

use std::fs::File;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::control::ControlError;
use super::error::ShimError;
use super::store::{ContainerConfig, ContainerDir};
use super::{launch, shim};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn note_interrupt(_: i32) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether berth's stdin and stdout are a terminal (`ssh -t`, a shell).
pub fn at_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Creates, runs and removes the container; returns its exit code.
/// `config.terminal` chooses between a pty and the caller's own stdio.
pub fn run(root: &Path, config: &ContainerConfig) -> Result<i32, ControlError> {
    let paths = ContainerDir::create(root, config)?;
    let result = run_created(root, &paths, config);
    shim::release(root, &paths);
    let _ = super::network::release(root, &config.id);
    let _ = std::fs::remove_dir_all(&paths.dir);
    result
}

fn run_created(root: &Path, paths: &ContainerDir, config: &ContainerConfig) -> Result<i32, ControlError> {
    let failed = |source| ControlError::Shim { id: config.id.clone(), source: Box::new(source) };
    shim::prepare(root, paths, config).map_err(failed)?;
    let _ = launch::delete(root, &paths.id);
    attach(
        config.terminal,
        &console_socket_path(paths),
        |io| Ok(launch::start(root, &paths.id, &paths.bundle(), io)?),
        || {
            let _ = launch::kill(root, &paths.id, "SIGKILL");
        },
    )
    .map_err(failed)
}

/// Runs `args` inside the running container `id` (its namespaces, cgroup,
/// user, capabilities and seccomp profile), attached; returns its exit code.
pub fn exec(root: &Path, id: &super::ContainerId, args: Vec<String>, terminal: bool) -> Result<i32, ControlError> {
    let paths = ContainerDir::open(root, id)?;
    let failed = |source| ControlError::Shim { id: id.clone(), source: Box::new(source) };
    let spec_file = paths.bundle().join("config.json");
    let spec = oci_spec::runtime::Spec::load(&spec_file).map_err(|source| failed(ShimError::Spec { path: spec_file.clone(), source }))?;
    let mut process = spec.process().clone().ok_or_else(|| failed(ShimError::NoProcess))?;
    process.set_args(Some(args)).set_terminal(Some(terminal));
    let process_file = paths.dir.join(format!("exec-{}.json", std::process::id()));
    let text = serde_json::to_vec(&process).expect("a process serialises");
    std::fs::write(&process_file, text)
        .map_err(|source| failed(ShimError::File(crate::state::PathIo { action: "write", path: process_file.clone(), source })))?;
    let pid = std::cell::Cell::new(0);
    let result = attach(
        terminal,
        &console_socket_path(&paths),
        |io| {
            let started = launch::exec(root, id, &process_file, io).map_err(ShimError::from);
            if let Ok(p) = started {
                pid.set(p);
            }
            started
        },
        || {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid.get()), Signal::SIGKILL);
        },
    );
    let _ = std::fs::remove_file(&process_file);
    result.map_err(failed)
}

/// Starts a process through `start` connected to the caller: the caller's
/// stdio, or with `terminal` a pty relayed to the caller's terminal. Waits
/// for it; `kill` ends it when berth is interrupted.
fn attach(
    terminal: bool,
    socket: &Path,
    start: impl FnOnce(launch::Io) -> Result<i32, ShimError>,
    kill: impl Fn(),
) -> Result<i32, ShimError> {
    catch_interrupts();
    let dup = |fd: RawFd| nix::unistd::dup(fd).map(unsafe_free_owned).map_err(ShimError::nix("pass stdio"));
    let (stdin, stdout, stderr) = (dup(0)?, dup(1)?, dup(2)?);
    if !terminal {
        let pid = start(launch::Io { stdin, stdout, stderr, console_socket: None })?;
        return Ok(wait(pid, &kill));
    }
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)
        .map_err(|source| ShimError::File(crate::state::PathIo { action: "listen on", path: socket.to_owned(), source }))?;
    let started = start(launch::Io { stdin, stdout, stderr, console_socket: Some(socket.to_owned()) });
    let pid = match started {
        Ok(pid) => pid,
        Err(e) => {
            let _ = std::fs::remove_file(socket);
            return Err(e);
        }
    };
    let master = receive_pty_master(&listener);
    let _ = std::fs::remove_file(socket);
    let master = match master {
        Ok(master) => master,
        Err(e) => {
            kill();
            wait(pid, &kill);
            return Err(e);
        }
    };
    copy_window_size(&master);
    let saved = raw_mode();
    let output = relay(master);
    let code = wait(pid, &kill);
    // The pty closes when the last process holding it is gone.
    let _ = output.join();
    if let Some(saved) = saved {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &saved);
    }
    Ok(code)
}

/// A short, root-only path for the console socket (unix socket paths are
/// limited to 108 bytes; container directories can be longer).
fn console_socket_path(paths: &ContainerDir) -> PathBuf {
    let dir = PathBuf::from("/run/berth");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    dir.join(format!("console-{}-{}.sock", paths.scope, std::process::id()))
}

#[allow(unsafe_code)]
fn unsafe_free_owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by dup(2) and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[allow(unsafe_code)]
fn catch_interrupts() {
    let action = SigAction::new(SigHandler::Handler(note_interrupt), SaFlags::empty(), SigSet::empty());
    for signal in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

/// Takes the pty master libcontainer's init sends over the console socket.
fn receive_pty_master(listener: &UnixListener) -> Result<OwnedFd, ShimError> {
    listener.set_nonblocking(true).map_err(ShimError::sys("poll the console socket"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(ShimError::NoTerminal(e.to_string())),
        }
    };
    stream.set_nonblocking(false).map_err(ShimError::sys("read the console socket"))?;
    let mut name = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message =
        recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).map_err(ShimError::nix("receive the terminal"))?;
    for cmsg in message.cmsgs().map_err(ShimError::nix("read the terminal message"))? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(fd) = fds.first()
        {
            return Ok(unsafe_free_owned(*fd));
        }
    }
    Err(ShimError::NoTerminal("the container sent none".into()))
}

/// The caller's terminal in raw mode (keys go to the container as typed);
/// returns the settings to put back.
fn raw_mode() -> Option<Termios> {
    let saved = tcgetattr(std::io::stdin()).ok()?;
    let mut raw = saved.clone();
    cfmakeraw(&mut raw);
    tcsetattr(std::io::stdin(), SetArg::TCSANOW, &raw).ok()?;
    Some(saved)
}

#[allow(unsafe_code)]
fn copy_window_size(master: &OwnedFd) {
    let mut size: libc::winsize = libc::winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into `size`; TIOCSWINSZ reads one.
    unsafe {
        if libc::ioctl(1, libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size);
        }
    }
}

/// Relays the pty both ways: keys in (a thread that ends with berth),
/// output out (returned: it ends when the container's pty closes).
fn relay(master: OwnedFd) -> std::thread::JoinHandle<()> {
    let mut to_container = File::from(master.try_clone().expect("dup of the pty master"));
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || to_container.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
    let mut from_container = File::from(master);
    std::thread::spawn(move || {
        let mut stdout = std::io::stdout();
        let mut buf = [0u8; 4096];
        // EIO: the last holder of the pty's other side has gone.
        while let Ok(n) = from_container.read(&mut buf) {
            if n == 0 || stdout.write_all(&buf[..n]).and_then(|_| stdout.flush()).is_err() {
                return;
            }
        }
    })
}

/// Waits for the process; a hangup or interrupt of berth kills it.
fn wait(pid: i32, kill: &dyn Fn()) -> i32 {
    let mut killed = false;
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, signal, _)) => return 128 + signal as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return 255,
        }
        if INTERRUPTED.load(Ordering::SeqCst) && !killed {
            killed = true;
            kill();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
