//! `ps:*`: what an app runs. Scale, stop, start, restart, restore after a
//! reboot, the per-container report, and the process settings.

use anyhow::bail;
use serde::Serialize;

use super::{Args, Command, Ctx, human_bytes, print_json, wants_json};
use crate::deploy::{self, Replace, formation, processes};
use crate::runtime::store::ContainerDir;
use crate::runtime::{RestartPolicy, cgroup, spec};
use crate::state::apps;

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
        usage: "APP",
        about: "Stop every container of the app; it stays stopped",
        switches: &[],
        options: &[],
        run: stop,
    },
    Command { name: "ps:start", usage: "APP", about: "Start a stopped app's formation again", switches: &[], options: &[], run: start },
    Command {
        name: "ps:restart",
        usage: "APP [TYPE]",
        about: "Replace the app's containers (or one type's) with new ones, web without downtime",
        switches: &[],
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
        usage: "APP [--format json]",
        about: "Each container: type, index, state, pid, address, restarts, uptime, memory",
        switches: &[],
        options: &["--format"],
        run: report,
    },
    Command {
        name: "ps:set",
        usage: "APP restart-policy|stop-timeout-seconds VALUE",
        about: "restart-policy no|on-failure[:N]|always|unless-stopped; stop-timeout-seconds N (next start)",
        switches: &[],
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

fn stop(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    deploy::stop(&ctx.root, &locked.app, &mut say)?;
    say(&format!("{} is stopped", locked.app.name));
    Ok(())
}

fn start(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let url = deploy::start(&ctx.root, &locked.app, &mut say)?;
    say(&format!("{} is running: {url}", locked.app.name));
    Ok(())
}

fn restart(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 2)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let release = deploy::current_release(&locked.app)?;
    let replace = match args.get(1) {
        None => Replace::All,
        Some(t) => {
            let t = t.to_string_lossy().into_owned();
            if !release.process_types.contains_key(&t) {
                bail!("{} has no process type {t:?}", locked.app.name);
            }
            Replace::Only(t)
        }
    };
    if apps::meta(&locked.app)?.stopped {
        bail!("{} is stopped; start it with ps:start", locked.app.name);
    }
    deploy::roll(&ctx.root, &locked.app, &release, &replace, &mut say)?;
    say(&format!("Restarted {}", locked.app.name));
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

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let meta = apps::meta(&app)?;
    let rows: Vec<Row> = processes::of_app(&ctx.root, &app)
        .into_iter()
        .map(|p| {
            let paths = ContainerDir::new(&ctx.root, &p.id);
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
        .collect();
    if wants_json(&args)? {
        return print_json(&serde_json::json!({
            "app": app.name.to_string(),
            "stopped": meta.stopped,
            "restart_policy": meta.restart_policy.unwrap_or_default(),
            "stop_timeout_secs": meta.stop_timeout_secs.unwrap_or(30),
            "containers": rows,
        }));
    }
    println!("=====> {} processes{}", app.name, if meta.stopped { " (stopped)" } else { "" });
    println!(
        "{:<10} {:<9} {:<10} {:>8} {:<15} {:>8} {:>4} {:>5} {:>8} {:>9}",
        "PROCESS", "RELEASE", "STATUS", "PID", "ADDRESS", "RESTARTS", "OOM", "EXIT", "UPTIME", "MEMORY"
    );
    for r in &rows {
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
    Ok(())
}

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(3, 3)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let key = args.get(1).expect("checked").to_string_lossy().into_owned();
    let value = args.get(2).expect("checked").to_string_lossy().into_owned();
    let mut meta = apps::meta(&locked.app)?;
    match key.as_str() {
        "restart-policy" => meta.restart_policy = Some(value.parse::<RestartPolicy>().map_err(anyhow::Error::msg)?),
        "stop-timeout-seconds" => {
            let secs = value.parse::<u64>().ok().filter(|s| *s <= 3600);
            meta.stop_timeout_secs = Some(secs.ok_or_else(|| anyhow::anyhow!("{value:?} is not a number of seconds from 0 to 3600"))?);
        }
        _ => bail!("{key:?} is not a ps setting: use restart-policy or stop-timeout-seconds"),
    }
    apps::write_meta(&locked, &meta)?;
    say(&format!("{} {key} is {value}; it applies from the next start (ps:restart)", locked.app.name));
    Ok(())
}
