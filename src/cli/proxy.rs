//! `proxy:*`: whether nginx routes to an app, rebuilding server blocks,
//! and what the proxy reports.

use anyhow::bail;

use super::domains::update;
use super::fields::{Report, report_apps};
use super::{Args, Command, Ctx};
use crate::deploy::nginx::Listener;
use crate::deploy::proxy;
use crate::runtime::balancer;
use crate::state::apps::{self, LockedApp};
use crate::state::settings::Settings;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "proxy:set",
        usage: "APP|--global type nginx",
        about: "The proxy in front of the app: nginx is berth's only one (Dokku's caddy, haproxy, traefik are not here)",
        switches: &["--global"],
        options: &[],
        run: proxy_set,
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
        name: "proxy:build-config",
        usage: "APP | --all",
        about: "Write the app's server block from state (Dokku's name for proxy:rebuild)",
        switches: &["--all"],
        options: &[],
        run: proxy_rebuild,
    },
    Command {
        name: "proxy:clear-config",
        usage: "APP | --all",
        about: "Remove the app's server block: nginx stops routing to it until proxy:build-config or the next deploy",
        switches: &["--all"],
        options: &[],
        run: proxy_clear,
    },
    Command {
        name: "proxy:report",
        usage: "[APP] [--format json] [--FIELD]",
        about: "Whether nginx routes to the app, where it listens, and its upstreams",
        switches: &[],
        options: &["--format"],
        run: proxy_report,
    },
];

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

fn proxy_clear(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let all = args.switch("--all");
    args.expect(usize::from(!all), usize::from(!all))?;
    let names = if all { apps::list(&ctx.root)? } else { vec![args.app(0)?] };
    let settings = Settings::load(&ctx.root)?;
    for name in names {
        let locked = apps::lock(&ctx.root, &name)?;
        crate::deploy::nginx::remove(&ctx.root, &settings, &locked.app.name)?;
        println!("-----> Cleared the server block of {name}");
    }
    Ok(())
}

pub(super) fn rebuild_blocks(ctx: &Ctx, names: Vec<crate::app::AppName>, all: bool) -> anyhow::Result<()> {
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

/// Dokku's proxy-* fields (berth's proxy is nginx, whatever is set), then
/// berth's own: the port map, listeners, the stable address and who serves.
fn proxy_report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root)?;
    for name in report_apps(ctx, &args)? {
        let app = apps::open(&ctx.root, &name)?;
        let meta = apps::meta(&app)?;
        let port_maps = proxy::port_maps(&settings, &meta);
        let maps: Vec<String> = port_maps.iter().map(|m| m.to_string()).collect();
        let addresses: Vec<String> = proxy::running_addresses(&ctx.root, &app).iter().map(|a| a.to_string()).collect();
        let listening: Vec<String> = proxy::listeners(&settings, &app, &port_maps).iter().map(describe).collect();
        let vip = balancer::existing_vip(&ctx.root, &proxy::vip_name(&app.name));
        let serving: Vec<String> =
            vip.map(|v| balancer::backends(&ctx.root, v)).unwrap_or_default().iter().map(|(id, a)| format!("{id} ({a})")).collect();
        Report::new("proxy", &app.name)
            .field("proxy-enabled", !meta.proxy_disabled)
            .field("proxy-type", "")
            .field("proxy-global-type", "")
            .field("proxy-computed-type", "nginx")
            .field("proxy-port-map", maps.join(" "))
            .field("proxy-listeners", listening.join(", "))
            .field("proxy-web-containers", addresses.join(" "))
            .field("proxy-stable-address", vip.map(|v| v.to_string()).unwrap_or_default())
            .field("proxy-serving", serving.join(" "))
            .print(&args)?;
    }
    Ok(())
}

fn describe(listener: &Listener) -> String {
    match listener {
        Listener::Http { port, container } => format!("http {port} -> {container}"),
        Listener::Https { port, container, .. } => format!("https {port} -> {container}"),
        Listener::Redirect { port, https_port } => format!("http {port} redirects to https {https_port}"),
    }
}

fn proxy_set(_ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    let key = args.text(at).unwrap_or_default();
    if key != "type" {
        bail!("{key:?} is not a proxy setting: use type");
    }
    match args.text(at + 1).as_deref() {
        None | Some("nginx") => {
            let whose = app.map_or_else(|| "every app".to_owned(), |a| a.to_string());
            println!("-----> {whose} is served by nginx, berth's proxy");
            Ok(())
        }
        Some(other) => bail!("berth's proxy is nginx; it has no {other:?} proxy"),
    }
}
