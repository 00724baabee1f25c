//! berth builds on an air-gapped host: in a copy of the sources,
//! `scripts/offline-kit.sh --crates` vendors the crates, and then
//! `cargo build --offline --release` succeeds in a network namespace with
//! no way out and an empty CARGO_HOME (so nothing but vendor/ can serve).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::push_host::{repo, run};
use common::site::is_root;

/// Fixed paths so cargo's fingerprints of the vendored crates hold between
/// runs on one machine (a cache, like the stack's): only berth rebuilds.
const SOURCES: &str = "/var/cache/berth/offline-build/src";
const TARGET: &str = "/var/cache/berth/offline-build/target";

fn copy_sources(to: &Path) {
    let _ = fs::remove_dir_all(to);
    let listed = run(Command::new("git").arg("-C").arg(repo()).args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"]));
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let from = repo().join(&name);
        if !from.is_file() {
            continue;
        }
        let dest = to.join(&name);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(&from, &dest).unwrap();
    }
}

#[test]
#[ignore = "needs root: unshare -n needs root"]
fn berth_builds_from_vendored_crates_with_the_network_cut() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let sources = Path::new(SOURCES);
    copy_sources(sources);
    run(Command::new(sources.join("scripts/offline-kit.sh")).arg("--crates"));
    let config = fs::read_to_string(sources.join(".cargo/config.toml")).unwrap();
    assert!(config.contains("vendored-sources") && config.contains("directory = \"vendor\""), "{config}");
    assert!(sources.join("vendor/libcontainer-0.7.0").is_dir() || fs::read_dir(sources.join("vendor")).unwrap().count() > 100);

    let empty_home = tempfile::tempdir().unwrap();
    let cargo = ["/root/.cargo/bin/cargo", "/usr/local/cargo/bin/cargo"].into_iter().find(|c| Path::new(c).exists()).unwrap_or("cargo");
    let built = Command::new("unshare")
        .args(["-n", cargo, "build", "--offline", "--release", "--locked", "--quiet"])
        .current_dir(sources)
        .env("CARGO_HOME", empty_home.path())
        .env("CARGO_TARGET_DIR", TARGET)
        .output()
        .unwrap();
    assert!(built.status.success(), "offline build: {}", String::from_utf8_lossy(&built.stderr));
    let version = run(Command::new(Path::new(TARGET).join("release/berth")).arg("version"));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("berth "));
}
