//! Images out and in, against Debian's docker-registry on loopback (each
//! test starts its own, with its own storage): push with berth, read with
//! skopeo, pull into a fresh BERTH_ROOT and deploy from it; a code-only
//! re-push sends only what changed (counted by a proxy in front of the
//! registry); basic auth; archives that skopeo reads; tampering refused.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::assert_clear_failure;
use common::push_host::{PushHost, checkout_of, free_port, git, run, text};
use common::servers::{Server, make_pki, wait_for_port};
use common::site::is_root;

/// docker-registry on 127.0.0.1:port storing under `dir`, with basic auth
/// from `htpasswd` when given, and HTTPS with `dir`'s server.pem when `tls`.
fn registry(dir: &Path, port: u16, htpasswd: Option<&Path>, tls: bool) -> Server {
    let auth = htpasswd.map_or(String::new(), |p| format!("auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n", p.display()));
    let tls = if tls {
        format!("  tls:\n    certificate: {}\n    key: {}\n", dir.join("server.pem").display(), dir.join("server.key").display())
    } else {
        String::new()
    };
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{tls}{auth}",
        dir.join("data").display()
    );
    fs::write(dir.join("config.yml"), config).unwrap();
    let log = fs::File::create(dir.join("registry.log")).unwrap();
    let server = Server(
        Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_for_port(port);
    server
}

/// A TCP proxy to `target` that counts the bytes clients send through it.
fn counting_proxy(target: u16) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind(("127.0.0.1", free_port())).unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else { continue };
            let (mut c_read, mut u_write) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            let (mut u_read, mut c_write) = (upstream, client);
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = c_read.read(&mut buf) {
                    if n == 0 || u_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                }
                let _ = u_write.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut u_read, &mut c_write);
                let _ = c_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, sent)
}

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo").args(args).stdin(Stdio::null()).output().unwrap()
}

