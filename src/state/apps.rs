//! Apps on this host: create, list, rename, destroy, and locked config changes.
//!
//! Creating, renaming and destroying take the host-wide `apps.lock` and the
//! app's own lock; config changes take only the app's lock, so changes to
//! different apps never wait for each other.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::{self, WriteError, sync_dir};
use super::config::{ConfigError, ConfigVars};
use super::lock::{FileLock, LockError};
use crate::app::{App, AppName, apps_dir};
use crate::model::container::BindMount;
use crate::model::container::{Limits, RestartPolicy};
use crate::model::repo_path::RepoPath;

#[derive(Debug, thiserror::Error)]
pub enum AppsError {
    #[error("app {0} does not exist")]
    NotFound(AppName),
    #[error("app {0} already exists")]
    Exists(AppName),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Grants(#[from] super::grants::GrantsError),
    #[error("no app uid is free between {APP_UID_BASE} and {APP_UID_END}")]
    NoUid,
    #[error(transparent)]
    Io(#[from] crate::state::PathIo),
    #[error("app metadata {path} is corrupt: {source}")]
    Meta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> AppsError + 'a {
    move |source| AppsError::Io(crate::state::PathIo { action, path: path.to_owned(), source })
}

/// What berth records about an app besides its config vars.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppMeta {
    pub created_at: String,
    /// The branch whose pushes deploy; main or master when unset.
    #[serde(default)]
    pub deploy_branch: Option<String>,
    /// `git:set APP rev-env-var|keep-git-dir|archive-max-*|source-image`.
    #[serde(default)]
    pub git: crate::model::git_props::GitProps,
    /// How many containers each process type runs (`ps:scale`); web is 1
    /// and the others 0 when not set.
    #[serde(default)]
    pub formation: BTreeMap<String, u32>,
    /// Scheduled jobs that do not run on schedule (`cron:suspend`), by id;
    /// `*` stands for all of them.
    #[serde(default)]
    pub cron_suspended: std::collections::BTreeSet<String>,
    /// `cron:set APP maintenance`: no job of the app runs on schedule.
    #[serde(default)]
    pub cron_maintenance: Option<bool>,
    /// Stopped on purpose (`ps:stop`): `ps:restore` leaves it stopped.
    #[serde(default)]
    pub stopped: bool,
    /// `apps:lock`: pushes and image deploys are refused until `apps:unlock`.
    #[serde(default)]
    pub deploy_locked: bool,
    /// `ps:set APP restart-policy`; Dokku's on-failure:10 when unset.
    #[serde(default)]
    pub restart_policy: Option<RestartPolicy>,
    /// `ps:set APP stop-timeout-seconds`; 30 when unset.
    #[serde(default)]
    pub stop_timeout_secs: Option<u64>,
    /// `resource:limit`, by process type; the key `_default` covers all types.
    #[serde(default)]
    pub limits: BTreeMap<String, Limits>,
    /// `releases:set APP keep N`: how many releases keep their images.
    #[serde(default)]
    pub keep_releases: Option<u32>,
    /// `storage:mount`: host paths bound into every container of the app.
    #[serde(default)]
    pub storage: Vec<BindMount>,
    #[serde(default)]
    pub checks: ChecksSettings,
    /// The names the app answers to; `None`: `APP.<global domain>`.
    #[serde(default)]
    pub domains: Option<Vec<crate::model::domain::Domain>>,
    /// `domains:disable`: nginx serves the app by port, whatever the host name.
    #[serde(default)]
    pub vhost_disabled: bool,
    /// The port nginx serves a vhost-disabled app on when it maps none itself.
    #[serde(default)]
    pub vhost_port: Option<u16>,
    /// `proxy:disable`: nginx does not route to the app.
    #[serde(default)]
    pub proxy_disabled: bool,
    /// `nginx:set` options for the app's server block.
    #[serde(default)]
    pub nginx: crate::model::site::SiteOptions,
    /// `proxy:ports-set`: what nginx listens on; `None`: http on the
    /// listen port (and https with a certificate) to $PORT.
    #[serde(default)]
    pub ports: Option<Vec<crate::model::ports::PortMap>>,
    /// `letsencrypt:enable`: the certificate comes from ACME and is renewed.
    #[serde(default)]
    pub letsencrypt: bool,
    /// `letsencrypt:set APP email|server|graceperiod`.
    #[serde(default)]
    pub letsencrypt_props: crate::model::acme::LetsencryptProps,
    /// `registry:set`: where `registry:push` (and push-on-release) sends images.
    #[serde(default)]
    pub registry: AppRegistry,
    /// `logs:set APP max-size`: where its containers' logs rotate (0: never).
    #[serde(default)]
    pub log_max_bytes: Option<u64>,
    /// `builder:set APP build-dir`: the subdirectory of the push it builds from.
    #[serde(default)]
    pub build_dir: Option<RepoPath>,
    /// `builder:set APP selected`: only herokuish (buildpacks) is berth's.
    #[serde(default)]
    pub builder_selected: Option<String>,
    /// `buildpacks:set-property APP stack`: the stack it builds on.
    #[serde(default)]
    pub stack: Option<String>,
    /// `app-json:set APP appjson-path`: where app.json is, inside the build dir.
    #[serde(default)]
    pub appjson_path: Option<RepoPath>,
}

impl AppMeta {
    /// The meta as deploys use it: the host's `--global` settings fill
    /// what the app leaves unset. Never written back.
    pub fn with_globals(mut self, globals: &crate::state::settings::Settings) -> AppMeta {
        self.deploy_branch = self.deploy_branch.or_else(|| globals.git.deploy_branch.clone());
        self.git = self.git.over(&globals.git.props);
        self.cron_maintenance = self.cron_maintenance.or(globals.cron.maintenance);
        self.stack = self.stack.or_else(|| globals.buildpacks.stack.clone());
        self.restart_policy = self.restart_policy.or_else(|| globals.ps.restart_policy.as_deref().and_then(|p| p.parse().ok()));
        self.stop_timeout_secs = self.stop_timeout_secs.or(globals.ps.stop_timeout_seconds);
        self.checks.wait_to_retire_secs = self.checks.wait_to_retire_secs.or(globals.checks.wait_to_retire);
        self.registry.server = self.registry.server.or_else(|| globals.registry.server.clone());
        self.log_max_bytes = self.log_max_bytes.or(globals.logs.max_bytes);
        self.build_dir = self.build_dir.or_else(|| globals.builder.build_dir.clone());
        self.builder_selected = self.builder_selected.or_else(|| globals.builder.selected.clone());
        self.appjson_path = self.appjson_path.or_else(|| globals.app_json.appjson_path.clone());
        let (own, host) = (&mut self.nginx, &globals.nginx);
        for (mine, default) in [
            (&mut own.client_max_body_size, &host.client_max_body_size),
            (&mut own.proxy_read_timeout, &host.proxy_read_timeout),
            (&mut own.proxy_connect_timeout, &host.proxy_connect_timeout),
            (&mut own.proxy_send_timeout, &host.proxy_send_timeout),
            (&mut own.access_log, &host.access_log),
            (&mut own.error_log, &host.error_log),
        ] {
            if mine.is_none() {
                mine.clone_from(default);
            }
        }
        self
    }
}

/// An app's meta with the host's global settings applied (what deploys use).
pub fn meta_in_effect(app: &App, globals: &crate::state::settings::Settings) -> Result<AppMeta, AppsError> {
    Ok(meta(app)?.with_globals(globals))
}

/// An app's registry settings (Dokku's `registry:set`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRegistry {
    /// `host[:port]` of the registry.
    pub server: Option<String>,
    /// The repository there; the app's name when unset.
    pub image_repo: Option<String>,
    /// Push every new release.
    pub push_on_release: bool,
    /// Plain HTTP (loopback only).
    pub insecure: bool,
}

