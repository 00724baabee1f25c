//! Where buildpacks come from: the built-ins in `buildpacks/`, a local
//! path, or a git URL (fetched with git, cached by URL and revision). Which
//! ones an app uses: its own list (`buildpacks:set/add`), the BUILDPACK_URL
//! config var, a `.buildpacks` file in the source, else detection among the
//! built-ins.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::image::Digest;
use crate::state::atomic;

#[derive(Debug, thiserror::Error)]
pub enum BuildpackError {
    #[error("buildpack {0:?} is not a built-in name, an absolute path or a git URL")]
    Invalid(String),
    #[error("buildpack {0:?} is refused: use https://, http:// or git@ to a host that is not this machine or link-local")]
    Refused(String),
    #[error("buildpack {name} not found at {path}")]
    Missing { name: String, path: PathBuf },
    #[error("cannot fetch buildpack {url}: {why}")]
    Fetch { url: String, why: String },
    #[error(transparent)]
    Io(#[from] crate::state::PathIo),
}

/// The built-ins, in detection order.
pub const BUILT_IN: &[&str] = &["python", "nodejs", "static", "procfile"];

/// Where the built-in buildpacks are: `BERTH_BUILDPACKS`, else the installed copy.
pub fn built_in_dir() -> PathBuf {
    std::env::var_os("BERTH_BUILDPACKS").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/local/share/berth/buildpacks"))
}

/// One buildpack reference, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    BuiltIn(String),
    Path(PathBuf),
    /// URL and optional ref (`URL#ref`).
    Git(String, Option<String>),
}

impl Source {
    pub fn parse(text: &str) -> Result<Source, BuildpackError> {
        let text = text.trim();
        let invalid = || BuildpackError::Invalid(text.to_owned());
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) || text.starts_with('-') {
            return Err(invalid());
        }
        if BUILT_IN.contains(&text) {
            return Ok(Source::BuiltIn(text.to_owned()));
        }
        if let Some(name) = text.strip_prefix("heroku/").filter(|n| BUILT_IN.contains(n)) {
            return Ok(Source::BuiltIn(name.to_owned()));
        }
        let is_url = ["https://", "http://", "git@"].iter().any(|p| text.starts_with(p));
        if is_url && !remote_host_ok(text) {
            return Err(BuildpackError::Refused(text.to_owned()));
        }
        if is_url || (text.starts_with('/') && text.split('#').next().is_some_and(|p| p.ends_with(".git"))) {
            let (url, reference) = match text.split_once('#') {
                Some((u, r)) if !r.is_empty() => (u, Some(r.to_owned())),
                _ => (text, None),
            };
            return Ok(Source::Git(url.to_owned(), reference));
        }
        if text.starts_with('/') && !text.contains("/../") {
            return Ok(Source::Path(PathBuf::from(text)));
        }
        Err(invalid())
    }

    /// Whether this buildpack lives on the host (a path, a local repository):
    /// only an admin names those.
    pub fn is_local(&self) -> bool {
        matches!(self, Source::Path(_)) || matches!(self, Source::Git(url, _) if url.starts_with('/'))
    }

    pub fn label(&self) -> String {
        match self {
            Source::BuiltIn(name) => name.clone(),
            Source::Path(path) => path.display().to_string(),
            Source::Git(url, Some(r)) => format!("{url}#{r}"),
            Source::Git(url, None) => url.clone(),
        }
    }

    /// A directory holding the buildpack (bin/detect, bin/compile, ...).
    pub fn resolve(&self, berth_root: &Path, say: &mut dyn FnMut(&str)) -> Result<PathBuf, BuildpackError> {
        let dir = match self {
            Source::BuiltIn(name) => built_in_dir().join(name),
            Source::Path(path) => path.clone(),
            Source::Git(url, reference) => fetch(berth_root, url, reference.as_deref(), say)?,
        };
        if !dir.join("bin/compile").is_file() {
            return Err(BuildpackError::Missing { name: self.label(), path: dir });
        }
        Ok(dir)
    }
}

/// What git said when it failed (its own stderr), or why it could not run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct GitSays(String);

