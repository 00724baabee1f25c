//! The unpack cache: each layer unpacked once under `$BERTH_ROOT/layers/<diff_id hex>/`,
//! ready to be an overlay lowerdir.
//!
//! Unpacking never writes outside the layer directory: entries with `..` or
//! absolute paths are refused, as is any entry whose parent is a symlink (a
//! symlink followed by a file through it) and any hard link that does not
//! name a regular file already unpacked inside the layer. Device nodes are
//! skipped (containers get /dev from the runtime). GNU sparse entries are
//! refused, and a header claiming more data than the archive holds fails the
//! unpack. OCI whiteouts become overlayfs whiteouts (a 0:0 char device, the
//! `trusted.overlay.opaque` xattr). Work happens in a temp dir renamed into
//! place only when both the blob digest and the diff_id verified.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;
use tar::EntryType;

use super::digest::HashingReader;
use super::layer::{OPAQUE_WHITEOUT, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX};
use super::limit::Capped;
use super::store::{LayerInfo, Store, StoreError};
use crate::state::atomic;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {entry:?} is refused: {why}")]
    Refused { entry: String, why: &'static str },
    #[error("layer {layer} is corrupt: {why}")]
    Corrupt { layer: String, why: String },
    #[error("cannot unpack into {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + use<> {
    let path = path.to_owned();
    move |source| UnpackError::Io { path, source }
}

fn refused(entry: &Path, why: &'static str) -> UnpackError {
    UnpackError::Refused { entry: entry.to_string_lossy().into_owned(), why }
}

pub fn layers_dir(berth_root: &Path) -> PathBuf {
    berth_root.join("layers")
}

/// The unpacked directory of `layer`, unpacking it first if needed.
pub fn unpacked(berth_root: &Path, store: &Store, layer: &LayerInfo) -> Result<PathBuf, UnpackError> {
    let dir = layers_dir(berth_root);
    let target = dir.join(layer.diff_id.0.hex());
    if target.is_dir() {
        return Ok(target);
    }
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    // Root's own: what an image holds (setuid files among it) is no host user's to run.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io_err(&dir))?;
    let tmp = atomic::temp_path_for(&target);
    fs::create_dir(&tmp).map_err(io_err(&tmp))?;
    let limit = crate::state::settings::Settings::load(berth_root).map(|s| s.limits.layer_bytes).unwrap_or(4 << 30);
    let result = unpack_verified(store, layer, &tmp, limit).and_then(|()| match fs::rename(&tmp, &target) {
        Ok(()) => Ok(()),
        // Another process unpacked the same layer first: theirs is as good.
        Err(_) if target.is_dir() => Err(UnpackError::Io { path: target.clone(), source: io::Error::from(io::ErrorKind::AlreadyExists) }),
        Err(e) => Err(io_err(&target)(e)),
    });
    match result {
        Ok(()) => Ok(target),
        Err(UnpackError::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(target)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn unpack_verified(store: &Store, layer: &LayerInfo, dest: &Path, limit: u64) -> Result<(), UnpackError> {
    let path = store.blob_path(&layer.digest.0);
    let file = File::open(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => UnpackError::Store(StoreError::MissingBlob(layer.digest.0.clone())),
        _ => io_err(&path)(e),
    })?;
    let compressed = HashingReader::new(BufReader::with_capacity(1 << 20, file));
    let tar_stream = HashingReader::new(Capped::new(MultiGzDecoder::new(compressed), limit, "the layer"));
    let mut archive = tar::Archive::new(EndPadding { inner: tar_stream, zeros_left: 1536 });
    unpack_entries(&mut archive, dest, &layer.digest.to_string())?;
    let corrupt = |why: String| UnpackError::Corrupt { layer: layer.digest.to_string(), why };
    let (gzip, diff_id, _) = archive.into_inner().inner.finish().map_err(|e| corrupt(e.to_string()))?;
    let (_, digest, _) = gzip.into_inner().into_inner().finish().map_err(|e| corrupt(e.to_string()))?;
    if digest != layer.digest.0 {
        return Err(corrupt(format!("the blob hashes to {digest}")));
    }
    if diff_id != layer.diff_id.0 {
        return Err(corrupt(format!("its tar hashes to {diff_id}, not the diff_id {}", layer.diff_id)));
    }
    Ok(())
}

/// Some writers (umoci's insert) end a layer tar without the last entry's
/// padding or the end-of-archive blocks. This supplies them as zeros once
/// the real stream ends; it sits above the diff_id hash, so the digest still
/// covers exactly the real bytes, and a file claiming more data than the
/// stream holds still fails the size check.
struct EndPadding<R> {
    inner: R,
    zeros_left: usize,
}

impl<R: io::Read> io::Read for EndPadding<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        let n = buf.len().min(self.zeros_left);
        buf[..n].fill(0);
        self.zeros_left -= n;
        Ok(n)
    }
}

