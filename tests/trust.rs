//! The boundaries between the host and code berth did not write: a build
//! reaches the package index but not the host's services, a build's symlinks
//! never lead root outside the build, each app runs under a uid of its own
//! that no host account has, secrets are root's alone, and a setuid binary
//! from an image is no way to root.

mod common;

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::push_host::{PushHost, checkout_of, free_port, text};
use common::site::{Site, is_root};
use common::write_buildpack;

/// A TCP service on all of the host's addresses that counts who connects.
fn host_service() -> (u16, Arc<AtomicUsize>) {
    let port = free_port();
    let listener = TcpListener::bind(("0.0.0.0", port)).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, count)
}

fn build(site: &Site, app: &str, source: &Path) -> (i32, String) {
    let out = site.host.command(["builds:create", app, source.to_str().unwrap()]).output().unwrap();
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
#[ignore = "needs root: builds run in namespaces"]
fn a_build_reaches_the_index_but_not_the_host_and_its_symlinks_lead_nowhere() {
    assert!(is_root(), "run with ./test.sh as root");
    let site = Site::new("bt-trust", "10.217.12.0/24", "");
    let work = tempfile::tempdir().unwrap();
    let (port, connections) = host_service();
    let source = work.path().join("source");
    fs::create_dir_all(&source).unwrap();
    fs::write(source.join("Procfile"), "web: true\n").unwrap();

    // The network: the host's loopback, its bridge address and the cloud
    // metadata address are out of reach; the package index is not.
    let probe = work.path().join("bp-probe");
    write_buildpack(
        &probe,
        "echo Probe",
        &format!(
            "for target in 127.0.0.1 10.217.12.1; do if timeout 3 bash -c 'echo hi > /dev/tcp/'$target'/{port}' 2>/dev/null; then echo \"REACHED $target\"; else echo \"blocked $target\"; fi; done\n\
             if timeout 3 bash -c 'echo > /dev/tcp/169.254.169.254/80' 2>/dev/null; then echo 'REACHED metadata'; else echo 'blocked metadata'; fi\n\
             python3 -m pip download --no-deps --quiet -d /tmp/dl six==1.16.0 && ls /tmp/dl | grep -q six && echo 'the index answers'"
        ),
    );
    site.host.ok(["apps:create", "probe"]);
    site.host.ok(["buildpacks:set", "probe", probe.to_str().unwrap()]);
    let (code, out) = build(&site, "probe", &source);
    assert_eq!(code, 0, "{out}");
    for line in ["blocked 127.0.0.1", "blocked 10.217.12.1", "blocked metadata", "the index answers"] {
        assert!(out.contains(line), "{line:?} missing: {out}");
    }
    assert!(!out.contains("REACHED"), "{out}");
    assert_eq!(connections.load(Ordering::SeqCst), 0, "the host service was reached");
    let rules = String::from_utf8_lossy(&Command::new("iptables").args(["-S", "berth-in-bt-trust"]).output().unwrap().stdout).into_owned();
    assert!(rules.contains("-j DROP"), "no guard chain: {rules}");

    // Symlinks: a root-only host directory the build points at stays where
    // it is, and a symlinked Procfile is refused without showing its target.
    let secret = tempfile::tempdir().unwrap();
    fs::write(secret.path().join("key"), "root-only secret\n").unwrap();
    let s = secret.path().display();
    let sneaky = work.path().join("bp-sneaky");
    write_buildpack(
        &sneaky,
        "echo Probe",
        &format!(
            "ln -s {s} /app/x; ln -s {s}/key /app/y; printf 'loot x\\nloot2 x/sub\\n' > /cache/.berth-handover\n\
             ln -s {s} /cache/loot3; printf 'loot3 z\\n' >> /cache/.berth-handover\n\
             rm -f /app/Procfile; ln -s {s}/key /app/Procfile; ln -s {s}/key /app/app.json; echo 'links made'"
        ),
    );
    site.host.ok(["apps:create", "sneaky"]);
    site.host.ok(["buildpacks:set", "sneaky", sneaky.to_str().unwrap()]);
    let before: Vec<_> = fs::read_dir(secret.path()).unwrap().flatten().map(|e| e.path()).collect();
    let (code, out) = build(&site, "sneaky", &source);
    assert_ne!(code, 0, "a symlinked Procfile was accepted: {out}");
    assert!(out.contains("links made") && out.contains("Procfile is not a plain file"), "{out}");
    assert!(!out.contains("root-only secret"), "the target's content reached the pusher: {out}");
    assert_eq!(fs::read_to_string(secret.path().join("key")).unwrap(), "root-only secret\n");
    let after: Vec<_> = fs::read_dir(secret.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(before, after);
    let cache = site.host.path().join("apps/sneaky/cache");
    for loot in ["loot", "loot2"] {
        assert!(!cache.join(loot).exists(), "{loot} was moved into the cache");
    }
    // A second build: nothing of the host comes back in through the cache.
    let (_, again) = build(&site, "sneaky", &source);
    assert!(!again.contains("root-only secret"), "{again}");
    assert!(secret.path().join("key").is_file());
}

/// The uid a process runs as, from /proc.
fn uid_of(pid: &str) -> u32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap().split_whitespace().next().unwrap().parse().unwrap()
}

/// The pids whose command line mentions `needle` and whose environment holds `marker`.
fn pids_with(needle: &str, marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = fs::read(entry.path().join("environ")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) && String::from_utf8_lossy(&environ).contains(marker) {
            found.push(pid);
        }
    }
    found
}

