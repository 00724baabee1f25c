//! The parts of an app's `app.json` (Dokku's and Heroku's format) that
//! berth reads: `formation`, the initial scale of each process type.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::procfile::is_process_name;
use crate::model::process::MAX_SCALE;
pub use crate::model::scripts::Scripts;

#[derive(Debug, thiserror::Error)]
pub enum AppJsonError {
    #[error("app.json is not valid: {0}")]
    Invalid(String),
    #[error("app.json formation names {0:?}, which is not a process type name")]
    BadType(String),
    #[error("app.json formation gives {name} quantity {quantity}; use 0 to {MAX_SCALE}")]
    BadQuantity { name: String, quantity: u64 },
}

#[derive(Debug, Default, Deserialize)]
struct AppJson {
    #[serde(default)]
    formation: BTreeMap<String, FormationEntry>,
    #[serde(default)]
    scripts: ScriptsJson,
}

#[derive(Debug, Default, Deserialize)]
struct ScriptsJson {
    #[serde(default)]
    dokku: Scripts,
}

/// The deploy scripts `app.json` names; none without an app.json.
pub fn scripts(bytes: Option<&[u8]>) -> Result<Scripts, AppJsonError> {
    let Some(bytes) = bytes else { return Ok(Scripts::default()) };
    let parsed: AppJson = serde_json::from_slice(bytes).map_err(|e| AppJsonError::Invalid(e.to_string()))?;
    Ok(parsed.scripts.dokku)
}

#[derive(Debug, Deserialize)]
struct FormationEntry {
    quantity: Option<u64>,
}

/// The formation `app.json` asks for; empty without an app.json.
pub fn formation(bytes: Option<&[u8]>) -> Result<BTreeMap<String, u32>, AppJsonError> {
    let Some(bytes) = bytes else { return Ok(BTreeMap::new()) };
    let parsed: AppJson = serde_json::from_slice(bytes).map_err(|e| AppJsonError::Invalid(e.to_string()))?;
    let mut counts = BTreeMap::new();
    for (name, entry) in parsed.formation {
        if !is_process_name(&name) || name == "release" {
            return Err(AppJsonError::BadType(name));
        }
        if let Some(quantity) = entry.quantity {
            if quantity > u64::from(MAX_SCALE) {
                return Err(AppJsonError::BadQuantity { name, quantity });
            }
            counts.insert(name, quantity as u32);
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dokku_formation() {
        let text = br#"{"name": "x", "formation": {"web": {"quantity": 2}, "worker": {"quantity": 1, "max_parallel": 1}}, "scripts": {}}"#;
        let counts = formation(Some(text)).unwrap();
        assert_eq!(counts, BTreeMap::from([("web".to_string(), 2), ("worker".to_string(), 1)]));
        assert!(formation(None).unwrap().is_empty());
        assert!(formation(Some(b"{not json")).is_err());
        assert!(formation(Some(br#"{"formation": {"web": {"quantity": 1000}}}"#)).is_err());
        assert!(formation(Some(br#"{"formation": {"we b": {"quantity": 1}}}"#)).is_err());
        let with_scripts = br#"{"scripts": {"dokku": {"predeploy": "python migrate.py", "postdeploy": "echo done"}}}"#;
        assert_eq!(scripts(Some(with_scripts)).unwrap().predeploy.as_deref(), Some("python migrate.py"));
        assert_eq!(scripts(None).unwrap(), Scripts::default());
    }
}
