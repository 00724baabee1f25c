//! Who may do what over ssh, through the real path: OpenSSH's sshd logs an
//! unprivileged user in, its forced command crosses into root through a
//! real sudo rule, and berth checks the key's grant. An app-scoped key
//! pushes to its own app, and every host-level command is refused to it.

mod common;

use std::fs;
use std::process::Output;

use common::push_host::{PushHost, checkout_of, text};
use common::site::is_root;

fn refused(out: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{what} was accepted: {}", text(out));
    assert!(err.lines().any(|l| l.starts_with("berth: ")), "{what}: no berth: line in {err:?}");
    err
}

/// The commands an app-scoped key may run for its own apps (docs/SECURITY.md).
const APP_COMMANDS: &[&str] = &[
    "proxy:rebuild",
    "proxy:build-config",
    "proxy:clear-config",
    "cron:list",
    "cron:run",
    "cron:suspend",
    "cron:resume",
    "cron:report",
    "cron:set",
    "nginx:show-config",
    "nginx:access-logs",
    "nginx:error-logs",
    "apps:create",
    "apps:exists",
    "apps:lock",
    "apps:unlock",
    "apps:locked",
    "apps:report",
    "apps:info",
    "apps:rename",
    "apps:destroy",
    "apps:rebase",
    "builds:create",
    "builds:list",
    "builds:info",
    "builds:prune",
    "builds:output",
    "builds:cancel",
    "builds:set",
    "builds:report",
    "repo:purge-cache",
    "repo:gc",
    "buildpacks:list",
    "buildpacks:add",
    "buildpacks:set",
    "buildpacks:remove",
    "buildpacks:clear",
    "buildpacks:set-property",
    "buildpacks:report",
    "certs:add",
    "certs:generate",
    "certs:remove",
    "certs:report",
    "certs:update",
    "certs:show",
    "checks:disable",
    "checks:enable",
    "checks:skip",
    "checks:set",
    "checks:report",
    "checks:run",
    "config:set",
    "config:get",
    "config:unset",
    "config:show",
    "config:keys",
    "config:clear",
    "config:export",
    "domains:add",
    "domains:remove",
    "domains:set",
    "domains:clear",
    "domains:reset",
    "domains:report",
    "domains:enable",
    "domains:disable",
    "proxy:disable",
    "proxy:enable",
    "proxy:report",
    "proxy:set",
    "proxy:ports",
    "ports:list",
    "ports:report",
    "ports:add",
    "ports:set",
    "ports:remove",
    "ports:clear",
    "proxy:ports-add",
    "proxy:ports-set",
    "proxy:ports-remove",
    "proxy:ports-clear",
    "nginx:set",
    "nginx:report",
    "nginx:import-ssl",
    "git:set",
    "git:report",
    "git:from-image",
    "git:from-archive",
    "git:load-image",
    "git:initialize",
    "git:status",
    "ps:rebuild",
    "git:sync",
    "releases",
    "releases:info",
    "releases:set",
    "releases:rollback",
    "letsencrypt:enable",
    "letsencrypt:disable",
    "letsencrypt:auto-renew",
    "letsencrypt:set",
    "letsencrypt:report",
    "logs",
    "logs:failed",
    "logs:set",
    "logs:report",
    "builder:set",
    "builder:report",
    "app-json:set",
    "app-json:report",
    "ps:scale",
    "ps:stop",
    "ps:start",
    "ps:restart",
    "ps:restore",
    "ps:report",
    "ps:inspect",
    "run:list",
    "run:logs",
    "run:stop",
    "ps:set",
    "registry:set",
    "registry:report",
    "registry:push",
    "report",
    "resource:report",
    "run",
    "run:detached",
    "enter",
    "storage:list",
    "storage:report",
];

/// The host's state, without what running containers and nginx write by themselves.
fn state(host: &common::Host) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = host.snapshot();
    files.retain(|path, _| !path.starts_with("containers") && !path.starts_with("nginx-error.log") && !path.starts_with("nginx-tmp"));
    files
}

