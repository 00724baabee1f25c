//! The ACME challenges an issue in progress wants answered
//! (`apps/APP/letsencrypt-challenges.json`): written by `deploy::acme`,
//! read by the proxy each time it writes the app's server block, so a deploy
//! meanwhile keeps them.

use std::path::PathBuf;

use super::atomic::{self, WriteError};
use crate::app::App;
use crate::model::acme::Challenge;

fn pending_file(app: &App) -> PathBuf {
    app.dir.join("letsencrypt-challenges.json")
}

/// The challenges an issue in progress wants nginx to answer; read each
/// time the server block is written, so a deploy meanwhile keeps them.
pub fn pending(app: &App) -> Vec<Challenge> {
    let Ok(text) = std::fs::read_to_string(pending_file(app)) else {
        return Vec::new();
    };
    let saved: Vec<Challenge> = serde_json::from_str(&text).unwrap_or_default();
    // Checked again: the file is state on disk, not a type.
    saved.into_iter().filter_map(|c| Challenge::new(c.token(), c.key_authorization())).collect()
}

/// Replaces the pending challenges; none removes the file.
pub fn set_pending(app: &App, challenges: &[Challenge]) -> Result<(), WriteError> {
    let path = pending_file(app);
    if challenges.is_empty() {
        let _ = std::fs::remove_file(&path);
        return Ok(());
    }
    atomic::write_atomic(&path, &serde_json::to_vec(challenges).expect("challenges serialise"))
}
