//! `nginx:*`: the options of an app's server block (or every app's, with
//! `--global`), its config and its logs.

use anyhow::{Context, bail};

use super::domains::update;
use super::fields::Report;
use super::proxy::rebuild_blocks;
use super::{Args, Command, Ctx, UsageError};
use crate::deploy::nginx::{self, SiteOptions};
use crate::state::apps;
use crate::state::settings::Settings;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "nginx:set",
        usage: "APP|--global client-max-body-size|proxy-read-timeout|proxy-connect-timeout|proxy-send-timeout|access-log-path|error-log-path [VALUE]",
        about: "Set (or without VALUE, unset) an nginx option of the app's server block (--global: every app's default)",
        switches: &["--global"],
        options: &[],
        run: nginx_set,
    },
    Command {
        name: "nginx:import-ssl",
        usage: "APP < certs.tar",
        about: "Install the certificate and key from a tar of server.crt and server.key on stdin (Dokku's older certs:add)",
        switches: &[],
        options: &[],
        run: import_ssl,
    },
    Command {
        name: "nginx:show-config",
        usage: "APP",
        about: "The app's nginx server block as nginx reads it",
        switches: &[],
        options: &[],
        run: nginx_show_config,
    },
    Command {
        name: "nginx:access-logs",
        usage: "APP [-t]",
        about: "The last 100 lines of the app's nginx access log; -t follows it",
        switches: &["-t", "--tail"],
        options: &[],
        run: nginx_access_logs,
    },
    Command {
        name: "nginx:error-logs",
        usage: "APP [-t]",
        about: "The last 100 lines of the app's nginx error log; -t follows it",
        switches: &["-t", "--tail"],
        options: &[],
        run: nginx_error_logs,
    },
    Command {
        name: "nginx:report",
        usage: "APP|--global [--format json] [--FIELD]",
        about: "The app's nginx options (Dokku's nginx-KEY, -global-, -computed- fields)",
        switches: &["--global"],
        options: &["--format"],
        run: nginx_report,
    },
    Command {
        name: "nginx:validate-config",
        usage: "[APP] [--clean]",
        about: "Test nginx's configuration (nginx -t); --clean sets aside the server blocks that fail on their own",
        switches: &["--clean"],
        options: &[],
        run: nginx_validate,
    },
    Command {
        name: "nginx:reload",
        usage: "",
        about: "Test the configuration, then reload nginx",
        switches: &[],
        options: &[],
        run: nginx_reload,
    },
    Command {
        name: "nginx:start",
        usage: "",
        about: "Start nginx with berth's configuration",
        switches: &[],
        options: &[],
        run: nginx_start,
    },
    Command {
        name: "nginx:stop",
        usage: "",
        about: "Stop nginx gracefully: requests in flight finish, then no app is reachable",
        switches: &[],
        options: &[],
        run: nginx_stop,
    },
];

const NGINX_KEYS: &[&str] =
    &["client-max-body-size", "proxy-read-timeout", "proxy-connect-timeout", "proxy-send-timeout", "access-log-path", "error-log-path"];

/// Where nginx (as root) may be told to write an app's logs: nowhere else,
/// or `nginx:set` would create files anywhere on the host.
fn log_dirs(root: &std::path::Path) -> [String; 2] {
    [format!("{}/logs/", root.display()), "/var/log/nginx/".to_owned()]
}

/// Checks an nginx option's value: sizes, durations and log paths only.
fn checked_value(root: &std::path::Path, key: &str, value: &str) -> Result<String, UsageError> {
    let digits_then = |units: &[&str]| {
        let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
        let (n, unit) = value.split_at(split);
        !n.is_empty() && n.len() <= 9 && units.contains(&unit)
    };
    let path_ok = || {
        value.starts_with('/')
            && value.len() <= 1024
            && !value.contains("..")
            && value.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
            && log_dirs(root).iter().any(|dir| value.starts_with(dir.as_str()))
    };
    let ok = match key {
        "client-max-body-size" => digits_then(&["", "k", "K", "m", "M", "g", "G"]),
        "proxy-read-timeout" | "proxy-connect-timeout" | "proxy-send-timeout" => digits_then(&["", "ms", "s", "m", "h"]),
        "access-log-path" => value == "off" || path_ok(),
        "error-log-path" => path_ok(),
        _ => return Err(UsageError(format!("{key:?} is not an nginx option berth sets; see `berth help nginx:set`"))),
    };
    if ok {
        Ok(value.to_owned())
    } else if key.ends_with("-log-path") {
        Err(UsageError(format!("{value:?} is not a value for {key}: use a file under {} or {}", log_dirs(root)[0], log_dirs(root)[1])))
    } else {
        Err(UsageError(format!("{value:?} is not a value for {key}")))
    }
}

