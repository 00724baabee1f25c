//! A roll: from what an app runs to what a release and its formation want,
//! in four steps. Start new containers beside the old ones; gate them (the
//! port, then the health checks); switch the app's web vip to them (one
//! nftables transaction; nginx keeps its configuration); retire what the
//! formation no longer holds once its open connections are answered. Until
//! the switch, any failure removes what was started and leaves the old
//! containers serving.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{DeployError, PROCESS_LABEL, Replace, WEB_PORT, applogs, checks, formation, name_of, nginx, processes, proxy};
use crate::app::App;
use crate::runtime::ContainerId;
use crate::runtime::balancer;
use crate::runtime::control;
use crate::runtime::store::{ContainerDir, Status};
use crate::state::apps::{self, AppMeta, Gate};
use crate::state::releases::Release;
use crate::state::settings::Settings;

/// Withdraws `leaving` from the vip, admits `joining`, and applies both in
/// one transaction.
fn route(root: &Path, vip: std::net::Ipv4Addr, leaving: &[ContainerId], joining: &[ContainerId]) -> Result<(), DeployError> {
    for id in leaving.iter().filter(|id| !joining.contains(id)) {
        balancer::withdraw(root, id)?;
    }
    for id in joining {
        balancer::admit(root, id, vip)?;
    }
    Ok(balancer::sync(root)?)
}

/// The web containers among `ids`.
fn web_ids<'a>(root: &Path, ids: impl Iterator<Item = &'a ContainerId>) -> Vec<ContainerId> {
    ids.filter(|id| ContainerDir::new(root, id).config().is_ok_and(|c| c.labels.get(PROCESS_LABEL).map(String::as_str) == Some("web")))
        .cloned()
        .collect()
}

/// Waits until the retiring web containers have answered the connections
/// they accepted (a request that was routed to them just before the switch
/// is served there), at most `limit`.
fn drain(root: &Path, retiring: &[&processes::Process], limit: Duration) {
    let deadline = Instant::now() + limit;
    // A connection translated an instant before the switch may still be on
    // its way to the old container.
    std::thread::sleep(Duration::from_millis(50));
    while Instant::now() < deadline && retiring.iter().any(|p| p.process == "web" && balancer::open_connections(root, &p.id, WEB_PORT) > 0)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A container this roll started.
struct Started {
    id: ContainerId,
    /// Made by this roll (removed if it is abandoned), not just restarted.
    created: bool,
    process: String,
}

struct Roll<'a> {
    root: &'a Path,
    app: &'a App,
    release: &'a Release,
    settings: Settings,
    meta: AppMeta,
    before: Vec<processes::Process>,
    /// What already runs the release and stays.
    keep: Vec<ContainerId>,
    started: Vec<Started>,
}

/// Starts `release` beside what runs (a new release, a restart, a scale),
/// switches nginx once the new web containers answer, and retires what the
/// formation no longer holds. Returns the app's URL.
pub fn roll(root: &Path, app: &App, release: &Release, replace: &Replace, say: &mut dyn FnMut(&str)) -> Result<String, DeployError> {
    tracing::info!(app = %app.name, release = release.version, "rolling to a release");
    let settings = Settings::load(root)?;
    let meta = apps::meta_in_effect(app, &settings)?;
    let wanted = formation::effective(&meta.formation, &release.formation, &release.process_types);
    if !release.process_types.contains_key("web") {
        say(&format!("No web process in v{}: {}'s names answer 503 until there is one", release.version, app.name));
    }
    let mut roll = Roll { root, app, release, settings, meta, before: processes::of_app(root, app), keep: Vec::new(), started: Vec::new() };
    let started = roll.start(&wanted, replace, say).and_then(|()| roll.gate(say));
    if let Err(e) = started {
        applogs::keep_failed(root, app, &roll.started.iter().map(|s| &s.id).collect::<Vec<_>>());
        roll.abandon();
        return Err(e);
    }
    let old_workers = roll.switch()?;
    roll.retire(&old_workers, say);
    Ok(proxy::url(&roll.settings, app, &roll.meta).unwrap_or_else(|| format!("{} (not routed by nginx)", app.name)))
}

