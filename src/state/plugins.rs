//! Installed plugins (docs/PLUGINS.md): each is a directory
//! `$BERTH_ROOT/plugins/NAME` holding `plugin.toml`, executables named
//! after triggers, and `subcommands/VERB` executables that become
//! `berth NAME:VERB`. Which are installed from where, and which are
//! disabled, is `$BERTH_ROOT/plugins.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{PathIo, atomic};

/// The largest plugin.toml berth reads.
const MANIFEST_CAP: u64 = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{0:?} is not a plugin name (a-z, 0-9 and '-', at most 40, starting with a letter)")]
    BadName(String),
    #[error("{0} is the name of a berth namespace; a plugin cannot take it")]
    Reserved(String),
    #[error("there is no plugin {0}; see plugin:list")]
    Missing(String),
    #[error("plugin {0} is installed already; plugin:update {0} replaces it")]
    Installed(String),
    #[error("{path}: {why}")]
    Manifest { path: PathBuf, why: String },
    #[error("plugin {name} needs berth {wants}; this is berth {have}")]
    Version { name: String, wants: String, have: String },
    #[error("plugins.json is corrupt: {0}")]
    State(#[from] serde_json::Error),
    #[error(transparent)]
    Io(#[from] PathIo),
    #[error(transparent)]
    Write(#[from] atomic::WriteError),
}

/// A plugin's name: its directory, its command namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PluginName(String);

impl PluginName {
    pub fn parse(text: &str) -> Result<PluginName, PluginError> {
        let ok = text.len() <= 40
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && !text.ends_with('-')
            && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok { Ok(PluginName(text.to_owned())) } else { Err(PluginError::BadName(text.chars().take(64).collect())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PluginName {
    type Error = PluginError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        PluginName::parse(&text)
    }
}

impl From<PluginName> for String {
    fn from(name: PluginName) -> String {
        name.0
    }
}

impl std::fmt::Display for PluginName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

/// One command a plugin adds, as its plugin.toml declares it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginCommand {
    #[serde(default)]
    pub usage: String,
    #[serde(default)]
    pub about: String,
    /// App-scoped: the first argument is an app, and a key granted that
    /// app may run it over ssh. Otherwise the command is for admins.
    #[serde(default)]
    pub app: bool,
}

/// plugin.toml.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// The berth version it needs: `0.1` matches every 0.1.x.
    pub berth: String,
    #[serde(default)]
    pub commands: BTreeMap<String, PluginCommand>,
}

impl Manifest {
    /// Reads and checks `dir/plugin.toml`.
    pub fn load(dir: &Path) -> Result<Manifest, PluginError> {
        let path = dir.join("plugin.toml");
        let bytes = super::read_capped(&path, MANIFEST_CAP)?;
        let bad = |why: String| PluginError::Manifest { path: path.clone(), why };
        let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
        PluginName::parse(&manifest.name)?;
        for verb in manifest.commands.keys() {
            let ok = !verb.is_empty() && verb.len() <= 40 && verb.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(bad(format!("{verb:?} is not a command verb (a-z, 0-9, '-')")));
            }
        }
        let have = env!("CARGO_PKG_VERSION");
        let fits = have == manifest.berth || have.starts_with(&format!("{}.", manifest.berth));
        if !fits {
            return Err(PluginError::Version { name: manifest.name, wants: manifest.berth, have: have.into() });
        }
        Ok(manifest)
    }
}

/// What plugins.json says of one plugin.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Record {
    /// Where plugin:install took it from (plugin:update takes it again).
    pub source: String,
    #[serde(default)]
    pub disabled: bool,
}

/// An installed plugin.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub name: PluginName,
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub record: Record,
}

impl Plugin {
    /// Its executable for `what` (a trigger, or `subcommands/VERB`), if it has one.
    pub fn executable(&self, what: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join(what);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(path)
    }
}

pub fn plugins_dir(root: &Path) -> PathBuf {
    root.join("plugins")
}

fn state_file(root: &Path) -> PathBuf {
    root.join("plugins.json")
}

pub fn records(root: &Path) -> Result<BTreeMap<PluginName, Record>, PluginError> {
    match super::read_capped(&state_file(root), 1 << 20) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
        Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e.into()),
    }
}

pub fn write_records(root: &Path, records: &BTreeMap<PluginName, Record>) -> Result<(), PluginError> {
    Ok(atomic::write_atomic(&state_file(root), &serde_json::to_vec_pretty(records)?)?)
}

/// Every installed plugin, in name order (the order triggers run in).
/// A plugin whose manifest no longer loads is left out.
pub fn installed(root: &Path) -> Result<Vec<Plugin>, PluginError> {
    let mut found = Vec::new();
    for (name, record) in records(root)? {
        let dir = plugins_dir(root).join(name.as_str());
        match Manifest::load(&dir) {
            Ok(manifest) => found.push(Plugin { name, dir, manifest, record }),
            Err(e) => tracing::warn!(plugin = %name, error = %e, "plugin left out"),
        }
    }
    Ok(found)
}

/// The enabled plugins, in name order.
pub fn enabled(root: &Path) -> Vec<Plugin> {
    installed(root).unwrap_or_default().into_iter().filter(|p| !p.record.disabled).collect()
}

pub fn find(root: &Path, name: &PluginName) -> Result<Plugin, PluginError> {
    installed(root)?.into_iter().find(|p| &p.name == name).ok_or_else(|| PluginError::Missing(name.to_string()))
}

/// The enabled plugin command `NAME:VERB`, if there is one.
pub fn command(root: &Path, full: &str) -> Option<(Plugin, String, PluginCommand)> {
    let (name, verb) = full.split_once(':')?;
    let name = PluginName::parse(name).ok()?;
    let plugin = enabled(root).into_iter().find(|p| p.name == name)?;
    let command = plugin.manifest.commands.get(verb)?.clone();
    plugin.executable(&format!("subcommands/{verb}"))?;
    Some((plugin, verb.to_owned(), command))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_manifests_are_checked() {
        for good in ["hello", "postgres", "a-1"] {
            assert!(PluginName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "Hello", "-x", "x-", "a/b", "1abc", "a b"] {
            assert!(PluginName::parse(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let version = env!("CARGO_PKG_VERSION").rsplitn(2, '.').nth(1).unwrap().to_owned();
        std::fs::write(
            dir.path().join("plugin.toml"),
            format!("name = \"hello\"\nversion = \"1\"\nberth = \"{version}\"\n[commands.world]\napp = true\n"),
        )
        .unwrap();
        let manifest = Manifest::load(dir.path()).unwrap();
        assert!(manifest.commands["world"].app);
        std::fs::write(dir.path().join("plugin.toml"), "name = \"hello\"\nversion = \"1\"\nberth = \"99.0\"\n").unwrap();
        assert!(matches!(Manifest::load(dir.path()), Err(PluginError::Version { .. })));
    }
}
