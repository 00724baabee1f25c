//! app.json `env`, as Heroku reads it: on an app's first deploy each
//! declared var the app does not have yet gets its `value`, or a secret
//! made for it (`generator: secret`); what `config:set` set is never
//! overwritten. Required vars without a value are checked on every deploy,
//! before anything is written.

use std::collections::BTreeMap;
use std::io::Read;

use super::DeployError;
use crate::app::App;
use crate::build::appjson::EnvDefault;
use crate::state::config::{ConfigKey, ConfigVars};
use crate::state::{PathIo, atomic, releases};

/// Fills in app.json's defaults (first deploy only) and refuses a deploy
/// that lacks a required var.
pub fn settle(app: &App, declared: &BTreeMap<ConfigKey, EnvDefault>, say: &mut dyn FnMut(&str)) -> Result<(), DeployError> {
    if declared.is_empty() {
        return Ok(());
    }
    let mut vars = ConfigVars::load(&app.env_file())?;
    let missing: Vec<&str> = declared
        .iter()
        .filter(|(key, default)| matches!(default, EnvDefault::Nothing { required: true }) && !vars.0.contains_key(*key))
        .map(|(key, _)| key.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(DeployError::MissingEnv(missing.join(", ")));
    }
    if releases::latest(&app.dir).is_some() {
        return Ok(());
    }
    let mut added = Vec::new();
    for (key, default) in declared {
        let value = match default {
            _ if vars.0.contains_key(key) => continue,
            EnvDefault::Value(value) => value.clone().into_bytes(),
            EnvDefault::Secret => secret()?.into_bytes(),
            EnvDefault::Nothing { .. } => continue,
        };
        vars.0.insert(key.clone(), value);
        added.push(key.as_str());
    }
    if !added.is_empty() {
        say(&format!("-----> Setting app.json env: {}", added.join(", ")));
        atomic::write_secret(&app.env_file(), &vars.encode())?;
    }
    Ok(())
}

/// 64 random hex digits, as Heroku's secret generator makes them.
fn secret() -> Result<String, DeployError> {
    let mut bytes = [0u8; 32];
    let path = std::path::Path::new("/dev/urandom");
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut bytes)).map_err(|source| PathIo {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    Ok(hex::encode(bytes))
}
