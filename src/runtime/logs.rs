//! The container's log: one line per output line, with time, process name
//! and stream, rotated at a size limit (one old file kept).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Default rotation size (`[logs] max_bytes` in config.toml changes it).
pub const MAX_LOG_BYTES: u64 = 10 * 1024 * 1024;

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
    pub fn line(&mut self, name: &str, stream: &str, text: &[u8]) -> io::Result<()> {
        let stamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
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

/// Copies `pipe` into the log line by line until the writer end closes.
/// A line longer than 64 KiB is split, so one endless line cannot eat memory.
pub fn pump(pipe: File, log: Arc<Mutex<LogWriter>>, name: String, stream: &'static str) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = io::BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let got = (&mut reader).take(64 * 1024).read_until(b'\n', &mut buf);
            match got {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = buf.strip_suffix(b"\n").unwrap_or(&buf);
                    if let Ok(mut log) = log.lock() {
                        let _ = log.line(&name, stream, text);
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut log = LogWriter::open(&path, 200).unwrap();
        for i in 0..10 {
            log.line("web.1", "stdout", format!("line {i}").as_bytes()).unwrap();
        }
        let current = fs::read_to_string(&path).unwrap();
        let old = fs::read_to_string(path.with_extension("log.1")).unwrap();
        assert!(current.len() <= 200 && old.len() <= 200);
        assert!(current.trim_end().ends_with("web.1 stdout: line 9"), "{current}");
    }
}
