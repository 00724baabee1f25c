//! `git:set APP|--global KEY [VALUE]`: the git properties besides the
//! deploy branch, as Dokku names them. Each value is checked when set, so
//! what a build or an archive deploy reads back is already valid.

use serde::{Deserialize, Serialize};

/// Dokku's defaults for what is unset on the app and the host.
pub const DEFAULT_REV_ENV_VAR: &str = "GIT_REV";
pub const DEFAULT_ARCHIVE_MAX_FILES: u64 = 10_000;
pub const DEFAULT_ARCHIVE_MAX_SIZE: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum GitPropError {
    #[error("{0:?} is not a git property (archive-max-files, archive-max-size, deploy-branch, keep-git-dir, rev-env-var, source-image)")]
    Unknown(String),
    #[error("{key} must be {wants}, not {value:?}")]
    BadValue { key: &'static str, wants: &'static str, value: String },
}

/// One app's (or the host's) git properties; `None` is unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GitProps {
    /// The variable that carries the deployed commit; `Some("")` injects none.
    pub rev_env_var: Option<String>,
    /// Builds see the app's `.git` (a repository at the pushed commit).
    pub keep_git_dir: Option<bool>,
    /// The most entries `git:from-archive` unpacks.
    pub archive_max_files: Option<u64>,
    /// The largest archive `git:from-archive` reads, in bytes.
    pub archive_max_size: Option<u64>,
    /// The image the app's source came from (`git:from-image` sets it).
    pub source_image: Option<String>,
}

impl GitProps {
    /// Sets `key` to `value`; no value (or an empty one, except for
    /// rev-env-var, where empty means "inject none") clears it.
    pub fn set(&mut self, key: &str, value: Option<&str>) -> Result<(), GitPropError> {
        let bad = |key, wants, value: &str| GitPropError::BadValue { key, wants, value: value.to_owned() };
        let given = value.filter(|v| !v.is_empty());
        match key {
            "rev-env-var" => {
                if let Some(v) = value.filter(|v| !v.is_empty() && !env_name(v)) {
                    return Err(bad("rev-env-var", "an environment variable name (A-Z, a-z, 0-9, _; not starting with a digit)", v));
                }
                self.rev_env_var = value.map(str::to_owned);
            }
            "keep-git-dir" => {
                self.keep_git_dir = match given {
                    None => None,
                    Some("true") => Some(true),
                    Some("false") => Some(false),
                    Some(v) => return Err(bad("keep-git-dir", "true or false", v)),
                }
            }
            "archive-max-files" => {
                self.archive_max_files = given
                    .map(|v| v.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad("archive-max-files", "a positive count", v)))
                    .transpose()?
            }
            "archive-max-size" => {
                self.archive_max_size = given
                    .map(|v| {
                        crate::model::container::parse_log_size(v)
                            .filter(|n| *n > 0)
                            .ok_or_else(|| bad("archive-max-size", "a size (bytes, or 512k, 20m, 1g)", v))
                    })
                    .transpose()?
            }
            "source-image" => {
                if let Some(v) = given.filter(|v| v.len() > 512 || v.chars().any(|c| c.is_control() || c.is_whitespace())) {
                    return Err(bad("source-image", "an image reference (no spaces, at most 512 characters)", v));
                }
                self.source_image = given.map(str::to_owned);
            }
            other => return Err(GitPropError::Unknown(other.to_owned())),
        }
        Ok(())
    }

    /// These properties with the unset ones taken from `host`.
    pub fn over(&self, host: &GitProps) -> GitProps {
        GitProps {
            rev_env_var: self.rev_env_var.clone().or_else(|| host.rev_env_var.clone()),
            keep_git_dir: self.keep_git_dir.or(host.keep_git_dir),
            archive_max_files: self.archive_max_files.or(host.archive_max_files),
            archive_max_size: self.archive_max_size.or(host.archive_max_size),
            source_image: self.source_image.clone().or_else(|| host.source_image.clone()),
        }
    }

    /// The variable a deploy sets to the commit; none when set empty.
    pub fn rev_var(&self) -> Option<&str> {
        match self.rev_env_var.as_deref() {
            None => Some(DEFAULT_REV_ENV_VAR),
            Some("") => None,
            Some(name) => Some(name),
        }
    }

    pub fn max_files(&self) -> u64 {
        self.archive_max_files.unwrap_or(DEFAULT_ARCHIVE_MAX_FILES)
    }

    pub fn max_size(&self) -> u64 {
        self.archive_max_size.unwrap_or(DEFAULT_ARCHIVE_MAX_SIZE)
    }
}

fn env_name(text: &str) -> bool {
    text.len() <= 128 && !text.starts_with(|c: char| c.is_ascii_digit()) && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_and_empty_clears() {
        let mut props = GitProps::default();
        props.set("rev-env-var", Some("DOKKU_GIT_REV")).unwrap();
        assert_eq!(props.rev_var(), Some("DOKKU_GIT_REV"));
        props.set("rev-env-var", Some("")).unwrap();
        assert_eq!(props.rev_var(), None);
        props.set("rev-env-var", None).unwrap();
        assert_eq!(props.rev_var(), Some("GIT_REV"));
        props.set("archive-max-size", Some("20m")).unwrap();
        assert_eq!(props.max_size(), 20 << 20);
        for (key, value) in [("rev-env-var", "A-B"), ("keep-git-dir", "yes"), ("archive-max-files", "0"), ("source-image", "a b")] {
            assert!(props.set(key, Some(value)).is_err(), "{key} {value}");
        }
        assert!(props.set("deploy-brunch", Some("x")).is_err());
    }

    #[test]
    fn the_app_overrides_the_host() {
        let host = GitProps { keep_git_dir: Some(true), archive_max_files: Some(5), ..GitProps::default() };
        let app = GitProps { archive_max_files: Some(7), ..GitProps::default() };
        let merged = app.over(&host);
        assert_eq!((merged.keep_git_dir, merged.max_files()), (Some(true), 7));
    }
}
