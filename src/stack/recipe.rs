//! A stack recipe (`stacks/<name>/recipe.toml`): suite, package lists, user.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::image::Digest;

/// Bumped when the way berth turns a recipe into images changes, so cached
/// stacks built the old way are not reused.
const BUILDER_VERSION: &str = "berth-stack-builder-1";

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("cannot read stack recipe {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("stack recipe {path} is invalid: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("stack recipe {path} is invalid: {why}")]
    Invalid { path: PathBuf, why: String },
}

/// What a recipe makes: a stack apps build and run on, or the one image a
/// backing service (a database) runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Stack,
    Service,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    #[serde(default)]
    pub kind: Kind,
    pub suite: String,
    pub variant: String,
    pub run_packages: Vec<String>,
    pub build_packages: Vec<String>,
    /// Python tools from the package index put into the build image only
    /// (`uv`), each `NAME==VERSION --hash=sha256:HEX`: pip installs them
    /// with `--require-hashes`, so a wheel that is not that one is refused.
    #[serde(default)]
    pub build_python_tools: Vec<String>,
    /// Paths (relative to the tree's root) removed once the packages are in:
    /// what a package's install script makes that the image must not hold.
    #[serde(default)]
    pub prune: Vec<String>,
    pub user: User,
    /// sha256 of the recipe file and the builder version: the cache key.
    #[serde(skip)]
    pub hash: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub home: String,
}

/// `name==version --hash=sha256:<64 hex>`: a pin pip can check, nothing more.
fn is_pinned_tool(line: &str) -> bool {
    let Some((pin, hash)) = line.split_once(" --hash=sha256:") else { return false };
    let Some((name, version)) = pin.split_once("==") else { return false };
    let word = |w: &str, extra: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c));
    word(name, "-_.") && word(version, ".") && hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

fn is_package_name(p: &str) -> bool {
    // Debian policy: lowercase letters, digits, + - . ; at least two characters.
    p.len() >= 2
        && p.starts_with(|c: char| c.is_ascii_alphanumeric())
        && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_tree_path(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty() && path.components().all(|c| matches!(c, std::path::Component::Normal(_)))
}

impl Recipe {
    pub fn load(dir: &Path) -> Result<Recipe, RecipeError> {
        let path = dir.join("recipe.toml");
        let text = std::fs::read_to_string(&path).map_err(|source| RecipeError::Read { path: path.clone(), source })?;
        let mut recipe: Recipe = toml::from_str(&text).map_err(|source| RecipeError::Parse { path: path.clone(), source })?;
        let invalid = |why: String| RecipeError::Invalid { path: path.clone(), why };
        // Names end up as mmdebstrap and useradd arguments: check their shape here.
        for p in recipe.run_packages.iter().chain(&recipe.build_packages) {
            if !is_package_name(p) {
                return Err(invalid(format!("{p:?} is not a Debian package name")));
            }
        }
        if !is_word(&recipe.suite) || !is_word(&recipe.variant) || !is_word(&recipe.user.name) {
            return Err(invalid("suite, variant and user name must be lowercase words".into()));
        }
        if let Some(bad) = recipe.prune.iter().find(|p| !is_tree_path(p)) {
            return Err(invalid(format!("prune path {bad:?} must be relative, without . or ..")));
        }
        if let Some(bad) = recipe.build_python_tools.iter().find(|t| !is_pinned_tool(t)) {
            return Err(invalid(format!("build_python_tools entry {bad:?} is not NAME==VERSION --hash=sha256:HEX")));
        }
        if recipe.kind == Kind::Service && !(recipe.build_packages.is_empty() && recipe.build_python_tools.is_empty()) {
            return Err(invalid("a service image has no build image: build_packages and build_python_tools must be empty".into()));
        }
        if !recipe.user.home.starts_with('/') || recipe.user.home.contains("..") || recipe.user.uid == 0 {
            return Err(invalid("the user needs an absolute home and a uid other than 0".into()));
        }
        let mut keyed = BUILDER_VERSION.as_bytes().to_vec();
        keyed.extend_from_slice(text.as_bytes());
        recipe.hash = Digest::of(&keyed).hex().to_owned();
        Ok(recipe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_recipe_loads() {
        let recipe = Recipe::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/bookworm")).unwrap();
        assert_eq!(recipe.suite, "bookworm");
        assert_eq!(recipe.user.uid, 1000);
        assert_eq!(recipe.hash.len(), 64);
    }

    #[test]
    fn refuses_option_smuggling_in_package_names() {
        let dir = tempfile::tempdir().unwrap();
        let text = "suite = \"bookworm\"\nvariant = \"minbase\"\nrun_packages = [\"--hook=x\"]\nbuild_packages = []\n[user]\nname = \"app\"\nuid = 1000\nhome = \"/home/app\"\n";
        std::fs::write(dir.path().join("recipe.toml"), text).unwrap();
        assert!(Recipe::load(dir.path()).unwrap_err().to_string().contains("not a Debian package name"));
    }

    #[test]
    fn the_service_recipes_load_and_prune_only_inside_the_tree() {
        let kinds = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/service/kinds");
        for kind in ["postgres", "redis"] {
            let recipe = Recipe::load(&kinds.join(kind)).unwrap();
            assert_eq!((recipe.kind, recipe.user.uid), (Kind::Service, 1899999), "{kind}");
        }
        let dir = tempfile::tempdir().unwrap();
        for bad in ["/etc", "var/../../etc", "./x"] {
            let text = format!(
                "kind = \"service\"\nsuite = \"bookworm\"\nvariant = \"minbase\"\nrun_packages = []\nbuild_packages = []\nprune = [{bad:?}]\n[user]\nname = \"s\"\nuid = 5\nhome = \"/h\"\n"
            );
            std::fs::write(dir.path().join("recipe.toml"), text).unwrap();
            assert!(Recipe::load(dir.path()).unwrap_err().to_string().contains("prune path"), "{bad}");
        }
    }

    #[test]
    fn build_tools_are_pinned_by_version_and_hash() {
        let hash = "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19";
        assert!(super::is_pinned_tool(&format!("uv==0.13.9 --hash=sha256:{hash}")));
        for bad in ["uv", "uv==0.13.9", "uv==0.13.9 --hash=sha256:abc", "uv>=0.1 --hash=sha256:x", "UV==1 --hash=sha256:x"] {
            assert!(!super::is_pinned_tool(bad), "{bad}");
        }
        assert!(!super::is_pinned_tool(&format!("uv==0.13.9 --index-url=x --hash=sha256:{hash}")));
        assert!(!super::is_pinned_tool(&format!("uv==0.13.9 --hash=sha256:{}", hash.to_uppercase())));
    }
}
