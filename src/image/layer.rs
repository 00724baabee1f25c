//! Deterministic layer writer: a directory tree (or the difference between
//! two trees) -> tar -> gzip -> a blob, returning (blob digest, diff_id, size).
//!
//! The same tree gives the same bytes on any machine: entries sorted by name
//! bytes, mtimes fixed (SOURCE_DATE_EPOCH or 0), no atime/ctime, user and
//! group names dropped (numeric ids kept, since a rootfs needs them), GNU
//! headers with long-name records, xattrs as PAX `SCHILY.xattr.*` records,
//! gzip with a zero timestamp. Overlay whiteouts in the source (a 0:0 char
//! device, an opaque dir) become OCI `.wh.` entries.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};

use super::blob::BlobWriter;
use super::digest::{DiffId, HashingWriter, LayerDigest};
use super::store::{LayerInfo, Store, StoreError};

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot read {path} for a layer: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write layer: {0}")]
    Write(#[source] io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> LayerError + use<> {
    let path = path.to_owned();
    move |source| LayerError::Read { path, source }
}

/// The one setting that changes layer bytes: the mtime stamped on every entry.
#[derive(Debug, Clone, Copy)]
pub struct LayerOptions {
    pub mtime: u64,
}

impl LayerOptions {
    /// `SOURCE_DATE_EPOCH` when set (reproducible-builds.org), else 0.
    pub fn from_env() -> LayerOptions {
        let mtime = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        LayerOptions { mtime }
    }
}

/// Writes the whole tree under `dir` as one layer.
pub fn write_tree(store: &Store, dir: &Path, options: LayerOptions) -> Result<LayerInfo, LayerError> {
    let mut writer = LayerWriter::new(store, options)?;
    walk(dir, Path::new(""), &mut |rel, meta| {
        writer.add(dir, rel, meta)?;
        Ok(true)
    })?;
    writer.finish()
}

/// Writes `dir` as the directory `prefix` of the layer (`app` for /app),
/// taking only the entries `keep` accepts; a directory it rejects is
/// skipped with everything below it.
pub fn write_subtree(
    store: &Store,
    dir: &Path,
    prefix: &Path,
    keep: &dyn Fn(&Path) -> bool,
    options: LayerOptions,
) -> Result<LayerInfo, LayerError> {
    let mut writer = LayerWriter::new(store, options)?;
    let meta = fs::symlink_metadata(dir).map_err(read_err(dir))?;
    let mut name = PathBuf::new();
    for part in prefix.components() {
        name.push(part);
        writer.add_entry(dir, &name, &meta)?;
    }
    walk(dir, Path::new(""), &mut |rel, meta| {
        if !keep(rel) {
            return Ok(false);
        }
        writer.add_entry(&dir.join(rel), &prefix.join(rel), meta)?;
        Ok(true)
    })?;
    writer.finish()
}

/// Writes what changed from `base` to `new` as one layer: entries that are
/// new or differ (type, mode, owner, content, link target, xattrs), their
/// parent directories, and a whiteout for everything `new` no longer has.
pub fn write_diff(store: &Store, base: &Path, new: &Path, options: LayerOptions) -> Result<LayerInfo, LayerError> {
    let mut writer = LayerWriter::new(store, options)?;
    walk(new, Path::new(""), &mut |rel, meta| {
        let old = fs::symlink_metadata(base.join(rel)).ok();
        let changed = match &old {
            None => true,
            Some(old) => !same_entry(&base.join(rel), old, &new.join(rel), meta)?,
        };
        if changed {
            writer.ensure_parents(new, rel)?;
            writer.add(new, rel, meta)?;
        }
        if meta.is_dir() && old.as_ref().is_some_and(|o| o.is_dir()) {
            for gone in removed_children(&base.join(rel), &new.join(rel))? {
                // Parents of a child of `rel`: `rel` itself and everything above it.
                writer.ensure_parents(new, &rel.join(&gone))?;
                writer.whiteout(&rel.join(format!("{WHITEOUT_PREFIX}{}", gone.to_string_lossy())))?;
            }
        }
        Ok(true)
    })?;
    writer.finish()
}

