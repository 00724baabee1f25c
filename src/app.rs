//! `AppName`: the one place app names are validated, and the paths of an app.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

/// Longest app name, as Dokku allows (a DNS label).
const MAX_LEN: usize = 63;

#[derive(Debug, thiserror::Error)]
#[error("app {shown} is not a valid name: use a-z, 0-9 and -, start with a letter or digit, at most 63 characters")]
pub struct InvalidAppName {
    shown: String,
}

/// A validated app name: lowercase a-z, 0-9 and '-', starting with a letter,
/// at most 63 characters. Anything holding one may use it in paths, host
/// names and nginx config without further checks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppName(String);

impl AppName {
    pub fn parse(raw: &OsStr) -> Result<Self, InvalidAppName> {
        let invalid = || InvalidAppName { shown: format!("{:?}", raw.to_string_lossy()) };
        let name = raw.to_str().ok_or_else(invalid)?;
        let mut chars = name.chars();
        // As Dokku has them: a lowercase letter or a digit first (`1994app`).
        let starts_alphanumeric = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if starts_alphanumeric && rest_ok && name.len() <= MAX_LEN { Ok(AppName(name.to_owned())) } else { Err(invalid()) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for AppName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Read back through `parse`, so a hand-edited state file cannot smuggle in a bad name.
impl<'de> serde::Deserialize<'de> for AppName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        AppName::parse(OsStr::new(&raw)).map_err(serde::de::Error::custom)
    }
}

/// Where an app's state lives under `$BERTH_ROOT/apps/<app>/`.
#[derive(Debug, Clone)]
pub struct App {
    pub name: AppName,
    pub dir: PathBuf,
}

impl App {
    pub fn new(root: &Path, name: AppName) -> Self {
        let dir = apps_dir(root).join(name.as_str());
        App { name, dir }
    }

    /// The `$BERTH_ROOT` the app lives under.
    pub fn root(&self) -> PathBuf {
        self.dir.ancestors().nth(2).map(Path::to_path_buf).unwrap_or_default()
    }

    /// The app's bare git repository.
    pub fn repo_dir(&self) -> PathBuf {
        self.dir.join("repo.git")
    }

    pub fn env_file(&self) -> PathBuf {
        self.dir.join("env")
    }

    pub fn meta_file(&self) -> PathBuf {
        self.dir.join("meta.json")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.dir.join("lock")
    }
}

pub fn apps_dir(root: &Path) -> PathBuf {
    root.join("apps")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str) -> bool {
        AppName::parse(OsStr::new(name)).is_ok()
    }

    #[test]
    fn accepts_dokku_names() {
        for name in ["catmeow", "a", "a-1", "x2-y3", "1994app", "42", &"a".repeat(63)] {
            assert!(ok(name), "{name}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        let long = "a".repeat(64);
        for name in ["", "Cat", "-x", "a/b", "../etc", "a b", "x;rm -rf /", "$(id)", "café", "a_b", "a.b", &long, "a\n"] {
            assert!(!ok(name), "{name:?}");
        }
    }

    #[test]
    fn error_names_the_input() {
        let err = AppName::parse(OsStr::new("Cat")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app \"Cat\" is not a valid name: use a-z, 0-9 and -, start with a letter or digit, at most 63 characters"
        );
    }
}
