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
        deploy_source(root, app, &source, Some(revision), &format!("Deploy {short}"), say)
    })();
    let _ = std::fs::remove_dir_all(&source);
    result
}

/// Builds a source tree (a pushed commit, an archive) and releases it.
pub fn deploy_source(
    root: &Path,
    app: &crate::app::App,
    source: &Path,
    revision: Option<&str>,
    description: &str,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let built = build::build(root, app, source, revision, say)?;
    let what = ReleaseOf {
        process_types: built.process_types,
        formation: built.formation,
        healthchecks: built.healthchecks,
        scripts: built.scripts,
        git_revision: revision.map(str::to_owned),
        description: description.to_owned(),
    };
    release_image(root, app, &built.image, what, say)
}

/// What a release records besides its image.
pub struct ReleaseOf {
    pub process_types: std::collections::BTreeMap<String, String>,
    pub formation: std::collections::BTreeMap<String, u32>,
    pub healthchecks: std::collections::BTreeMap<String, Vec<crate::deploy::checks::Check>>,
    pub scripts: crate::build::appjson::Scripts,
    pub git_revision: Option<String>,
    pub description: String,
}

/// Releases an image in the store (just built, or pulled by
/// `git:from-image`): predeploy and the release process, the roll, the
/// record, postdeploy, and the push to the app's registry when set.
pub fn release_image(
    root: &Path,
    app: &crate::app::App,
    image: &ImageRef,
    what: ReleaseOf,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let store = Store::open(root)?;
    let digest = store.resolve(image)?.digest().to_string();
    let release = Release {
        version: releases::next_version(&app.dir),
        description: what.description,
        image: image.to_string(),
        image_digest: digest,
        process_types: what.process_types,
        config_vars: crate::deploy::config_snapshot(app)?,
        git_revision: what.git_revision,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        formation: what.formation,
        healthchecks: what.healthchecks,
        scripts: what.scripts,
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
    if crate::state::apps::meta(app)?.registry.push_on_release {
        // The release serves already: a failed push is reported, not undone.
        match crate::registry::release_push(root, app, &release, &crate::registry::release_tags(&release), &mut |line| {
            say(&format!("-----> {line}"))
        }) {
            Ok(sent) => say(&format!("-----> Pushed {sent}")),
            Err(e) => say(&format!(" !     the push to the app's registry failed: {e}")),
        }
    }
    say(&format!("=====> Application deployed: {url}"));
    Ok(())
}

/// Deploys an image berth built that is in the store under `image` (pulled,
/// imported, or loaded from a bundle): the app is made if missing, the
/// image gets the app's own tag (so gc keeps it), and it is released with
/// the process types its label records.
pub fn deploy_image(
    root: &Path,
    name: &crate::app::AppName,
    image: &ImageRef,
    description: &str,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    use anyhow::Context;
    let store = Store::open(root)?;
    let descriptor = store.resolve(image)?;
    let digest = crate::image::Digest::try_from(descriptor.digest())?;
    let config = store.image_by_digest(&digest)?.config;
    let labels = config.config().as_ref().and_then(|c| c.labels().clone()).unwrap_or_default();
    let process_types: std::collections::BTreeMap<String, String> = labels
        .get("io.berth.process-types")
        .and_then(|t| serde_json::from_str(t).ok())
        .with_context(|| format!("{image} was not built by berth (no io.berth.process-types label): berth deploys its own images"))?;
    if !crate::state::apps::exists(root, name) {
        crate::state::apps::create(root, name)?;
        say(&format!("-----> Created app {name}"));
    }
    let locked = crate::state::apps::lock(root, name)?;
    let tag = ImageRef::new(&format!("berth/app-{name}"), &format!("img-{}", &digest.hex()[..12]))?;
    store.set_tag(&tag, &descriptor)?;
    // Images from before the label deploy with app.json's defaults.
    let spec: build::ReleaseSpec = labels.get(build::RELEASE_SPEC_LABEL).and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
    let what = ReleaseOf {
        process_types,
        formation: spec.formation,
        healthchecks: spec.healthchecks,
        scripts: spec.scripts,
        git_revision: labels.get("io.berth.git-revision").cloned(),
        description: description.to_owned(),
    };
    release_image(root, &locked.app, &tag, what, say)
}
