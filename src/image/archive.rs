//! OCI archives (an image layout in a tar, as `skopeo copy ... oci-archive:`
//! writes) and docker archives (`docker save`): export and verified import.
//!
//! Import streams every blob through a `BlobWriter` that names it only if
//! it hashes to the digest it claims; docker layers (plain tars) are gzipped
//! on the way in and checked against the config's diff_ids. Tags are set
//! only after every image of the archive is complete in the store.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, MediaType};
use serde::Deserialize;

use super::digest::{DiffId, Digest, HashingReader, LayerDigest};
use super::reference::{ImageRef, InvalidRef};
use super::store::{LayerInfo, REF_NAME, Store, StoreError};
use crate::state::atomic;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read archive {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write archive {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("archive {path} is neither an OCI archive nor a docker archive (no index.json or manifest.json)")]
    UnknownFormat { path: PathBuf },
    #[error("archive {path} is invalid: {why}")]
    Invalid { path: PathBuf, why: String },
    #[error("image {name} in the archive has no name; give one")]
    Unnamed { name: String },
    #[error(transparent)]
    Ref(#[from] InvalidRef),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One image written to or read from an archive.
#[derive(Debug, Clone)]
pub struct Imported {
    pub name: ImageRef,
    pub manifest: Descriptor,
}

/// Writes `images` (tag name in the archive, manifest in the store) as an
/// OCI archive at `out`: a tar of an image layout holding just their blobs.
pub fn export_oci(store: &Store, images: &[(ImageRef, Descriptor)], out: &Path) -> Result<(), ArchiveError> {
    let write_err = |source| ArchiveError::Write { path: out.to_owned(), source };
    let (blobs, index) = layout_of(store, images)?;

    let tmp = atomic::temp_path_for(out);
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut tar = tar::Builder::new(io::BufWriter::with_capacity(1 << 20, file));
        let add = |tar: &mut tar::Builder<_>, path: &str, size: u64, data: &mut dyn Read, dir: bool| {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(if dir { tar::EntryType::Directory } else { tar::EntryType::Regular });
            header.set_mode(if dir { 0o755 } else { 0o644 });
            header.set_size(size);
            header.set_mtime(0);
            tar.append_data(&mut header, path, data)
        };
        for dir in ["blobs", "blobs/sha256"] {
            add(&mut tar, dir, 0, &mut io::empty(), true)?;
        }
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        add(&mut tar, "oci-layout", layout.len() as u64, &mut &layout[..], false)?;
        let index_json = serde_json::to_vec(&index).expect("index serialises");
        add(&mut tar, "index.json", index_json.len() as u64, &mut &index_json[..], false)?;
        for digest in &blobs {
            let path = store.blob_path(digest);
            let file = File::open(&path)?;
            let size = file.metadata()?.len();
            add(&mut tar, &format!("blobs/sha256/{}", digest.hex()), size, &mut io::BufReader::with_capacity(1 << 20, file), false)?;
        }
        let file = tar.into_inner()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, out)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}

/// Writes `images` as an OCI image layout directory at `out` (which must
/// not exist): `oci-layout`, `index.json` and the blobs, as `oci:DIR` reads.
pub fn export_oci_dir(store: &Store, images: &[(ImageRef, Descriptor)], out: &Path) -> Result<(), ArchiveError> {
    let write_err = |source| ArchiveError::Write { path: out.to_owned(), source };
    let (blobs, index) = layout_of(store, images)?;
    let blob_dir = out.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).map_err(write_err)?;
    for digest in &blobs {
        let target = blob_dir.join(digest.hex());
        // Same filesystem: a hard link costs nothing; else a copy.
        if fs::hard_link(store.blob_path(digest), &target).is_err() {
            fs::copy(store.blob_path(digest), &target).map_err(write_err)?;
        }
    }
    fs::write(out.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(write_err)?;
    fs::write(out.join("index.json"), serde_json::to_vec(&index).expect("index serialises")).map_err(write_err)
}

/// The blobs of `images` and an index naming each by its tag.
fn layout_of(store: &Store, images: &[(ImageRef, Descriptor)]) -> Result<(BTreeSet<Digest>, ImageIndex), ArchiveError> {
    let mut blobs = BTreeSet::new();
    let mut manifests = Vec::new();
    for (name, descriptor) in images {
        let digest = Digest::try_from(descriptor.digest()).map_err(StoreError::from)?;
        let image = store.image_by_digest(&digest)?;
        blobs.insert(digest);
        blobs.insert(Digest::try_from(image.manifest.config().digest()).map_err(StoreError::from)?);
        for layer in image.layers()? {
            blobs.insert(layer.digest.0);
        }
        let mut tagged = descriptor.clone();
        tagged.set_annotations(Some(HashMap::from([(REF_NAME.to_owned(), name.to_string())])));
        manifests.push(tagged);
    }
    let mut index: ImageIndex =
        serde_json::from_str(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#)
            .expect("static index");
    index.set_manifests(manifests);
    Ok((blobs, index))
}

/// Writes `images` as a docker archive (`docker save`'s format, what
/// `docker load` and `podman load` read): `manifest.json`, each config as
/// `<hex>.json`, each layer uncompressed as `<diff id hex>.tar`.
pub fn export_docker(store: &Store, images: &[(ImageRef, Descriptor)], out: &Path) -> Result<(), ArchiveError> {
    let write_err = |source| ArchiveError::Write { path: out.to_owned(), source };
    let tmp = atomic::temp_path_for(out);
    let result = (|| -> Result<(), ArchiveError> {
        let file = File::create(&tmp).map_err(write_err)?;
        let mut tar = tar::Builder::new(io::BufWriter::with_capacity(1 << 20, file));
        let mut entries = Vec::new();
        let mut written = BTreeSet::new();
        let scratch_dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        for (name, descriptor) in images {
            let image = store.image_by_digest(&Digest::try_from(descriptor.digest()).map_err(StoreError::from)?)?;
            let config_digest = Digest::try_from(image.manifest.config().digest()).map_err(StoreError::from)?;
            let config_path = format!("{}.json", config_digest.hex());
            if written.insert(config_path.clone()) {
                let config = store.read_blob(&config_digest)?;
                append(&mut tar, &config_path, config.len() as u64, &mut &config[..]).map_err(write_err)?;
            }
            let mut layer_paths = Vec::new();
            for layer in image.layers()? {
                let path = format!("{}.tar", layer.diff_id.0.hex());
                if written.insert(path.clone()) {
                    // The tar header needs the size first: unpack to a scratch file.
                    let mut scratch = tempfile::tempfile_in(scratch_dir).map_err(write_err)?;
                    let blob = File::open(store.blob_path(&layer.digest.0)).map_err(write_err)?;
                    let size = io::copy(&mut flate2::read::GzDecoder::new(io::BufReader::new(blob)), &mut scratch).map_err(write_err)?;
                    io::Seek::rewind(&mut scratch).map_err(write_err)?;
                    append(&mut tar, &path, size, &mut io::BufReader::with_capacity(1 << 20, scratch)).map_err(write_err)?;
                }
                layer_paths.push(path);
            }
            entries.push(serde_json::json!({ "Config": config_path, "RepoTags": [name.to_string()], "Layers": layer_paths }));
        }
        let manifest = serde_json::to_vec(&entries).expect("manifest serialises");
        append(&mut tar, "manifest.json", manifest.len() as u64, &mut &manifest[..]).map_err(write_err)?;
        let file = tar.into_inner().map_err(write_err)?.into_inner().map_err(|e| write_err(e.into_error()))?;
        file.sync_all().map_err(write_err)?;
        fs::rename(&tmp, out).map_err(write_err)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn append(tar: &mut tar::Builder<impl io::Write>, path: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_mtime(0);
    tar.append_data(&mut header, path, data)
}

/// A docker archive's `manifest.json` entry.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// What reading the archive once collected.
#[derive(Default)]
struct Collected {
    index: Option<Vec<u8>>,
    docker_manifest: Option<Vec<u8>>,
    /// Small JSON files of a docker archive (configs), by path.
    json: HashMap<String, Vec<u8>>,
    /// Layers of a docker archive, gzipped into the store, by path.
    docker_layers: HashMap<String, LayerInfo>,
}

/// Which names an import may tag. `berth/` names are what berth builds
/// (stacks, apps' builds): an archive from elsewhere must not replace them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// Anything, `berth/` included: berth's own stack cache, bundles an admin loads.
    Any,
    /// Only stacks (`berth/stack-run`, `berth/stack-build`) and service images (`berth/service`).
    Stacks,
    /// Anything outside `berth/`.
    NotReserved,
}

impl Names {
    fn allows(self, name: &ImageRef) -> bool {
        let reserved = name.repository().starts_with("berth/");
        match self {
            Names::Any => true,
            Names::Stacks => matches!(name.repository(), "berth/stack-run" | "berth/stack-build" | "berth/service"),
            Names::NotReserved => !reserved,
        }
    }
}

/// Imports every image of an OCI or docker archive. `name` renames a single
/// unnamed (or docker) image. Returns what was tagged; nothing is tagged
/// (and no blob kept) when any name is one `names` does not allow.
pub fn import(store: &Store, path: &Path, name: Option<&ImageRef>, names: Names) -> Result<Vec<Imported>, ArchiveError> {
    // Blobs this import added: removed again if it fails, and kept only if
    // an imported image needs them, so an import adds exactly its images.
    let mut added = Vec::new();
    let result = import_into(store, path, name, &mut added).and_then(|images| match images.iter().find(|i| !names.allows(&i.name)) {
        Some(bad) => Err(ArchiveError::Invalid { path: path.to_owned(), why: format!("it tags {}, a name berth reserves", bad.name) }),
        None => Ok(images),
    });
    let keep: BTreeSet<Digest> = match &result {
        Ok(images) => reachable(store, images),
        Err(_) => BTreeSet::new(),
    };
    for digest in added.iter().filter(|d| !keep.contains(d)) {
        let _ = fs::remove_file(store.blob_path(digest));
    }
    let imported = result?;
    for image in &imported {
        store.set_tag(&image.name, &image.manifest)?;
    }
    Ok(imported)
}

/// Every blob `images` reference: manifests, configs, layers.
fn reachable(store: &Store, images: &[Imported]) -> BTreeSet<Digest> {
    let mut set = BTreeSet::new();
    for image in images {
        let Ok(digest) = Digest::try_from(image.manifest.digest()) else {
            continue;
        };
        if let Ok(found) = store.image_by_digest(&digest) {
            set.extend(Digest::try_from(found.manifest.config().digest()));
            set.extend(found.layers().unwrap_or_default().into_iter().map(|l| l.digest.0));
        }
        set.insert(digest);
    }
    set
}

/// Writes a blob through a verifying writer and notes it if it is new.
fn store_blob(store: &Store, data: &mut impl Read, expected: Option<&Digest>, added: &mut Vec<Digest>) -> Result<Digest, ArchiveError> {
    let existed = expected.is_some_and(|d| store.has_blob(d));
    let mut writer = store.blob_writer()?;
    io::copy(data, &mut writer).map_err(|source| ArchiveError::Read { path: PathBuf::from("<archive entry>"), source })?;
    let digest = match expected {
        Some(expected) => {
            writer.finish_expecting(expected)?;
            expected.clone()
        }
        None => writer.finish()?.0,
    };
    if !existed {
        added.push(digest.clone());
    }
    Ok(digest)
}

fn import_into(store: &Store, path: &Path, name: Option<&ImageRef>, added: &mut Vec<Digest>) -> Result<Vec<Imported>, ArchiveError> {
    let read_err = |source| ArchiveError::Read { path: path.to_owned(), source };
    let invalid = |why: String| ArchiveError::Invalid { path: path.to_owned(), why };
    let file = File::open(path).map_err(read_err)?;
    let mut archive = tar::Archive::new(io::BufReader::with_capacity(1 << 20, file));
    let mut got = Collected::default();
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let entry_path = normalize(&entry.path().map_err(read_err)?);
        match entry_path.as_str() {
            "index.json" => got.index = Some(read_small(&mut entry).map_err(read_err)?),
            "manifest.json" => got.docker_manifest = Some(read_small(&mut entry).map_err(read_err)?),
            "oci-layout" | "repositories" => {}
            p if p.starts_with("blobs/sha256/") => {
                // Could be an OCI blob or a docker layer/config; an OCI blob is
                // named by its digest, so store it verified under that name.
                let digest = Digest::from_hex(&p["blobs/sha256/".len()..]).map_err(StoreError::from)?;
                store_blob(store, &mut entry, Some(&digest), added)?;
            }
            p if p.ends_with(".json") => {
                got.json.insert(p.to_owned(), read_small(&mut entry).map_err(read_err)?);
            }
            p if p.ends_with(".tar") => {
                let layer = gzip_layer(store, &mut entry).map_err(read_err)?;
                added.push(layer.digest.0.clone());
                got.docker_layers.insert(p.to_owned(), layer);
            }
            _ => {}
        }
    }
    let imported = if let Some(index) = got.index {
        let index: ImageIndex = serde_json::from_slice(&index).map_err(|e| invalid(format!("index.json: {e}")))?;
        oci_images(store, &index, name)?
    } else if let Some(manifest) = got.docker_manifest {
        let manifests: Vec<DockerManifest> = serde_json::from_slice(&manifest).map_err(|e| invalid(format!("manifest.json: {e}")))?;
        docker_images(store, &manifests, &got.json, &got.docker_layers, name, added).map_err(|e| match e {
            ArchiveError::Invalid { why, .. } => invalid(why),
            e => e,
        })?
    } else {
        return Err(ArchiveError::UnknownFormat { path: path.to_owned() });
    };
    Ok(imported)
}

fn normalize(path: &Path) -> String {
    let parts: Vec<_> =
        path.components().filter_map(|c| if let Component::Normal(p) = c { Some(p.to_string_lossy()) } else { None }).collect();
    parts.join("/")
}

/// Reads an entry meant to be small JSON, refusing anything over 16 MiB.
fn read_small(entry: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    entry.take(16 << 20).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Gzips a plain layer tar into the store the same way the layer writer does.
fn gzip_layer(store: &Store, entry: &mut impl Read) -> io::Result<LayerInfo> {
    let blob = store.blob_writer().map_err(io::Error::other)?;
    let mut gzip = super::layer::Gzip::new(blob);
    let mut hashing = HashingReader::new(entry);
    io::copy(&mut hashing, &mut gzip)?;
    let (_, diff_id, _) = hashing.finish()?;
    let (digest, size) = gzip.finish()?.finish().map_err(io::Error::other)?;
    Ok(LayerInfo { digest: LayerDigest(digest), diff_id: DiffId(diff_id), size })
}

/// Checks each tagged manifest of an imported OCI index is whole in the store.
fn oci_images(store: &Store, index: &ImageIndex, rename: Option<&ImageRef>) -> Result<Vec<Imported>, ArchiveError> {
    let mut out = Vec::new();
    let only_one = index.manifests().len() == 1;
    for descriptor in index.manifests() {
        if *descriptor.media_type() != MediaType::ImageManifest {
            continue;
        }
        let digest = Digest::try_from(descriptor.digest()).map_err(StoreError::from)?;
        let image = store.image_by_digest(&digest)?;
        for layer in image.layers()? {
            if !store.has_blob(&layer.digest.0) {
                return Err(StoreError::MissingBlob(layer.digest.0).into());
            }
        }
        let annotated = descriptor.annotations().as_ref().and_then(|a| a.get(REF_NAME)).cloned();
        let name = match (rename.filter(|_| only_one), annotated) {
            (Some(name), _) => name.clone(),
            (None, Some(tag)) => tag.parse()?,
            (None, None) => {
                return Err(ArchiveError::Unnamed { name: digest.to_string() });
            }
        };
        let mut clean = descriptor.clone();
        clean.set_annotations(None);
        out.push(Imported { name, manifest: clean });
    }
    Ok(out)
}

fn docker_images(
    store: &Store,
    manifests: &[DockerManifest],
    json: &HashMap<String, Vec<u8>>,
    layers: &HashMap<String, LayerInfo>,
    rename: Option<&ImageRef>,
    added: &mut Vec<Digest>,
) -> Result<Vec<Imported>, ArchiveError> {
    let invalid = |why: String| ArchiveError::Invalid { path: PathBuf::new(), why };
    let mut out = Vec::new();
    for manifest in manifests {
        let config_path = normalize(Path::new(&manifest.config));
        let config_bytes = match json.get(&config_path) {
            Some(bytes) => bytes.clone(),
            // Newer docker archives keep the config as a blob like any other.
            None => store.read_blob(&Digest::from_hex(config_path.trim_start_matches("blobs/sha256/")).map_err(StoreError::from)?)?,
        };
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|e| invalid(format!("{config_path}: {e}")))?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers.len() {
            return Err(invalid(format!("{config_path} lists {} layers, manifest.json {}", diff_ids.len(), manifest.layers.len())));
        }
        let mut infos = Vec::new();
        for (layer_path, diff_id) in manifest.layers.iter().zip(diff_ids) {
            let layer_path = normalize(Path::new(layer_path));
            let info = match (layers.get(&layer_path), layer_path.strip_prefix("blobs/sha256/")) {
                (Some(info), _) => info.clone(),
                // Newer docker archives store plain layer tars as blobs (verified
                // on the way in): gzip them into proper layer blobs.
                (None, Some(hex)) => {
                    let raw = store.blob_path(&Digest::from_hex(hex).map_err(StoreError::from)?);
                    let mut file = File::open(&raw).map_err(|_| invalid(format!("layer {layer_path} is missing")))?;
                    let layer = gzip_layer(store, &mut file).map_err(|e| invalid(format!("layer {layer_path}: {e}")))?;
                    added.push(layer.digest.0.clone());
                    layer
                }
                (None, None) => return Err(invalid(format!("layer {layer_path} is missing"))),
            };
            if info.diff_id.0.to_string() != *diff_id {
                return Err(invalid(format!("layer {layer_path} hashes to {}, the config says {diff_id}", info.diff_id)));
            }
            infos.push(info);
        }
        let name = match (rename, manifest.repo_tags.as_ref().and_then(|t| t.first())) {
            (Some(name), _) => name.clone(),
            (None, Some(tag)) => tag.trim_start_matches("docker.io/").trim_start_matches("library/").parse()?,
            (None, None) => return Err(ArchiveError::Unnamed { name: config_path }),
        };
        let config_digest = store_blob(store, &mut &config_bytes[..], Some(&Digest::of(&config_bytes)), added)?;
        let manifest = super::store::manifest_for(store, &config_digest, config_bytes.len() as u64, &infos)?;
        added.push(Digest::try_from(manifest.digest()).map_err(StoreError::from)?);
        out.push(Imported { name, manifest });
    }
    Ok(out)
}
