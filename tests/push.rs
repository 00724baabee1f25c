//! The whole user story: `git push` over a real OpenSSH sshd to a forced
//! `berth ssh-command`, the build, the release, the deploy, and a real
//! nginx routing the app's host name to it.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::push_host::{PushHost, free_port, git, repo, run, text};
use common::site::is_root;

#[test]
#[ignore = "needs root: sshd, nginx and containers need root"]
fn git_push_over_ssh_builds_releases_and_serves() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = PushHost::new("bt-push", "10.217.1.0/24");
    let work = tempfile::tempdir().unwrap();
    let checkout = work.path().join("catmeow");
    run(Command::new("cp").arg("-a").arg(repo().join("examples/catmeow")).arg(&checkout));
    git(&checkout, &["init", "-q", "-b", "main"]);
    git(&checkout, &["add", "."]);
    git(&checkout, &["commit", "-q", "-m", "catmeow"]);

    let first = site.push(&checkout, "main");
    let out = text(&first);
    assert!(first.status.success(), "{out}");
    assert!(out.contains("remote: -----> Python app detected"), "{out}");
    assert!(out.contains(&format!("remote: =====> Application deployed: http://catmeow.berth.test:{}", site.http_port)), "{out}");
    assert_eq!(site.page(), "Cat dreams meow..\n");

    // berth commands over ssh, and what is refused there.
    let apps = site.ssh(&["apps:list"]);
    assert!(String::from_utf8_lossy(&apps.stdout).contains("catmeow"), "{}", text(&apps));
    for hostile in [
        "apps:list; id",
        "$(id)",
        "apps:create $(id)",
        "apps:create `id`",
        "apps:list | sh",
        "shim x",
        "git-hook catmeow",
        "bash",
        "git-receive-pack '../x'",
        "git-upload-pack '/etc/passwd'",
    ] {
        let out = site.ssh(&[hostile]);
        assert!(!out.status.success(), "{hostile} was accepted: {}", text(&out));
        assert!(!String::from_utf8_lossy(&out.stdout).contains("uid="), "{hostile} ran a shell");
    }

    // No terminal, no shell, no port forwarding.
    let tty = Command::new("ssh")
        .args([
            "-tt",
            "-i",
            site.key.to_str().unwrap(),
            "-p",
            &site.ssh_port.to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "root@127.0.0.1",
            "bash",
        ])
        .output()
        .unwrap();
    assert!(!tty.status.success(), "ssh -t bash: {}", text(&tty));
    let forward_port = free_port();
    let mut forward = Command::new("ssh")
        .args([
            "-N",
            "-L",
            &format!("{forward_port}:127.0.0.1:{}", site.http_port),
            "-i",
            site.key.to_str().unwrap(),
            "-p",
            &site.ssh_port.to_string(),
        ])
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@127.0.0.1"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let through = Command::new("curl")
        .args(["-s", "-m", "3", "-H", "Host: catmeow.berth.test", &format!("http://127.0.0.1:{forward_port}/")])
        .output()
        .unwrap();
    let _ = forward.kill();
    let _ = forward.wait();
    assert!(!String::from_utf8_lossy(&through.stdout).contains("Cat dreams"), "port forwarding worked");
    assert!(!site.site.host.path().join("apps/x").exists());

    // Another branch is stored, not deployed.
    git(&checkout, &["checkout", "-q", "-b", "feature"]);
    let feature = site.push(&checkout, "feature");
    assert!(text(&feature).contains("refs/heads/feature stored; only main or master is deployed"), "{}", text(&feature));
    git(&checkout, &["checkout", "-q", "main"]);

    // A second push: a new release serves the new code.
    let code = fs::read_to_string(checkout.join("catmeow.py")).unwrap().replace("Cat dreams meow..", "Cat dreams purr..");
    fs::write(checkout.join("catmeow.py"), code).unwrap();
    git(&checkout, &["commit", "-q", "-am", "purr"]);
    let second = site.push(&checkout, "main");
    assert!(second.status.success(), "{}", text(&second));
    assert!(text(&second).contains("(no installer run)"), "{}", text(&second));
    assert_eq!(site.page(), "Cat dreams purr..\n");
    let releases = site.site.host.ok(["releases", "catmeow"]).out();
    assert!(releases.contains("v2    Deploy") && releases.contains("v1    Deploy"), "{releases}");

    // config:set over ssh makes a release and restarts on it.
    let set = site.ssh(&["config:set catmeow 'MESSAGE=Cat dreams in config..'"]);
    assert!(set.status.success(), "{}", text(&set));
    assert_eq!(site.page(), "Cat dreams in config..\n");
    assert!(site.site.host.ok(["releases", "catmeow"]).out().contains("v3    Set MESSAGE"));
    let v3: serde_json::Value = serde_json::from_str(&site.site.host.ok(["releases:info", "catmeow", "v3"]).out()).unwrap();
    assert_eq!(v3["config_vars"]["MESSAGE"], "Cat dreams in config..");
    site.ssh(&["config:unset", "catmeow", "MESSAGE"]);
    assert_eq!(site.page(), "Cat dreams purr..\n");
    // Quotes as a Dokku user sends them (`K=\"a b\"` in their shell) keep the space.
    let quoted = site.ssh(&["config:set", "--no-restart", "catmeow", "QUOTED=\"hello", "world\""]);
    assert!(quoted.status.success(), "{}", text(&quoted));
    assert_eq!(String::from_utf8_lossy(&site.ssh(&["config:get", "catmeow", "QUOTED"]).stdout), "hello world\n");

    // A build sees the pushed commit as SOURCE_VERSION and GIT_REV, and an
    // app name may start with a digit, as on Dokku.
    let probe = work.path().join("bp-rev");
    common::write_buildpack(&probe, "echo Probe", "echo \"source version $SOURCE_VERSION git rev $GIT_REV greeting $(cat $3/GREETING)\"");
    let tiny = work.path().join("tiny");
    fs::create_dir_all(&tiny).unwrap();
    fs::write(tiny.join("Procfile"), "web: python3 -m http.server $PORT\n").unwrap();
    // app.json env as Heroku writes it (with a comment, as Dokku reads it).
    let env = r#"{"env": {"SECRET_KEY": {"generator": "secret"}, "GREETING": {"value": "meow"}, "API_TOKEN": {"description": "set me"},}} // env"#;
    fs::write(tiny.join("app.json"), env).unwrap();
    git(&tiny, &["init", "-q", "-b", "main"]);
    git(&tiny, &["add", "."]);
    git(&tiny, &["commit", "-q", "-m", "tiny"]);
    let revision =
        String::from_utf8_lossy(&run(Command::new("git").args(["rev-parse", "HEAD"]).current_dir(&tiny)).stdout).trim().to_owned();
    site.site.host.ok(["apps:create", "1994app"]);
    site.site.host.ok(["buildpacks:set", "1994app", probe.to_str().unwrap()]);
    // A scale set before the first deploy is what that deploy starts.
    let early = site.site.host.ok(["ps:scale", "1994app", "web=2"]);
    assert!(early.out().contains("the first deploy starts this formation"), "{}", early.out());
    let refused = site.push_app(&tiny, "1994app", "main");
    assert!(!refused.status.success() && text(&refused).contains("app.json says the app needs API_TOKEN"), "{}", text(&refused));
    site.site.host.ok(["config:set", "--no-restart", "1994app", "API_TOKEN=t"]);
    let probed = site.push_app(&tiny, "1994app", "main");
    assert!(probed.status.success(), "{}", text(&probed));
    let config = |key: &str| site.site.host.ok(["config:get", "1994app", key]).out().trim().to_owned();
    let secret = config("SECRET_KEY");
    assert!(secret.len() == 64 && secret.chars().all(|c| c.is_ascii_hexdigit()), "{secret:?}");
    assert_eq!((config("GREETING"), config("API_TOKEN")), ("meow".to_owned(), "t".to_owned()));
    let listed = site.site.host.ok(["containers:list"]).out();
    let webs = listed.lines().filter(|l| l.contains("1994app.web.") && l.contains("running")).count();
    assert_eq!(webs, 2, "{listed}");
    // The first build already sees app.json's GREETING.
    assert!(text(&probed).contains(&format!("source version {revision} git rev {revision} greeting meow")), "{}", text(&probed));
    site.site.host.ok(["config:set", "--no-restart", "1994app", "GREETING=purr"]);
    fs::write(tiny.join("extra.txt"), "again\n").unwrap();
    git(&tiny, &["add", "."]);
    git(&tiny, &["commit", "-q", "-m", "again"]);
    let again = site.push_app(&tiny, "1994app", "main");
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!((config("SECRET_KEY"), config("GREETING")), (secret, "purr".to_owned()), "a redeploy keeps what is set");

    // Two pushes at once: the second waits for the first, both deploy in turn.
    let push_at_once = |message: &str| {
        let dir = work.path().join(message.replace(' ', "-"));
        run(Command::new("cp").arg("-a").arg(&checkout).arg(&dir));
        let code = fs::read_to_string(dir.join("catmeow.py")).unwrap().replace("Cat dreams purr..", message);
        fs::write(dir.join("catmeow.py"), code).unwrap();
        git(&dir, &["commit", "-q", "-am", message]);
        dir
    };
    let (a, b) = (push_at_once("Cat dreams A.."), push_at_once("Cat dreams B.."));
    let ssh = site.ssh_command();
    let spawn = |dir: &Path| {
        Command::new("git").args(["push", "-f", "root@127.0.0.1:catmeow", "main"]).current_dir(dir).env("GIT_SSH_COMMAND", &ssh).output()
    };
    let (first, second) = std::thread::scope(|s| {
        let one = s.spawn(|| spawn(&a).unwrap());
        std::thread::sleep(Duration::from_millis(300));
        let two = s.spawn(|| spawn(&b).unwrap());
        (one.join().unwrap(), two.join().unwrap())
    });
    assert!(first.status.success() && second.status.success(), "{}\n{}", text(&first), text(&second));
    assert!(
        text(&second).contains("waiting for it to finish") || text(&first).contains("waiting for it to finish"),
        "{}\n{}",
        text(&first),
        text(&second)
    );
    let releases = site.site.host.ok(["releases", "catmeow"]).out();
    assert!(releases.contains("v5    Deploy") && releases.contains("v6    Deploy"), "{releases}");
    let serving = site.page();
    assert!(serving == "Cat dreams A..\n" || serving == "Cat dreams B..\n", "{serving}");
    let latest: serde_json::Value = serde_json::from_str(&site.site.host.ok(["releases:info", "catmeow", "v6"]).out()).unwrap();
    let latest_rev = latest["git_revision"].as_str().unwrap().to_owned();
    let head = |dir: &Path| {
        String::from_utf8_lossy(&run(Command::new("git").args(["rev-parse", "HEAD"]).current_dir(dir)).stdout).trim().to_owned()
    };
    let expected = if head(&a) == latest_rev { "Cat dreams A..\n" } else { "Cat dreams B..\n" };
    assert_eq!(serving, expected, "the latest release is the one serving");
    let checkout = b;
    git(&checkout, &["reset", "-q", "--hard", "HEAD~1"]);

    // A release whose web process never binds $PORT is refused after the
    // (shortened) boot timeout, with its log; the serving release stays.
    fs::write(checkout.join("Procfile"), "web: echo 'not listening anywhere'; sleep 100000\n").unwrap();
    git(&checkout, &["commit", "-q", "-am", "never binds"]);
    let started = Instant::now();
    let broken = site.push(&checkout, "+main");
    assert!(!broken.status.success(), "{}", text(&broken));
    assert!(text(&broken).contains("did not accept connections on port 5000 within 8 s"), "{}", text(&broken));
    assert!(text(&broken).contains("not listening anywhere"), "the log is shown: {}", text(&broken));
    let failed = site.site.host.ok(["logs:failed", "catmeow"]).out();
    assert!(failed.contains("app[web.1]: not listening anywhere"), "{failed}");
    assert!(started.elapsed() < Duration::from_secs(600));
    assert_eq!(site.page(), serving);
    assert!(!site.site.host.ok(["releases", "catmeow"]).out().contains("v7"));

    // The repository can be cloned back over ssh.
    let clone = work.path().join("clone");
    let cloned = Command::new("git")
        .args(["clone", "-q", "root@127.0.0.1:catmeow"])
        .arg(&clone)
        .env("GIT_SSH_COMMAND", site.ssh_command())
        .output()
        .unwrap();
    assert!(cloned.status.success(), "{}", text(&cloned));
    assert!(fs::read_to_string(clone.join("catmeow.py")).unwrap().contains(serving.trim()));
}

