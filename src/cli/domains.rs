//! `domains:*` (an app's host names), `proxy:*` (whether nginx routes to
//! it) and `nginx:*` (its server block's options). Every change rewrites
//! the app's server block at once; a name or value nginx could trip on is
//! refused before anything is written.

use anyhow::{Context, bail};

use super::fields::Report;
use super::{Args, Command, Ctx, UsageError, print_json, wants_json};
use crate::deploy::nginx::{Listener, SiteOptions};
use crate::deploy::proxy;
use crate::model::domain::Domain;
use crate::model::ports::PortMap;
use crate::runtime::balancer;
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
        about: "Back to the default names APP.<each global domain>",
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
        name: "proxy:rebuild",
        usage: "APP | --all",
        about: "Write server blocks again from state; --all also sets aside blocks no app owns",
        switches: &["--all"],
        options: &[],
        run: proxy_rebuild,
    },
    Command {
        name: "proxy:report",
        usage: "APP [--format json]",
        about: "Whether nginx routes to the app, where it listens, and its upstreams",
        switches: &[],
        options: &["--format"],
        run: proxy_report,
    },
    Command {
        name: "proxy:ports",
        usage: "APP [--format json]",
        about: "The app's port mappings (SCHEME:HOST_PORT:CONTAINER_PORT)",
        switches: &[],
        options: &["--format"],
        run: ports,
    },
    Command {
        name: "proxy:ports-add",
        usage: "APP SCHEME:HOST_PORT:CONTAINER_PORT...",
        about: "Listen on more ports (http or https); a host port already mapped is replaced",
        switches: &[],
        options: &[],
        run: ports_add,
    },
    Command {
        name: "proxy:ports-set",
        usage: "APP SCHEME:HOST_PORT:CONTAINER_PORT...",
        about: "Listen on exactly these ports",
        switches: &[],
        options: &[],
        run: ports_set,
    },
    Command {
        name: "proxy:ports-remove",
        usage: "APP MAPPING|HOST_PORT...",
        about: "Stop listening on these ports",
        switches: &[],
        options: &[],
        run: ports_remove,
    },
    Command {
        name: "proxy:ports-clear",
        usage: "APP",
        about: "Back to http on the listen port to $PORT (and https with a certificate)",
        switches: &[],
        options: &[],
        run: ports_clear,
    },
    Command {
        name: "domains:set-global",
        usage: "DOMAIN...",
        about: "Serve apps at APP.DOMAIN for each of these domains",
        switches: &[],
        options: &[],
        run: set_global,
    },
    Command { name: "domains:add-global", usage: "DOMAIN...", about: "Add global domains", switches: &[], options: &[], run: add_global },
    Command {
        name: "domains:remove-global",
        usage: "DOMAIN...",
        about: "Remove global domains",
        switches: &[],
        options: &[],
        run: remove_global,
    },
    Command {
        name: "domains:clear-global",
        usage: "",
        about: "Back to the host's name as the only global domain",
        switches: &[],
        options: &[],
        run: clear_global,
    },
    Command {
        name: "domains:report-global",
        usage: "[--format json]",
        about: "The global domains, one per line",
        switches: &[],
        options: &["--format"],
        run: report_global,
    },
    Command {
        name: "nginx:set",
        usage: "APP|--global client-max-body-size|proxy-read-timeout|proxy-connect-timeout|proxy-send-timeout|access-log-path|error-log-path [VALUE]",
        about: "Set (or without VALUE, unset) an nginx option of the app's server block (--global: every app's default)",
        switches: &["--global"],
        options: &[],
        run: nginx_set,
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
        None => proxy::default_names(settings, &locked.app).iter().filter_map(|n| Domain::parse(n).ok()).collect(),
    }
}

/// A name answers for one app only: another app claiming it would take its
/// traffic. Refuses the first of `wanted` that another app answers to.
fn check_unclaimed(ctx: &Ctx, app: &crate::app::AppName, wanted: &[Domain]) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root)?;
    for other in apps::list(&ctx.root)?.into_iter().filter(|o| o != app) {
        let other_app = apps::open(&ctx.root, &other)?;
        let names = proxy::server_names(&settings, &other_app, &apps::meta(&other_app)?);
        if let Some(taken) = wanted.iter().find(|d| names.iter().any(|n| n.eq_ignore_ascii_case(&d.to_string()))) {
            bail!("{taken} already belongs to app {other}; remove it there first");
        }
    }
    Ok(())
}

fn add(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let wanted = domains_of(&args)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    check_unclaimed(ctx, &locked.app.name, &wanted)?;
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
    check_unclaimed(ctx, &locked.app.name, &wanted)?;
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
        return print_json(&serde_json::json!({ "domains": names, "global_domains": settings.global_domains() }));
    }
    println!("=====> {} domains", app.name);
    println!("       global domains:      {}", settings.global_domains().join(" "));
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