#[test]
#[ignore = "needs root: sshd, sudo, nginx and containers"]
fn an_app_scoped_key_pushes_its_own_app_and_nothing_else() {
    assert!(is_root(), "run with ./test.sh as root");
    let site = PushHost::with_sudo_user("bt-access", "10.217.9.0/24", "berthtest");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    host.ok(["apps:create", "catmeow"]);
    host.ok(["apps:create", "other"]);
    let (dev, dev_pub) = site.new_key("dev");
    host.ok(["ssh-keys:add".as_ref(), "dev".as_ref(), dev_pub.as_os_str(), "--apps".as_ref(), "catmeow".as_ref()]);

    // Its own app: pushed through sshd and sudo, deployed, served.
    let push = site.push_with(&dev, &checkout, "catmeow", "main");
    assert!(push.status.success(), "{}", text(&push));
    assert_eq!(site.page(), "Cat dreams meow..\n");

    // Secrets ride in the environment across sudo, never in its argv or log.
    let set = site.ssh_with(&dev, &["config:set catmeow 'SECRET_TOKEN=hunter2-in-argv'"]);
    assert!(set.status.success(), "{}", text(&set));
    let log = fs::read_to_string(site.sudo_log()).unwrap();
    assert!(log.contains("ssh-command --key dev"), "sudo did not run the hop: {log}");
    assert!(!log.contains("hunter2"), "the secret reached sudo's log: {log}");
    let shown = site.ssh_with(&dev, &["config:get", "catmeow", "SECRET_TOKEN"]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "hunter2-in-argv");

    // Lists show only what the key may use.
    let listed = String::from_utf8_lossy(&site.ssh_with(&dev, &["apps:list"]).stdout).into_owned();
    assert!(listed.contains("catmeow") && !listed.contains("other"), "{listed}");

    // Other apps, new apps and every host-level command: refused, nothing changed.
    let before = state(host);
    let other_push = site.push_with(&dev, &checkout, "other", "main");
    assert!(text(&other_push).contains("key dev has no access to app other"), "{}", text(&other_push));
    let new_push = site.push_with(&dev, &checkout, "brandnew", "main");
    assert!(text(&new_push).contains("key dev may not create apps"), "{}", text(&new_push));
    for command in [
        "ssh-keys:add evil",
        "ssh-keys:list",
        "ssh-keys:grant dev other",
        "ssh-keys:grant dev --admin",
        "storage:mount catmeow /etc:/host-etc --force",
        "storage:ensure-directory loot",
        "containers:list",
        "containers:run berth/stack-run:bookworm id",
        "stacks:list",
        "stacks:import /etc/shadow",
        "stacks:export bookworm /tmp/stack.tar",
        "store:gc",
        "store:fsck",
        "registry:login ghcr.io me secret",
        "images:import /etc/passwd",
        "images:export catmeow -o /tmp/image.tar",
        "images:from-dir /root berth-loot:1",
        "bundle:create /tmp/bundle.tar",
        "bundle:load /tmp/bundle.tar",
        "builds:create catmeow /root",
        "builds:set catmeow network host",
        "nginx:set catmeow error-log-path /etc/cron.d/x",
        "nginx:set catmeow access-log-path /tmp/x.log",
        "proxy:ports-add catmeow http:25:5000",
        "proxy:ports-set catmeow http:8080:5000",
        "ports:add catmeow http:25:5000",
        "ports:set catmeow http:8080:5000",
        "config:set --global EVIL=1",
        "ps:set --global restart-policy no",
        "nginx:set --global error-log-path /etc/cron.d/x",
        "certs:add catmeow /etc/ssl/private/key.pem /etc/ssl/private/key.pem",
        "git:from-archive catmeow http://127.0.0.1:22/x.tar",
        "git:from-image catmeow 127.0.0.1:5000/x:1 --insecure",
        "git:auth github.com bot token",
        "git:allow-host github.com",
        "git:public-key",
        "domains:disable catmeow",
        "buildpacks:set-property --global stack bookworm",
        "domains:add-global evil.test",
        "domains:clear-global",
        "resource:limit catmeow --pids 100000",
        "report",
        "ps:restore",
        "letsencrypt:auto-renew",
        "config:show other",
        "config:set other A=1",
        "run other id",
        "logs other",
        "apps:destroy other --force",
        "apps:rename other mine",
        "apps:create mine",
    ] {
        let err = refused(&site.ssh_with(&dev, &[command]), command);
        assert!(err.contains("key dev"), "{command}: refused for another reason: {err}");
    }
    // Every other command berth lists that is not an app command is an
    // admin's: each is refused to the key, whatever its arguments.
    let help = host.ok(["help"]).out();
    let listed: Vec<&str> = help
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next())
        .filter(|w| w.contains(':') || ["report", "releases", "logs", "run", "enter"].contains(w))
        .collect();
    let admin: Vec<&&str> = listed.iter().filter(|c| !APP_COMMANDS.contains(c) && !["apps:list"].contains(c)).collect();
    assert!(admin.len() >= 40, "{admin:?}");
    for command in admin {
        let err = refused(&site.ssh_with(&dev, &[command, "catmeow", "x"]), command);
        assert!(err.contains(&format!("key dev may not run {command}")), "{command}: {err}");
    }
    assert_eq!(state(host), before, "a refused command changed state");
    assert!(!std::path::Path::new("/tmp/stack.tar").exists() && !std::path::Path::new("/tmp/image.tar").exists());

    // An admin widens the grant: the key may create apps, and owns what it makes.
    host.ok(["ssh-keys:grant", "dev", "--create"]);
    let created = site.ssh_with(&dev, &["apps:create", "mine"]);
    assert!(created.status.success(), "{}", text(&created));
    assert!(site.ssh_with(&dev, &["config:set", "mine", "--no-restart", "A=1"]).status.success());
    let report = host.ok(["ssh-keys:report", "dev", "--format", "json"]).out();
    assert!(report.contains("\"mine\"") && report.contains("\"catmeow\""), "{report}");

    // ... and narrows it again.
    host.ok(["ssh-keys:revoke", "dev", "catmeow"]);
    refused(&site.ssh_with(&dev, &["config:show", "catmeow"]), "config:show after revoke");
    let fetch = std::process::Command::new("git")
        .args(["ls-remote", "berthtest@127.0.0.1:catmeow"])
        .env("GIT_SSH_COMMAND", site.ssh_command_with(&dev))
        .output()
        .unwrap();
    assert!(!fetch.status.success(), "a revoked key fetched the repository");

    // The admin key still does everything through the same sudo rule.
    let keys = site.ssh(&["ssh-keys:list"]);
    assert!(String::from_utf8_lossy(&keys.stdout).contains("dev"), "{}", text(&keys));

    // A pack over the archive cap is refused by receive-pack before any of
    // it is stored, and the running release keeps serving.
    let config = fs::read_to_string(host.path().join("config.toml")).unwrap();
    fs::write(host.path().join("config.toml"), format!("{config}[limits]\narchive_bytes = 3000000\n")).unwrap();
    // xorshift: bytes zlib cannot shrink below the cap.
    let mut x = 88_172_645_463_325_252u64;
    let noise: Vec<u8> = (0..4_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(checkout.join("noise.bin"), noise).unwrap();
    common::push_host::git(&checkout, &["add", "noise.bin"]);
    common::push_host::git(&checkout, &["commit", "-q", "-m", "noise"]);
    let before = state(host);
    let big = site.push(&checkout, "main");
    assert!(!big.status.success() && text(&big).contains("maximum allowed size"), "{}", text(&big));
    assert_eq!(state(host), before, "a refused pack changed state");
    assert_eq!(site.page(), "Cat dreams meow..\n");
}

