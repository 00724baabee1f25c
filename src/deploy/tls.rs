//! An app's TLS certificate: `certs:add` (PEM files, or a tar holding
//! server.crt and server.key as Dokku takes it), `certs:generate`
//! (self-signed), kept as `apps/<app>/tls/server.{crt,key}` (the key
//! root-only). Checked with Debian's openssl before nginx sees them: the
//! certificate parses, the key parses, and they belong together.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::app::App;
use crate::state::atomic;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the certificate is not a PEM X.509 certificate: {0}")]
    BadCert(String),
    #[error("the key is not a PEM private key: {0}")]
    BadKey(String),
    #[error("the key does not belong to the certificate")]
    Mismatch,
    #[error("openssl failed: {0}")]
    Openssl(String),
    #[error("app {0} has no certificate")]
    NoCert(crate::app::AppName),
    #[error(transparent)]
    Io(#[from] crate::state::PathIo),
}

pub fn tls_dir(app: &App) -> PathBuf {
    app.dir.join("tls")
}

pub fn cert_file(app: &App) -> PathBuf {
    tls_dir(app).join("server.crt")
}

pub fn key_file(app: &App) -> PathBuf {
    tls_dir(app).join("server.key")
}

pub fn has_cert(app: &App) -> bool {
    cert_file(app).is_file() && key_file(app).is_file()
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(if input.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    if let Some(bytes) = input {
        let _ = child.stdin.take().expect("piped").write_all(bytes);
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() { Ok(out.stdout) } else { Err(String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("").to_owned()) }
}

/// Checks a certificate and key pair and stores it for the app.
pub fn install(app: &App, cert: &[u8], key: &[u8]) -> Result<(), TlsError> {
    let cert_key = openssl(&["x509", "-noout", "-pubkey"], Some(cert)).map_err(TlsError::BadCert)?;
    let key_pub = openssl(&["pkey", "-pubout"], Some(key)).map_err(TlsError::BadKey)?;
    if cert_key != key_pub {
        return Err(TlsError::Mismatch);
    }
    atomic::write_secret(&key_file(app), key)
        .map_err(|e| TlsError::Io(crate::state::PathIo { action: "write", path: e.path, source: e.source }))?;
    atomic::write_atomic(&cert_file(app), cert)
        .map_err(|e| TlsError::Io(crate::state::PathIo { action: "write", path: cert_file(app), source: e.source }))?;
    Ok(())
}

/// A self-signed certificate for these names (the first is the subject),
/// valid `days`.
pub fn generate(app: &App, names: &[String], days: u32) -> Result<(), TlsError> {
    let work = tempfile::tempdir()
        .map_err(|source| TlsError::Io(crate::state::PathIo { action: "create", path: std::env::temp_dir(), source }))?;
    let (cert, key) = (work.path().join("server.crt"), work.path().join("server.key"));
    let subject = format!("/CN={}", names.first().map(String::as_str).unwrap_or("localhost"));
    let san = format!("subjectAltName={}", names.iter().map(|n| format!("DNS:{n}")).collect::<Vec<_>>().join(","));
    let days = days.to_string();
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let (cert_path, key_path) = (path(&cert), path(&key));
    openssl(
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", &days, "-subj", &subject, "-addext", &san, "-keyout",
            &key_path, "-out", &cert_path,
        ],
        None,
    )
    .map_err(TlsError::Openssl)?;
    let read =
        |p: &Path| std::fs::read(p).map_err(|source| TlsError::Io(crate::state::PathIo { action: "read", path: p.to_owned(), source }));
    install(app, &read(&cert)?, &read(&key)?)
}

pub fn remove(app: &App) -> Result<(), TlsError> {
    if !has_cert(app) {
        return Err(TlsError::NoCert(app.name.clone()));
    }
    let dir = tls_dir(app);
    std::fs::remove_dir_all(&dir).map_err(|source| TlsError::Io(crate::state::PathIo { action: "remove", path: dir, source }))
}

/// Issuer, subject, expiry and names of the app's certificate, as openssl prints them.
pub fn describe(app: &App) -> Result<Vec<(String, String)>, TlsError> {
    if !has_cert(app) {
        return Err(TlsError::NoCert(app.name.clone()));
    }
    let cert = std::fs::read(cert_file(app))
        .map_err(|source| TlsError::Io(crate::state::PathIo { action: "read", path: cert_file(app), source }))?;
    let out = openssl(&["x509", "-noout", "-issuer", "-subject", "-startdate", "-enddate", "-ext", "subjectAltName"], Some(&cert))
        .map_err(TlsError::Openssl)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let mut fields = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((k, v)) = line.split_once('=') {
            fields.push((k.trim().to_owned(), v.trim().to_owned()));
        } else if line.contains("Subject Alternative Name") {
            fields.push(("names".to_owned(), lines.next().unwrap_or("").trim().to_owned()));
        }
    }
    Ok(fields)
}

/// Whether the app's certificate expires within `secs` (or has expired).
pub fn expires_within(app: &App, secs: u64) -> Result<bool, TlsError> {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-checkend", &secs.to_string(), "-in"])
        .arg(cert_file(app))
        .output()
        .map_err(|e| TlsError::Openssl(format!("cannot run openssl: {e}")))?;
    // -checkend exits 1 for "will expire"; a certificate it cannot read says so on stderr.
    match out.status.code() {
        Some(0) => Ok(false),
        Some(1) if out.stderr.is_empty() => Ok(true),
        _ => Err(TlsError::BadCert(String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("").to_owned())),
    }
}

/// The certificate's notAfter as openssl prints it.
pub fn not_after(app: &App) -> Result<String, TlsError> {
    Ok(describe(app)?.into_iter().find(|(k, _)| k == "notAfter").map(|(_, v)| v).unwrap_or_default())
}
