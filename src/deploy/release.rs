//! The release pipeline: from an image to a running release. Every way an
//! app gets new code goes through here: a push or an archive (`deploy_source`:
//! build, then release), an image berth built elsewhere (`deploy_image`:
//! `git:from-image`, `bundle:load`), and each makes its record with
//! `Release::next`, as rollbacks and restarts do.

use std::collections::BTreeMap;
use std::path::Path;

use super::DeployError;
use crate::app::{App, AppName};
use crate::build;
use crate::image::{Digest, ImageRef, Store};
use crate::model::checks::Check;
use crate::model::scripts::Scripts;
use crate::state::releases::Release;
use crate::state::{apps, events};

/// What a release records besides its image: what the build (or the
/// image's labels) says, and why it was made.
pub struct ReleaseOf {
    pub process_types: BTreeMap<String, String>,
    pub formation: BTreeMap<String, u32>,
    pub healthchecks: BTreeMap<String, Vec<Check>>,
    pub scripts: Scripts,
    pub cron: Vec<crate::model::cron::CronJob>,
    /// app.json's add-ons: provisioned before the app's first release.
    pub addons: Vec<crate::build::appjson::Addon>,
    pub git_revision: Option<String>,
    pub description: String,
}

/// `apps:lock` holds new code back (Dokku's deploy lock).
fn refuse_if_locked(app: &App) -> Result<(), DeployError> {
    if apps::meta(app)?.deploy_locked {
        return Err(DeployError::Locked(app.name.clone()));
    }
    Ok(())
}

/// Builds a source tree (a pushed commit, an archive) and releases it.
pub fn deploy_source(
    root: &Path,
    app: &App,
    source: &Path,
    revision: Option<&str>,
    description: &str,
    say: &mut dyn FnMut(&str),
) -> Result<(), DeployError> {
    refuse_if_locked(app)?;
    // app.json env first, so the build sees it and a missing required var
    // stops the push before a build; again after, for what a build wrote.
    super::appenv::settle(app, &build::declared_env(root, app, source)?, say)?;
    let built = build::build(root, app, source, revision, say)?;
    super::appenv::settle(app, &built.env, say)?;
    let what = ReleaseOf {
        process_types: built.process_types,
        formation: built.formation,
        healthchecks: built.healthchecks,
        scripts: built.scripts,
        cron: built.cron,
        addons: built.addons,
        git_revision: revision.map(str::to_owned),
        description: description.to_owned(),
    };
    release_image(root, app, &built.image, what, say)
}

/// The release of `image` that follows the app's latest, with the config
/// vars the app has now.
fn next_release(root: &Path, app: &App, image: &ImageRef, what: ReleaseOf) -> Result<Release, DeployError> {
    let digest = Store::open(root)?.resolve(image)?.digest().to_string();
    let content = Release {
        version: 0,
        description: String::new(),
        image: image.to_string(),
        image_digest: digest,
        process_types: what.process_types,
        config_vars: BTreeMap::new(),
        git_revision: what.git_revision,
        created_at: String::new(),
        formation: what.formation,
        healthchecks: what.healthchecks,
        scripts: what.scripts,
        cron: what.cron,
    };
    Ok(Release::next(&app.dir, content, &what.description, super::config_snapshot(app)?))
}

/// Releases an image in the store (just built, or pulled): predeploy and
/// the release process, the roll, the record, postdeploy, and the push to
/// the app's registry when set. A failure before the roll leaves the
/// previous release serving.
pub fn release_image(root: &Path, app: &App, image: &ImageRef, what: ReleaseOf, say: &mut dyn FnMut(&str)) -> Result<(), DeployError> {
    refuse_if_locked(app)?;
    let first = crate::state::releases::latest(&app.dir).is_none();
    let addons = what.addons.clone();
    let release = next_release(root, app, image, what)?;
    say(&format!("-----> Releasing {} v{}", app.name, release.version));
    let version = format!("v{}", release.version);
    let event = |name: &str| events::emit(root, name, &[app.name.as_str(), &version]);
    let mut step = |line: &str| say(&format!("-----> {line}"));
    if first && !addons.is_empty() {
        provision_addons(root, app, &version, &addons, &mut step)?;
    }
    events::gate(root, "pre-release", &[app.name.as_str(), &version], &mut step)?;
    before_start(root, app, &release, &mut step)?;
    events::gate(root, "pre-deploy", &[app.name.as_str(), &version], &mut step)?;
    let url = super::deploy(root, app, &release, &mut step)?;
    super::record_release(root, app, &release)?;
    event("post-deploy");
    after_serving(root, app, &release, say)?;
    event("post-release");
    say(&format!("=====> Application deployed: {url}"));
    Ok(())
}

