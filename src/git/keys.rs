//! The berth user's authorized_keys: one line per key, each forced to run
//! `berth ssh-command --key NAME` with every other SSH feature off.

use std::fs;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest as _, Sha256};

use crate::state::atomic;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key name {0:?} is not valid: use A-Z, a-z, 0-9, '.', '_' and '-', at most 64 characters")]
    BadName(String),
    #[error("this is not one SSH public key line (TYPE BASE64 [COMMENT]); options and several keys are not accepted")]
    NotAKey,
    #[error("a key named {0} exists already")]
    NameTaken(String),
    #[error("this key is already added, as {0}")]
    KeyTaken(String),
    #[error("no key named {0}")]
    NoSuchKey(String),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// A parsed public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kind: String,
    pub data: String,
}

impl PublicKey {
    /// Accepts exactly one `TYPE BASE64 [COMMENT]` line whose blob names the same type.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let [line] = lines[..] else { return Err(KeyError::NotAKey) };
        let mut words = line.split_whitespace();
        let (Some(kind), Some(data)) = (words.next(), words.next()) else { return Err(KeyError::NotAKey) };
        if !KEY_TYPES.contains(&kind) {
            return Err(KeyError::NotAKey);
        }
        let blob = STANDARD.decode(data).map_err(|_| KeyError::NotAKey)?;
        // The blob starts with the type as an SSH string: u32 length, bytes.
        let len = blob.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).ok_or(KeyError::NotAKey)?;
        if blob.get(4..4 + len) != Some(kind.as_bytes()) {
            return Err(KeyError::NotAKey);
        }
        Ok(PublicKey { kind: kind.to_owned(), data: data.to_owned() })
    }

    /// `SHA256:...` as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        let blob = STANDARD.decode(&self.data).unwrap_or_default();
        format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(&blob)))
    }
}

pub fn check_name(name: &str) -> Result<(), KeyError> {
    if !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        Ok(())
    } else {
        Err(KeyError::BadName(name.to_owned()))
    }
}

/// The keys berth wrote: (name, key), in file order.
pub fn list(path: &Path) -> Vec<(String, PublicKey)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(list_line).collect()
}

fn list_line(line: &str) -> Option<(String, PublicKey)> {
    let rest = line.split_once("ssh-command --key ")?.1;
    let (name, after) = rest.split_once('"')?;
    let key_part = after.split_once(' ')?.1;
    let mut words = key_part.split_whitespace();
    Some((name.to_owned(), PublicKey { kind: words.next()?.to_owned(), data: words.next()?.to_owned() }))
}

/// `restrict` takes away forwarding, agent, X11 and user rc; `pty` gives
/// back only a terminal, for `ssh -t berth@host run APP bash`. The command
/// stays forced either way.
fn line_for(exe: &str, name: &str, key: &PublicKey) -> String {
    format!("command=\"{exe} ssh-command --key {name}\",restrict,pty {} {} {name}\n", key.kind, key.data)
}

fn write(path: &Path, lines: &str) -> Result<(), KeyError> {
    let io = |action, source| KeyError::Io { action, path: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| io("create", e))?;
    }
    atomic::write_atomic(path, lines.as_bytes()).map_err(|e| io("write", e.source))?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).map_err(|e| io("chmod", e))
}

pub fn add(path: &Path, exe: &str, name: &str, key: &PublicKey) -> Result<(), KeyError> {
    check_name(name)?;
    let existing = list(path);
    if existing.iter().any(|(n, _)| n == name) {
        return Err(KeyError::NameTaken(name.to_owned()));
    }
    if let Some((other, _)) = existing.iter().find(|(_, k)| k.data == key.data) {
        return Err(KeyError::KeyTaken(other.clone()));
    }
    // Lines berth wrote earlier are rewritten with today's options.
    let mut text: String = fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| match list_line(line) {
            Some((name, key)) => line_for(exe, &name, &key),
            None => format!("{line}\n"),
        })
        .collect();
    text.push_str(&line_for(exe, name, key));
    write(path, &text)
}

pub fn remove(path: &Path, name: &str) -> Result<(), KeyError> {
    check_name(name)?;
    let text = fs::read_to_string(path).unwrap_or_default();
    let marker = format!("ssh-command --key {name}\"");
    if !text.lines().any(|l| l.contains(&marker)) {
        return Err(KeyError::NoSuchKey(name.to_owned()));
    }
    let kept: String = text.lines().filter(|l| !l.contains(&marker)).map(|l| format!("{l}\n")).collect();
    write(path, &kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host";

    #[test]
    fn parses_and_refuses() {
        let key = PublicKey::parse(KEY).unwrap();
        assert!(key.fingerprint().starts_with("SHA256:"));
        for bad in [
            "",
            "garbage",
            "ssh-ed25519 !!!",
            "command=\"sh\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
            &format!("{KEY}\n{KEY}"),
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        ] {
            assert!(PublicKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn add_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authorized_keys");
        let key = PublicKey::parse(KEY).unwrap();
        add(&path, "/usr/local/bin/berth", "alice", &key).unwrap();
        assert!(matches!(add(&path, "/usr/local/bin/berth", "alice", &key), Err(KeyError::NameTaken(_))));
        assert!(matches!(add(&path, "/usr/local/bin/berth", "bob", &key), Err(KeyError::KeyTaken(_))));
        assert!(add(&path, "/b", "x y", &key).is_err());
        assert_eq!(list(&path), vec![("alice".to_owned(), key)]);
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .starts_with("command=\"/usr/local/bin/berth ssh-command --key alice\",restrict,pty ssh-ed25519 ")
        );
        remove(&path, "alice").unwrap();
        assert!(list(&path).is_empty());
    }
}
