//! `builds:*`: building apps and the records of those builds.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::fields::{Report, report_apps};
use super::{Args, Command, Ctx, UsageError, print_json, wants_json};
use crate::app::AppName;
use crate::build::buildpacks::Source;
use crate::build::records::{self, BuildRecord, BuildStatus};
use crate::build::settings::{self, BuildSettings};
use crate::runtime::{ContainerId, NetworkMode, launch};
use crate::state::apps;
use crate::state::settings::Settings;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "builds:create",
        usage: "APP DIR [--revision REV]",
        about: "Build an app from a source directory into an image (berth/app-APP:bN and :latest)",
        switches: &[],
        options: &["--revision"],
        run: create,
    },
    Command {
        name: "builds:list",
        usage: "[APP] [--kind build|deploy] [--status running|succeeded|failed|abandoned] [--format json]",
        about: "List an app's builds (no APP: the builds running on this host); berth records builds, so --kind deploy lists none",
        switches: &[],
        options: &["--format", "--kind", "--status"],
        run: list,
    },
    Command {
        name: "builds:info",
        usage: "APP ID [--format json]",
        about: "One build's record: status, times, revision, image, buildpacks, error",
        switches: &[],
        options: &["--format"],
        run: info,
    },
    Command {
        name: "builds:prune",
        usage: "APP|--all-apps",
        about: "Drop build records (and their output) beyond the retention; running builds stay",
        switches: &["--all-apps"],
        options: &[],
        run: prune,
    },
    Command {
        name: "builds:output",
        usage: "APP [ID]",
        about: "Print a build's full output (default: the latest)",
        switches: &[],
        options: &[],
        run: output,
    },
    Command { name: "builds:cancel", usage: "APP", about: "Stop the app's running build", switches: &[], options: &[], run: cancel },
    Command {
        name: "builds:set",
        usage: "APP|--global retention [N] | APP network sandbox|host|none | APP timeout SECONDS",
        about: "Build settings: records kept (default 20; no N: unset), the sandbox's network, the wall-clock limit",
        switches: &["--global"],
        options: &[],
        run: set,
    },
    Command {
        name: "builds:report",
        usage: "[APP|--global] [--format json] [--FIELD]",
        about: "The latest build (Dokku's build-* fields), retention, and berth's network, timeout and buildpacks",
        switches: &["--global"],
        options: &["--format"],
        run: report,
    },
];

fn create(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let name = args.app(0)?;
    let dir = PathBuf::from(args.get(1).expect("checked"));
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let revision = args.option("--revision").map(|r| r.to_string_lossy().into_owned());
    let locked = apps::lock(&ctx.root, &name)?;
    let built = crate::build::build(&ctx.root, &locked.app, &dir, revision.as_deref(), &mut |line| println!("{line}"))?;
    let types: Vec<&str> = built.process_types.keys().map(String::as_str).collect();
    println!("=====> Build {} of {name}: {} (process types: {})", built.id, built.image, types.join(", "));
    Ok(())
}

fn list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 1)?;
    let kind = args.option_text("--kind");
    if kind.as_deref().is_some_and(|k| k != "build" && k != "deploy") {
        return Err(UsageError("--kind is build or deploy".into()).into());
    }
    let status = args.option_text("--status");
    let mut builds: Vec<(AppName, BuildRecord)> = Vec::new();
    let names = match args.get(0) {
        Some(_) => vec![args.app(0)?],
        None => apps::list(&ctx.root)?,
    };
    for name in names {
        let app = apps::open(&ctx.root, &name)?;
        let running_only = args.get(0).is_none();
        builds.extend(
            records::list(&app.dir).into_iter().filter(|b| !running_only || b.shown_status() == "running").map(|b| (name.clone(), b)),
        );
    }
    // berth records builds only: a deploy without a build is a release (`releases`).
    builds.retain(|(_, b)| kind.as_deref() != Some("deploy") && status.as_deref().is_none_or(|s| s == b.shown_status()));
    if wants_json(&args)? {
        let rows: Vec<serde_json::Value> = builds.iter().map(|(app, b)| record_json(app, b)).collect();
        return print_json(&rows);
    }
    println!("{:<16} {:>5} {:<6} {:<10} {:<21} {:<30} ERROR", "APP", "ID", "KIND", "STATUS", "STARTED", "IMAGE");
    for (app, b) in builds {
        let image = b.image.clone().unwrap_or_default();
        let error = b.error.clone().unwrap_or_default();
        println!("{:<16} {:>5} {:<6} {:<10} {:<21} {:<30} {}", app, b.id, "build", b.shown_status(), b.started_at, image, error);
    }
    Ok(())
}

/// A record as JSON, with Dokku's `app`, `kind` and display status.
fn record_json(app: &AppName, record: &BuildRecord) -> serde_json::Value {
    let mut value = serde_json::to_value(record).expect("a record serialises");
    value["app"] = app.to_string().into();
    value["kind"] = "build".into();
    value["status"] = record.shown_status().into();
    value
}

fn build_id(args: &Args, i: usize) -> Result<u64, UsageError> {
    let raw = args.text(i).unwrap_or_default();
    raw.parse::<u64>().map_err(|_| UsageError(format!("build id {raw:?} is not a number")))
}