#[test]
#[ignore = "needs root: sshd, nginx and containers"]
fn apps_run_as_their_own_uids_and_keep_their_secrets() {
    assert!(is_root(), "run with ./test.sh as root");
    let site = PushHost::new("bt-uids", "10.217.13.0/24");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    let mut uids = Vec::new();
    let mut pids = Vec::new();
    for app in ["cat-a", "cat-b"] {
        host.ok(["apps:create", app]);
        let marker = format!("SECRET_{}=only-{app}-knows", app.replace('-', "_").to_uppercase());
        host.ok(["config:set", app, "--no-restart", &marker]);
        let push = site.push_app(&checkout, app, "main");
        assert!(push.status.success(), "{}", text(&push));
        let found = pids_with("catmeow", &marker);
        assert!(!found.is_empty(), "no process of {app} found");
        let uid = uid_of(&found[0]);
        uids.push(uid);
        pids.push(found[0].clone());
        // Root's alone: the config vars and every release that copies them.
        let dir = host.path().join("apps").join(app);
        for file in [dir.join("env"), dir.join("releases/1.json"), dir.join("releases/2.json")] {
            if file.exists() {
                assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600, "{}", file.display());
            }
        }
    }
    assert_ne!(uids[0], uids[1], "two apps share a uid");
    for uid in &uids {
        assert!(*uid >= 1_900_000, "app uid {uid} is in the host's range");
        let account = Command::new("getent").args(["passwd", &uid.to_string()]).output().unwrap();
        assert!(!account.status.success(), "uid {uid} is a host account");
    }
    // App b's uid cannot read app a's environment.
    let peek = Command::new("setpriv")
        .args([&format!("--reuid={}", uids[1]), &format!("--regid={}", uids[1]), "--clear-groups", "cat"])
        .arg(format!("/proc/{}/environ", pids[0]))
        .output()
        .unwrap();
    assert!(!peek.status.success(), "uid {} read app a's environment", uids[1]);
    assert!(!String::from_utf8_lossy(&peek.stdout).contains("only-cat-a-knows"));
    // Nor can an ordinary host user read the state directory.
    let state = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(host.path().join("apps/cat-a/env"))
        .output()
        .unwrap();
    assert!(!state.status.success(), "nobody read the config vars");
}

/// An OCI archive of one image whose layer holds `files` (path, mode, uid, bytes).
fn image_archive(files: &[(&str, u32, u64, Vec<u8>)], name: &str) -> Vec<u8> {
    let mut layer = tar::Builder::new(Vec::new());
    for (path, mode, uid, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_uid(*uid);
        header.set_gid(*uid);
        header.set_cksum();
        layer.append_data(&mut header, path, &data[..]).unwrap();
    }
    common::oci::oci_archive(&layer.into_inner().unwrap(), name)
}

