//! No dropped requests while an app changes: clients hammer the app
//! through nginx during redeploys, a config change, a restart and scaling,
//! and every answer must be a 200.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::assert_clear_failure;
use common::push_host::{PushHost, checkout_of, curl, git, text};
use common::site::is_root;

/// What the request loop saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    not_2xx: AtomicU64,
    socket_errors: AtomicU64,
    slowest_ms: AtomicU64,
}

/// Wall-clock time for the failure lines, to set beside the berth output.
fn stamp() -> String {
    chrono::Utc::now().format("%H:%M:%S%.3f").to_string()
}

/// One request on a fresh connection, as a browser's first visit makes it.
fn request(port: u16) -> Result<u16, std::io::Error> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    // Longer than nginx's own upstream timeouts (60 s): a request nginx
    // gives up on comes back as a 502 and counts as failed; a slow one is
    // reported below but is not a dropped request.
    stream.set_read_timeout(Some(Duration::from_secs(90)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: catmeow.berth.test\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let head = String::from_utf8_lossy(&answer[..answer.len().min(16)]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {head:?}")))
}

/// Clients (threads) requesting in a loop until `stop`.
fn hammer(port: u16, clients: usize, stop: Arc<AtomicBool>, tally: Arc<Tally>) -> Vec<std::thread::JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            let (stop, tally) = (stop.clone(), tally.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    match request(port) {
                        Ok(code) if (200..300).contains(&code) => tally.ok.fetch_add(1, Ordering::Relaxed),
                        Ok(code) => {
                            eprintln!("{} answer {code} to a request sent {:.1} s before", stamp(), started.elapsed().as_secs_f64());
                            tally.not_2xx.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => {
                            eprintln!("{} socket error: {e} on a request sent {:.1} s before", stamp(), started.elapsed().as_secs_f64());
                            tally.socket_errors.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    if started.elapsed() > Duration::from_secs(5) {
                        eprintln!("{} a request took {:.1} s", stamp(), started.elapsed().as_secs_f64());
                    }
                    tally.slowest_ms.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect()
}

#[test]
#[ignore = "needs root: sshd, nginx and containers need root"]
fn no_request_fails_while_the_app_changes() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = PushHost::new("bt-zero", "10.221.1.0/24");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    assert!(site.push(&checkout, "main").status.success());
    assert_eq!(site.page(), "Cat dreams meow..\n");

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = hammer(site.http_port, 4, stop.clone(), tally.clone());
    let started = Instant::now();
    let mut previous = "Cat dreams meow..".to_owned();
    for i in 1..=5 {
        let next = format!("Cat dreams {i}..");
        let code = fs::read_to_string(checkout.join("catmeow.py")).unwrap().replace(&previous, &next);
        fs::write(checkout.join("catmeow.py"), code).unwrap();
        previous = next;
        git(&checkout, &["commit", "-q", "-am", &format!("redeploy {i}")]);
        eprintln!("{} redeploy {i}", stamp());
        let pushed = site.push(&checkout, "main");
        assert!(pushed.status.success(), "{}", text(&pushed));
        assert_eq!(site.page(), format!("Cat dreams {i}..\n"));
    }
    eprintln!("{} config:set, ps:restart, ps:scale", stamp());
    host.ok(["config:set", "catmeow", "GREETING=hello"]);
    host.ok(["ps:restart", "catmeow"]);
    host.ok(["ps:scale", "catmeow", "web=3"]);
    host.ok(["ps:scale", "catmeow", "web=1"]);

    // Health checks from app.json gate the switch: a passing one lets the
    // release in; wrong content, a 500 and a process that never binds are
    // each refused while the previous release keeps answering.
    let serving = site.page();
    let check = |extra: &str| {
        format!(r#"{{"healthchecks": {{"web": [{{"type": "startup", "name": "root", "attempts": 2, "wait": 1, {extra}}}]}}}}"#)
    };
    fs::write(checkout.join("app.json"), check(r#""path": "/", "content": "Cat dreams""#)).unwrap();
    git(&checkout, &["add", "app.json"]);
    git(&checkout, &["commit", "-q", "-m", "a health check"]);
    eprintln!("{} a checked deploy", stamp());
    let checked = site.push(&checkout, "main");
    assert!(checked.status.success() && text(&checked).contains("Check root passed"), "{}", text(&checked));
    let app = fs::read_to_string(checkout.join("catmeow.py")).unwrap();
    let boom = app.replace("if __name__", "@app.route(\"/boom\")\ndef boom():\n    return \"broken\", 500\n\n\nif __name__");
    fs::write(checkout.join("catmeow.py"), &boom).unwrap();
    for (what, app_json, procfile) in [
        ("wrong content", check(r#""path": "/", "content": "Dog dreams""#), None),
        ("an endpoint answering 500", check(r#""path": "/boom""#), None),
        ("a web process that never binds", "{}".to_owned(), Some("web: sleep 1000\n")),
    ] {
        fs::write(checkout.join("app.json"), app_json).unwrap();
        if let Some(procfile) = procfile {
            fs::write(checkout.join("Procfile"), procfile).unwrap();
        }
        git(&checkout, &["commit", "-q", "-am", what]);
        eprintln!("{} a deploy with {what}", stamp());
        let refused = site.push(&checkout, "main");
        let said = text(&refused);
        assert!(!refused.status.success(), "{what} was deployed: {said}");
        assert!(said.contains("did not pass its health check") || said.contains("did not accept connections"), "{what}: {said}");
        assert_eq!(site.page(), serving, "{what}: the previous release serves");
    }

    // Deploy phases: app.json predeploy, the Procfile's release process and
    // postdeploy run in order; a failing predeploy or release aborts.
    let procfile = "web: python catmeow.py\nworker: python worker.py\nrelease: echo releasing the next one\n";
    fs::write(checkout.join("Procfile"), procfile).unwrap();
    let scripts = |pre: &str| format!(r#"{{"scripts": {{"dokku": {{"predeploy": "{pre}", "postdeploy": "echo postdeploy ran"}}}}}}"#);
    fs::write(checkout.join("app.json"), scripts("echo predeploy ran && test -f catmeow.py")).unwrap();
    git(&checkout, &["commit", "-q", "-am", "deploy phases"]);
    eprintln!("{} deploy phases", stamp());
    let phased = site.push(&checkout, "main");
    let said = text(&phased);
    assert!(phased.status.success(), "{said}");
    let order: Vec<usize> = ["predeploy ran", "releasing the next one", "Starting web.1", "postdeploy ran", "Application deployed"]
        .iter()
        .map(|needle| said.find(needle).unwrap_or_else(|| panic!("{needle:?} missing: {said}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "phases out of order: {said}");
    assert_eq!(site.page(), serving);
    fs::write(checkout.join("app.json"), scripts("exit 3")).unwrap();
    git(&checkout, &["commit", "-q", "-am", "predeploy fails"]);
    let refused = site.push(&checkout, "main");
    assert!(!refused.status.success() && text(&refused).contains("the predeploy command exited with code 3"), "{}", text(&refused));
    fs::write(checkout.join("app.json"), "{}").unwrap();
    fs::write(checkout.join("Procfile"), procfile.replace("echo releasing the next one", "exit 4")).unwrap();
    git(&checkout, &["commit", "-q", "-am", "release fails"]);
    let refused = site.push(&checkout, "main");
    assert!(!refused.status.success() && text(&refused).contains("the release command exited with code 4"), "{}", text(&refused));
    assert_eq!(site.page(), serving);

    eprintln!("{} stopping the clients", stamp());
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let (ok, bad, errors) =
        (tally.ok.load(Ordering::Relaxed), tally.not_2xx.load(Ordering::Relaxed), tally.socket_errors.load(Ordering::Relaxed));
    eprintln!(
        "zero-downtime: {ok} answers 200, {bad} not 2xx, {errors} socket errors in {:.1} s; slowest request {} ms",
        started.elapsed().as_secs_f64(),
        tally.slowest_ms.load(Ordering::Relaxed)
    );
    assert!(ok > 100, "the clients ran: {ok}");
    assert_eq!((bad, errors), (0, 0), "no request may fail");

    // Domains: hostile names are refused before nginx's config changes;
    // added names and wildcards answer; proxy and nginx options apply.
    let conf = site.site.host.path().join("nginx/catmeow.conf");
    let before = fs::read(&conf).unwrap();
    for hostile in ["a.com; include /etc/passwd", "a.com\n", "a.com\nserver { }", "*.com", "a..com", "a.com:80", "$host"] {
        assert_clear_failure(&host.run(["domains:add", "catmeow", "ok.example.test", hostile]), hostile);
        assert_eq!(fs::read(&conf).unwrap(), before, "{hostile:?} changed nothing");
    }
    host.ok(["domains:add", "catmeow", "Cats.Example.Test", "*.wild.test"]);
    let body = |name: &str| curl(site.http_port, name, &[]);
    assert_eq!(body("cats.example.test"), (200, serving.clone()));
    assert_eq!(body("anything.wild.test"), (200, serving.clone()));
    assert_eq!(body("catmeow.berth.test"), (200, serving.clone()), "the default name stays");
    let report = host.ok(["domains:report", "catmeow"]).out();
    assert!(report.contains("cats.example.test") && report.contains("*.wild.test"), "{report}");
    host.ok(["domains:remove", "catmeow", "cats.example.test"]);
    assert_eq!(body("cats.example.test").0, 404);
    host.ok(["domains:set", "catmeow", "only.example.test"]);
    assert_eq!(body("catmeow.berth.test").0, 404);
    assert_eq!(body("only.example.test"), (200, serving.clone()));
    host.ok(["domains:reset", "catmeow"]);
    assert_eq!(body("catmeow.berth.test"), (200, serving.clone()));
    host.ok(["proxy:disable", "catmeow"]);
    assert_eq!(body("catmeow.berth.test").0, 404);
    host.ok(["proxy:enable", "catmeow"]);
    assert_eq!(body("catmeow.berth.test"), (200, serving.clone()));
    for (key, bad) in
        [("client-max-body-size", "1k;"), ("proxy-read-timeout", "forever"), ("access-log-path", "/var/log/../x"), ("listen", "81")]
    {
        assert_clear_failure(&host.run(["nginx:set", "catmeow", key, bad]), key);
    }
    host.ok(["nginx:set", "catmeow", "client-max-body-size", "1k"]);
    let big = "x".repeat(4096);
    assert_eq!(curl(site.http_port, "catmeow.berth.test", &["--data", &big]).0, 413, "bodies over 1k are refused");
    host.ok(["nginx:set", "catmeow", "client-max-body-size"]);
    assert_ne!(curl(site.http_port, "catmeow.berth.test", &["--data", &big]).0, 413);

    // TLS: a self-signed certificate; HTTPS (HTTP/2) with it as the CA,
    // HTTP redirects there; a key of another certificate is refused.
    host.ok(["certs:generate", "catmeow"]);
    let cert = site.site.host.path().join("apps/catmeow/tls/server.crt");
    let https = std::process::Command::new("curl")
        .args(["-s", "-m", "5", "--http2", "-w", "\n%{http_version}", "--cacert"])
        .arg(&cert)
        .args(["--resolve", &format!("catmeow.berth.test:{}:127.0.0.1", site.tls_port)])
        .arg(format!("https://catmeow.berth.test:{}/", site.tls_port))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&https.stdout).into_owned();
    assert_eq!(answer, format!("{serving}\n2"), "HTTPS with HTTP/2: {}", String::from_utf8_lossy(&https.stderr));
    let redirect = std::process::Command::new("curl")
        .args(["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", "Host: catmeow.berth.test"])
        .arg(format!("http://127.0.0.1:{}/path?q=1", site.http_port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&redirect.stdout), format!("301 https://catmeow.berth.test:{}/path?q=1", site.tls_port));
    let report = host.ok(["certs:report", "catmeow"]).out();
    assert!(report.contains("notAfter") && report.contains("catmeow.berth.test"), "{report}");
    let other = tempfile::tempdir().unwrap();
    let (other_cert, other_key) = (other.path().join("c.crt"), other.path().join("c.key"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other", "-keyout"])
        .arg(&other_key)
        .arg("-out")
        .arg(&other_cert)
        .output()
        .unwrap();
    assert!(made.status.success());
    let mismatched = host.run(["certs:add".as_ref(), "catmeow".as_ref(), cert.as_os_str(), other_key.as_os_str()]);
    assert_clear_failure(&mismatched, "a key of another certificate");
    assert!(mismatched.stderr.contains("does not belong"), "{}", mismatched.stderr);
    assert_clear_failure(
        &host.run(["certs:add".as_ref(), "catmeow".as_ref(), other_key.as_os_str(), other_key.as_os_str()]),
        "a key as certificate",
    );
    host.ok(["certs:remove", "catmeow"]);
    assert_eq!(body("catmeow.berth.test"), (200, serving.clone()), "plain HTTP again");
}
