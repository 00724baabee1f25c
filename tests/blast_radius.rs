//! No app can hurt another through the proxy: a renamed app leaves nothing
//! under its old name, a destroyed one leaves nothing at all, broken server
//! blocks (a deleted certificate, an orphan, a syntax error) fail only
//! themselves and are healed by `proxy:rebuild` and a boot's `ps:restore`;
//! and a WebSocket stays open through nginx, over ws:// and wss://, while
//! another app redeploys.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::push_host::{PushHost, checkout_of, curl, git, text};
use common::site::is_root;

/// Everything on the host that still carries `name`: server blocks,
/// containers, network namespaces, mounts, addresses.
fn leftovers(root: &Path, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    if root.join(format!("nginx/{name}.conf")).exists() {
        found.push(format!("server block nginx/{name}.conf"));
    }
    for entry in fs::read_dir(root.join("containers")).into_iter().flatten().flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        if id.starts_with(&format!("{name}.")) {
            found.push(format!("container {id}"));
        }
    }
    for entry in fs::read_dir("/run/netns").into_iter().flatten().flatten() {
        let ns = entry.file_name().to_string_lossy().into_owned();
        if ns.contains(&format!("-{name}.")) {
            found.push(format!("network namespace {ns}"));
        }
    }
    let mounts = fs::read_to_string("/proc/mounts").unwrap();
    let containers = root.join("containers").display().to_string();
    for line in mounts.lines().filter(|l| l.contains(&containers) && l.contains(&format!("/{name}."))) {
        found.push(format!("mount {line}"));
    }
    let addresses = fs::read_to_string(root.join("network/addresses.json")).unwrap_or_default();
    if addresses.contains(&format!("\"{name}.")) || addresses.contains(&format!("web.{name}\"")) {
        found.push(format!("an address: {addresses}"));
    }
    let shims = Command::new("pgrep").args(["-f", &format!("berth shim {name}\\.")]).output().unwrap();
    if !shims.stdout.is_empty() {
        found.push(format!("shim processes {}", String::from_utf8_lossy(&shims.stdout).trim()));
    }
    found
}

/// The app's page over HTTPS on the TLS port (its self-signed certificate).
fn https_page(site: &PushHost, name: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-k", "-m", "5", "--resolve", &format!("{name}:{}:127.0.0.1", site.tls_port)])
        .arg(format!("https://{name}:{}/", site.tls_port))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root: sshd, nginx and containers need root"]
fn one_app_cannot_break_another() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = PushHost::new("bt-blast", "10.237.1.0/24");
    let host = &site.site.host;
    let root = host.path().to_owned();
    let work = tempfile::tempdir().unwrap();
    let checkout = checkout_of("catmeow", work.path());
    let serving = "Cat dreams meow..\n".to_owned();
    for app in ["kitten", "tomcat"] {
        let pushed = site.push_app(&checkout, app, "main");
        assert!(pushed.status.success(), "{}", text(&pushed));
    }

    // Rename a running app with a certificate: nothing stays under the old
    // name, the new name answers over HTTPS, and a destroy leaves nothing.
    host.ok(["certs:generate", "kitten"]);
    assert_eq!(https_page(&site, "kitten.berth.test"), serving);
    host.ok(["apps:rename", "kitten", "lion"]);
    assert_eq!(leftovers(&root, "kitten"), Vec::<String>::new(), "nothing under the old name");
    assert_eq!(https_page(&site, "lion.berth.test"), serving, "the renamed app answers over HTTPS");
    assert_eq!(curl(site.http_port, "kitten.berth.test", &[]).0, 404);
    host.ok(["apps:destroy", "lion", "--force"]);
    assert_eq!(leftovers(&root, "lion"), Vec::<String>::new(), "nothing after a destroy");

    // Break the proxy three ways: a block whose certificate is gone, an
    // orphan block, a block with a syntax error.
    let break_blocks = || {
        let (cert, key) = (root.join("gone.crt"), root.join("gone.key"));
        let block = format!(
            "server {{\n    listen {};\n    server_name ghost.berth.test;\n    ssl_certificate {};\n    ssl_certificate_key {};\n}}\n",
            site.tls_port,
            cert.display(),
            key.display()
        );
        fs::write(root.join("nginx/ghost.conf"), block).unwrap();
        fs::write(root.join("nginx/orphan.conf"), "server {\n    listen 1;\n    server_name orphan.berth.test;\n}\n").unwrap();
        fs::write(root.join("nginx/typo.conf"), "server {\n    listen\n").unwrap();
        let check = Command::new("nginx").args(["-t", "-q", "-c"]).arg(root.join("nginx.conf")).output().unwrap();
        assert!(!check.status.success(), "the blocks are broken");
    };
    break_blocks();

    // Another app still deploys (its first deploy writes a block), scales,
    // redeploys and is destroyed.
    let pushed = site.push_app(&checkout, "puma", "main");
    assert!(pushed.status.success(), "a first deploy beside broken blocks: {}", text(&pushed));
    assert_eq!(site.page_of("puma"), serving);
    host.ok(["ps:scale", "tomcat", "web=2"]);
    fs::write(checkout.join("CHANGES"), "again\n").unwrap();
    git(&checkout, &["add", "CHANGES"]);
    git(&checkout, &["commit", "-q", "-m", "again"]);
    let pushed = site.push_app(&checkout, "tomcat", "main");
    assert!(pushed.status.success(), "{}", text(&pushed));
    assert_eq!(site.page_of("tomcat"), serving);
    host.ok(["apps:destroy", "puma", "--force"]);
    assert_eq!(leftovers(&root, "puma"), Vec::<String>::new());

    // proxy:rebuild --all heals the host, and so does a boot's ps:restore.
    for heal in [&["proxy:rebuild", "--all"][..], &["ps:restore"][..]] {
        break_blocks();
        let healed = host.ok(heal.iter().copied()).out();
        let check = Command::new("nginx").args(["-t", "-q", "-c"]).arg(root.join("nginx.conf")).output().unwrap();
        assert!(check.status.success(), "{heal:?} repaired nginx: {healed} {}", String::from_utf8_lossy(&check.stderr));
        for gone in ["ghost", "orphan", "typo"] {
            assert!(!root.join(format!("nginx/{gone}.conf")).exists(), "{heal:?} set {gone}.conf aside");
        }
        assert_eq!(site.page_of("tomcat"), serving);
    }

    websockets(&site, work.path(), &checkout);
}

