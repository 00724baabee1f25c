//! Deploys: a release's image -> new web container(s) beside the old ones
//! -> wait until they accept connections on $PORT -> nginx routes to them
//! -> the old containers stop. A deploy whose new containers never answer
//! is abandoned with the old ones untouched.

pub mod nginx;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::image::{Digest, Store};
use crate::runtime::control::{self, current_state};
use crate::runtime::store::{self as containers, ContainerDir, Status};
use crate::runtime::{ContainerConfig, ContainerId, Limits, NetworkMode, RestartPolicy};
use crate::state::config::ConfigVars;
use crate::state::releases::Release;
use crate::state::settings::Settings;

/// The port every web process listens on inside its container ($PORT).
pub const WEB_PORT: u16 = 5000;
/// The longest the old release keeps running after the switch.
pub const RETIRE_WAIT: Duration = Duration::from_secs(60);

pub const APP_LABEL: &str = "io.berth.app";
pub const RELEASE_LABEL: &str = "io.berth.release";
pub const PROCESS_LABEL: &str = "io.berth.process";

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("release v{version} has no web process; add `web: ...` to the Procfile")]
    NoWeb { version: u64 },
    #[error(
        "the new web process did not accept connections on port {port} within {secs} s; the previous release keeps serving. Its last output:\n{logs}"
    )]
    NeverBound { port: u16, secs: u64, logs: String },
    #[error("the new web process exited with code {code} while starting; the previous release keeps serving. Its last output:\n{logs}")]
    Exited { code: i32, logs: String },
    #[error(transparent)]
    Nginx(#[from] nginx::NginxError),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error("{0}")]
    Other(String),
}

/// The containers of an app (any release), by id.
pub fn app_containers(root: &Path, app: &App) -> Vec<(ContainerId, ContainerConfig)> {
    containers::list(root)
        .into_iter()
        .filter_map(|id| {
            let config = ContainerDir::new(root, &id).config().ok()?;
            (config.labels.get(APP_LABEL).map(String::as_str) == Some(app.name.as_str())).then_some((id, config))
        })
        .collect()
}

fn container_id(app: &App, process: &str, index: u32, version: u64) -> ContainerId {
    let name = app.name.as_str();
    let short = &name[..name.len().min(40)];
    ContainerId::parse(&format!("{short}.{process}.{index}.v{version}")).expect("app names and process names make valid ids")
}

