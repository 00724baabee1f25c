//! `builds:*`, `buildpacks:*` and `repo:purge-cache`: building apps with
//! buildpacks and the records of those builds.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{Args, Command, Ctx, UsageError, print_json, wants_json};
use crate::build::buildpacks::{self, Source};
use crate::build::records::{self, BuildStatus};
use crate::build::settings::{self, BuildSettings};
use crate::runtime::{ContainerId, NetworkMode, launch};
use crate::state::{apps, atomic};

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
        usage: "APP [--format json]",
        about: "List an app's builds",
        switches: &[],
        options: &["--format"],
        run: list,
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
        usage: "APP network sandbox|host|none | timeout SECONDS",
        about: "Build settings: the sandbox's network, the wall-clock limit",
        switches: &[],
        options: &[],
        run: set,
    },
    Command {
        name: "builds:report",
        usage: "APP",
        about: "Show an app's build settings and buildpacks",
        switches: &[],
        options: &[],
        run: report,
    },
    Command { name: "repo:purge-cache", usage: "APP", about: "Empty the app's build cache", switches: &[], options: &[], run: purge_cache },
    Command {
        name: "buildpacks:list",
        usage: "APP",
        about: "List the app's buildpacks (empty: detected)",
        switches: &[],
        options: &[],
        run: bp_list,
    },
    Command {
        name: "buildpacks:add",
        usage: "APP REF [--index N]",
        about: "Add a buildpack: built-in name, absolute path or git URL[#ref]",
        switches: &[],
        options: &["--index"],
        run: bp_add,
    },
    Command {
        name: "buildpacks:set",
        usage: "APP REF...",
        about: "Use exactly these buildpacks, in order",
        switches: &[],
        options: &[],
        run: bp_set,
    },
    Command { name: "buildpacks:remove", usage: "APP REF", about: "Remove one buildpack", switches: &[], options: &[], run: bp_remove },
    Command {
        name: "buildpacks:clear",
        usage: "APP",
        about: "Go back to detection among the built-ins",
        switches: &[],
        options: &[],
        run: bp_clear,
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
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let builds = records::list(&app.dir);
    if wants_json(&args)? {
        return print_json(&builds);
    }
    println!("{:>5} {:<10} {:<21} {:<30} ERROR", "ID", "STATUS", "STARTED", "IMAGE");
    for b in builds {
        let status = serde_json::to_value(b.status)?.as_str().unwrap_or("?").to_owned();
        println!("{:>5} {:<10} {:<21} {:<30} {}", b.id, status, b.started_at, b.image.unwrap_or_default(), b.error.unwrap_or_default());
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
    args.expect(3, 3)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let mut settings = BuildSettings::load(&locked.app.dir);
    let value = args.get(2).expect("checked").to_string_lossy().into_owned();
    match args.get(1).expect("checked").to_string_lossy().as_ref() {
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
        other => return Err(UsageError(format!("unknown build setting {other:?}: use network or timeout")).into()),
    }
    settings.save(&locked.app.dir)?;
    println!("-----> Build settings for {}: network {:?}, timeout {} s", locked.app.name, settings.network, settings.timeout_secs);
    Ok(())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let settings = BuildSettings::load(&app.dir);
    println!("=====> {} builds", app.name);
    println!("       Network:       {:?}", settings.network);
    println!("       Timeout:       {} s", settings.timeout_secs);
    println!("       Buildpacks:    {}", read_list(&app.dir)?.iter().map(Source::label).collect::<Vec<_>>().join(", "));
    println!("       Builds kept:   {}", records::list(&app.dir).len());
    Ok(())
}

fn purge_cache(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let cache = locked.app.dir.join("cache");
    if cache.exists() {
        std::fs::remove_dir_all(&cache).with_context(|| format!("cannot empty {}", cache.display()))?;
    }
    println!("-----> Build cache of {} purged", locked.app.name);
    Ok(())
}

fn read_list(app_dir: &std::path::Path) -> anyhow::Result<Vec<Source>> {
    Ok(buildpacks::parse_list(&std::fs::read_to_string(settings::buildpacks_file(app_dir)).unwrap_or_default())?)
}

fn write_list(app_dir: &std::path::Path, list: &[Source]) -> anyhow::Result<()> {
    let text: String = list.iter().map(|s| format!("{}\n", s.label())).collect();
    atomic::write_atomic(&settings::buildpacks_file(app_dir), text.as_bytes())?;
    Ok(())
}

fn bp_list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    println!("=====> {} buildpack urls", app.name);
    for source in read_list(&app.dir)? {
        println!("{}", source.label());
    }
    Ok(())
}

fn source_arg(args: &Args, i: usize) -> anyhow::Result<Source> {
    let raw = args.get(i).ok_or_else(|| args.usage_error("missing REF"))?;
    Ok(Source::parse(&raw.to_string_lossy())?)
}

fn bp_add(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let source = source_arg(&args, 1)?;
    let mut list = read_list(&locked.app.dir)?;
    if list.contains(&source) {
        bail!("buildpack {} is already set for {}", source.label(), locked.app.name);
    }
    let index = match args.option("--index") {
        Some(i) => {
            i.to_string_lossy()
                .parse::<usize>()
                .ok()
                .filter(|i| *i >= 1)
                .ok_or_else(|| UsageError("--index is a position from 1".into()))?
                - 1
        }
        None => list.len(),
    };
    list.insert(index.min(list.len()), source);
    write_list(&locked.app.dir, &list)
}

fn bp_set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    if args.positional().len() < 2 {
        return Err(args.usage_error("missing REF").into());
    }
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let list = (1..args.positional().len()).map(|i| source_arg(&args, i)).collect::<anyhow::Result<Vec<_>>>()?;
    write_list(&locked.app.dir, &list)
}

fn bp_remove(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let source = source_arg(&args, 1)?;
    let mut list = read_list(&locked.app.dir)?;
    let before = list.len();
    list.retain(|s| *s != source);
    if list.len() == before {
        bail!("buildpack {} is not set for {}", source.label(), locked.app.name);
    }
    write_list(&locked.app.dir, &list)
}

fn bp_clear(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    write_list(&locked.app.dir, &[])
}
