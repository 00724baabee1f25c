//! `resource:*`: cgroup limits and reservations per app and process type,
//! applied when containers next start (`ps:restart`, a deploy).

use std::collections::BTreeMap;

use anyhow::bail;

use super::fields::{Report, report_apps};
use super::{Args, Command, Ctx, UsageError};
use crate::model::container::format_log_size;
use crate::runtime::Limits;
use crate::runtime::store::parse_size;
use crate::state::apps;

/// The key for limits that apply to every process type without its own.
const ALL_TYPES: &str = "_default";

pub const COMMANDS: &[Command] = &[
    Command {
        name: "resource:limit",
        usage: "APP [--process-type TYPE] [--memory 512m] [--cpu 0.5] [--pids 256]",
        about: "Cap memory, CPUs and processes (enforced by cgroups from the next start)",
        switches: &[],
        options: &["--process-type", "--memory", "--cpu", "--pids"],
        run: limit,
    },
    Command {
        name: "resource:limit-clear",
        usage: "APP [--process-type TYPE]",
        about: "Remove the limits",
        switches: &[],
        options: &["--process-type"],
        run: limit_clear,
    },
    Command {
        name: "resource:reserve",
        usage: "APP [--process-type TYPE] [--memory 256m] [--cpu 0.25]",
        about: "Reserve memory (reclaimed last) and a CPU share under contention",
        switches: &[],
        options: &["--process-type", "--memory", "--cpu"],
        run: reserve,
    },
    Command {
        name: "resource:reserve-clear",
        usage: "APP [--process-type TYPE]",
        about: "Remove the reservations",
        switches: &[],
        options: &["--process-type"],
        run: reserve_clear,
    },
    Command {
        name: "resource:report",
        usage: "[APP] [--format json] [--FIELD]",
        about: "Limits and reservations by process type",
        switches: &[],
        options: &["--format"],
        run: report,
    },
];

fn text(args: &Args, flag: &str) -> Option<String> {
    args.option(flag).map(|v| v.to_string_lossy().into_owned())
}

fn process_type(args: &Args) -> Result<String, UsageError> {
    match text(args, "--process-type") {
        None => Ok(ALL_TYPES.to_owned()),
        Some(t) if crate::build::procfile::is_process_name(&t) => Ok(t),
        Some(t) => Err(UsageError(format!("{t:?} is not a process type name"))),
    }
}

fn memory(args: &Args) -> Result<Option<i64>, UsageError> {
    text(args, "--memory").map(|m| parse_size(&m).ok_or_else(|| UsageError(format!("--memory {m:?} is not a size like 512m")))).transpose()
}

fn cpu(args: &Args) -> Result<Option<f64>, UsageError> {
    text(args, "--cpu")
        .map(|c| {
            c.parse::<f64>()
                .ok()
                .filter(|c| *c > 0.0 && *c <= 1024.0)
                .ok_or_else(|| UsageError(format!("--cpu {c:?} is not a number of CPUs like 0.5")))
        })
        .transpose()
}

/// Applies `change` to the process type's entry, all inputs checked first.
fn update(ctx: &Ctx, args: &Args, change: impl FnOnce(&mut Limits)) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let kind = process_type(args)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let mut meta = apps::meta(&locked.app)?;
    let entry = meta.limits.entry(kind.clone()).or_default();
    change(entry);
    if *entry == Limits::default() {
        meta.limits.remove(&kind);
    }
    apps::write_meta(&locked, &meta)?;
    let which = if kind == ALL_TYPES { "every process type".to_owned() } else { kind };
    println!("-----> Resources of {} for {which} set; they apply from the next start (ps:restart)", locked.app.name);
    Ok(())
}

fn limit(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (memory, cpus) = (memory(&args)?, cpu(&args)?);
    let pids = text(&args, "--pids")
        .map(|p| p.parse::<i64>().ok().filter(|p| *p > 0).ok_or_else(|| UsageError(format!("--pids {p:?} is not a positive number"))))
        .transpose()?;
    if memory.is_none() && cpus.is_none() && pids.is_none() {
        bail!("say what to limit: --memory, --cpu or --pids");
    }
    update(ctx, &args, |l| {
        l.memory_bytes = memory.or(l.memory_bytes);
        l.cpus = cpus.or(l.cpus);
        l.pids = pids.or(l.pids);
    })
}

fn limit_clear(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    update(ctx, &args, |l| {
        l.memory_bytes = None;
        l.cpus = None;
        l.pids = None;
    })
}

fn reserve(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (memory, cpus) = (memory(&args)?, cpu(&args)?);
    if memory.is_none() && cpus.is_none() {
        bail!("say what to reserve: --memory or --cpu");
    }
    update(ctx, &args, |l| {
        l.memory_reservation_bytes = memory.or(l.memory_reservation_bytes);
        l.cpu_reservation = cpus.or(l.cpu_reservation);
    })
}

fn reserve_clear(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    update(ctx, &args, |l| {
        l.memory_reservation_bytes = None;
        l.cpu_reservation = None;
    })
}

/// Dokku's fields, one set per process type (`--resource-web.limit.memory`):
/// every type with limits of its own, `_default_` for the app-wide ones,
/// and the current release's types. Only what berth enforces is listed.
fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    for name in report_apps(ctx, &args)? {
        let app = apps::open(&ctx.root, &name)?;
        let limits: BTreeMap<String, Limits> = apps::meta(&app)?.limits;
        let mut types: std::collections::BTreeSet<String> = limits.keys().cloned().collect();
        types.extend(crate::state::releases::latest(&app.dir).map(|r| r.process_types.into_keys()).into_iter().flatten());
        let size = |b: Option<i64>| b.map(|b| format_log_size(b as u64)).unwrap_or_default();
        let num = |n: Option<f64>| n.map(|n| n.to_string()).unwrap_or_default();
        let mut report = Report::new("resource", &name).extra("limits", serde_json::to_value(&limits)?);
        for kind in types {
            let l = limits.get(&kind).cloned().unwrap_or_default();
            let label = if kind == ALL_TYPES { "_default_".to_owned() } else { kind };
            report = report
                .field(&format!("resource-{label}.limit.cpu"), num(l.cpus))
                .field(&format!("resource-{label}.limit.memory"), size(l.memory_bytes))
                .field(&format!("resource-{label}.limit.pids"), l.pids.map(|p| p.to_string()).unwrap_or_default())
                .field(&format!("resource-{label}.reservation.cpu"), num(l.cpu_reservation))
                .field(&format!("resource-{label}.reservation.memory"), size(l.memory_reservation_bytes));
        }
        report.print(&args)?;
    }
    Ok(())
}
