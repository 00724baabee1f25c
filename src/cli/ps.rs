//! `ps:*`: what an app runs. Scale, stop, start, restart, restore after a
//! reboot, the per-container report, and the process settings.

use anyhow::bail;
use serde::Serialize;

use super::fields::Report;
use super::{Args, Command, Ctx, human_bytes};
use crate::deploy::{self, Replace, formation, processes};
use crate::runtime::store::ContainerDir;
use crate::runtime::{RestartPolicy, cgroup, spec};
use crate::state::apps;
use crate::state::settings::Settings;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "ps:scale",
        usage: "APP [TYPE=COUNT...]",
        about: "Set how many containers each process type runs (no pairs: show the scale)",
        switches: &[],
        options: &[],
        run: scale,
    },
    Command {
        name: "ps:stop",
        usage: "APP|--all",
        about: "Stop every container of the app (--all: of every deployed app); it stays stopped",
        switches: &["--all"],
        options: &[],
        run: stop,
    },
    Command {
        name: "ps:start",
        usage: "APP|--all",
        about: "Start a stopped app's formation again (--all: every deployed app)",
        switches: &["--all"],
        options: &[],
        run: start,
    },
    Command {
        name: "ps:restart",
        usage: "APP [TYPE] | --all",
        about: "Replace the app's containers (or one type's) with new ones, web without downtime (--all: every running app)",
        switches: &["--all"],
        options: &[],
        run: restart,
    },
    Command {
        name: "ps:restore",
        usage: "[APP]",
        about: "Start what should run and does not (after a reboot); stopped apps stay stopped",
        switches: &[],
        options: &[],
        run: restore,
    },
    Command {
        name: "ps:report",
        usage: "APP|--global [--format json] [--FIELD]",
        about: "Dokku's ps fields, then each container: type, index, state, pid, address, restarts, uptime, memory",
        switches: &["--global"],
        options: &["--format"],
        run: report,
    },
    Command {
        name: "ps:inspect",
        usage: "APP",
        about: "Each of the app's containers as berth runs it (config and state) as JSON, as docker inspect shows Dokku's",
        switches: &[],
        options: &[],
        run: inspect,
    },
    Command {
        name: "ps:set",
        usage: "APP|--global restart-policy|stop-timeout-seconds [VALUE]",
        about: "restart-policy no|on-failure[:N]|always|unless-stopped; stop-timeout-seconds N (next start; no VALUE: unset)",
        switches: &["--global"],
        options: &[],
        run: set,
    },
];

fn say(line: &str) {
    println!("-----> {line}");
}

fn scale(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let pairs: Vec<String> = args.positional()[1..].iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if pairs.is_empty() {
        let meta = apps::meta(&locked.app)?;
        println!("=====> {} scale", locked.app.name);
        let Ok(release) = deploy::current_release(&locked.app) else {
            // Not deployed yet: what the first deploy will start.
            for (name, count) in &meta.formation {
                println!("{name}: {count}");
            }
            return Ok(());
        };
        for name in release.process_types.keys().filter(|n| *n != "release") {
            let count = meta.formation.get(name).or(release.formation.get(name)).copied().unwrap_or(u32::from(name == "web"));
            println!("{name}: {count}");
        }
        return Ok(());
    }
    let counts = formation::parse(&pairs)?;
    let shown: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    say(&format!("Scaling {} to {}", locked.app.name, shown.join(" ")));
    deploy::scale(&ctx.root, &locked.app, counts, &mut say)?;
    Ok(())
}

/// The apps `ps:stop|start|restart APP|--all` act on: the one named, or
/// (`--all`) every app with a release.
fn targets(ctx: &Ctx, args: &Args, most: usize) -> anyhow::Result<Vec<crate::app::AppName>> {
    if !args.switch("--all") {
        args.expect(1, most)?;
        return Ok(vec![args.app(0)?]);
    }
    args.expect(0, 0)?;
    let mut deployed = Vec::new();
    for name in apps::list(&ctx.root)? {
        if deploy::current_release(&apps::open(&ctx.root, &name)?).is_ok() {
            deployed.push(name);
        }
    }
    Ok(deployed)
}

fn stop(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    for name in targets(ctx, &args, 1)? {
        let locked = apps::lock(&ctx.root, &name)?;
        deploy::stop(&ctx.root, &locked.app, &mut say)?;
        say(&format!("{} is stopped", locked.app.name));
    }
    Ok(())
}

fn start(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    for name in targets(ctx, &args, 1)? {
        let locked = apps::lock(&ctx.root, &name)?;
        let url = deploy::start(&ctx.root, &locked.app, &mut say)?;
        say(&format!("{} is running: {url}", locked.app.name));
    }
    Ok(())
}

