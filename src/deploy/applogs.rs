//! An app's logs across its containers: each container's own log while it
//! lives, `logs/retired.log` for containers a roll retired, and
//! `logs/failed.log` with the output of the last roll that failed.
//! Every line starts with a fixed-width UTC time stamp, so sorting lines
//! as text merges them in time order.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::app::App;
use crate::runtime::ContainerId;
use crate::runtime::logs::MAX_LOG_BYTES;
use crate::runtime::store::ContainerDir;

pub fn logs_dir(app: &App) -> PathBuf {
    app.dir.join("logs")
}

pub fn failed_log(app: &App) -> PathBuf {
    logs_dir(app).join("failed.log")
}

fn retired_log(app: &App) -> PathBuf {
    logs_dir(app).join("retired.log")
}

/// A container's log files, the rotated one first.
fn container_logs(root: &Path, id: &ContainerId) -> [PathBuf; 2] {
    let log = ContainerDir::new(root, id).log_file();
    [log.with_extension("log.1"), log]
}

/// Keeps a retiring container's log in the app's retired log (rotated at
/// the container log size, one old file kept).
pub fn keep_retired(root: &Path, app: &App, id: &ContainerId) {
    let target = retired_log(app);
    let _ = fs::create_dir_all(logs_dir(app));
    if fs::metadata(&target).is_ok_and(|m| m.len() > MAX_LOG_BYTES) {
        let _ = fs::rename(&target, target.with_extension("log.1"));
    }
    let Ok(mut out) = OpenOptions::new().create(true).append(true).open(&target) else { return };
    for file in container_logs(root, id) {
        if let Ok(bytes) = fs::read(file) {
            let _ = out.write_all(&bytes);
        }
    }
}

/// Appends lines to the app's log as a container writes them (for jobs
/// whose container does not outlive them): `TIME NAME STREAM: text`.
pub fn append(app: &App, name: &str, lines: &[(&str, Vec<u8>)]) {
    let target = retired_log(app);
    let _ = fs::create_dir_all(logs_dir(app));
    let Ok(mut out) = OpenOptions::new().create(true).append(true).open(&target) else { return };
    for (stream, text) in lines {
        let stamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        let mut line = format!("{stamp} {name} {stream}: ").into_bytes();
        line.extend_from_slice(text);
        line.push(b'\n');
        let _ = out.write_all(&line);
    }
}

/// Replaces the failed-deploy log with these containers' output.
pub fn keep_failed(root: &Path, app: &App, ids: &[&ContainerId]) {
    let mut text = Vec::new();
    for id in ids {
        for file in container_logs(root, id) {
            text.extend(fs::read(file).unwrap_or_default());
        }
    }
    let _ = fs::create_dir_all(logs_dir(app));
    let _ = crate::state::atomic::write_atomic(&failed_log(app), &text);
}

/// Every log file of the app: retired containers' and the living ones'.
pub fn sources(root: &Path, app: &App, living: &[ContainerId]) -> Vec<PathBuf> {
    let retired = retired_log(app);
    let mut files = vec![retired.with_extension("log.1"), retired];
    for id in living {
        files.extend(container_logs(root, id));
    }
    files
}

/// One log line as `heroku logs` shows it: `TIME app[web.1]: text`, or
/// only the text when `quiet`. `None` for a line in another format.
pub fn present(line: &str, quiet: bool) -> Option<String> {
    let (stamp, rest) = line.split_once(' ')?;
    let (name, rest) = rest.split_once(' ')?;
    let (_stream, text) = rest.split_once(": ")?;
    Some(if quiet { text.to_owned() } else { format!("{stamp} app[{name}]: {text}") })
}

/// Whether the line comes from the process `filter` names: `web.1`, or
/// every container of a type with `web`.
pub fn matches(line: &str, filter: Option<&str>) -> bool {
    let Some(filter) = filter else { return true };
    let name = line.split(' ').nth(1).unwrap_or("");
    name == filter || name.strip_prefix(filter).is_some_and(|rest| rest.starts_with('.'))
}

/// The last `n` lines of all `files`, merged in time order.
pub fn merged_tail(files: &[PathBuf], filter: Option<&str>, n: usize) -> Vec<String> {
    let mut lines: Vec<String> = files
        .iter()
        .filter_map(|f| fs::read(f).ok())
        .flat_map(|bytes| String::from_utf8_lossy(&bytes).lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|l| matches(l, filter))
        .collect();
    lines.sort();
    lines.split_off(lines.len().saturating_sub(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_in_time_order_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        fs::write(&a, "2026-01-01T00:00:01.000000Z web.1 stdout: one\n2026-01-01T00:00:03.000000Z web.1 stderr: three\n").unwrap();
        fs::write(&b, "2026-01-01T00:00:02.000000Z worker.1 stdout: two\n").unwrap();
        let all = merged_tail(&[a.clone(), b.clone()], None, 10);
        let texts: Vec<String> = all.iter().filter_map(|l| present(l, true)).collect();
        assert_eq!(texts, ["one", "two", "three"]);
        assert_eq!(present(&all[1], false).unwrap(), "2026-01-01T00:00:02.000000Z app[worker.1]: two");
        assert_eq!(merged_tail(&[a.clone(), b.clone()], Some("worker"), 10).len(), 1);
        assert_eq!(merged_tail(&[a.clone(), b.clone()], Some("web.1"), 10).len(), 2);
        assert_eq!(merged_tail(&[a.clone(), b], Some("web.2"), 10).len(), 0);
        assert_eq!(merged_tail(&[a], None, 1).len(), 1);
    }
}