#[test]
#[ignore = "needs root: unpacking keeps owners only as root"]
fn a_setuid_binary_from_an_image_gives_no_host_user_root() {
    assert!(is_root(), "run with ./test.sh as root");
    let host = common::Host::new();
    let work = tempfile::tempdir().unwrap();
    let mut id = Vec::new();
    fs::File::open("/usr/bin/id").unwrap().read_to_end(&mut id).unwrap();
    let file = work.path().join("suid.tar");
    fs::write(&file, image_archive(&[("bin/rootid", 0o4755, 0, id.clone()), ("bin/groupid", 0o2755, 0, id)], "hostile/suid:1")).unwrap();
    host.ok(["images:import", file.to_str().unwrap()]);
    let unpacked = host.ok(["images:unpack", "hostile/suid:1"]).out();
    let layers = host.path().join("layers");
    assert_eq!(fs::metadata(&layers).unwrap().mode() & 0o777, 0o700, "the layer cache is open to host users");
    let found: Vec<PathBuf> =
        fs::read_dir(&layers).unwrap().flatten().map(|e| e.path().join("bin/rootid")).filter(|p| p.exists()).collect();
    assert_eq!(found.len(), 1, "{unpacked}");
    let meta = fs::metadata(&found[0]).unwrap();
    assert_eq!(meta.uid(), 0, "owner kept");
    assert_eq!(meta.mode() & 0o6000, 0, "setuid/setgid kept: {:o}", meta.mode());
    let group = fs::metadata(found[0].with_file_name("groupid")).unwrap();
    assert_eq!(group.mode() & 0o6000, 0);
    // A host user who runs it anyway: no way in, and no euid 0.
    let run = Command::new("setpriv").args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&found[0]).arg("-u").output().unwrap();
    assert!(!run.status.success() || String::from_utf8_lossy(&run.stdout).trim() != "0", "{}", String::from_utf8_lossy(&run.stdout));
}

#[test]
#[ignore = "needs root: containers"]
fn containers_cannot_make_namespaces_trace_or_use_io_uring() {
    assert!(is_root(), "run with ./test.sh as root");
    let site = Site::new("bt-seccomp", "10.217.14.0/24", "");
    // Raw syscalls through ctypes: what each one returns, as errno names.
    let probe = r#"
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def call(name, number, *args):
    ret = libc.syscall(number, *args)
    err = ctypes.get_errno()
    if ret == 0 and name.startswith("clone"):
        os._exit(0)
    print(name, "ok" if ret >= 0 else errno.errorcode.get(err, err))
call("clone-newuser", 56, 0x10000000 | 17, 0, 0, 0, 0)
call("clone-newnet", 56, 0x40000000 | 17, 0, 0, 0, 0)
call("clone3", 435, 0, 0)
call("io_uring_setup", 425, 8, 0)
call("ptrace", 101, 16, 1, 0, 0)
print("uid", os.getuid())
"#;
    let id = site.run(&["--id", "probe", "--", "python3", "-c", probe]);
    site.wait_for(&id, "exited", |c| c["status"] == "exited");
    let out = site.logs(&id);
    for expected in ["clone-newuser EPERM", "clone-newnet EPERM", "clone3 ENOSYS", "io_uring_setup EPERM", "ptrace EPERM"] {
        assert!(out.contains(expected), "{expected:?} missing: {out}");
    }
    assert!(!out.contains("uid 0"), "containers:run ran as root by default: {out}");
    // The pids limit is there without being asked for.
    let id = site.run(&["--id", "sleeper", "--", "sleep", "300"]);
    site.wait_for(&id, "ran", |c| c["status"] == "running");
    let limits: Vec<String> = ["/sys/fs/cgroup/pids/berth", "/sys/fs/cgroup/berth"]
        .iter()
        .flat_map(|dir| fs::read_dir(dir).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().ends_with("-sleeper"))
        .filter_map(|e| fs::read_to_string(e.path().join("pids.max")).ok())
        .collect();
    assert_eq!(limits.iter().map(|l| l.trim()).collect::<Vec<_>>(), ["4096"], "{limits:?}");
    site.host.ok(["containers:rm", &id, "--force"]);
}
