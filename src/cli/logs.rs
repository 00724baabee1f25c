//! `logs`: an app's processes' logs merged in time order, as `heroku logs`
//! shows them, and `logs:failed`: the output of the last failed deploy.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::{Args, Command, Ctx, UsageError};
use crate::deploy::{applogs, processes};
use crate::runtime::store::ContainerDir;
use crate::state::apps;

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
        usage: "APP",
        about: "Show the container output of the app's last failed deploy",
        switches: &[],
        options: &[],
        run: failed,
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
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let path = applogs::failed_log(&app);
    if !path.exists() {
        anyhow::bail!("{} has no failed deploy on record", app.name);
    }
    let text = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    for line in String::from_utf8_lossy(&text).lines() {
        println!("{}", applogs::present(line, false).unwrap_or_else(|| line.to_owned()));
    }
    Ok(())
}
