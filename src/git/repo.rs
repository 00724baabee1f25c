//! The bare repository of an app (`apps/<app>/repo.git`) and its
//! pre-receive hook, which hands the pushed refs to `berth git-hook APP`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::app::App;
use crate::state::atomic;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("git {action} failed: {why}")]
    Git { action: &'static str, why: String },
    #[error("cannot write the hook {path}: {source}")]
    Hook {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn repo_dir(app: &App) -> PathBuf {
    app.dir.join("repo.git")
}

/// Creates the bare repository if needed and (re)writes its hook so it
/// always calls this berth binary.
pub fn ensure(root: &Path, app: &App) -> Result<PathBuf, RepoError> {
    let dir = repo_dir(app);
    if !dir.join("HEAD").exists() {
        let out = Command::new("git")
            .args(["init", "--bare", "--quiet", "--initial-branch=main"])
            .arg(&dir)
            .output()
            .map_err(|e| RepoError::Git { action: "init", why: e.to_string() })?;
        if !out.status.success() {
            return Err(RepoError::Git { action: "init", why: String::from_utf8_lossy(&out.stderr).trim().to_owned() });
        }
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/local/bin/berth"));
    // The repository belongs to this BERTH_ROOT, whoever pushes to it.
    let hook = format!(
        "#!/bin/sh\n# Written by berth: every push to this repository is handed to berth.\nBERTH_ROOT='{}' exec '{}' git-hook '{}'\n",
        root.display(),
        exe.display(),
        app.name
    );
    let path = dir.join("hooks/pre-receive");
    let hook_err = |source| RepoError::Hook { path: path.clone(), source };
    atomic::write_atomic(&path, hook.as_bytes()).map_err(|e| hook_err(e.source))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(hook_err)?;
    Ok(dir)
}

/// Writes the tree of `revision` into `target` (git archive, unpacked with
/// the tar crate: no shell, no external tar).
pub fn export(repo: &Path, revision: &str, target: &Path) -> Result<(), RepoError> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(["archive", "--format=tar", revision])
        .output()
        .map_err(|e| RepoError::Git { action: "archive", why: e.to_string() })?;
    if !out.status.success() {
        return Err(RepoError::Git { action: "archive", why: String::from_utf8_lossy(&out.stderr).trim().to_owned() });
    }
    let mut archive = tar::Archive::new(&out.stdout[..]);
    archive.set_preserve_permissions(true);
    archive.unpack(target).map_err(|e| RepoError::Git { action: "archive unpack", why: e.to_string() })
}