/// The `provision-addons` trigger: APP vN, then PLAN ALIAS per add-on
/// (`-` for no alias). Plugins create and link what they serve; one that
/// fails stops the first deploy before anything runs.
fn provision_addons(
    root: &Path,
    app: &App,
    version: &str,
    addons: &[crate::build::appjson::Addon],
    step: &mut dyn FnMut(&str),
) -> Result<(), DeployError> {
    let mut args = vec![app.name.as_str(), version];
    for addon in addons {
        args.push(&addon.plan);
        args.push(addon.alias.as_deref().unwrap_or("-"));
    }
    step(&format!("Provisioning app.json add-ons: {}", addons.iter().map(|a| a.plan.as_str()).collect::<Vec<_>>().join(", ")));
    Ok(events::gate(root, "provision-addons", &args, step)?)
}

/// app.json's predeploy, then the Procfile's release process: both before
/// anything of the new release starts.
fn before_start(root: &Path, app: &App, release: &Release, step: &mut dyn FnMut(&str)) -> Result<(), DeployError> {
    let kept = |e: DeployError| DeployError::Kept(Box::new(e));
    if let Some(command) = &release.scripts.predeploy {
        super::run_phase(root, app, release, "predeploy", command, step).map_err(kept)?;
    }
    if let Some(command) = release.process_types.get("release") {
        super::run_phase(root, app, release, "release", command, step).map_err(kept)?;
    }
    Ok(())
}

/// postdeploy and the push to the app's registry: the release serves
/// already, so a failure of either is reported, not undone.
fn after_serving(root: &Path, app: &App, release: &Release, say: &mut dyn FnMut(&str)) -> Result<(), DeployError> {
    if let Some(command) = &release.scripts.postdeploy
        && let Err(e) = super::run_phase(root, app, release, "postdeploy", command, &mut |line| say(&format!("-----> {line}")))
    {
        say(&format!(" !     {e}"));
    }
    if apps::meta(app)?.registry.push_on_release {
        let tags = crate::registry::release_tags(release);
        match crate::registry::release_push(root, app, release, &tags, &mut |line| say(&format!("-----> {line}"))) {
            Ok(sent) => say(&format!("-----> Pushed {sent}")),
            Err(e) => say(&format!(" !     the push to the app's registry failed: {e}")),
        }
    }
    Ok(())
}

/// Deploys an image berth built that is in the store under `image` (pulled,
/// imported, or loaded from a bundle): the app is made if missing, the
/// image gets the app's own tag (so gc keeps it), and it is released with
/// the process types, formation, checks and scripts its labels record.
pub fn deploy_image(
    root: &Path,
    name: &AppName,
    image: &ImageRef,
    description: &str,
    say: &mut dyn FnMut(&str),
) -> Result<(), DeployError> {
    let store = Store::open(root)?;
    let descriptor = store.resolve(image)?;
    let digest = Digest::try_from(descriptor.digest()).map_err(crate::image::StoreError::from)?;
    let config = store.image_by_digest(&digest)?.config;
    let labels = config.config().as_ref().and_then(|c| c.labels().clone()).unwrap_or_default();
    let process_types: BTreeMap<String, String> = labels
        .get("io.berth.process-types")
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| DeployError::NotBerthImage(image.to_string()))?;
    if !apps::exists(root, name) {
        apps::create(root, name)?;
        say(&format!("-----> Created app {name}"));
    }
    let locked = apps::lock(root, name)?;
    let tag =
        ImageRef::new(&format!("berth/app-{name}"), &format!("img-{}", &digest.hex()[..12])).expect("app names and hex make a valid tag");
    store.set_tag(&tag, &descriptor)?;
    // Images from before the label deploy with app.json's defaults.
    let spec: build::ReleaseSpec = labels.get(build::RELEASE_SPEC_LABEL).and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
    let what = ReleaseOf {
        process_types,
        formation: spec.formation,
        healthchecks: spec.healthchecks,
        scripts: spec.scripts,
        cron: spec.cron,
        addons: spec.addons,
        git_revision: labels.get("io.berth.git-revision").cloned(),
        description: description.to_owned(),
    };
    release_image(root, &locked.app, &tag, what, say)
}
