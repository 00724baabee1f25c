//! Releases: every deploy of an app is a numbered record
//! `apps/<app>/releases/<n>.json` (image, digest, process types, git
//! revision, time, why), written atomically.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::{self, WriteError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    pub version: u64,
    pub description: String,
    pub image: String,
    pub image_digest: String,
    pub process_types: BTreeMap<String, String>,
    /// The config vars this release runs with (non-UTF-8 bytes shown lossily).
    #[serde(default)]
    pub config_vars: BTreeMap<String, String>,
    pub git_revision: Option<String>,
    pub created_at: String,
    /// The initial scale from the release's app.json; `ps:scale` overrides it.
    #[serde(default)]
    pub formation: BTreeMap<String, u32>,
    /// Health checks from app.json (or CHECKS for web), by process type.
    #[serde(default)]
    pub healthchecks: BTreeMap<String, Vec<crate::model::checks::Check>>,
    /// app.json's predeploy and postdeploy scripts.
    #[serde(default)]
    pub scripts: crate::model::scripts::Scripts,
    /// app.json's scheduled jobs.
    #[serde(default)]
    pub cron: Vec<crate::model::cron::CronJob>,
}

impl Release {
    /// The app's next release: the version after its latest, made now, for
    /// `why`, running `content`'s image, process types, checks and scripts
    /// with `config_vars`. The one place a release is made (pushes, images,
    /// bundles, rollbacks, restarts).
    pub fn next(app_dir: &Path, content: Release, why: &str, config_vars: BTreeMap<String, String>) -> Release {
        Release {
            version: next_version(app_dir),
            description: why.to_owned(),
            config_vars,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ..content
        }
    }
}

fn dir(app_dir: &Path) -> PathBuf {
    app_dir.join("releases")
}

/// Every release, oldest first.
pub fn list(app_dir: &Path) -> Vec<Release> {
    let mut all: Vec<Release> = fs::read_dir(dir(app_dir))
        .map(|entries| entries.flatten().filter_map(|e| serde_json::from_slice(&fs::read(e.path()).ok()?).ok()).collect())
        .unwrap_or_default();
    all.sort_by_key(|r: &Release| r.version);
    all
}

pub fn latest(app_dir: &Path) -> Option<Release> {
    list(app_dir).pop()
}

pub fn next_version(app_dir: &Path) -> u64 {
    latest(app_dir).map_or(1, |r| r.version + 1)
}

pub fn record(app_dir: &Path, release: &Release) -> Result<(), WriteError> {
    let d = dir(app_dir);
    let _ = fs::create_dir_all(&d);
    atomic::write_secret(&d.join(format!("{}.json", release.version)), &serde_json::to_vec_pretty(release).expect("release serialises"))
}
