//! An app's TLS certificate: `certs:add` (PEM files, or a tar holding
//! server.crt and server.key as Dokku takes it), `certs:generate`
//! (self-signed), kept as `apps/<app>/tls/server.{crt,key}` (the key
//! root-only). Checked before nginx sees them: the certificate parses, the
//! key parses (PKCS#8, PKCS#1 or SEC1), and they belong together.

use std::path::PathBuf;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

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
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
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

/// The first certificate of a PEM file (the leaf of a chain), as DER.
fn leaf_der(cert: &[u8]) -> Result<CertificateDer<'static>, TlsError> {
    CertificateDer::pem_slice_iter(cert)
        .next()
        .ok_or_else(|| TlsError::BadCert("no CERTIFICATE block".into()))?
        .map_err(|e| TlsError::BadCert(e.to_string()))
}

/// The public key (SubjectPublicKeyInfo, DER) a certificate names.
fn cert_public_key(der: &CertificateDer<'_>) -> Result<Vec<u8>, TlsError> {
    let (_, parsed) = X509Certificate::from_der(der).map_err(|e| TlsError::BadCert(e.to_string()))?;
    Ok(parsed.public_key().raw.to_vec())
}

/// The public key of a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC), DER.
fn key_public_key(key: &[u8]) -> Result<Vec<u8>, TlsError> {
    let der = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsError::BadKey(e.to_string()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| TlsError::BadKey(e.to_string()))?;
    let public = signing.public_key().ok_or_else(|| TlsError::BadKey("its kind of key is not supported".into()))?;
    Ok(public.as_ref().to_vec())
}

/// Checks a certificate and key pair and stores it for the app.
pub fn install(app: &App, cert: &[u8], key: &[u8]) -> Result<(), TlsError> {
    if cert_public_key(&leaf_der(cert)?)? != key_public_key(key)? {
        return Err(TlsError::Mismatch);
    }
    atomic::write_secret(&key_file(app), key)
        .map_err(|e| TlsError::Io(crate::state::PathIo { action: "write", path: e.path, source: e.source }))?;
    atomic::write_atomic(&cert_file(app), cert)
        .map_err(|e| TlsError::Io(crate::state::PathIo { action: "write", path: cert_file(app), source: e.source }))?;
    crate::state::events::emit(&app.root(), "post-certs-update", &[app.name.as_str()]);
    Ok(())
}

/// A self-signed certificate (ECDSA P-256) for these names (the first is
/// the subject), valid `days` from now.
pub fn generate(app: &App, names: &[String], days: u32) -> Result<(), TlsError> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, names.first().map(String::as_str).unwrap_or("localhost"));
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(days));
    let cert = params.self_signed(&key)?;
    install(app, cert.pem().as_bytes(), key.serialize_pem().as_bytes())
}

pub fn remove(app: &App) -> Result<(), TlsError> {
    if !has_cert(app) {
        return Err(TlsError::NoCert(app.name.clone()));
    }
    let dir = tls_dir(app);
    std::fs::remove_dir_all(&dir).map_err(|source| TlsError::Io(crate::state::PathIo { action: "remove", path: dir, source }))?;
    crate::state::events::emit(&app.root(), "post-certs-update", &[app.name.as_str()]);
    Ok(())
}

/// The app's certificate (the leaf), as DER.
fn stored_leaf(app: &App) -> Result<CertificateDer<'static>, TlsError> {
    if !has_cert(app) {
        return Err(TlsError::NoCert(app.name.clone()));
    }
    let pem = std::fs::read(cert_file(app))
        .map_err(|source| TlsError::Io(crate::state::PathIo { action: "read", path: cert_file(app), source }))?;
    leaf_der(&pem)
}

/// A certificate time as openssl prints it: `Nov 30 22:06:43 2026 GMT`.
fn openssl_time(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT");
    t.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_default()
}

/// Issuer, subject, validity and names of the app's certificate.
pub fn describe(app: &App) -> Result<Vec<(String, String)>, TlsError> {
    let der = stored_leaf(app)?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| TlsError::BadCert(e.to_string()))?;
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some(format!("DNS:{name}")),
                GeneralName::IPAddress(_) => Some("IP address".to_owned()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    };
    Ok(vec![
        ("issuer".into(), cert.issuer().to_string()),
        ("subject".into(), cert.subject().to_string()),
        ("notBefore".into(), openssl_time(cert.validity().not_before.to_datetime())),
        ("notAfter".into(), openssl_time(cert.validity().not_after.to_datetime())),
        ("names".into(), names),
    ])
}

/// Whether the app's certificate expires within `secs` (or has expired).
pub fn expires_within(app: &App, secs: u64) -> Result<bool, TlsError> {
    let der = stored_leaf(app)?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| TlsError::BadCert(e.to_string()))?;
    let deadline = time::OffsetDateTime::now_utc() + time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2));
    Ok(cert.validity().not_after.to_datetime() <= deadline)
}

/// The certificate's notAfter as openssl prints it.
pub fn not_after(app: &App) -> Result<String, TlsError> {
    Ok(describe(app)?.into_iter().find(|(k, _)| k == "notAfter").map(|(_, v)| v).unwrap_or_default())
}
