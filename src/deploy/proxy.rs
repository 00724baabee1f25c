//! An app's nginx server blocks from its state: the names it answers to
//! (`APP.<each global domain>` unless `domains:set` said otherwise, plus
//! added domains), its port mappings and certificate, its nginx options,
//! pending ACME challenges, and the stable address of its web processes.
//! Written when any of those change; a deploy that only changes which
//! containers run leaves it, and nginx, alone.

use std::net::Ipv4Addr;
use std::path::Path;

use super::nginx::{self, Listener, Site};
use super::processes;
use super::{DeployError, WEB_PORT};
use crate::app::App;
use crate::model::domain::Domain;
use crate::model::ports::{PortMap, Scheme};
use crate::runtime::balancer;
use crate::state::apps::{self, AppMeta};
use crate::state::settings::Settings;

/// The app's default names: `APP.<each global domain>`.
pub fn default_names(settings: &Settings, app: &App) -> Vec<String> {
    settings.global_domains().iter().map(|d| format!("{}.{d}", app.name)).collect()
}

/// The app's port mappings: `proxy:ports-set`, else http on the listen
/// port to $PORT.
pub fn port_maps(settings: &Settings, meta: &AppMeta) -> Vec<PortMap> {
    // Without names, an app cannot share the listen port: it has its own.
    let port = meta.vhost_port.filter(|_| meta.vhost_disabled).unwrap_or(settings.proxy.listen_port);
    meta.ports.clone().unwrap_or_else(|| vec![PortMap { scheme: Scheme::Http, host: port, container: WEB_PORT }])
}

/// The server blocks for these mappings. With a certificate, an app with
/// no https mapping gets one on the TLS port (as Dokku adds 443 with
/// `certs:add`) and its http ports redirect there; without one, https
/// mappings wait for a certificate.
pub fn listeners(settings: &Settings, app: &App, maps: &[PortMap]) -> Vec<Listener> {
    let has_cert = super::tls::has_cert(app);
    let mut maps = maps.to_vec();
    if has_cert && !maps.iter().any(|m| m.scheme == Scheme::Https) {
        let container = maps.first().map_or(WEB_PORT, |m| m.container);
        maps.push(PortMap { scheme: Scheme::Https, host: settings.proxy.tls_listen_port, container });
    }
    let https_port = maps.iter().find(|m| m.scheme == Scheme::Https).map(|m| m.host).filter(|_| has_cert);
    maps.iter()
        .filter_map(|m| match (m.scheme, https_port) {
            (Scheme::Http, Some(https_port)) => Some(Listener::Redirect { port: m.host, https_port }),
            (Scheme::Http, None) => Some(Listener::Http { port: m.host, container: m.container }),
            (Scheme::Https, Some(_)) => Some(Listener::Https {
                port: m.host,
                container: m.container,
                cert: super::tls::cert_file(app),
                key: super::tls::key_file(app),
            }),
            (Scheme::Https, None) => None,
        })
        .collect()
}

/// Every name the app answers to, in order, without repeats.
pub fn server_names(settings: &Settings, app: &App, meta: &AppMeta) -> Vec<String> {
    if meta.vhost_disabled {
        // nginx's catch-all: any host name, on the app's own ports.
        return vec!["_".to_owned()];
    }
    let mut names: Vec<String> = match &meta.domains {
        None => default_names(settings, app),
        Some(list) => list.iter().map(Domain::to_string).collect(),
    };
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// Where a user reaches the app: its first name on its first listener
/// that serves it (HTTPS when there is a certificate); none when nginx
/// does not route to it.
pub fn url(settings: &Settings, app: &App, meta: &AppMeta) -> Option<String> {
    let name = server_names(settings, app, meta).into_iter().next().filter(|_| !meta.proxy_disabled)?;
    // A vhost-disabled app answers on its port under any name: the host's.
    let name = if name == "_" { settings.global_domains().first().cloned().unwrap_or_else(|| "127.0.0.1".into()) } else { name };
    let port = |p: u16, default: u16| if p == default { String::new() } else { format!(":{p}") };
    listeners(settings, app, &port_maps(settings, meta)).into_iter().find_map(|l| match l {
        Listener::Https { port: p, .. } => Some(format!("https://{name}{}", port(p, 443))),
        Listener::Http { port: p, .. } => Some(format!("http://{name}{}", port(p, 80))),
        Listener::Redirect { .. } => None,
    })
}

/// The stable address of the app's web processes (made on first use).
pub fn web_vip(root: &Path, settings: &Settings, app: &App) -> Result<Ipv4Addr, DeployError> {
    Ok(balancer::vip(root, settings, &vip_name(&app.name))?)
}

/// The balancer's name for the app's web vip.
pub fn vip_name(app: &crate::app::AppName) -> String {
    format!("web.{app}")
}

/// Whether this host has IPv6 beyond loopback (then nginx listens there too).
fn host_has_ipv6() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6").is_ok_and(|t| t.lines().any(|l| !l.trim_end().ends_with(" lo")))
}