#[test]
#[ignore = "needs root: sshd, nginx, docker-registry and containers need root"]
fn images_go_to_a_registry_and_come_back() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = PushHost::new("bt-reg", "10.225.1.0/24");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    let pushed = site.push(&checkout, "main");
    assert!(pushed.status.success(), "{}", text(&pushed));

    let storage = tempfile::tempdir().unwrap();
    let registry_port = free_port();
    let _registry = registry(storage.path(), registry_port, None, false);
    let (port, sent) = counting_proxy(registry_port);
    let server = format!("127.0.0.1:{port}");

    // Plain HTTP only on loopback, and only when asked.
    assert_clear_failure(&host.run(["registry:set", "catmeow", "server", "a b"]), "a server with a space");
    host.ok(["registry:set", "catmeow", "server", &server]);
    let refused = host.run(["registry:push", "catmeow"]);
    assert_clear_failure(&refused, "HTTPS to a plain-HTTP registry");
    host.ok(["registry:set", "catmeow", "insecure", "true"]);
    let first = host.ok(["registry:push", "catmeow"]).out();
    assert!(first.contains(&format!("{server}/catmeow:1")), "{first}");
    let inspect = skopeo(&["inspect", "--tls-verify=false", &format!("docker://{server}/catmeow:1")]);
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    let inspected: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspected["Labels"]["io.berth.app"], "catmeow", "{inspected}");
    assert!(inspected["Labels"]["io.berth.process-types"].as_str().unwrap().contains("web"));
    let revision =
        String::from_utf8_lossy(&run(Command::new("git").arg("-C").arg(&checkout).args(["rev-parse", "HEAD"])).stdout).trim().to_owned();
    assert!(skopeo(&["inspect", "--tls-verify=false", &format!("docker://{server}/catmeow:{revision}")]).status.success());
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{server}/catmeow:1")]);
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let layers = manifest["layers"].as_array().unwrap().clone();
    // The same blobs under another repository of that registry are mounted, not sent.
    let before_mirror = sent.load(Ordering::Relaxed);
    let mirrored = host.ok(["images:push", "berth/app-catmeow:latest", &format!("{server}/mirror/catmeow:1"), "--insecure"]).out();
    assert!(mirrored.contains("mounted from catmeow") && mirrored.contains("0 of"), "{mirrored}");
    assert!(sent.load(Ordering::Relaxed) - before_mirror < 100_000, "a mount sends no layer");
    let image_bytes: u64 = layers.iter().map(|l| l["size"].as_u64().unwrap()).sum::<u64>() + manifest["config"]["size"].as_u64().unwrap();

    // A code-only change, pushed on release: only the app layer and the
    // config (and a manifest) cross the wire.
    host.ok(["registry:set", "catmeow", "push-on-release", "true"]);
    let code = fs::read_to_string(checkout.join("catmeow.py")).unwrap().replace("Cat dreams meow..", "Cat dreams of registries..");
    fs::write(checkout.join("catmeow.py"), code).unwrap();
    git(&checkout, &["commit", "-q", "-am", "code only"]);
    let before = sent.load(Ordering::Relaxed);
    let redeployed = site.push(&checkout, "main");
    assert!(redeployed.status.success() && text(&redeployed).contains("Pushed"), "{}", text(&redeployed));
    let delta = sent.load(Ordering::Relaxed) - before;
    eprintln!("code-only re-push: {delta} bytes sent for a {image_bytes}-byte image");
    assert!(delta * 20 < image_bytes, "{delta} bytes is not under 5% of {image_bytes}");

    // A fresh host pulls it and deploys it from the image alone.
    let other = PushHost::new("bt-reg2", "10.227.1.0/24");
    let deployed = other.site.host.ok(["git:from-image", "catmeow", &format!("{server}/catmeow:2"), "--insecure"]).out();
    assert!(deployed.contains("Application deployed"), "{deployed}");
    assert_eq!(other.page(), "Cat dreams of registries..\n");

    // A blob changed in the registry's storage is refused by digest.
    let blobs = storage.path().join("data/docker/registry/v2/blobs/sha256");
    let app_layer = layers.last().unwrap()["digest"].as_str().unwrap().to_owned();
    let hex = app_layer.trim_start_matches("sha256:");
    let data = blobs.join(&hex[..2]).join(hex).join("data");
    let mut bytes = fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    fs::write(&data, &bytes).unwrap();
    let third = common::site::Site::new("bt-reg3", "10.229.1.0/24", "");
    let tampered = third.host.run(["images:pull", &format!("{server}/catmeow:1"), "--insecure"]);
    assert_clear_failure(&tampered, "a tampered blob");
    assert!(tampered.stderr.contains(&app_layer), "names the digest: {}", tampered.stderr);
    assert!(third.host.run(["images:inspect", "catmeow:1"]).code != 0, "no half image is tagged");

    // Basic auth: a wrong password is refused in one sentence; a stored
    // login (root-only) lets pushes through.
    let secured = tempfile::tempdir().unwrap();
    let htpasswd = secured.path().join("htpasswd");
    run(Command::new("htpasswd").args(["-Bbc"]).arg(&htpasswd).args(["tester", "s3cret"]));
    let auth_port = free_port();
    let _secured = registry(secured.path(), auth_port, Some(&htpasswd), false);
    let auth_server = format!("127.0.0.1:{auth_port}");
    let target = format!("{auth_server}/team/catmeow:auth");
    let anonymous = host.run(["images:push", "berth/app-catmeow:latest", &target, "--insecure"]);
    assert_clear_failure(&anonymous, "a push without a login");
    assert!(anonymous.stderr.contains("registry:login"), "{}", anonymous.stderr);
    let wrong = host.run(["registry:login", &auth_server, "tester", "wrong", "--insecure"]);
    assert_clear_failure(&wrong, "a wrong password");
    assert!(wrong.stderr.contains("wrong user name or password"), "{}", wrong.stderr);
    let login = host.command(["registry:login", &auth_server, "tester", "--password-stdin", "--insecure"]).stdin(Stdio::piped()).spawn();
    let mut login = login.unwrap();
    login.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    assert!(login.wait().unwrap().success());
    use std::os::unix::fs::PermissionsExt;
    let logins = host.path().join("registry/logins.json");
    assert_eq!(fs::metadata(&logins).unwrap().permissions().mode() & 0o777, 0o600);
    host.ok(["images:push", "berth/app-catmeow:latest", &target, "--insecure"]);
    let creds = skopeo(&["inspect", "--tls-verify=false", "--creds", "tester:s3cret", &format!("docker://{target}")]);
    assert!(creds.status.success(), "{}", String::from_utf8_lossy(&creds.stderr));
    host.ok(["registry:logout", &auth_server]);
    assert_clear_failure(&host.run(["images:push", "berth/app-catmeow:latest", &target, "--insecure"]), "after logout");

    // HTTPS with a private CA: refused until the CA is in certs.d, as docker's.
    let private = tempfile::tempdir().unwrap();
    make_pki(private.path());
    let tls_port = free_port();
    let _tls = registry(private.path(), tls_port, None, true);
    let tls_server = format!("127.0.0.1:{tls_port}");
    let untrusted = host.run(["images:push", "berth/app-catmeow:latest", &format!("{tls_server}/catmeow:tls")]);
    assert_clear_failure(&untrusted, "an unknown CA");
    let certs = host.path().join("registry/certs.d").join(&tls_server);
    fs::create_dir_all(&certs).unwrap();
    fs::copy(private.path().join("ca.pem"), certs.join("ca.crt")).unwrap();
    host.ok(["images:push", "berth/app-catmeow:latest", &format!("{tls_server}/catmeow:tls")]);
    let over_tls = skopeo(&["inspect", "--cert-dir", &certs.to_string_lossy(), &format!("docker://{tls_server}/catmeow:tls")]);
    assert!(over_tls.status.success(), "{}", String::from_utf8_lossy(&over_tls.stderr));
}

