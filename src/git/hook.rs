//! `berth git-hook APP`: the pre-receive hook. Pushes to the deploy branch
//! (main or master) are exported, built, released and deployed while git
//! waits; a failure rejects the push and the previous release keeps serving.

use std::io::BufRead;
use std::path::Path;

use crate::app::AppName;
use crate::build;
use crate::deploy;
use crate::image::{ImageRef, Store};
use crate::state::apps;
use crate::state::releases::{self, Release};

const ZERO: &str = "0000000000000000000000000000000000000000";

/// The refs whose pushes deploy: the app's deploy branch, else main or master.
pub fn deploy_refs(deploy_branch: Option<&str>) -> Vec<String> {
    match deploy_branch {
        Some(branch) => vec![format!("refs/heads/{branch}")],
        None => vec!["refs/heads/main".into(), "refs/heads/master".into()],
    }
}

/// Reads `old new ref` lines from stdin and deploys the deploy branch.
pub fn run(root: &Path, name: &AppName, stdin: impl BufRead, say: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    // The ssh side already holds the app's lock across receive-pack; a local
    // push (a path remote) does not, so the hook takes it then.
    let _lock = if std::env::var_os("BERTH_APP_LOCKED").is_some() { None } else { Some(apps::lock(root, name)?) };
    let app = apps::open(root, name)?;
    let meta = apps::meta(&app)?;
    let deploy_refs = deploy_refs(meta.deploy_branch.as_deref());
    for line in stdin.lines() {
        let line = line?;
        let mut parts = line.split_whitespace();
        let (Some(_old), Some(new), Some(reference)) = (parts.next(), parts.next(), parts.next()) else { continue };
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

pub fn deploy_revision(root: &Path, app: &crate::app::App, revision: &str, say: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    let short = &revision[..revision.len().min(7)];
    let source = root.join("tmp").join(format!("src-{}-{short}", app.name));
    let _ = std::fs::remove_dir_all(&source);
    std::fs::create_dir_all(&source)?;
    let result = (|| -> anyhow::Result<()> {
        super::repo::export(&super::repo::repo_dir(app), revision, &source)?;
        let built = build::build(root, app, &source, Some(revision), say)?;
        let store = Store::open(root)?;
        let image: &ImageRef = &built.image;
        let digest = store.resolve(image)?.digest().to_string();
        let release = Release {
            version: releases::next_version(&app.dir),
            description: format!("Deploy {short}"),
            image: image.to_string(),
            image_digest: digest,
            process_types: built.process_types.clone(),
            config_vars: crate::deploy::config_snapshot(app)?,
            git_revision: Some(revision.to_owned()),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            formation: built.formation.clone(),
            healthchecks: built.healthchecks.clone(),
            scripts: built.scripts.clone(),
        };
        say(&format!("-----> Releasing {} v{}", app.name, release.version));
        let mut step = |line: &str| say(&format!("-----> {line}"));
        // Before anything starts: app.json's predeploy, then the Procfile's release process.
        let kept = |e: deploy::DeployError| anyhow::anyhow!("{e}; the previous release keeps serving");
        if let Some(command) = &release.scripts.predeploy {
            deploy::run_phase(root, app, &release, "predeploy", command, &mut step).map_err(kept)?;
        }
        if let Some(command) = release.process_types.get("release") {
            deploy::run_phase(root, app, &release, "release", command, &mut step).map_err(kept)?;
        }
        let url = deploy::deploy(root, app, &release, &mut step)?;
        deploy::record_release(root, app, &release)?;
        if let Some(command) = &release.scripts.postdeploy {
            // The release serves already: a failing postdeploy is reported, not undone.
            if let Err(e) = deploy::run_phase(root, app, &release, "postdeploy", command, &mut step) {
                say(&format!(" !     {e}"));
            }
        }
        say(&format!("=====> Application deployed: {url}"));
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&source);
    result
}
