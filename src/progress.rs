//! Progress of a long transfer: a bar with bytes and rate when stderr is a
//! terminal, nothing in between otherwise (callers print plain lines per
//! step, which is what logs and git clients want).

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    drawn: Option<Instant>,
    tty: bool,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Progress {
        Progress { label: label.to_owned(), total, done: 0, started: Instant::now(), drawn: None, tty: std::io::stderr().is_terminal() }
    }

    pub fn add(&mut self, bytes: u64) {
        self.done += bytes;
        // Redrawn at most ten times a second.
        if self.tty && self.drawn.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
            self.draw();
        }
    }

    /// Whether the bar shows (stderr is a terminal).
    pub fn on_terminal(&self) -> bool {
        self.tty
    }

    /// Bytes per second since the start.
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-6)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn draw(&mut self) {
        self.drawn = Some(Instant::now());
        let width = 30;
        let filled = (self.done.min(self.total) * width as u64).checked_div(self.total).map_or(width, |f| f as usize);
        let _ = write!(
            std::io::stderr(),
            "\r{} [{}{}] {:.1}/{:.1} MiB {:.1} MiB/s ",
            self.label,
            "#".repeat(filled),
            " ".repeat(width - filled),
            mib(self.done),
            mib(self.total),
            mib(self.rate() as u64)
        );
    }

    /// Ends the bar's line (on a terminal).
    pub fn finish(&mut self) {
        if self.tty {
            self.draw();
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// A reader that reports what passes through it.
pub struct Counted<'a, R> {
    pub inner: R,
    pub progress: &'a mut Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}