#[test]
#[ignore = "needs root: sshd, nginx and containers need root"]
fn exported_archives_load_elsewhere_and_tampering_is_refused() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = PushHost::new("bt-export", "10.231.1.0/24");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    assert!(site.push(&checkout, "main").status.success());
    let out = tempfile::tempdir().unwrap();
    let path = |name: &str| out.path().join(name).to_string_lossy().into_owned();

    host.ok(["images:export", "catmeow", "--format", "docker-archive", "-o", &path("docker.tar")]);
    host.ok(["images:export", "catmeow", "--release", "v1", "-o", &path("oci.tar")]);
    host.ok(["images:export", "catmeow", "--format", "oci-dir", "-o", &path("layout")]);
    for (source, dir) in [
        (format!("docker-archive:{}", path("docker.tar")), "from-docker"),
        (format!("oci-archive:{}", path("oci.tar")), "from-oci"),
        (format!("oci:{}", path("layout")), "from-layout"),
    ] {
        let copied = skopeo(&["copy", "-q", &source, &format!("dir:{}", path(dir))]);
        assert!(copied.status.success(), "{source}: {}", String::from_utf8_lossy(&copied.stderr));
    }
    let docker: serde_json::Value =
        serde_json::from_slice(&skopeo(&["inspect", &format!("docker-archive:{}", path("docker.tar"))]).stdout).unwrap();
    assert_eq!(docker["Labels"]["io.berth.app"], "catmeow", "{docker}");
    let saved: serde_json::Value = serde_json::from_str(&common::tool("tar", &["-xOf", &path("docker.tar"), "manifest.json"])).unwrap();
    assert_eq!(saved[0]["RepoTags"][0], "catmeow:v1", "{saved}");
    assert_clear_failure(&host.run(["images:export", "catmeow", "--format", "zip", "-o", &path("x")]), "an unknown format");
    assert_clear_failure(&host.run(["images:export", "catmeow", "--release", "v9", "-o", &path("x")]), "a missing release");

    // One byte changed inside a layer of each archive: the import names the digest.
    let store: serde_json::Value = serde_json::from_str(&host.ok(["images:inspect", "berth/app-catmeow:latest"]).out()).unwrap();
    let app_layer = store["manifest"]["layers"].as_array().unwrap().last().unwrap()["digest"].as_str().unwrap().to_owned();
    let mut archive = fs::read(path("oci.tar")).unwrap();
    let entry = format!("blobs/sha256/{}", app_layer.trim_start_matches("sha256:"));
    let at = archive.windows(entry.len()).position(|w| w == entry.as_bytes()).expect("the layer's tar entry");
    archive[at + 512 + 40] ^= 0x01;
    fs::write(path("tampered-oci.tar"), &archive).unwrap();
    let refused = host.run(["images:import", &path("tampered-oci.tar"), "--name", "tampered:oci"]);
    assert_clear_failure(&refused, "a tampered OCI archive");
    assert!(refused.stderr.contains(&app_layer), "names the digest: {}", refused.stderr);
    let mut archive = fs::read(path("docker.tar")).unwrap();
    let at = archive.windows(17).position(|w| w == b"Cat dreams meow..").expect("the app's source in a layer");
    archive[at] ^= 0x01;
    fs::write(path("tampered-docker.tar"), &archive).unwrap();
    let refused = host.run(["images:import", &path("tampered-docker.tar"), "--name", "tampered:docker"]);
    assert_clear_failure(&refused, "a tampered docker archive");
    assert!(refused.stderr.contains("sha256:"), "names the digest: {}", refused.stderr);
    host.ok(["images:import", &path("docker.tar"), "--name", "fine:docker"]);

    // Dokku's `docker save IMAGE | dokku git:load-image APP IMAGE`: deployed,
    // its source recorded; garbage makes no app.
    let saved = fs::read(path("docker.tar")).unwrap();
    let loaded = host.run_with_stdin(["git:load-image", "loaded", "catmeow:v1"], &saved);
    assert_eq!(loaded.code, 0, "{}", loaded.stderr);
    assert_eq!(site.page_of("loaded"), "Cat dreams meow..\n");
    assert_eq!(host.ok(["git:report", "loaded", "--git-source-image"]).out(), "catmeow:v1\n");
    assert_clear_failure(&host.run_with_stdin(["git:load-image", "junk", "junk:1"], b"not an archive"), "garbage on stdin");
    assert_eq!(host.run(["apps:exists", "junk"]).code, 1);

    // Source from a tar.gz on stdin (one top directory, as GitHub's
    // tarballs); garbage is refused before any app exists.
    let tarball = out.path().join("src.tar.gz");
    run(Command::new("tar").arg("--exclude=.git").arg("-czf").arg(&tarball).arg("-C").arg(work.path()).arg("catmeow"));
    let garbage = host.run_with_stdin(["git:from-archive", "catcopy", "-"], b"not a tar at all");
    assert_clear_failure(&garbage, "garbage on stdin");
    assert!(host.run(["apps:exists", "catcopy"]).code != 0, "no app from garbage");
    let deployed = host.run_with_stdin(["git:from-archive", "catcopy", "-"], &fs::read(&tarball).unwrap());
    assert_eq!(deployed.code, 0, "{}{}", deployed.out(), deployed.stderr);
    assert!(deployed.out().contains("Application deployed"), "{}", deployed.out());
    assert_eq!(site.page_of("catcopy"), "Cat dreams meow..\n");
}

