//! What nginx serves an app on: certificates from an ACME server (Debian's
//! pebble on loopback with its own CA, names resolved by
//! pebble-challtestsrv), issued, served, renewed near expiry and kept when
//! not due; port mappings; several global domains; and hostile ports and
//! domains refused before nginx sees a file.

mod common;

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use common::assert_clear_failure;
use common::push_host::{PushHost, checkout_of, curl, free_port, text};
use common::servers::{Server, make_pki, wait_for_port};
use common::site::is_root;

fn https(port: u16, name: &str, ca: &Path) -> String {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
        .arg(format!("https://{name}:{port}/"))
        .output()
        .unwrap();
    assert!(out.status.success(), "HTTPS to {name}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cert_field(cert: &Path, field: &str) -> String {
    let out = Command::new("openssl").args(["x509", "-noout", field, "-in"]).arg(cert).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
#[ignore = "needs root: sshd, nginx, pebble and containers need root"]
fn letsencrypt_ports_and_global_domains() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = PushHost::new("bt-proxy", "10.223.1.0/24");
    let host = &site.site.host;
    let root = host.path().to_owned();
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    let pushed = site.push(&checkout, "main");
    assert!(pushed.status.success(), "{}", text(&pushed));
    let serving = "Cat dreams meow..\n".to_owned();
    assert_eq!(curl(site.http_port, "catmeow.berth.test", &[]), (200, serving.clone()));

    // pebble validates over HTTP on the port nginx listens on, resolving
    // every name to 127.0.0.1 through pebble-challtestsrv; its certificates
    // live 10 days, inside the 30-day renewal window.
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let (acme_port, management_port, dns_port, challtest_port) = (free_port(), free_port(), free_port(), free_port());
    let _dns = Server(
        Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}"), "-management", &format!("127.0.0.1:{challtest_port}")])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let config = serde_json::json!({ "pebble": {
        "listenAddress": format!("127.0.0.1:{acme_port}"),
        "managementListenAddress": format!("127.0.0.1:{management_port}"),
        "certificate": pki.path().join("server.pem"),
        "privateKey": pki.path().join("server.key"),
        "httpPort": site.http_port,
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
        "certificateValidityPeriod": 864000u64,
    }});
    fs::write(pki.path().join("pebble.json"), config.to_string()).unwrap();
    let pebble_log = fs::File::create(root.join("pebble.log")).unwrap();
    let _pebble = Server(
        Command::new("pebble")
            .arg("-config")
            .arg(pki.path().join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(pebble_log.try_clone().unwrap())
            .stderr(pebble_log)
            .spawn()
            .unwrap(),
    );
    wait_for_port(acme_port);
    let settings = fs::read_to_string(root.join("config.toml")).unwrap();
    let acme = format!(
        "[letsencrypt]\nserver = \"https://127.0.0.1:{acme_port}/dir\"\nca_file = \"{}\"\nrenew_days_before = 30\n",
        pki.path().join("ca.pem").display()
    );
    fs::write(root.join("config.toml"), format!("{settings}{acme}")).unwrap();

    // A wildcard cannot be proven over HTTP: refused before any order.
    host.ok(["domains:add", "catmeow", "*.wild.test"]);
    let wild = host.run(["letsencrypt:enable", "catmeow"]);
    assert_clear_failure(&wild, "a wildcard name");
    assert!(wild.stderr.contains("wildcard"), "{}", wild.stderr);
    host.ok(["domains:reset", "catmeow"]);

    host.ok(["letsencrypt:set", "--global", "email", "admin@berth.test"]);
    let enabled = host.ok(["letsencrypt:enable", "catmeow"]).out();
    assert!(enabled.contains("valid until"), "{enabled}");
    let field = |flag: &str| host.ok(["letsencrypt:report", "catmeow", flag]).out().trim_end().to_owned();
    assert_eq!((field("--letsencrypt-active"), field("--letsencrypt-computed-email")), ("true".into(), "admin@berth.test".into()));
    assert!(!field("--letsencrypt-expiration").is_empty());
    let account = fs::read(root.join("letsencrypt/account.json")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(root.join("letsencrypt")).unwrap().permissions().mode() & 0o777, 0o700);
    let roots = Command::new("curl")
        .args(["-s", "-m", "5", "--cacert"])
        .arg(pki.path().join("ca.pem"))
        .arg(format!("https://127.0.0.1:{management_port}/roots/0"))
        .output()
        .unwrap();
    assert!(roots.status.success());
    let pebble_root = pki.path().join("pebble-root.pem");
    fs::write(&pebble_root, &roots.stdout).unwrap();
    assert_eq!(https(site.tls_port, "catmeow.berth.test", &pebble_root), serving, "HTTPS with pebble's certificate");
    let redirect = Command::new("curl")
        .args(["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", "Host: catmeow.berth.test"])
        .arg(format!("http://127.0.0.1:{}/a?b=1", site.http_port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&redirect.stdout), format!("301 https://catmeow.berth.test:{}/a?b=1", site.tls_port));
    let cert = root.join("apps/catmeow/tls/server.crt");
    assert!(cert_field(&cert, "-issuer").contains("Pebble"), "{}", cert_field(&cert, "-issuer"));
    assert!(!root.join("apps/catmeow/letsencrypt-challenges.json").exists(), "challenges are gone once issued");
    assert!(!fs::read_to_string(root.join("nginx/catmeow.conf")).unwrap().contains("acme-challenge"));

    // Ten days left is inside the window: renewed, with the same account.
    let listed = host.ok(["letsencrypt:list"]).out();
    assert!(listed.contains("catmeow") && listed.contains("true"), "{listed}");
    let serial = cert_field(&cert, "-serial");
    let renewed = host.ok(["letsencrypt:auto-renew"]).out();
    assert!(renewed.contains("catmeow: renewing"), "{renewed}");
    assert_ne!(cert_field(&cert, "-serial"), serial, "a new certificate");
    assert_eq!(fs::read(root.join("letsencrypt/account.json")).unwrap(), account, "the account is kept");
    assert_eq!(https(site.tls_port, "catmeow.berth.test", &pebble_root), serving);
    // With a one-day window it is not due: nothing changes.
    host.ok(["letsencrypt:set", "catmeow", "graceperiod", "86400"]);
    let serial = cert_field(&cert, "-serial");
    let kept = host.ok(["letsencrypt:auto-renew", "catmeow"]).out();
    assert!(kept.contains("not due"), "{kept}");
    assert_eq!(cert_field(&cert, "-serial"), serial);
    let exported = host.ok(["certs:show", "catmeow", "crt"]).out();
    assert_eq!(exported.as_bytes(), fs::read(&cert).unwrap(), "certs:show crt is the certificate served");
    host.ok(["letsencrypt:disable", "catmeow"]);
    assert_eq!(curl(site.http_port, "catmeow.berth.test", &[]), (200, serving.clone()), "plain HTTP again");

    // Port mappings: a second port serves the app, hostile ones are refused
    // before a file is written, a port nginx cannot bind changes nothing.
    let conf = || fs::read(root.join("nginx/catmeow.conf")).unwrap();
    let before = conf();
    let extra = free_port();
    for bad in ["http:80:5000;", "ftp:21:21", "http:0:5000", "http:99999:5000", "http:80:5000\n", "http:80", "https:+443:5000"] {
        let refused = host.run(["proxy:ports-add", "catmeow", bad]);
        assert_clear_failure(&refused, bad);
    }
    assert_clear_failure(&host.run(["proxy:ports-set", "catmeow", "http:8080:5000", "https:8080:5000"]), "a host port twice");
    assert_eq!(conf(), before, "refused mappings change nothing");
    let busy = TcpListener::bind(("0.0.0.0", free_port())).unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let clash = host.run(["proxy:ports-add", "catmeow", &format!("http:{busy_port}:5000")]);
    assert_clear_failure(&clash, "a port nginx cannot bind");
    assert_eq!(conf(), before, "the server block is put back");
    assert!(host.ok(["proxy:ports", "catmeow"]).out().contains(&site.http_port.to_string()));
    assert!(!host.ok(["proxy:ports", "catmeow"]).out().contains(&busy_port.to_string()));
    drop(busy);
    host.ok(["proxy:ports-add", "catmeow", &format!("http:{extra}:5000")]);
    let own = host.ok(["ports:report", "catmeow", "--ports-map"]).out();
    assert!(own.trim_end().ends_with(&format!("http:{extra}:5000")), "{own}");
    assert_eq!(curl(extra, "catmeow.berth.test", &[]), (200, serving.clone()), "the added port");
    assert_eq!(curl(site.http_port, "catmeow.berth.test", &[]), (200, serving.clone()), "the first port stays");
    let report = host.ok(["proxy:report", "catmeow"]).out();
    assert!(report.contains(&format!("http:{extra}:5000")), "{report}");
    host.ok(["proxy:ports-remove", "catmeow", &extra.to_string()]);
    assert_eq!(curl(extra, "catmeow.berth.test", &[]).0, 0, "nothing listens on the removed port");
    host.ok(["proxy:ports-clear", "catmeow"]);
    assert_eq!(curl(site.http_port, "catmeow.berth.test", &[]), (200, serving.clone()));

    // Global domains: the app answers under each; hostile ones are refused
    // and leave the settings as they were.
    let settings_before = fs::read(root.join("config.toml")).unwrap();
    for bad in ["a.test; include /etc/passwd", "*.wild.test", "a.test\n", "-a.test"] {
        assert_clear_failure(&host.run(["domains:set-global", "berth.test", bad]), bad);
    }
    assert_eq!(fs::read(root.join("config.toml")).unwrap(), settings_before);
    host.ok(["domains:set-global", "berth.test", "other.test"]);
    assert_eq!(host.ok(["domains:report-global"]).out(), "berth.test\nother.test\n");
    assert_eq!(curl(site.http_port, "catmeow.other.test", &[]), (200, serving.clone()));
    assert_eq!(curl(site.http_port, "catmeow.berth.test", &[]), (200, serving.clone()));
    host.ok(["domains:add-global", "third.test"]);
    assert_eq!(curl(site.http_port, "catmeow.third.test", &[]), (200, serving.clone()));
    host.ok(["domains:remove-global", "other.test"]);
    assert_eq!(curl(site.http_port, "catmeow.other.test", &[]).0, 404);
    assert_clear_failure(&host.run(["domains:remove-global", "other.test"]), "a global domain that is not set");
    let report = host.ok(["domains:report", "catmeow"]).out();
    assert!(report.contains("catmeow.berth.test catmeow.third.test"), "{report}");

    // Dokku's proxy and nginx controls, on the real nginx.
    host.ok(["proxy:clear-config", "catmeow"]);
    assert_eq!(curl(site.http_port, "catmeow.berth.test", &[]).0, 404, "no server block, no route");
    host.ok(["proxy:build-config", "catmeow"]);
    assert_eq!(curl(site.http_port, "catmeow.berth.test", &[]), (200, serving.clone()));
    host.ok(["nginx:validate-config", "catmeow"]);
    host.ok(["nginx:reload"]);
    host.ok(["nginx:stop"]);
    assert_eq!(curl(site.http_port, "catmeow.berth.test", &[]).0, 0, "nothing listens once nginx stops");
    host.ok(["nginx:start"]);
    assert_eq!(curl(site.http_port, "catmeow.berth.test", &[]), (200, serving.clone()), "nginx:start serves again");
    host.ok(["ps:stop", "--all"]);
    assert_ne!(curl(site.http_port, "catmeow.berth.test", &[]).0, 200, "ps:stop --all stops every app");
    host.ok(["ps:start", "--all"]);
    assert_eq!(curl(site.http_port, "catmeow.berth.test", &[]), (200, serving.clone()));
}
