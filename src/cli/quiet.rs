//! `berth --quiet COMMAND`: Dokku's global flag. The `----->` and `=====>`
//! headers are dropped and everything else passes: stdout is a pipe that a
//! thread filters line by line into the real stdout, so every handler (and
//! any child that inherits stdout) is filtered alike.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::mpsc;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::unistd::{dup2, pipe2};

/// The filter while it runs; `finish` ends it.
pub struct Quiet {
    done: mpsc::Receiver<()>,
}

pub fn start() -> std::io::Result<Quiet> {
    let stdout = std::io::stdout();
    // Close-on-exec copies: only fd 1 itself reaches children.
    let real: OwnedFd = stdout.as_fd().try_clone_to_owned()?;
    let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
    dup2(write.as_raw_fd(), stdout.as_raw_fd())?;
    drop(write);
    let (tell, done) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = std::fs::File::from(real);
        for line in BufReader::new(std::fs::File::from(read)).split(b'\n').map_while(Result::ok) {
            if line.starts_with(b"----->") || line.starts_with(b"=====>") {
                continue;
            }
            let _ = out.write_all(&line);
            let _ = out.write_all(b"\n");
        }
        let _ = tell.send(());
    });
    Ok(Quiet { done })
}

impl Quiet {
    /// Closes berth's end of the pipe and waits until the filter has
    /// written the last line (not for ever: a container started meanwhile
    /// may hold the pipe open).
    pub fn finish(self) {
        let _ = std::io::stdout().flush();
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let _ = dup2(null.as_raw_fd(), std::io::stdout().as_raw_fd());
        }
        let _ = self.done.recv_timeout(Duration::from_secs(2));
    }
}
