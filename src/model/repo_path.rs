//! A path inside a pushed tree, as `builder:set build-dir` and
//! `app-json:set appjson-path` name one: relative, plain names only, so it
//! can never climb out of the tree or be read as absolute.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a path inside the repository (relative, with plain names: no '..', '.', or leading '/')")]
pub struct RepoPathError(String);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoPath(String);

impl RepoPath {
    pub fn parse(text: &str) -> Result<RepoPath, RepoPathError> {
        let refuse = || RepoPathError(text.chars().take(80).collect());
        let trimmed = text.trim_end_matches('/');
        let plain = !trimmed.is_empty()
            && trimmed.len() <= 1024
            && !trimmed.starts_with('/')
            && trimmed.chars().all(|c| !c.is_control())
            // Split by hand: Path::components would drop the `.` in `a/./b`.
            && trimmed.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
        if plain { Ok(RepoPath(trimmed.to_owned())) } else { Err(refuse()) }
    }

    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RepoPath {
    type Error = RepoPathError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        RepoPath::parse(&text)
    }
}

impl From<RepoPath> for String {
    fn from(path: RepoPath) -> String {
        path.0
    }
}

#[cfg(test)]
mod tests {
    use super::RepoPath;

    #[test]
    fn only_plain_relative_paths() {
        for good in ["app2", "apps/web/", ".dokku/app.json", "a b"] {
            assert!(RepoPath::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "/etc", "..", "a/../b", "./a", "a//b", "a/./b", "a\nb", "/"] {
            assert!(RepoPath::parse(bad).is_err(), "{bad:?}");
        }
    }
}
