//! Store upkeep: `fsck` re-hashes every blob, `gc` removes what no tag
//! reaches, `du` tells what each repository costs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::digest::{Digest, HashingReader};
use super::reference::ImageRef;
use super::store::{Store, StoreError};
use super::unpack::layers_dir;

/// What `store:fsck` found.
#[derive(Debug, Default, Serialize)]
pub struct FsckReport {
    pub blobs_checked: usize,
    /// Blobs whose content no longer hashes to their name.
    pub corrupted: Vec<String>,
    /// Blobs a tag needs that are not in the store, with the tag.
    pub missing: Vec<(String, String)>,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.corrupted.is_empty() && self.missing.is_empty()
    }
}

/// Every blob a tag reaches: manifest, config, layers; and the diff_ids of
/// those layers (names of unpacked layer dirs). Missing blobs are reported.
struct Reach {
    blobs: BTreeMap<Digest, BTreeSet<String>>,
    diff_ids: BTreeSet<String>,
    missing: Vec<(String, String)>,
}

fn reach(store: &Store) -> Result<Reach, StoreError> {
    let mut reach = Reach { blobs: BTreeMap::new(), diff_ids: BTreeSet::new(), missing: Vec::new() };
    for (tag, descriptor) in store.tags()? {
        let manifest_digest = Digest::try_from(descriptor.digest())?;
        let add = |d: &Digest, reach: &mut Reach| {
            reach.blobs.entry(d.clone()).or_default().insert(tag.clone());
            if !store.has_blob(d) {
                reach.missing.push((d.to_string(), tag.clone()));
            }
        };
        add(&manifest_digest, &mut reach);
        let image = match store.image_by_digest(&manifest_digest) {
            Ok(image) => image,
            Err(StoreError::MissingBlob(_) | StoreError::DigestMismatch { .. }) => continue,
            Err(e) => return Err(e),
        };
        add(&Digest::try_from(image.manifest.config().digest())?, &mut reach);
        for layer in image.layers()? {
            add(&layer.digest.0, &mut reach);
            reach.diff_ids.insert(layer.diff_id.0.hex().to_owned());
        }
    }
    reach.missing.sort();
    reach.missing.dedup();
    Ok(reach)
}

fn blob_files(store: &Store) -> Result<Vec<(String, PathBuf, u64)>, StoreError> {
    let dir = store.blobs_dir();
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
        let entry = entry.map_err(StoreError::io("list", &dir))?;
        let meta = entry.metadata().map_err(StoreError::io("stat", &entry.path()))?;
        out.push((entry.file_name().to_string_lossy().into_owned(), entry.path(), meta.len()));
    }
    out.sort();
    Ok(out)
}

pub fn fsck(store: &Store) -> Result<FsckReport, StoreError> {
    let mut report = FsckReport::default();
    for (name, path, _) in blob_files(store)? {
        if name.starts_with('.') {
            continue; // a blob still being written
        }
        report.blobs_checked += 1;
        let file = File::open(&path).map_err(StoreError::io("read", &path))?;
        let (_, digest, _) =
            HashingReader::new(io::BufReader::with_capacity(1 << 20, file)).finish().map_err(StoreError::io("read", &path))?;
        if digest.hex() != name {
            report.corrupted.push(format!("sha256:{name}"));
        }
    }
    report.missing = reach(store)?.missing;
    Ok(report)
}

/// What `store:gc` removed, or would remove with `--dry-run`.
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    pub blobs: Vec<(String, u64)>,
    pub blob_bytes: u64,
    pub layer_dirs: Vec<String>,
    pub layer_bytes: u64,
}

pub fn gc(berth_root: &Path, store: &Store, dry_run: bool) -> Result<GcReport, StoreError> {
    let _exclusive = store.collecting()?;
    let reach = reach(store)?;
    let mut report = GcReport::default();
    for (name, path, size) in blob_files(store)? {
        // A temp file belongs to a writer; the exclusive lock means none
        // runs now, so it is left over from a crash.
        let reachable = Digest::from_hex(&name).is_ok_and(|d| reach.blobs.contains_key(&d));
        if reachable {
            continue;
        }
        if !dry_run {
            fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
        }
        report.blob_bytes += size;
        report.blobs.push((name, size));
    }
    let layers = layers_dir(berth_root);
    if let Ok(entries) = fs::read_dir(&layers) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if reach.diff_ids.contains(&name) {
                continue;
            }
            let path = entry.path();
            report.layer_bytes += tree_bytes(&path);
            if !dry_run {
                make_writable(&path);
                fs::remove_dir_all(&path).map_err(StoreError::io("remove", &path))?;
            }
            report.layer_dirs.push(name);
        }
    }
    report.layer_dirs.sort();
    Ok(report)
}

