//! A berth host of its own for end-to-end tests: a Site with a private
//! OpenSSH sshd and nginx on free loopback ports, and git pushes to it.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::site::Site;

/// A free port below the kernel's ephemeral range (32768 and up): a port
/// the kernel hands out by itself may meanwhile be the local end of one of
/// the test's own client connections, and nginx could not bind it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Spread test binaries apart by pid; step through the range from there.
    let start = 20000 + (std::process::id() % 6000) as u16 * 2;
    loop {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % 12000;
        let port = 20000 + (start - 20000 + offset) % 12000;
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

/// A berth host of its own: private sshd and nginx on free loopback ports.
pub struct PushHost {
    pub site: Site,
    pub ssh_port: u16,
    pub http_port: u16,
    pub tls_port: u16,
    /// The admin key every helper uses unless told otherwise.
    pub key: PathBuf,
    /// Who ssh logs in as: root (forced commands only), or an unprivileged
    /// user who reaches root through sudo, as install.sh's `berth` user does.
    pub user: String,
    /// The sudoers file the sudo user's rule lives in, removed on drop.
    sudoers: Option<PathBuf>,
    /// authorized_keys lives here, readable by the login user.
    keys_dir: tempfile::TempDir,
}

impl PushHost {
    pub fn new(bridge: &str, subnet: &str) -> PushHost {
        Self::with_login(bridge, subnet, None)
    }

    /// A host whose pushes arrive as the unprivileged `user` and cross into
    /// root through a real sudo rule, as on an installed host (the rule also
    /// keeps BERTH_ROOT, which only a test host needs, and logs to a file the
    /// test reads: `sudo_log()`).
    pub fn with_sudo_user(bridge: &str, subnet: &str, user: &str) -> PushHost {
        Self::with_login(bridge, subnet, Some(user))
    }

    fn with_login(bridge: &str, subnet: &str, sudo_user: Option<&str>) -> PushHost {
        let (ssh_port, http_port, tls_port) = (free_port(), free_port(), free_port());
        let site = Site::new(bridge, subnet, "");
        let root = site.host.path().to_owned();
        let r = root.display();
        let keys_dir = tempfile::Builder::new().prefix("berth-keys-").tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(keys_dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let authorized_keys = keys_dir.path().join("authorized_keys");
        fs::write(
            root.join("config.toml"),
            format!(
                "{}[proxy]\nnginx_conf = \"{r}/nginx.conf\"\npid_file = \"{r}/nginx.pid\"\nlisten_port = {http_port}\ntls_listen_port = {tls_port}\nglobal_domain = \"berth.test\"\n[deploy]\nboot_timeout_secs = 8\nuptime_secs = 2\n[ssh]\nauthorized_keys = \"{}\"\n",
                fs::read_to_string(root.join("config.toml")).unwrap(),
                authorized_keys.display()
            ),
        )
        .unwrap();
        fs::create_dir_all(root.join("nginx-tmp")).unwrap();
        fs::create_dir_all(root.join("nginx")).unwrap();
        fs::write(
            root.join("nginx.conf"),
            format!(
                "daemon on;\npid {r}/nginx.pid;\nerror_log {r}/nginx-error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {r}/nginx-tmp/body;\n  proxy_temp_path {r}/nginx-tmp/proxy;\n  fastcgi_temp_path {r}/nginx-tmp/fastcgi;\n  uwsgi_temp_path {r}/nginx-tmp/uwsgi;\n  scgi_temp_path {r}/nginx-tmp/scgi;\n  server_names_hash_bucket_size 128;\n  include {r}/nginx/*.conf;\n  server {{ listen {http_port} default_server; return 404; }}\n}}\n"
            ),
        )
        .unwrap();
        run(Command::new("nginx").args(["-c", &format!("{r}/nginx.conf")]));

        // Keys: the server's host key and the pushing user's key.
        let key = root.join("client_key");
        for file in [root.join("host_key"), key.clone()] {
            run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&file));
        }
        site.host.ok(["ssh-keys:add".as_ref(), "tester".as_ref(), root.join("client_key.pub").as_os_str(), "--admin".as_ref()]);
        let user = sudo_user.unwrap_or("root").to_owned();
        let sudoers = sudo_user.map(|u| sudo_rule(u, &keys_dir.path().join("sudo.log")));
        fs::create_dir_all("/run/sshd").unwrap();
        fs::write(
            root.join("sshd_config"),
            format!(
                "Port {ssh_port}\nListenAddress 127.0.0.1\nHostKey {r}/host_key\nPidFile {r}/sshd.pid\nAuthorizedKeysFile {}\nPermitRootLogin forced-commands-only\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nSetEnv BERTH_ROOT={r} BERTH_BUILDPACKS={}\n",
                authorized_keys.display(),
                repo().join("buildpacks").display()
            ),
        )
        .unwrap();
        run(Command::new("/usr/sbin/sshd").arg("-f").arg(root.join("sshd_config")));
        PushHost { site, ssh_port, http_port, tls_port, key, user, sudoers, keys_dir }
    }

    /// Where sudo logs the commands it runs for the sudo user.
    pub fn sudo_log(&self) -> PathBuf {
        self.keys_dir.path().join("sudo.log")
    }

    /// A new key pair in the keys directory: (private key path, public key path).
    pub fn new_key(&self, name: &str) -> (PathBuf, PathBuf) {
        let private = self.keys_dir.path().join(name);
        run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&private));
        let public = private.with_extension("pub");
        (private, public)
    }

    pub fn ssh_command(&self) -> String {
        self.ssh_command_with(&self.key)
    }

    pub fn ssh_command_with(&self, key: &Path) -> String {
        format!(
            "ssh -i {} -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o LogLevel=ERROR",
            key.display(),
            self.ssh_port
        )
    }

    pub fn ssh(&self, command: &[&str]) -> Output {
        self.ssh_with(&self.key, command)
    }

    pub fn ssh_with(&self, key: &Path, command: &[&str]) -> Output {
        let mut cmd = Command::new("ssh");
        cmd.args(["-i", key.to_str().unwrap(), "-p", &self.ssh_port.to_string()]);
        cmd.args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "LogLevel=ERROR",
            &format!("{}@127.0.0.1", self.user),
        ]);
        cmd.args(command).output().unwrap()
    }

    pub fn push(&self, checkout: &Path, refspec: &str) -> Output {
        self.push_app(checkout, "catmeow", refspec)
    }

    pub fn push_app(&self, checkout: &Path, app: &str, refspec: &str) -> Output {
        self.push_with(&self.key, checkout, app, refspec)
    }

    pub fn push_with(&self, key: &Path, checkout: &Path, app: &str, refspec: &str) -> Output {
        Command::new("git")
            .args(["push", &format!("{}@127.0.0.1:{app}", self.user), refspec])
            .current_dir(checkout)
            .env("GIT_SSH_COMMAND", self.ssh_command_with(key))
            .output()
            .unwrap()
    }

    pub fn page(&self) -> String {
        self.page_of("catmeow")
    }

    /// The body nginx answers for APP.berth.test.
    pub fn page_of(&self, app: &str) -> String {
        let out = Command::new("curl")
            .args(["-s", "-m", "5", "-H", &format!("Host: {app}.berth.test"), &format!("http://127.0.0.1:{}/", self.http_port)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PushHost {
    fn drop(&mut self) {
        let root = self.site.host.path().to_owned();
        if std::thread::panicking() {
            // What nginx said is often the reason; the directory goes with us.
            let log = fs::read_to_string(root.join("nginx-error.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            eprintln!("nginx error log (last lines, newest first):\n{}", tail.join("\n"));
        }
        if let Ok(pid) = fs::read_to_string(root.join("sshd.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = Command::new("nginx").args(["-c", &format!("{}/nginx.conf", root.display()), "-s", "stop"]).output();
        if let Some(sudoers) = &self.sudoers {
            let _ = fs::remove_file(sudoers);
        }
    }
}

/// The test's own sudo rule for `user`: the same shape as install.sh's,
/// for this build's binary, keeping this host's BERTH_ROOT, logging to `log`.
fn sudo_rule(user: &str, log: &Path) -> PathBuf {
    if Command::new("id").arg(user).output().is_ok_and(|o| !o.status.success()) {
        run(Command::new("useradd").args(["--system", "--no-create-home", "--shell", "/bin/sh", user]));
    }
    // Without PAM, sshd refuses a locked password ("!") even for keys: "*" is no password, unlocked.
    run(Command::new("usermod").args(["-p", "*", user]));
    let exe = env!("CARGO_BIN_EXE_berth");
    let rule = format!(
        "Defaults:{user} env_keep += \"SSH_ORIGINAL_COMMAND BERTH_ROOT BERTH_BUILDPACKS\"\nDefaults:{user} logfile={}\n{user} ALL=(root) NOPASSWD: {exe} ssh-command --key *\n",
        log.display()
    );
    let path = PathBuf::from(format!("/etc/sudoers.d/berth-test-{user}-{}", std::process::id()));
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, rule).unwrap();
    run(Command::new("visudo").arg("-cqf").arg(&tmp));
    fs::rename(&tmp, &path).unwrap();
    path
}

/// A git checkout of examples/APP in `dir`, one commit on main.
pub fn checkout_of(example: &str, dir: &Path) -> PathBuf {
    let checkout = dir.join(example);
    run(Command::new("cp").arg("-a").arg(repo().join("examples").join(example)).arg(&checkout));
    git(&checkout, &["init", "-q", "-b", "main"]);
    git(&checkout, &["add", "."]);
    git(&checkout, &["commit", "-q", "-m", example]);
    checkout
}

pub fn git(dir: &Path, args: &[&str]) {
    run(Command::new("git").args(["-c", "user.name=Cat", "-c", "user.email=cat@berth.test"]).args(args).current_dir(dir));
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// (status, body) of a request to nginx on 127.0.0.1:port for host `name`
/// (status 0: no answer at all).
pub fn curl(port: u16, name: &str, extra: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", "-o", "-", "-w", "\n%{http_code}", "-H", &format!("Host: {name}")])
        .args(extra)
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}
