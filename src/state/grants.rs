//! Who an ssh key is: an admin, or a key scoped to some apps. The table is
//! root's own (`$BERTH_ROOT/ssh-grants.json`, 0600): the unprivileged `berth`
//! user that sshd runs the forced command as can neither read nor change it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::{self, WriteError};
use super::lock::{FileLock, LockError};
use crate::app::AppName;

#[derive(Debug, thiserror::Error)]
pub enum GrantsError {
    #[error(transparent)]
    Read(#[from] super::PathIo),
    #[error("the key table {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// What one key may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Every command, host-level ones included.
    #[serde(default)]
    pub admin: bool,
    /// May create apps (`apps:create`, or a push to a new name); each app it
    /// creates is granted to it.
    #[serde(default)]
    pub create: bool,
    /// The apps it may push to and run app commands for.
    #[serde(default)]
    pub apps: BTreeSet<AppName>,
}

impl Grant {
    pub fn may_use(&self, app: &AppName) -> bool {
        self.admin || self.apps.contains(app)
    }
}

/// Every key's grant, by key name.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Grants {
    #[serde(default)]
    pub keys: BTreeMap<String, Grant>,
}

fn path(root: &Path) -> PathBuf {
    root.join("ssh-grants.json")
}

impl Grants {
    pub fn load(root: &Path) -> Result<Grants, GrantsError> {
        let path = path(root);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| GrantsError::Corrupt { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Grants::default()),
            Err(source) => Err(super::PathIo { action: "read", path, source }.into()),
        }
    }

    /// A key's grant; a key berth has no record of may do nothing.
    pub fn of(&self, key: &str) -> Grant {
        self.keys.get(key).cloned().unwrap_or_default()
    }
}

/// Changes the table under its lock: load, change, write atomically as a secret.
pub fn update<T>(root: &Path, change: impl FnOnce(&mut Grants) -> T) -> Result<T, GrantsError> {
    let _lock = FileLock::acquire(&root.join("ssh-grants.lock"))?;
    let mut grants = Grants::load(root)?;
    let out = change(&mut grants);
    let json = serde_json::to_vec_pretty(&grants).expect("grants serialise");
    atomic::write_secret(&path(root), &json)?;
    Ok(out)
}

/// After `apps:rename`, keys that had OLD have NEW; after `apps:destroy`
/// (`to` None), nobody keeps a grant that a new app of the same name would inherit.
pub fn follow_app(root: &Path, from: &AppName, to: Option<&AppName>) -> Result<(), GrantsError> {
    if !path(root).exists() {
        return Ok(());
    }
    update(root, |grants| {
        for grant in grants.keys.values_mut() {
            if grant.apps.remove(from)
                && let Some(to) = to
            {
                grant.apps.insert(to.clone());
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> AppName {
        AppName::parse(std::ffi::OsStr::new(s)).unwrap()
    }

    #[test]
    fn grants_follow_renames_and_destroys_and_stay_private() {
        let dir = tempfile::tempdir().unwrap();
        update(dir.path(), |g| {
            g.keys.insert("alice".into(), Grant { admin: false, create: false, apps: [name("a"), name("b")].into() });
        })
        .unwrap();
        follow_app(dir.path(), &name("a"), Some(&name("c"))).unwrap();
        follow_app(dir.path(), &name("b"), None).unwrap();
        let grant = Grants::load(dir.path()).unwrap().of("alice");
        assert!(grant.may_use(&name("c")) && !grant.may_use(&name("a")) && !grant.may_use(&name("b")));
        assert!(!Grants::load(dir.path()).unwrap().of("nobody").may_use(&name("c")));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(path(dir.path())).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