/// A git checkout of `files` (name, content) in `dir`.
fn checkout_with(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "first"]);
}

#[test]
#[ignore = "needs root: sshd, nginx and containers need root"]
fn apps_without_a_web_process_deploy() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = PushHost::new("bt-noweb", "10.239.1.0/24");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    let package = r#"{"name": "noweb", "version": "1.0.0"}"#;

    // A console-only app deploys; its names answer a clear 503, and
    // `run APP console` runs the Procfile's console command.
    let console = work.path().join("console");
    checkout_with(&console, &[("package.json", package), ("Procfile", "console: node -e \"console.log('console says ' + 6 * 7)\"\n")]);
    let pushed = site.push_app(&console, "consoleonly", "main");
    assert!(pushed.status.success(), "{}", text(&pushed));
    assert!(text(&pushed).contains("No web process in v1"), "{}", text(&pushed));
    assert_eq!(site.page_of("consoleonly"), "app consoleonly has no web process running\n");
    assert_eq!(host.ok(["run", "consoleonly", "console"]).out().trim(), "console says 42");

    // A worker-only Node app with no dependencies: app.json scales its
    // worker, which runs; a redeploy starts the new worker, waits until it
    // stays up, then retires the old one.
    let worker = work.path().join("worker");
    let ticker = |word: &str| format!("setInterval(() => console.log('worker {word}'), 300);\n");
    checkout_with(
        &worker,
        &[
            ("package.json", package),
            ("worker.js", &ticker("ticks")),
            ("Procfile", "worker: node worker.js\n"),
            ("app.json", r#"{"formation": {"worker": {"quantity": 1}}}"#),
        ],
    );
    let pushed = site.push_app(&worker, "workeronly", "main");
    assert!(pushed.status.success(), "{}", text(&pushed));
    let logs = || host.ok(["logs", "workeronly", "--ps", "worker", "-q"]).out();
    assert!((0..50).any(|_| logs().contains("worker ticks") || sleep_false()), "{}", logs());
    fs::write(worker.join("worker.js"), ticker("tocks")).unwrap();
    git(&worker, &["commit", "-q", "-am", "tocks"]);
    let pushed = site.push_app(&worker, "workeronly", "main");
    assert!(pushed.status.success() && text(&pushed).contains("to stay up"), "{}", text(&pushed));
    let running = host.ok(["containers:list"]).out();
    let workers: Vec<&str> = running.lines().filter(|l| l.contains("workeronly.worker.") && l.contains("running")).collect();
    assert_eq!(workers.len(), 1, "the old worker retired: {running}");
    assert!(workers[0].contains(".v2"), "{running}");
    assert!((0..50).any(|_| logs().contains("worker tocks") || sleep_false()), "{}", logs());

    // A worker that dies at once is refused; the running one stays.
    fs::write(worker.join("worker.js"), "console.log('worker gives up'); process.exit(3);\n").unwrap();
    git(&worker, &["commit", "-q", "-am", "gives up"]);
    let refused = site.push_app(&worker, "workeronly", "main");
    let said = text(&refused);
    assert!(!refused.status.success() && said.contains("exited with code 3") && said.contains("worker gives up"), "{said}");
    let running = host.ok(["containers:list"]).out();
    assert!(running.lines().any(|l| l.contains("workeronly.worker.1.v2") && l.contains("running")), "{running}");
}

