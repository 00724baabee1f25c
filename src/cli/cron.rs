//! `cron:*`: the scheduled jobs app.json lists. List them, run one now,
//! suspend and resume them, and the scheduler that runs them on time.

use anyhow::bail;

use super::fields::Report;
use super::{Args, Command, Ctx, print_json, wants_json};
use crate::deploy::cron;
use crate::state::apps;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "cron:list",
        usage: "APP [--format json]",
        about: "The app's scheduled jobs (app.json cron): id, schedule, command",
        switches: &[],
        options: &["--format"],
        run: list,
    },
    Command {
        name: "cron:run",
        usage: "APP ID [--detach]",
        about: "Run a job now, as the schedule would (never twice at once); --detach returns at once",
        switches: &["--detach"],
        options: &[],
        run: run_now,
    },
    Command {
        name: "cron:suspend",
        usage: "APP [ID]",
        about: "Stop running the app's jobs (or one job) on schedule",
        switches: &[],
        options: &[],
        run: suspend,
    },
    Command {
        name: "cron:resume",
        usage: "APP [ID]",
        about: "Run the app's jobs (or one job) on schedule again",
        switches: &[],
        options: &[],
        run: resume,
    },
    Command {
        name: "cron:set",
        usage: "APP|--global maintenance [true|false]",
        about: "Hold every job of the app (--global: of every app) off its schedule; no value: the default, false",
        switches: &["--global"],
        options: &[],
        run: set,
    },
    Command {
        name: "cron:report",
        usage: "APP|--global [--format json] [--FIELD]",
        about: "How many jobs the app has, which are suspended, and maintenance",
        switches: &["--global"],
        options: &["--format"],
        run: report,
    },
    Command {
        name: "cron:scheduler",
        usage: "",
        about: "Run every app's jobs on schedule until stopped (install.sh starts it at boot)",
        switches: &[],
        options: &[],
        run: scheduler,
    },
];

fn list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let jobs = cron::jobs(&app)?;
    if wants_json(&args)? {
        let rows: Vec<serde_json::Value> = jobs
            .iter()
            .map(|(j, s)| serde_json::json!({ "id": j.id(), "schedule": j.schedule, "command": j.command, "suspended": s }))
            .collect();
        return print_json(&serde_json::Value::Array(rows));
    }
    println!("{:<12} {:<20} {:<10} Command", "ID", "Schedule", "Suspended");
    for (job, suspended) in jobs {
        println!("{:<12} {:<20} {:<10} {}", job.id(), job.schedule, suspended, job.command);
    }
    Ok(())
}

fn run_now(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let locked = apps::open(&ctx.root, &args.app(0)?)?;
    let id = args.get(1).expect("checked").to_string_lossy().into_owned();
    if !cron::jobs(&locked)?.iter().any(|(j, _)| j.id() == id) {
        bail!("app {} has no cron job {id:?}; see cron:list {}", locked.name, locked.name);
    }
    if args.switch("--detach") {
        let exe = std::env::current_exe()?;
        std::process::Command::new(exe)
            .args(["cron:run", locked.name.as_str(), &id])
            .env("BERTH_ROOT", &ctx.root)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        println!("-----> Started job {id}; its output goes to logs {} -p cron", locked.name);
        return Ok(());
    }
    let code = cron::run(&ctx.root, &locked, &id, &mut |line| println!("{line}"))?;
    if code != 0 {
        bail!("job {id} exited with code {code}");
    }
    Ok(())
}

fn suspend(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    switch(ctx, args, true)
}

fn resume(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    switch(ctx, args, false)
}

fn switch(ctx: &Ctx, args: Args, suspend: bool) -> anyhow::Result<()> {
    args.expect(1, 2)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let id = match args.get(1) {
        None => "*".to_owned(),
        Some(id) => {
            let id = id.to_string_lossy().into_owned();
            if !cron::jobs(&locked.app)?.iter().any(|(j, _)| j.id() == id) {
                bail!("app {} has no cron job {id:?}; see cron:list {}", locked.app.name, locked.app.name);
            }
            id
        }
    };
    let mut meta = apps::meta(&locked.app)?;
    if suspend {
        meta.cron_suspended.insert(id.clone());
    } else if id == "*" {
        meta.cron_suspended.clear();
    } else {
        meta.cron_suspended.remove(&id);
    }
    apps::write_meta_of(&locked.app, &meta)?;
    let what = if id == "*" { "every job".to_owned() } else { format!("job {id}") };
    println!("-----> {} {what} of {}", if suspend { "Suspended" } else { "Resumed" }, locked.app.name);
    Ok(())
}

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    let key = args.text(at).unwrap_or_default();
    match key.as_str() {
        "maintenance" => {}
        "mailto" | "mailfrom" => bail!("berth sends no mail: a job's output goes to its log (logs APP -p cron.ID)"),
        other => bail!("{other:?} is not a cron property (maintenance)"),
    }
    let value = match args.text(at + 1).as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => bail!("maintenance must be true or false, not {other:?}"),
    };
    let whose = app.as_ref().map_or("every app".to_owned(), ToString::to_string);
    super::fields::store(ctx, app, |s| s.cron.maintenance = value, |m| m.cron_maintenance = value)?;
    let state = if value == Some(true) { "held off their schedules" } else { "on their schedules" };
    println!("-----> The cron jobs of {whose} are {state}");
    Ok(())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let global = crate::state::settings::Settings::load(&ctx.root)?.cron.maintenance.map(|b| b.to_string());
    let Some(name) = args.target()?.0 else {
        args.expect(0, 0)?;
        Report::new("cron", "--global").global_setting("maintenance", global, "false").print(&args)?;
        return Ok(());
    };
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &name)?;
    let jobs = cron::jobs(&app)?;
    let suspended: Vec<String> = jobs.iter().filter(|(_, s)| *s).map(|(j, _)| j.id()).collect();
    Report::new("cron", &app.name)
        .setting("maintenance", apps::meta(&app)?.cron_maintenance.map(|b| b.to_string()), global, "false")
        .field("cron-task-count", jobs.len())
        .field("cron-suspended", if suspended.is_empty() { "none".to_owned() } else { suspended.join(" ") })
        .print(&args)?;
    Ok(())
}

fn scheduler(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    println!("-----> Running every app's cron jobs on schedule");
    cron::schedule(&ctx.root, &mut |line| println!("-----> {line}"))
}
