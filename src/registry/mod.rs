//! A client for the OCI distribution API: push images from the store to a
//! registry and pull them back, with every digest checked.
//!
//! - `reference`: `SERVER/REPOSITORY[:TAG|@DIGEST]`, validated once.
//! - `logins`: `registry:login` credentials, root-only on disk.
//! - `client`: HTTP (ureq, rustls) with basic or bearer-token auth from
//!   the registry's `WWW-Authenticate` challenge, a custom CA per server
//!   (`$BERTH_ROOT/registry/certs.d/SERVER/ca.crt`, as docker's), and plain
//!   HTTP only when asked (`--insecure`) and only on loopback.
//! - `push` and `pull`: blobs first (skipped when the registry has them,
//!   mounted from another repository when berth pushed them there),
//!   monolithic or chunked uploads, then the manifest.

pub mod client;
pub mod docker;
pub mod logins;
pub mod pull;
pub mod push;
pub mod reference;

pub use client::Client;
pub use reference::RemoteRef;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    BadRef(String),
    #[error("{server} refused the login for {user}: wrong user name or password")]
    LoginRefused { server: String, user: String },
    #[error("{server} wants a login; run `berth registry:login {server} USER`")]
    LoginNeeded { server: String },
    #[error("{server} denied {what}: HTTP {status}{detail}")]
    Denied { server: String, what: String, status: u16, detail: String },
    #[error("cannot reach {server}: {why}")]
    Unreachable { server: String, why: String },
    #[error("{server} is not on loopback: plain HTTP (--insecure) is only for 127.0.0.0/8 and localhost")]
    InsecureRemote { server: String },
    #[error("{what} from {server} does not match its digest: expected {expected}, got {got}")]
    DigestMismatch { server: String, what: String, expected: String, got: String },
    #[error("{reference} is {why}")]
    Unsupported { reference: String, why: String },
    #[error(transparent)]
    Io(#[from] crate::state::PathIo),
    #[error("the CA file {path} holds no PEM certificate berth can use: {why}")]
    BadCa { path: PathBuf, why: String },
    #[error(transparent)]
    Store(#[from] crate::image::store::StoreError),
    #[error(transparent)]
    Digest(#[from] crate::image::digest::InvalidDigest),
    #[error(transparent)]
    Apps(#[from] crate::state::apps::AppsError),
}

/// The tags a release is pushed as: `N` (its version, as Dokku's) and,
/// for a git deploy, the revision.
pub fn release_tags(release: &crate::state::releases::Release) -> Vec<String> {
    let mut tags = vec![release.version.to_string()];
    tags.extend(release.git_revision.clone().filter(|r| !r.is_empty()));
    tags
}

/// Pushes an app's release to its registry (`registry:set`) under `tags`.
/// Returns what was sent, for the output.
pub fn release_push(
    root: &std::path::Path,
    app: &crate::app::App,
    release: &crate::state::releases::Release,
    tags: &[String],
    say: &mut dyn FnMut(&str),
) -> Result<String, RegistryError> {
    let globals = crate::state::settings::Settings::load(root).unwrap_or_default();
    let meta = crate::state::apps::meta_in_effect(app, &globals)?;
    let settings = &meta.registry;
    let server = settings.server.clone().ok_or_else(|| {
        RegistryError::BadRef(format!("app {} has no registry; run `berth registry:set {} server HOST[:PORT]`", app.name, app.name))
    })?;
    let repository = settings.image_repo.clone().unwrap_or_else(|| app.name.to_string());
    let store = crate::image::Store::open(root)?;
    let digest: crate::image::Digest = release.image_digest.parse()?;
    let client = Client::connect(root, &server, settings.insecure, &repository, true)?;
    let to = push::Destination { repository: &repository, tags, format: push::Format::Oci };
    let pushed = push::push(root, &store, &client, &to, &digest, say)?;
    Ok(format!(
        "{server}/{repository}:{} ({} of {} bytes sent, {} blobs already there, {} mounted)",
        tags.join(","),
        pushed.bytes_sent,
        pushed.image_bytes,
        pushed.skipped,
        pushed.mounted
    ))
}
