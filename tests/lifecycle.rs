//! What a user does with a deployed app every day: scale it, stop and start
//! it, restart it, bring it back after a reboot, roll it back. Real sshd,
//! git, nginx and containers, as in tests/push.rs.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::assert_clear_failure;
use common::push_host::{PushHost, checkout_of, git, text};
use common::site::is_root;

fn report(site: &PushHost, app: &str) -> serde_json::Value {
    serde_json::from_str(&site.site.host.ok(["ps:report", app, "--format", "json"]).out()).unwrap()
}

/// (process type, status) of each container of the app.
fn processes(site: &PushHost, app: &str) -> Vec<(String, String)> {
    report(site, app)["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["process"].as_str().unwrap().to_owned(), c["status"].as_str().unwrap().to_owned()))
        .collect()
}

/// The containers behind the app's stable address, as `proxy:report` says.
fn upstream_servers(host: &common::Host, app: &str) -> usize {
    let serving = host.ok(["proxy:report", app, "--proxy-serving"]).out();
    serving.matches(&format!("{app}.web.")).count()
}

/// A host reboot, as far as berth can tell: every shim and every container
/// init SIGKILLed (a container's processes die with its init).
fn kill_everything(root: &Path) {
    for entry in fs::read_dir(root.join("containers")).unwrap().flatten() {
        let state: serde_json::Value = serde_json::from_slice(&fs::read(entry.path().join("state.json")).unwrap()).unwrap();
        for key in ["shim_pid", "pid"] {
            if let Some(pid) = state[key].as_i64() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
}

#[test]
#[ignore = "needs root: sshd, nginx and containers need root"]
fn scale_stop_start_restore_restart_and_rollback() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = PushHost::new("bt-life", "10.219.1.0/24");
    let root = site.site.host.path().to_owned();
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    let first = site.push(&checkout, "main");
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(site.page(), "Cat dreams meow..\n");
    assert_eq!(processes(&site, "catmeow"), vec![("web".to_owned(), "running".to_owned())], "web=1, worker=0 by default");

    // `logs -t` follows: a request's line shows up while it runs.
    let mut follow = host.command(["logs", "catmeow", "-t", "-n", "0"]).stdout(Stdio::piped()).spawn().unwrap();
    let (sender, lines) = mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(site.page(), "Cat dreams meow..\n");
    let line = lines.recv_timeout(Duration::from_secs(10)).expect("a log line for the request");
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(line.contains(" app[web.1]: ") && line.contains("\"GET / HTTP/1.1\" 200"), "{line}");

    // One-off processes: the release's image and env, exit codes passed back,
    // a terminal over `ssh -t`, and `enter` into the running web.1.
    let version = host.ok(["run", "catmeow", "python", "-c", "import flask; print(flask.__version__)"]).out();
    assert!(version.trim().split('.').all(|n| n.parse::<u32>().is_ok()) && version.contains('.'), "{version:?}");
    assert_eq!(host.run(["run", "catmeow", "false"]).code, 1);
    assert_eq!(host.run(["run", "catmeow", "exit 7"]).code, 7, "one word with spaces is a shell line");
    let tty = Command::new("ssh")
        .args(["-tt", "-i", site.key.to_str().unwrap(), "-p", &site.ssh_port.to_string()])
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@127.0.0.1"])
        .args(["run", "catmeow", "tty"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(tty.status.success() && String::from_utf8_lossy(&tty.stdout).contains("/dev/pts/"), "{}", text(&tty));
    let init = host.ok(["enter", "catmeow", "web.1", "cat", "/proc/1/cmdline"]).out();
    assert!(init.contains("/app/.berth/launcher"), "{init:?}");
    let detached = host.ok(["run:detached", "catmeow", "echo", "detached hello"]).out();
    let id = detached.trim().to_owned();
    let said = (0..100).any(|_| {
        host.run(["containers:logs", &id]).out().contains("detached hello") || {
            std::thread::sleep(Duration::from_millis(100));
            false
        }
    });
    assert!(said, "run:detached output in containers:logs {id}");
    // Dokku's run:logs and run:stop over the app's run containers.
    assert!(host.ok(["run:logs", "catmeow", "-q"]).out().contains("detached hello"));
    assert!(host.ok(["run:logs", "--container", &id, "-n", "5"]).out().contains("detached hello"));
    let sleeper = host.ok(["run:detached", "catmeow", "sleep", "300"]).out().trim().to_owned();
    assert!(!host.ok(["run:stop", "catmeow"]).out().is_empty());
    assert!(!host.ok(["run:list", "catmeow"]).out().contains(&sleeper), "run:stop removes the app's run containers");
    assert_eq!(processes(&site, "catmeow").len(), 1, "one-off containers are not part of the formation");

    // Scale up: three web containers behind nginx and one worker, which nginx never sees.
    host.ok(["ps:scale", "catmeow", "web=3", "worker=1"]);
    let running = processes(&site, "catmeow");
    assert_eq!(running.iter().filter(|(p, s)| p == "web" && s == "running").count(), 3, "{running:?}");
    assert_eq!(running.iter().filter(|(p, s)| p == "worker" && s == "running").count(), 1, "{running:?}");
    assert_eq!(upstream_servers(host, "catmeow"), 3);
    let worker_says = || host.ok(["logs", "catmeow", "--ps", "worker", "-q"]).out().contains("catmeow worker: purr");
    assert!(
        (0..100).any(|_| worker_says() || {
            std::thread::sleep(Duration::from_millis(100));
            false
        }),
        "the worker logs"
    );
    let scale = host.ok(["ps:scale", "catmeow"]).out();
    assert!(scale.contains("web: 3") && scale.contains("worker: 1"), "{scale}");
    for _ in 0..6 {
        assert_eq!(site.page(), "Cat dreams meow..\n");
    }

    // Garbage is refused and changes nothing.
    for bad in [&["ps:scale", "catmeow", "web=lots"][..], &["ps:scale", "catmeow", "clock=1"], &["ps:scale", "catmeow", "release=1"]] {
        let before = host.snapshot();
        assert_clear_failure(&host.run(bad), &bad.join(" "));
        assert_eq!(host.snapshot().keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    }

    // Scale back down.
    host.ok(["ps:scale", "catmeow", "web=1", "worker=0"]);
    assert_eq!(processes(&site, "catmeow").len(), 1);
    assert_eq!(upstream_servers(host, "catmeow"), 1);
    assert_eq!(site.page(), "Cat dreams meow..\n");

    // Stop: no containers, a clear 503 page; start brings it back.
    host.ok(["ps:stop", "catmeow"]);
    assert!(processes(&site, "catmeow").is_empty());
    assert_eq!(site.page(), "app catmeow is stopped\n");
    host.ok(["ps:start", "catmeow"]);
    assert_eq!(site.page(), "Cat dreams meow..\n");

    // A second app, stopped on purpose; then a simulated reboot.
    let kitten = site.push_app(&checkout, "kitten", "main");
    assert!(kitten.status.success(), "{}", text(&kitten));
    assert_eq!(site.page_of("kitten"), "Cat dreams meow..\n");
    host.ok(["ps:stop", "kitten"]);
    host.ok(["ps:scale", "catmeow", "worker=1"]);
    kill_everything(&root);
    assert!(processes(&site, "catmeow").iter().all(|(_, status)| status == "exited"));
    let restore = host.ok(["ps:restore"]).out();
    assert!(restore.contains("catmeow is running") && restore.contains("kitten stays stopped"), "{restore}");
    assert_eq!(site.page(), "Cat dreams meow..\n");
    assert_eq!(processes(&site, "catmeow").iter().filter(|(_, s)| s == "running").count(), 2);
    assert_eq!(site.page_of("kitten"), "app kitten is stopped\n");
    assert!(processes(&site, "kitten").is_empty());

    // ps:restart: new containers, the page answers throughout.
    let before: Vec<String> =
        report(&site, "catmeow")["containers"].as_array().unwrap().iter().map(|c| c["container"].as_str().unwrap().to_owned()).collect();
    host.ok(["ps:restart", "catmeow"]);
    let after: Vec<String> =
        report(&site, "catmeow")["containers"].as_array().unwrap().iter().map(|c| c["container"].as_str().unwrap().to_owned()).collect();
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|id| !before.contains(id)), "{before:?} -> {after:?}");
    assert_eq!(site.page(), "Cat dreams meow..\n");
    // BERTH_LOG=debug: berth's events and libcontainer's (from the shim) on stderr.
    // The restart also brings in `logs:set max-size`: 4k logs rotate.
    host.ok(["logs:set", "catmeow", "max-size", "4k"]);
    let traced = host.command(["ps:restart", "catmeow"]).env("BERTH_LOG", "debug").output().unwrap();
    let events = String::from_utf8_lossy(&traced.stderr).into_owned();
    assert!(traced.status.success(), "{events}");
    for wanted in [
        "berth::deploy::roll: rolling to a release",
        "berth::runtime::control: starting the container's shim",
        "libcontainer::",
        "berth::runtime::control: stopping",
    ] {
        assert!(events.contains(wanted), "{wanted:?} missing in {events}");
    }
    assert!(!String::from_utf8_lossy(&traced.stdout).contains("DEBUG"), "events went to stdout");
    assert_eq!(site.page(), "Cat dreams meow..\n");
    let web = report(&site, "catmeow")["containers"].as_array().unwrap().iter().find(|c| c["process"] == "web").unwrap()["container"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..80 {
        site.page();
    }
    let dir = root.join("containers").join(&web);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(dir.join("container.log.1").exists(), "the 4k log never rotated");
    assert!(fs::metadata(dir.join("container.log")).unwrap().len() <= 4096);
    host.ok(["logs:set", "catmeow", "max-size"]);

    // A new release, then back to v1: its image and config, no build.
    let code = fs::read_to_string(checkout.join("catmeow.py")).unwrap().replace("Cat dreams meow..", "Cat dreams purr..");
    fs::write(checkout.join("catmeow.py"), code).unwrap();
    git(&checkout, &["commit", "-q", "-am", "purr"]);
    assert!(site.push(&checkout, "main").status.success());
    host.ok(["config:set", "catmeow", "MESSAGE=Cat dreams in config.."]);
    assert_eq!(site.page(), "Cat dreams in config..\n");
    let rollback = host.ok(["releases:rollback", "catmeow", "v1"]);
    let said = format!("{}{}", rollback.out(), rollback.stderr);
    assert!(!said.contains("Python app detected") && !said.contains("Building"), "a rollback builds nothing: {said}");
    assert_eq!(site.page(), "Cat dreams meow..\n");
    let releases = host.ok(["releases", "catmeow"]).out();
    assert!(releases.lines().nth(1).unwrap().contains("Rollback to v1"), "{releases}");
    assert!(host.run(["config:get", "catmeow", "MESSAGE"]).code != 0, "v1's config has no MESSAGE");
    assert_eq!(processes(&site, "catmeow").len(), 2, "the formation survives the rollback");
    assert_clear_failure(&host.run(["releases:rollback", "catmeow", "v99"]), "rollback to a release that never was");
    assert_eq!(site.page(), "Cat dreams meow..\n");

    // Storage: a directory under $BERTH_ROOT/storage, mounted into every
    // container of the app, one-offs too, across restarts; others refused.
    host.ok(["storage:ensure-directory", "catmeow-data"]);
    let data = root.join("storage/catmeow-data");
    let mount = format!("{}:/data", data.display());
    for bad in ["/etc:/data", "/tmp/../etc:/data", "relative:/data", &format!("{}:/proc/x", data.display())] {
        let before = host.snapshot();
        assert_clear_failure(&host.run(["storage:mount", "catmeow", bad]), bad);
        assert_eq!(host.snapshot().keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    }
    host.ok(["storage:mount", "catmeow", &mount]);
    assert!(host.ok(["storage:list", "catmeow"]).out().contains(&mount));
    host.ok(["ps:restart", "catmeow"]);
    host.ok(["run", "catmeow", "echo kept > /data/note"]);
    assert_eq!(fs::read_to_string(data.join("note")).unwrap(), "kept\n");
    host.ok(["ps:restart", "catmeow"]);
    assert_eq!(host.ok(["enter", "catmeow", "web.1", "cat", "/data/note"]).out(), "kept\n");
    host.ok(["storage:unmount", "catmeow", &mount]);

    // A named entry, as Dokku's storage:create makes: mounted by name,
    // handed to the app's uid, refused destruction while mounted.
    host.ok(["storage:create", "catmeow-files", "--mode", "0770"]);
    host.ok(["storage:mount", "catmeow", "catmeow-files", "--container-dir", "/files"]);
    assert_eq!(host.ok(["storage:report", "catmeow", "--storage-attachment.1.entry-name"]).out(), "catmeow-files\n");
    host.ok(["ps:restart", "catmeow"]);
    host.ok(["run", "catmeow", "echo shared > /files/note"]);
    assert_eq!(fs::read_to_string(root.join("storage/catmeow-files/note")).unwrap(), "shared\n");
    // storage:exec: a throw-away container with the entry at /storage, root
    // read-only, the command's exit code passed on.
    let exec = host.run(["storage:exec", "catmeow-files", "--", "sh", "-c", "cat /storage/note; id -u; touch /etc/x"]);
    assert!(exec.code == 1 && exec.out().starts_with("shared\n0\n"), "{} {}", exec.out(), exec.stderr);
    let refused = host.run(["storage:destroy", "catmeow-files", "--force"]);
    assert!(refused.code == 1 && refused.stderr.contains("is mounted by catmeow"), "{}", refused.stderr);
    host.ok(["storage:unmount", "catmeow", "catmeow-files"]);
    host.ok(["storage:destroy", "catmeow-files", "--force", "--destroy-host-dir"]);
    assert!(!root.join("storage/catmeow-files").exists());
    host.ok(["ps:restart", "catmeow"]);

    // Limits: a process type capped at 64m that takes 200 MB is OOM-killed,
    // restarted per the policy, and ps:report says so.
    fs::write(
        checkout.join("Procfile"),
        "web: python catmeow.py\nworker: python worker.py\nhog: python -c \"import time; b = b'x' * (200 * 1024 * 1024); time.sleep(60)\"\n",
    )
    .unwrap();
    git(&checkout, &["commit", "-q", "-am", "a hog"]);
    assert!(site.push(&checkout, "main").status.success());
    for bad in [
        &["resource:limit", "catmeow", "--memory", "lots"][..],
        &["resource:limit", "catmeow"],
        &["resource:limit", "catmeow", "--cpu", "-1"],
    ] {
        assert_clear_failure(&host.run(bad), &bad.join(" "));
    }
    host.ok(["resource:limit", "catmeow", "--process-type", "hog", "--memory", "64m"]);
    host.ok(["ps:set", "catmeow", "restart-policy", "on-failure:2"]);
    assert_eq!(host.ok(["resource:report", "catmeow", "--resource-hog.limit.memory"]).out(), "64m\n");
    // A process that dies in its first seconds fails the uptime check, as
    // on Dokku; the hog is meant to die, so its checks are skipped.
    let refused = host.run(["ps:scale", "catmeow", "hog=1"]);
    assert!(refused.code != 0 && refused.stderr.contains("hog.1 exited with code 137"), "{}", refused.stderr);
    host.ok(["checks:skip", "catmeow", "hog"]);
    host.ok(["ps:scale", "catmeow", "hog=1"]);
    let hog = || {
        report(&site, "catmeow")["containers"].as_array().unwrap().iter().find(|c| c["process"] == "hog").cloned().expect("a hog container")
    };
    let killed = (0..300).find_map(|_| {
        let c = hog();
        if c["oom_kills"].as_u64() >= Some(1) && c["restarts"].as_u64() >= Some(1) {
            return Some(c);
        }
        std::thread::sleep(Duration::from_millis(100));
        None
    });
    let killed = killed.unwrap_or_else(|| panic!("the hog was not OOM-killed and restarted: {}", hog()));
    assert_eq!(killed["last_exit_code"], 137, "{killed}");
    let table = host.ok(["ps:report", "catmeow"]).out();
    let line = table.lines().find(|l| l.starts_with("hog.1")).unwrap().to_owned();
    assert!(line.split_whitespace().nth(6).is_some_and(|oom| oom != "0"), "{table}");
    assert_eq!(site.page(), "Cat dreams purr..\n", "web is not limited");

    // Retention: only the last 2 releases keep their images; store:gc
    // frees the rest, and a rollback that far back says why it cannot.
    host.ok(["releases:set", "catmeow", "keep", "2"]);
    let du = host.ok(["store:du", "--app", "catmeow", "--format", "json"]).out();
    let du: serde_json::Value = serde_json::from_str(&du).unwrap();
    assert_eq!(du["releases"].as_array().unwrap().len(), 2, "{du}");
    let freed: serde_json::Value = serde_json::from_str(&host.ok(["store:gc", "--format", "json"]).out()).unwrap();
    assert!(freed["blob_bytes"].as_u64().unwrap() > 0, "{freed}");
    let fsck = host.run(["store:fsck"]);
    assert_eq!(fsck.code, 0, "{}", fsck.out());
    // v4 runs v1's image again and v5 is the hog: v2's image (purr) is gone.
    let old = host.run(["releases:rollback", "catmeow", "v2"]);
    assert_clear_failure(&old, "rollback to a collected image");
    assert!(old.stderr.contains("no longer in the store"), "{}", old.stderr);
    assert_eq!(site.page(), "Cat dreams purr..\n");
    assert_clear_failure(&host.run(["releases:set", "catmeow", "keep", "0"]), "keep 0");

    // app.json formation scales a deploy; ps:scale would win over it.
    let parent = work.path().join("kitten-src");
    fs::create_dir_all(&parent).unwrap();
    let kitten = checkout_of("catmeow", &parent);
    fs::write(kitten.join("app.json"), r#"{"formation": {"web": {"quantity": 1}, "worker": {"quantity": 2}}}"#).unwrap();
    git(&kitten, &["add", "app.json"]);
    git(&kitten, &["commit", "-q", "-m", "formation"]);
    let pushed = site.push_app(&kitten, "kitten", "+main");
    assert!(pushed.status.success(), "{}", text(&pushed));
    let kinds = processes(&site, "kitten");
    assert_eq!(kinds.iter().filter(|(p, s)| p == "worker" && s == "running").count(), 2, "{kinds:?}");
    assert_eq!(site.page_of("kitten"), "Cat dreams meow..\n", "a deploy starts a stopped app");
    fs::write(kitten.join("app.json"), "{not json").unwrap();
    git(&kitten, &["commit", "-q", "-am", "broken app.json"]);
    let refused = site.push_app(&kitten, "kitten", "main");
    assert!(!refused.status.success() && text(&refused).contains("app.json is not valid"), "{}", text(&refused));
    assert_eq!(site.page_of("kitten"), "Cat dreams meow..\n");
}