fn sleep_false() -> bool {
    std::thread::sleep(Duration::from_millis(100));
    false
}

#[test]
#[ignore = "needs root: sshd, nginx and containers need root"]
fn cron_jobs_run_on_schedule_and_by_hand() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = PushHost::new("bt-cron", "10.241.1.0/24");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    let app_json = r#"{
  // Dokku reads comments and trailing commas
  "cron": [
    {"command": "node -e \"console.log('cron says ' + 6 * 7)\"", "schedule": "* * * * *"},
    {"command": "sleep 4", "schedule": "0 0 1 1 *"},
  ],
}"#;
    let app = work.path().join("cron");
    checkout_with(
        &app,
        &[("package.json", r#"{"name": "cron", "version": "1.0.0"}"#), ("Procfile", "console: node -e 1\n"), ("app.json", app_json)],
    );
    let pushed = site.push_app(&app, "ticker", "main");
    assert!(pushed.status.success(), "{}", text(&pushed));
    let listed: serde_json::Value = serde_json::from_str(&host.ok(["cron:list", "ticker", "--format", "json"]).out()).unwrap();
    let id = |i: usize| listed[i]["id"].as_str().unwrap().to_owned();
    assert_eq!((listed[0]["schedule"].as_str(), listed[1]["schedule"].as_str()), (Some("* * * * *"), Some("0 0 1 1 *")), "{listed}");
    let (says, sleeps) = (id(0), id(1));

    // By hand: the output comes back and lands in the app's log.
    assert_eq!(host.ok(["cron:run", "ticker", &says]).out().trim(), "cron says 42");
    let cron_lines = || host.ok(["logs", "ticker", "-p", "cron", "-q"]).out().matches("cron says 42").count();
    assert_eq!(cron_lines(), 1);
    // Never twice at once.
    let mut first = host.command(["cron:run", "ticker", &sleeps]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let second = host.run(["cron:run", "ticker", &sleeps]);
    assert!(second.code != 0 && second.stderr.contains("still running"), "{}", second.stderr);
    assert!(first.wait().unwrap().success());
    host.ok(["cron:suspend", "ticker", &says]);
    assert!(host.ok(["cron:list", "ticker"]).out().lines().any(|l| l.starts_with(&says) && l.contains("true")));
    host.ok(["cron:resume", "ticker"]);
    assert_eq!(host.ok(["cron:report", "ticker", "--cron-task-count"]).out(), "2\n");

    // On schedule: the every-minute job runs once the scheduler sees a new minute.
    let mut scheduler = host.command(["cron:scheduler"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let ran = (0..90).any(|_| cron_lines() >= 2 || sleep_1s());
    let _ = scheduler.kill();
    let _ = scheduler.wait();
    assert!(ran, "the scheduler ran the job: {}", host.ok(["logs", "ticker", "-p", "cron"]).out());

    // A schedule cron cannot read is refused with the entry, not its bytes.
    fs::write(app.join("app.json"), r#"{"cron": [{"command": "true", "schedule": "every day"}]}"#).unwrap();
    git(&app, &["commit", "-q", "-am", "bad schedule"]);
    let refused = site.push_app(&app, "ticker", "main");
    let said = text(&refused);
    assert!(!refused.status.success() && said.contains("cron entry 0 has a schedule that is not five cron fields"), "{said}");
    assert!(!said.contains("every day"), "{said}");
}

fn sleep_1s() -> bool {
    std::thread::sleep(Duration::from_secs(1));
    false
}
