//! Stacks as users and peers see them: built by mmdebstrap (or taken from
//! the machine's stack cache, keyed by the recipe hash), read by skopeo and
//! umoci, exported and imported back with identical digests.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::site::{STACK_CACHE, is_root};
use common::{Host, assert_clear_failure, tool};

fn recipes() -> String {
    format!("{}/stacks", env!("CARGO_MANIFEST_DIR"))
}

fn with_stack() -> Host {
    let host = Host::new();
    let run = host.command(["stacks:build", "bookworm", "--cache", STACK_CACHE]).env("BERTH_STACKS", recipes()).output().unwrap();
    assert!(run.status.success(), "stacks:build: {}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    host
}

fn inspect(host: &Host, name: &str) -> serde_json::Value {
    serde_json::from_str(&host.ok(["images:inspect", name]).out()).unwrap()
}

fn layer_digests(image: &serde_json::Value) -> Vec<String> {
    image["manifest"]["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect()
}

#[test]
#[ignore = "needs root: building or importing a stack needs root (mmdebstrap, file owners)"]
fn stack_images_are_ordinary_oci_images() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let host = with_stack();
    assert_eq!(host.ok(["stacks:list"]).out(), "=====> Stacks\nbookworm\n");
    let store = host.path().join("store");
    let store = store.to_str().unwrap();
    let run = inspect(&host, "berth/stack-run:bookworm");
    let build = inspect(&host, "berth/stack-build:bookworm");

    // The build image is the run image's layers plus one, stored once.
    let (run_layers, build_layers) = (layer_digests(&run), layer_digests(&build));
    assert_eq!(run_layers.len(), 1);
    assert_eq!(build_layers.len(), 2);
    assert_eq!(build_layers[0], run_layers[0]);
    let blobs = fs::read_dir(host.path().join("store/blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 6, "2 manifests, 2 configs, 2 layers");

    // skopeo and umoci read our layout.
    let skopeo: serde_json::Value =
        serde_json::from_str(&tool("skopeo", &["inspect", &format!("oci:{store}:berth/stack-run:bookworm")])).unwrap();
    assert_eq!(skopeo["Digest"], run["digest"]);
    assert_eq!(skopeo["Layers"][0].as_str().unwrap(), run_layers[0]);
    let stat = tool("umoci", &["stat", "--image", &format!("{store}:berth/stack-build:bookworm")]);
    assert!(stat.contains("berth stacks:build bookworm: build packages"), "{stat}");

    // Our export is an archive skopeo accepts, and copies unchanged.
    let work = tempfile::tempdir().unwrap();
    let exported = work.path().join("stack.oci.tar");
    host.ok(["stacks:export".as_ref(), "bookworm".as_ref(), exported.as_os_str()]);
    let copy = work.path().join("copy");
    tool(
        "skopeo",
        &["copy", &format!("oci-archive:{}:berth/stack-run:bookworm", exported.display()), &format!("oci:{}:tag", copy.display())],
    );
    let copied: serde_json::Value = serde_json::from_str(&tool("skopeo", &["inspect", &format!("oci:{}:tag", copy.display())])).unwrap();
    assert_eq!(copied["Digest"], run["digest"]);

    // An archive skopeo writes from our layout imports back with identical digests.
    let by_skopeo = work.path().join("by-skopeo.oci.tar");
    tool("skopeo", &["copy", &format!("oci:{store}:berth/stack-run:bookworm"), &format!("oci-archive:{}", by_skopeo.display())]);
    let other = Host::new();
    // (berth/ names are berth's own: an import may not take them.)
    let refused = other.run(["images:import".as_ref(), by_skopeo.as_os_str(), "--name".as_ref(), "berth/stack-run:bookworm".as_ref()]);
    assert!(refused.code == 1 && refused.stderr.contains("a name berth reserves"), "{}", refused.stderr);
    other.ok(["images:import".as_ref(), by_skopeo.as_os_str(), "--name".as_ref(), "copies/stack-run:bookworm".as_ref()]);
    assert_eq!(inspect(&other, "copies/stack-run:bookworm")["digest"], run["digest"]);

    // A docker archive (docker save's format) imports with the same layer
    // digests: the plain tars are re-gzipped exactly as berth writes layers.
    let docker = work.path().join("docker.tar");
    tool(
        "skopeo",
        &["copy", &format!("oci:{store}:berth/stack-run:bookworm"), &format!("docker-archive:{}:copies/docker:1", docker.display())],
    );
    other.ok(["images:import".as_ref(), docker.as_os_str()]);
    let from_docker = inspect(&other, "copies/docker:1");
    assert_eq!(layer_digests(&from_docker), run_layers);
    assert_eq!(from_docker["config"]["rootfs"]["diff_ids"], run["config"]["rootfs"]["diff_ids"]);
    other.ok(["store:fsck"]);

    // The unpacked run layer is a Debian root with the app user.
    let dirs = host.ok(["images:unpack", "berth/stack-run:bookworm"]).out();
    let root = Path::new(dirs.lines().next().unwrap());
    assert!(root.join("usr/bin/python3").exists());
    assert!(root.join("usr/bin/node").exists() || root.join("usr/bin/nodejs").exists());
    assert!(fs::read_to_string(root.join("etc/passwd")).unwrap().contains("app:x:1000:1000::/home/app:/bin/bash"));
    assert_eq!(fs::metadata(root.join("home/app")).unwrap().uid(), 1000);
    assert!(fs::read_dir(root.join("dev")).unwrap().next().is_none(), "devices come from the runtime");
}

#[test]
#[ignore = "needs root: mmdebstrap --mode=root needs root"]
fn a_stack_build_that_fails_shows_why_and_leaves_nothing() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let host = Host::new();
    let recipe = tempfile::tempdir().unwrap();
    let shipped = fs::read_to_string(format!("{}/bookworm/recipe.toml", recipes())).unwrap();
    let broken = shipped.replace("run_packages = [", "run_packages = [\"no-such-package-for-berth\", ");
    assert_ne!(broken, shipped);
    fs::write(recipe.path().join("recipe.toml"), broken).unwrap();
    let run = host.run(["stacks:build".as_ref(), "broken".as_ref(), "--recipe".as_ref(), recipe.path().as_os_str()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("berth: mmdebstrap failed building the run tree"), "{}", run.stderr);
    assert!(run.stderr.contains("no-such-package-for-berth"), "the mmdebstrap error is shown: {}", run.stderr);
    assert_eq!(host.ok(["stacks:list"]).out(), "=====> Stacks\n");
    assert_eq!(host.ok(["images:list"]).out().lines().count(), 1);
    let tmp = host.path().join("tmp");
    assert!(!tmp.exists() || fs::read_dir(&tmp).unwrap().next().is_none(), "a half stack was left in {}", tmp.display());

    // A recipe that smuggles an option as a package name never reaches mmdebstrap.
    fs::write(recipe.path().join("recipe.toml"), shipped.replace("\"curl\"", "\"--customize-hook=touch /pwned\"")).unwrap();
    let run = host.run(["stacks:build".as_ref(), "broken".as_ref(), "--recipe".as_ref(), recipe.path().as_os_str()]);
    assert_clear_failure(&run, "option as package");
    assert!(run.stderr.contains("is not a Debian package name"), "{}", run.stderr);
}
