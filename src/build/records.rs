//! Build records: `apps/<app>/builds/<n>.json` and the full output in
//! `<n>.log`, kept for the last 20 builds (`builds:set retention`), failed
//! ones included.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::atomic;

/// Records kept per app unless `builds:set retention` says otherwise.
pub const KEEP: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildStatus {
    Running,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildRecord {
    pub id: u64,
    pub status: BuildStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub revision: Option<String>,
    pub image: Option<String>,
    pub image_digest: Option<String>,
    pub buildpacks: Vec<String>,
    pub error: Option<String>,
    /// Seconds per phase, in order: sandbox, detect, compile, release, layers.
    pub phases: Vec<(String, f64)>,
    /// The sandbox container, so `builds:cancel` can find it.
    pub container: String,
    /// The berth process running the build: a running record whose
    /// process is gone was abandoned (a crash, a reboot).
    #[serde(default)]
    pub pid: Option<u32>,
}

impl BuildRecord {
    /// Dokku's display status: `abandoned` for a running record whose
    /// process has gone.
    pub fn shown_status(&self) -> &'static str {
        match self.status {
            BuildStatus::Running if self.pid.is_some_and(|p| !crate::runtime::control::alive(p as i32)) => "abandoned",
            BuildStatus::Running => "running",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed => "failed",
        }
    }
}

pub fn builds_dir(app_dir: &Path) -> PathBuf {
    app_dir.join("builds")
}

pub fn log_path(app_dir: &Path, id: u64) -> PathBuf {
    builds_dir(app_dir).join(format!("{id}.log"))
}

fn record_path(app_dir: &Path, id: u64) -> PathBuf {
    builds_dir(app_dir).join(format!("{id}.json"))
}

/// Every record, oldest first.
pub fn list(app_dir: &Path) -> Vec<BuildRecord> {
    let mut records: Vec<BuildRecord> = fs::read_dir(builds_dir(app_dir))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| serde_json::from_slice(&fs::read(e.path()).ok()?).ok())
                .collect()
        })
        .unwrap_or_default();
    records.sort_by_key(|r| r.id);
    records
}

pub fn next_id(app_dir: &Path) -> u64 {
    list(app_dir).last().map_or(1, |r| r.id + 1)
}

pub fn save(app_dir: &Path, record: &BuildRecord) -> std::io::Result<()> {
    fs::create_dir_all(builds_dir(app_dir))?;
    atomic::write_atomic(&record_path(app_dir, record.id), &serde_json::to_vec_pretty(record).expect("record serialises"))
        .map_err(|e| e.source)
}

/// Drops the oldest finished records and logs beyond `keep`; a running
/// build keeps its record whatever the count. Returns how many went.
pub fn prune(app_dir: &Path, keep: usize) -> usize {
    let records: Vec<BuildRecord> = list(app_dir).into_iter().filter(|r| r.shown_status() != "running").collect();
    let excess = records.len().saturating_sub(keep);
    for old in records.iter().take(excess) {
        let _ = fs::remove_file(record_path(app_dir, old.id));
        let _ = fs::remove_file(log_path(app_dir, old.id));
    }
    excess
}