#[test]
#[ignore = "needs root: sshd, nginx and containers need root"]
fn a_bundle_deploys_on_a_host_that_builds_without_network() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = PushHost::new("bt-bundle", "10.233.1.0/24");
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    // app.json travels in the image: the loaded deploy runs the same check.
    let check = r#"{"healthchecks": {"web": [{"type": "startup", "name": "root", "path": "/", "content": "Cat dreams"}]}}"#;
    fs::write(checkout.join("app.json"), check).unwrap();
    git(&checkout, &["add", "app.json"]);
    git(&checkout, &["commit", "-q", "-m", "a health check"]);
    assert!(site.push(&checkout, "main").status.success());
    let bundle = work.path().join("bundle.tar");
    let created = site.site.host.ok(["bundle:create".as_ref(), bundle.as_os_str(), "--apps".as_ref(), "catmeow".as_ref()]).out();
    assert!(created.contains("berth/stack-run:bookworm") && created.contains("berth/app-catmeow:v1"), "{created}");
    assert!(created.contains("berth/buildpacks:bundle"), "{created}");
    assert!(!site.site.host.ok(["images:list"]).out().contains("berth/buildpacks"), "the buildpacks image is not left tagged");

    // The second host has no stack, and its app builds with no network.
    let other = PushHost::new("bt-bundle2", "10.235.1.0/24");
    let host = &other.site.host;
    host.ok(["images:remove", "berth/stack-run:bookworm"]);
    host.ok(["images:remove", "berth/stack-build:bookworm"]);
    host.ok(["store:gc"]);
    assert!(!host.ok(["stacks:list"]).out().contains("bookworm"));
    host.ok(["apps:create", "catmeow"]);
    host.ok(["builds:set", "catmeow", "network", "none"]);
    let loaded = host.ok(["bundle:load".as_ref(), bundle.as_os_str()]).out();
    assert!(loaded.contains("Application deployed") && loaded.contains("Check root passed"), "{loaded}");
    assert_eq!(other.page(), "Cat dreams meow..\n");
    assert!(host.ok(["stacks:list"]).out().contains("bookworm"), "the stack came with the bundle");
    // Loading again changes nothing: the app already runs that image.
    assert!(host.ok(["bundle:load".as_ref(), bundle.as_os_str()]).out().contains("catmeow already runs"));
}

