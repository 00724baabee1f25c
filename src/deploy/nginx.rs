//! nginx server blocks for apps: rendered from validated names and
//! addresses only, checked with `nginx -t` before nginx reloads, and put
//! back as they were when the check fails.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::app::AppName;
use crate::state::atomic;
use crate::state::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum NginxError {
    #[error("nginx refused the new configuration (the previous one stays): {0}")]
    Invalid(String),
    #[error("nginx did not reload: {0}")]
    Reload(String),
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

/// The server block routing `APP.DOMAIN` to the app's web containers.
pub fn render(app: &AppName, domain: &str, listen_port: u16, upstreams: &[(Ipv4Addr, u16)]) -> String {
    let servers: String = upstreams.iter().map(|(addr, port)| format!("    server {addr}:{port};\n")).collect();
    format!(
        "# Written by berth for app {app}; changes are overwritten on the next deploy.\n\
         upstream berth-{app} {{\n{servers}    keepalive 16;\n}}\n\
         server {{\n\
         \x20   listen {listen_port};\n\
         \x20   server_name {app}.{domain};\n\
         \x20   location / {{\n\
         \x20       proxy_pass http://berth-{app};\n\
         \x20       proxy_http_version 1.1;\n\
         \x20       proxy_set_header Connection \"\";\n\
         \x20       proxy_set_header Host $host;\n\
         \x20       proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20       proxy_set_header X-Forwarded-Proto $scheme;\n\
         \x20       proxy_set_header X-Request-Start $msec;\n\
         \x20   }}\n\
         }}\n"
    )
}

/// The server block of an app with nothing to route to: a plain 503 that
/// says why, instead of nginx's anonymous 502.
pub fn render_unavailable(app: &AppName, domain: &str, listen_port: u16, why: &str) -> String {
    format!(
        "# Written by berth for app {app}; changes are overwritten on the next deploy.\n\
         server {{\n\
         \x20   listen {listen_port};\n\
         \x20   server_name {app}.{domain};\n\
         \x20   location / {{\n\
         \x20       default_type text/plain;\n\
         \x20       return 503 \"app {app} {why}\\n\";\n\
         \x20   }}\n\
         }}\n"
    )
}

fn nginx(settings: &Settings, extra: &[&str]) -> Result<(), String> {
    let out =
        Command::new(&settings.proxy.nginx).args(["-c", &settings.proxy.nginx_conf]).args(extra).output().map_err(|e| e.to_string())?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
}

/// Installs `text` as the app's server block: written atomically, tested
/// with `nginx -t`, reloaded; on a failed test the old file comes back.
/// Returns the pids of the workers that served the old configuration.
pub fn apply(root: &Path, settings: &Settings, app: &AppName, text: &str) -> Result<Vec<u32>, NginxError> {
    let dir = conf_dir(root);
    fs::create_dir_all(&dir).map_err(|source| NginxError::Write { path: dir.clone(), source })?;
    let path = conf_file(root, app);
    let previous = fs::read(&path).ok();
    atomic::write_atomic(&path, text.as_bytes()).map_err(|e| NginxError::Write { path: path.clone(), source: e.source })?;
    if let Err(why) = nginx(settings, &["-t", "-q"]) {
        match previous {
            Some(old) => {
                let _ = atomic::write_atomic(&path, &old);
            }
            None => {
                let _ = fs::remove_file(&path);
            }
        }
        return Err(NginxError::Invalid(why));
    }
    reload(settings)
}

/// Reloads nginx and waits until new workers run the new configuration.
/// Returns the pids of the workers that served the old one.
pub fn reload(settings: &Settings) -> Result<Vec<u32>, NginxError> {
    let before = workers(settings);
    nginx(settings, &["-s", "reload"]).map_err(NginxError::Reload)?;
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
pub fn status(settings: &Settings) -> (Option<u32>, Result<(), String>) {
    let master = fs::read_to_string(&settings.proxy.pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .filter(|pid| fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "nginx"));
    (master, nginx(settings, &["-t", "-q"]))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_server_per_upstream() {
        let app = AppName::parse(std::ffi::OsStr::new("catmeow")).unwrap();
        let text = render(&app, "example.test", 8080, &[(Ipv4Addr::new(10, 88, 0, 2), 5000), (Ipv4Addr::new(10, 88, 0, 3), 5000)]);
        assert!(text.contains("server 10.88.0.2:5000;\n    server 10.88.0.3:5000;"));
        assert!(text.contains("listen 8080;") && text.contains("server_name catmeow.example.test;"));
    }
}