impl Roll<'_> {
    /// Starts what is new or dead for each process type, beside what runs.
    fn start(&mut self, wanted: &[(String, u32)], replace: &Replace, say: &mut dyn FnMut(&str)) -> Result<(), DeployError> {
        let env = super::release_env(self.root, self.app, self.release)?;
        for (process, count) in wanted {
            let renew = match replace {
                Replace::Nothing => false,
                Replace::All => true,
                Replace::Only(only) => only == process,
            };
            if renew && self.meta.checks.gate(process) == Gate::Disabled {
                self.stop_first(process, say);
            }
            for index in 1..=*count {
                self.start_one(process, index, renew, &env, say)?;
            }
        }
        Ok(())
    }

    /// Zero downtime off for this type (checks:disable): the old containers
    /// stop before the new ones start, as on Dokku.
    fn stop_first(&self, process: &str, say: &mut dyn FnMut(&str)) {
        for old in self.before.iter().filter(|p| p.process == process) {
            say(&format!("Stopping {} first (checks disabled)", old.id));
            let _ = control::stop(self.root, &old.id);
        }
    }

    fn start_one(&mut self, process: &str, index: u32, renew: bool, env: &[String], say: &mut dyn FnMut(&str)) -> Result<(), DeployError> {
        let version = self.release.version;
        let current = self.before.iter().find(|p| p.process == process && p.index == index && p.release == version);
        match current {
            Some(p) if !renew && p.is_up() => self.keep.push(p.id.clone()),
            Some(p) if !renew => {
                say(&format!("Starting {process}.{index} of v{version} again"));
                self.started.push(Started { id: p.id.clone(), created: false, process: process.to_owned() });
                control::start(self.root, &p.id)?;
            }
            _ => {
                say(&format!("Starting {process}.{index} of v{version}"));
                let id = processes::create(self.root, &self.settings, self.app, &self.meta, self.release, env, process, index)?;
                self.started.push(Started { id: id.clone(), created: true, process: process.to_owned() });
                control::start(self.root, &id)?;
            }
        }
        Ok(())
    }

    /// Each new container must answer before traffic moves: web on its port
    /// (then one GET, or its health checks), other types by their checks.
    fn gate(&self, say: &mut dyn FnMut(&str)) -> Result<(), DeployError> {
        let boot = Duration::from_secs(self.settings.deploy.boot_timeout_secs);
        let mut by_uptime = Vec::new();
        for started in &self.started {
            let checks = self.release.healthchecks.get(&started.process).cloned().unwrap_or_default();
            if self.meta.checks.gate(&started.process) != Gate::Check {
                continue;
            }
            if started.process != "web" && checks.is_empty() {
                by_uptime.push(&started.id);
                continue;
            }
            let id = &started.id;
            let failed = |why| DeployError::CheckFailed { name: name_of(self.root, id), why };
            let address = processes::wait_for_port(self.root, id, WEB_PORT, boot)?;
            say(&format!("{} answers on {address}:{WEB_PORT}", name_of(self.root, id)));
            if checks.is_empty() {
                checks::first_answer(address, WEB_PORT, boot).map_err(failed)?;
            }
            for check in &checks {
                checks::run(check, address, WEB_PORT, say).map_err(|why| DeployError::CheckFailed { name: name_of(self.root, id), why })?;
            }
        }
        self.stay_up(&by_uptime, say)
    }

    /// Processes with nothing to check (workers, clocks) must stay up for
    /// the uptime (`[deploy] uptime_secs`, 10 s as Dokku's default check)
    /// before the old ones stop; one that exits or restarts meanwhile stops
    /// the roll.
    fn stay_up(&self, ids: &[&ContainerId], say: &mut dyn FnMut(&str)) -> Result<(), DeployError> {
        if ids.is_empty() {
            return Ok(());
        }
        let uptime = Duration::from_secs(self.settings.deploy.uptime_secs);
        let names: Vec<String> = ids.iter().map(|id| name_of(self.root, id)).collect();
        say(&format!("Waiting {} s for {} to stay up", uptime.as_secs(), names.join(", ")));
        let deadline = Instant::now() + uptime;
        loop {
            for id in ids {
                let state = control::current_state(&ContainerDir::new(self.root, id))?;
                if state.status == Status::Exited || state.restarts > 0 {
                    let code = state.last_exit_code.unwrap_or(-1);
                    let logs = processes::tail_of_log(self.root, id);
                    return Err(DeployError::Died { name: name_of(self.root, id), code, secs: uptime.as_secs(), logs });
                }
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Puts the app's web vip in front of the web containers it now has
    /// (and writes the server block, which changes only on the first
    /// deploy or after a stop); returns the nginx workers that served an
    /// old block, if nginx reloaded.
    fn switch(&mut self) -> Result<Vec<u32>, DeployError> {
        let vip = proxy::web_vip(self.root, &self.settings, self.app)?;
        let serving_before: Vec<ContainerId> =
            self.before.iter().filter(|p| balancer::serving(self.root, &p.id) == Some(vip)).map(|p| p.id.clone()).collect();
        let now: Vec<ContainerId> = web_ids(self.root, self.running().into_iter());
        let switched = route(self.root, vip, &serving_before, &now)
            .and_then(|()| proxy::write(self.root, &self.settings, self.app, &self.meta, Some(vip), "is stopped"));
        let old_workers = match switched {
            Ok(workers) => workers,
            Err(e) => {
                let _ = route(self.root, vip, &now, &serving_before);
                self.abandon();
                return Err(e);
            }
        };
        if self.meta.stopped {
            self.meta.stopped = false;
            apps::write_meta_of(self.app, &self.meta)?;
        }
        Ok(old_workers)
    }

    /// Stops and removes what the formation no longer holds, once nothing
    /// routes to it: the old nginx workers are gone (if nginx reloaded) and
    /// the connections it accepted before the switch are answered, at most
    /// the app's wait-to-retire.
    fn retire(&self, old_workers: &[u32], say: &mut dyn FnMut(&str)) {
        let now = self.running();
        let retiring: Vec<&processes::Process> = self.before.iter().filter(|p| !now.contains(&&p.id)).collect();
        if retiring.is_empty() {
            return;
        }
        let limit = self.meta.checks.retire_wait();
        nginx::wait_for_old_workers(&self.settings, old_workers, limit);
        drain(self.root, &retiring, limit);
        for old in retiring {
            say(&format!("Retiring {}", old.id));
            let _ = control::stop(self.root, &old.id);
            applogs::keep_retired(self.root, self.app, &old.id);
            let _ = control::remove(self.root, &old.id, true);
        }
    }

    /// What runs the release after this roll: what was kept and what started.
    fn running(&self) -> Vec<&ContainerId> {
        self.keep.iter().chain(self.started.iter().map(|s| &s.id)).collect()
    }

    /// Undoes the start: containers this roll made go, restarted ones stop.
    fn abandon(&self) {
        for started in &self.started {
            if started.created {
                let _ = control::remove(self.root, &started.id, true);
            } else {
                let _ = control::stop(self.root, &started.id);
            }
        }
    }
}
