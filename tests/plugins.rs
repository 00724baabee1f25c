//! Plugins through the real path: the example plugin (tests/plugins/hello,
//! docs/PLUGINS.md) installed from a local git repository at a ref adds a
//! command an app-scoped key runs over sshd, guards deploys with its
//! pre-deploy trigger, and hands the app a variable; disabled, it does
//! none of that.

mod common;

use std::fs;
use std::process::Command;

use common::push_host::{PushHost, checkout_of, git, text};
use common::site::is_root;

fn out(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
#[ignore = "needs root: sshd, nginx and containers"]
fn a_plugin_adds_a_command_guards_deploys_and_sets_the_environment() {
    assert!(is_root(), "run with ./test.sh as root");
    let site = PushHost::new("bt-plugin", "10.247.1.0/24");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());

    // The plugin as its author keeps it: a git repository, installed at a tag.
    let repo = work.path().join("hello-plugin");
    Command::new("cp").arg("-a").arg(common::push_host::repo().join("tests/plugins/hello")).arg(&repo).status().unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "hello"]);
    git(&repo, &["tag", "v1"]);
    host.ok(["plugin:install", &format!("file://{}#v1", repo.display())]);
    assert!(host.ok(["plugin:list"]).out().contains("hello                1.0.0      enabled"));
    assert!(host.ok(["help"]).out().contains("hello:world APP"));
    for asked in [&["hello"][..], &["hello:help"], &["help", "hello"]] {
        assert!(host.ok(asked).out().contains("Say hello to APP"), "{asked:?}");
    }
    assert!(host.run(["plugin:install", &format!("file://{}", repo.display()), "--name", "config"]).stderr.contains("namespace"));

    // deploy-env: the app's containers see the variable; its config does not hold it.
    let push = site.push(&checkout, "main");
    assert!(push.status.success() && text(&push).contains("hello checked catmeow v1"), "{}", text(&push));
    assert_eq!(host.ok(["--quiet", "run", "catmeow", "printenv", "HELLO_PLUGIN"]).out(), "hi-catmeow\n");
    assert!(!host.ok(["config:show", "catmeow"]).out().contains("HELLO_PLUGIN"));

    // pre-receive: a ref the plugin refuses is not stored at all.
    let refused = site.push(&checkout, "main:forbidden");
    assert!(!refused.status.success() && text(&refused).contains("hello refuses pushes to the forbidden branch"), "{}", text(&refused));
    let refs =
        Command::new("git").args(["ls-remote", "root@127.0.0.1:catmeow"]).env("GIT_SSH_COMMAND", site.ssh_command()).output().unwrap();
    assert!(!out(&refs).contains("forbidden"), "{}", out(&refs));

    // The command, over ssh, for a key granted the app and no other.
    host.ok(["apps:create", "other"]);
    let (dev, dev_pub) = site.new_key("dev");
    host.ok(["ssh-keys:add".as_ref(), "dev".as_ref(), dev_pub.as_os_str(), "--apps".as_ref(), "catmeow".as_ref()]);
    let hello = site.ssh_with(&dev, &["hello:world", "catmeow"]);
    assert_eq!(out(&hello), "hello catmeow from hello\n", "{}", text(&hello));
    let other = site.ssh_with(&dev, &["hello:world", "other"]);
    assert!(!other.status.success() && text(&other).contains("no access to app other"), "{}", text(&other));
    let admin = site.ssh_with(&dev, &["plugin:disable", "hello"]);
    assert!(!admin.status.success() && text(&admin).contains("for admins"), "{}", text(&admin));

    // pre-deploy says no: the push fails with its message, v1 serves on.
    fs::write(checkout.join("catmeow.py"), fs::read_to_string(checkout.join("catmeow.py")).unwrap().replace("meow..", "purr..")).unwrap();
    git(&checkout, &["commit", "-q", "-am", "purr"]);
    fs::write(host.path().join("block-deploys"), "").unwrap();
    let blocked = site.push(&checkout, "main");
    assert!(
        !blocked.status.success() && text(&blocked).contains("plugin hello stopped this in pre-deploy: deploys of catmeow are blocked"),
        "{}",
        text(&blocked)
    );
    assert_eq!(site.page(), "Cat dreams meow..\n");

    // Disabled: no command, no guard, no variable.
    host.ok(["plugin:disable", "hello"]);
    assert_eq!(host.run(["hello:world", "catmeow"]).code, 2);
    let pushed = site.push(&checkout, "main");
    assert!(pushed.status.success(), "{}", text(&pushed));
    assert_eq!(site.page(), "Cat dreams purr..\n");
    assert_eq!(host.run(["--quiet", "run", "catmeow", "printenv", "HELLO_PLUGIN"]).code, 1);
    host.ok(["plugin:installed", "hello"]);
    host.ok(["plugin:uninstall", "hello"]);
    assert_eq!(host.run(["plugin:installed", "hello"]).code, 1);
    assert_eq!(host.ok(["plugin:list"]).out(), "");
}
