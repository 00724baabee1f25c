//! `config:*`: an app's environment variables.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::bail;

use super::{Args, Command, Ctx, UsageError, print_json};
use crate::state::apps;
use crate::state::atomic;
use crate::state::config::{ConfigKey, ConfigVars, global_env_file, parse_pair};

pub const COMMANDS: &[Command] = &[
    Command {
        name: "config:set",
        usage: "APP|--global KEY=VALUE... [--no-restart] [--encoded]",
        about: "Set config vars (--encoded: values are base64; --global: every app's, from its next deploy)",
        switches: &["--no-restart", "--encoded", "--global"],
        options: &[],
        run: set,
    },
    Command {
        name: "config:get",
        usage: "APP|--global KEY",
        about: "Print one config var's value",
        switches: &["--global"],
        options: &[],
        run: get,
    },
    Command {
        name: "config:unset",
        usage: "APP|--global KEY... [--no-restart]",
        about: "Remove config vars",
        switches: &["--no-restart", "--global"],
        options: &[],
        run: unset,
    },
    Command {
        name: "config:show",
        usage: "APP|--global [--format json|--shell]",
        about: "Show all config vars",
        switches: &["--shell", "--global"],
        options: &["--format"],
        run: show,
    },
    Command {
        name: "config:clear",
        usage: "APP|--global [--no-restart]",
        about: "Remove every config var",
        switches: &["--no-restart", "--global"],
        options: &[],
        run: clear,
    },
    Command {
        name: "config:export",
        usage: "APP|--global [--format exports|envfile|shell|json|json-list|pretty]",
        about: "Print the config vars in a form another tool reads (default: shell exports)",
        switches: &["--global"],
        options: &["--format"],
        run: export,
    },
    Command {
        name: "config:keys",
        usage: "APP|--global",
        about: "List config var names",
        switches: &["--global"],
        options: &[],
        run: keys,
    },
];

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    let pairs = &args.positional()[at..];
    if pairs.is_empty() {
        return Err(args.usage_error("missing KEY=VALUE").into());
    }
    // Every pair is checked before anything is written: all or nothing.
    let parsed = pairs.iter().map(|p| parse_pair(p, args.switch("--encoded"))).collect::<Result<Vec<_>, _>>()?;
    let Some(name) = app else {
        let mut vars = ConfigVars::load(&global_env_file(&ctx.root))?;
        println!("-----> Setting global config vars (each app from its next deploy or restart)");
        for (key, value) in parsed {
            println!("       {key}: {}", String::from_utf8_lossy(&value));
            vars.0.insert(key, value);
        }
        return Ok(atomic::write_secret(&global_env_file(&ctx.root), &vars.encode())?);
    };
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
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 1)?;
    let key = &keys_from(&args, at)?[0];
    let vars = vars_of(ctx, app.as_ref())?;
    let Some(value) = vars.0.get(key) else {
        match app {
            Some(name) => bail!("config var {key} is not set for app {name}"),
            None => bail!("global config var {key} is not set"),
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(value)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn unset(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    let keys = keys_from(&args, at)?;
    let Some(name) = app else {
        let mut vars = ConfigVars::load(&global_env_file(&ctx.root))?;
        for key in &keys {
            vars.0.remove(key);
        }
        println!("-----> Unset global config vars (each app from its next deploy or restart)");
        return Ok(atomic::write_secret(&global_env_file(&ctx.root), &vars.encode())?);
    };
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

/// The vars of an app (its own), or with no app the global ones.
fn vars_of(ctx: &Ctx, app: Option<&crate::app::AppName>) -> anyhow::Result<ConfigVars> {
    Ok(match app {
        Some(name) => ConfigVars::load(&apps::open(&ctx.root, name)?.env_file())?,
        None => ConfigVars::load(&global_env_file(&ctx.root))?,
    })
}

fn show(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at, at)?;
    let vars = vars_of(ctx, app.as_ref())?;
    let name = app.map_or_else(|| "global".to_owned(), |n| n.to_string());
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
    let (app, at) = args.target()?;
    args.expect(at, at)?;
    for key in vars_of(ctx, app.as_ref())?.0.keys() {
        println!("{key}");
    }
    Ok(())
}

fn clear(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at, at)?;
    let Some(name) = app else {
        atomic::write_secret(&global_env_file(&ctx.root), &ConfigVars::default().encode())?;
        println!("-----> Cleared the global config vars (each app from its next deploy or restart)");
        return Ok(());
    };
    let locked = apps::lock(&ctx.root, &name)?;
    locked.write_config(&ConfigVars::default())?;
    println!("-----> Cleared the config vars of {name}");
    restart(ctx, &args, &locked, "Cleared config vars")
}

/// `config:export`: Dokku's formats, each value quoted for its reader.
fn export(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at, at)?;
    let vars = vars_of(ctx, app.as_ref())?;
    let format = args.option("--format").map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "exports".into());
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let quoted = |v: &[u8]| format!("'{}'", text(v).replace('\'', "'\\''"));
    let mut out = std::io::stdout().lock();
    match format.as_str() {
        "exports" => out.write_all(&vars.to_shell())?,
        "envfile" => vars.0.iter().try_for_each(|(k, v)| writeln!(out, "{k}={}", quoted(v)))?,
        "shell" => {
            let pairs: Vec<String> = vars.0.iter().map(|(k, v)| format!("{k}={}", quoted(v))).collect();
            writeln!(out, "{}", pairs.join(" "))?
        }
        "json" => {
            let map: BTreeMap<&str, String> = vars.0.iter().map(|(k, v)| (k.as_str(), text(v))).collect();
            writeln!(out, "{}", serde_json::to_string(&map)?)?
        }
        "json-list" => {
            let list: Vec<serde_json::Value> =
                vars.0.iter().map(|(k, v)| serde_json::json!({ "name": k.as_str(), "value": text(v) })).collect();
            writeln!(out, "{}", serde_json::to_string(&list)?)?
        }
        "pretty" => {
            let width = vars.0.keys().map(|k| k.as_str().len() + 1).max().unwrap_or(0);
            vars.0.iter().try_for_each(|(k, v)| writeln!(out, "{:<width$} {}", format!("{k}:"), text(v)))?
        }
        other => {
            return Err(UsageError(format!(
                "unknown format {other:?}: use exports, envfile, shell, json, json-list or pretty (berth has no docker-args)"
            ))
            .into());
        }
    }
    Ok(())
}