/// The layer digests of a manifest in the registry, as skopeo reads it raw.
fn raw_manifest(server: &str, reference: &str) -> serde_json::Value {
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{server}/{reference}")]);
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    serde_json::from_slice(&raw.stdout).unwrap()
}

fn layer_digests(manifest: &serde_json::Value) -> Vec<String> {
    manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect()
}

#[test]
#[ignore = "needs root: sshd, nginx, docker-registry and containers need root"]
fn docker_schema_2_images_and_manifest_lists_pull_and_deploy() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = PushHost::new("bt-v2s2", "10.231.1.0/24");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    let pushed = site.push(&checkout_of("catmeow", work.path()), "main");
    assert!(pushed.status.success(), "{}", text(&pushed));
    let storage = tempfile::tempdir().unwrap();
    let port = free_port();
    let _registry = registry(storage.path(), port, None, false);
    let server = format!("127.0.0.1:{port}");
    host.ok(["images:push", "berth/app-catmeow:latest", &format!("{server}/catmeow:oci"), "--insecure"]);

    // What Docker pushes: skopeo rewrites it as schema 2.
    let copied = skopeo(&[
        "copy",
        "-q",
        "--format",
        "v2s2",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{server}/catmeow:oci"),
        &format!("docker://{server}/catmeow:v2s2"),
    ]);
    assert!(copied.status.success(), "{}", String::from_utf8_lossy(&copied.stderr));
    let docker = raw_manifest(&server, "catmeow:v2s2");
    assert_eq!(docker["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");

    // A fresh host pulls it as OCI over the same (verified) layers, and deploys it.
    let other = PushHost::new("bt-v2s2b", "10.233.1.0/24");
    let pulled = other.site.host.ok(["images:pull", &format!("{server}/catmeow:v2s2"), "--insecure"]).out();
    assert!(pulled.contains("converted from Docker schema 2"), "{pulled}");
    let inspected: serde_json::Value = serde_json::from_str(&other.site.host.ok(["images:inspect", "catmeow:v2s2"]).out()).unwrap();
    assert_eq!(layer_digests(&inspected["manifest"]), layer_digests(&docker), "the same layer blobs");
    assert_eq!(inspected["manifest"]["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(inspected["manifest"]["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    assert_ne!(inspected["manifest"]["config"]["digest"], docker["config"]["digest"], "a new OCI config");
    let deployed = other.site.host.ok(["git:from-image", "catmeow", &format!("{server}/catmeow:v2s2"), "--insecure"]).out();
    assert!(deployed.contains("Application deployed"), "{deployed}");
    assert_eq!(other.page(), "Cat dreams meow..\n");

    // A Docker manifest list: linux/arm64 (the OCI image) first, linux/amd64 (schema 2) second.
    let digest_of = |reference: &str| {
        let out = skopeo(&["inspect", "--tls-verify=false", "--format", "{{.Digest}}", &format!("docker://{server}/{reference}")]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let entry = |reference: &str, media: &str, arch: &str| {
        let size = skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{server}/{reference}")]).stdout.len();
        serde_json::json!({"mediaType": media, "size": size, "digest": digest_of(reference), "platform": {"architecture": arch, "os": "linux"}})
    };
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            entry("catmeow:oci", "application/vnd.oci.image.manifest.v1+json", "arm64"),
            entry("catmeow:v2s2", "application/vnd.docker.distribution.manifest.v2+json", "amd64"),
        ]
    });
    let put = Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H", "Content-Type: application/vnd.docker.distribution.manifest.list.v2+json", "--data-binary"])
        .arg(list.to_string())
        .arg(format!("http://{server}/v2/catmeow/manifests/multi"))
        .output()
        .unwrap();
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stdout));
    let third = common::site::Site::new("bt-v2s2c", "10.235.1.0/24", "");
    let from_list = third.host.ok(["images:pull", &format!("{server}/catmeow:multi"), "--insecure"]).out();
    assert!(from_list.contains("converted from Docker schema 2"), "the linux/amd64 entry was chosen: {from_list}");

    // berth writes schema 2 when asked, over the same blobs.
    host.ok(["images:push", "berth/app-catmeow:latest", &format!("{server}/catmeow:as-docker"), "--insecure", "--format", "docker"]);
    let as_docker = raw_manifest(&server, "catmeow:as-docker");
    assert_eq!(as_docker["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(as_docker["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
    assert_eq!(layer_digests(&as_docker), layer_digests(&raw_manifest(&server, "catmeow:oci")));
    let back = third.host.ok(["images:pull", &format!("{server}/catmeow:as-docker"), "--insecure"]).out();
    assert!(back.contains("converted from Docker schema 2"), "{back}");
    let refused = host.run(["images:push", "berth/app-catmeow:latest", &format!("{server}/catmeow:x"), "--insecure", "--format", "v1"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
}

#[test]
#[ignore = "needs root: docker-registry and build sandboxes need root"]
fn a_stack_pulled_as_heroku_24_builds_with_stack_heroku_24() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let source = common::site::Site::new("bt-h24a", "10.237.1.0/24", "");
    let storage = tempfile::tempdir().unwrap();
    let port = free_port();
    let _registry = registry(storage.path(), port, None, false);
    let server = format!("127.0.0.1:{port}");
    // A run image and its -build image, named as Heroku names its stacks.
    source.host.ok(["images:push", "berth/stack-run:bookworm", &format!("{server}/heroku/heroku:24"), "--insecure"]);
    source.host.ok(["images:push", "berth/stack-build:bookworm", &format!("{server}/heroku/heroku:24-build"), "--insecure"]);

    let site = common::site::Site::new("bt-h24b", "10.239.1.0/24", "");
    let host = &site.host;
    let pulled = host.ok(["stacks:pull", &format!("{server}/heroku/heroku:24"), "--as", "heroku-24", "--insecure"]).out();
    assert!(pulled.contains("berth/stack-build:heroku-24"), "{pulled}");
    assert!(host.ok(["stacks:list"]).out().contains("heroku-24"));

    // A buildpack that checks $STACK the way Heroku's do.
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("stack-check");
    common::write_buildpack(
        &src,
        "echo StackCheck",
        "case \"$STACK\" in heroku-22|heroku-24) echo \"-----> Building on supported stack $STACK\" ;; *) echo \" !     Unsupported stack: $STACK\" >&2; exit 1 ;; esac",
    );
    for args in
        [&["init", "-q", "-b", "main"][..], &["add", "."], &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "pack"]]
    {
        run(Command::new("git").args(args).current_dir(&src));
    }
    let app = work.path().join("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("Procfile"), "web: python3 -m http.server $PORT\n").unwrap();
    host.ok(["apps:create", "h24"]);
    host.ok(["buildpacks:set", "h24", &src.display().to_string()]);
    let build = |app_dir: &Path| host.command(["builds:create", "h24", app_dir.to_str().unwrap()]).output().unwrap();
    let refused = build(&app);
    assert!(!refused.status.success() && text(&refused).contains("Unsupported stack: bookworm"), "{}", text(&refused));
    host.ok(["buildpacks:set-property", "h24", "stack", "heroku-24"]);
    assert!(host.ok(["buildpacks:report", "h24"]).out().contains("heroku-24"));
    let built = build(&app);
    assert!(built.status.success() && text(&built).contains("Building on supported stack heroku-24"), "{}", text(&built));
}
