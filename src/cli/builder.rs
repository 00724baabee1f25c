//! `builder:*`: how an app is built. berth has one builder, Heroku-style
//! buildpacks (Dokku's `herokuish`); the setting that matters is
//! `build-dir`, the subdirectory of a monorepo an app builds from.

use anyhow::bail;

use super::fields::{Report, report_apps, store};
use super::{Args, Command, Ctx, UsageError};
use crate::model::repo_path::RepoPath;
use crate::state::apps;
use crate::state::settings::Settings;

/// The one builder berth has, by Dokku's name for it.
const BUILDER: &str = "herokuish";

pub const COMMANDS: &[Command] = &[
    Command {
        name: "builder:set",
        usage: "APP|--global build-dir|selected [VALUE]",
        about: "Build from a subdirectory of the push (build-dir, for a monorepo); selected takes herokuish, berth's only builder (no VALUE unsets)",
        switches: &["--global"],
        options: &[],
        run: set,
    },
    Command {
        name: "builder:report",
        usage: "[APP|--global] [--format json] [--FIELD]",
        about: "The app's builder settings (Dokku's builder-* fields); no APP: every app",
        switches: &["--global"],
        options: &["--format"],
        run: report,
    },
];

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    let value = args.text(at + 1).filter(|v| !v.is_empty());
    match args.text(at).as_deref() {
        Some("build-dir") => {
            let dir = value.as_deref().map(RepoPath::parse).transpose()?;
            let shown = dir.as_ref().map_or("the push's top directory".to_owned(), ToString::to_string);
            store(ctx, app, |s| s.builder.build_dir = dir.clone(), |m| m.build_dir = dir.clone())?;
            println!("-----> Builds start from {shown}");
        }
        Some("selected") => {
            if let Some(other) = value.as_deref().filter(|v| *v != BUILDER) {
                bail!("berth builds with buildpacks only (herokuish); it has no {other} builder");
            }
            store(ctx, app, |s| s.builder.selected = value.clone(), |m| m.builder_selected = value.clone())?;
            println!("-----> Builds use buildpacks (herokuish)");
        }
        _ => return Err(UsageError("builder settings are build-dir and selected".into()).into()),
    }
    Ok(())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let globals = Settings::load(&ctx.root)?.builder;
    let global_dir = globals.build_dir.as_ref().map(ToString::to_string);
    if args.switch("--global") {
        args.expect(0, 0)?;
        Report::new("builder", "--global")
            .global_setting("build-dir", global_dir, "")
            .global_setting("selected", globals.selected, BUILDER)
            .print(&args)?;
        return Ok(());
    }
    for name in report_apps(ctx, &args)? {
        let meta = apps::meta(&apps::open(&ctx.root, &name)?)?;
        Report::new("builder", &name)
            .setting("build-dir", meta.build_dir.map(|d| d.to_string()), global_dir.clone(), "")
            .setting("selected", meta.builder_selected, globals.selected.clone(), BUILDER)
            .print(&args)?;
    }
    Ok(())
}