/// A tiny git server over "dumb" HTTP that wants a login: Python's
/// http.server behind basic auth, serving a bare repository.
const DUMB_HTTP: &str = r#"
import base64, http.server, os, sys
port, root, login = int(sys.argv[1]), sys.argv[2], sys.argv[3]
want = "Basic " + base64.b64encode(login.encode()).decode()
class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def do_GET(self):
        if self.headers.get("Authorization") != want:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.end_headers()
            return
        super().do_GET()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs root: sshd and nginx"]
fn git_sync_fetches_with_the_hosts_deploy_key_known_hosts_and_netrc() {
    assert!(is_root(), "run with ./test.sh as root");
    let site = PushHost::new("bt-gitauth", "10.217.15.0/24");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    let head =
        String::from_utf8(std::process::Command::new("git").args(["rev-parse", "HEAD"]).current_dir(&checkout).output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
    for app in ["src", "viassh", "viahttp"] {
        host.ok(["apps:create", app]);
    }
    host.ok(["git:sync", "src", &format!("file://{}", checkout.display()), "main"]);

    // Over ssh: berth's own deploy key, granted the source app like any key.
    assert!(host.run(["git:public-key"]).stderr.contains("git:generate-deploy-key"));
    host.ok(["git:generate-deploy-key"]);
    assert!(host.ok(["git:generate-deploy-key"]).out().contains("already exists"));
    let public = work.path().join("deploy.pub");
    fs::write(&public, host.ok(["git:public-key"]).out()).unwrap();
    host.ok(["ssh-keys:add".as_ref(), "deploy".as_ref(), public.as_os_str(), "--apps".as_ref(), "src".as_ref()]);
    let url = format!("ssh://root@127.0.0.1:{}/src", site.ssh_port);
    let unknown = host.run(["git:sync", "viassh", &url, "main"]);
    assert!(unknown.code == 1 && unknown.stderr.contains("host key is known"), "{}", unknown.stderr);
    host.ok(["git:allow-host", &format!("127.0.0.1:{}", site.ssh_port)]);
    assert!(host.ok(["git:allow-host", &format!("127.0.0.1:{}", site.ssh_port)]).out().contains("(0 new keys)"));
    host.ok(["git:sync", "viassh", &url, "main"]);
    let status = host.ok(["git:status", "viassh"]).out();
    assert!(status.contains(&format!("On branch main at {head}")) && status.contains("Not deployed"), "{status}");

    // Over https-style HTTP: a netrc login, given on stdin, 0600.
    let served = work.path().join("served");
    fs::create_dir_all(&served).unwrap();
    common::push_host::git(&served, &["clone", "-q", "--bare", checkout.to_str().unwrap(), "repo.git"]);
    common::push_host::git(&served.join("repo.git"), &["update-server-info"]);
    let port = common::push_host::free_port();
    let _server = Killed(
        std::process::Command::new("python3")
            .args(["-c", DUMB_HTTP, &port.to_string(), served.to_str().unwrap(), "bot:s3cret-token"])
            .spawn()
            .unwrap(),
    );
    let up = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "the HTTP git server did not start");
    let url = format!("http://127.0.0.1:{port}/repo.git");
    let anonymous = host.run(["git:sync", "viahttp", &url, "main"]);
    assert!(anonymous.code == 1 && anonymous.stderr.contains("Username"), "a fetch without the login: {}", anonymous.stderr);
    assert_eq!(host.run(["git:auth-status", "127.0.0.1"]).code, 0, "no login yet");
    let auth = host.run_with_stdin(["git:auth", "127.0.0.1", "bot"], b"s3cret-token\n");
    assert_eq!(auth.code, 0, "{}", auth.stderr);
    let netrc = host.path().join("git-home/.netrc");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&netrc).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(host.run(["git:auth-status", "127.0.0.1", "bot", "s3cret-token"]).code, 0);
    assert_eq!(host.run(["git:auth-status", "127.0.0.1", "bot", "wrong"]).code, 1);
    assert_eq!(host.run(["git:auth-status", "127.0.0.1"]).code, 1);
    host.ok(["git:sync", "viahttp", &url, "main"]);
    assert!(host.ok(["git:status", "viahttp"]).out().contains(&head));

    // The host's logins are an admin's to set.
    let (dev, dev_pub) = site.new_key("dev");
    host.ok(["ssh-keys:add".as_ref(), "dev".as_ref(), dev_pub.as_os_str(), "--apps".as_ref(), "viahttp".as_ref()]);
    let refused = site.ssh_with(&dev, &["git:auth", "127.0.0.1", "dev", "x"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("for admins"), "{}", text(&refused));
    host.ok(["git:auth", "127.0.0.1"]);
    assert_eq!(host.run(["git:auth-status", "127.0.0.1"]).code, 0);
}