fn proxy_rebuild(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let all = args.switch("--all");
    args.expect(usize::from(!all), usize::from(!all))?;
    let names = if all { apps::list(&ctx.root)? } else { vec![args.app(0)?] };
    rebuild_blocks(ctx, names, all)
}

fn rebuild_blocks(ctx: &Ctx, names: Vec<crate::app::AppName>, all: bool) -> anyhow::Result<()> {
    // Every app locked at once: no deploy writes a block while they are rebuilt.
    let locked: Vec<LockedApp> = names.iter().map(|n| apps::lock(&ctx.root, n)).collect::<Result<_, _>>()?;
    let apps: Vec<crate::app::App> = locked.iter().map(|l| l.app.clone()).collect();
    let aside = proxy::rebuild(&ctx.root, &apps, all)?;
    for block in &aside {
        println!("-----> Set aside {}", block.display());
    }
    println!("-----> Rebuilt the server blocks of {} app(s)", apps.len());
    Ok(())
}

fn proxy_report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let settings = Settings::load(&ctx.root)?;
    let meta = apps::meta(&app)?;
    let port_maps = proxy::port_maps(&settings, &meta);
    let maps: Vec<String> = port_maps.iter().map(|m| m.to_string()).collect();
    let addresses: Vec<String> = proxy::running_addresses(&ctx.root, &app).iter().map(|a| a.to_string()).collect();
    let listening: Vec<String> = proxy::listeners(&settings, &app, &port_maps).iter().map(describe).collect();
    let vip = balancer::existing_vip(&ctx.root, &proxy::vip_name(&app.name));
    let serving: Vec<String> =
        vip.map(|v| balancer::backends(&ctx.root, v)).unwrap_or_default().iter().map(|(id, a)| format!("{id} ({a})")).collect();
    let report = serde_json::json!({
        "enabled": !meta.proxy_disabled,
        "type": "nginx",
        "port_map": maps,
        "listeners": listening,
        "stable_address": vip.map(|v| v.to_string()),
        "serving": serving,
        "web_containers": addresses,
    });
    if wants_json(&args)? {
        return print_json(&report);
    }
    println!("=====> {} proxy", app.name);
    println!("       enabled:             {}", !meta.proxy_disabled);
    println!("       type:                nginx");
    println!("       port map:            {}", maps.join(" "));
    println!("       listeners:           {}", listening.join(", "));
    println!("       web containers:      {}", if addresses.is_empty() { "none".to_owned() } else { addresses.join(" ") });
    println!("       stable address:      {}", vip.map_or("none".to_owned(), |v| v.to_string()));
    println!("       serving:             {}", if serving.is_empty() { "none".to_owned() } else { serving.join(" ") });
    Ok(())
}

fn describe(listener: &Listener) -> String {
    match listener {
        Listener::Http { port, container } => format!("http {port} -> {container}"),
        Listener::Https { port, container, .. } => format!("https {port} -> {container}"),
        Listener::Redirect { port, https_port } => format!("http {port} redirects to https {https_port}"),
    }
}

fn ports_of(args: &Args) -> anyhow::Result<Vec<PortMap>> {
    let raw: Vec<String> = args.positional()[1..].iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if raw.is_empty() {
        return Err(args.usage_error("missing a SCHEME:HOST_PORT:CONTAINER_PORT mapping").into());
    }
    Ok(PortMap::parse_all(raw.iter().map(String::as_str))?)
}

fn show_ports(ctx: &Ctx, locked: &LockedApp) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root)?;
    let maps: Vec<String> = proxy::port_maps(&settings, &apps::meta(&locked.app)?).iter().map(|m| m.to_string()).collect();
    println!("-----> {} port map: {}", locked.app.name, maps.join(" "));
    Ok(())
}

fn ports(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let settings = Settings::load(&ctx.root)?;
    let maps = proxy::port_maps(&settings, &apps::meta(&app)?);
    if wants_json(&args)? {
        return print_json(&maps);
    }
    println!("-----> scheme  host port  container port");
    for m in maps {
        let scheme = m.to_string();
        println!("{:<7} {:<10} {}", scheme.split(':').next().unwrap_or(""), m.host, m.container);
    }
    Ok(())
}

fn ports_add(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let wanted = ports_of(&args)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let settings = Settings::load(&ctx.root)?;
    let mut maps = proxy::port_maps(&settings, &apps::meta(&locked.app)?);
    for map in wanted {
        // A host port has one server block: a new mapping replaces its old one.
        maps.retain(|m| m.host != map.host);
        maps.push(map);
    }
    update(ctx, &locked, |_, meta| meta.ports = Some(maps))?;
    show_ports(ctx, &locked)
}

fn ports_set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let wanted = ports_of(&args)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    update(ctx, &locked, |_, meta| meta.ports = Some(wanted))?;
    show_ports(ctx, &locked)
}

