//! nginx server blocks for apps: rendered from validated names and
//! addresses only, checked with `nginx -t` before nginx reloads, and put
//! back as they were when the check fails.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::app::AppName;
use crate::model::acme::Challenge;
pub use crate::model::site::SiteOptions;
use crate::state::atomic;
use crate::state::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum NginxError {
    #[error("nginx refused the new configuration (the previous one stays): {0}")]
    Invalid(String),
    #[error("nginx did not reload: {0}")]
    Reload(String),
    #[error("nginx did not {action}: {why}")]
    Control { action: &'static str, why: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn conf_dir(root: &Path) -> PathBuf {
    root.join("nginx")
}

pub fn conf_file(root: &Path, app: &AppName) -> PathBuf {
    conf_dir(root).join(format!("{app}.conf"))
}

/// What an app's server blocks say: the names it answers to, the stable
/// address of its web containers (or why it has none), and one block per
/// listener.
pub struct Site<'a> {
    /// The berth root: the app's default log files live under it.
    pub root: &'a Path,
    pub app: &'a AppName,
    pub server_names: Vec<String>,
    /// The app's web vip (see `runtime::balancer`); none: a plain 503 saying
    /// `unavailable`. The block names only this address, so it stays the
    /// same whichever containers stand behind it.
    pub upstream: Option<Ipv4Addr>,
    /// With no upstream: the reason a plain 503 gives ("is stopped").
    pub unavailable: &'a str,
    /// Listen on IPv6 too (the host has it).
    pub ipv6: bool,
    pub options: &'a SiteOptions,
    pub listeners: Vec<Listener>,
    /// ACME HTTP-01 answers served on the plain-HTTP listeners.
    pub challenges: Vec<Challenge>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listener {
    /// Plain HTTP on `port`, forwarded to `container` of each web container.
    Http { port: u16, container: u16 },
    /// HTTPS (HTTP/2 on) with the app's certificate.
    Https { port: u16, container: u16, cert: PathBuf, key: PathBuf },
    /// Plain HTTP on `port` that sends clients to HTTPS on `https_port`.
    Redirect { port: u16, https_port: u16 },
}

/// Where the app's own nginx logs go unless `nginx:set` says otherwise.
pub fn log_dir(root: &Path) -> PathBuf {
    root.join("logs/nginx")
}

/// The app's access and error log files: `nginx:set`'s paths, else
/// `logs/nginx/APP-access.log` and `APP-error.log` (Dokku's names).
pub fn log_files(root: &Path, app: &AppName, o: &SiteOptions) -> (String, String) {
    let default = |kind: &str| log_dir(root).join(format!("{app}-{kind}.log")).display().to_string();
    (o.access_log.clone().unwrap_or_else(|| default("access")), o.error_log.clone().unwrap_or_else(|| default("error")))
}

/// `nginx:set`'s options and the app's log files as directives.
fn option_directives(root: &Path, app: &AppName, o: &SiteOptions) -> String {
    let (access, error) = log_files(root, app, o);
    [
        ("client_max_body_size", &o.client_max_body_size),
        ("proxy_read_timeout", &o.proxy_read_timeout),
        ("proxy_connect_timeout", &o.proxy_connect_timeout),
        ("proxy_send_timeout", &o.proxy_send_timeout),
        ("access_log", &Some(access)),
        ("error_log", &Some(error)),
    ]
    .iter()
    .filter_map(|(directive, value)| value.as_ref().map(|v| format!("    {directive} {v};\n")))
    .collect()
}

/// The ACME answers, as exact-match locations.
fn challenge_locations(challenges: &[Challenge]) -> String {
    challenges
        .iter()
        .map(|c| {
            format!(
                "    location = /.well-known/acme-challenge/{} {{\n        default_type text/plain;\n        return 200 \"{}\";\n    }}\n",
                c.token(),
                c.key_authorization()
            )
        })
        .collect()
}

/// nginx variables may not hold '-'; app names hold no '_', so this is one-to-one.
fn variable_name(app: &AppName) -> String {
    format!("berth_{}_connection", app.as_str().replace('-', "_"))
}

/// `location /`: to the app's vip on `container`, or a plain 503 saying
/// why there is none. A vip with no container behind it refuses, and
/// nginx's 502 becomes a 503 that says so. Each request opens its own
/// connection (no upstream keep-alive), so a switch of the containers
/// behind the vip applies to the very next request.
fn forward(site: &Site, container: u16) -> String {
    let app = site.app;
    let Some(vip) = site.upstream else {
        let why = site.unavailable;
        return format!("    location / {{\n        default_type text/plain;\n        return 503 \"app {app} {why}\\n\";\n    }}\n");
    };
    format!(
        "    location / {{\n\
         \x20       proxy_pass http://{vip}:{container};\n\
         \x20       proxy_http_version 1.1;\n\
         \x20       proxy_set_header Upgrade $http_upgrade;\n\
         \x20       proxy_set_header Connection ${connection};\n\
         \x20       proxy_set_header Host $http_host;\n\
         \x20       proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20       proxy_set_header X-Forwarded-Proto $scheme;\n\
         \x20       proxy_set_header X-Forwarded-Port $server_port;\n\
         \x20       proxy_set_header X-Forwarded-Host $host;\n\
         \x20       proxy_set_header X-Request-Start $msec;\n\
         \x20       error_page 502 = @no_web;\n\
         \x20   }}\n\
         \x20   location @no_web {{\n\
         \x20       default_type text/plain;\n\
         \x20       return 503 \"app {app} has no web process running\\n\";\n\
         \x20   }}\n",
        connection = variable_name(app),
    )
}

/// WebSockets: `Connection: upgrade` to the app when the client asks for
/// one, else `close`.
fn upgrade_map(site: &Site) -> String {
    if site.upstream.is_none() {
        return String::new();
    }
    format!("map $http_upgrade ${} {{\n    default upgrade;\n    '' close;\n}}\n", variable_name(site.app))
}

fn listen(site: &Site, port: u16, extra: &str) -> String {
    let v6 = if site.ipv6 { format!("    listen [::]:{port}{extra};\n") } else { String::new() };
    format!("    listen {port}{extra};\n{v6}")
}

/// The app's server blocks. Every value in them was validated into a
/// type (names, domains, addresses, ports, tokens) or checked by `nginx:set`.
pub fn render(site: &Site) -> String {
    let names = site.server_names.join(" ");
    let settings = option_directives(site.root, site.app, site.options);
    let challenges = challenge_locations(&site.challenges);
    let mut text = format!("# Written by berth for app {}; changes are overwritten on the next deploy.\n", site.app);
    text.push_str(&upgrade_map(site));
    for listener in &site.listeners {
        let block = match listener {
            Listener::Http { port, container } => {
                format!("{}    server_name {names};\n{challenges}{settings}{}", listen(site, *port, ""), forward(site, *container))
            }
            Listener::Redirect { port, https_port } => {
                let to = if *https_port == 443 { String::new() } else { format!(":{https_port}") };
                format!(
                    "{}    server_name {names};\n{challenges}    location / {{\n        return 301 https://$host{to}$request_uri;\n    }}\n",
                    listen(site, *port, "")
                )
            }
            Listener::Https { port, container, cert, key } => format!(
                "{}    server_name {names};\n    ssl_certificate {};\n    ssl_certificate_key {};\n    ssl_protocols TLSv1.2 TLSv1.3;\n{settings}{}",
                listen(site, *port, " ssl http2"),
                cert.display(),
                key.display(),
                forward(site, *container)
            ),
        };
        text.push_str(&format!("server {{\n{block}}}\n"));
    }
    text
}

/// Removes the app's server block (proxy disabled, app destroyed) and
/// reloads nginx; returns the old workers' pids. The block stays removed
/// whatever nginx says.
pub fn remove(root: &Path, settings: &Settings, app: &AppName) -> Result<Vec<u32>, NginxError> {
    let path = conf_file(root, app);
    if !path.exists() {
        return Ok(Vec::new());
    }
    fs::remove_file(&path).map_err(|source| NginxError::Write { path: path.clone(), source })?;
    check_all(root, settings, None)?;
    reload(settings)
}

/// Tests nginx's whole configuration; when it fails, every other block
/// that fails on its own is moved aside (to `nginx-broken/`), so one
/// app's broken block (a certificate deleted, a hand edit, an orphan)
/// fails only its own changes, never another app's.
fn check_all(root: &Path, settings: &Settings, own: Option<&Path>) -> Result<(), NginxError> {
    if nginx(settings, &["-t", "-q"]).is_ok() {
        return Ok(());
    }
    for block in blocks(root) {
        if Some(block.as_path()) != own && check_alone(root, settings, &block).is_err() {
            set_aside(root, &block);
        }
    }
    nginx(settings, &["-t", "-q"]).map_err(|why| NginxError::Invalid(why.0))
}

/// Checks the whole configuration (setting aside blocks that fail on their
/// own) and reloads; returns the blocks set aside.
pub fn check_and_reload(root: &Path, settings: &Settings) -> Result<Vec<PathBuf>, NginxError> {
    let before = blocks(root);
    check_all(root, settings, None)?;
    let after = blocks(root);
    reload(settings)?;
    Ok(before.into_iter().filter(|b| !after.contains(b)).collect())
}

/// The server block files berth's nginx includes.
pub fn blocks(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(conf_dir(root))
        .map(|dir| dir.filter_map(|e| Some(e.ok()?.path())).filter(|p| p.extension().is_some_and(|x| x == "conf")).collect())
        .unwrap_or_default();
    found.sort();
    found
}

/// Moves a block out of nginx's sight, keeping it for whoever wants to see
/// what was wrong with it.
pub fn set_aside(root: &Path, block: &Path) {
    let aside = root.join("nginx-broken");
    let _ = fs::create_dir_all(&aside);
    let name = block.file_name().map(|n| n.to_owned()).unwrap_or_default();
    tracing::warn!(block = %block.display(), "nginx cannot load this server block; moved to {}", aside.display());
    eprintln!(" !     nginx cannot load {}; moved it to {}", block.display(), aside.display());
    if fs::rename(block, aside.join(&name)).is_err() {
        let _ = fs::remove_file(block);
    }
}

/// `nginx -t` of one block inside a minimal configuration of its own: its
/// syntax, its directives and its certificate files, apart from every
/// other app's block.
fn check_alone(root: &Path, settings: &Settings, block: &Path) -> Result<(), NginxSays> {
    let dir = tempfile::Builder::new()
        .prefix("nginx-check-")
        .tempdir_in(root)
        .map_err(|e| NginxSays(format!("cannot make a directory to check the block in: {e}")))?;
    let d = dir.path().display();
    let conf = format!(
        "pid {d}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  server_names_hash_bucket_size 128;\n  include {};\n}}\n",
        block.display()
    );
    let main = dir.path().join("nginx.conf");
    fs::write(&main, conf).map_err(|e| NginxSays(format!("cannot write {}: {e}", main.display())))?;
    let out = Command::new(&settings.proxy.nginx)
        .args(["-t", "-q", "-c"])
        .arg(&main)
        .output()
        .map_err(|e| NginxSays(format!("cannot run {}: {e}", settings.proxy.nginx)))?;
    if out.status.success() { Ok(()) } else { Err(NginxSays(String::from_utf8_lossy(&out.stderr).trim().to_owned())) }
}

/// What nginx said when it refused (its own stderr), or why it could not run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NginxSays(pub String);

fn nginx(settings: &Settings, extra: &[&str]) -> Result<(), NginxSays> {
    let out = Command::new(&settings.proxy.nginx)
        .args(["-c", &settings.proxy.nginx_conf])
        .args(extra)
        .output()
        .map_err(|e| NginxSays(format!("cannot run {}: {e}", settings.proxy.nginx)))?;
    if out.status.success() { Ok(()) } else { Err(NginxSays(String::from_utf8_lossy(&out.stderr).trim().to_owned())) }
}

/// Installs `text` as the app's server block: written atomically, tested
/// with `nginx -t` on its own and then with the rest (other blocks that
/// fail on their own are set aside), reloaded; on a failed test the old
/// file comes back. An unchanged block is left alone: no test, no reload.
/// Returns the pids of the workers that served the old configuration.
pub fn apply(root: &Path, settings: &Settings, app: &AppName, text: &str) -> Result<Vec<u32>, NginxError> {
    for dir in [conf_dir(root), log_dir(root)] {
        fs::create_dir_all(&dir).map_err(|source| NginxError::Write { path: dir.clone(), source })?;
    }
    let path = conf_file(root, app);
    let previous = fs::read(&path).ok();
    if previous.as_deref() == Some(text.as_bytes()) {
        // Routine changes (deploys, scaling, restarts) end here: the block
        // names the app's vip, not its containers, and nginx is left alone.
        return Ok(Vec::new());
    }
    tracing::info!(app = %app, "writing the server block and reloading nginx");
    atomic::write_atomic(&path, text.as_bytes()).map_err(|e| NginxError::Write { path: path.clone(), source: e.source })?;
    let put_back = || match &previous {
        Some(old) => {
            let _ = atomic::write_atomic(&path, old);
        }
        None => {
            let _ = fs::remove_file(&path);
        }
    };
    if let Err(why) = check_alone(root, settings, &path) {
        put_back();
        return Err(NginxError::Invalid(why.0));
    }
    if let Err(e) = check_all(root, settings, Some(&path)) {
        put_back();
        return Err(e);
    }
    match reload(settings) {
        Ok(old_workers) => Ok(old_workers),
        Err(e) => {
            // nginx kept its old configuration (a port it cannot bind, say):
            // the file goes back too, so the next reload does not trip on it.
            put_back();
            let _ = reload(settings);
            Err(e)
        }
    }
}

/// Reloads nginx and waits until new workers run the new configuration.
/// Returns the pids of the workers that served the old one.
/// A stopped nginx has nothing to reload: it reads the configuration
/// (already tested with `nginx -t`) when it starts.
pub fn reload(settings: &Settings) -> Result<Vec<u32>, NginxError> {
    if master(settings).is_none() {
        tracing::warn!(pid_file = %settings.proxy.pid_file, "nginx is not running; it reads the new configuration when it starts");
        return Ok(Vec::new());
    }
    let before = workers(settings);
    nginx(settings, &["-s", "reload"]).map_err(|e| NginxError::Reload(e.0))?;
    // nginx answers a reload signal at once and applies it later; a config
    // it cannot apply (a port it cannot bind) only shows as no new workers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let now = workers(settings);
        // Until an old worker starts shutting down it still accepts new
        // connections with the old configuration; wait for that too.
        if now.iter().any(|w| !before.contains(w)) && before.iter().all(|w| !now.contains(w) || shutting_down(*w)) {
            return Ok(before);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Err(NginxError::Reload(format!("no new nginx workers after the reload; see nginx's error log ({})", settings.proxy.nginx_conf)))
}

/// Waits (at most `limit`) until the old workers have finished their
/// requests and exited: until then they may still route to old upstreams.
pub fn wait_for_old_workers(settings: &Settings, old: &[u32], limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        let now = workers(settings);
        if !old.iter().any(|w| now.contains(w)) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Whether an nginx worker has closed its listening sockets to exit (its
/// title says so; nginx sets it as it closes them).
fn shutting_down(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline")).map_or(true, |c| c.is_empty() || String::from_utf8_lossy(&c).contains("shutting down"))
}

/// nginx's state for `report`: the master's pid if it runs, and whether
/// the configuration passes `nginx -t` (with nginx's complaint if not).
pub fn status(settings: &Settings) -> (Option<u32>, Result<(), NginxSays>) {
    (master(settings), nginx(settings, &["-t", "-q"]))
}

/// The running nginx master's pid, from its pid file.
fn master(settings: &Settings) -> Option<u32> {
    fs::read_to_string(&settings.proxy.pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .filter(|pid| fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "nginx"))
}

/// The pids of nginx's worker processes (children of the master).
fn workers(settings: &Settings) -> Vec<u32> {
    let Some(master) = fs::read_to_string(&settings.proxy.pid_file).ok().and_then(|p| p.trim().parse::<u32>().ok()) else {
        return Vec::new();
    };
    fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .map(|text| text.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

/// `nginx -t` on the whole configuration, or (`clean`) with the server
/// blocks that fail on their own set aside first. Returns what was set aside.
pub fn validate(root: &Path, settings: &Settings, clean: bool) -> Result<Vec<PathBuf>, NginxError> {
    if !clean {
        return nginx(settings, &["-t", "-q"]).map(|()| Vec::new()).map_err(|why| NginxError::Invalid(why.0));
    }
    let before = blocks(root);
    check_all(root, settings, None)?;
    let after = blocks(root);
    Ok(before.into_iter().filter(|b| !after.contains(b)).collect())
}

/// Starts nginx with berth's configuration unless it runs; returns its pid.
pub fn start(settings: &Settings) -> Result<u32, NginxError> {
    if let Some(pid) = master(settings) {
        return Ok(pid);
    }
    nginx(settings, &["-t", "-q"]).map_err(|why| NginxError::Invalid(why.0))?;
    nginx(settings, &[]).map_err(|why| NginxError::Control { action: "start", why: why.0 })?;
    wait_for_master(settings, true, "start")?;
    master(settings).ok_or(NginxError::Control { action: "start", why: "no master process".into() })
}

/// Stops nginx gracefully (`-s quit`: requests in flight finish).
pub fn stop(settings: &Settings) -> Result<(), NginxError> {
    if master(settings).is_none() {
        return Ok(());
    }
    nginx(settings, &["-s", "quit"]).map_err(|why| NginxError::Control { action: "stop", why: why.0 })?;
    wait_for_master(settings, false, "stop")
}

fn wait_for_master(settings: &Settings, running: bool, action: &'static str) -> Result<(), NginxError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while master(settings).is_some() != running {
        if std::time::Instant::now() > deadline {
            return Err(NginxError::Control { action, why: "it did not within 30 s".into() });
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_listener_through_the_apps_vip() {
        let app = AppName::parse(std::ffi::OsStr::new("cat-meow")).unwrap();
        let options = SiteOptions { client_max_body_size: Some("10m".into()), ..SiteOptions::default() };
        let site = Site {
            root: Path::new("/var/lib/berth"),
            app: &app,
            server_names: vec!["cat-meow.example.test".into(), "cats.example.org".into()],
            upstream: Some(Ipv4Addr::new(10, 88, 0, 9)),
            unavailable: "is stopped",
            ipv6: false,
            options: &options,
            listeners: vec![Listener::Http { port: 8080, container: 5000 }, Listener::Http { port: 8081, container: 6000 }],
            challenges: Vec::new(),
        };
        let text = render(&site);
        assert!(text.contains("proxy_pass http://10.88.0.9:5000;") && text.contains("proxy_pass http://10.88.0.9:6000;"), "{text}");
        assert!(!text.contains("keepalive") && !text.contains("[::]"), "{text}");
        assert!(text.contains("map $http_upgrade $berth_cat_meow_connection {\n    default upgrade;\n    '' close;\n}"), "{text}");
        assert!(text.contains("proxy_set_header Connection $berth_cat_meow_connection;"), "{text}");
        assert!(text.contains("proxy_set_header X-Forwarded-Port $server_port;") && text.contains("X-Forwarded-Host $host;"));
        assert!(text.contains("return 503 \"app cat-meow has no web process running\\n\";"), "{text}");
        assert!(text.contains("listen 8080;") && text.contains("listen 8081;"));
        assert!(text.contains("server_name cat-meow.example.test cats.example.org;"));
        assert!(text.contains("client_max_body_size 10m;"));
        assert!(text.contains("access_log /var/lib/berth/logs/nginx/cat-meow-access.log;"), "{text}");
        assert!(text.contains("error_log /var/lib/berth/logs/nginx/cat-meow-error.log;"), "{text}");
        let stopped = render(&Site { upstream: None, ..site });
        assert!(stopped.contains("return 503 \"app cat-meow is stopped\\n\";") && !stopped.contains("map "), "{stopped}");
        let challenge = Challenge::new("tok-EN_1", "tok-EN_1.thumb").unwrap();
        let secure = render(&Site {
            root: Path::new("/var/lib/berth"),
            app: &app,
            server_names: vec!["a.test".into()],
            upstream: Some(Ipv4Addr::new(10, 88, 0, 9)),
            unavailable: "is stopped",
            ipv6: true,
            options: &options,
            listeners: vec![
                Listener::Redirect { port: 80, https_port: 8443 },
                Listener::Https { port: 8443, container: 5000, cert: "/c.crt".into(), key: "/c.key".into() },
            ],
            challenges: vec![challenge],
        });
        assert!(secure.contains("return 301 https://$host:8443$request_uri;") && secure.contains("listen 8443 ssl http2;"), "{secure}");
        assert!(secure.contains("listen [::]:8443 ssl http2;") && secure.contains("listen [::]:80;"), "{secure}");
        assert!(secure.contains("ssl_certificate /c.crt;") && secure.contains("proxy_pass http://10.88.0.9:5000;"));
        assert!(secure.contains("location = /.well-known/acme-challenge/tok-EN_1 {") && secure.contains("return 200 \"tok-EN_1.thumb\";"));
    }
}
