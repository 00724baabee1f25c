//! An app's process containers: finding them by their labels, making a new
//! one for (release, process type, index), and waiting until a web one
//! accepts connections.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{APP_LABEL, DeployError, INDEX_LABEL, PROCESS_LABEL, RELEASE_LABEL, WEB_PORT};
use crate::app::App;
use crate::runtime::control::{self, current_state};
use crate::runtime::store::{self as containers, ContainerDir, ContainerState, Status};
use crate::runtime::{ContainerConfig, ContainerId, Limits, NetworkMode};
use crate::state::apps::AppMeta;
use crate::state::releases::Release;
use crate::state::settings::{LimitSettings, Settings};

/// One container of an app, as its labels and shim describe it.
pub struct Process {
    pub id: ContainerId,
    pub config: ContainerConfig,
    pub state: ContainerState,
    pub process: String,
    pub index: u32,
    pub release: u64,
}

impl Process {
    /// Its shim lives: running, or waiting out a restart backoff.
    pub fn is_up(&self) -> bool {
        self.state.shim_pid.is_some()
    }
}

/// Every container of the app (any release), ordered by type and index.
pub fn of_app(root: &Path, app: &App) -> Vec<Process> {
    let mut found: Vec<Process> = containers::list(root)
        .into_iter()
        .filter_map(|id| {
            let paths = ContainerDir::new(root, &id);
            let config = paths.config().ok()?;
            if config.labels.get(APP_LABEL).map(String::as_str) != Some(app.name.as_str()) {
                return None;
            }
            let state = current_state(&paths).ok()?;
            let label = |key: &str| config.labels.get(key).cloned().unwrap_or_default();
            let (process, index, release) =
                (label(PROCESS_LABEL), label(INDEX_LABEL).parse().unwrap_or(1), label(RELEASE_LABEL).parse().unwrap_or(0));
            Some(Process { id, config, state, process, index, release })
        })
        .collect();
    found.sort_by(|a, b| (a.process != "web", &a.process, a.index, a.release).cmp(&(b.process != "web", &b.process, b.index, b.release)));
    found
}

/// The app's one-off containers (`run:detached`), running or ended.
pub fn one_offs(root: &Path, app: &App) -> Vec<ContainerId> {
    containers::list(root)
        .into_iter()
        .filter(|id| {
            ContainerDir::new(root, id)
                .config()
                .is_ok_and(|c| c.labels.get(super::ONE_OFF_LABEL).map(String::as_str) == Some(app.name.as_str()))
        })
        .collect()
}

/// `catmeow.web.1.v3`, or `catmeow.web.1.v3-2` when a restart of the same
/// release needs a second one beside the first.
fn fresh_id(root: &Path, app: &App, process: &str, index: u32, version: u64) -> ContainerId {
    let name = app.name.as_str();
    let base = format!("{}.{}.{index}.v{version}", &name[..name.len().min(32)], &process[..process.len().min(16)]);
    let mut candidate = base.clone();
    let mut n = 1;
    while ContainerDir::new(root, &ContainerId::parse(&candidate).expect("app and process names make valid ids")).exists() {
        n += 1;
        candidate = format!("{base}-{n}");
    }
    ContainerId::parse(&candidate).expect("app and process names make valid ids")
}

/// The environment of a process: the image's, the app's config vars over
/// it, and PORT.
pub fn environment(image_env: Vec<String>, vars: &crate::state::config::ConfigVars) -> Vec<String> {
    let mut env = image_env;
    for (key, value) in &vars.0 {
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key.as_str()));
        env.push(format!("{key}={}", String::from_utf8_lossy(value)));
    }
    env.retain(|e| !e.starts_with("PORT="));
    env.push(format!("PORT={WEB_PORT}"));
    env
}

/// A process type's limits: its own, each unset one from the app-wide
/// ones, memory and CPU else from the host's defaults (`[limits]`).
pub fn limits_for(host: &LimitSettings, meta: &AppMeta, process: &str) -> Limits {
    let all = meta.limits.get("_default").cloned().unwrap_or_default();
    let own = meta.limits.get(process).cloned().unwrap_or_default();
    Limits {
        memory_bytes: own.memory_bytes.or(all.memory_bytes).or(host.container_memory_bytes),
        cpus: own.cpus.or(all.cpus).or(host.container_cpus),
        pids: own.pids.or(all.pids),
        memory_reservation_bytes: own.memory_reservation_bytes.or(all.memory_reservation_bytes),
        cpu_reservation: own.cpu_reservation.or(all.cpu_reservation),
    }
}

