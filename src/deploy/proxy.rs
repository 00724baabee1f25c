//! An app's nginx server block from its state: the names it answers to
//! (`APP.<global domain>` unless `domains:set` said otherwise, plus added
//! domains), its nginx options, and its running web containers. Written
//! after every roll and every domain or proxy change.

use std::path::Path;

use super::domain::Domain;
use super::nginx::{self, Site};
use super::processes;
use super::{DeployError, WEB_PORT};
use crate::app::App;
use crate::state::apps::{self, AppMeta};
use crate::state::settings::Settings;

/// The app's default name: `APP.<global domain>`.
pub fn default_name(settings: &Settings, app: &App) -> String {
    format!("{}.{}", app.name, settings.global_domain())
}

/// Every name the app answers to, in order, without repeats.
pub fn server_names(settings: &Settings, app: &App, meta: &AppMeta) -> Vec<String> {
    let mut names: Vec<String> = match &meta.domains {
        None => vec![default_name(settings, app)],
        Some(list) => list.iter().map(Domain::to_string).collect(),
    };
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// Writes the app's server block for these web upstreams (or the 503 page
/// saying `unavailable`), or removes it when the proxy is off or the app
/// has no names. Returns the old nginx workers' pids.
pub fn write(
    root: &Path,
    settings: &Settings,
    app: &App,
    meta: &AppMeta,
    upstreams: Vec<(std::net::Ipv4Addr, u16)>,
    unavailable: &str,
) -> Result<Vec<u32>, DeployError> {
    let names = server_names(settings, app, meta);
    if meta.proxy_disabled || names.is_empty() {
        return Ok(nginx::remove(root, settings, &app.name)?);
    }
    let tls = super::tls::has_cert(app).then(|| nginx::Tls {
        listen_port: settings.proxy.tls_listen_port,
        cert: super::tls::cert_file(app),
        key: super::tls::key_file(app),
    });
    let site = Site {
        app: &app.name,
        listen_port: settings.proxy.listen_port,
        server_names: names,
        upstreams,
        unavailable,
        options: &meta.nginx,
        tls,
    };
    Ok(nginx::apply(root, settings, &app.name, &nginx::render(&site))?)
}

/// The addresses of the app's web containers whose monitors live.
pub fn running_upstreams(root: &Path, app: &App) -> Vec<(std::net::Ipv4Addr, u16)> {
    processes::of_app(root, app)
        .into_iter()
        .filter(|p| p.process == "web" && p.is_up())
        .filter_map(|p| Some((p.state.address?.parse().ok()?, WEB_PORT)))
        .collect()
}

/// Rewrites the server block from what runs now (after a domain or proxy
/// change); waits for the old workers so the change is live on return.
pub fn refresh(root: &Path, app: &App) -> Result<(), DeployError> {
    let settings = Settings::load(root).map_err(|e| DeployError::Other(e.to_string()))?;
    let meta = apps::meta(app)?;
    let upstreams = running_upstreams(root, app);
    let why = if meta.stopped { "is stopped" } else { "has no web process running" };
    write(root, &settings, app, &meta, upstreams, why)?;
    Ok(())
}
