//! `domains:*` (an app's host names), `proxy:*` (whether nginx routes to
//! it) and `nginx:*` (its server block's options). Every change rewrites
//! the app's server block at once; a name or value nginx could trip on is
//! refused before anything is written.

use anyhow::bail;

use super::{Args, Command, Ctx, UsageError, print_json, wants_json};
use crate::deploy::domain::Domain;
use crate::deploy::nginx::SiteOptions;
use crate::deploy::proxy;
use crate::state::apps::{self, AppMeta, LockedApp};
use crate::state::settings::Settings;

pub const COMMANDS: &[Command] = &[
    Command { name: "domains:add", usage: "APP DOMAIN...", about: "Answer to more host names", switches: &[], options: &[], run: add },
    Command {
        name: "domains:remove",
        usage: "APP DOMAIN...",
        about: "Stop answering to these names",
        switches: &[],
        options: &[],
        run: remove,
    },
    Command {
        name: "domains:set",
        usage: "APP DOMAIN...",
        about: "Answer to exactly these names (APP.<global domain> only if listed)",
        switches: &[],
        options: &[],
        run: set,
    },
    Command {
        name: "domains:clear",
        usage: "APP",
        about: "Answer to no name: nginx stops routing to the app",
        switches: &[],
        options: &[],
        run: clear,
    },
    Command {
        name: "domains:reset",
        usage: "APP",
        about: "Back to the default name APP.<global domain>",
        switches: &[],
        options: &[],
        run: reset,
    },
    Command {
        name: "domains:report",
        usage: "APP [--format json]",
        about: "The names the app answers to",
        switches: &[],
        options: &["--format"],
        run: report,
    },
    Command {
        name: "proxy:disable",
        usage: "APP",
        about: "nginx stops routing to the app (its containers keep running)",
        switches: &[],
        options: &[],
        run: proxy_disable,
    },
    Command { name: "proxy:enable", usage: "APP", about: "nginx routes to the app again", switches: &[], options: &[], run: proxy_enable },
    Command {
        name: "proxy:report",
        usage: "APP [--format json]",
        about: "Whether nginx routes to the app, where it listens, and its upstreams",
        switches: &[],
        options: &["--format"],
        run: proxy_report,
    },
    Command {
        name: "nginx:set",
        usage: "APP client-max-body-size|proxy-read-timeout|proxy-connect-timeout|proxy-send-timeout|access-log-path|error-log-path [VALUE]",
        about: "Set (or without VALUE, unset) an nginx option of the app's server block",
        switches: &[],
        options: &[],
        run: nginx_set,
    },
    Command {
        name: "nginx:report",
        usage: "APP [--format json]",
        about: "The app's nginx options",
        switches: &[],
        options: &["--format"],
        run: nginx_report,
    },
];

fn domains_of(args: &Args) -> anyhow::Result<Vec<Domain>> {
    let raw = &args.positional()[1..];
    if raw.is_empty() {
        return Err(args.usage_error("missing DOMAIN").into());
    }
    // All checked before any is used: one bad name changes nothing.
    Ok(raw.iter().map(|d| Domain::parse(&d.to_string_lossy())).collect::<Result<Vec<_>, _>>()?)
}

/// Applies `change` to the app's metadata, writes it, and rewrites the
/// server block; on an nginx failure the old metadata comes back.
fn update(ctx: &Ctx, locked: &LockedApp, change: impl FnOnce(&Settings, &mut AppMeta)) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root)?;
    let before = apps::meta(&locked.app)?;
    let mut meta = before.clone();
    change(&settings, &mut meta);
    apps::write_meta(locked, &meta)?;
    if let Err(e) = proxy::refresh(&ctx.root, &locked.app) {
        apps::write_meta(locked, &before)?;
        return Err(e.into());
    }
    Ok(())
}

fn show_names(ctx: &Ctx, locked: &LockedApp) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root)?;
    let names = proxy::server_names(&settings, &locked.app, &apps::meta(&locked.app)?);
    println!("-----> {} answers to: {}", locked.app.name, if names.is_empty() { "nothing".to_owned() } else { names.join(" ") });
    Ok(())
}

fn current(settings: &Settings, locked: &LockedApp, meta: &AppMeta) -> Vec<Domain> {
    match &meta.domains {
        Some(list) => list.clone(),
        None => Domain::parse(&proxy::default_name(settings, &locked.app)).map(|d| vec![d]).unwrap_or_default(),
    }
}

fn add(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let wanted = domains_of(&args)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    update(ctx, &locked, |settings, meta| {
        let mut list = current(settings, &locked, meta);
        for d in wanted {
            if !list.contains(&d) {
                list.push(d);
            }
        }
        meta.domains = Some(list);
    })?;
    show_names(ctx, &locked)
}

fn remove(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let unwanted = domains_of(&args)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let settings = Settings::load(&ctx.root)?;
    let list = current(&settings, &locked, &apps::meta(&locked.app)?);
    if let Some(missing) = unwanted.iter().find(|d| !list.contains(d)) {
        bail!("{} does not answer to {missing}", locked.app.name);
    }
    update(ctx, &locked, |_, meta| meta.domains = Some(list.into_iter().filter(|d| !unwanted.contains(d)).collect()))?;
    show_names(ctx, &locked)
}

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let wanted = domains_of(&args)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    update(ctx, &locked, |_, meta| meta.domains = Some(wanted))?;
    show_names(ctx, &locked)
}

