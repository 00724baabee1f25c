//! `checks:*`: how new containers are let in (health checks, skipping
//! them, or no zero downtime at all) and how long old ones may retire.

use anyhow::bail;

use super::fields::Report;
use super::{Args, Command, Ctx};
use crate::build::procfile::is_process_name;
use crate::state::apps::{self, ALL_PROCESSES};
use crate::state::settings::Settings;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "checks:disable",
        usage: "APP [TYPE,...]",
        about: "No checks and no zero downtime: old containers stop before new ones start (default: all types)",
        switches: &[],
        options: &[],
        run: disable,
    },
    Command {
        name: "checks:enable",
        usage: "APP [TYPE,...]",
        about: "Check new containers before traffic moves (the default)",
        switches: &[],
        options: &[],
        run: enable,
    },
    Command {
        name: "checks:skip",
        usage: "APP [TYPE,...]",
        about: "Start new containers beside the old but switch without checking them",
        switches: &[],
        options: &[],
        run: skip,
    },
    Command {
        name: "checks:set",
        usage: "APP|--global wait-to-retire [SECS]",
        about: "The longest old containers keep serving after a switch (default 60; no SECS: unset)",
        switches: &["--global"],
        options: &[],
        run: set,
    },
    Command {
        name: "checks:run",
        usage: "APP [TYPE,...]",
        about: "Run the current release's health checks against the running containers now (default: all types)",
        switches: &[],
        options: &[],
        run: run_now,
    },
    Command {
        name: "checks:report",
        usage: "APP|--global [--format json] [--FIELD]",
        about: "Check settings and the current release's health checks",
        switches: &["--global"],
        options: &["--format"],
        run: report,
    },
];

