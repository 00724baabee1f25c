//! A Dokku user's deploy script (tests/dokku/deploy.sh), run unchanged
//! with `dokku` meaning berth: on the host (berth on PATH), and from a
//! workstation (every command over the real sshd, as Dokku's client and
//! `alias dokku='ssh dokku@host'` send them). Its push goes through sshd
//! either way.

mod common;

use std::fs;
use std::process::Command;

use common::push_host::{PushHost, checkout_of, text};
use common::site::is_root;

/// Runs the script with `dokku` as `wrapper` says; asserts it finished.
fn run_script(site: &PushHost, wrapper: &str) {
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    let bin = work.path().join("bin");
    fs::create_dir(&bin).unwrap();
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

#[test]
#[ignore = "needs root: sshd, nginx and containers"]
fn a_dokku_deploy_script_runs_unchanged() {
    assert!(is_root(), "run with ./test.sh as root");
    let site = PushHost::new("bt-dokku", "10.243.1.0/24");
    run_script(&site, &format!("#!/bin/sh\nexec '{}' \"$@\"\n", env!("CARGO_BIN_EXE_berth")));
}

#[test]
#[ignore = "needs root: sshd, nginx and containers"]
fn the_same_script_runs_over_ssh_from_a_workstation() {
    assert!(is_root(), "run with ./test.sh as root");
    let site = PushHost::new("bt-dokkussh", "10.245.1.0/24");
    // Each argument quoted for the remote side (bash's %q), as Dokku's
    // client sends them; the admin key, as a Dokku operator's.
    let wrapper = format!("#!/bin/bash\nexec {} -- {}@127.0.0.1 \"$(printf '%q ' \"$@\")\"\n", site.ssh_command(), site.user);
    run_script(&site, &wrapper);
}
