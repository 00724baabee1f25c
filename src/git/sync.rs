//! `git:sync`: a branch, tag or commit of a remote repository fetched into
//! an app's bare repository and put on its deploy branch, as a push would.
//! The git binary fetches (it speaks every transport); `ext::` and other
//! command-running transports are refused, and a URL never reaches git's
//! argv where it could pass for an option.

use std::path::Path;
use std::process::Command;

use git2::Repository;

/// Where a sync parks the remote's refs while it resolves the one asked for.
const PARKED: &str = "refs/berth-sync";

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0:?} is not a repository URL berth fetches (https://, http://, git://, ssh://, file:// or an absolute path)")]
    BadUrl(String),
    #[error("{0:?} is not a branch, tag or commit name berth accepts")]
    BadRef(String),
    #[error("cannot fetch {url}: {why}")]
    Fetch { url: String, why: String },
    #[error("{url} has no branch, tag or commit {reference}")]
    NoRef { url: String, reference: String },
    #[error("git {action} failed: {source}")]
    Git {
        action: &'static str,
        #[source]
        source: git2::Error,
    },
}

/// What a reference named: the commit, and the branch when it was one.
pub struct Synced {
    pub commit: String,
    pub branch: Option<String>,
}

pub fn check_url(url: &str) -> Result<(), SyncError> {
    let schemes = ["https://", "http://", "git://", "ssh://", "file://"];
    let ok = url.len() <= 2048
        && (schemes.iter().any(|s| url.starts_with(s)) || url.starts_with('/'))
        && !url.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok { Ok(()) } else { Err(SyncError::BadUrl(url.to_owned())) }
}

pub fn check_ref(reference: &str) -> Result<(), SyncError> {
    let ok = !reference.is_empty()
        && reference.len() <= 255
        && !reference.starts_with(['-', '/'])
        && !reference.contains("..")
        && !reference.ends_with(['/', '.'])
        && reference.chars().all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c));
    if ok { Ok(()) } else { Err(SyncError::BadRef(reference.to_owned())) }
}

/// Fetches `url`'s branches, tags and HEAD into `repo` and resolves
/// `reference` (default: the remote's HEAD) among them.
/// `home` holds the host's credentials (git:auth, the deploy key); `None`
/// fetches without any, for callers who may not use them.
pub fn fetch(repo: &Path, home: Option<&super::remote_auth::GitHome>, url: &str, reference: Option<&str>) -> Result<Synced, SyncError> {
    check_url(url)?;
    if let Some(r) = reference {
        check_ref(r)?;
    }
    let specs = [format!("+HEAD:{PARKED}/HEAD"), format!("+refs/heads/*:{PARKED}/heads/*"), format!("+refs/tags/*:{PARKED}/tags/*")];
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "protocol.ext.allow=never", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--"])
        .arg(url)
        .args(&specs)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", "file:git:http:https:ssh")
        .env("HOME", "/nonexistent")
        .envs(home.map(|h| h.fetch_env()).unwrap_or_default())
        .output()
        .map_err(|e| SyncError::Fetch { url: url.to_owned(), why: format!("cannot run git: {e}") })?;
    let result = if out.status.success() {
        resolve(repo, url, reference)
    } else {
        let said = String::from_utf8_lossy(&out.stderr);
        // git's own words, first line only: the caller prints one sentence.
        Err(SyncError::Fetch { url: url.to_owned(), why: said.lines().next().unwrap_or("git fetch failed").trim().to_owned() })
    };
    unpark(repo);
    result
}

fn resolve(repo: &Path, url: &str, reference: Option<&str>) -> Result<Synced, SyncError> {
    let repo = Repository::open_bare(repo).map_err(|source| SyncError::Git { action: "open", source })?;
    let commit_of = |name: &str| repo.revparse_single(name).ok().and_then(|o| o.peel_to_commit().ok()).map(|c| c.id().to_string());
    let missing = || SyncError::NoRef { url: url.to_owned(), reference: reference.unwrap_or("HEAD").to_owned() };
    let Some(wanted) = reference else {
        return commit_of(&format!("{PARKED}/HEAD")).map(|commit| Synced { commit, branch: None }).ok_or_else(missing);
    };
    if let Some(commit) = commit_of(&format!("{PARKED}/heads/{wanted}")) {
        return Ok(Synced { commit, branch: Some(wanted.to_owned()) });
    }
    if let Some(commit) = commit_of(&format!("{PARKED}/tags/{wanted}")) {
        return Ok(Synced { commit, branch: None });
    }
    // A commit id (or its prefix) among what was fetched.
    let hex = wanted.len() >= 4 && wanted.chars().all(|c| c.is_ascii_hexdigit());
    hex.then(|| commit_of(wanted)).flatten().map(|commit| Synced { commit, branch: None }).ok_or_else(missing)
}

/// Drops the parked refs (the objects stay; the deploy branch keeps what it needs).
fn unpark(repo: &Path) {
    let Ok(repo) = Repository::open_bare(repo) else { return };
    let Ok(refs) = repo.references_glob(&format!("{PARKED}/*")) else { return };
    let names: Vec<String> = refs.flatten().filter_map(|r| r.name().ok().map(str::to_owned)).collect();
    for name in names {
        if let Ok(mut r) = repo.find_reference(&name) {
            let _ = r.delete();
        }
    }
}

/// Points `refs/heads/BRANCH` at `commit`; returns whether it moved.
pub fn set_branch(repo: &Path, branch: &str, commit: &str) -> Result<bool, SyncError> {
    let git = |action| move |source| SyncError::Git { action, source };
    let repo = Repository::open_bare(repo).map_err(git("open"))?;
    let name = format!("refs/heads/{branch}");
    let before = repo.refname_to_id(&name).ok().map(|id| id.to_string());
    if before.as_deref() == Some(commit) {
        return Ok(false);
    }
    let id = git2::Oid::from_str(commit).map_err(git("read the commit id"))?;
    repo.reference(&name, id, true, "berth git:sync").map_err(git("update the branch"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_refs_are_checked_before_git_sees_them() {
        for good in ["https://example.test/a.git", "file:///srv/a", "/srv/a", "ssh://git@example.test/a"] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for bad in ["", "--upload-pack=id", "ext::sh -c id", "a.git", "https://x/ y", "fd::3"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        for good in ["main", "v1.2", "feature/x", "97e6c72"] {
            assert!(check_ref(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a..b", "a/", "a b", "HEAD@{1}", "/abs"] {
            assert!(check_ref(bad).is_err(), "{bad}");
        }
    }
}
