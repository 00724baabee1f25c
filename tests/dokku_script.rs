//! A Dokku user's deploy script (tests/dokku/deploy.sh), run unchanged
//! with `dokku` on PATH meaning berth, and its push going through the real
//! sshd.

mod common;

use std::fs;
use std::process::Command;

use common::push_host::{PushHost, checkout_of, text};
use common::site::is_root;

#[test]
#[ignore = "needs root: sshd, nginx and containers"]
fn a_dokku_deploy_script_runs_unchanged() {
    assert!(is_root(), "run with ./test.sh as root");
    let site = PushHost::new("bt-dokku", "10.243.1.0/24");
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    let bin = work.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let wrapper = format!("#!/bin/sh\nexec '{}' \"$@\"\n", env!("CARGO_BIN_EXE_berth"));
    fs::write(bin.join("dokku"), wrapper).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(bin.join("dokku"), fs::Permissions::from_mode(0o755)).unwrap();
    let script = common::push_host::repo().join("tests/dokku/deploy.sh");
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(&checkout)
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
        .env("BERTH_ROOT", site.site.host.path())
        .env("GIT_SSH_COMMAND", site.ssh_command())
        .env("DOKKU_HOST", format!("{}@127.0.0.1", site.user))
        .env("HTTP_PORT", site.http_port.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("deploy script: ok\n"), "{}", text(&out));
}
