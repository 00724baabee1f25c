//! Named storage entries (`storage:create NAME`): a registered host
//! directory that apps mount by name (`storage:mount APP NAME
//! --container-dir /data`), kept in `$BERTH_ROOT/storage-entries/NAME.json`.
//! By default the directory is `$BERTH_ROOT/storage/NAME`; its owner and
//! mode are properties re-applied whenever the entry is created or set.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::PathIo;
use super::atomic::{self, WriteError};
use super::storage::{StorageError, storage_dir};

/// What an entry file may weigh: a few hundred bytes in practice.
const ENTRY_MAX_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("{0:?} is not a storage entry name (lowercase letters, digits and '-', starting with a letter or digit, at most 45)")]
    BadName(String),
    #[error("storage entry {0} does not exist")]
    NotFound(EntryName),
    #[error("storage entry {0} already exists")]
    Exists(EntryName),
    #[error("chown takes herokuish, heroku, paketo, app, root, false or a numeric uid, not {0:?}")]
    BadChown(String),
    #[error("mode takes 3 or 4 octal digits (0770), not {0:?}")]
    BadMode(String),
    #[error("reclaim-policy takes Retain or Delete, not {0:?}")]
    BadReclaim(String),
    #[error("{what} only manages the default directory {default}; {name} lives at {path}")]
    CustomPath { what: &'static str, name: EntryName, default: PathBuf, path: PathBuf },
    #[error("{0} is not a directory (symlinks are not followed)")]
    NotDirectory(PathBuf),
    #[error("storage entry {0} is corrupt: {1}")]
    Corrupt(EntryName, String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Io(#[from] PathIo),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// A storage entry's name: a DNS-1123 label of at most 45 characters, as Dokku's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntryName(String);

impl EntryName {
    pub fn parse(text: &str) -> Result<EntryName, EntryError> {
        let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok = text.len() <= 45
            && edge_ok(text.chars().next())
            && edge_ok(text.chars().last())
            && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok { Ok(EntryName(text.to_owned())) } else { Err(EntryError::BadName(text.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EntryName {
    type Error = EntryError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        EntryName::parse(&text)
    }
}

impl From<EntryName> for String {
    fn from(name: EntryName) -> String {
        name.0
    }
}

/// Who owns an entry's directory. Each berth app runs as a uid of its own,
/// so Dokku's presets (`herokuish`, `heroku`, `paketo`) mean `app`: the
/// directory goes to the first app that mounts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Chown {
    App,
    Root,
    Uid(u32),
}

impl Chown {
    /// `None` for `false` (no chown at all).
    pub fn parse(text: &str) -> Result<Option<Chown>, EntryError> {
        Ok(Some(match text {
            "herokuish" | "heroku" | "paketo" | "app" => Chown::App,
            "root" => Chown::Root,
            "false" => return Ok(None),
            n => Chown::Uid(n.parse::<u32>().ok().filter(|u| *u > 0).ok_or_else(|| EntryError::BadChown(n.to_owned()))?),
        }))
    }

    pub fn label(self) -> String {
        match self {
            Chown::App => "app".into(),
            Chown::Root => "root".into(),
            Chown::Uid(uid) => uid.to_string(),
        }
    }
}

/// A 3 or 4 digit octal mode (`0770`), permission bits only.
pub fn parse_mode(text: &str) -> Result<u32, EntryError> {
    let ok = (3..=4).contains(&text.len()) && text.chars().all(|c| ('0'..='7').contains(&c));
    let mode = if ok { u32::from_str_radix(text, 8).ok() } else { None };
    mode.filter(|m| *m <= 0o1777).ok_or_else(|| EntryError::BadMode(text.to_owned()))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reclaim {
    /// `storage:destroy` keeps the directory.
    #[default]
    Retain,
    /// `storage:destroy` removes the directory and what is in it.
    Delete,
}

impl Reclaim {
    pub fn parse(text: &str) -> Result<Reclaim, EntryError> {
        match text {
            "Retain" | "retain" => Ok(Reclaim::Retain),
            "Delete" | "delete" => Ok(Reclaim::Delete),
            other => Err(EntryError::BadReclaim(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub name: EntryName,
    pub host_path: PathBuf,
    /// `None`: no chown (`false`).
    pub chown: Option<Chown>,
    pub mode: Option<u32>,
    #[serde(default)]
    pub reclaim_policy: Reclaim,
    pub created_at: String,
}

impl Entry {
    pub fn new(root: &Path, name: EntryName, host_path: Option<PathBuf>) -> Entry {
        let host_path = host_path.unwrap_or_else(|| default_path(root, &name));
        let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Entry { name, host_path, chown: Some(Chown::App), mode: None, reclaim_policy: Reclaim::Retain, created_at }
    }

    /// Whether the entry is berth's own `$BERTH_ROOT/storage/NAME`, the only
    /// place berth changes owners and modes or removes.
    pub fn at_default_path(&self, root: &Path) -> bool {
        self.host_path == default_path(root, &self.name)
    }

    pub fn mode_label(&self) -> String {
        self.mode.map(|m| format!("{m:04o}")).unwrap_or_default()
    }

    pub fn chown_label(&self) -> String {
        self.chown.map_or("false".into(), Chown::label)
    }
}

pub fn default_path(root: &Path, name: &EntryName) -> PathBuf {
    storage_dir(root).join(name.as_str())
}

fn entries_dir(root: &Path) -> PathBuf {
    root.join("storage-entries")
}

fn entry_path(root: &Path, name: &EntryName) -> PathBuf {
    entries_dir(root).join(format!("{name}.json"))
}

pub fn load(root: &Path, name: &EntryName) -> Result<Entry, EntryError> {
    let path = entry_path(root, name);
    let bytes = match super::read_capped(&path, ENTRY_MAX_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => return Err(EntryError::NotFound(name.clone())),
        Err(e) => return Err(e.into()),
    };
    serde_json::from_slice(&bytes).map_err(|e| EntryError::Corrupt(name.clone(), e.to_string()))
}

/// Every registered entry, by name.
pub fn list(root: &Path) -> Result<Vec<Entry>, EntryError> {
    let Ok(dir) = std::fs::read_dir(entries_dir(root)) else { return Ok(Vec::new()) };
    let mut names: Vec<EntryName> =
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").and_then(|n| EntryName::parse(n).ok())).collect();
    names.sort();
    names.iter().map(|n| load(root, n)).collect()
}

pub fn save(root: &Path, entry: &Entry) -> Result<(), EntryError> {
    let dir = entries_dir(root);
    std::fs::create_dir_all(&dir).map_err(|source| PathIo { action: "create", path: dir.clone(), source })?;
    let json = serde_json::to_vec_pretty(entry).expect("an entry serialises");
    atomic::write_atomic(&entry_path(root, &entry.name), &json)?;
    Ok(())
}

pub fn remove(root: &Path, name: &EntryName) -> Result<(), EntryError> {
    let path = entry_path(root, name);
    std::fs::remove_file(&path).map_err(|source| PathIo { action: "remove", path, source })?;
    Ok(())
}

/// Makes the default directory if it is missing, checks the directory is
/// a real one (never through a symlink), and applies owner and mode.
/// `app_uid`: the uid `chown app` hands a directory still owned by root.
pub fn converge(root: &Path, entry: &Entry, app_uid: Option<u32>) -> Result<(), EntryError> {
    let path = &entry.host_path;
    if entry.at_default_path(root) {
        let parent = storage_dir(root);
        std::fs::create_dir_all(&parent).map_err(|source| PathIo { action: "create", path: parent, source })?;
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(PathIo { action: "create", path: path.clone(), source }.into()),
        }
    }
    let meta = std::fs::symlink_metadata(path).map_err(|_| EntryError::NotDirectory(path.clone()))?;
    if !meta.is_dir() {
        return Err(EntryError::NotDirectory(path.clone()));
    }
    if !entry.at_default_path(root) {
        return Ok(());
    }
    use std::os::unix::fs::MetadataExt;
    let owner = match entry.chown {
        Some(Chown::App) if meta.uid() == 0 => app_uid,
        Some(Chown::App) | None => None,
        Some(Chown::Root) => Some(0),
        Some(Chown::Uid(uid)) => Some(uid),
    };
    if let Some(uid) = owner {
        std::os::unix::fs::lchown(path, Some(uid), Some(uid)).map_err(|source| PathIo { action: "chown", path: path.clone(), source })?;
    }
    if let Some(mode) = entry.mode {
        let perms = std::fs::Permissions::from_mode(mode);
        std::fs::set_permissions(path, perms).map_err(|source| PathIo { action: "chmod", path: path.clone(), source })?;
    }
    Ok(())
}

/// Refuses owner and mode changes on an entry berth does not own the directory of.
pub fn check_managed(root: &Path, entry: &Entry, what: &'static str) -> Result<(), EntryError> {
    if entry.at_default_path(root) {
        return Ok(());
    }
    Err(EntryError::CustomPath { what, name: entry.name.clone(), default: default_path(root, &entry.name), path: entry.host_path.clone() })
}

/// Removes an entry's default directory with everything in it (never
/// following a symlink inside it).
pub fn remove_directory(root: &Path, entry: &Entry) -> Result<(), EntryError> {
    check_managed(root, entry, "removing the directory")?;
    match std::fs::remove_dir_all(&entry.host_path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(PathIo { action: "remove", path: entry.host_path.clone(), source }.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        for good in ["data", "node-js-data", "a1", "9"] {
            assert!(EntryName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "../x", &"a".repeat(46), "a/b"] {
            assert!(EntryName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes_chowns_and_policies_parse_as_dokku_writes_them() {
        assert_eq!(parse_mode("0770").unwrap(), 0o770);
        assert_eq!(parse_mode("755").unwrap(), 0o755);
        for bad in ["", "8", "77", "07777", "0x77", "-755", "rwx"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
        assert_eq!(Chown::parse("herokuish").unwrap(), Some(Chown::App));
        assert_eq!(Chown::parse("false").unwrap(), None);
        assert_eq!(Chown::parse("2000").unwrap(), Some(Chown::Uid(2000)));
        assert!(Chown::parse("-1").is_err() && Chown::parse("0").is_err());
        assert_eq!(Reclaim::parse("Delete").unwrap(), Reclaim::Delete);
        assert!(Reclaim::parse("Recycle").is_err());
    }

    #[test]
    fn entries_round_trip_and_directories_converge() {
        let root = tempfile::tempdir().unwrap();
        let name = EntryName::parse("data").unwrap();
        let mut entry = Entry::new(root.path(), name.clone(), None);
        entry.mode = Some(0o750);
        save(root.path(), &entry).unwrap();
        assert_eq!(load(root.path(), &name).unwrap(), entry);
        assert_eq!(list(root.path()).unwrap().len(), 1);
        converge(root.path(), &entry, None).unwrap();
        let mode = std::fs::metadata(&entry.host_path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o750);
        remove_directory(root.path(), &entry).unwrap();
        assert!(!entry.host_path.exists());
        remove(root.path(), &name).unwrap();
        assert!(matches!(load(root.path(), &name), Err(EntryError::NotFound(_))));
    }

    #[test]
    fn a_symlink_is_not_an_entry_directory() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("storage")).unwrap();
        std::os::unix::fs::symlink("/etc", root.path().join("storage/evil")).unwrap();
        let entry = Entry::new(root.path(), EntryName::parse("evil").unwrap(), None);
        assert!(matches!(converge(root.path(), &entry, Some(1)), Err(EntryError::NotDirectory(_))));
    }
}
