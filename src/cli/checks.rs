//! `checks:*`: how new containers are let in (health checks, skipping
//! them, or no zero downtime at all) and how long old ones may retire.

use anyhow::bail;

use super::{Args, Command, Ctx, print_json, wants_json};
use crate::build::procfile::is_process_name;
use crate::state::apps::{self, ALL_PROCESSES};

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
        usage: "APP wait-to-retire SECS",
        about: "The longest old containers keep serving after a switch (default 60)",
        switches: &[],
        options: &[],
        run: set,
    },
    Command {
        name: "checks:report",
        usage: "APP [--format json]",
        about: "Check settings and the current release's health checks",
        switches: &[],
        options: &["--format"],
        run: report,
    },
];

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
    args.expect(3, 3)?;
    if args.get(1).expect("checked") != "wait-to-retire" {
        bail!("{:?} is not a checks setting: use wait-to-retire", args.get(1).expect("checked"));
    }
    let raw = args.get(2).expect("checked").to_string_lossy().into_owned();
    let Some(secs) = raw.parse::<u64>().ok().filter(|s| *s <= 3600) else { bail!("wait-to-retire {raw:?} is not 0 to 3600 seconds") };
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let mut meta = apps::meta(&locked.app)?;
    meta.checks.wait_to_retire_secs = Some(secs);
    apps::write_meta(&locked, &meta)?;
    println!("-----> {}: old containers retire at most {secs} s after a switch", locked.app.name);
    Ok(())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let meta = apps::meta(&app)?;
    let checks = crate::state::releases::latest(&app.dir).map(|r| r.healthchecks).unwrap_or_default();
    if wants_json(&args)? {
        return print_json(&serde_json::json!({
            "disabled": meta.checks.disabled,
            "skipped": meta.checks.skipped,
            "wait_to_retire_secs": meta.checks.retire_wait().as_secs(),
            "healthchecks": checks,
        }));
    }
    let list = |set: &std::collections::BTreeSet<String>| {
        if set.is_empty() {
            "none".to_owned()
        } else {
            set.iter().map(|s| if s == ALL_PROCESSES { "all" } else { s }).collect::<Vec<_>>().join(", ")
        }
    };
    println!("=====> {} checks", app.name);
    println!("       disabled:            {}", list(&meta.checks.disabled));
    println!("       skipped:             {}", list(&meta.checks.skipped));
    println!("       wait to retire:      {} s", meta.checks.retire_wait().as_secs());
    println!("       web default:         TCP on $PORT before any HTTP check");
    for (process, list) in &checks {
        for c in list {
            let content = c.content.as_deref().map(|t| format!(" expecting {t:?}")).unwrap_or_default();
            println!("       {process}: GET {}{content} ({} attempts, {} s apart, {} s timeout)", c.path, c.attempts, c.wait, c.timeout);
        }
    }
    Ok(())
}