fn restart(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let all = args.switch("--all");
    for name in targets(ctx, &args, 2)? {
        let locked = apps::lock(&ctx.root, &name)?;
        if all && apps::meta(&locked.app)?.stopped {
            continue;
        }
        restart_one(ctx, &locked.app, args.text(1))?;
    }
    Ok(())
}

fn restart_one(ctx: &Ctx, app: &crate::app::App, only: Option<String>) -> anyhow::Result<()> {
    let release = deploy::current_release(app)?;
    let replace = match only {
        None => Replace::All,
        Some(t) => {
            if !release.process_types.contains_key(&t) {
                bail!("{} has no process type {t:?}", app.name);
            }
            Replace::Only(t)
        }
    };
    if apps::meta(app)?.stopped {
        bail!("{} is stopped; start it with ps:start", app.name);
    }
    deploy::roll(&ctx.root, app, &release, &replace, &mut say)?;
    say(&format!("Restarted {}", app.name));
    Ok(())
}

fn restore(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 1)?;
    let names = match args.get(0) {
        Some(_) => vec![args.app(0)?],
        None => apps::list(&ctx.root)?,
    };
    let mut failed = Vec::new();
    if args.get(0).is_none() {
        // A boot: the server blocks heal first (an orphan or a broken block
        // would keep nginx from loading anything).
        let all: Vec<crate::app::App> = names.iter().map(|n| crate::app::App::new(&ctx.root, n.clone())).collect();
        for gone in deploy::sweep(&ctx.root) {
            say(&format!("Removed {gone}: no app owns it"));
        }
        if let Err(e) = deploy::proxy::rebuild(&ctx.root, &all, true) {
            eprintln!("berth: the server blocks were not rebuilt: {e:#}");
        }
        // Backing services first: apps reach for their databases as they start.
        failed.extend(restore_standalone(ctx));
    }
    for name in names {
        let result = apps::lock(&ctx.root, &name)
            .map_err(anyhow::Error::from)
            .and_then(|locked| Ok(deploy::restore(&ctx.root, &locked.app, &mut |line| say(&format!("{name}: {line}")))?));
        match result {
            Ok(true) => say(&format!("{name} is running")),
            Ok(false) => say(&format!("{name} stays stopped (or was never deployed)")),
            Err(e) => {
                eprintln!("berth: {name} did not come back: {e:#}");
                failed.push(name.to_string());
            }
        }
    }
    if !failed.is_empty() {
        bail!("not restored: {}", failed.join(", "));
    }
    Ok(())
}

/// Containers of no app (backing services) whose monitor died with the
/// host: started again. Returns those that did not come back.
fn restore_standalone(ctx: &Ctx) -> Vec<String> {
    let mut failed = Vec::new();
    for id in crate::runtime::store::list(&ctx.root) {
        let Ok(config) = ContainerDir::new(&ctx.root, &id).config() else { continue };
        if crate::runtime::app_of(&config).is_some() {
            continue;
        }
        match crate::runtime::control::revive(&ctx.root, &id) {
            Ok(Some(pid)) => say(&format!("{id} is running (pid {pid})")),
            Ok(None) => {}
            Err(e) => {
                eprintln!("berth: container {id} did not come back: {e:#}");
                failed.push(id.to_string());
            }
        }
    }
    failed
}

#[derive(Serialize)]
struct Row {
    container: String,
    process: String,
    index: u32,
    release: u64,
    status: String,
    pid: Option<i32>,
    address: Option<String>,
    restarts: u32,
    oom_kills: u32,
    last_exit_code: Option<i32>,
    uptime_secs: Option<i64>,
    memory_bytes: Option<u64>,
}

/// Each container of the app, as the report shows it.
fn container_rows(root: &std::path::Path, app: &crate::app::App) -> Vec<Row> {
    processes::of_app(root, app)
        .into_iter()
        .map(|p| {
            let paths = ContainerDir::new(root, &p.id);
            let uptime = p
                .state
                .started_at
                .as_deref()
                .filter(|_| p.state.pid.is_some())
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds());
            Row {
                container: p.id.to_string(),
                status: serde_json::to_value(p.state.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                pid: p.state.pid,
                address: p.state.address.clone(),
                restarts: p.state.restarts,
                oom_kills: p.state.oom_kills,
                last_exit_code: p.state.last_exit_code,
                uptime_secs: uptime,
                memory_bytes: p.state.pid.and_then(|_| cgroup::memory_bytes(&spec::cgroup_path(&paths))),
                process: p.process,
                index: p.index,
                release: p.release,
            }
        })
        .collect()
}

