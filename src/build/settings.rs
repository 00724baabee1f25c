//! Per-app build settings (`apps/<app>/build.json`) and buildpack list
//! (`apps/<app>/buildpacks`, one reference per line).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::runtime::NetworkMode;
use crate::state::atomic::{self, WriteError};

/// Default wall-clock limit of a build: 25 minutes.
pub const DEFAULT_TIMEOUT_SECS: u64 = 25 * 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildSettings {
    /// `sandbox` (the default: the outside, not the host or other
    /// containers), `host` (an admin's opt-in) or `none` (air-gapped).
    /// Stored under a new key: a `network` written when host was the default does not carry over.
    #[serde(rename = "build_network")]
    pub network: NetworkMode,
    pub timeout_secs: u64,
    pub memory_bytes: i64,
    pub pids: i64,
    /// `builds:set APP retention N`: build records kept.
    pub retention: Option<usize>,
}

impl Default for BuildSettings {
    fn default() -> Self {
        BuildSettings {
            network: NetworkMode::Sandbox,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            memory_bytes: 4 << 30,
            pids: 4096,
            retention: None,
        }
    }
}

impl BuildSettings {
    pub fn load(app_dir: &Path) -> BuildSettings {
        std::fs::read(app_dir.join("build.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    pub fn save(&self, app_dir: &Path) -> Result<(), WriteError> {
        atomic::write_atomic(&app_dir.join("build.json"), &serde_json::to_vec_pretty(self).expect("settings serialise"))
    }
}

pub fn buildpacks_file(app_dir: &Path) -> std::path::PathBuf {
    app_dir.join("buildpacks")
}

/// How many build records the app keeps: its own setting, the host's
/// (`builds:set --global retention`), else 20.
pub fn retention(root: &Path, app_dir: &Path) -> usize {
    let global = crate::state::settings::Settings::load(root).ok().and_then(|s| s.builds.retention);
    BuildSettings::load(app_dir).retention.or(global).unwrap_or(super::records::KEEP)
}
