//! `app-json:*`: where an app's app.json is, for a repository that keeps
//! it elsewhere than at the top of the build dir.

use super::fields::{Report, report_apps, store};
use super::{Args, Command, Ctx, UsageError};
use crate::model::repo_path::RepoPath;
use crate::state::apps;
use crate::state::settings::Settings;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "app-json:set",
        usage: "APP|--global appjson-path [PATH]",
        about: "Read app.json from PATH inside the build dir (no PATH: unset; default app.json)",
        switches: &["--global"],
        options: &[],
        run: set,
    },
    Command {
        name: "app-json:report",
        usage: "[APP|--global] [--format json] [--FIELD]",
        about: "Where the app's app.json is read from (Dokku's app-json-* fields); no APP: every app",
        switches: &["--global"],
        options: &["--format"],
        run: report,
    },
];

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    if args.text(at).as_deref() != Some("appjson-path") {
        return Err(UsageError("the only app-json setting is appjson-path".into()).into());
    }
    let path = args.text(at + 1).filter(|v| !v.is_empty()).as_deref().map(RepoPath::parse).transpose()?;
    let shown = path.as_ref().map_or("app.json".to_owned(), ToString::to_string);
    store(ctx, app, |s| s.app_json.appjson_path = path.clone(), |m| m.appjson_path = path.clone())?;
    println!("-----> Deploys read {shown}");
    Ok(())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let global = Settings::load(&ctx.root)?.app_json.appjson_path.map(|p| p.to_string());
    if args.switch("--global") {
        args.expect(0, 0)?;
        Report::new("app-json", "--global").global_setting("appjson-path", global, "app.json").print(&args)?;
        return Ok(());
    }
    for name in report_apps(ctx, &args)? {
        let own = apps::meta(&apps::open(&ctx.root, &name)?)?.appjson_path.map(|p| p.to_string());
        Report::new("app-json", &name).setting("appjson-path", own, global.clone(), "app.json").print(&args)?;
    }
    Ok(())
}