fn clear(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    update(ctx, &locked, |_, meta| meta.domains = Some(Vec::new()))?;
    show_names(ctx, &locked)
}

fn reset(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    update(ctx, &locked, |_, meta| meta.domains = None)?;
    show_names(ctx, &locked)
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let settings = Settings::load(&ctx.root)?;
    let names = proxy::server_names(&settings, &app, &apps::meta(&app)?);
    if wants_json(&args)? {
        return print_json(&serde_json::json!({ "domains": names, "global_domain": settings.global_domain() }));
    }
    println!("=====> {} domains", app.name);
    println!("       global domain:       {}", settings.global_domain());
    println!("       app domains:         {}", names.join(" "));
    Ok(())
}

fn proxy_switch(ctx: &Ctx, args: Args, disabled: bool) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    update(ctx, &locked, |_, meta| meta.proxy_disabled = disabled)?;
    println!("-----> nginx {} {}", if disabled { "no longer routes to" } else { "routes to" }, locked.app.name);
    Ok(())
}

fn proxy_disable(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    proxy_switch(ctx, args, true)
}

fn proxy_enable(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    proxy_switch(ctx, args, false)
}

fn proxy_report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let settings = Settings::load(&ctx.root)?;
    let meta = apps::meta(&app)?;
    let upstreams: Vec<String> = proxy::running_upstreams(&ctx.root, &app).iter().map(|(a, p)| format!("{a}:{p}")).collect();
    let report = serde_json::json!({
        "enabled": !meta.proxy_disabled,
        "type": "nginx",
        "listen_port": settings.proxy.listen_port,
        "port_map": format!("http:{}:{}", settings.proxy.listen_port, crate::deploy::WEB_PORT),
        "upstreams": upstreams,
    });
    if wants_json(&args)? {
        return print_json(&report);
    }
    println!("=====> {} proxy", app.name);
    println!("       enabled:             {}", !meta.proxy_disabled);
    println!("       type:                nginx");
    println!("       port map:            http:{}:{}", settings.proxy.listen_port, crate::deploy::WEB_PORT);
    println!("       upstreams:           {}", if upstreams.is_empty() { "none".to_owned() } else { upstreams.join(" ") });
    Ok(())
}

const NGINX_KEYS: &[&str] =
    &["client-max-body-size", "proxy-read-timeout", "proxy-connect-timeout", "proxy-send-timeout", "access-log-path", "error-log-path"];

/// Checks an nginx option's value: sizes, durations and log paths only.
fn checked_value(key: &str, value: &str) -> Result<String, UsageError> {
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
    };
    let ok = match key {
        "client-max-body-size" => digits_then(&["", "k", "K", "m", "M", "g", "G"]),
        "proxy-read-timeout" | "proxy-connect-timeout" | "proxy-send-timeout" => digits_then(&["", "ms", "s", "m", "h"]),
        "access-log-path" => value == "off" || path_ok(),
        "error-log-path" => path_ok(),
        _ => return Err(UsageError(format!("{key:?} is not an nginx option berth sets; see `berth help nginx:set`"))),
    };
    if ok { Ok(value.to_owned()) } else { Err(UsageError(format!("{value:?} is not a value for {key}"))) }
}

fn nginx_set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 3)?;
    let key = args.get(1).expect("checked").to_string_lossy().into_owned();
    if !NGINX_KEYS.contains(&key.as_str()) {
        return Err(UsageError(format!("{key:?} is not an nginx option berth sets: use {}", NGINX_KEYS.join(", "))).into());
    }
    let value = args.get(2).map(|v| checked_value(&key, &v.to_string_lossy())).transpose()?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    update(ctx, &locked, |_, meta| {
        let o: &mut SiteOptions = &mut meta.nginx;
        let slot = match key.as_str() {
            "client-max-body-size" => &mut o.client_max_body_size,
            "proxy-read-timeout" => &mut o.proxy_read_timeout,
            "proxy-connect-timeout" => &mut o.proxy_connect_timeout,
            "proxy-send-timeout" => &mut o.proxy_send_timeout,
            "access-log-path" => &mut o.access_log,
            _ => &mut o.error_log,
        };
        *slot = value.clone();
    })?;
    match value {
        Some(v) => println!("-----> {} nginx {key} is {v}", locked.app.name),
        None => println!("-----> {} nginx {key} is back to nginx's default", locked.app.name),
    }
    Ok(())
}

fn nginx_report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let o = apps::meta(&app)?.nginx;
    if wants_json(&args)? {
        return print_json(&o);
    }
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(nginx default)".into());
    println!("=====> {} nginx", app.name);
    println!("       client-max-body-size:  {}", show(&o.client_max_body_size));
    println!("       proxy-read-timeout:    {}", show(&o.proxy_read_timeout));
    println!("       proxy-connect-timeout: {}", show(&o.proxy_connect_timeout));
    println!("       proxy-send-timeout:    {}", show(&o.proxy_send_timeout));
    println!("       access-log-path:       {}", show(&o.access_log));
    println!("       error-log-path:        {}", show(&o.error_log));
    Ok(())
}
