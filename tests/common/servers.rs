//! Peer servers a test starts (pebble, docker-registry, ...): killed when
//! the test ends, and waited for until they listen.

use std::fs;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A server process the test started; killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A CA (`ca.pem`) and a server certificate it signed for 127.0.0.1 and
/// localhost (`server.pem`, `server.key`) in `dir`, for a peer's HTTPS.
pub fn make_pki(dir: &Path) {
    let d = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let openssl = |args: &[&str]| super::push_host::run(Command::new("openssl").args(args));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=berth test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        &d("ca.key"),
        "-out",
        &d("ca.pem"),
    ]);
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", &d("server.key"), "-out", &d("server.csr")]);
    fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &d("server.csr"),
        "-CA",
        &d("ca.pem"),
        "-CAkey",
        &d("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &d("ext"),
        "-out",
        &d("server.pem"),
    ]);
}

/// A registry on 127.0.0.1 that answers GET and HEAD from a fixed table
/// of (path, content type, body): the hostile registry of the hostile
/// suite. `/v2/` answers 200; any other path 404. Returns its port.
pub fn static_registry(routes: Vec<(String, String, Vec<u8>)>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 && conn.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned();
            let mut words = line.split_whitespace();
            let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
            let path = path.split('?').next().unwrap_or_default();
            let found = match path {
                "/v2/" => Some(("application/json".to_owned(), b"{}".to_vec())),
                _ => routes.iter().find(|(p, _, _)| p == path).map(|(_, t, b)| (t.clone(), b.clone())),
            };
            let (status, kind, body) = match found {
                Some((kind, body)) => ("200 OK", kind, body),
                None => ("404 Not Found", "application/json".to_owned(), br#"{"errors":[{"code":"NOT_FOUND"}]}"#.to_vec()),
            };
            let header =
                format!("HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = conn.write_all(header.as_bytes());
            if method != "HEAD" {
                let _ = conn.write_all(&body);
            }
        }
    });
    port
}