/// One entry about to be unpacked: where it goes and what its header says.
struct Placed {
    /// The name as the archive gives it, for messages.
    shown: PathBuf,
    target: PathBuf,
    mode: u32,
    owner: (u32, u32),
}

fn unpack_entries<R: io::Read>(archive: &mut tar::Archive<R>, dest: &Path, layer: &str) -> Result<(), UnpackError> {
    let corrupt = |e: io::Error| UnpackError::Corrupt { layer: layer.to_owned(), why: e.to_string() };
    let mut dir_modes = Vec::new();
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let shown = Path::new(OsStr::from_bytes(&entry.path_bytes())).to_owned();
        let Some(rel) = contained(&shown)? else {
            continue;
        };
        make_parents(dest, &rel)?;
        let target = dest.join(&rel);
        if whiteout(&rel, &target, &shown, dest)? {
            continue;
        }
        let header = entry.header();
        // setuid and setgid never survive: no file from an image runs with its owner's rights.
        let mode = header.mode().unwrap_or(0o644) & 0o1777;
        let owner = (header.uid().unwrap_or(0) as u32, header.gid().unwrap_or(0) as u32);
        let placed = Placed { shown, target, mode, owner };
        match entry.header().entry_type() {
            EntryType::Directory => {
                directory(&mut entry, &placed)?;
                // Modes last: a read-only directory must still take its children.
                dir_modes.push((placed.target, mode));
            }
            EntryType::Regular | EntryType::Continuous => regular_file(&mut entry, &placed, layer)?,
            EntryType::Symlink => symlink(&entry, &placed)?,
            EntryType::Link => hard_link(&entry, &placed, dest)?,
            EntryType::GNUSparse => return Err(refused(&placed.shown, "sparse files are not accepted in layers")),
            EntryType::Fifo => {
                remove_existing(&placed.target)?;
                mkfifo(&placed.target, mode)?;
            }
            // Devices come from the runtime's /dev, never from an image; PAX
            // and GNU long-name records are consumed by the tar reader.
            _ => {}
        }
    }
    for (dir, mode) in dir_modes.into_iter().rev() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).map_err(io_err(&dir))?;
    }
    Ok(())
}

/// OCI whiteouts become what overlayfs understands; true when `rel` was one.
fn whiteout(rel: &Path, target: &Path, shown: &Path, dest: &Path) -> Result<bool, UnpackError> {
    let name = rel.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    if name == OPAQUE_WHITEOUT.as_bytes() {
        let parent = target.parent().unwrap_or(dest);
        xattr::set(parent, OVERLAY_OPAQUE_XATTR, b"y").map_err(io_err(parent))?;
        return Ok(true);
    }
    let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) else { return Ok(false) };
    // `.wh..` would hide the parent, `.wh.` the directory itself.
    if matches!(hidden, b"" | b"." | b"..") || hidden.contains(&b'/') {
        return Err(refused(shown, "a whiteout must name one entry"));
    }
    let hidden = target.with_file_name(OsStr::from_bytes(hidden));
    remove_existing(&hidden)?;
    mknod_whiteout(&hidden)?;
    Ok(true)
}

/// Hands what was made to the entry's owner (only root can).
fn chown(placed: &Placed) -> Result<(), UnpackError> {
    if is_root() {
        let (uid, gid) = placed.owner;
        std::os::unix::fs::lchown(&placed.target, Some(uid), Some(gid)).map_err(io_err(&placed.target))?;
    }
    Ok(())
}

