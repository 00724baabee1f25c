//! No dropped requests while an app changes: clients hammer the app
//! through nginx during redeploys, a config change, a restart, scaling and
//! a rollback, on fresh connections and on keep-alive ones (wrk, and POSTs
//! on one connection), and every answer must be a 2xx. nginx is never
//! reloaded for any of it: its workers are the same before and after.

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

/// POSTs on one keep-alive connection until `stop`; a new connection only
/// when nginx says it closes this one (its keepalive_requests).
fn post_loop(port: u16, stop: Arc<AtomicBool>, tally: Arc<Tally>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut stream: Option<std::io::BufReader<TcpStream>> = None;
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let reader = match stream.take() {
                Some(reader) => reader,
                None => std::io::BufReader::new(TcpStream::connect(("127.0.0.1", port)).expect("nginx accepts")),
            };
            match post_once(reader, n) {
                Ok((reader, keep)) => {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    stream = keep.then_some(reader);
                }
                Err(e) => {
                    eprintln!("{} POST {n} on a kept-alive connection: {e}", stamp());
                    tally.socket_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    })
}

/// One POST of `n` to /echo; the answer must echo it. Returns the reader and
/// whether nginx keeps the connection open.
fn post_once(mut reader: std::io::BufReader<TcpStream>, n: u64) -> Result<(std::io::BufReader<TcpStream>, bool), String> {
    use std::io::BufRead;
    let body = format!("post number {n}");
    let head = format!("POST /echo HTTP/1.1\r\nHost: catmeow.berth.test\r\nContent-Length: {}\r\n\r\n", body.len());
    reader.get_mut().set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    reader.get_mut().write_all(format!("{head}{body}").as_bytes()).map_err(|e| format!("write: {e}"))?;
    let (mut status, mut length, mut keep) = (String::new(), 0usize, true);
    reader.read_line(&mut status).map_err(|e| format!("read: {e}"))?;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| format!("read: {e}"))?;
        let lower = line.trim_end().to_ascii_lowercase();
        if lower.is_empty() {
            break;
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().map_err(|_| format!("bad length {line:?}"))?;
        }
        keep &= lower != "connection: close";
    }
    let mut answer = vec![0; length];
    reader.read_exact(&mut answer).map_err(|e| format!("read body: {e}"))?;
    if !status.starts_with("HTTP/1.1 2") || answer != body.as_bytes() {
        return Err(format!("answer {:?} with {:?}", status.trim_end(), String::from_utf8_lossy(&answer)));
    }
    Ok((reader, keep))
}

/// nginx's worker pids (the master's children): the same after a change
/// means nginx was not reloaded.
fn nginx_workers(root: &std::path::Path) -> Vec<u32> {
    let master = fs::read_to_string(root.join("nginx.pid")).unwrap().trim().to_owned();
    let mut pids: Vec<u32> = fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    pids.sort_unstable();
    pids
}

/// wrk's keep-alive clients through nginx, stopped with SIGINT, whose
/// summary says how many answers were not 2xx/3xx and how many socket
/// errors there were.
struct Wrk(std::process::Child);

impl Wrk {
    fn start(port: u16) -> Wrk {
        let child = std::process::Command::new("wrk")
            .args(["-c8", "-t2", "-d3600s", "--timeout", "20s", "-H", "Host: catmeow.berth.test"])
            .arg(format!("http://127.0.0.1:{port}/"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("wrk runs (./test.sh installs it)");
        Wrk(child)
    }

    /// (requests, non-2xx/3xx, socket errors) from wrk's summary.
    fn stop(self) -> (u64, u64, u64) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0.id() as i32), nix::sys::signal::Signal::SIGINT);
        let out = self.0.wait_with_output().unwrap();
        let summary = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!("wrk:\n{summary}");
        let number = |after: &str| -> u64 {
            summary.lines().find_map(|l| l.trim().strip_prefix(after)).map_or(0, |rest| {
                rest.split(|c: char| !c.is_ascii_digit()).filter(|w| !w.is_empty()).map(|w| w.parse::<u64>().unwrap()).sum()
            })
        };
        let requests = summary.lines().find(|l| l.contains("requests in")).and_then(|l| l.split_whitespace().next()?.parse().ok());
        (requests.expect("wrk printed a summary"), number("Non-2xx or 3xx responses:"), number("Socket errors:"))
    }
}

