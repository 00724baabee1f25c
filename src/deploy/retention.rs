//! Which of an app's images the store keeps: those of its last N releases
//! (`releases:set APP keep N`, default 20) and the latest build. Tags of
//! older images are removed after each release; `store:gc` frees them.

use std::collections::BTreeSet;
use std::path::Path;

use super::DeployError;
use crate::app::App;
use crate::image::{Digest, ImageRef, Store};
use crate::state::{apps, releases};

pub const DEFAULT_KEEP: u32 = 20;

pub fn app_repository(app: &App) -> String {
    format!("berth/app-{}", app.name)
}

/// The image digests of the releases inside the app's window, newest first.
pub fn kept_releases(app: &App) -> Result<Vec<(u64, Digest)>, DeployError> {
    let keep = apps::meta(app)?.keep_releases.unwrap_or(DEFAULT_KEEP) as usize;
    let mut all = releases::list(&app.dir);
    all.reverse();
    Ok(all.into_iter().take(keep).filter_map(|r| Some((r.version, r.image_digest.parse().ok()?))).collect())
}

/// Removes the app's image tags that no release in the window uses (the
/// `latest` tag stays). Returns the tags removed.
pub fn prune(root: &Path, app: &App) -> Result<Vec<String>, DeployError> {
    let store = Store::open(root)?;
    let kept: BTreeSet<Digest> = kept_releases(app)?.into_iter().map(|(_, d)| d).collect();
    let repository = app_repository(app);
    let mut removed = Vec::new();
    for (tag, descriptor) in store.tags()? {
        let Ok(name) = tag.parse::<ImageRef>() else { continue };
        if name.repository() != repository || name.tag() == "latest" {
            continue;
        }
        let Ok(digest) = Digest::try_from(descriptor.digest()) else { continue };
        if !kept.contains(&digest) {
            store.remove_tag(&name)?;
            removed.push(tag);
        }
    }
    Ok(removed)
}
