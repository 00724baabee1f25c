//! Where in a pushed tree the app is: Dokku's `builder:set build-dir` (a
//! monorepo's subdirectory) and `app-json:set appjson-path`, as the app or
//! the host sets them.

use std::path::{Path, PathBuf};

use super::{BuildError, confined};
use crate::app::App;
use crate::model::repo_path::RepoPath;
use crate::state::apps;
use crate::state::settings::Settings;

pub struct Layout {
    build_dir: Option<RepoPath>,
    appjson_path: Option<RepoPath>,
}

impl Layout {
    /// The app's layout with the host's defaults applied.
    pub fn of(root: &Path, app: &App) -> Result<Layout, BuildError> {
        let meta = apps::meta_in_effect(app, &Settings::load(root)?)?;
        Ok(Layout { build_dir: meta.build_dir, appjson_path: meta.appjson_path })
    }

    /// The directory a build copies: the tree, or its build dir. Every
    /// name on the way must be a real directory of the tree: a pushed
    /// symlink named as the build dir would lead the root-run copy out.
    pub fn source(&self, tree: &Path) -> Result<PathBuf, BuildError> {
        let Some(dir) = &self.build_dir else { return Ok(tree.to_owned()) };
        if !confined::is_real_dir(tree, dir.as_path()) {
            return Err(BuildError::BuildDir(dir.to_string()));
        }
        Ok(tree.join(dir.as_path()))
    }

    /// Where app.json is, relative to the build dir.
    pub fn app_json(&self) -> &Path {
        self.appjson_path.as_ref().map_or(Path::new("app.json"), RepoPath::as_path)
    }
}