fn nginx_set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    let key = args.text(at).unwrap_or_default();
    if !NGINX_KEYS.contains(&key.as_str()) {
        return Err(UsageError(format!("{key:?} is not an nginx option berth sets: use {}", NGINX_KEYS.join(", "))).into());
    }
    let value = args.text(at + 1).map(|v| checked_value(&ctx.root, &key, &v)).transpose()?;
    let set = |o: &mut SiteOptions| *option_slot(o, &key) = value.clone();
    let whose = match app {
        None => {
            Settings::update(&ctx.root, |s| set(&mut s.nginx))?;
            // Every app's block takes the new default.
            rebuild_blocks(ctx, apps::list(&ctx.root)?, false)?;
            "every app".to_owned()
        }
        Some(name) => {
            let locked = apps::lock(&ctx.root, &name)?;
            update(ctx, &locked, |_, meta| set(&mut meta.nginx))?;
            name.to_string()
        }
    };
    match value {
        Some(v) => println!("-----> {whose}: nginx {key} is {v}"),
        None => println!("-----> {whose}: nginx {key} is back to its default"),
    }
    Ok(())
}

fn option_slot<'a>(o: &'a mut SiteOptions, key: &str) -> &'a mut Option<String> {
    match key {
        "client-max-body-size" => &mut o.client_max_body_size,
        "proxy-read-timeout" => &mut o.proxy_read_timeout,
        "proxy-connect-timeout" => &mut o.proxy_connect_timeout,
        "proxy-send-timeout" => &mut o.proxy_send_timeout,
        "access-log-path" => &mut o.access_log,
        _ => &mut o.error_log,
    }
}

fn nginx_show_config(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let path = crate::deploy::nginx::conf_file(&ctx.root, &app.name);
    match std::fs::read_to_string(&path) {
        Ok(text) => print!("{text}"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("app {} has no server block (not deployed yet, or proxy:disable)", app.name)
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    Ok(())
}

fn nginx_access_logs(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    nginx_logs(ctx, args, true)
}

fn nginx_error_logs(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    nginx_logs(ctx, args, false)
}

/// Shows the app's nginx log with `tail` (argv only); `-t` follows it.
fn nginx_logs(ctx: &Ctx, args: Args, access: bool) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let (access_log, error_log) = crate::deploy::nginx::log_files(&ctx.root, &app.name, &apps::meta(&app)?.nginx);
    let file = if access { access_log } else { error_log };
    if file == "off" {
        bail!("app {}'s access log is off (nginx:set {} access-log-path)", app.name, app.name);
    }
    if !std::path::Path::new(&file).is_file() {
        bail!("{file} does not exist yet: nginx writes it once the app has answered a request");
    }
    super::tail_file(std::path::Path::new(&file), args.switch("-t") || args.switch("--tail"))
}

fn nginx_report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let globals = Settings::load(&ctx.root)?.nginx;
    let (app, _) = args.target()?;
    args.expect(usize::from(app.is_some()), usize::from(app.is_some()))?;
    let own = match &app {
        Some(name) => Some(apps::meta(&apps::open(&ctx.root, name)?)?.nginx),
        None => None,
    };
    let subject = app.map_or_else(|| "--global".to_owned(), |n| n.to_string());
    let mut report = Report::new("nginx", subject);
    for key in NGINX_KEYS {
        let global = option_slot(&mut globals.clone(), key).clone();
        report = match &own {
            Some(o) => report.setting(key, option_slot(&mut o.clone(), key).clone(), global, ""),
            None => report.global_setting(key, global, ""),
        };
    }
    report.print(&args)?;
    Ok(())
}

fn nginx_validate(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 1)?;
    if args.get(0).is_some() {
        let app = apps::open(&ctx.root, &args.app(0)?)?;
        let block = nginx::conf_file(&ctx.root, &app.name);
        if !block.exists() {
            bail!("{} has no server block; proxy:build-config {} writes it", app.name, app.name);
        }
    }
    let settings = Settings::load(&ctx.root)?;
    for aside in nginx::validate(&ctx.root, &settings, args.switch("--clean"))? {
        println!("-----> Set aside {}", aside.display());
    }
    println!("-----> nginx's configuration is valid");
    Ok(())
}

fn nginx_reload(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let settings = Settings::load(&ctx.root)?;
    nginx::validate(&ctx.root, &settings, false)?;
    nginx::reload(&settings)?;
    println!("-----> Reloaded nginx");
    Ok(())
}

fn nginx_start(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let pid = nginx::start(&Settings::load(&ctx.root)?)?;
    println!("-----> nginx runs (pid {pid})");
    Ok(())
}

fn nginx_stop(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    nginx::stop(&Settings::load(&ctx.root)?)?;
    println!("-----> nginx stopped");
    Ok(())
}

fn import_ssl(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    super::certs::add(ctx, args)
}