/// Creates (does not start) the container for one process of a release.
/// The caller's settings come along so a roll of many containers reads them once.
#[allow(clippy::too_many_arguments)]
pub fn create(
    root: &Path,
    settings: &Settings,
    app: &App,
    meta: &AppMeta,
    release: &Release,
    env: &[String],
    process: &str,
    index: u32,
) -> Result<ContainerId, DeployError> {
    let id = fresh_id(root, app, process, index, release.version);
    let limits = limits_for(&settings.limits, meta, process);
    let uid = crate::state::apps::uid(root, app)?;
    let config = ContainerConfig {
        id: id.clone(),
        name: format!("{process}.{index}"),
        image: release.image.clone(),
        image_digest: release.image_digest.clone(),
        args: vec!["/app/.berth/launcher".into(), process.to_owned()],
        env: env.to_vec(),
        cwd: "/app".into(),
        uid,
        gid: uid,
        network: NetworkMode::Bridge,
        limits,
        // `meta` is the one in effect (the roll applied the host's globals).
        restart: meta.restart_policy.unwrap_or_default(),
        stop_timeout_secs: meta.stop_timeout_secs.unwrap_or(30),
        labels: BTreeMap::from([
            (APP_LABEL.to_owned(), app.name.to_string()),
            (RELEASE_LABEL.to_owned(), release.version.to_string()),
            (PROCESS_LABEL.to_owned(), process.to_owned()),
            (INDEX_LABEL.to_owned(), index.to_string()),
        ]),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        mounts: meta.storage.clone(),
        readonly_root: false,
        terminal: false,
        log_max_bytes: meta.log_max_bytes,
        isolated: false,
    };
    control::create(root, &config)?;
    Ok(id)
}

/// The last lines a container printed, for a failed start.
pub fn tail_of_log(root: &Path, id: &ContainerId) -> String {
    let text = std::fs::read_to_string(ContainerDir::new(root, id).log_file()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Waits until the container accepts TCP on its address and port.
pub fn wait_for_port(root: &Path, id: &ContainerId, port: u16, boot_timeout: Duration) -> Result<Ipv4Addr, DeployError> {
    let paths = ContainerDir::new(root, id);
    let deadline = Instant::now() + boot_timeout;
    loop {
        let state = current_state(&paths)?;
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
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sources the app's .profile.d as the launcher does, then runs the
/// command given after it: one-off processes see the same PATH as web.
const ONE_OFF_SHELL: &str = "for f in /app/.profile.d/*.sh; do [ -f \"$f\" ] && . \"$f\"; done; exec \"$@\"";

/// A one-off container for `run`/`run:detached`: the release's image and
/// environment, the app's limits, never restarted. It is labelled apart
/// from the formation, so deploys and scaling leave it alone.
pub fn one_off(
    root: &Path,
    app: &App,
    meta: &AppMeta,
    release: &Release,
    env: Vec<String>,
    command: &[String],
    terminal: bool,
) -> Result<ContainerConfig, DeployError> {
    let uid = crate::state::apps::uid(root, app)?;
    let name = app.name.as_str();
    let id = loop {
        let suffix = &ContainerId::random().to_string()[..6];
        let id = ContainerId::parse(&format!("{}.run.{suffix}", &name[..name.len().min(40)])).expect("app names make valid ids");
        if !ContainerDir::new(root, &id).exists() {
            break id;
        }
    };
    // A Procfile type's name runs that process's command (Dokku's `run APP
    // console`); one word with spaces is a shell command line.
    let args = match command {
        [name] if name != "release" && release.process_types.contains_key(name) => vec!["/app/.berth/launcher".to_owned(), name.clone()],
        _ => {
            let command: Vec<String> = match command {
                [line] if line.contains(char::is_whitespace) => vec!["bash".into(), "-c".into(), line.clone()],
                _ => command.to_vec(),
            };
            let mut args = vec!["/bin/bash".to_owned(), "-c".into(), ONE_OFF_SHELL.into(), "run".into()];
            args.extend(command);
            args
        }
    };
    let mut env = env;
    env.push("HOME=/app".into());
    if terminal {
        env.push(format!(
            "TERM={}",
            std::env::var("TERM").ok().filter(|t| t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')).unwrap_or("xterm".into())
        ));
    }
    Ok(ContainerConfig {
        id: id.clone(),
        name: "run".into(),
        image: release.image.clone(),
        image_digest: release.image_digest.clone(),
        args,
        env,
        cwd: "/app".into(),
        uid,
        gid: uid,
        network: NetworkMode::Bridge,
        limits: limits_for(&Settings::load(root).map(|s| s.limits).unwrap_or_default(), meta, "run"),
        restart: crate::runtime::RestartPolicy::No,
        stop_timeout_secs: meta.stop_timeout_secs.unwrap_or(30),
        labels: BTreeMap::from([
            (super::ONE_OFF_LABEL.to_owned(), app.name.to_string()),
            (RELEASE_LABEL.to_owned(), release.version.to_string()),
        ]),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        mounts: meta.storage.clone(),
        readonly_root: false,
        terminal,
        log_max_bytes: meta.log_max_bytes,
        isolated: false,
    })
}