/// `checks:*`: which process types are checked before traffic moves, and
/// how long old containers may finish their requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChecksSettings {
    /// Zero downtime off: old containers stop before new ones start.
    #[serde(default)]
    pub disabled: std::collections::BTreeSet<String>,
    /// Started beside the old ones, switched without waiting for checks.
    #[serde(default)]
    pub skipped: std::collections::BTreeSet<String>,
    /// The longest old containers keep serving after a switch (Dokku's
    /// wait-to-retire, default 60 s), ended early once nginx let go of them.
    #[serde(default)]
    pub wait_to_retire_secs: Option<u64>,
}

/// How a process type's new containers are let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Check,
    Skip,
    Disabled,
}

/// The key in `disabled`/`skipped` that covers every process type.
pub const ALL_PROCESSES: &str = "_all";

impl ChecksSettings {
    pub fn gate(&self, process: &str) -> Gate {
        let has = |set: &std::collections::BTreeSet<String>| set.contains(process) || set.contains(ALL_PROCESSES);
        if has(&self.disabled) {
            Gate::Disabled
        } else if has(&self.skipped) {
            Gate::Skip
        } else {
            Gate::Check
        }
    }

    pub fn retire_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.wait_to_retire_secs.unwrap_or(60))
    }
}

impl AppMeta {
    fn new() -> AppMeta {
        AppMeta {
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            deploy_branch: None,
            git: Default::default(),
            formation: BTreeMap::new(),
            cron_suspended: Default::default(),
            cron_maintenance: None,
            stopped: false,
            deploy_locked: false,
            restart_policy: None,
            stop_timeout_secs: None,
            limits: BTreeMap::new(),
            keep_releases: None,
            storage: Vec::new(),
            checks: ChecksSettings::default(),
            domains: None,
            vhost_disabled: false,
            vhost_port: None,
            proxy_disabled: false,
            nginx: Default::default(),
            ports: None,
            letsencrypt: false,
            letsencrypt_props: Default::default(),
            registry: AppRegistry::default(),
            log_max_bytes: None,
            build_dir: None,
            builder_selected: None,
            stack: None,
            appjson_path: None,
        }
    }
}