/// Visits every entry below `dir` depth-first, each directory's children
/// sorted by name bytes. `rel` is the path relative to the walk's root.
fn walk(root: &Path, rel: &Path, visit: &mut dyn FnMut(&Path, &Metadata) -> Result<bool, LayerError>) -> Result<(), LayerError> {
    let dir = root.join(rel);
    let mut names: Vec<_> =
        fs::read_dir(&dir).map_err(read_err(&dir))?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>().map_err(read_err(&dir))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let child = rel.join(&name);
        let path = root.join(&child);
        let meta = fs::symlink_metadata(&path).map_err(read_err(&path))?;
        if visit(&child, &meta)? && meta.is_dir() {
            walk(root, &child, visit)?;
        }
    }
    Ok(())
}

fn removed_children(base_dir: &Path, new_dir: &Path) -> Result<Vec<std::ffi::OsString>, LayerError> {
    let mut gone: Vec<_> = fs::read_dir(base_dir)
        .map_err(read_err(base_dir))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|name| fs::symlink_metadata(new_dir.join(name)).is_err())
        .collect();
    gone.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(gone)
}

fn same_entry(old_path: &Path, old: &Metadata, new_path: &Path, new: &Metadata) -> Result<bool, LayerError> {
    if old.file_type() != new.file_type()
        || old.mode() != new.mode()
        || old.uid() != new.uid()
        || old.gid() != new.gid()
        || old.rdev() != new.rdev()
    {
        return Ok(false);
    }
    if xattrs(old_path)? != xattrs(new_path)? {
        return Ok(false);
    }
    if new.file_type().is_symlink() {
        return Ok(fs::read_link(old_path).map_err(read_err(old_path))? == fs::read_link(new_path).map_err(read_err(new_path))?);
    }
    if new.is_file() {
        return Ok(old.size() == new.size() && same_content(old_path, new_path)?);
    }
    Ok(true)
}

fn same_content(a: &Path, b: &Path) -> Result<bool, LayerError> {
    let mut fa = io::BufReader::new(File::open(a).map_err(read_err(a))?);
    let mut fb = io::BufReader::new(File::open(b).map_err(read_err(b))?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = fa.read(&mut ba).map_err(read_err(a))?;
        if n == 0 {
            return Ok(fb.read(&mut bb[..1]).map_err(read_err(b))? == 0);
        }
        fb.read_exact(&mut bb[..n]).map_err(read_err(b))?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// Extended attributes worth carrying: everything but overlayfs's own
/// bookkeeping and SELinux labels of the build host.
fn xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>, LayerError> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(read_err(path)(e)),
    };
    let mut out = Vec::new();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("trusted.overlay.") || name == "security.selinux" {
            continue;
        }
        if let Some(value) = xattr::get(path, &name).map_err(read_err(path))? {
            out.push((name, value));
        }
    }
    out.sort();
    Ok(out)
}

type Sink = HashingWriter<Gzip>;

/// The compressor every layer goes through. zlib's output can depend on how
/// its input is split into writes, so input reaches it in fixed 64 KiB
/// chunks whatever the caller's write sizes: the tar builder here and the
/// plain copy of a docker archive's layer produce the same blob.
pub struct Gzip {
    encoder: GzEncoder<BlobWriter>,
    pending: Vec<u8>,
}

const GZIP_CHUNK: usize = 64 * 1024;

impl Gzip {
    pub fn new(blob: BlobWriter) -> Gzip {
        Gzip {
            encoder: flate2::GzBuilder::new().mtime(0).operating_system(255).write(blob, Compression::new(6)),
            pending: Vec::with_capacity(GZIP_CHUNK),
        }
    }

    pub fn finish(mut self) -> io::Result<BlobWriter> {
        self.encoder.write_all(&self.pending)?;
        self.encoder.finish()
    }
}

