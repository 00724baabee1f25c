//! The OCI image layout under `$BERTH_ROOT/store`: blobs by digest, and
//! `index.json` whose entries carry `org.opencontainers.image.ref.name` tags.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageConfiguration, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder, MediaType,
};

use super::blob::BlobWriter;
use super::digest::{DiffId, Digest, LayerDigest};
pub use super::error::StoreError;
use super::reference::ImageRef;
use crate::state::atomic;
use crate::state::lock::FileLock;

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A layer as written into the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub digest: LayerDigest,
    pub diff_id: DiffId,
    pub size: u64,
}

/// An image read back from the store.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
}

impl Image {
    /// The layers, bottom first, with their diff_ids from the config.
    pub fn layers(&self) -> Result<Vec<LayerInfo>, StoreError> {
        let diff_ids = self.config.rootfs().diff_ids();
        if diff_ids.len() != self.manifest.layers().len() {
            return Err(StoreError::Index {
                path: PathBuf::from(self.manifest_digest.to_string()),
                why: "manifest and config disagree on the number of layers".into(),
            });
        }
        self.manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(layer, diff_id)| {
                Ok(LayerInfo {
                    digest: LayerDigest(Digest::try_from(layer.digest())?),
                    diff_id: DiffId(diff_id.parse()?),
                    size: layer.size(),
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    lock_path: PathBuf,
}

impl Store {
    /// Opens the layout under `berth_root`, creating an empty one if missing.
    pub fn open(berth_root: &Path) -> Result<Store, StoreError> {
        let store = Store { dir: berth_root.join("store"), lock_path: berth_root.join("store.lock") };
        let blobs = store.blobs_dir();
        if !blobs.is_dir() {
            fs::create_dir_all(&blobs).map_err(StoreError::io("create", &blobs))?;
        }
        let layout = store.dir.join("oci-layout");
        if !layout.exists() {
            atomic::write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !store.index_path().exists() {
            let _lock = store.lock()?;
            if !store.index_path().exists() {
                store.write_index(&empty_index())?;
            }
        }
        Ok(store)
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs/sha256")
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn blob_writer(&self) -> Result<BlobWriter, StoreError> {
        BlobWriter::new(&self.blobs_dir())
    }

    pub fn put_bytes(&self, bytes: &[u8]) -> Result<(Digest, u64), StoreError> {
        use std::io::Write;
        let mut writer = self.blob_writer()?;
        writer.write_all(bytes).map_err(StoreError::io("write", &self.blobs_dir()))?;
        writer.finish()
    }

    /// Reads a whole (small) blob and checks it against its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::MissingBlob(digest.clone()));
            }
            Err(e) => return Err(StoreError::io("read", &path)(e)),
        };
        let got = Digest::of(&bytes);
        if got != *digest {
            return Err(StoreError::DigestMismatch { expected: digest.clone(), got });
        }
        Ok(bytes)
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, what: &'static str, digest: &Digest) -> Result<T, StoreError> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json { what, digest: digest.to_string(), source })
    }

    /// Serialises `value` as the blob's exact bytes and stores it.
    pub fn put_json(&self, value: &impl serde::Serialize) -> Result<(Digest, u64), StoreError> {
        self.put_bytes(&serde_json::to_vec(value).expect("OCI types serialise"))
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    /// Serialises index changes between processes.
    pub fn lock(&self) -> Result<FileLock, StoreError> {
        Ok(FileLock::acquire(&self.lock_path)?)
    }

    /// Held (shared) by anything that writes blobs before tagging them, so
    /// `store:gc` (exclusive) never collects a blob about to be tagged.
    pub fn writing(&self) -> Result<FileLock, StoreError> {
        Ok(FileLock::acquire_shared(&self.gc_lock_path())?)
    }

    /// Held by `store:gc`: no writer runs meanwhile.
    pub fn collecting(&self) -> Result<FileLock, StoreError> {
        Ok(FileLock::acquire(&self.gc_lock_path())?)
    }

    fn gc_lock_path(&self) -> PathBuf {
        self.lock_path.with_file_name("store.gc.lock")
    }

    pub fn index(&self) -> Result<ImageIndex, StoreError> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(StoreError::io("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Index { path, why: e.to_string() })
    }

    fn write_index(&self, index: &ImageIndex) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(index).expect("index serialises");
        Ok(atomic::write_atomic(&self.index_path(), &json)?)
    }

    /// Every tag with the manifest it names, in index order.
    pub fn tags(&self) -> Result<Vec<(String, Descriptor)>, StoreError> {
        Ok(self.index()?.manifests().iter().filter_map(|d| Some((d.annotations().as_ref()?.get(REF_NAME)?.clone(), d.clone()))).collect())
    }

    pub fn resolve(&self, name: &ImageRef) -> Result<Descriptor, StoreError> {
        let wanted = name.to_string();
        self.tags()?.into_iter().find(|(n, _)| *n == wanted).map(|(_, d)| d).ok_or(StoreError::NoSuchTag(wanted))
    }

    /// Points `name` at `manifest`, replacing what it named before.
    pub fn set_tag(&self, name: &ImageRef, manifest: &Descriptor) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let mut index = self.index()?;
        let text = name.to_string();
        let mut tagged = manifest.clone();
        let mut annotations = HashMap::new();
        annotations.insert(REF_NAME.to_owned(), text.clone());
        tagged.set_annotations(Some(annotations));
        let mut manifests: Vec<Descriptor> = index.manifests().iter().filter(|d| ref_name(d) != Some(&text)).cloned().collect();
        manifests.push(tagged);
        index.set_manifests(manifests);
        self.write_index(&index)
    }

    /// Removes a tag; its blobs stay until `store:gc`.
    pub fn remove_tag(&self, name: &ImageRef) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let mut index = self.index()?;
        let text = name.to_string();
        let before = index.manifests().len();
        let manifests: Vec<Descriptor> = index.manifests().iter().filter(|d| ref_name(d) != Some(&text)).cloned().collect();
        if manifests.len() == before {
            return Err(StoreError::NoSuchTag(text));
        }
        index.set_manifests(manifests);
        self.write_index(&index)
    }

    pub fn manifest(&self, digest: &Digest) -> Result<ImageManifest, StoreError> {
        self.read_json("manifest", digest)
    }

    pub fn config(&self, digest: &Digest) -> Result<ImageConfiguration, StoreError> {
        self.read_json("image config", digest)
    }

    pub fn image_by_digest(&self, manifest_digest: &Digest) -> Result<Image, StoreError> {
        let manifest = self.manifest(manifest_digest)?;
        let config = self.config(&Digest::try_from(manifest.config().digest())?)?;
        Ok(Image { manifest_digest: manifest_digest.clone(), manifest, config })
    }

    pub fn image(&self, name: &ImageRef) -> Result<Image, StoreError> {
        let descriptor = self.resolve(name)?;
        self.image_by_digest(&Digest::try_from(descriptor.digest())?)
    }

    /// Stores `config` and a manifest over `layers` (already in the store)
    /// and tags it `name`. Returns the manifest's descriptor.
    pub fn write_image(&self, name: &ImageRef, layers: &[LayerInfo], config: &ImageConfiguration) -> Result<Descriptor, StoreError> {
        let (config_digest, config_size) = self.put_json(config)?;
        let manifest_descriptor = manifest_for(self, &config_digest, config_size, layers)?;
        self.set_tag(name, &manifest_descriptor)?;
        Ok(manifest_descriptor)
    }
}

/// Stores a manifest over a config and layers already in the store.
pub fn manifest_for(store: &Store, config_digest: &Digest, config_size: u64, layers: &[LayerInfo]) -> Result<Descriptor, StoreError> {
    let layer_descriptors = layers.iter().map(|l| descriptor(MediaType::ImageLayerGzip, &l.digest.0, l.size)).collect::<Vec<_>>();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, config_digest, config_size))
        .layers(layer_descriptors)
        .build()
        .expect("manifest has every required field");
    let (digest, size) = store.put_json(&manifest)?;
    Ok(descriptor(MediaType::ImageManifest, &digest, size))
}

fn ref_name(d: &Descriptor) -> Option<&String> {
    d.annotations().as_ref()?.get(REF_NAME)
}

pub fn descriptor(media_type: MediaType, digest: &Digest, size: u64) -> Descriptor {
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(oci_spec::image::Digest::from(digest))
        .size(size)
        .build()
        .expect("descriptor has every required field")
}

fn empty_index() -> ImageIndex {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::new())
        .build()
        .expect("index has every required field")
}