fn directory<R: io::Read>(entry: &mut tar::Entry<R>, placed: &Placed) -> Result<(), UnpackError> {
    let target = &placed.target;
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            remove_existing(target)?;
            fs::create_dir(target).map_err(io_err(target))?;
        }
        Err(_) => fs::create_dir(target).map_err(io_err(target))?,
    }
    apply_xattrs(entry, target)?;
    chown(placed)
}

/// A regular file, written through O_NOFOLLOW and checked against the size
/// its header claims.
fn regular_file<R: io::Read>(entry: &mut tar::Entry<R>, placed: &Placed, layer: &str) -> Result<(), UnpackError> {
    let target = &placed.target;
    remove_existing(target)?;
    let size = entry.header().size().unwrap_or(0);
    let mut file =
        OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).mode(0o600).open(target).map_err(io_err(target))?;
    let shown = placed.shown.display();
    let copied = io::copy(entry, &mut file).map_err(|e| UnpackError::Corrupt { layer: layer.to_owned(), why: format!("{shown}: {e}") })?;
    if copied != size {
        let why = format!("{shown} claims {size} bytes but the archive holds {copied}");
        return Err(UnpackError::Corrupt { layer: layer.to_owned(), why });
    }
    apply_xattrs(entry, target)?;
    chown(placed)?;
    fs::set_permissions(target, fs::Permissions::from_mode(placed.mode)).map_err(io_err(target))
}

fn symlink<R: io::Read>(entry: &tar::Entry<R>, placed: &Placed) -> Result<(), UnpackError> {
    let link = entry.link_name_bytes().ok_or_else(|| refused(&placed.shown, "symlink without a target"))?.into_owned();
    remove_existing(&placed.target)?;
    std::os::unix::fs::symlink(OsStr::from_bytes(&link), &placed.target).map_err(io_err(&placed.target))?;
    chown(placed)
}

/// A hard link, only to a regular file this layer already unpacked, reached
/// without a symlink.
fn hard_link<R: io::Read>(entry: &tar::Entry<R>, placed: &Placed, dest: &Path) -> Result<(), UnpackError> {
    let shown = &placed.shown;
    let link = entry.link_name_bytes().ok_or_else(|| refused(shown, "hard link without a target"))?.into_owned();
    let Some(link_rel) = contained(Path::new(OsStr::from_bytes(&link)))? else {
        return Err(refused(shown, "hard link to the layer root"));
    };
    check_no_symlink_parents(dest, &link_rel, shown)?;
    let source = dest.join(&link_rel);
    if !fs::symlink_metadata(&source).is_ok_and(|m| m.is_file()) {
        return Err(refused(shown, "hard link to something that is not a file in this layer"));
    }
    remove_existing(&placed.target)?;
    fs::hard_link(&source, &placed.target).map_err(io_err(&placed.target))
}

/// The entry's path made relative and checked: `None` for the root itself,
/// an error for anything that could leave the layer.
fn contained(path: &Path) -> Result<Option<PathBuf>, UnpackError> {
    let mut rel = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(refused(path, "it climbs out with '..'")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refused(path, "absolute paths are not allowed"));
            }
        }
    }
    Ok(if rel.as_os_str().is_empty() { None } else { Some(rel) })
}

/// Creates missing parents of `rel`; refuses to go through a symlink or file.
fn make_parents(dest: &Path, rel: &Path) -> Result<(), UnpackError> {
    let mut dir = dest.to_path_buf();
    let parents: Vec<_> = rel.parent().map(|p| p.components().collect()).unwrap_or_default();
    for part in parents {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(refused(rel, "its parent is a symlink or a file")),
            Err(_) => fs::create_dir(&dir).map_err(io_err(&dir))?,
        }
    }
    Ok(())
}

fn check_no_symlink_parents(dest: &Path, rel: &Path, shown: &Path) -> Result<(), UnpackError> {
    let mut dir = dest.to_path_buf();
    for part in rel.parent().map(|p| p.components().collect::<Vec<_>>()).unwrap_or_default() {
        dir.push(part);
        if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Err(refused(shown, "hard link through a symlink"));
        }
    }
    Ok(())
}

/// A later entry replaces an earlier one of the same name.
fn remove_existing(path: &Path) -> Result<(), UnpackError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_err(path)),
        Ok(_) => fs::remove_file(path).map_err(io_err(path)),
        Err(_) => Ok(()),
    }
}

