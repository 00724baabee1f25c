//! `config:*`: an app's environment variables.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::bail;

use super::{Args, Command, Ctx, UsageError, print_json};
use crate::state::apps;
use crate::state::config::{ConfigKey, ConfigVars, parse_pair};

pub const COMMANDS: &[Command] = &[
    Command {
        name: "config:set",
        usage: "APP KEY=VALUE... [--no-restart] [--encoded]",
        about: "Set config vars (--encoded: values are base64)",
        switches: &["--no-restart", "--encoded"],
        options: &[],
        run: set,
    },
    Command { name: "config:get", usage: "APP KEY", about: "Print one config var's value", switches: &[], options: &[], run: get },
    Command {
        name: "config:unset",
        usage: "APP KEY... [--no-restart]",
        about: "Remove config vars",
        switches: &["--no-restart"],
        options: &[],
        run: unset,
    },
    Command {
        name: "config:show",
        usage: "APP [--format json|--shell]",
        about: "Show all config vars",
        switches: &["--shell"],
        options: &["--format"],
        run: show,
    },
    Command { name: "config:keys", usage: "APP", about: "List config var names", switches: &[], options: &[], run: keys },
];

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let name = args.app(0)?;
    let pairs = &args.positional()[1..];
    if pairs.is_empty() {
        return Err(args.usage_error("missing KEY=VALUE").into());
    }
    // Every pair is checked before anything is written: all or nothing.
    let parsed = pairs.iter().map(|p| parse_pair(p, args.switch("--encoded"))).collect::<Result<Vec<_>, _>>()?;
    let locked = apps::lock(&ctx.root, &name)?;
    let mut vars = locked.config()?;
    println!("-----> Setting config vars");
    let names: Vec<String> = parsed.iter().map(|(k, _)| k.to_string()).collect();
    for (key, value) in parsed {
        println!("       {key}: {}", String::from_utf8_lossy(&value));
        vars.0.insert(key, value);
    }
    locked.write_config(&vars)?;
    restart(ctx, &args, &locked, &format!("Set {}", names.join(", ")))
}

/// A config change makes a new release and restarts the app on it, unless
/// `--no-restart` (or the app was never deployed).
fn restart(ctx: &Ctx, args: &Args, locked: &apps::LockedApp, description: &str) -> anyhow::Result<()> {
    if args.switch("--no-restart") {
        return Ok(());
    }
    if crate::deploy::redeploy_current(&ctx.root, &locked.app, description, &mut |line| println!("-----> {line}"))?.is_some() {
        println!("-----> Restarted {} with the new config", locked.app.name);
    }
    Ok(())
}

fn keys_from(args: &Args, from: usize) -> Result<Vec<ConfigKey>, anyhow::Error> {
    let raw = &args.positional()[from.min(args.positional().len())..];
    if raw.is_empty() {
        return Err(args.usage_error("missing KEY").into());
    }
    Ok(raw.iter().map(|k| ConfigKey::parse(k)).collect::<Result<Vec<_>, _>>()?)
}

fn get(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let name = args.app(0)?;
    let key = &keys_from(&args, 1)?[0];
    let app = apps::open(&ctx.root, &name)?;
    let vars = ConfigVars::load(&app.env_file())?;
    let Some(value) = vars.0.get(key) else {
        bail!("config var {key} is not set for app {name}");
    };
    let mut out = std::io::stdout().lock();
    out.write_all(value)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn unset(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let name = args.app(0)?;
    let keys = keys_from(&args, 1)?;
    let locked = apps::lock(&ctx.root, &name)?;
    let mut vars = locked.config()?;
    println!("-----> Unsetting config vars");
    let names: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    for key in keys {
        if vars.0.remove(&key).is_some() {
            println!("       {key}");
        } else {
            println!("       {key} (was not set)");
        }
    }
    locked.write_config(&vars)?;
    restart(ctx, &args, &locked, &format!("Unset {}", names.join(", ")))
}

fn show(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let name = args.app(0)?;
    let app = apps::open(&ctx.root, &name)?;
    let vars = ConfigVars::load(&app.env_file())?;
    let json = super::wants_json(&args)?;
    if json && args.switch("--shell") {
        return Err(UsageError("--shell and --format json exclude each other".into()).into());
    }
    if args.switch("--shell") {
        std::io::stdout().lock().write_all(&vars.to_shell())?;
        return Ok(());
    }
    if json {
        let mut map = BTreeMap::new();
        for (key, value) in &vars.0 {
            let Ok(text) = std::str::from_utf8(value) else {
                bail!("config var {key} is not UTF-8 so JSON cannot hold it; use config:get or --shell");
            };
            map.insert(key.as_str(), text);
        }
        return print_json(&map);
    }
    println!("=====> {name} env vars");
    let width = vars.0.keys().map(|k| k.as_str().len() + 1).max().unwrap_or(0);
    for (key, value) in &vars.0 {
        println!("{:<width$} {}", format!("{key}:"), String::from_utf8_lossy(value));
    }
    Ok(())
}

fn keys(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let name = args.app(0)?;
    let app = apps::open(&ctx.root, &name)?;
    for key in ConfigVars::load(&app.env_file())?.0.keys() {
        println!("{key}");
    }
    Ok(())
}
