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

fn nginx(settings: &Settings, extra: &[&str]) -> Result<(), String> {
    let out =
        Command::new(&settings.proxy.nginx).args(["-c", &settings.proxy.nginx_conf]).args(extra).output().map_err(|e| e.to_string())?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
}

/// Installs `text` as the app's server block: written atomically, tested
/// with `nginx -t`, reloaded; on a failed test the old file comes back.
pub fn apply(root: &Path, settings: &Settings, app: &AppName, text: &str) -> Result<(), NginxError> {
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
    nginx(settings, &["-s", "reload"]).map_err(NginxError::Reload)
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