fn print_table(app: &crate::app::AppName, stopped: bool, rows: &[Row]) {
    println!("=====> {} processes{}", app, if stopped { " (stopped)" } else { "" });
    println!(
        "{:<10} {:<9} {:<10} {:>8} {:<15} {:>8} {:>4} {:>5} {:>8} {:>9}",
        "PROCESS", "RELEASE", "STATUS", "PID", "ADDRESS", "RESTARTS", "OOM", "EXIT", "UPTIME", "MEMORY"
    );
    for r in rows {
        let dash = || "-".to_owned();
        println!(
            "{:<10} {:<9} {:<10} {:>8} {:<15} {:>8} {:>4} {:>5} {:>8} {:>9}",
            format!("{}.{}", r.process, r.index),
            format!("v{}", r.release),
            r.status,
            r.pid.map(|p| p.to_string()).unwrap_or_else(dash),
            r.address.clone().unwrap_or_else(dash),
            r.restarts,
            r.oom_kills,
            r.last_exit_code.map(|c| c.to_string()).unwrap_or_else(dash),
            r.uptime_secs.map(|s| format!("{s}s")).unwrap_or_else(dash),
            r.memory_bytes.map(human_bytes).unwrap_or_else(dash),
        );
    }
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root)?;
    let (Some(name), _) = args.target()? else {
        args.expect(0, 0)?;
        let ps = &settings.ps;
        Report::new("ps", "--global")
            .global_setting("restart-policy", ps.restart_policy.clone(), "on-failure:10")
            .global_setting("stop-timeout-seconds", ps.stop_timeout_seconds.map(|s| s.to_string()), "30")
            .print(&args)?;
        return Ok(());
    };
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &name)?;
    let meta = apps::meta(&app)?;
    let rows = container_rows(&ctx.root, &app);
    let policy = |p: &RestartPolicy| p.to_string();
    let mut report = Report::new("ps", &app.name)
        .field("deployed", crate::state::releases::latest(&app.dir).is_some())
        .field("processes", rows.len())
        .field("ps-can-scale", true)
        .field("restore", !meta.stopped)
        .field("running", rows.iter().any(|r| r.pid.is_some()))
        .setting("restart-policy", meta.restart_policy.as_ref().map(policy), settings.ps.restart_policy.clone(), "on-failure:10")
        .setting(
            "stop-timeout-seconds",
            meta.stop_timeout_secs.map(|s| s.to_string()),
            settings.ps.stop_timeout_seconds.map(|s| s.to_string()),
            "30",
        );
    for r in &rows {
        report = report.field(&format!("status-{}-{}", r.process, r.index), format!("{} (CID: {})", r.status, r.container));
    }
    let report = report
        .extra("app", app.name.to_string().into())
        .extra("stopped", meta.stopped.into())
        .extra("containers", serde_json::to_value(&rows)?);
    if !report.print(&args)? {
        return Ok(());
    }
    print_table(&app.name, meta.stopped, &rows);
    Ok(())
}

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    let key = args.text(at).unwrap_or_default();
    let value = args.text(at + 1);
    let (mut policy, mut timeout) = (None, None);
    match (key.as_str(), &value) {
        ("restart-policy", Some(v)) => policy = Some(v.parse::<RestartPolicy>().map_err(anyhow::Error::msg)?),
        ("stop-timeout-seconds", Some(v)) => {
            let secs = v.parse::<u64>().ok().filter(|s| *s <= 3600);
            timeout = Some(secs.ok_or_else(|| anyhow::anyhow!("{v:?} is not a number of seconds from 0 to 3600"))?);
        }
        ("restart-policy" | "stop-timeout-seconds", None) => {}
        _ => bail!("{key:?} is not a ps setting: use restart-policy or stop-timeout-seconds"),
    }
    let restart = key == "restart-policy";
    let whose = match app {
        None => {
            Settings::update(&ctx.root, |s| {
                if restart {
                    s.ps.restart_policy = value.clone();
                } else {
                    s.ps.stop_timeout_seconds = timeout;
                }
            })?;
            "every app".to_owned()
        }
        Some(name) => {
            let locked = apps::lock(&ctx.root, &name)?;
            let mut meta = apps::meta(&locked.app)?;
            if restart {
                meta.restart_policy = policy;
            } else {
                meta.stop_timeout_secs = timeout;
            }
            apps::write_meta(&locked, &meta)?;
            name.to_string()
        }
    };
    let shown = value.unwrap_or_else(|| "unset".into());
    say(&format!("{whose} {key} is {shown}; it applies from the next start (ps:restart)"));
    Ok(())
}

fn inspect(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let mut all = Vec::new();
    for p in processes::of_app(&ctx.root, &app) {
        let dir = ContainerDir::new(&ctx.root, &p.id);
        all.push(serde_json::json!({ "id": p.id.to_string(), "config": dir.config()?, "state": dir.state()? }));
    }
    super::print_json(&all)
}