/// Checks each running container of the chosen types as a deploy would:
/// its release's health checks, else for web one GET, else that it is up.
fn run_now(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    use crate::deploy::{WEB_PORT, checks, processes};
    let wanted = types(&args)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let Some(release) = crate::state::releases::latest(&app.dir) else { bail!("{} has no release to check", app.name) };
    let chosen = |p: &processes::Process| wanted.iter().any(|w| w == ALL_PROCESSES || *w == p.process);
    let running: Vec<processes::Process> = processes::of_app(&ctx.root, &app).into_iter().filter(|p| chosen(p)).collect();
    if running.is_empty() {
        bail!("{} runs no container of {}", app.name, wanted.join(","));
    }
    let mut failed = 0;
    for process in &running {
        let name = format!("{}.{}", process.process, process.index);
        let checks = release.healthchecks.get(&process.process).cloned().unwrap_or_default();
        let address = process.state.address.as_deref().and_then(|a| a.parse().ok()).filter(|_| process.is_up());
        let outcome = match address {
            None => Err("it is not running".to_owned()),
            Some(address) if checks.is_empty() && process.process == "web" => {
                checks::first_answer(address, WEB_PORT, std::time::Duration::from_secs(10)).map_err(|e| e.to_string())
            }
            Some(address) => checks
                .iter()
                .try_for_each(|check| checks::run(check, address, WEB_PORT, &mut |line| println!("       {line}")))
                .map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(()) => println!("-----> {name}: checks passed"),
            Err(why) => {
                failed += 1;
                println!("-----> {name}: {why}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} containers of {} failed their checks", running.len(), app.name);
    }
    Ok(())
}

/// `web,worker` (or nothing: every type), checked.
fn types(args: &Args) -> anyhow::Result<Vec<String>> {
    args.expect(1, 2)?;
    let Some(list) = args.get(1) else { return Ok(vec![ALL_PROCESSES.to_owned()]) };
    let list = list.to_string_lossy();
    let names: Vec<String> = list.split(',').map(str::to_owned).collect();
    if let Some(bad) = names.iter().find(|n| !is_process_name(n)) {
        bail!("{bad:?} is not a process type name");
    }
    Ok(names)
}

#[derive(Clone, Copy)]
enum Mode {
    Enabled,
    Skipped,
    Disabled,
}

fn change(ctx: &Ctx, args: Args, mode: Mode) -> anyhow::Result<()> {
    let names = types(&args)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let mut meta = apps::meta(&locked.app)?;
    for name in &names {
        if name == ALL_PROCESSES {
            meta.checks.disabled.clear();
            meta.checks.skipped.clear();
        }
        meta.checks.disabled.remove(name);
        meta.checks.skipped.remove(name);
        match mode {
            Mode::Enabled => {}
            Mode::Skipped => {
                meta.checks.skipped.insert(name.clone());
            }
            Mode::Disabled => {
                meta.checks.disabled.insert(name.clone());
            }
        }
    }
    apps::write_meta(&locked, &meta)?;
    let which = if names == [ALL_PROCESSES] { "all process types".to_owned() } else { names.join(", ") };
    let what = match mode {
        Mode::Enabled => "checked before traffic moves",
        Mode::Skipped => "switched without checks",
        Mode::Disabled => "deployed without zero downtime (old containers stop first)",
    };
    println!("-----> {}: {which} {what}", locked.app.name);
    Ok(())
}

fn disable(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    change(ctx, args, Mode::Disabled)
}

fn enable(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    change(ctx, args, Mode::Enabled)
}

fn skip(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    change(ctx, args, Mode::Skipped)
}

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    let key = args.text(at).unwrap_or_default();
    if key != "wait-to-retire" {
        bail!("{key:?} is not a checks setting: use wait-to-retire");
    }
    let secs = match args.text(at + 1) {
        None => None,
        Some(raw) => match raw.parse::<u64>().ok().filter(|s| *s <= 3600) {
            Some(secs) => Some(secs),
            None => bail!("wait-to-retire {raw:?} is not 0 to 3600 seconds"),
        },
    };
    let whose = match app {
        None => {
            Settings::update(&ctx.root, |s| s.checks.wait_to_retire = secs)?;
            "every app".to_owned()
        }
        Some(name) => {
            let locked = apps::lock(&ctx.root, &name)?;
            let mut meta = apps::meta(&locked.app)?;
            meta.checks.wait_to_retire_secs = secs;
            apps::write_meta(&locked, &meta)?;
            name.to_string()
        }
    };
    let secs = secs.map_or_else(|| "the default".to_owned(), |s| format!("{s} s"));
    println!("-----> {whose}: old containers retire at most {secs} after a switch");
    Ok(())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root)?;
    let global = settings.checks.wait_to_retire.map(|s| s.to_string());
    let (Some(name), _) = args.target()? else {
        args.expect(0, 0)?;
        Report::new("checks", "--global").global_setting("wait-to-retire", global, "60").print(&args)?;
        return Ok(());
    };
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &name)?;
    let meta = apps::meta(&app)?;
    let checks = crate::state::releases::latest(&app.dir).map(|r| r.healthchecks).unwrap_or_default();
    let list = |set: &std::collections::BTreeSet<String>| {
        if set.is_empty() {
            "none".to_owned()
        } else {
            set.iter().map(|s| if s == ALL_PROCESSES { "_all_" } else { s }).collect::<Vec<_>>().join(",")
        }
    };
    let report = Report::new("checks", &app.name)
        .field("checks-disabled-list", list(&meta.checks.disabled))
        .field("checks-skipped-list", list(&meta.checks.skipped))
        .setting("wait-to-retire", meta.checks.wait_to_retire_secs.map(|s| s.to_string()), global, "60")
        .extra("healthchecks", serde_json::to_value(&checks)?);
    if !report.print(&args)? {
        return Ok(());
    }
    println!("       web default:         TCP on $PORT before any HTTP check");
    for (process, list) in &checks {
        for c in list {
            let content = c.content.as_deref().map(|t| format!(" expecting {t:?}")).unwrap_or_default();
            println!("       {process}: GET {}{content} ({} attempts, {} s apart, {} s timeout)", c.path, c.attempts, c.wait, c.timeout);
        }
    }
    Ok(())
}
