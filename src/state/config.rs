//! Config vars: names checked at the edge, values any bytes but NUL.
//!
//! On disk (`apps/<app>/env`) each var is one record `KEY=VALUE\0`: NUL can
//! never appear in a value (argv and environments cannot carry it), so the
//! format holds newlines, quotes and `=` exactly as given.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config key {shown} is not valid: use A-Z, a-z, 0-9 and _, not starting with a digit")]
    InvalidKey { shown: String },
    #[error("{shown} is not KEY=VALUE")]
    NotAPair { shown: String },
    #[error("config value of {key} is not valid base64")]
    NotBase64 { key: String },
    #[error("the value of {key} holds a NUL byte, which config vars cannot hold")]
    Nul { key: String },
    #[error("config file {path} is corrupt: {why}")]
    Corrupt { path: PathBuf, why: &'static str },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A config var name: `[A-Za-z_][A-Za-z0-9_]*`, as shells and Heroku accept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigKey(String);

impl ConfigKey {
    pub fn parse(raw: &OsStr) -> Result<Self, ConfigError> {
        let invalid = || ConfigError::InvalidKey { shown: format!("{:?}", raw.to_string_lossy()) };
        let key = raw.to_str().ok_or_else(invalid)?;
        let mut chars = key.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') { Ok(ConfigKey(key.to_owned())) } else { Err(invalid()) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses `KEY=VALUE` (the value may itself hold `=`); with `encoded` the
/// value is base64, as `config:set --encoded` takes it.
pub fn parse_pair(raw: &OsStr, encoded: bool) -> Result<(ConfigKey, Vec<u8>), ConfigError> {
    let bytes = raw.as_bytes();
    let eq =
        bytes.iter().position(|&b| b == b'=').ok_or_else(|| ConfigError::NotAPair { shown: format!("{:?}", raw.to_string_lossy()) })?;
    let key = ConfigKey::parse(OsStr::from_bytes(&bytes[..eq]))?;
    let value = &bytes[eq + 1..];
    let value = if encoded { decode_base64(value).ok_or_else(|| ConfigError::NotBase64 { key: key.0.clone() })? } else { value.to_vec() };
    // NUL ends each record on disk: a value holding one would split it.
    if value.contains(&0) {
        return Err(ConfigError::Nul { key: key.0.clone() });
    }
    Ok((key, value))
}

/// An app's config vars, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigVars(pub BTreeMap<ConfigKey, Vec<u8>>);

/// `config:set --global`: vars every app's containers get unless the app
/// sets the same key (0600, like an app's own).
pub fn global_env_file(root: &Path) -> std::path::PathBuf {
    root.join("env")
}

impl ConfigVars {
    /// What an app's processes see: the global vars, then the app's own.
    pub fn in_effect(root: &Path, app_env: &Path) -> Result<Self, ConfigError> {
        let mut vars = ConfigVars::load(&global_env_file(root))?;
        vars.0.extend(ConfigVars::load(app_env)?.0);
        Ok(vars)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read(path) {
            Ok(bytes) => Self::decode(&bytes).map_err(|why| ConfigError::Corrupt { path: path.to_owned(), why }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read { path: path.to_owned(), source }),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (key, value) in &self.0 {
            out.extend_from_slice(key.0.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value);
            out.push(0);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        let mut vars = BTreeMap::new();
        let Some(body) = bytes.strip_suffix(&[0]) else {
            return if bytes.is_empty() { Ok(Self::default()) } else { Err("last record is not terminated") };
        };
        for record in body.split(|&b| b == 0) {
            let eq = record.iter().position(|&b| b == b'=').ok_or("record without =")?;
            let key = ConfigKey::parse(OsStr::from_bytes(&record[..eq])).map_err(|_| "invalid key")?;
            vars.insert(key, record[eq + 1..].to_vec());
        }
        Ok(ConfigVars(vars))
    }

    /// `export KEY='value'` lines that a POSIX shell can `eval` back exactly.
    pub fn to_shell(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (key, value) in &self.0 {
            out.extend_from_slice(b"export ");
            out.extend_from_slice(key.0.as_bytes());
            out.extend_from_slice(b"='");
            for &b in value {
                if b == b'\'' {
                    out.extend_from_slice(b"'\\''");
                } else {
                    out.push(b);
                }
            }
            out.extend_from_slice(b"'\n");
        }
        out
    }
}

/// Base64 as Dokku's `--encoded` takes it: the standard or the URL-safe
/// alphabet, padded or not, whitespace ignored.
fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let trimmed: Vec<u8> = input.iter().copied().filter(|c| !c.is_ascii_whitespace()).collect();
    GeneralPurpose::new(&base64::alphabet::STANDARD, config)
        .decode(&trimmed)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, config).decode(&trimmed))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> ConfigKey {
        ConfigKey::parse(OsStr::new(k)).unwrap()
    }

    #[test]
    fn records_round_trip_any_bytes_but_nul() {
        let mut vars = ConfigVars::default();
        vars.0.insert(key("A"), b"x=y\n'quoted' \"d\"\xff".to_vec());
        vars.0.insert(key("EMPTY"), Vec::new());
        assert_eq!(ConfigVars::decode(&vars.encode()).unwrap(), vars);
    }

    #[test]
    fn pairs_split_at_first_equals() {
        let (k, v) = parse_pair(OsStr::new("URL=a=b"), false).unwrap();
        assert_eq!((k.as_str(), v.as_slice()), ("URL", &b"a=b"[..]));
        assert!(parse_pair(OsStr::new("novalue"), false).is_err());
        assert!(parse_pair(OsStr::new("=x"), false).is_err());
        assert!(parse_pair(OsStr::new("1A=x"), false).is_err());
        assert!(parse_pair(OsStr::new("A-B=x"), false).is_err());
    }

    #[test]
    fn base64_values() {
        let (_, v) = parse_pair(OsStr::new("K=aGVsbG8gd29ybGQ="), true).unwrap();
        assert_eq!(v, b"hello world");
        let (_, v) = parse_pair(OsStr::new("K=YQ=="), true).unwrap();
        assert_eq!(v, b"a");
        assert!(parse_pair(OsStr::new("K=@@"), true).is_err());
    }
}
