//! HTTP to one registry for one repository: TLS (a per-server CA file when
//! there is one), or plain HTTP on loopback when asked; auth worked out
//! once from `GET /v2/` — none, basic with the stored login, or a bearer
//! token fetched from the challenge's realm for this repository's scope.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use super::RegistryError;
use super::logins::{self, Login};

pub struct Client {
    agent: ureq::Agent,
    pub server: String,
    base: String,
    /// The Authorization header every request carries, once known.
    auth: Option<String>,
}

/// Whether `server` names this machine: 127.0.0.0/8, ::1 or localhost.
pub fn is_loopback(server: &str) -> bool {
    let host = server.rsplit_once(':').map_or(server, |(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { server });
    host == "localhost" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback()) || host == "[::1]"
}

/// `$BERTH_ROOT/registry/certs.d/SERVER/ca.crt`: a CA to trust for this server, as docker's certs.d.
pub fn ca_file(root: &Path, server: &str) -> std::path::PathBuf {
    root.join("registry").join("certs.d").join(server).join("ca.crt")
}

/// An HTTP agent for `server`. TLS trusts the system's certificate
/// authorities (where an admin installs a company CA), plus the registry's
/// own `certs.d/SERVER/ca.crt` when there is one.
pub fn agent(root: &Path, server: &str, insecure: bool) -> Result<ureq::Agent, RegistryError> {
    let builder = ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(10)).timeout_read(Duration::from_secs(300));
    if insecure {
        return Ok(builder.build());
    }
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let ca = ca_file(root, server);
    let bad = |why: String| RegistryError::BadCa { path: ca.clone(), why };
    let mut roots = rustls::RootCertStore::empty();
    // Certificates the system store holds but rustls cannot use are skipped, as curl does.
    let (_added, _skipped) = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if ca.is_file() {
        let before = roots.len();
        for cert in CertificateDer::pem_file_iter(&ca).map_err(|e| bad(e.to_string()))? {
            roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
        }
        if roots.len() == before {
            return Err(bad("no certificate in it".into()));
        }
    }
    if roots.is_empty() {
        // No system store at all: ureq's own bundled roots.
        return Ok(builder.build());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(builder.tls_config(Arc::new(config)).build())
}

/// `key="value"` pairs of a `WWW-Authenticate: Bearer ...` challenge.
fn challenge_params(challenge: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = challenge.split_once(' ').map_or("", |(_, r)| r).trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push((key, value.to_owned()));
        rest = next.trim_start_matches(',').trim();
    }
    out
}

fn basic(login: &Login) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", login.user, login.password)))
}

impl Client {
    /// A client for `repository` on `server` (`push`: with push rights),
    /// authenticated with the stored login if the registry wants one.
    pub fn connect(root: &Path, server: &str, insecure: bool, repository: &str, push: bool) -> Result<Client, RegistryError> {
        let login = logins::get(root, server);
        Client::with_login(root, server, insecure, Some(repository), push, login.as_ref())
    }

    /// As `connect`, with an explicit login (`registry:login` checks one
    /// before storing it); no repository: just the login.
    pub fn with_login(
        root: &Path,
        server: &str,
        insecure: bool,
        repository: Option<&str>,
        push: bool,
        login: Option<&Login>,
    ) -> Result<Client, RegistryError> {
        if insecure && !is_loopback(server) {
            return Err(RegistryError::InsecureRemote { server: server.to_owned() });
        }
        let base = format!("{}://{server}", if insecure { "http" } else { "https" });
        let mut client = Client { agent: agent(root, server, insecure)?, server: server.to_owned(), base, auth: None };
        client.authenticate(repository, push, login)?;
        Ok(client)
    }

