//! Pulling an image into the store: the manifest (an index is resolved to
//! its linux/amd64 image), then every blob the store lacks, each streamed
//! through a `BlobWriter` that names it only if it hashes to its digest.
//! The local tag is set last, so a failed pull leaves no half image.

use std::io::Read;

use oci_spec::image::{ImageIndex, ImageManifest, MediaType};

use super::reference::{RemoteRef, Target};
use super::{Client, RegistryError};
use crate::image::store::{StoreError, descriptor};
use crate::image::{Digest, ImageRef, Store};
use crate::progress::{Counted, Progress};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Debug, Default, serde::Serialize)]
pub struct Pulled {
    pub blobs: usize,
    pub fetched: usize,
    pub bytes_fetched: u64,
    pub seconds: f64,
}

/// The manifest's bytes, checked against the digest asked for or announced.
fn manifest(client: &Client, remote: &RemoteRef, reference: &str) -> Result<(Vec<u8>, Digest, String), RegistryError> {
    let response = client
        .request("GET", &format!("/v2/{}/manifests/{reference}", remote.repository))
        .set("Accept", &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", "))
        .call()
        .map_err(|e| client.failed(&format!("the manifest of {remote}"), e))?;
    let announced = response.header("docker-content-digest").map(str::to_owned);
    let content_type = response.header("content-type").unwrap_or("").to_owned();
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(4 << 20)
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::Unreachable { server: client.server.clone(), why: format!("the manifest broke off: {e}") })?;
    let got = Digest::of(&bytes);
    let expected = match &remote.target {
        Target::Digest(d) if reference == d.to_string() => Some(d.to_string()),
        _ => reference.starts_with("sha256:").then(|| reference.to_owned()).or(announced),
    };
    if let Some(expected) = expected.filter(|e| *e != got.to_string()) {
        return Err(RegistryError::DigestMismatch {
            server: client.server.clone(),
            what: "the manifest".into(),
            expected,
            got: got.to_string(),
        });
    }
    Ok((bytes, got, content_type))
}

/// The media type a manifest declares, else the one the server sent.
fn kind(bytes: &[u8], content_type: &str) -> String {
    let declared: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    declared["mediaType"].as_str().map_or_else(|| content_type.split(';').next().unwrap_or("").trim().to_owned(), str::to_owned)
}

fn unsupported(remote: &RemoteRef, why: &str) -> RegistryError {
    RegistryError::Unsupported { reference: remote.to_string(), why: why.to_owned() }
}

/// The image manifest `remote` names: through an index to its linux/amd64
/// image when it names an index. Returns its bytes and digest.
fn image_manifest(client: &Client, remote: &RemoteRef) -> Result<(Vec<u8>, Digest), RegistryError> {
    let (mut bytes, mut digest, mut content_type) = manifest(client, remote, &remote.reference())?;
    if [OCI_INDEX, DOCKER_LIST].contains(&kind(&bytes, &content_type).as_str()) {
        // Parse errors are not quoted: they would echo the server's bytes.
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|_| unsupported(remote, "an index berth cannot read"))?;
        let chosen = index
            .manifests()
            .iter()
            .find(|m| m.platform().as_ref().is_none_or(|p| p.os().to_string() == "linux" && p.architecture().to_string() == "amd64"))
            .ok_or_else(|| unsupported(remote, "an index with no linux/amd64 image"))?;
        let wanted = chosen.digest().to_string();
        (bytes, digest, content_type) = manifest(client, remote, &wanted)?;
        if digest.to_string() != wanted {
            let server = client.server.clone();
            return Err(RegistryError::DigestMismatch { server, what: "the manifest".into(), expected: wanted, got: digest.to_string() });
        }
    }
    match kind(&bytes, &content_type).as_str() {
        OCI_MANIFEST => Ok((bytes, digest)),
        DOCKER_MANIFEST => {
            Err(unsupported(remote, "a docker schema 2 image; berth stores OCI images (copy it with `skopeo copy --format oci`)"))
        }
        other => Err(unsupported(remote, &format!("of media type {other:?}, not an image manifest"))),
    }
}

/// The blobs an image manifest needs: its config and gzip layers, with sizes.
fn wanted_blobs(remote: &RemoteRef, bytes: &[u8]) -> Result<Vec<(Digest, u64)>, RegistryError> {
    let image: ImageManifest = serde_json::from_slice(bytes).map_err(|_| unsupported(remote, "a manifest berth cannot read"))?;
    let mut wanted = vec![(Digest::try_from(image.config().digest())?, image.config().size())];
    for layer in image.layers() {
        if !matches!(layer.media_type(), MediaType::ImageLayerGzip)
            && layer.media_type().to_string() != "application/vnd.docker.image.rootfs.diff.tar.gzip"
        {
            return Err(unsupported(remote, &format!("built with {} layers; berth stores gzip layers", layer.media_type())));
        }
        wanted.push((Digest::try_from(layer.digest())?, layer.size()));
    }
    Ok(wanted)
}

/// Fetches one blob, at most its declared size, verified before it is named.
fn fetch_blob(
    store: &Store,
    client: &Client,
    remote: &RemoteRef,
    blob: &Digest,
    size: u64,
    progress: &mut Progress,
) -> Result<u64, RegistryError> {
    let response = client
        .request("GET", &format!("/v2/{}/blobs/{blob}", remote.repository))
        .call()
        .map_err(|e| client.failed(&format!("blob {blob}"), e))?;
    let mut writer = store.blob_writer()?;
    let copied = std::io::copy(&mut Counted { inner: response.into_reader().take(size + 1), progress }, &mut writer)
        .map_err(|e| RegistryError::Unreachable { server: client.server.clone(), why: format!("blob {blob} broke off: {e}") })?;
    writer.finish_expecting(blob).map_err(|e| match e {
        StoreError::DigestMismatch { expected, got } => RegistryError::DigestMismatch {
            server: client.server.clone(),
            what: "a blob".into(),
            expected: expected.to_string(),
            got: got.to_string(),
        },
        other => other.into(),
    })?;
    Ok(copied)
}

pub fn pull(
    store: &Store,
    client: &Client,
    remote: &RemoteRef,
    say: &mut dyn FnMut(&str),
) -> Result<(ImageRef, Digest, Pulled), RegistryError> {
    let (bytes, digest) = image_manifest(client, remote)?;
    let wanted = wanted_blobs(remote, &bytes)?;
    // gc must not collect blobs between their arrival and the tag.
    let _writing = store.writing()?;
    let missing: Vec<&(Digest, u64)> = wanted.iter().filter(|(d, _)| !store.has_blob(d)).collect();
    let mut report = Pulled { blobs: wanted.len(), fetched: missing.len(), ..Pulled::default() };
    let mut progress = Progress::new(&format!("Pulling {remote}"), missing.iter().map(|(_, s)| s).sum());
    for (blob, size) in missing {
        let copied = fetch_blob(store, client, remote, blob, *size, &mut progress)?;
        report.bytes_fetched += copied;
        if !progress.on_terminal() {
            say(&format!("{}: fetched {copied} bytes", &blob.hex()[..12]));
        }
    }
    progress.finish();
    let (stored, size) = store.put_bytes(&bytes)?;
    debug_assert_eq!(stored, digest);
    let name = remote.local_name();
    store.set_tag(&name, &descriptor(MediaType::ImageManifest, &digest, size))?;
    // Read back whole: the config parses and agrees with the layers.
    store.image_by_digest(&digest)?.layers()?;
    report.seconds = progress.elapsed().as_secs_f64();
    Ok((name, digest, report))
}