impl Write for Gzip {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let total = buf.len();
        while !buf.is_empty() {
            let take = (GZIP_CHUNK - self.pending.len()).min(buf.len());
            self.pending.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.pending.len() == GZIP_CHUNK {
                self.encoder.write_all(&self.pending)?;
                self.pending.clear();
            }
        }
        Ok(total)
    }

    /// Compressed output only ever ends at `finish`: a flush here would
    /// change the bytes.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct LayerWriter {
    tar: tar::Builder<Sink>,
    options: LayerOptions,
    /// First path written for each multiply-linked inode: later ones become hard links.
    links: HashMap<(u64, u64), PathBuf>,
    emitted_dirs: BTreeSet<PathBuf>,
}

impl LayerWriter {
    fn new(store: &Store, options: LayerOptions) -> Result<LayerWriter, LayerError> {
        let mut tar = tar::Builder::new(HashingWriter::new(Gzip::new(store.blob_writer()?)));
        tar.mode(tar::HeaderMode::Deterministic);
        Ok(LayerWriter { tar, options, links: HashMap::new(), emitted_dirs: BTreeSet::new() })
    }

    fn header(&self, meta: &Metadata, entry_type: EntryType) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(entry_type);
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(meta.uid() as u64);
        header.set_gid(meta.gid() as u64);
        header.set_mtime(self.options.mtime);
        header.set_size(0);
        header
    }

    /// Directories above `rel` that a diff has not written yet, so every
    /// entry's parents come before it with their own mode and owner.
    fn ensure_parents(&mut self, root: &Path, rel: &Path) -> Result<(), LayerError> {
        let parents: Vec<PathBuf> = rel.ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf).collect();
        for parent in parents.into_iter().rev() {
            if !self.emitted_dirs.contains(&parent) {
                let path = root.join(&parent);
                let meta = fs::symlink_metadata(&path).map_err(read_err(&path))?;
                self.add(root, &parent, &meta)?;
            }
        }
        Ok(())
    }

    fn add(&mut self, root: &Path, rel: &Path, meta: &Metadata) -> Result<(), LayerError> {
        self.add_entry(&root.join(rel), rel, meta)
    }

    /// Writes the file at `path` as the entry `rel`.
    fn add_entry(&mut self, path: &Path, rel: &Path, meta: &Metadata) -> Result<(), LayerError> {
        let path = path.to_path_buf();
        let kind = meta.file_type();
        if kind.is_char_device() && meta.rdev() == 0 {
            // overlayfs marks a deleted file with a 0:0 character device.
            let name = format!("{WHITEOUT_PREFIX}{}", rel.file_name().unwrap_or_default().to_string_lossy());
            return self.whiteout(&rel.with_file_name(name));
        }
        if kind.is_socket() {
            return Ok(()); // sockets belong to running processes, not images
        }
        self.pax_xattrs(&path)?;
        let tar_err = LayerError::Write;
        if kind.is_dir() {
            let mut header = self.header(meta, EntryType::Directory);
            self.tar.append_data(&mut header, rel, io::empty()).map_err(tar_err)?;
            self.emitted_dirs.insert(rel.to_owned());
            if xattr::get(&path, OVERLAY_OPAQUE_XATTR).ok().flatten().as_deref() == Some(b"y") {
                self.whiteout(&rel.join(OPAQUE_WHITEOUT))?;
            }
        } else if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(read_err(&path))?;
            let mut header = self.header(meta, EntryType::Symlink);
            self.tar.append_link(&mut header, rel, target).map_err(tar_err)?;
        } else if kind.is_file() {
            let key = (meta.dev(), meta.ino());
            if meta.nlink() > 1 {
                if let Some(first) = self.links.get(&key).cloned() {
                    let mut header = self.header(meta, EntryType::Link);
                    return self.tar.append_link(&mut header, rel, first).map_err(tar_err);
                }
                self.links.insert(key, rel.to_owned());
            }
            let mut header = self.header(meta, EntryType::Regular);
            header.set_size(meta.size());
            let file = File::open(&path).map_err(read_err(&path))?;
            // A file that changes size while we read it would corrupt the
            // tar stream: read exactly the size the header announces.
            let mut limited = io::BufReader::with_capacity(256 * 1024, file).take(meta.size());
            self.tar.append_data(&mut header, rel, &mut limited).map_err(tar_err)?;
        } else if kind.is_fifo() || kind.is_char_device() || kind.is_block_device() {
            let entry_type = if kind.is_fifo() {
                EntryType::Fifo
            } else if kind.is_char_device() {
                EntryType::Char
            } else {
                EntryType::Block
            };
            let mut header = self.header(meta, entry_type);
            let rdev = meta.rdev();
            header.set_device_major(libc::major(rdev)).map_err(tar_err)?;
            header.set_device_minor(libc::minor(rdev)).map_err(tar_err)?;
            self.tar.append_data(&mut header, rel, io::empty()).map_err(tar_err)?;
        }
        Ok(())
    }

    fn pax_xattrs(&mut self, path: &Path) -> Result<(), LayerError> {
        let attrs = xattrs(path)?;
        if attrs.is_empty() {
            return Ok(());
        }
        let records: Vec<(String, Vec<u8>)> = attrs.into_iter().map(|(k, v)| (format!("SCHILY.xattr.{k}"), v)).collect();
        self.tar.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).map_err(LayerError::Write)
    }

    /// An empty regular file named `.wh.<name>`, as the OCI spec marks deletions.
    fn whiteout(&mut self, rel: &Path) -> Result<(), LayerError> {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.options.mtime);
        header.set_size(0);
        self.tar.append_data(&mut header, rel, io::empty()).map_err(LayerError::Write)
    }

    fn finish(self) -> Result<LayerInfo, LayerError> {
        let hashing = self.tar.into_inner().map_err(LayerError::Write)?;
        let (gzip, diff_id, _) = hashing.finish();
        let blob = gzip.finish().map_err(LayerError::Write)?;
        let (digest, size) = blob.finish()?;
        Ok(LayerInfo { digest: LayerDigest(digest), diff_id: DiffId(diff_id), size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn sample_tree(dir: &Path) {
        fs::create_dir_all(dir.join("app/lib")).unwrap();
        fs::write(dir.join("app/hello.txt"), "meow\n").unwrap();
        fs::write(dir.join("app/lib/big.bin"), vec![7u8; 300_000]).unwrap();
        fs::write(dir.join(format!("app/{}", "long".repeat(60))), "long name").unwrap();
        symlink("hello.txt", dir.join("app/link")).unwrap();
        fs::hard_link(dir.join("app/hello.txt"), dir.join("app/hard")).unwrap();
    }

    #[test]
    fn same_tree_gives_same_blob_in_two_stores() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let tree = tempfile::tempdir().unwrap();
        sample_tree(tree.path());
        let opts = LayerOptions { mtime: 0 };
        let first = write_tree(&Store::open(a.path()).unwrap(), tree.path(), opts).unwrap();
        // Touch every file: mtimes and atimes must not leak into the layer.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(tree.path().join("app/hello.txt"), "meow\n").unwrap();
        let second = write_tree(&Store::open(b.path()).unwrap(), tree.path(), opts).unwrap();
        assert_eq!(first, second);
        let blob = |root: &Path| fs::read(root.join("store/blobs/sha256").join(first.digest.0.hex())).unwrap();
        assert_eq!(blob(a.path()), blob(b.path()));
    }

    #[test]
    fn diff_writes_changes_and_whiteouts() {
        let root = tempfile::tempdir().unwrap();
        let (base, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        sample_tree(base.path());
        sample_tree(new.path());
        fs::write(new.path().join("app/hello.txt"), "purr\n").unwrap();
        fs::remove_file(new.path().join("app/link")).unwrap();
        fs::create_dir(new.path().join("added")).unwrap();
        let store = Store::open(root.path()).unwrap();
        let layer = write_diff(&store, base.path(), new.path(), LayerOptions { mtime: 0 }).unwrap();
        let blob = File::open(store.blob_path(&layer.digest.0)).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob));
        let names: Vec<String> = archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["added", "app", "app/.wh.link", "app/hard", "app/hello.txt"]);
    }
}