fn apply_xattrs<R: io::Read>(entry: &mut tar::Entry<R>, target: &Path) -> Result<(), UnpackError> {
    let Ok(Some(extensions)) = entry.pax_extensions() else {
        return Ok(());
    };
    for ext in extensions.flatten() {
        let Ok(key) = ext.key() else { continue };
        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
            // Unprivileged unpacks cannot set trusted.* or security.*: skip those there.
            if let Err(e) = xattr::set(target, name, ext.value_bytes())
                && is_root()
            {
                return Err(io_err(target)(e));
            }
        }
    }
    Ok(())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// An overlayfs whiteout: a 0:0 character device.
fn mknod_whiteout(path: &Path) -> Result<(), UnpackError> {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(|e| io_err(path)(e.into()))
}

fn mkfifo(path: &Path, mode: u32) -> Result<(), UnpackError> {
    use nix::sys::stat::Mode;
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(mode)).map_err(|e| io_err(path)(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::digest::{DiffId, Digest, LayerDigest};
    use crate::image::layer::{LayerOptions, write_tree};
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    /// A tar entry with raw bytes for the name: the tar crate's own builder
    /// refuses `..`, which is exactly what these tests need to write.
    fn raw_entry(tar: &mut Vec<u8>, name: &[u8], kind: EntryType, data: &[u8], link: &[u8], claimed_size: Option<u64>) {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link);
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(claimed_size.unwrap_or(data.len() as u64));
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }

    fn store_layer(store: &Store, tar: &[u8]) -> LayerInfo {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(tar).unwrap();
        let compressed = gz.finish().unwrap();
        let (digest, size) = store.put_bytes(&compressed).unwrap();
        LayerInfo { digest: LayerDigest(digest), diff_id: DiffId(Digest::of(tar)), size }
    }

    fn setup() -> (tempfile::TempDir, Store) {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        (root, store)
    }

    fn refused_and_clean(root: &Path, store: &Store, tar: Vec<u8>) -> String {
        let mut tar = tar;
        tar.extend_from_slice(&[0u8; 1024]);
        let layer = store_layer(store, &tar);
        let err = unpacked(root, store, &layer).unwrap_err().to_string();
        let left: Vec<_> = fs::read_dir(layers_dir(root)).unwrap().collect();
        assert!(left.is_empty(), "unpack left {left:?} behind after: {err}");
        err
    }

    #[test]
    fn written_tree_unpacks_to_the_same_tree() {
        let (root, store) = setup();
        let tree = tempfile::tempdir().unwrap();
        fs::create_dir_all(tree.path().join("a/b")).unwrap();
        fs::write(tree.path().join("a/b/file"), "content").unwrap();
        fs::set_permissions(tree.path().join("a/b/file"), fs::Permissions::from_mode(0o751)).unwrap();
        std::os::unix::fs::symlink("b/file", tree.path().join("a/link")).unwrap();
        fs::hard_link(tree.path().join("a/b/file"), tree.path().join("a/hard")).unwrap();
        let layer = write_tree(&store, tree.path(), LayerOptions { mtime: 0 }).unwrap();
        let dir = unpacked(root.path(), &store, &layer).unwrap();
        assert_eq!(dir, layers_dir(root.path()).join(layer.diff_id.0.hex()));
        assert_eq!(fs::read_to_string(dir.join("a/b/file")).unwrap(), "content");
        assert_eq!(fs::metadata(dir.join("a/b/file")).unwrap().mode() & 0o7777, 0o751);
        assert_eq!(fs::read_link(dir.join("a/link")).unwrap(), Path::new("b/file"));
        assert_eq!(fs::metadata(dir.join("a/hard")).unwrap().ino(), fs::metadata(dir.join("a/b/file")).unwrap().ino());
        // A second call finds it unpacked.
        assert_eq!(unpacked(root.path(), &store, &layer).unwrap(), dir);
    }

    #[test]
    fn refuses_entries_that_climb_out() {
        let (root, store) = setup();
        let outside = root.path().join("outside");
        for name in [&b"../outside"[..], b"a/../../outside", b"/tmp/berth-absolute-test"] {
            let mut tar = Vec::new();
            raw_entry(&mut tar, name, EntryType::Regular, b"pwned", b"", None);
            let err = refused_and_clean(root.path(), &store, tar);
            assert!(err.contains("refused"), "{err}");
        }
        assert!(!outside.exists());
        assert!(!Path::new("/tmp/berth-absolute-test").exists());
    }

    #[test]
    fn refuses_a_file_through_a_symlink() {
        let (root, store) = setup();
        let target = tempfile::tempdir().unwrap();
        let mut tar = Vec::new();
        raw_entry(&mut tar, b"escape", EntryType::Symlink, b"", target.path().as_os_str().as_bytes(), None);
        raw_entry(&mut tar, b"escape/pwned", EntryType::Regular, b"pwned", b"", None);
        let err = refused_and_clean(root.path(), &store, tar);
        assert!(err.contains("symlink"), "{err}");
        assert!(!target.path().join("pwned").exists());
    }

    #[test]
    fn refuses_hard_links_out_of_the_layer() {
        let (root, store) = setup();
        for link in [&b"../../../../etc/passwd"[..], b"/etc/passwd"] {
            let mut tar = Vec::new();
            raw_entry(&mut tar, b"passwd", EntryType::Link, b"", link, None);
            refused_and_clean(root.path(), &store, tar);
        }
        // A hard link to a symlink that points out is refused too.
        let mut tar = Vec::new();
        raw_entry(&mut tar, b"sym", EntryType::Symlink, b"", b"/etc/passwd", None);
        raw_entry(&mut tar, b"hard", EntryType::Link, b"", b"sym", None);
        refused_and_clean(root.path(), &store, tar);
    }

    #[test]
    fn refuses_a_ten_gib_claim() {
        let (root, store) = setup();
        let mut tar = Vec::new();
        raw_entry(&mut tar, b"huge", EntryType::Regular, b"tiny", b"", Some(10 << 30));
        let err = refused_and_clean(root.path(), &store, tar);
        assert!(err.contains("corrupt"), "{err}");
        // A real 10 GiB sparse file as GNU tar writes it.
        let src = tempfile::tempdir().unwrap();
        File::create(src.path().join("sparse")).unwrap().set_len(10 << 30).unwrap();
        let out = std::process::Command::new("tar")
            .args(["--sparse", "--format=gnu", "-cf", "-", "-C"])
            .arg(src.path())
            .arg("sparse")
            .output()
            .unwrap();
        assert!(out.status.success());
        let mut tar = out.stdout;
        tar.truncate(tar.len() - 1024);
        let err = refused_and_clean(root.path(), &store, tar);
        assert!(err.contains("sparse"), "{err}");
    }

    #[test]
    fn refuses_a_blob_with_a_flipped_byte() {
        let (root, store) = setup();
        let mut tar = Vec::new();
        raw_entry(&mut tar, b"file", EntryType::Regular, b"content", b"", None);
        tar.extend_from_slice(&[0u8; 1024]);
        let mut layer = store_layer(&store, &tar);
        layer.diff_id = DiffId(Digest::of(b"something else"));
        let err = unpacked(root.path(), &store, &layer).unwrap_err().to_string();
        assert!(err.contains("diff_id"), "{err}");
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        if !is_root() {
            eprintln!("skipped: whiteouts need root (mknod, trusted.* xattrs)");
            return;
        }
        let (root, store) = setup();
        let mut tar = Vec::new();
        raw_entry(&mut tar, b"dir/", EntryType::Directory, b"", b"", None);
        raw_entry(&mut tar, b"dir/.wh..wh..opq", EntryType::Regular, b"", b"", None);
        raw_entry(&mut tar, b".wh.gone", EntryType::Regular, b"", b"", None);
        tar.extend_from_slice(&[0u8; 1024]);
        let layer = store_layer(&store, &tar);
        let dir = unpacked(root.path(), &store, &layer).unwrap();
        let gone = fs::symlink_metadata(dir.join("gone")).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(gone.file_type().is_char_device() && gone.rdev() == 0);
        assert_eq!(xattr::get(dir.join("dir"), OVERLAY_OPAQUE_XATTR).unwrap().as_deref(), Some(&b"y"[..]));
    }
}
