//! `berth git-hook APP`: the pre-receive hook. Pushes to the deploy branch
//! (main or master) are exported, built, released and deployed while git
//! waits; a failure rejects the push and the previous release keeps serving.

use std::io::BufRead;
use std::path::Path;

use super::repo::{self, RepoError};
use crate::app::{App, AppName};
use crate::deploy::{DeployError, release};
use crate::state::apps::{self, AppsError};

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("cannot read the pushed refs: {0}")]
    Stdin(#[source] std::io::Error),
    #[error(transparent)]
    Scratch(#[from] crate::state::PathIo),
    #[error(transparent)]
    Apps(#[from] AppsError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error(transparent)]
    Settings(#[from] crate::state::settings::SettingsError),
    #[error(transparent)]
    Trigger(#[from] crate::state::triggers::TriggerError),
}

const ZERO: &str = "0000000000000000000000000000000000000000";

/// The refs whose pushes deploy: the app's deploy branch, else main or master.
pub fn deploy_refs(deploy_branch: Option<&str>) -> Vec<String> {
    match deploy_branch {
        Some(branch) => vec![format!("refs/heads/{branch}")],
        None => vec!["refs/heads/main".into(), "refs/heads/master".into()],
    }
}

/// Reads `old new ref` lines from stdin and deploys the deploy branch.
pub fn run(root: &Path, name: &AppName, stdin: impl BufRead, say: &mut dyn FnMut(&str)) -> Result<(), HookError> {
    // The ssh side already holds the app's lock across receive-pack; a local
    // push (a path remote) does not, so the hook takes it then.
    let _lock = if std::env::var_os("BERTH_APP_LOCKED").is_some() { None } else { Some(apps::lock(root, name)?) };
    let app = apps::open(root, name)?;
    let meta = apps::meta_in_effect(&app, &crate::state::settings::Settings::load(root)?)?;
    let deploy_refs = deploy_refs(meta.deploy_branch.as_deref());
    let mut pushed = Vec::new();
    for line in stdin.lines() {
        let line = line.map_err(HookError::Stdin)?;
        if let [old, new, reference] = line.split_whitespace().collect::<Vec<_>>()[..] {
            pushed.push((old.to_owned(), new.to_owned(), reference.to_owned()));
        }
    }
    // Plugins may refuse any pushed ref before anything of the push is used.
    for (old, new, reference) in &pushed {
        let mut step = |line: &str| say(&format!("-----> {line}"));
        crate::state::events::gate(root, "pre-receive", &[app.name.as_str(), old, new, reference], &mut step)?;
    }
    for (_, new, reference) in &pushed {
        let (new, reference) = (new.as_str(), reference.as_str());
        if new == ZERO {
            say(&format!("-----> {reference} deleted"));
        } else if deploy_refs.iter().any(|r| r == reference) {
            deploy_revision(root, &app, new, say)?;
        } else {
            let branches: Vec<&str> = deploy_refs.iter().map(|r| r.trim_start_matches("refs/heads/")).collect();
            say(&format!("-----> {reference} stored; only {} is deployed", branches.join(" or ")));
        }
    }
    Ok(())
}

/// Exports `revision` of the app's repository into a scratch tree and
/// deploys it; the tree goes away either way.
pub fn deploy_revision(root: &Path, app: &App, revision: &str, say: &mut dyn FnMut(&str)) -> Result<(), HookError> {
    let cap = crate::state::settings::Settings::load(root)?.limits.archive_bytes;
    let short = &revision[..revision.len().min(7)];
    crate::state::events::emit(root, "receive-app", &[app.name.as_str(), revision]);
    let source = root.join("tmp").join(format!("src-{}-{short}", app.name));
    let _ = std::fs::remove_dir_all(&source);
    std::fs::create_dir_all(&source).map_err(|e| crate::state::PathIo { action: "make", path: source.clone(), source: e })?;
    let result = repo::export(&repo::repo_dir(app), revision, &source, cap)
        .map_err(HookError::from)
        .and_then(|()| Ok(release::deploy_source(root, app, &source, Some(revision), &format!("Deploy {short}"), say)?));
    let _ = std::fs::remove_dir_all(&source);
    result
}