#[test]
#[ignore = "needs root: sshd, nginx and containers need root"]
fn no_request_fails_while_the_app_changes() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = PushHost::new("bt-zero", "10.221.1.0/24");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    let echo = "@app.route(\"/echo\", methods=[\"POST\"])\ndef echo():\n    from flask import request\n    return request.get_data()\n\n\nif __name__";
    let app = fs::read_to_string(checkout.join("catmeow.py")).unwrap().replace("if __name__", echo);
    fs::write(checkout.join("catmeow.py"), app).unwrap();
    git(&checkout, &["commit", "-q", "-am", "an echo for POSTs"]);
    assert!(site.push(&checkout, "main").status.success());
    assert_eq!(site.page(), "Cat dreams meow..\n");
    let workers = nginx_workers(host.path());
    let report = host.ok(["proxy:report", "catmeow"]).out();
    let stable = host.ok(["proxy:report", "catmeow", "--proxy-stable-address"]).out();
    assert!(stable.starts_with("10.221.1.") && report.contains("(10.221.1."), "{report}");

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let posts = Arc::new(Tally::default());
    let mut clients = hammer(site.http_port, 4, stop.clone(), tally.clone());
    clients.push(post_loop(site.http_port, stop.clone(), posts.clone()));
    let wrk = Wrk::start(site.http_port);
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
    let report = host.ok(["proxy:report", "catmeow"]).out();
    assert_eq!(report.matches("(10.221.1.").count(), 3, "three containers behind the address: {report}");
    host.ok(["ps:scale", "catmeow", "web=1"]);
    host.ok(["releases:rollback", "catmeow"]);
    std::thread::sleep(Duration::from_millis(500));
    let (requests, wrk_bad, wrk_errors) = wrk.stop();
    assert_eq!(nginx_workers(host.path()), workers, "nginx was not reloaded by deploys, restarts, scaling or a rollback");

    // Health checks from app.json gate the switch: a passing one lets the
    // release in; wrong content, a 500 and a process that never binds are
    // each refused while the previous release keeps answering.
    let serving = site.page();
    let check = |extra: &str| {
        // With a comment and trailing commas, as Dokku reads app.json.
        format!(
            "{{\n  // checked before traffic moves\n  \"healthchecks\": {{\"web\": [{{\"type\": \"startup\", \"name\": \"root\", \"attempts\": 2, \"wait\": 1, {extra},}}]}},\n}}"
        )
    };
    fs::write(checkout.join("app.json"), check(r#""path": "/", "content": "Cat dreams""#)).unwrap();
    git(&checkout, &["add", "app.json"]);
    git(&checkout, &["commit", "-q", "-m", "a health check"]);
    eprintln!("{} a checked deploy", stamp());
    let checked = site.push(&checkout, "main");
    assert!(checked.status.success() && text(&checked).contains("Check root passed"), "{}", text(&checked));
    let serving_set = |report: String| report.lines().find(|l| l.contains("serving:")).unwrap_or_default().to_owned();
    let behind = serving_set(host.ok(["proxy:report", "catmeow"]).out());
    assert!(behind.contains("catmeow.web.1"), "{behind}");
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
        assert_eq!(serving_set(host.ok(["proxy:report", "catmeow"]).out()), behind, "{what}: the same containers serve");
    }

    // Deploy phases: app.json predeploy, the Procfile's release process and
    // postdeploy run in order; a failing predeploy or release aborts.
    let procfile = "web: python catmeow.py\nworker: python worker.py\nrelease: echo releasing the next one\n";
    fs::write(checkout.join("Procfile"), procfile).unwrap();
    let scripts = |pre: &str| {
        format!(
            "/* deploy phases */ {{\"scripts\": {{\"dokku\": {{\"predeploy\": \"{pre}\", \"postdeploy\": \"echo postdeploy ran\",}}}}}}"
        )
    };
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
    let (posted, post_errors) = (posts.ok.load(Ordering::Relaxed), posts.socket_errors.load(Ordering::Relaxed));
    eprintln!(
        "keep-alive: wrk {requests} requests, {wrk_bad} not 2xx/3xx, {wrk_errors} socket errors; {posted} POSTs, {post_errors} failed"
    );
    assert!(ok > 100 && requests > 100 && posted > 100, "the clients ran: {ok}, {requests}, {posted}");
    assert_eq!((bad, errors), (0, 0), "no request may fail");
    assert_eq!((wrk_bad, wrk_errors, post_errors), (0, 0, 0), "no keep-alive request may fail");

    // What nginx reads and writes for the app.
    let config = host.ok(["nginx:show-config", "catmeow"]).out();
    assert!(config.contains("proxy_pass http://10.221.1.") && config.contains("server_name catmeow.berth.test;"), "{config}");
    let access = host.ok(["nginx:access-logs", "catmeow"]).out();
    assert!(access.contains("\"GET / HTTP/1.1\" 200") && access.contains("\"POST /echo HTTP/1.1\" 200"), "{access}");
    assert_eq!(access.lines().count(), 100, "the last 100 lines");
    host.ok(["nginx:error-logs", "catmeow"]);
    assert_clear_failure(&host.run(["nginx:show-config", "nosuchapp"]), "an unknown app");

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
    assert!(report.contains("Ssl expires at") && report.contains("catmeow.berth.test"), "{report}");
    let names = host.ok(["certs:report", "catmeow", "--ssl-hostnames"]).out();
    assert!(names.split_whitespace().any(|n| n == "catmeow.berth.test"), "{names}");
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

/// The image a release runs, and its layer digests, bottom first.
fn release_layers(host: &common::Host, version: &str) -> (String, Vec<String>) {
    let release: serde_json::Value = serde_json::from_str(&host.ok(["releases:info", "catmeow", version]).out()).unwrap();
    let image = release["image"].as_str().unwrap().to_owned();
    (image.clone(), image_layers(host, &image))
}

fn image_layers(host: &common::Host, image: &str) -> Vec<String> {
    let inspect: serde_json::Value = serde_json::from_str(&host.ok(["images:inspect", image]).out()).unwrap();
    inspect["manifest"]["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect()
}

#[test]
#[ignore = "needs root: sshd, nginx and containers need root"]
fn a_rebase_swaps_the_run_layers_without_a_build_and_drops_no_request() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = PushHost::new("bt-rebase", "10.221.2.0/24");
    let host = &site.site.host;
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    assert!(site.push(&checkout, "main").status.success());
    assert_eq!(site.page(), "Cat dreams meow..\n");
    let (_, before) = release_layers(host, "v1");
    assert_eq!(host.ok(["stacks:outdated"]).out().lines().count(), 1, "only the heading while the app is on the newest run image");
    assert!(host.ok(["apps:rebase", "catmeow"]).out().contains("is on the newest run image of the bookworm stack already"));

    // A newer run image of the same stack, as a security update makes one.
    let update = work.path().join("update");
    fs::create_dir_all(update.join("etc")).unwrap();
    fs::write(update.join("etc/berth-security-update"), "patched\n").unwrap();
    let run_image = "berth/stack-run:bookworm";
    host.ok(["images:from-dir", update.to_str().unwrap(), run_image, "--base", run_image]);
    let newest = image_layers(host, run_image);
    assert_eq!(host.ok(["stacks:outdated"]).out().lines().nth(1), Some("catmeow bookworm"));

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = hammer(site.http_port, 4, stop.clone(), tally.clone());
    std::thread::sleep(Duration::from_millis(500));
    let rebased = host.ok(["apps:rebase", "catmeow"]).out();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    clients.into_iter().for_each(|c| c.join().unwrap());
    assert!(rebased.contains("Rebasing catmeow onto the bookworm stack's run image"), "{rebased}");
    assert!(!rebased.contains("Building"), "no build runs: {rebased}");
    let (ok, bad, errors) =
        (tally.ok.load(Ordering::Relaxed), tally.not_2xx.load(Ordering::Relaxed), tally.socket_errors.load(Ordering::Relaxed));
    assert!(ok > 0 && bad == 0 && errors == 0, "during the rebase: {ok} answered 2xx, {bad} did not, {errors} socket errors");

    let (image, after) = release_layers(host, "v2");
    assert_eq!(after[..newest.len()], newest[..], "the new release sits on the new run image's layers");
    assert_eq!(after[newest.len()..], before[before.len() - 2..], "the dependency and app layers are the same blobs");
    assert!(image.contains(":rebase-"), "{image}");
    let builds: serde_json::Value = serde_json::from_str(&host.ok(["builds:list", "catmeow", "--format", "json"]).out()).unwrap();
    assert_eq!(builds.as_array().unwrap().len(), 1, "no build ran");
    assert_eq!(site.page(), "Cat dreams meow..\n");
    assert_eq!(host.ok(["run", "catmeow", "cat", "/etc/berth-security-update"]).out(), "patched\n");
    assert_eq!(host.ok(["stacks:outdated"]).out().lines().count(), 1);
    assert!(host.ok(["apps:rebase", "--all"]).out().contains("Every deployed app is on its stack's newest run image"));

    // Another stack needs a build: refused, and nothing changes.
    for kind in ["run", "build"] {
        let bookworm = format!("berth/stack-{kind}:bookworm");
        host.ok(["images:from-dir", update.to_str().unwrap(), &format!("berth/stack-{kind}:other"), "--base", &bookworm]);
    }
    host.ok(["buildpacks:set-property", "catmeow", "stack", "other"]);
    let refused = host.run(["apps:rebase", "catmeow"]);
    assert_clear_failure(&refused, "apps:rebase after a change of stack");
    assert!(
        refused.stderr.contains("was built on the bookworm stack and now builds on other: a change of stack needs a build"),
        "{}",
        refused.stderr
    );
    assert!(host.run(["releases:info", "catmeow", "v3"]).code != 0, "no release made");
}