fn git(args: &[&str]) -> Result<String, GitSays> {
    let out =
        Command::new("git").args(args).env("GIT_TERMINAL_PROMPT", "0").output().map_err(|e| GitSays(format!("cannot run git: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(GitSays(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

/// Clones `url` at `reference` (default HEAD) once per revision into
/// `$BERTH_ROOT/buildpacks/<hash of url>/<revision>`.
fn fetch(berth_root: &Path, url: &str, reference: Option<&str>, say: &mut dyn FnMut(&str)) -> Result<PathBuf, BuildpackError> {
    let fail = |why: String| BuildpackError::Fetch { url: url.to_owned(), why };
    let wanted = reference.unwrap_or("HEAD");
    let listed = git(&["ls-remote", "--", url, wanted]).map_err(|e| fail(e.0))?;
    let revision = match listed.split_whitespace().next() {
        Some(rev) => rev.to_owned(),
        // Not a branch or tag name: maybe a commit id, resolved after cloning.
        None if reference.is_some_and(|r| r.len() >= 7 && r.chars().all(|c| c.is_ascii_hexdigit())) => {
            reference.unwrap_or_default().to_owned()
        }
        None => return Err(fail(format!("no ref {wanted}"))),
    };
    let dir = berth_root.join("buildpacks").join(&Digest::of(url.as_bytes()).hex()[..16]);
    let target = dir.join(&revision);
    if target.join("bin/compile").is_file() {
        say(&format!("Using cached buildpack {url} ({})", &revision[..revision.len().min(12)]));
        return Ok(target);
    }
    say(&format!("Fetching buildpack {url} ({})", &revision[..revision.len().min(12)]));
    fs::create_dir_all(&dir).map_err(|source| BuildpackError::Io(crate::state::PathIo { action: "create", path: dir.clone(), source }))?;
    let tmp = atomic::temp_path_for(&target);
    let tmp_text = tmp.to_string_lossy().into_owned();
    let cloned =
        git(&["clone", "--quiet", "--", url, &tmp_text]).and_then(|_| git(&["-C", &tmp_text, "checkout", "--quiet", &revision, "--"]));
    if let Err(why) = cloned {
        let _ = fs::remove_dir_all(&tmp);
        return Err(fail(why.0));
    }
    let _ = fs::remove_dir_all(tmp.join(".git"));
    if fs::rename(&tmp, &target).is_err() {
        let _ = fs::remove_dir_all(&tmp); // another build fetched it first
    }
    Ok(target)
}

/// The host of `https://HOST/...`, `http://HOST/...` or `git@HOST:...` is not
/// this machine or a link-local address: root fetches it, and must not be
/// aimed at services that trust the host.
fn remote_host_ok(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).or_else(|| url.strip_prefix("git@"));
    let Some(rest) = rest else { return false };
    let authority = rest.split(['/', '#', '?']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || host == "localhost" || host.ends_with(".localhost") {
        return false;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => !(ip.is_loopback() || ip.is_link_local() || ip.is_unspecified() || ip.is_broadcast()),
        Ok(std::net::IpAddr::V6(ip)) => !(ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xffc0) == 0xfe80),
        Err(_) => host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
    }
}

/// Parses a list of references, one per line (`.buildpacks`, the app's list).
pub fn parse_list(text: &str) -> Result<Vec<Source>, BuildpackError> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(Source::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(Source::parse("python").unwrap(), Source::BuiltIn("python".into()));
        assert_eq!(Source::parse("heroku/nodejs").unwrap(), Source::BuiltIn("nodejs".into()));
        assert_eq!(
            Source::parse("https://github.com/x/y.git#v2").unwrap(),
            Source::Git("https://github.com/x/y.git".into(), Some("v2".into()))
        );
        assert_eq!(Source::parse("/srv/bp.git").unwrap(), Source::Git("/srv/bp.git".into(), None));
        assert_eq!(Source::parse("/srv/bp").unwrap(), Source::Path("/srv/bp".into()));
        for bad in ["--upload-pack=x", "ruby", "a b", "relative/path", "/x/../etc"] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }
}
