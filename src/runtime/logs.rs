//! The container's log: one line per output line, with time, process name
//! and stream, rotated at a size limit (one old file kept).
//!
//! The app never waits for the disk: its output is read as it comes and
//! handed to one writer thread through a bounded queue. When the disk
//! stalls (writeback on a busy host can hold writers for many seconds) and
//! the queue fills, lines are dropped and counted rather than blocking the
//! app's own writes to stdout, as Docker's non-blocking log mode does.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

/// Default rotation size (`[logs] max_bytes` in config.toml changes it).
pub const MAX_LOG_BYTES: u64 = crate::state::settings::DEFAULT_LOG_MAX_BYTES;

pub struct LogWriter {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
}

impl LogWriter {
    pub fn open(path: &Path, max_bytes: u64) -> io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(LogWriter { path: path.to_owned(), file, written, max_bytes })
    }

    /// Appends one line: `2026-11-23T18:00:00.123456Z web.1 stdout: text`.
    fn line_at(&mut self, stamp: &str, name: &str, stream: &str, text: &[u8]) -> io::Result<()> {
        let mut out = format!("{stamp} {name} {stream}: ").into_bytes();
        out.extend_from_slice(text);
        out.push(b'\n');
        if self.written + out.len() as u64 > self.max_bytes && self.written > 0 {
            self.rotate()?;
        }
        self.file.write_all(&out)?;
        self.written += out.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let old = self.path.with_extension("log.1");
        fs::rename(&self.path, old)?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Lines waiting for the disk before new ones are dropped.
const QUEUE_LINES: usize = 16 * 1024;

struct Entry {
    stamp: String,
    name: String,
    stream: &'static str,
    text: Vec<u8>,
}

/// Where lines go: a handle on the writer thread's queue. Cloned for each
/// output pipe; the thread ends when every handle is gone. The queue grows
/// as lines wait and is bounded by counting them: a bounded channel would
/// allocate all its slots up front, 1.5 MiB in every idle shim.
#[derive(Clone)]
pub struct Sink {
    queue: Sender<Entry>,
    queued: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
}

/// The writer thread, to wait for before the monitor exits.
pub struct Writer(std::thread::JoinHandle<()>);

impl Writer {
    /// Waits (at most `limit`) until every queued line is on disk; the
    /// thread ends once every `Sink` is gone.
    pub fn finish(self, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        while !self.0.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

impl Sink {
    /// Starts the writer thread that owns `log`.
    pub fn start(log: LogWriter) -> (Sink, Writer) {
        let (queue, entries) = channel();
        let (queued, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicU64::new(0)));
        let counters = (queued.clone(), dropped.clone());
        let thread = std::thread::spawn(move || write_all(log, entries, counters));
        (Sink { queue, queued, dropped }, Writer(thread))
    }

    /// Queues one line, stamped now; never waits.
    pub fn line(&self, name: &str, stream: &'static str, text: &[u8]) {
        if self.queued.fetch_add(1, Ordering::Relaxed) >= QUEUE_LINES {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let entry = Entry { stamp: now(), name: name.to_owned(), stream, text: text.to_vec() };
        if self.queue.send(entry).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn write_all(mut log: LogWriter, entries: Receiver<Entry>, (queued, dropped): (Arc<AtomicUsize>, Arc<AtomicU64>)) {
    for entry in entries {
        queued.fetch_sub(1, Ordering::Relaxed);
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let note = format!("{lost} lines were dropped: the log's disk was too slow");
            let _ = log.line_at(&entry.stamp, "berth", "shim", note.as_bytes());
        }
        let _ = log.line_at(&entry.stamp, &entry.name, entry.stream, &entry.text);
    }
}

/// Copies `pipe` into the log line by line until the writer end closes.
/// A line longer than 64 KiB is split, so one endless line cannot eat memory.
pub fn pump(pipe: File, sink: Sink, name: String, stream: &'static str) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = io::BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let got = (&mut reader).take(64 * 1024).read_until(b'\n', &mut buf);
            match got {
                Ok(0) | Err(_) => return,
                Ok(_) => sink.line(&name, stream, buf.strip_suffix(b"\n").unwrap_or(&buf)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stalled_disk_drops_lines_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let (sink, writer) = Sink::start(LogWriter::open(&path, MAX_LOG_BYTES).unwrap());
        let started = std::time::Instant::now();
        for i in 0..(QUEUE_LINES * 3) {
            sink.line("web.1", "stdout", format!("line {i}").as_bytes());
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "queuing never waits for the disk");
        drop(sink);
        writer.finish(std::time::Duration::from_secs(30));
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("web.1 stdout: line 0"));
        let kept = text.lines().filter(|l| l.contains("web.1 stdout: line ")).count();
        // Either the disk kept up with everything, or at least a full queue got through.
        assert!(kept >= QUEUE_LINES, "{kept} lines written");
    }

    #[test]
    fn rotates_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut log = LogWriter::open(&path, 200).unwrap();
        for i in 0..10 {
            log.line_at(&now(), "web.1", "stdout", format!("line {i}").as_bytes()).unwrap();
        }
        let current = fs::read_to_string(&path).unwrap();
        let old = fs::read_to_string(path.with_extension("log.1")).unwrap();
        assert!(current.len() <= 200 && old.len() <= 200);
        assert!(current.trim_end().ends_with("web.1 stdout: line 9"), "{current}");
    }
}
