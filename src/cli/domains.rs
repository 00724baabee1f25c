//! `domains:*`: the host names an app answers to, and the global domains
//! apps live under. Every change rewrites the app's server block at once;
//! a name nginx could trip on is refused before anything is written.

use anyhow::{Context, bail};

use super::fields::Report;
use super::{Args, Command, Ctx, print_json, wants_json};
use crate::deploy::proxy;
use crate::model::domain::Domain;
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
        name: "domains:disable",
        usage: "APP|--all",
        about: "Serve the app by port instead of by name (a port of its own unless ports:set gives one)",
        switches: &["--all"],
        options: &[],
        run: disable,
    },
    Command {
        name: "domains:enable",
        usage: "APP|--all",
        about: "Serve the app by its names again",
        switches: &["--all"],
        options: &[],
        run: enable,
    },
    Command {
        name: "domains:report",
        usage: "APP [--format json] [--FIELD]",
        about: "The names the app answers to",
        switches: &[],
        options: &["--format"],
        run: report,
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
pub(super) fn update(ctx: &Ctx, locked: &LockedApp, change: impl FnOnce(&Settings, &mut AppMeta)) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root)?;
    let before = apps::meta(&locked.app)?;
    let mut meta = before.clone();
    change(&settings, &mut meta);
    apps::write_meta(locked, &meta)?;
    if let Err(e) = proxy::refresh(&ctx.root, &locked.app) {
        apps::write_meta(locked, &before)?;
        return Err(e.into());
    }
    if meta.domains != before.domains {
        crate::state::events::emit(&ctx.root, "post-domains-update", &[locked.app.name.as_str()]);
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

/// The apps a `domains:enable|disable APP|--all` covers.
fn apps_or_all(ctx: &Ctx, args: &Args) -> anyhow::Result<Vec<crate::app::AppName>> {
    if args.switch("--all") {
        args.expect(0, 0)?;
        return Ok(apps::list(&ctx.root)?);
    }
    args.expect(1, 1)?;
    Ok(vec![args.app(0)?])
}

fn disable(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    for name in apps_or_all(ctx, &args)? {
        let locked = apps::lock(&ctx.root, &name)?;
        let port = match apps::meta(&locked.app)?.vhost_port {
            Some(port) => port,
            None => free_port()?,
        };
        update(ctx, &locked, |_, meta| {
            meta.vhost_disabled = true;
            meta.vhost_port = Some(port);
        })?;
        let settings = Settings::load(&ctx.root)?;
        let ports: Vec<String> = proxy::port_maps(&settings, &apps::meta(&locked.app)?).iter().map(|m| m.host.to_string()).collect();
        println!("-----> {name} is served by port ({}), whatever the host name", ports.join(", "));
    }
    Ok(())
}

fn enable(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    for name in apps_or_all(ctx, &args)? {
        let locked = apps::lock(&ctx.root, &name)?;
        update(ctx, &locked, |_, meta| meta.vhost_disabled = false)?;
        show_names(ctx, &locked)?;
    }
    Ok(())
}

/// A TCP port nothing listens on now, as Dokku picks one for a
/// vhost-disabled app; the app keeps it from then on.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("0.0.0.0", 0)).context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let settings = Settings::load(&ctx.root)?;
    let meta = apps::meta(&app)?;
    let names = proxy::server_names(&settings, &app, &meta);
    Report::new("domains", &app.name)
        .field("domains-app-enabled", !meta.proxy_disabled && !meta.vhost_disabled && !names.is_empty())
        .field("domains-app-vhosts", if meta.vhost_disabled { String::new() } else { names.join(" ") })
        .field("domains-global-enabled", !settings.global_domains().is_empty())
        .field("domains-global-vhosts", settings.global_domains().join(" "))
        .print(&args)?;
    Ok(())
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