fn ports_remove(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let raw: Vec<String> = args.positional()[1..].iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if raw.is_empty() {
        return Err(args.usage_error("missing a mapping or host port").into());
    }
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let settings = Settings::load(&ctx.root)?;
    let mut maps = proxy::port_maps(&settings, &apps::meta(&locked.app)?);
    for text in &raw {
        // Dokku takes a whole mapping or just its host port.
        let gone = match text.parse::<u16>() {
            Ok(port) if text.bytes().all(|b| b.is_ascii_digit()) => maps.iter().position(|m| m.host == port),
            _ => {
                let map = PortMap::parse(text)?;
                maps.iter().position(|m| *m == map)
            }
        };
        match gone {
            Some(i) => {
                maps.remove(i);
            }
            None => bail!("{} has no port mapping {text}", locked.app.name),
        }
    }
    if maps.is_empty() {
        bail!("that would leave {} with no port; use proxy:disable to stop routing to it", locked.app.name);
    }
    update(ctx, &locked, |_, meta| meta.ports = Some(maps))?;
    show_ports(ctx, &locked)
}

fn ports_clear(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    update(ctx, &locked, |_, meta| meta.ports = None)?;
    show_ports(ctx, &locked)
}

/// Applies a change to the global domains, checks it the way loading
/// does, and moves every routed app to the new names (undone on failure).
fn change_globals(ctx: &Ctx, change: impl FnOnce(&mut Vec<String>)) -> anyhow::Result<()> {
    let before = Settings::load(&ctx.root)?;
    let mut settings = before.clone();
    let mut list = if settings.proxy.global_domains.is_empty() && !settings.proxy.global_domain.is_empty() {
        vec![settings.proxy.global_domain.clone()]
    } else {
        settings.proxy.global_domains.clone()
    };
    change(&mut list);
    settings.proxy.global_domains = list;
    settings.proxy.global_domain = String::new();
    settings.save(&ctx.root)?;
    let refreshed = (|| -> anyhow::Result<()> {
        // Validation lives in Settings::load: read back before any app moves.
        Settings::load(&ctx.root)?;
        for name in apps::list(&ctx.root)? {
            let locked = apps::lock(&ctx.root, &name)?;
            if crate::deploy::nginx::conf_file(&ctx.root, &name).exists() {
                proxy::refresh(&ctx.root, &locked.app)?;
            }
        }
        Ok(())
    })();
    if let Err(e) = refreshed {
        before.save(&ctx.root)?;
        for name in apps::list(&ctx.root)? {
            let locked = apps::lock(&ctx.root, &name)?;
            if crate::deploy::nginx::conf_file(&ctx.root, &name).exists() {
                let _ = proxy::refresh(&ctx.root, &locked.app);
            }
        }
        return Err(e);
    }
    println!("-----> Apps are served at APP.{{{}}}", Settings::load(&ctx.root)?.global_domains().join(","));
    Ok(())
}

fn global_domains_of(args: &Args) -> anyhow::Result<Vec<String>> {
    let raw = args.positional();
    if raw.is_empty() {
        return Err(args.usage_error("missing DOMAIN").into());
    }
    let mut out = Vec::new();
    for d in raw {
        let domain = Domain::parse(&d.to_string_lossy())?;
        if domain.is_wildcard() {
            bail!("{domain} is a wildcard; a global domain is a plain host name apps go under");
        }
        out.push(domain.to_string());
    }
    Ok(out)
}

fn set_global(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let wanted = global_domains_of(&args)?;
    change_globals(ctx, |list| *list = wanted)
}

fn add_global(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let wanted = global_domains_of(&args)?;
    change_globals(ctx, |list| {
        for d in wanted {
            if !list.contains(&d) {
                list.push(d);
            }
        }
    })
}

fn remove_global(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let unwanted = global_domains_of(&args)?;
    let current = Settings::load(&ctx.root)?.global_domains();
    if let Some(missing) = unwanted.iter().find(|d| !current.contains(d)) {
        bail!("{missing} is not a global domain");
    }
    change_globals(ctx, |list| list.retain(|d| !unwanted.contains(d)))
}

fn clear_global(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    change_globals(ctx, Vec::clear)
}

fn report_global(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let domains = Settings::load(&ctx.root)?.global_domains();
    if wants_json(&args)? {
        return print_json(&domains);
    }
    for d in domains {
        println!("{d}");
    }
    Ok(())
}

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
    let follow = args.switch("-t") || args.switch("--tail");
    let mut tail = std::process::Command::new("tail");
    tail.args(["-n", "100"]);
    if follow {
        tail.arg("-F");
    }
    let status = tail.arg("--").arg(&file).status().context("cannot run tail")?;
    if !status.success() {
        bail!("tail could not read {file}");
    }
    Ok(())
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