/// Takes the host-wide lock that serialises creating, renaming and destroying apps.
fn lock_apps(root: &Path) -> Result<FileLock, AppsError> {
    let dir = apps_dir(root);
    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    Ok(FileLock::acquire(&root.join("apps.lock"))?)
}

/// App uids start here: above the ranges distributions give users and
/// below what a ustar header holds (0o7777777). Each app gets its own, so
/// one app's processes cannot read another's `/proc/PID/environ`.
pub const APP_UID_BASE: u32 = 1_900_000;
const APP_UID_END: u32 = 0o7777777;

/// The app's own uid (and gid): given once, kept in `apps/APP/uid` (apart
/// from meta.json, so no meta write can lose it), stable across renames.
pub fn uid(root: &Path, app: &App) -> Result<u32, AppsError> {
    if let Some(uid) = read_uid(app) {
        return Ok(uid);
    }
    let _apps = lock_apps(root)?;
    if let Some(uid) = read_uid(app) {
        return Ok(uid);
    }
    let taken: std::collections::BTreeSet<u32> = list(root)?.into_iter().filter_map(|name| read_uid(&App::new(root, name))).collect();
    let uid = (APP_UID_BASE + 1..APP_UID_END).find(|u| !taken.contains(u) && !host_has_uid(*u)).ok_or(AppsError::NoUid)?;
    let path = app.dir.join("uid");
    atomic::write_atomic(&path, uid.to_string().as_bytes())?;
    Ok(uid)
}

fn read_uid(app: &App) -> Option<u32> {
    fs::read_to_string(app.dir.join("uid")).ok()?.trim().parse().ok().filter(|u| *u > APP_UID_BASE)
}

/// A uid some host account, or some user's subordinate range, already has.
fn host_has_uid(uid: u32) -> bool {
    if nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten().is_some() {
        return true;
    }
    let ranges = fs::read_to_string("/etc/subuid").unwrap_or_default();
    ranges.lines().any(|line| {
        let mut parts = line.split(':').skip(1).map(|p| p.trim().parse::<u64>().ok());
        matches!((parts.next(), parts.next()), (Some(Some(start)), Some(Some(count))) if (start..start + count).contains(&(uid as u64)))
    })
}

/// An existing app with its lock held: the handle every state change goes through.
pub struct LockedApp {
    pub app: App,
    _lock: FileLock,
}

impl LockedApp {
    pub fn config(&self) -> Result<ConfigVars, AppsError> {
        Ok(ConfigVars::load(&self.app.env_file())?)
    }

    pub fn write_config(&self, vars: &ConfigVars) -> Result<(), AppsError> {
        atomic::write_secret(&self.app.env_file(), &vars.encode())?;
        super::events::emit(&self.app.root(), "post-config-update", &[self.app.name.as_str()]);
        Ok(())
    }
}

pub fn exists(root: &Path, name: &AppName) -> bool {
    App::new(root, name.clone()).meta_file().is_file()
}

/// The app, or `NotFound`.
pub fn open(root: &Path, name: &AppName) -> Result<App, AppsError> {
    if exists(root, name) { Ok(App::new(root, name.clone())) } else { Err(AppsError::NotFound(name.clone())) }
}

