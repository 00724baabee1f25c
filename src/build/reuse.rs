//! Skipping the dependency layer when nothing in it changed. The
//! fingerprint covers every dependency path's entries: name, type, mode,
//! owner, size, mtime and link target. Buildpacks restore cached
//! dependencies with `cp -a`, which keeps all of these, so an unchanged
//! dependency set gives the same fingerprint and the layer written last
//! time (still in the store) is used again instead of being rewritten.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::image::digest::{DiffId, LayerDigest};
use crate::image::{LayerInfo, Store};
use crate::state::atomic;

#[derive(Serialize, Deserialize)]
struct Remembered {
    fingerprint: String,
    digest: String,
    diff_id: String,
    size: u64,
}

fn record_path(app_dir: &Path) -> PathBuf {
    app_dir.join("dependency-layer.json")
}

fn walk(base: &Path, rel: &Path, hasher: &mut Sha256) {
    let path = base.join(rel);
    let Ok(meta) = fs::symlink_metadata(&path) else { return };
    hasher.update(rel.as_os_str().as_encoded_bytes());
    hasher.update(
        format!("\0{:o} {} {} {} {} {}\0", meta.mode(), meta.uid(), meta.gid(), meta.size(), meta.mtime(), meta.mtime_nsec()).as_bytes(),
    );
    if meta.file_type().is_symlink() {
        if let Ok(target) = fs::read_link(&path) {
            hasher.update(target.as_os_str().as_encoded_bytes());
        }
    } else if meta.is_dir() {
        let mut names: Vec<_> = fs::read_dir(&path).map(|e| e.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
        names.sort();
        for name in names {
            walk(base, &rel.join(name), hasher);
        }
    }
}

/// The fingerprint of the dependency paths under `app_dir`.
pub fn fingerprint(app_dir: &Path, paths: &[PathBuf]) -> String {
    let mut hasher = Sha256::new();
    for path in paths {
        walk(app_dir, path, &mut hasher);
    }
    hex::encode(hasher.finalize())
}

/// The layer written for this fingerprint last time, if its blob is still there.
pub fn lookup(app_dir: &Path, store: &Store, fingerprint: &str) -> Option<LayerInfo> {
    let remembered: Remembered = serde_json::from_slice(&fs::read(record_path(app_dir)).ok()?).ok()?;
    if remembered.fingerprint != fingerprint {
        return None;
    }
    let layer = LayerInfo {
        digest: LayerDigest(remembered.digest.parse().ok()?),
        diff_id: DiffId(remembered.diff_id.parse().ok()?),
        size: remembered.size,
    };
    store.has_blob(&layer.digest.0).then_some(layer)
}

pub fn remember(app_dir: &Path, fingerprint: &str, layer: &LayerInfo) {
    let remembered = Remembered {
        fingerprint: fingerprint.to_owned(),
        digest: layer.digest.to_string(),
        diff_id: layer.diff_id.to_string(),
        size: layer.size,
    };
    let _ = atomic::write_atomic(&record_path(app_dir), &serde_json::to_vec_pretty(&remembered).expect("record serialises"));
}