/// Unpacked layers may hold read-only directories; removal needs them writable.
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::symlink_metadata(dir)
        && meta.is_dir()
    {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(meta.permissions().mode() | 0o700));
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                make_writable(&entry.path());
            }
        }
    }
}

fn tree_bytes(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path).map(|entries| entries.flatten().map(|e| tree_bytes(&e.path())).sum()).unwrap_or(0)
}

/// One repository's cost: everything its tags reach, what only it uses,
/// and what it shares with other repositories (counted once in `total`).
#[derive(Debug, Serialize)]
pub struct DuRow {
    pub repository: String,
    pub tags: Vec<String>,
    pub total: u64,
    pub own: u64,
    pub shared: u64,
}

pub fn du(store: &Store) -> Result<(Vec<DuRow>, u64), StoreError> {
    let reach = reach(store)?;
    let size = |d: &Digest| fs::metadata(store.blob_path(d)).map(|m| m.len()).unwrap_or(0);
    let repository = |tag: &str| tag.parse::<ImageRef>().map(|r| r.repository().to_owned()).unwrap_or_else(|_| tag.to_owned());
    let mut rows: BTreeMap<String, DuRow> = BTreeMap::new();
    for (tag, _) in store.tags()? {
        let repo = repository(&tag);
        rows.entry(repo.clone())
            .or_insert_with(|| DuRow { repository: repo, tags: Vec::new(), total: 0, own: 0, shared: 0 })
            .tags
            .push(tag);
    }
    let mut all = 0;
    for (digest, tags) in &reach.blobs {
        let bytes = size(digest);
        all += bytes;
        let repos: BTreeSet<String> = tags.iter().map(|t| repository(t)).collect();
        for repo in &repos {
            let row = rows.get_mut(repo).expect("every tag has a row");
            row.total += bytes;
            if repos.len() == 1 {
                row.own += bytes;
            } else {
                row.shared += bytes;
            }
        }
    }
    Ok((rows.into_values().collect(), all))
}

/// What one of several images costs: all its blobs, the ones no other
/// image in the set uses (`own`), and the rest (`shared`).
#[derive(Debug, Serialize)]
pub struct ImageCost {
    pub label: String,
    pub total: u64,
    pub own: u64,
    pub shared: u64,
}

/// The cost of each image in `images`, and of all of them with shared
/// blobs counted once.
pub fn du_images(store: &Store, images: &[(String, Digest)]) -> Result<(Vec<ImageCost>, u64), StoreError> {
    let size = |d: &Digest| fs::metadata(store.blob_path(d)).map(|m| m.len()).unwrap_or(0);
    let mut users: BTreeMap<Digest, BTreeSet<usize>> = BTreeMap::new();
    for (i, (_, manifest_digest)) in images.iter().enumerate() {
        users.entry(manifest_digest.clone()).or_default().insert(i);
        let image = store.image_by_digest(manifest_digest)?;
        users.entry(Digest::try_from(image.manifest.config().digest())?).or_default().insert(i);
        for layer in image.layers()? {
            users.entry(layer.digest.0).or_default().insert(i);
        }
    }
    let mut rows: Vec<ImageCost> =
        images.iter().map(|(label, _)| ImageCost { label: label.clone(), total: 0, own: 0, shared: 0 }).collect();
    let mut all = 0;
    for (digest, who) in &users {
        let bytes = size(digest);
        all += bytes;
        for i in who {
            rows[*i].total += bytes;
            if who.len() == 1 {
                rows[*i].own += bytes;
            } else {
                rows[*i].shared += bytes;
            }
        }
    }
    Ok((rows, all))
}
