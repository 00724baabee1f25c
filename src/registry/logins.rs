//! `registry:login` credentials: `$BERTH_ROOT/registry/logins.json`, in a
//! root-only directory, the file itself 0600 (as docker's config.json, the
//! password is stored as given: the file's mode is the protection).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::RegistryError;
use crate::state::atomic;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Login {
    pub user: String,
    pub password: String,
}

fn file(root: &Path) -> PathBuf {
    root.join("registry").join("logins.json")
}

fn load(root: &Path) -> BTreeMap<String, Login> {
    std::fs::read(file(root)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn save(root: &Path, logins: &BTreeMap<String, Login>) -> Result<(), RegistryError> {
    let text = serde_json::to_vec_pretty(logins).expect("logins serialise");
    atomic::write_secret(&file(root), &text)
        .map_err(|e| RegistryError::Io(crate::state::PathIo { action: "write", path: e.path, source: e.source }))
}

pub fn get(root: &Path, server: &str) -> Option<Login> {
    load(root).remove(server)
}

pub fn set(root: &Path, server: &str, login: Login) -> Result<(), RegistryError> {
    let mut all = load(root);
    all.insert(server.to_owned(), login);
    save(root, &all)
}

/// Forgets the server's login; false when there was none.
pub fn remove(root: &Path, server: &str) -> Result<bool, RegistryError> {
    let mut all = load(root);
    let had = all.remove(server).is_some();
    if had {
        save(root, &all)?;
    }
    Ok(had)
}