/// A stdlib-only WebSocket echo app: the handshake and text frames.
const ECHO_APP: &str = r#"import base64, hashlib, os, socket, threading

def frames(conn):
    while True:
        head = conn.recv(2)
        if len(head) < 2:
            return
        length = head[1] & 127
        if length == 126:
            length = int.from_bytes(conn.recv(2), "big")
        mask = conn.recv(4)
        data = b""
        while len(data) < length:
            data += conn.recv(length - len(data))
        yield bytes(b ^ mask[i % 4] for i, b in enumerate(data))

def serve(conn):
    request = b""
    while b"\r\n\r\n" not in request:
        request += conn.recv(4096)
    headers = dict(l.split(": ", 1) for l in request.decode().split("\r\n")[1:] if ": " in l)
    key = headers.get("Upgrade") and headers.get("Sec-WebSocket-Key")
    if not key:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nplain")
        return conn.close()
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    conn.sendall(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n".encode())
    for message in frames(conn):
        reply = b"echo " + message
        conn.sendall(bytes([0x81, len(reply)]) + reply)

server = socket.create_server(("0.0.0.0", int(os.environ["PORT"])))
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

/// A client that speaks the same small WebSocket: opens one connection,
/// then echoes each line of its stdin through it and prints the answers.
const CLIENT: &str = r#"import base64, os, socket, ssl, sys
host, port, name, secure = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "wss"
conn = socket.create_connection((host, port))
if secure:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = context.wrap_socket(conn, server_hostname=name)
key = base64.b64encode(os.urandom(16)).decode()
conn.sendall(f"GET /chat HTTP/1.1\r\nHost: {name}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
answer = b""
while b"\r\n\r\n" not in answer:
    answer += conn.recv(1)
print(answer.split(b"\r\n")[0].decode(), flush=True)
for line in sys.stdin:
    data = line.strip().encode()
    mask = os.urandom(4)
    conn.sendall(bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
    head = conn.recv(2)
    reply = conn.recv(head[1] & 127) if len(head) == 2 else b"(closed)"
    print(reply.decode(), flush=True)
"#;

/// ws:// and wss:// through nginx to the echo app; each connection stays
/// open and keeps echoing while another app redeploys.
fn websockets(site: &PushHost, work: &Path, other: &Path) {
    let app = work.join("echo");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("echo.py"), ECHO_APP).unwrap();
    fs::write(app.join("requirements.txt"), "").unwrap();
    fs::write(app.join("Procfile"), "web: python echo.py\n").unwrap();
    git(&app, &["init", "-q", "-b", "main"]);
    git(&app, &["add", "."]);
    git(&app, &["commit", "-q", "-m", "echo"]);
    let pushed = site.push_app(&app, "echo", "main");
    assert!(pushed.status.success(), "{}", text(&pushed));
    site.site.host.ok(["certs:generate", "echo"]);
    let client_file = work.join("client.py");
    fs::write(&client_file, CLIENT).unwrap();
    let open = |scheme: &'static str, port: u16| {
        let mut child = Command::new("python3")
            .arg(&client_file)
            .args(["127.0.0.1", &port.to_string(), "echo.berth.test", scheme])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let status = lines.next().unwrap().unwrap();
        assert!(status.contains("101"), "{scheme}: {status}");
        (scheme, child, lines)
    };
    // wss:// while the app has a certificate; plain HTTP then redirects (as
    // on Dokku), so ws:// once it is removed. The wss:// connection stays.
    let mut clients = vec![open("wss", site.tls_port)];
    site.site.host.ok(["certs:remove", "echo"]);
    clients.push(open("ws", site.http_port));
    type Client = (&'static str, std::process::Child, std::io::Lines<BufReader<std::process::ChildStdout>>);
    let say = |clients: &mut Vec<Client>, word: &str| {
        for (scheme, child, lines) in clients.iter_mut() {
            writeln!(child.stdin.as_mut().unwrap(), "{word}").unwrap();
            assert_eq!(lines.next().unwrap().unwrap(), format!("echo {word}"), "{scheme}");
        }
    };
    say(&mut clients, "before");
    fs::write(other.join("CHANGES"), "once more\n").unwrap();
    git(other, &["commit", "-q", "-am", "once more"]);
    let pushed = site.push_app(other, "tomcat", "main");
    assert!(pushed.status.success(), "{}", text(&pushed));
    say(&mut clients, "after");
    for (_, mut child, ..) in clients {
        drop(child.stdin.take());
        child.wait().unwrap();
    }
}
