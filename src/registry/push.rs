//! Pushing an image from the store: each blob (layers, then config) is
//! skipped when the registry has it (HEAD), mounted from another
//! repository of the same registry when berth pushed it there before, or
//! uploaded (one PUT up to 16 MiB, PATCH chunks above); then the manifest,
//! byte for byte as stored so its digest stays (or restated in Docker's
//! schema 2 with `--format docker`), under each tag.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Client, RegistryError};
use crate::image::{Digest, Store};
use crate::progress::{Counted, Progress};
use crate::state::atomic;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Blobs up to this size go in one request; bigger ones in chunks of it.
const CHUNK: u64 = 16 << 20;

#[derive(Debug, Default, serde::Serialize)]
pub struct Pushed {
    pub blobs: usize,
    pub skipped: usize,
    pub mounted: usize,
    pub uploaded: usize,
    /// Bytes of blob content sent (manifests not counted).
    pub bytes_sent: u64,
    /// The image's size: config and layers.
    pub image_bytes: u64,
    pub seconds: f64,
}

/// Where berth last pushed each blob, per registry: the `from` of a mount.
fn mounts_file(root: &Path) -> PathBuf {
    root.join("registry").join("pushed-blobs.json")
}

type Mounts = BTreeMap<String, BTreeMap<String, String>>;

fn load_mounts(root: &Path) -> Mounts {
    std::fs::read(mounts_file(root)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn append_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

fn location(client: &Client, response: &ureq::Response) -> Result<String, RegistryError> {
    response.header("location").map(str::to_owned).ok_or_else(|| RegistryError::Unreachable {
        server: client.server.clone(),
        why: "an upload answer without a Location header".into(),
    })
}

/// The manifest format a push writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The stored OCI manifest, byte for byte (its digest stays).
    #[default]
    Oci,
    /// Docker schema 2 over the same blobs, for registries that want it.
    Docker,
}

/// Where a push goes in the registry, and in which format.
pub struct Destination<'a> {
    pub repository: &'a str,
    pub tags: &'a [String],
    pub format: Format,
}

pub fn push(
    root: &Path,
    store: &Store,
    client: &Client,
    to: &Destination,
    manifest_digest: &Digest,
    say: &mut dyn FnMut(&str),
) -> Result<Pushed, RegistryError> {
    let (repository, tags) = (to.repository, to.tags);
    let image = store.image_by_digest(manifest_digest)?;
    let (manifest_bytes, media_type) = match to.format {
        Format::Oci => (store.read_blob(manifest_digest)?, OCI_MANIFEST.to_owned()),
        Format::Docker => (super::docker::to_docker(&image)?, super::docker::MANIFEST.to_owned()),
    };
    let mut blobs: Vec<(Digest, u64)> = image.layers()?.into_iter().map(|l| (l.digest.0, l.size)).collect();
    blobs.push((Digest::try_from(image.manifest.config().digest())?, image.manifest.config().size()));
    let mut report = Pushed { blobs: blobs.len(), image_bytes: blobs.iter().map(|(_, s)| s).sum(), ..Pushed::default() };
    let mut mounts = load_mounts(root);
    let known = mounts.entry(client.server.clone()).or_default();
    let mut progress = Progress::new(&format!("Pushing to {}/{repository}", client.server), report.image_bytes);

    for (digest, size) in &blobs {
        let short = &digest.hex()[..12];
        match client.request("HEAD", &format!("/v2/{repository}/blobs/{digest}")).call() {
            Ok(_) => {
                report.skipped += 1;
                progress.add(*size);
                known.insert(digest.to_string(), repository.to_owned());
                continue;
            }
            Err(ureq::Error::Status(404, _)) => {}
            Err(e) => return Err(client.failed("a blob check", e)),
        }
        let from = known.get(&digest.to_string()).filter(|r| *r != repository).cloned();
        let start = match &from {
            Some(from) => client
                .request("POST", &format!("/v2/{repository}/blobs/uploads/"))
                .query("mount", &digest.to_string())
                .query("from", from)
                .send_bytes(&[]),
            None => client.request("POST", &format!("/v2/{repository}/blobs/uploads/")).send_bytes(&[]),
        }
        .map_err(|e| client.failed("an upload", e))?;
        if start.status() == 201 {
            report.mounted += 1;
            progress.add(*size);
            say(&format!("{short}: mounted from {}", from.unwrap_or_default()));
            known.insert(digest.to_string(), repository.to_owned());
            continue;
        }
        upload(client, location(client, &start)?, store, digest, *size, &mut progress)?;
        report.uploaded += 1;
        report.bytes_sent += size;
        if !progress.on_terminal() {
            say(&format!("{short}: uploaded {size} bytes"));
        }
        known.insert(digest.to_string(), repository.to_owned());
    }
    progress.finish();
    for tag in tags {
        client
            .request("PUT", &format!("/v2/{repository}/manifests/{tag}"))
            .set("Content-Type", &media_type)
            .send_bytes(&manifest_bytes)
            .map_err(|e| client.failed("the manifest", e))?;
    }
    report.seconds = progress.elapsed().as_secs_f64();
    let path = mounts_file(root);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // A lost record only costs a mount later: not worth failing the push.
    let _ = atomic::write_atomic(&path, &serde_json::to_vec(&mounts).expect("mounts serialise"));
    Ok(report)
}

fn upload(
    client: &Client,
    mut at: String,
    store: &Store,
    digest: &Digest,
    size: u64,
    progress: &mut Progress,
) -> Result<(), RegistryError> {
    let path = store.blob_path(digest);
    let mut file =
        File::open(&path).map_err(|source| RegistryError::Io(crate::state::PathIo { action: "read", path: path.clone(), source }))?;
    let octets = "application/octet-stream";
    if size <= CHUNK {
        client
            .request("PUT", &append_digest(&at, digest))
            .set("Content-Type", octets)
            .set("Content-Length", &size.to_string())
            .send(Counted { inner: &mut file, progress })
            .map_err(|e| client.failed("a blob upload", e))?;
        return Ok(());
    }
    let mut offset = 0;
    while offset < size {
        let n = CHUNK.min(size - offset);
        let response = client
            .request("PATCH", &at)
            .set("Content-Type", octets)
            .set("Content-Length", &n.to_string())
            .set("Content-Range", &format!("{offset}-{}", offset + n - 1))
            .send(Counted { inner: (&mut file).take(n), progress })
            .map_err(|e| client.failed("a blob chunk", e))?;
        at = location(client, &response)?;
        offset += n;
    }
    client.request("PUT", &append_digest(&at, digest)).send_bytes(&[]).map_err(|e| client.failed("the end of a chunked upload", e))?;
    Ok(())
}
