//! The image store through the real binary, checked by peers: skopeo and
//! umoci read what berth writes, berth verifies what they write.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::site::is_root;
use common::{Host, assert_clear_failure, tool};

/// A small image made by umoci (a peer) in its own layout, packed as an OCI archive.
fn umoci_archive(dir: &Path, tag: &str, content: &str) -> PathBuf {
    let layout = dir.join(format!("layout-{tag}"));
    let layout_s = layout.to_str().unwrap();
    tool("umoci", &["init", "--layout", layout_s]);
    tool("umoci", &["new", "--image", &format!("{layout_s}:{tag}")]);
    let file = dir.join(format!("{tag}.txt"));
    fs::write(&file, content).unwrap();
    tool("umoci", &["insert", "--image", &format!("{layout_s}:{tag}"), file.to_str().unwrap(), &format!("/{tag}.txt")]);
    let archive = dir.join(format!("{tag}.oci.tar"));
    tool("tar", &["-C", layout_s, "-cf", archive.to_str().unwrap(), "."]);
    archive
}

fn blob_bytes(host: &Host) -> Vec<(String, u64)> {
    let mut out: Vec<_> = fs::read_dir(host.path().join("store/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
        .collect();
    out.sort();
    out
}

#[test]
#[ignore = "needs root: umoci needs root to write layers with owners"]
fn fsck_finds_corruption_and_gc_frees_exactly_the_unreachable() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let host = Host::new();
    let work = tempfile::tempdir().unwrap();
    host.ok(["images:import".as_ref(), umoci_archive(work.path(), "keep", "kept").as_os_str(), "--name".as_ref(), "small/keep:1".as_ref()]);
    let kept_blobs = blob_bytes(&host);
    host.ok([
        "images:import".as_ref(),
        umoci_archive(work.path(), "drop", "dropped content").as_os_str(),
        "--name".as_ref(),
        "small/drop:1".as_ref(),
    ]);
    let list = host.ok(["images:list"]).out();
    assert!(list.contains("small/keep:1") && list.contains("small/drop:1"), "{list}");
    assert!(host.ok(["store:fsck"]).out().contains("Checked"));

    // One flipped byte in a layer blob, then a missing blob: both found.
    let image: serde_json::Value = serde_json::from_str(&host.ok(["images:inspect", "small/keep:1"]).out()).unwrap();
    let layer = image["manifest"]["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    let path = host.path().join("store/blobs/sha256").join(&layer);
    let original = fs::read(&path).unwrap();
    let mut flipped = original.clone();
    flipped[original.len() / 2] ^= 0x01;
    fs::write(&path, &flipped).unwrap();
    let run = host.run(["store:fsck"]);
    assert_eq!(run.code, 1);
    assert!(run.out().contains(&format!("corrupted: sha256:{layer}")), "{}", run.out());
    fs::remove_file(&path).unwrap();
    let run = host.run(["store:fsck"]);
    assert_eq!(run.code, 1);
    assert!(run.out().contains(&format!("missing: sha256:{layer} (needed by small/keep:1)")), "{}", run.out());
    fs::write(&path, &original).unwrap();
    host.ok(["store:fsck"]);

    // gc frees exactly the blobs only the removed tag reached.
    host.ok(["images:remove", "small/drop:1"]);
    let all = blob_bytes(&host);
    let unreachable: u64 = all.iter().filter(|b| !kept_blobs.contains(b)).map(|b| b.1).sum();
    assert!(unreachable > 0);
    let dry = host.ok(["store:gc", "--dry-run", "--format", "json"]).out();
    let dry: serde_json::Value = serde_json::from_str(&dry).unwrap();
    assert_eq!(dry["blob_bytes"].as_u64().unwrap(), unreachable);
    assert_eq!(blob_bytes(&host), all, "--dry-run removed something");
    let done: serde_json::Value = serde_json::from_str(&host.ok(["store:gc", "--format", "json"]).out()).unwrap();
    assert_eq!(done["blob_bytes"].as_u64().unwrap(), unreachable);
    assert_eq!(blob_bytes(&host), kept_blobs);
    host.ok(["store:fsck"]);
    let unpacked = host.ok(["images:unpack", "small/keep:1"]).out();
    let top = unpacked.lines().last().unwrap();
    assert_eq!(fs::read_to_string(Path::new(top).join("keep.txt")).unwrap(), "kept");
}

#[test]
#[ignore = "needs root: umoci needs root"]
fn imports_refuse_corrupt_archives_and_change_nothing() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let host = Host::new();
    let work = tempfile::tempdir().unwrap();
    let archive = umoci_archive(work.path(), "bad", "some content that will be damaged");
    // Damage one blob inside the archive: unpack, flip a byte in the biggest blob, repack.
    let unpacked = work.path().join("unpacked");
    fs::create_dir(&unpacked).unwrap();
    tool("tar", &["-C", unpacked.to_str().unwrap(), "-xf", archive.to_str().unwrap()]);
    let blobs = unpacked.join("blobs/sha256");
    let biggest = fs::read_dir(&blobs).unwrap().map(|e| e.unwrap().path()).max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap();
    let mut bytes = fs::read(&biggest).unwrap();
    bytes[10] ^= 0xff;
    fs::write(&biggest, bytes).unwrap();
    let damaged = work.path().join("damaged.tar");
    tool("tar", &["-C", unpacked.to_str().unwrap(), "-cf", damaged.to_str().unwrap(), "."]);
    host.ok(["store:fsck"]);
    let before = host.snapshot();
    let run = host.run(["images:import".as_ref(), damaged.as_os_str(), "--name".as_ref(), "x/y:z".as_ref()]);
    assert_clear_failure(&run, "damaged import");
    assert!(run.stderr.contains("does not match its digest"), "{}", run.stderr);
    assert!(host.ok(["images:list"]).out().lines().count() == 1, "a tag appeared");
    let after = host.snapshot();
    let new_files: Vec<_> = after.keys().filter(|k| !before.contains_key(*k) && !k.ends_with("store.gc.lock")).collect();
    assert!(new_files.is_empty(), "a failed import left {new_files:?}");

    for bad in [
        &["images:import", "/nonexistent.tar"][..],
        &["images:inspect", "Bad:Ref"],
        &["images:inspect", "no/such:tag"],
        &["stacks:build", "Bad"],
        &["stacks:export", "nosuch", "/tmp/x.tar"],
    ] {
        assert_clear_failure(&host.run(bad), &format!("{bad:?}"));
    }
}

#[test]
fn the_same_tree_gives_byte_identical_layers_in_two_roots() {
    let tree = tempfile::tempdir().unwrap();
    fs::create_dir_all(tree.path().join("app/static")).unwrap();
    fs::write(tree.path().join("app/app.py"), "print('Cat dreams meow..')\n").unwrap();
    fs::write(tree.path().join("app/static/big.bin"), vec![42u8; 3 << 20]).unwrap();
    std::os::unix::fs::symlink("app.py", tree.path().join("app/main.py")).unwrap();
    let (one, two) = (Host::new(), Host::new());
    let first = one.ok(["images:from-dir".as_ref(), tree.path().as_os_str(), "tree/one:1".as_ref()]).out();
    // Touching the tree changes mtimes and atimes, never the layer.
    fs::write(tree.path().join("app/app.py"), "print('Cat dreams meow..')\n").unwrap();
    let again = one.ok(["images:from-dir".as_ref(), tree.path().as_os_str(), "tree/one:2".as_ref()]).out();
    let second = two.ok(["images:from-dir".as_ref(), tree.path().as_os_str(), "tree/two:1".as_ref()]).out();
    let layer_line = |out: &str| out.lines().next().unwrap().split_whitespace().nth(3).unwrap().to_owned();
    assert_eq!(layer_line(&first), layer_line(&again));
    assert_eq!(layer_line(&first), layer_line(&second));
    let digest = layer_line(&first);
    let hex = digest.trim_start_matches("sha256:");
    let blob = |host: &Host| fs::read(host.path().join("store/blobs/sha256").join(hex)).unwrap();
    assert_eq!(blob(&one), blob(&two));
    // The name is the content's sha256, as sha256sum computes it.
    let sum = tool("sha256sum", &[one.path().join("store/blobs/sha256").join(hex).to_str().unwrap()]);
    assert!(sum.starts_with(hex));
    // Stored once however many tags use it.
    let layers = fs::read_dir(one.path().join("store/blobs/sha256")).unwrap().filter(|e| e.as_ref().unwrap().file_name() == hex).count();
    assert_eq!(layers, 1);
}
