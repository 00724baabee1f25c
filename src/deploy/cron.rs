//! An app's scheduled jobs (app.json `cron`): each run is a one-off
//! container of the current release whose output goes to the caller and to
//! the app's log as `cron.ID`; a job never runs twice at once. The
//! scheduler (`cron:scheduler`, started at boot) starts, each minute, the
//! jobs due in it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};

use super::{DeployError, applogs, current_release, processes, release_env};
use crate::app::{App, AppName};
use crate::model::cron::CronJob;
use crate::runtime::oneshot::{self, Stream};
use crate::state::apps;
use crate::state::lock::{FileLock, LockError};

/// The longest a job may run before it is stopped.
pub const JOB_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// The app's jobs in its current release, each with whether it is suspended.
pub fn jobs(app: &App) -> Result<Vec<(CronJob, bool)>, DeployError> {
    let Some(release) = crate::state::releases::latest(&app.dir) else { return Ok(Vec::new()) };
    let meta = apps::meta_in_effect(app, &crate::state::settings::Settings::load(&app.root())?)?;
    let all = meta.cron_maintenance == Some(true) || meta.cron_suspended.contains("*");
    Ok(release.cron.into_iter().map(|job| (job.clone(), all || meta.cron_suspended.contains(&job.id()))).collect())
}

/// Runs job `id` now; returns its exit code. `Busy` when it runs already.
pub fn run(root: &Path, app: &App, id: &str, say: &mut dyn FnMut(&str)) -> Result<i32, DeployError> {
    let release = current_release(app)?;
    let job = release.cron.iter().find(|j| j.id() == id).ok_or_else(|| DeployError::NoSuchCronJob(id.to_owned()))?;
    let _running = match FileLock::try_acquire(&app.dir.join(format!("cron-{id}.lock"))) {
        Err(LockError::Busy) => return Err(DeployError::CronBusy(id.to_owned())),
        other => other?,
    };
    let name = format!("cron.{id}");
    let env = release_env(root, app, &release)?;
    let mut config = processes::one_off(root, app, &apps::meta(app)?, &release, env, std::slice::from_ref(&job.command), false)?;
    config.name = name.clone();
    applogs::append(app, &name, &[("berth", format!("running {}", job.command).into_bytes())]);
    let finished = oneshot::run(root, &config, Some(JOB_LIMIT), &mut |stream, line| {
        say(&String::from_utf8_lossy(line));
        applogs::append(app, &name, &[(if stream == Stream::Stdout { "stdout" } else { "stderr" }, line.to_vec())]);
    })?;
    let end =
        if finished.timed_out { "ran too long and was stopped".to_owned() } else { format!("exited with code {}", finished.exit_code) };
    applogs::append(app, &name, &[("berth", end.into_bytes())]);
    Ok(finished.exit_code)
}

/// Every job due in the minute holding `at`, of apps deployed and not
/// stopped, that is not suspended.
pub fn due(root: &Path, at: DateTime<Utc>) -> Vec<(AppName, String)> {
    let mut found = Vec::new();
    for name in apps::list(root).unwrap_or_default() {
        let app = App::new(root, name.clone());
        if apps::meta(&app).is_ok_and(|m| m.stopped) {
            continue;
        }
        for (job, suspended) in jobs(&app).unwrap_or_default() {
            if !suspended && job.is_due(at) {
                found.push((name.clone(), job.id()));
            }
        }
    }
    found
}

/// The scheduler: at the start of each minute, every job due in it starts
/// as its own `berth cron:run` process (a long job never delays another).
/// Runs until killed.
pub fn schedule(root: &Path, say: &mut dyn FnMut(&str)) -> ! {
    let exe = std::env::current_exe().unwrap_or_else(|_| "berth".into());
    let mut running = Vec::new();
    loop {
        let now = Utc::now();
        let next = (now + chrono::Duration::seconds(60)).with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(now);
        std::thread::sleep((next - now).to_std().unwrap_or(Duration::from_secs(1)));
        running.retain_mut(|child: &mut std::process::Child| !matches!(child.try_wait(), Ok(Some(_))));
        for (app, id) in due(root, next) {
            say(&format!("{next}: starting {app}'s job {id}"));
            let child = Command::new(&exe)
                .args(["cron:run", app.as_str(), &id])
                .env("BERTH_ROOT", root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            match child {
                Ok(child) => running.push(child),
                Err(e) => say(&format!("cannot start {app}'s job {id}: {e}")),
            }
        }
    }
}
