//! Certificates from Let's Encrypt (or any ACME server) by HTTP-01:
//! nginx answers the challenges from the app's own server block, so no
//! second web server and no downtime. The account key is kept in
//! `$BERTH_ROOT/letsencrypt/account.json` (root-only) and reused; a new
//! one is made only when the configured server changes.

use crate::model::acme::Challenge;
use crate::state::challenges;
use std::path::{Path, PathBuf};
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};

use super::{proxy, tls};
use crate::app::{App, AppName};
use crate::state::apps;
use crate::state::atomic;
use crate::state::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("app {0} answers to no name; add one with domains:add first")]
    NoNames(AppName),
    #[error("{0} is a wildcard: it needs a DNS challenge, and berth proves names over HTTP; remove it or use certs:add")]
    Wildcard(String),
    #[error("app {0} has its proxy disabled, so nginx cannot answer the challenge; run proxy:enable first")]
    ProxyDisabled(AppName),
    #[error("the ACME server at {server} failed to {step}: {source}")]
    Server {
        server: String,
        step: &'static str,
        #[source]
        source: instant_acme::Error,
    },
    #[error("the ACME server did not validate {names}: {why}")]
    Refused { names: String, why: String },
    #[error("the ACME server offered no http-01 challenge for {0}")]
    NoHttpChallenge(String),
    #[error("the ACME server sent a challenge token berth will not put into nginx: {0:?}")]
    BadToken(String),
    #[error("cannot make the key and certificate request: {0}")]
    Request(#[from] rcgen::Error),
    #[error(transparent)]
    Io(#[from] crate::state::PathIo),
    #[error("cannot serve the challenge: {0}")]
    Proxy(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Apps(#[from] apps::AppsError),
}

fn set_pending(root: &Path, app: &App, challenges: &[Challenge]) -> Result<(), AcmeError> {
    challenges::set_pending(app, challenges)
        .map_err(|e| AcmeError::Io(crate::state::PathIo { action: "write", path: e.path, source: e.source }))?;
    proxy::refresh(root, app).map_err(|e| AcmeError::Proxy(e.to_string()))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedAccount {
    server: String,
    /// The contact it was made with: another address makes another account.
    #[serde(default)]
    email: String,
    credentials: AccountCredentials,
}

fn account_file(root: &Path) -> PathBuf {
    root.join("letsencrypt").join("account.json")
}

async fn account(root: &Path, settings: &Settings) -> Result<Account, AcmeError> {
    let le = &settings.letsencrypt;
    let server_err = |step| move |source| AcmeError::Server { server: le.server.clone(), step, source };
    let builder = || {
        if le.ca_file.is_empty() { Account::builder() } else { Account::builder_with_root(&le.ca_file) }
            .map_err(server_err("set up an HTTPS client"))
    };
    let path = account_file(root);
    if let Some(saved) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<SavedAccount>(&b).ok())
        && saved.server == le.server
        && saved.email == le.email
    {
        return builder()?.from_credentials(saved.credentials).await.map_err(server_err("load the account"));
    }
    let mailto = format!("mailto:{}", le.email);
    let contact: Vec<&str> = if le.email.is_empty() { Vec::new() } else { vec![mailto.as_str()] };
    let new = NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
    let (account, credentials) = builder()?.create(&new, le.server.clone(), None).await.map_err(server_err("create an account"))?;
    let text =
        serde_json::to_vec(&SavedAccount { server: le.server.clone(), email: le.email.clone(), credentials }).expect("account serialises");
    atomic::write_secret(&path, &text)
        .map_err(|e| AcmeError::Io(crate::state::PathIo { action: "write", path: e.path, source: e.source }))?;
    Ok(account)
}

/// A new ECDSA P-256 key (PEM) and a DER certificate request for `names`.
fn key_and_request(names: &[String]) -> Result<(Vec<u8>, Vec<u8>), AcmeError> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    // The subject is a formality (ACME reads the names); CN holds 64 bytes.
    match names.iter().find(|n| n.len() <= 64) {
        Some(name) => params.distinguished_name.push(rcgen::DnType::CommonName, name.as_str()),
        None => params.distinguished_name.push(rcgen::DnType::OrganizationName, "berth"),
    }
    let request = params.serialize_request(&key)?;
    Ok((key.serialize_pem().into_bytes(), request.der().to_vec()))
}

/// Gets a certificate for every name the app answers to and installs it;
/// nginx serves it (HTTPS, HTTP redirecting) when this returns.
pub fn issue(root: &Path, settings: &Settings, app: &App, say: &mut dyn FnMut(&str)) -> Result<(), AcmeError> {
    let meta = apps::meta(app)?;
    if meta.proxy_disabled {
        return Err(AcmeError::ProxyDisabled(app.name.clone()));
    }
    let names = proxy::server_names(settings, app, &meta);
    if names.is_empty() {
        return Err(AcmeError::NoNames(app.name.clone()));
    }
    if let Some(wild) = names.iter().find(|n| n.starts_with('*')) {
        return Err(AcmeError::Wildcard(wild.clone()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| AcmeError::Io(crate::state::PathIo { action: "start", path: "an async runtime".into(), source }))?;
    let result = runtime.block_on(order(root, settings, app, &names, say));
    // Challenges are answered only while an order needs them.
    let cleared = set_pending(root, app, &[]);
    let (chain, key) = result?;
    cleared?;
    tls::install(app, chain.as_bytes(), &key)?;
    proxy::refresh(root, app).map_err(|e| AcmeError::Proxy(e.to_string()))?;
    Ok(())
}

async fn order(
    root: &Path,
    settings: &Settings,
    app: &App,
    names: &[String],
    say: &mut dyn FnMut(&str),
) -> Result<(String, Vec<u8>), AcmeError> {
    let server = &settings.letsencrypt.server;
    let server_err = |step| move |source| AcmeError::Server { server: server.clone(), step, source };
    let account = account(root, settings).await?;
    say(&format!("Ordering a certificate for {} from {server}", names.join(" ")));
    let identifiers: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await.map_err(server_err("create an order"))?;

    // First every answer into nginx, then tell the server to look.
    let mut challenges = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(server_err("list the authorizations"))?;
        if authz.status != AuthorizationStatus::Pending {
            continue;
        }
        let name = authz.identifier().to_string();
        let challenge = authz.challenge(ChallengeType::Http01).ok_or_else(|| AcmeError::NoHttpChallenge(name))?;
        let answer = challenge.key_authorization();
        challenges.push(Challenge::new(&challenge.token, answer.as_str()).ok_or_else(|| AcmeError::BadToken(challenge.token.clone()))?);
    }
    set_pending(root, app, &challenges)?;
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(server_err("list the authorizations"))?;
        if authz.status != AuthorizationStatus::Pending {
            continue;
        }
        let name = authz.identifier().to_string();
        let mut challenge = authz.challenge(ChallengeType::Http01).ok_or_else(|| AcmeError::NoHttpChallenge(name))?;
        challenge.set_ready().await.map_err(server_err("start a validation"))?;
    }
    let patience = RetryPolicy::new().initial_delay(Duration::from_millis(250)).backoff(1.5).timeout(Duration::from_secs(90));
    let status = order.poll_ready(&patience).await.map_err(server_err("validate the names"))?;
    if status != OrderStatus::Ready {
        return Err(AcmeError::Refused { names: names.join(" "), why: refusal(&mut order).await });
    }
    say("The names are validated; finalizing");
    let (key, request) = key_and_request(names)?;
    order.finalize_csr(&request).await.map_err(server_err("finalize the order"))?;
    let chain = order.poll_certificate(&patience).await.map_err(server_err("issue the certificate"))?;
    Ok((chain, key))
}

/// What the server said went wrong: the first challenge error it reports.
async fn refusal(order: &mut instant_acme::Order) -> String {
    let mut authorizations = order.authorizations();
    while let Some(Ok(authz)) = authorizations.next().await {
        for challenge in &authz.challenges {
            if let Some(problem) = &challenge.error {
                return format!("{}: {}", authz.identifier(), problem);
            }
        }
    }
    "the order became invalid".to_owned()
}

/// Whether the app's certificate is missing or expires within the renewal window.
pub fn due(settings: &Settings, app: &App) -> Result<bool, tls::TlsError> {
    if !tls::has_cert(app) {
        return Ok(true);
    }
    tls::expires_within(app, settings.letsencrypt.grace_secs())
}
