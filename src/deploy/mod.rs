//! Deploys and everything else that changes what an app runs: a release's
//! formation starts as new containers beside the old ones -> the web ones
//! accept connections on $PORT -> nginx routes to them -> the old
//! containers stop. A roll whose new containers never answer is abandoned
//! with the old ones untouched. Scale, restart, stop, start, restore and
//! rollback are all rolls.

pub mod acme;
pub mod appenv;
pub mod applogs;
pub mod checks;
pub mod cron;
pub mod formation;
pub mod nginx;
pub mod processes;
pub mod proxy;
pub mod rebase;
pub mod release;
mod roll;

pub use roll::roll;
pub mod retention;
pub mod tls;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::app::App;
use crate::image::{Digest, Store};
use crate::runtime::ContainerId;
use crate::runtime::control;
use crate::runtime::store::ContainerDir;
use crate::state::apps;
use crate::state::config::ConfigVars;
use crate::state::releases::{self, Release};
use crate::state::settings::Settings;

/// The port every web process listens on inside its container ($PORT).
pub const WEB_PORT: u16 = 5000;

pub use crate::runtime::{APP_LABEL, ONE_OFF_LABEL};
pub const RELEASE_LABEL: &str = "io.berth.release";
pub const PROCESS_LABEL: &str = "io.berth.process";
pub const INDEX_LABEL: &str = "io.berth.index";

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("app {0} is locked for deploys; run apps:unlock {0} first")]
    Locked(crate::app::AppName),
    #[error("{name} exited with code {code} within its first {secs} s, so the previous release keeps serving. Its last output:\n{logs}")]
    Died { name: String, code: i32, secs: u64, logs: String },
    #[error(
        "the new web process did not accept connections on port {port} within {secs} s; the previous release keeps serving. Its last output:\n{logs}"
    )]
    NeverBound { port: u16, secs: u64, logs: String },
    #[error("the new web process exited with code {code} while starting; the previous release keeps serving. Its last output:\n{logs}")]
    Exited { code: i32, logs: String },
    #[error("the {phase} command {why}")]
    PhaseFailed { phase: String, why: String },
    #[error("{name} did not pass its health check, so the previous release keeps serving: {why}")]
    CheckFailed {
        name: String,
        #[source]
        why: checks::CheckError,
    },
    #[error(transparent)]
    Nginx(#[from] nginx::NginxError),
    #[error(transparent)]
    Balancer(#[from] crate::runtime::balancer::BalancerError),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error(transparent)]
    Apps(#[from] crate::state::apps::AppsError),
    #[error(transparent)]
    Formation(#[from] formation::FormationError),
    #[error("app.json says the app needs {0}; set it first with config:set --no-restart")]
    MissingEnv(String),
    #[error("the app has no cron job {0}; see cron:list")]
    NoSuchCronJob(String),
    #[error("cron job {0} is still running; it never runs twice at once")]
    CronBusy(String),
    #[error(transparent)]
    Lock(#[from] crate::state::lock::LockError),
    #[error("app {0} has no release yet; push it first")]
    NeverDeployed(crate::app::AppName),
    #[error("the image of {app} v{version} is no longer in the store (outside releases:set keep); deploy it again instead")]
    ImageCollected { app: crate::app::AppName, version: u64 },
    #[error("app {app} has no release v{version}")]
    NoSuchRelease { app: crate::app::AppName, version: u64 },
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
    #[error(transparent)]
    Rebase(#[from] rebase::RebaseError),
    #[error(transparent)]
    Store(#[from] crate::image::StoreError),
    #[error(transparent)]
    Digest(#[from] crate::image::digest::InvalidDigest),
    #[error(transparent)]
    Settings(#[from] crate::state::settings::SettingsError),
    #[error(transparent)]
    Trigger(#[from] crate::state::triggers::TriggerError),
    #[error(transparent)]
    Config(#[from] crate::state::config::ConfigError),
    #[error(transparent)]
    Write(#[from] crate::state::atomic::WriteError),
    #[error(transparent)]
    Container(#[from] crate::runtime::store::ContainerStoreError),
    #[error(transparent)]
    Io(#[from] crate::state::PathIo),
    #[error("{0} was not built by berth (no io.berth.process-types label): berth deploys its own images")]
    NotBerthImage(String),
    /// A failure before anything of the new release started.
    #[error("{0}; the previous release keeps serving")]
    Kept(Box<DeployError>),
}

/// The app's config vars as a release records them.
pub fn config_snapshot(app: &App) -> Result<BTreeMap<String, String>, DeployError> {
    let vars = ConfigVars::in_effect(&app.root(), &app.env_file())?;
    Ok(vars.0.iter().map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned())).collect())
}

/// Everything an app runs and routes, gone: its containers, its web vip,
/// its nginx server block (nginx reloaded) and its image tags (`store:gc`
/// frees them).
pub fn teardown(root: &Path, app: &App) -> Result<(), DeployError> {
    unroute(root, app)?;
    crate::runtime::balancer::forget_vip(root, &proxy::vip_name(&app.name))?;
    let store = Store::open(root)?;
    let repository = retention::app_repository(app);
    for (tag, _) in store.tags()? {
        if let Ok(name) = tag.parse::<crate::image::ImageRef>()
            && name.repository() == repository
        {
            store.remove_tag(&name)?;
        }
    }
    Ok(())
}

/// The app's containers and its server block, gone. The block goes even
/// when nginx cannot reload (another app's block is broken): that is
/// reported, and the block is not put back. `apps:rename` calls it before
/// the app moves, then `follow_rename`, as Dokku redeploys a renamed app.
pub fn unroute(root: &Path, app: &App) -> Result<(), DeployError> {
    for process in processes::of_app(root, app) {
        control::remove(root, &process.id, true)?;
    }
    for id in processes::one_offs(root, app) {
        control::remove(root, &id, true)?;
    }
    if nginx::conf_file(root, &app.name).exists() {
        let settings = Settings::load(root)?;
        if let Err(e) = nginx::remove(root, &settings, &app.name) {
            tracing::warn!(app = %app.name, "removed the server block, but {e}");
        }
    }
    Ok(())
}

/// After the app's directory moved from `from` to `app`: its vip and image
/// tags follow, and what ran before runs again under the new name.
pub fn follow_rename(root: &Path, from: &crate::app::AppName, app: &App, say: &mut dyn FnMut(&str)) -> Result<(), DeployError> {
    crate::runtime::balancer::rename_vip(root, &proxy::vip_name(from), &proxy::vip_name(&app.name))?;
    let store = Store::open(root)?;
    let old_repository = format!("berth/app-{from}");
    for (tag, descriptor) in store.tags()? {
        let Ok(name) = tag.parse::<crate::image::ImageRef>() else { continue };
        if name.repository() != old_repository {
            continue;
        }
        if let Ok(renamed) = format!("{}:{}", retention::app_repository(app), name.tag()).parse::<crate::image::ImageRef>() {
            store.set_tag(&renamed, &descriptor)?;
            store.remove_tag(&name)?;
        }
    }
    let meta = apps::meta(app)?;
    match releases::latest(&app.dir) {
        Some(release) if !meta.stopped => {
            roll(root, app, &release, &Replace::All, say)?;
        }
        _ => proxy::refresh(root, app)?,
    }
    Ok(())
}

/// What no app owns any more, gone (a boot's `ps:restore` runs it after a
/// crash or a hand-made mess): containers labelled with an app that does
/// not exist, stable addresses of such apps, and network namespaces and
/// addresses without a container. Returns what was removed.
pub fn sweep(root: &Path) -> Vec<String> {
    let apps = apps::list(root).unwrap_or_default();
    let mut removed = Vec::new();
    for id in crate::runtime::store::list(root) {
        let Ok(config) = ContainerDir::new(root, &id).config() else { continue };
        let owner = config.labels.get(APP_LABEL).or_else(|| config.labels.get(ONE_OFF_LABEL));
        let orphan = owner.is_some_and(|name| !apps.iter().any(|a| a.as_str() == name));
        if orphan && control::remove(root, &id, true).is_ok() {
            removed.push(format!("container {id}"));
        }
    }
    let vips = crate::runtime::network::owned_with_prefix(root, "vip:web.").unwrap_or_default();
    for (_, owner) in vips {
        let app = owner.trim_start_matches("vip:web.");
        if !apps.iter().any(|a| a.as_str() == app) && crate::runtime::balancer::forget_vip(root, &format!("web.{app}")).is_ok() {
            removed.push(format!("stable address of {app}"));
        }
    }
    removed.extend(crate::runtime::network::sweep_orphans(root));
    removed
}

/// A new release of the current image (after a config change), deployed
/// and recorded. `None` when the app was never deployed: nothing to restart.
pub fn redeploy_current(root: &Path, app: &App, description: &str, say: &mut dyn FnMut(&str)) -> Result<Option<String>, DeployError> {
    let Some(current) = crate::state::releases::latest(&app.dir) else { return Ok(None) };
    let release = Release::next(&app.dir, current, description, config_snapshot(app)?);
    let url = deploy(root, app, &release, say)?;
    record_release(root, app, &release)?;
    say(&format!("Released v{}: {description}", release.version));
    Ok(Some(url))
}

/// Which running containers a roll replaces with new ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replace {
    /// Keep what runs the release; start only what is missing or dead
    /// (`ps:scale`, `ps:start`, `ps:restore`).
    Nothing,
    /// New containers for everything (deploys, config changes, `ps:restart`).
    All,
    /// New containers for one process type (`ps:restart APP worker`).
    Only(String),
}

/// Starts `release` beside what runs (a new release, a restart, a scale),
/// switches nginx once the new web containers answer, and retires what the
/// formation no longer holds. On any failure the new containers go and
/// what ran before keeps running. Returns the app's URL.
pub fn deploy(root: &Path, app: &App, release: &Release, say: &mut dyn FnMut(&str)) -> Result<String, DeployError> {
    roll(root, app, release, &Replace::All, say)
}

pub(crate) fn name_of(root: &Path, id: &ContainerId) -> String {
    ContainerDir::new(root, id).config().map(|c| c.name).unwrap_or_else(|_| id.to_string())
}

/// A release's process environment: the image's, then the app's config.
pub fn release_env(root: &Path, app: &App, release: &Release) -> Result<Vec<String>, DeployError> {
    let store = Store::open(root)?;
    let digest: Digest = release.image_digest.parse()?;
    let image = store.image_by_digest(&digest)?;
    let vars = ConfigVars::in_effect(root, &app.env_file())?;
    let mut image_env = image.config.config().as_ref().and_then(|c| c.env().clone()).unwrap_or_default();
    // Dokku hands the deployed commit to the app as GIT_REV (rev-env-var);
    // a config var of the same name still wins.
    let git = crate::state::apps::meta_in_effect(app, &Settings::load(root)?)?.git;
    if let (Some(name), Some(rev)) = (git.rev_var(), release.git_revision.as_deref().filter(|r| !r.is_empty())) {
        image_env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(name));
        image_env.push(format!("{name}={rev}"));
    }
    // What plugins add for the app (a linked service's URL), under its config.
    for line in crate::state::triggers::deploy_env(root, app.name.as_str())? {
        let key = line.split_once('=').map(|(k, _)| format!("{k}=")).unwrap_or_default();
        image_env.retain(|e| !e.starts_with(&key));
        image_env.push(line);
    }
    Ok(processes::environment(image_env, &vars))
}

/// Records a release that now runs, then drops the image tags of releases
/// that fell out of the app's window.
pub fn record_release(root: &Path, app: &App, release: &Release) -> Result<(), DeployError> {
    releases::record(&app.dir, release)?;
    retention::prune(root, app)?;
    Ok(())
}

/// The longest a predeploy, release or postdeploy command may run.
pub const PHASE_LIMIT: Duration = Duration::from_secs(600);

/// Runs one deploy phase (`predeploy`, the Procfile's `release`,
/// `postdeploy`) as a one-off container of `release`, its output streamed
/// to `say`. A non-zero exit is an error naming the phase.
pub fn run_phase(
    root: &Path,
    app: &App,
    release: &Release,
    phase: &str,
    command: &str,
    say: &mut dyn FnMut(&str),
) -> Result<(), DeployError> {
    say(&format!("Running {phase}: {command}"));
    let env = release_env(root, app, release)?;
    let config = processes::one_off(root, app, &apps::meta(app)?, release, env, &[command.to_owned()], false)?;
    let finished = crate::runtime::oneshot::run(root, &config, Some(PHASE_LIMIT), &mut |_, line| {
        say(&format!("       {}", String::from_utf8_lossy(line)))
    })?;
    match (finished.timed_out, finished.exit_code) {
        (true, _) => {
            Err(DeployError::PhaseFailed { phase: phase.to_owned(), why: format!("ran past {} s and was stopped", PHASE_LIMIT.as_secs()) })
        }
        (false, 0) => Ok(()),
        (false, code) => Err(DeployError::PhaseFailed { phase: phase.to_owned(), why: format!("exited with code {code}") }),
    }
}

/// The release that runs now, or `NeverDeployed`.
pub fn current_release(app: &App) -> Result<Release, DeployError> {
    releases::latest(&app.dir).ok_or_else(|| DeployError::NeverDeployed(app.name.clone()))
}

/// `ps:scale`: new counts, then a roll that keeps what runs.
/// Before the first deploy the counts are only recorded, as Dokku does:
/// the first deploy starts them (types its Procfile lacks are ignored).
pub fn scale(root: &Path, app: &App, counts: BTreeMap<String, u32>, say: &mut dyn FnMut(&str)) -> Result<(), DeployError> {
    let mut meta = apps::meta(app)?;
    let Some(release) = releases::latest(&app.dir) else {
        meta.formation.extend(counts);
        apps::write_meta_of(app, &meta)?;
        say("No release yet: the first deploy starts this formation");
        return Ok(());
    };
    formation::check_known(&counts, &release.process_types)?;
    let previous = meta.formation.clone();
    meta.formation.extend(counts);
    apps::write_meta_of(app, &meta)?;
    if meta.stopped {
        say("The app is stopped; the new scale applies at ps:start");
        return Ok(());
    }
    if let Err(e) = roll(root, app, &release, &Replace::Nothing, say) {
        meta.formation = previous;
        apps::write_meta_of(app, &meta)?;
        return Err(e);
    }
    Ok(())
}

/// `ps:stop`: the proxy answers 503 with a clear page, then every
/// container of the app stops and goes. `ps:restore` leaves it stopped.
pub fn stop(root: &Path, app: &App, say: &mut dyn FnMut(&str)) -> Result<(), DeployError> {
    let settings = Settings::load(root)?;
    let mut meta = apps::meta(app)?;
    meta.stopped = true;
    apps::write_meta_of(app, &meta)?;
    let mut old_workers = Vec::new();
    if nginx::conf_file(root, &app.name).exists() {
        old_workers = proxy::write(root, &settings, app, &meta, None, "is stopped")?;
    }
    nginx::wait_for_old_workers(&settings, &old_workers, meta.clone().with_globals(&settings).checks.retire_wait());
    let running = processes::of_app(root, app);
    for process in &running {
        crate::runtime::balancer::withdraw(root, &process.id)?;
    }
    crate::runtime::balancer::sync(root)?;
    for process in running {
        say(&format!("Stopping {}", process.config.name));
        control::stop(root, &process.id)?;
        applogs::keep_retired(root, app, &process.id);
        control::remove(root, &process.id, true)?;
    }
    crate::state::events::emit(root, "post-stop", &[app.name.as_str()]);
    Ok(())
}

/// `ps:start`: the current release's formation runs again.
pub fn start(root: &Path, app: &App, say: &mut dyn FnMut(&str)) -> Result<String, DeployError> {
    let release = current_release(app)?;
    let url = roll(root, app, &release, &Replace::Nothing, say)?;
    crate::state::events::emit(root, "post-start", &[app.name.as_str()]);
    Ok(url)
}

/// `ps:restore` for one app: whatever should run and does not (after a
/// reboot, or after its shims were killed) starts again. Apps stopped on
/// purpose and apps never deployed are left alone; returns whether it ran.
pub fn restore(root: &Path, app: &App, say: &mut dyn FnMut(&str)) -> Result<bool, DeployError> {
    if apps::meta(app)?.stopped {
        return Ok(false);
    }
    let Some(release) = releases::latest(&app.dir) else { return Ok(false) };
    roll(root, app, &release, &Replace::Nothing, say)?;
    Ok(true)
}

/// `releases:rollback`: release `version`'s image and config vars, as a
/// new release "Rollback to vN"; no build runs.
pub fn rollback(root: &Path, app: &App, version: Option<u64>, say: &mut dyn FnMut(&str)) -> Result<Release, DeployError> {
    let current = current_release(app)?;
    let all = releases::list(&app.dir);
    // Heroku's default: the release before the current one.
    let version = version.unwrap_or(current.version.saturating_sub(1));
    let target = all.iter().find(|r| r.version == version).cloned().ok_or(DeployError::NoSuchRelease { app: app.name.clone(), version })?;
    let image_there = Store::open(root).ok().zip(target.image_digest.parse::<Digest>().ok()).is_some_and(|(store, digest)| {
        store
            .image_by_digest(&digest)
            .and_then(|image| image.layers())
            .is_ok_and(|layers| layers.iter().all(|l| store.has_blob(&l.digest.0)))
    });
    if !image_there {
        return Err(DeployError::ImageCollected { app: app.name.clone(), version });
    }
    let previous_env =
        std::fs::read(app.env_file()).map_err(|source| crate::state::PathIo { action: "read", path: app.env_file(), source })?;
    let vars = ConfigVars(
        target
            .config_vars
            .iter()
            .filter_map(|(k, v)| Some((crate::state::config::ConfigKey::parse(std::ffi::OsStr::new(k)).ok()?, v.as_bytes().to_vec())))
            .collect(),
    );
    crate::state::atomic::write_secret(&app.env_file(), &vars.encode())?;
    say(&format!("Rolling back to v{version} ({})", target.image));
    let config_vars = target.config_vars.clone();
    let release = Release::next(&app.dir, target, &format!("Rollback to v{version}"), config_vars);
    if let Err(e) = deploy(root, app, &release, say) {
        let _ = crate::state::atomic::write_secret(&app.env_file(), &previous_env);
        return Err(e);
    }
    record_release(root, app, &release)?;
    Ok(release)
}