fn info(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let name = args.app(0)?;
    let app = apps::open(&ctx.root, &name)?;
    let id = build_id(&args, 1)?;
    let record = records::list(&app.dir).into_iter().find(|b| b.id == id).with_context(|| format!("{name} has no build {id}"))?;
    let mut json = record_json(&name, &record);
    json["log_path"] = records::log_path(&app.dir, id).display().to_string().into();
    if wants_json(&args)? {
        return print_json(&json);
    }
    println!("=====> Build {id}");
    for key in ["id", "app", "kind", "status", "pid", "started_at", "finished_at", "revision", "image", "buildpacks", "error", "log_path"] {
        let value = match &json[key] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join(", "),
            other => other.to_string(),
        };
        println!("       {:<13}{value}", format!("{key}:"));
    }
    Ok(())
}

fn prune(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let names = if args.switch("--all-apps") {
        args.expect(0, 0)?;
        apps::list(&ctx.root)?
    } else {
        args.expect(1, 1)?;
        vec![args.app(0)?]
    };
    for name in names {
        let locked = apps::lock(&ctx.root, &name)?;
        let dropped = records::prune(&locked.app.dir, settings::retention(&ctx.root, &locked.app.dir));
        println!("-----> {name}: {dropped} build records pruned");
    }
    Ok(())
}

fn output(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 2)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let id = match args.get(1) {
        Some(raw) => raw.to_string_lossy().parse::<u64>().map_err(|_| UsageError(format!("build id {raw:?} is not a number")))?,
        None => records::list(&app.dir).last().map(|b| b.id).context("this app has no builds yet")?,
    };
    let text = std::fs::read(records::log_path(&app.dir, id)).with_context(|| format!("no output kept for build {id}"))?;
    use std::io::Write;
    std::io::stdout().write_all(&text)?;
    Ok(())
}

fn cancel(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let running =
        records::list(&app.dir).into_iter().rev().find(|b| b.status == BuildStatus::Running).context("no build of this app is running")?;
    let id = ContainerId::parse(&running.container)?;
    launch::kill(&ctx.root, &id, "SIGKILL")?;
    println!("-----> Cancelled build {}", running.id);
    Ok(())
}

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    let key = args.text(at).unwrap_or_default();
    let value = args.text(at + 1).filter(|v| !v.is_empty());
    if key == "retention" {
        let keep = value
            .map(|v| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| UsageError(format!("retention {v:?} is not 1 to 10000")))
            })
            .transpose()?;
        let whose = app.as_ref().map_or("every app".to_owned(), ToString::to_string);
        match app {
            None => Settings::update(&ctx.root, |s| s.builds.retention = keep)?,
            Some(name) => {
                let locked = apps::lock(&ctx.root, &name)?;
                let mut settings = BuildSettings::load(&locked.app.dir);
                settings.retention = keep;
                settings.save(&locked.app.dir)?;
            }
        }
        println!("-----> Builds of {whose} keep {} records", keep.map_or("the default number of".to_owned(), |k| k.to_string()));
        return Ok(());
    }
    let Some(name) = app else { return Err(UsageError("the only global build setting is retention".into()).into()) };
    let value = value.ok_or_else(|| UsageError(format!("{key} needs a value")))?;
    let locked = apps::lock(&ctx.root, &name)?;
    let mut settings = BuildSettings::load(&locked.app.dir);
    set_sandbox(&mut settings, &key, &value)?;
    settings.save(&locked.app.dir)?;
    println!("-----> Build settings for {}: network {:?}, timeout {} s", locked.app.name, settings.network, settings.timeout_secs);
    Ok(())
}

/// `network` or `timeout` of the build sandbox.
fn set_sandbox(settings: &mut BuildSettings, key: &str, value: &str) -> anyhow::Result<()> {
    match key {
        "network" => {
            settings.network = value.parse::<NetworkMode>().map_err(|e| UsageError(e.to_string()))?;
            if settings.network == NetworkMode::Bridge {
                bail!("builds use network sandbox, host or none");
            }
        }
        "timeout" => {
            settings.timeout_secs =
                value.parse().ok().filter(|s| *s > 0).ok_or_else(|| UsageError(format!("timeout {value:?} is not a number of seconds")))?
        }
        other => return Err(UsageError(format!("unknown build setting {other:?}: use retention, network or timeout")).into()),
    }
    Ok(())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let global = Settings::load(&ctx.root)?.builds.retention.map(|n| n.to_string());
    let default = records::KEEP.to_string();
    if args.switch("--global") {
        args.expect(0, 0)?;
        Report::new("builds", "--global").global_setting("retention", global, &default).print(&args)?;
        return Ok(());
    }
    for name in report_apps(ctx, &args)? {
        let app = apps::open(&ctx.root, &name)?;
        let settings = BuildSettings::load(&app.dir);
        let latest = records::list(&app.dir).pop();
        let of_latest = |f: fn(&BuildRecord) -> String| latest.as_ref().map(f).unwrap_or_default();
        let buildpacks = super::buildpacks::read_list(&app.dir)?.iter().map(Source::label).collect::<Vec<_>>().join(", ");
        Report::new("builds", &name)
            .field("build-id", of_latest(|b| b.id.to_string()))
            .field("build-kind", of_latest(|_| "build".into()))
            .field("build-status", of_latest(|b| b.shown_status().into()))
            .field("build-pid", of_latest(|b| b.pid.map(|p| p.to_string()).unwrap_or_default()))
            .field("build-started-at", of_latest(|b| b.started_at.clone()))
            .field("build-finished-at", of_latest(|b| b.finished_at.clone().unwrap_or_default()))
            .setting("retention", settings.retention.map(|n| n.to_string()), global.clone(), &default)
            .field("builds-network", format!("{:?}", settings.network).to_lowercase())
            .field("builds-timeout", settings.timeout_secs)
            .field("builds-buildpacks", buildpacks)
            .print(&args)?;
    }
    Ok(())
}