fn tail_of_log(root: &Path, id: &ContainerId) -> String {
    let text = std::fs::read_to_string(ContainerDir::new(root, id).log_file()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Waits until the container accepts TCP on its address and port.
fn wait_for_port(root: &Path, id: &ContainerId, port: u16, boot_timeout: Duration) -> Result<Ipv4Addr, DeployError> {
    let paths = ContainerDir::new(root, id);
    let deadline = Instant::now() + boot_timeout;
    loop {
        let state = current_state(&paths).map_err(|e| DeployError::Other(e.to_string()))?;
        if let Some(address) = state.address.as_deref().and_then(|a| a.parse::<Ipv4Addr>().ok())
            && TcpStream::connect_timeout(&SocketAddr::from((address, port)), Duration::from_millis(200)).is_ok()
        {
            return Ok(address);
        }
        if state.status == Status::Exited || (state.restarts > 0 && state.status == Status::Restarting) {
            return Err(DeployError::Exited { code: state.last_exit_code.unwrap_or(-1), logs: tail_of_log(root, id) });
        }
        if Instant::now() > deadline {
            return Err(DeployError::NeverBound { port, secs: boot_timeout.as_secs(), logs: tail_of_log(root, id) });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The app's config vars as a release records them.
pub fn config_snapshot(app: &App) -> Result<BTreeMap<String, String>, DeployError> {
    let vars = ConfigVars::load(&app.env_file()).map_err(|e| DeployError::Other(e.to_string()))?;
    Ok(vars.0.iter().map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned())).collect())
}

/// Everything an app runs and routes, gone: its containers, its nginx
/// server block (nginx reloaded) and its image tags (`store:gc` frees them).
pub fn teardown(root: &Path, app: &App) -> Result<(), DeployError> {
    for (id, _) in app_containers(root, app) {
        control::remove(root, &id, true)?;
    }
    let conf = nginx::conf_file(root, &app.name);
    if conf.exists() {
        std::fs::remove_file(&conf).map_err(|e| DeployError::Other(format!("cannot remove {}: {e}", conf.display())))?;
        let settings = Settings::load(root).map_err(|e| DeployError::Other(e.to_string()))?;
        nginx::reload(&settings)?;
    }
    let store = Store::open(root).map_err(|e| DeployError::Other(e.to_string()))?;
    let repository = format!("berth/app-{}", app.name);
    for (tag, _) in store.tags().map_err(|e| DeployError::Other(e.to_string()))? {
        if let Ok(name) = tag.parse::<crate::image::ImageRef>()
            && name.repository() == repository
        {
            store.remove_tag(&name).map_err(|e| DeployError::Other(e.to_string()))?;
        }
    }
    Ok(())
}

/// A new release of the current image (after a config change), deployed
/// and recorded. `None` when the app was never deployed: nothing to restart.
pub fn redeploy_current(root: &Path, app: &App, description: &str, say: &mut dyn FnMut(&str)) -> Result<Option<String>, DeployError> {
    let Some(current) = crate::state::releases::latest(&app.dir) else { return Ok(None) };
    let release = Release {
        version: current.version + 1,
        description: description.to_owned(),
        config_vars: config_snapshot(app)?,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ..current
    };
    let url = deploy(root, app, &release, say)?;
    crate::state::releases::record(&app.dir, &release).map_err(|e| DeployError::Other(e.to_string()))?;
    say(&format!("Released v{}: {description}", release.version));
    Ok(Some(url))
}

/// Starts `release` beside what runs, switches nginx, retires the old.
pub fn deploy(root: &Path, app: &App, release: &Release, say: &mut dyn FnMut(&str)) -> Result<String, DeployError> {
    let settings = Settings::load(root).map_err(|e| DeployError::Other(e.to_string()))?;
    if !release.process_types.contains_key("web") {
        return Err(DeployError::NoWeb { version: release.version });
    }
    let store = Store::open(root).map_err(|e| DeployError::Other(e.to_string()))?;
    let digest: Digest =
        release.image_digest.parse().map_err(|e: crate::image::digest::InvalidDigest| DeployError::Other(e.to_string()))?;
    let image = store.image_by_digest(&digest).map_err(|e| DeployError::Other(e.to_string()))?;
    let vars = ConfigVars::load(&app.env_file()).map_err(|e| DeployError::Other(e.to_string()))?;
    let mut env = image.config.config().as_ref().and_then(|c| c.env().clone()).unwrap_or_default();
    for (key, value) in &vars.0 {
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key.as_str()));
        env.push(format!("{key}={}", String::from_utf8_lossy(value)));
    }
    env.push(format!("PORT={WEB_PORT}"));

    let old: Vec<ContainerId> = app_containers(root, app).into_iter().map(|(id, _)| id).collect();
    let id = container_id(app, "web", 1, release.version);
    if ContainerDir::new(root, &id).exists() {
        // A redeploy of the same release (rollback to itself): start afresh.
        control::remove(root, &id, true)?;
    }
    let config = ContainerConfig {
        id: id.clone(),
        name: "web.1".into(),
        image: release.image.clone(),
        image_digest: release.image_digest.clone(),
        args: vec!["/app/.berth/launcher".into(), "web".into()],
        env,
        cwd: "/app".into(),
        uid: 1000,
        gid: 1000,
        network: NetworkMode::Bridge,
        limits: Limits::default(),
        restart: RestartPolicy::default(),
        stop_timeout_secs: 30,
        labels: BTreeMap::from([
            (APP_LABEL.to_owned(), app.name.to_string()),
            (RELEASE_LABEL.to_owned(), release.version.to_string()),
            (PROCESS_LABEL.to_owned(), "web".to_owned()),
        ]),
        created_at: release.created_at.clone(),
        mounts: Vec::new(),
        readonly_root: false,
    };
    say(&format!("Starting web.1 of v{}", release.version));
    control::create(root, &config)?;
    let started = control::start(root, &id)
        .map_err(DeployError::from)
        .and_then(|_| wait_for_port(root, &id, WEB_PORT, Duration::from_secs(settings.deploy.boot_timeout_secs)));
    let address = match started {
        Ok(address) => address,
        Err(e) => {
            let _ = control::remove(root, &id, true);
            return Err(e);
        }
    };
    say(&format!("web.1 answers on {address}:{WEB_PORT}"));
    let domain = settings.global_domain();
    let text = nginx::render(&app.name, &domain, settings.proxy.listen_port, &[(address, WEB_PORT)]);
    let old_workers = match nginx::apply(root, &settings, &app.name, &text) {
        Ok(workers) => workers,
        Err(e) => {
            let _ = control::remove(root, &id, true);
            return Err(e.into());
        }
    };
    // Old nginx workers may still route requests to the old containers:
    // retire those only when the workers are gone (Dokku's wait-to-retire).
    nginx::wait_for_old_workers(&settings, &old_workers, RETIRE_WAIT);
    for old_id in old.into_iter().filter(|o| *o != id) {
        say(&format!("Retiring {old_id}"));
        let _ = control::stop(root, &old_id);
        let _ = control::remove(root, &old_id, true);
    }
    let port = if settings.proxy.listen_port == 80 { String::new() } else { format!(":{}", settings.proxy.listen_port) };
    Ok(format!("http://{}.{domain}{port}", app.name))
}
