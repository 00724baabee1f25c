//! Backing services through the real path: plugins/service installed as
//! `postgres` (and `redis`) the way install.sh does, a PostgreSQL container
//! from the service image, linked to a Flask app that keeps its rows there
//! through DATABASE_URL; the rows outlive a redeploy, a restart and a
//! simulated reboot; export and import move them; only linked apps get
//! through the firewall; app.json add-ons are provisioned on a first push.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::push_host::{PushHost, checkout_of, git, repo, text};
use common::site::is_root;

/// What nginx answers for APP; with `note`, after posting it.
fn notes(site: &PushHost, app: &str, note: Option<&str>) -> String {
    let mut curl = Command::new("curl");
    curl.args(["-s", "-m", "10", "-H", &format!("Host: {app}.berth.test")]);
    if let Some(note) = note {
        curl.args(["--data-urlencode", &format!("note={note}")]);
    }
    let out = curl.arg(format!("http://127.0.0.1:{}/", site.http_port)).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a container of APP can open a TCP connection to ADDRESS:PORT.
fn reaches(host: &common::Host, app: &str, address: &str, port: &str) -> bool {
    let probe = "import socket,sys\ntry:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close(); print('open')\nexcept OSError: print('closed')";
    let out = host.ok(["--quiet", "run", app, "python3", "-c", probe, address, port]).out();
    assert!(out.contains("open") || out.contains("closed"), "{out}");
    out.contains("open")
}

/// A host reboot, as berth sees one: every shim and container init killed.
fn kill_everything(root: &Path) {
    for entry in fs::read_dir(root.join("containers")).unwrap().flatten() {
        let Ok(bytes) = fs::read(entry.path().join("state.json")) else { continue };
        let state: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        for key in ["shim_pid", "pid"] {
            if let Some(pid) = state[key].as_i64() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
}

fn install_services(host: &common::Host) {
    let service = repo().join("plugins/service");
    for kind in ["postgres", "redis"] {
        host.ok(["plugin:install".as_ref(), service.as_os_str(), "--name".as_ref(), kind.as_ref()]);
    }
}

#[test]
#[ignore = "needs root: sshd, nginx, containers and nftables"]
fn a_linked_database_keeps_an_apps_rows_and_admits_only_linked_apps() {
    assert!(is_root(), "run with ./test.sh as root");
    let site = PushHost::new("bt-svc", "10.245.1.0/24");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    install_services(host);
    assert!(host.ok(["help"]).out().contains("postgres:link NAME APP [--alias ALIAS]"));

    host.ok(["postgres:create", "db"]);
    let info: serde_json::Value = serde_json::from_str(&host.ok(["postgres:info", "db", "--format", "json"]).out()).unwrap();
    let (address, dsn) = (info["internal-ip"].as_str().unwrap().to_owned(), info["dsn"].as_str().unwrap().to_owned());
    assert!(dsn.starts_with("postgres://postgres:") && dsn.ends_with(&format!("@{address}:5432/db")), "{info}");
    assert_eq!(info["status"], "running");
    let env = host.path().join("services/postgres/db/env");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&env).unwrap().permissions().mode() & 0o777, 0o600);

    // Linked before the first push: the app's containers get DATABASE_URL.
    host.ok(["apps:create", "notes"]);
    host.ok(["postgres:link", "db", "notes"]);
    let checkout = checkout_of("notes", work.path());
    let push = site.push_app(&checkout, "notes", "main");
    assert!(push.status.success(), "{}", text(&push));
    assert_eq!(notes(&site, "notes", Some("first note")), "first note\n");
    assert_eq!(host.ok(["--quiet", "run", "notes", "printenv", "DATABASE_URL"]).out(), format!("{dsn}\n"));
    assert!(!host.ok(["config:show", "notes"]).out().contains("DATABASE_URL"), "the URL is not stored in config");

    // A redeploy, a restart, and a reboot: the row stays.
    fs::write(checkout.join("CHECKS"), "").unwrap();
    git(&checkout, &["add", "."]);
    git(&checkout, &["commit", "-q", "-m", "again"]);
    let again = site.push_app(&checkout, "notes", "main");
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(notes(&site, "notes", None), "first note\n");
    host.ok(["ps:restart", "notes"]);
    assert_eq!(notes(&site, "notes", None), "first note\n");
    kill_everything(host.path());
    let restored = host.run(["ps:restore"]);
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert!(restored.out().contains("service.postgres.db is running"), "{}", restored.out());
    assert_eq!(host.ok(["postgres:info", "db", "--internal-ip"]).out().trim(), address, "the service keeps its address");
    assert_eq!(notes(&site, "notes", Some("after the reboot")), "first note\nafter the reboot\n");

    // export, then import into a second service: the same rows.
    let dump = work.path().join("db.dump");
    let export = host.command(["postgres:export", "db"]).stdout(fs::File::create(&dump).unwrap()).status().unwrap();
    assert!(export.success() && fs::read(&dump).unwrap().starts_with(b"PGDMP"), "a pg_dump custom-format archive");
    host.ok(["postgres:create", "copy"]);
    let import = host.command(["postgres:import", "copy"]).stdin(fs::File::open(&dump).unwrap()).stdout(Stdio::null()).status().unwrap();
    assert!(import.success());
    let mut psql = host.command(["postgres:connect", "copy"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(&mut psql.stdin.take().unwrap(), b"SELECT body FROM notes ORDER BY id;\n").unwrap();
    let rows = String::from_utf8(psql.wait_with_output().unwrap().stdout).unwrap();
    assert!(rows.contains("first note") && rows.contains("after the reboot") && rows.contains("(2 rows)"), "{rows}");

    // Only linked apps get through: notes reaches db, not copy; an unlinked app reaches neither.
    let copy_address = host.ok(["postgres:info", "copy", "--internal-ip"]).out().trim().to_owned();
    assert!(reaches(host, "notes", &address, "5432"));
    assert!(!reaches(host, "notes", &copy_address, "5432"));
    let other = checkout_of("catmeow", work.path());
    let pushed = site.push_app(&other, "other", "main");
    assert!(pushed.status.success(), "{}", text(&pushed));
    assert!(!reaches(host, "other", &address, "5432"), "an unlinked app's container must not connect");
    host.ok(["redis:create", "cache"]);
    host.ok(["redis:link", "cache", "other"]);
    let redis_address = host.ok(["redis:info", "cache", "--internal-ip"]).out().trim().to_owned();
    assert!(reaches(host, "other", &redis_address, "6379") && !reaches(host, "notes", &redis_address, "6379"));
    let redis_url = host.ok(["--quiet", "run", "other", "printenv", "REDIS_URL"]).out();
    assert!(redis_url.starts_with("redis://:") && redis_url.ends_with(&format!("@{redis_address}:6379\n")), "{redis_url}");

    // redis: export (its RDB file) and import into another.
    let piped = |args: &[&str], input: &[u8]| {
        let mut child = host.command(args.to_vec()).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}");
        out.stdout
    };
    assert_eq!(piped(&["redis:connect", "cache"], b"SET greeting hello\n"), b"OK\n");
    let rdb = piped(&["redis:export", "cache"], b"");
    assert!(rdb.starts_with(b"REDIS"), "an RDB file");
    host.ok(["redis:create", "cache-copy"]);
    piped(&["redis:import", "cache-copy"], &rdb);
    assert_eq!(piped(&["redis:connect", "cache-copy"], b"GET greeting\n"), b"hello\n");

    // destroy is refused while linked, and works once unlinked.
    let refused = host.run(["postgres:destroy", "db", "--force"]);
    assert!(refused.code != 0 && refused.stderr.contains("linked to notes"), "{}", refused.stderr);
    assert_eq!(notes(&site, "notes", None), "first note\nafter the reboot\n");
    host.ok(["postgres:unlink", "db", "notes"]);
    assert!(host.run(["--quiet", "run", "notes", "printenv", "DATABASE_URL"]).code != 0, "unlinked: no DATABASE_URL");
    host.ok(["postgres:destroy", "db", "--force"]);
    assert!(!host.path().join("services/postgres/db").exists());
    assert!(host.run(["containers:inspect", "service.postgres.db"]).code != 0);
}

#[test]
#[ignore = "needs root: sshd, nginx, containers and nftables"]
fn app_json_addons_get_a_linked_database_on_the_first_push() {
    assert!(is_root(), "run with ./test.sh as root");
    let site = PushHost::new("bt-addon", "10.245.2.0/24");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    install_services(host);
    let checkout = checkout_of("notes", work.path());
    fs::write(checkout.join("app.json"), r#"{"name": "notes", "addons": ["heroku-postgresql:essential-0"]}"#).unwrap();
    git(&checkout, &["add", "."]);
    git(&checkout, &["commit", "-q", "-m", "addons"]);
    let push = site.push_app(&checkout, "shop", "main");
    assert!(
        push.status.success() && text(&push).contains("Provisioning app.json add-ons: heroku-postgresql:essential-0"),
        "{}",
        text(&push)
    );
    assert_eq!(host.ok(["postgres:app-links", "shop"]).out(), "shop\n");
    assert_eq!(notes(&site, "shop", Some("from app.json")), "from app.json\n");

    // A second push provisions nothing new; a destroyed app leaves no link.
    git(&checkout, &["commit", "-q", "--allow-empty", "-m", "again"]);
    let again = site.push_app(&checkout, "shop", "main");
    assert!(again.status.success() && !text(&again).contains("Provisioning"), "{}", text(&again));
    host.ok(["apps:destroy", "shop", "--force"]);
    assert_eq!(host.ok(["postgres:info", "shop", "--links"]).out().trim(), "");
    host.ok(["postgres:destroy", "shop", "--force"]);
}
