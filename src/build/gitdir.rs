//! Dokku's keep-git-dir: a build that sees the app's `.git`.

use std::ffi::OsString;
use std::path::Path;

use super::BuildError;

/// Makes `target/.git` a repository at `revision`, with the objects of the
/// app's bare `repo`, for builds that keep it (Dokku's keep-git-dir).
/// `target` already holds the revision's files, so the index is set and
/// the files are left alone. The repository is new: no hook or config from
/// a push. During a push the new objects are still in git's quarantine
/// (the hook's GIT_OBJECT_DIRECTORY): they are read from there too.
pub fn attach(repo: &Path, revision: &str, target: &Path) -> Result<(), BuildError> {
    let failed = |why: String| BuildError::GitDir { revision: revision.to_owned(), why };
    if revision.len() != 40 || !revision.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(failed("not a commit id".into()));
    }
    let mut sources = OsString::new();
    if let Some(quarantine) = std::env::var_os("GIT_QUARANTINE_PATH") {
        sources.push(quarantine);
        sources.push(":");
    }
    sources.push(repo.join("objects"));
    // init first, then the steps that read the app's objects as alternates;
    // repack copies what HEAD needs into the new repository.
    let steps: [(&[&str], bool); 4] = [
        (&["init", "--quiet"], false),
        (&["reset", "--quiet", revision], true),
        (&["repack", "-a", "-d", "-q"], true),
        (&["gc", "--quiet", "--prune=now"], false),
    ];
    for (step, alternates) in steps {
        let mut git = std::process::Command::new("git");
        git.arg("-C").arg(target);
        // The work tree is the app user's; a push's environment names another repository.
        git.args(["-c", "safe.directory=*"]).args(step);
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_OBJECT_DIRECTORY",
            "GIT_QUARANTINE_PATH",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        ] {
            git.env_remove(var);
        }
        if alternates {
            git.env("GIT_ALTERNATE_OBJECT_DIRECTORIES", &sources);
        }
        let out =
            git.env("GIT_CONFIG_NOSYSTEM", "1").env("HOME", "/nonexistent").output().map_err(|e| failed(format!("cannot run git: {e}")))?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            return Err(failed(said.lines().next().unwrap_or("git failed").trim().to_owned()));
        }
    }
    Ok(())
}
