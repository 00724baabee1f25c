//! `logs`: an app's processes' logs merged in time order, as `heroku logs`
//! shows them, and `logs:failed`: the output of the last failed deploy.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::fields::{Report, report_apps, store};
use super::{Args, Command, Ctx, UsageError};
use crate::app::App;
use crate::deploy::{applogs, processes};
use crate::model::container::{format_log_size, parse_log_size};
use crate::runtime::store::ContainerDir;
use crate::state::apps;
use crate::state::settings::{DEFAULT_LOG_MAX_BYTES, Settings};

pub const COMMANDS: &[Command] = &[
    Command {
        name: "logs",
        usage: "APP [-t|--tail] [-n N] [-p|--ps web.1] [-q|--quiet]",
        about: "Show the app's logs, all processes merged in time order (-t: keep following)",
        switches: &["-t", "--tail", "-q", "--quiet"],
        options: &["-n", "--num", "-p", "--ps"],
        run: logs,
    },
    Command {
        name: "logs:failed",
        usage: "APP|--all",
        about: "Show the container output of the app's last failed deploy (--all: every app's)",
        switches: &["--all"],
        options: &[],
        run: failed,
    },
    Command {
        name: "logs:set",
        usage: "APP|--global max-size [SIZE]",
        about: "Rotate the app's container logs past SIZE (20m, 512k, 1g or unlimited; no SIZE: unset; default 10m), from the next start",
        switches: &["--global"],
        options: &[],
        run: set,
    },
    Command {
        name: "logs:report",
        usage: "[APP|--global] [--format json] [--FIELD]",
        about: "The app's log settings (Dokku's logs-max-size fields); no APP: every app",
        switches: &["--global"],
        options: &["--format"],
        run: report,
    },
];

fn logs(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let lines = match args.option("-n").or(args.option("--num")) {
        None => 100,
        Some(n) => n.to_str().and_then(|n| n.parse::<usize>().ok()).ok_or_else(|| UsageError(format!("-n takes a number, not {n:?}")))?,
    };
    let filter = args.option("-p").or(args.option("--ps")).map(|p| p.to_string_lossy().into_owned());
    let quiet = args.switch("-q") || args.switch("--quiet");
    let living: Vec<_> = processes::of_app(&ctx.root, &app).into_iter().map(|p| p.id).collect();
    let mut out = std::io::stdout().lock();
    for line in applogs::merged_tail(&applogs::sources(&ctx.root, &app, &living), filter.as_deref(), lines) {
        if let Some(shown) = applogs::present(&line, quiet) {
            writeln!(out, "{shown}")?;
        }
    }
    out.flush()?;
    if !(args.switch("-t") || args.switch("--tail")) {
        return Ok(());
    }
    // Follow: every 100 ms, what each living container appended since
    // (new containers from the start of their log), merged by time.
    let mut offsets: HashMap<PathBuf, u64> = living
        .iter()
        .map(|id| {
            let file = ContainerDir::new(&ctx.root, id).log_file();
            let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            (file, len)
        })
        .collect();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let mut batch = Vec::new();
        for process in processes::of_app(&ctx.root, &app) {
            let file = ContainerDir::new(&ctx.root, &process.id).log_file();
            let offset = offsets.entry(file.clone()).or_insert(0);
            batch.extend(appended(&file, offset));
        }
        batch.retain(|l| applogs::matches(l, filter.as_deref()));
        batch.sort();
        for line in batch {
            if let Some(shown) = applogs::present(&line, quiet) {
                writeln!(out, "{shown}")?;
            }
        }
        out.flush()?;
    }
}

/// The complete lines appended to `file` after `offset`, moving it on. A
/// file shorter than the offset was rotated: it is read from the start.
fn appended(file: &PathBuf, offset: &mut u64) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(file) else { return Vec::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len < *offset {
        *offset = 0;
    }
    let mut bytes = Vec::new();
    if f.seek(SeekFrom::Start(*offset)).is_err() || f.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    *offset += complete as u64;
    String::from_utf8_lossy(&bytes[..complete]).lines().map(str::to_owned).collect()
}

fn failed(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    if args.switch("--all") {
        args.expect(0, 0)?;
        for name in apps::list(&ctx.root)? {
            let app = apps::open(&ctx.root, &name)?;
            if applogs::failed_log(&app).exists() {
                println!("=====> {} failed deploy", app.name);
                print_failed(&app)?;
            }
        }
        return Ok(());
    }
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    if !applogs::failed_log(&app).exists() {
        anyhow::bail!("{} has no failed deploy on record", app.name);
    }
    print_failed(&app)
}

fn print_failed(app: &App) -> anyhow::Result<()> {
    let path = applogs::failed_log(app);
    let text = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    for line in String::from_utf8_lossy(&text).lines() {
        println!("{}", applogs::present(line, false).unwrap_or_else(|| line.to_owned()));
    }
    Ok(())
}

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    if args.text(at).as_deref() != Some("max-size") {
        return Err(UsageError("the only logs setting is max-size (berth ships no vector: its logs stay on this host)".into()).into());
    }
    let size = match args.text(at + 1).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(
            parse_log_size(&text)
                .ok_or_else(|| UsageError(format!("max-size takes a number with k, m or g, or unlimited, not {text:?}")))?,
        ),
    };
    let whose = app.as_ref().map_or("every app".to_owned(), ToString::to_string);
    store(ctx, app, |s| s.logs.max_bytes = size, |m| m.log_max_bytes = size)?;
    match size {
        Some(0) => println!("-----> Logs of {whose} never rotate, from the next start"),
        Some(bytes) => println!("-----> Logs of {whose} rotate at {} from the next start", format_log_size(bytes)),
        None => println!("-----> Logs of {whose} rotate at the default size from the next start"),
    }
    Ok(())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let global = Settings::load(&ctx.root)?.logs.max_bytes.map(format_log_size);
    let default = format_log_size(DEFAULT_LOG_MAX_BYTES);
    if args.switch("--global") {
        args.expect(0, 0)?;
        Report::new("logs", "--global").global_setting("max-size", global, &default).print(&args)?;
        return Ok(());
    }
    for name in report_apps(ctx, &args)? {
        let app = apps::open(&ctx.root, &name)?;
        let own = apps::meta(&app)?.log_max_bytes.map(format_log_size);
        Report::new("logs", &app.name).setting("max-size", own, global.clone(), &default).print(&args)?;
    }
    Ok(())
}
