//! `buildpacks:*`: which buildpacks build an app (none: detected among the
//! built-ins) and which stack it builds on.

use anyhow::bail;

use super::fields::Report;
use super::{Args, Command, Ctx, UsageError};
use crate::build::buildpacks::{self, Source};
use crate::build::settings;
use crate::state::settings::Settings;
use crate::state::{apps, atomic};

pub const COMMANDS: &[Command] = &[
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
    Command {
        name: "buildpacks:set-property",
        usage: "APP|--global stack [NAME]",
        about: "Build on stack NAME (see stacks:list; default bookworm); no NAME: unset",
        switches: &["--global"],
        options: &[],
        run: set_property,
    },
    Command {
        name: "buildpacks:report",
        usage: "APP|--global [--format json] [--FIELD]",
        about: "The app's buildpacks and stack (Dokku's buildpacks-* fields)",
        switches: &["--global"],
        options: &["--format"],
        run: report,
    },
];

pub(super) fn read_list(app_dir: &std::path::Path) -> anyhow::Result<Vec<Source>> {
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

fn set_property(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    let key = args.text(at).unwrap_or_default();
    if key != "stack" {
        bail!("{key:?} is not a buildpacks property (stack)");
    }
    let stack = args.text(at + 1).filter(|s| !s.is_empty());
    if let Some(name) = &stack {
        let name = crate::stack::StackName::parse(name)?;
        let known = crate::stack::list(&crate::image::Store::open(&ctx.root)?)?;
        if !known.contains(&name) {
            let names: Vec<String> = known.iter().map(ToString::to_string).collect();
            let have = if names.is_empty() { "none yet".to_owned() } else { names.join(", ") };
            bail!("there is no stack {name} on this host (stacks: {have}); build or pull it first");
        }
    }
    let whose = app.as_ref().map_or("every app".to_owned(), ToString::to_string);
    super::fields::store(ctx, app, |s| s.buildpacks.stack = stack.clone(), |m| m.stack = stack.clone())?;
    let on = stack.unwrap_or_else(|| format!("{} (the default)", crate::build::DEFAULT_STACK));
    println!("-----> {whose} builds on the {on} stack from the next build");
    Ok(())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let global = Settings::load(&ctx.root)?.buildpacks.stack;
    let default = crate::build::DEFAULT_STACK;
    let Some(name) = args.target()?.0 else {
        args.expect(0, 0)?;
        Report::new("buildpacks", "--global").global_setting("stack", global, default).print(&args)?;
        return Ok(());
    };
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &name)?;
    let list: Vec<String> = read_list(&app.dir)?.iter().map(Source::label).collect();
    Report::new("buildpacks", &app.name)
        .field("buildpacks-list", list.join(","))
        .setting("stack", apps::meta(&app)?.stack, global, default)
        .print(&args)?;
    Ok(())
}
