//! Pulling an image into the store: the manifest (an index or a Docker
//! manifest list is resolved to its linux/amd64 image), then every blob the
//! store lacks, each streamed through a `BlobWriter` that names it only if
//! it hashes to its digest. A Docker schema 2 image is then converted to
//! OCI (`docker.rs`). The local tag is set last, so a failed pull leaves
//! no half image.

use std::io::Read;

use oci_spec::image::{ImageIndex, ImageManifest, MediaType};

use super::docker::{self, LAYER as DOCKER_LAYER, MANIFEST as DOCKER_MANIFEST, MANIFEST_LIST as DOCKER_LIST};
use super::reference::{RemoteRef, Target};
use super::{Client, RegistryError};
use crate::image::store::{StoreError, descriptor};
use crate::image::{Digest, ImageRef, Store};
use crate::progress::{Counted, Progress};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

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
/// image when it names an index. Returns its bytes (checked against its
/// digest) and whether it is Docker's schema 2 (to convert).
fn image_manifest(client: &Client, remote: &RemoteRef) -> Result<(Vec<u8>, bool), RegistryError> {
    let (mut bytes, _, mut content_type) = manifest(client, remote, &remote.reference())?;
    if [OCI_INDEX, DOCKER_LIST].contains(&kind(&bytes, &content_type).as_str()) {
        // Parse errors are not quoted: they would echo the server's bytes.
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|_| unsupported(remote, "an index berth cannot read"))?;
        let chosen = index
            .manifests()
            .iter()
            .find(|m| m.platform().as_ref().is_none_or(|p| p.os().to_string() == "linux" && p.architecture().to_string() == "amd64"))
            .ok_or_else(|| unsupported(remote, "an index with no linux/amd64 image"))?;
        let wanted = chosen.digest().to_string();
        let digest;
        (bytes, digest, content_type) = manifest(client, remote, &wanted)?;
        if digest.to_string() != wanted {
            let server = client.server.clone();
            return Err(RegistryError::DigestMismatch { server, what: "the manifest".into(), expected: wanted, got: digest.to_string() });
        }
    }
    match kind(&bytes, &content_type).as_str() {
        OCI_MANIFEST => Ok((bytes, false)),
        DOCKER_MANIFEST => Ok((bytes, true)),
        other => Err(unsupported(remote, &format!("of media type {other:?}, not an image manifest"))),
    }
}

/// A blob an image needs: its digest and declared size.
type Blob = (Digest, u64);

/// What an image manifest needs: its config and its gzip layers.
fn wanted_blobs(remote: &RemoteRef, bytes: &[u8]) -> Result<(Blob, Vec<Blob>), RegistryError> {
    let image: ImageManifest = serde_json::from_slice(bytes).map_err(|_| unsupported(remote, "a manifest berth cannot read"))?;
    if image.config().size() > docker::CONFIG_CAP {
        return Err(unsupported(remote, "an image whose config is larger than 4 MiB"));
    }
    let config = (Digest::try_from(image.config().digest())?, image.config().size());
    let mut layers = Vec::new();
    for layer in image.layers() {
        if !matches!(layer.media_type(), MediaType::ImageLayerGzip) && layer.media_type().to_string() != DOCKER_LAYER {
            return Err(unsupported(remote, &format!("built with {} layers; berth stores gzip layers", layer.media_type())));
        }
        layers.push((Digest::try_from(layer.digest())?, layer.size()));
    }
    Ok((config, layers))
}

/// The image's config, read into memory (capped), verified and parsed
/// before any blob of the image is stored: a bad one changes nothing.
fn fetch_config(client: &Client, remote: &RemoteRef, (digest, size): &Blob) -> Result<Vec<u8>, RegistryError> {
    let response = client
        .request("GET", &format!("/v2/{}/blobs/{digest}", remote.repository))
        .call()
        .map_err(|e| client.failed(&format!("config {digest}"), e))?;
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(size + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::Unreachable { server: client.server.clone(), why: format!("config {digest} broke off: {e}") })?;
    let got = Digest::of(&bytes);
    if got != *digest || bytes.len() as u64 != *size {
        let (server, expected) = (client.server.clone(), digest.to_string());
        return Err(RegistryError::DigestMismatch { server, what: "the config".into(), expected, got: got.to_string() });
    }
    serde_json::from_slice::<oci_spec::image::ImageConfiguration>(&bytes)
        .map_err(|_| unsupported(remote, "an image whose config berth cannot read"))?;
    Ok(bytes)
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
    let (manifest, is_docker) = image_manifest(client, remote)?;
    let (config_blob, layers) = wanted_blobs(remote, &manifest)?;
    let config = fetch_config(client, remote, &config_blob)?;
    let (manifest, config) = match is_docker {
        true => docker::to_oci(&remote.to_string(), &manifest, &config)?,
        false => (manifest, config),
    };
    // gc must not collect blobs between their arrival and the tag.
    let _writing = store.writing()?;
    let missing: Vec<&Blob> = layers.iter().filter(|(d, _)| !store.has_blob(d)).collect();
    let mut report = Pulled { blobs: layers.len() + 1, fetched: missing.len() + 1, ..Pulled::default() };
    let mut progress = Progress::new(&format!("Pulling {remote}"), missing.iter().map(|(_, s)| s).sum());
    for (blob, size) in missing {
        let copied = fetch_blob(store, client, remote, blob, *size, &mut progress)?;
        report.bytes_fetched += copied;
        if !progress.on_terminal() {
            say(&format!("{}: fetched {copied} bytes", &blob.hex()[..12]));
        }
    }
    progress.finish();
    report.bytes_fetched += config_blob.1;
    if is_docker {
        say("converted from Docker schema 2 to OCI (same layers, new config and manifest)");
    }
    store.put_bytes(&config)?;
    let (digest, size) = store.put_bytes(&manifest)?;
    let name = remote.local_name();
    store.set_tag(&name, &descriptor(MediaType::ImageManifest, &digest, size))?;
    // Read back whole: the config parses and agrees with the layers.
    store.image_by_digest(&digest)?.layers()?;
    report.seconds = progress.elapsed().as_secs_f64();
    Ok((name, digest, report))
}