/// Waits for the app's lock. A rename or destroy that won the race makes
/// this `NotFound` rather than a write into a directory that moved.
pub fn lock(root: &Path, name: &AppName) -> Result<LockedApp, AppsError> {
    lock_noting_wait(root, name, || {})
}

/// `lock`, calling `on_wait` first when another deploy or change holds it.
pub fn lock_noting_wait(root: &Path, name: &AppName, on_wait: impl FnOnce()) -> Result<LockedApp, AppsError> {
    let app = open(root, name)?;
    match FileLock::acquire_noting_wait(&app.lock_file(), on_wait) {
        Ok(lock) => Ok(LockedApp { app, _lock: lock }),
        Err(LockError::Gone { .. }) => Err(AppsError::NotFound(name.clone())),
        Err(e) => Err(e.into()),
    }
}

/// Creates the app directory fully in a temp dir, then renames it into
/// place, so an app is either wholly there or not at all.
pub fn create(root: &Path, name: &AppName) -> Result<App, AppsError> {
    let _apps = lock_apps(root)?;
    let app = App::new(root, name.clone());
    if app.dir.exists() {
        return Err(AppsError::Exists(name.clone()));
    }
    let tmp = atomic::temp_path_for(&app.dir);
    fs::create_dir(&tmp).map_err(io_err("create", &tmp))?;
    let meta = AppMeta::new();
    let filled = (|| {
        let json = serde_json::to_vec_pretty(&meta).expect("meta serialises");
        atomic::write_atomic(&tmp.join("meta.json"), &json)?;
        atomic::write_secret(&tmp.join("env"), b"")?;
        fs::rename(&tmp, &app.dir).map_err(io_err("create", &app.dir))?;
        sync_dir(&apps_dir(root)).map_err(io_err("sync", &app.dir))
    })();
    if filled.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    filled?;
    super::events::emit(root, "post-create", &[name.as_str()]);
    Ok(app)
}

/// Every app, sorted by name. Temp and trash entries are not apps.
pub fn list(root: &Path) -> Result<Vec<AppName>, AppsError> {
    let dir = apps_dir(root);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", &dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list", &dir))?;
        if let Ok(name) = AppName::parse(&entry.file_name())
            && exists(root, &name)
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

pub fn meta(app: &App) -> Result<AppMeta, AppsError> {
    let path = app.meta_file();
    let bytes = fs::read(&path).map_err(io_err("read", &path))?;
    serde_json::from_slice(&bytes).map_err(|source| AppsError::Meta { path, source })
}

/// Writes the app's metadata; the caller holds the app's lock.
pub fn write_meta(locked: &LockedApp, meta: &AppMeta) -> Result<(), AppsError> {
    write_meta_of(&locked.app, meta)
}

/// `write_meta` for code that runs under a lock taken elsewhere (the git hook).
pub fn write_meta_of(app: &App, meta: &AppMeta) -> Result<(), AppsError> {
    Ok(atomic::write_atomic(&app.meta_file(), &serde_json::to_vec_pretty(meta).expect("meta serialises"))?)
}

pub fn rename(root: &Path, from: &AppName, to: &AppName) -> Result<App, AppsError> {
    let _apps = lock_apps(root)?;
    let locked = lock(root, from)?;
    let target = App::new(root, to.clone());
    if target.dir.exists() {
        return Err(AppsError::Exists(to.clone()));
    }
    fs::rename(&locked.app.dir, &target.dir).map_err(io_err("rename", &locked.app.dir))?;
    sync_dir(&apps_dir(root)).map_err(io_err("sync", &target.dir))?;
    super::grants::follow_app(root, from, Some(to))?;
    super::events::emit(root, "post-app-rename", &[from.as_str(), to.as_str()]);
    Ok(target)
}

/// Moves the app out of sight in one rename, then deletes it: a crash
/// half-way leaves a trash directory, never half an app.
pub fn destroy(root: &Path, name: &AppName) -> Result<(), AppsError> {
    let _apps = lock_apps(root)?;
    let locked = lock(root, name)?;
    let trash = atomic::temp_path_for(&locked.app.dir.with_file_name(format!("trash-{name}")));
    fs::rename(&locked.app.dir, &trash).map_err(io_err("remove", &locked.app.dir))?;
    sync_dir(&apps_dir(root)).map_err(io_err("sync", &trash))?;
    super::grants::follow_app(root, name, None)?;
    fs::remove_dir_all(&trash).map_err(io_err("remove", &trash))?;
    super::events::emit(root, "post-delete", &[name.as_str()]);
    Ok(())
}
