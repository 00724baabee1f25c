//! `apps:rebase` and `stacks:outdated`: an app image is the stack's run
//! image with a dependency layer and an app layer on top, and neither of
//! those holds anything of the run image. So after a newer run image of
//! the same stack (a security update) a new release can be made without a
//! build: the new run image's layers, then the app's own layers as they
//! are, released with the usual zero-downtime roll.

use std::path::Path;

use super::DeployError;
use super::release::{ReleaseOf, release_image};
use crate::app::App;
use crate::build::{STACK_LABEL, STACK_LAYERS_LABEL, STACK_NAME_LABEL};
use crate::image::store::Image;
use crate::image::{Digest, ImageRef, Store};
use crate::stack::StackName;
use crate::state::apps;
use crate::state::releases::Release;
use crate::state::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    #[error(
        "the image of {app}'s current release does not say which stack it was built on (built before berth recorded it): deploy it once more"
    )]
    Unrecorded { app: crate::app::AppName },
    #[error("{app} was built on the {built} stack and now builds on {now}: a change of stack needs a build (ps:rebuild {app})")]
    StackChanged { app: crate::app::AppName, built: String, now: String },
    #[error("the {stack} stack has no run image on this host: stacks:build {stack} or stacks:pull first")]
    NoRunImage { stack: String },
}

/// Where an app's current release stands against its stack's run image.
pub struct Standing {
    pub stack: String,
    pub built_on: String,
    pub newest: Image,
    current: Image,
    stack_layers: usize,
    release: Release,
}

impl Standing {
    pub fn outdated(&self) -> bool {
        self.built_on != self.newest.manifest_digest.to_string()
    }
}

fn label<'a>(image: &'a Image, key: &str) -> Option<&'a String> {
    image.config.config().as_ref()?.labels().as_ref()?.get(key)
}

/// The current release's image and the newest run image of the stack the
/// app builds on; refused when that is not the stack the image is on.
pub fn standing(root: &Path, app: &App) -> Result<Standing, DeployError> {
    let release = super::current_release(app)?;
    let store = Store::open(root)?;
    let current = store.image_by_digest(&release.image_digest.parse::<Digest>()?)?;
    let unrecorded = || RebaseError::Unrecorded { app: app.name.clone() };
    let built = label(&current, STACK_NAME_LABEL).cloned().ok_or_else(unrecorded)?;
    let built_on = label(&current, STACK_LABEL).cloned().ok_or_else(unrecorded)?;
    // An image from elsewhere (git:from-image) carries whatever labels it
    // likes: the count must leave the app at least one layer of its own.
    let stack_layers: usize = label(&current, STACK_LAYERS_LABEL)
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..current.manifest.layers().len()).contains(n))
        .ok_or_else(unrecorded)?;
    let meta = apps::meta_in_effect(app, &Settings::load(root)?)?;
    let now = meta.stack.unwrap_or_else(|| crate::build::DEFAULT_STACK.to_owned());
    if now != built {
        return Err(RebaseError::StackChanged { app: app.name.clone(), built, now }.into());
    }
    let name = StackName::parse(&now).map_err(|_| RebaseError::NoRunImage { stack: now.clone() })?;
    let newest = store.image(&name.run_image()).map_err(|_| RebaseError::NoRunImage { stack: now.clone() })?;
    Ok(Standing { stack: now, built_on, newest, current, stack_layers, release })
}

/// The current image's config over the new run image: its layers (and
/// their history) first, the run image's environment updated, the labels
/// saying which run image it is on now.
fn rebased_config(standing: &Standing) -> oci_spec::image::ImageConfiguration {
    let (current, newest) = (&standing.current.config, &standing.newest.config);
    let mut config = current.clone();
    let mut rootfs = config.rootfs().clone();
    let mut diff_ids = newest.rootfs().diff_ids().clone();
    diff_ids.extend(current.rootfs().diff_ids().iter().skip(standing.stack_layers).cloned());
    rootfs.set_diff_ids(diff_ids);
    config.set_rootfs(rootfs);
    let mut history = newest.history().clone().unwrap_or_default();
    let own = current.history().clone().unwrap_or_default();
    history.extend(own.into_iter().filter(|h| h.created_by().as_deref().is_some_and(|c| c.starts_with("berth build "))));
    config.set_history(Some(history));
    let mut inner = config.config().clone().unwrap_or_default();
    let mut env = inner.env().clone().unwrap_or_default();
    for var in newest.config().as_ref().and_then(|c| c.env().clone()).unwrap_or_default() {
        let key = var.split('=').next().unwrap_or_default().to_owned();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(var);
    }
    inner.set_env(Some(env));
    let mut labels = inner.labels().clone().unwrap_or_default();
    let stack_labels = newest.config().as_ref().and_then(|c| c.labels().clone()).unwrap_or_default();
    labels.extend(stack_labels.into_iter().filter(|(k, _)| k.starts_with("io.berth.stack.")));
    labels.insert(STACK_LABEL.into(), standing.newest.manifest_digest.to_string());
    labels.insert(STACK_LAYERS_LABEL.into(), standing.newest.manifest.layers().len().to_string());
    inner.set_labels(Some(labels));
    config.set_config(Some(inner));
    config
}

/// Writes the rebased image (tagged `berth/app-APP:rebase-HEX`) and
/// releases it like any other image. Returns false when the app is on the
/// newest run image already.
pub fn rebase(root: &Path, app: &App, say: &mut dyn FnMut(&str)) -> Result<bool, DeployError> {
    let standing = standing(root, app)?;
    if !standing.outdated() {
        say(&format!("-----> {} is on the newest run image of the {} stack already", app.name, standing.stack));
        return Ok(false);
    }
    say(&format!(
        "-----> Rebasing {} onto the {} stack's run image {} (no build)",
        app.name,
        standing.stack,
        &standing.newest.manifest_digest.to_string()[..19]
    ));
    let store = Store::open(root)?;
    let mut layers = standing.newest.layers()?;
    layers.extend(standing.current.layers()?.into_iter().skip(standing.stack_layers));
    let config = rebased_config(&standing);
    let tag = ImageRef::new(&format!("berth/app-{}", app.name), &format!("rebase-{}", &standing.newest.manifest_digest.hex()[..12]))
        .expect("app names and hex make a valid tag");
    let _writing = store.writing()?;
    store.write_image(&tag, &layers, &config)?;
    let release = standing.release;
    let what = ReleaseOf {
        process_types: release.process_types,
        formation: release.formation,
        healthchecks: release.healthchecks,
        scripts: release.scripts,
        cron: release.cron,
        addons: Vec::new(),
        git_revision: release.git_revision,
        description: format!("Rebase of v{} onto the {} stack's newest run image", release.version, standing.stack),
    };
    release_image(root, app, &tag, what, say)?;
    Ok(true)
}

/// Deployed apps whose current release is on an older run image of the
/// stack they build on, with that stack. Apps that cannot be rebased
/// (never deployed, stack changed, built before the labels) are left out.
pub fn outdated(root: &Path) -> Result<Vec<(crate::app::AppName, String)>, DeployError> {
    let mut found = Vec::new();
    for name in apps::list(root)? {
        let app = apps::open(root, &name)?;
        if let Ok(standing) = standing(root, &app)
            && standing.outdated()
        {
            found.push((name, standing.stack));
        }
    }
    Ok(found)
}