/// Writes the app's server block, forwarding to `upstream` (the app's web
/// vip) or answering the 503 page saying `unavailable`; removes it when the
/// proxy is off or the app has no names. nginx reloads only when the block
/// changed. Returns the old nginx workers' pids (none without a reload).
pub fn write(
    root: &Path,
    settings: &Settings,
    app: &App,
    meta: &AppMeta,
    upstream: Option<Ipv4Addr>,
    unavailable: &str,
) -> Result<Vec<u32>, DeployError> {
    let names = server_names(settings, app, meta);
    if meta.proxy_disabled || names.is_empty() {
        return Ok(nginx::remove(root, settings, &app.name)?);
    }
    let options = meta.clone().with_globals(settings).nginx;
    let site = Site {
        root,
        app: &app.name,
        server_names: names,
        upstream,
        unavailable,
        ipv6: host_has_ipv6(),
        options: &options,
        listeners: listeners(settings, app, &port_maps(settings, meta)),
        challenges: crate::state::challenges::pending(app),
    };
    Ok(nginx::apply(root, settings, &app.name, &nginx::render(&site))?)
}

/// The addresses of the app's web containers whose monitors live.
pub fn running_addresses(root: &Path, app: &App) -> Vec<Ipv4Addr> {
    processes::of_app(root, app)
        .into_iter()
        .filter(|p| p.process == "web" && p.is_up())
        .filter_map(|p| p.state.address?.parse().ok())
        .collect()
}

/// Rewrites the server block from the app's state (after a domain,
/// certificate or proxy change); waits for the old workers so the change
/// is live on return.
pub fn refresh(root: &Path, app: &App) -> Result<(), DeployError> {
    let settings = Settings::load(root)?;
    let meta = apps::meta(app)?;
    let upstream = if meta.stopped { None } else { Some(web_vip(root, &settings, app)?) };
    write(root, &settings, app, &meta, upstream, "is stopped")?;
    Ok(())
}

/// `proxy:rebuild`: the blocks of `apps` written again from their state;
/// with `all`, blocks that belong to no app (left by a crash or a hand) are
/// set aside too. nginx then checks the whole and reloads, setting aside
/// any block that still fails on its own. Returns the blocks set aside.
pub fn rebuild(root: &Path, apps: &[App], all: bool) -> Result<Vec<std::path::PathBuf>, DeployError> {
    let settings = Settings::load(root)?;
    let mut aside = Vec::new();
    if all {
        let owners: Vec<std::path::PathBuf> = apps.iter().map(|a| nginx::conf_file(root, &a.name)).collect();
        for block in nginx::blocks(root).into_iter().filter(|b| !owners.contains(b)) {
            nginx::set_aside(root, &block);
            aside.push(block);
        }
    }
    for app in apps.iter().filter(|a| crate::state::releases::latest(&a.dir).is_some()) {
        let meta = apps::meta(app)?;
        // Rewritten even when unchanged: a block edited by hand comes back.
        let _ = std::fs::remove_file(nginx::conf_file(root, &app.name));
        let upstream = if meta.stopped { None } else { Some(web_vip(root, &settings, app)?) };
        if let Err(e) = write(root, &settings, app, &meta, upstream, "is stopped") {
            tracing::warn!(app = %app.name, "cannot rebuild the server block: {e}");
            aside.push(nginx::conf_file(root, &app.name));
        }
    }
    aside.extend(nginx::check_and_reload(root, &settings)?);
    Ok(aside)
}