    fn authenticate(&mut self, repository: Option<&str>, push: bool, login: Option<&Login>) -> Result<(), RegistryError> {
        let url = self.url("/v2/");
        let challenge = match self.agent.get(&url).call() {
            Ok(_) => return Ok(()),
            Err(ureq::Error::Status(401, response)) => response.header("www-authenticate").unwrap_or("").to_owned(),
            Err(e) => return Err(self.failed("the API check (GET /v2/)", e)),
        };
        let need_login = || RegistryError::LoginNeeded { server: self.server.clone() };
        let refused = |login: &Login| RegistryError::LoginRefused { server: self.server.clone(), user: login.user.clone() };
        let scheme = challenge.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        if scheme == "basic" {
            let login = login.ok_or_else(need_login)?;
            return match self.agent.get(&url).set("Authorization", &basic(login)).call() {
                Ok(_) => {
                    self.auth = Some(basic(login));
                    Ok(())
                }
                Err(ureq::Error::Status(401, _)) => Err(refused(login)),
                Err(e) => Err(self.failed("the login check", e)),
            };
        }
        if scheme != "bearer" {
            return Err(RegistryError::Denied {
                server: self.server.clone(),
                what: "access".into(),
                status: 401,
                detail: format!(" (an auth scheme berth does not speak: {challenge:?})"),
            });
        }
        let params = challenge_params(&challenge);
        let get = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let realm = get("realm")
            .ok_or_else(|| RegistryError::Unreachable { server: self.server.clone(), why: "its bearer challenge names no realm".into() })?;
        let mut request = self.agent.get(&realm);
        if let Some(service) = get("service") {
            request = request.query("service", &service);
        }
        if let Some(repository) = repository {
            request = request.query("scope", &format!("repository:{repository}:{}", if push { "pull,push" } else { "pull" }));
        }
        if let Some(login) = login {
            request = request.set("Authorization", &basic(login));
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(401, _)) => return Err(login.map_or_else(need_login, refused)),
            Err(e) => return Err(self.failed("a token", e)),
        };
        let body: serde_json::Value = serde_json::from_reader(std::io::Read::take(response.into_reader(), 1 << 20))
            .map_err(|e| RegistryError::Unreachable { server: self.server.clone(), why: format!("its token answer is not JSON: {e}") })?;
        let token = body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .ok_or_else(|| RegistryError::Unreachable { server: self.server.clone(), why: "its token answer holds no token".into() })?;
        self.auth = Some(format!("Bearer {token}"));
        Ok(())
    }

    /// An absolute URL for an API path, or a Location header as given.
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    pub fn request(&self, method: &str, path_or_url: &str) -> ureq::Request {
        let request = self.agent.request(method, &self.url(path_or_url));
        match &self.auth {
            Some(auth) => request.set("Authorization", auth),
            None => request,
        }
    }

    /// One sentence for a failed call: the registry's own error message
    /// when it sent one (the API's `{"errors":[{"message":..}]}`).
    pub fn failed(&self, what: &str, error: ureq::Error) -> RegistryError {
        match error {
            ureq::Error::Status(401, _) => RegistryError::LoginNeeded { server: self.server.clone() },
            ureq::Error::Status(status, response) => {
                let body: serde_json::Value =
                    serde_json::from_reader(std::io::Read::take(response.into_reader(), 1 << 20)).unwrap_or_default();
                let message = body["errors"][0]["message"].as_str().map(|m| format!(" ({m})")).unwrap_or_default();
                RegistryError::Denied { server: self.server.clone(), what: what.to_owned(), status, detail: message }
            }
            ureq::Error::Transport(t) => RegistryError::Unreachable { server: self.server.clone(), why: t.to_string() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_challenges_and_loopback() {
        let p =
            challenge_params(r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#);
        assert_eq!(p[0], ("realm".into(), "https://auth.example/token".into()));
        assert_eq!(p[2], ("scope".into(), "repository:a/b:pull,push".into()));
        assert!(is_loopback("127.0.0.1:5000") && is_loopback("localhost") && is_loopback("127.3.4.5"));
        assert!(!is_loopback("10.0.0.1:5000") && !is_loopback("registry.example.com"));
    }
}
