//! `ports:*` (Dokku's current names) and `proxy:ports*` (its older ones):
//! the host ports nginx listens on for an app and where each goes.

use anyhow::bail;

use super::domains::update;
use super::fields::{Report, report_apps};
use super::{Args, Command, Ctx, print_json, wants_json};
use crate::deploy::proxy;
use crate::model::ports::PortMap;
use crate::state::apps::{self, LockedApp};
use crate::state::settings::Settings;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "ports:list",
        usage: "APP [--format json]",
        about: "The app's port mappings (SCHEME:HOST_PORT:CONTAINER_PORT)",
        switches: &[],
        options: &["--format"],
        run: ports,
    },
    Command {
        name: "ports:report",
        usage: "[APP] [--format json] [--FIELD]",
        about: "The app's port map and the one berth detects (Dokku's ports-map, ports-map-detected and their -json forms)",
        switches: &[],
        options: &["--format"],
        run: ports_report,
    },
    Command {
        name: "ports:add",
        usage: "APP SCHEME:HOST_PORT:CONTAINER_PORT...",
        about: "Listen on more ports (http or https); a host port already mapped is replaced",
        switches: &[],
        options: &[],
        run: ports_add,
    },
    Command {
        name: "ports:set",
        usage: "APP SCHEME:HOST_PORT:CONTAINER_PORT...",
        about: "Listen on exactly these ports",
        switches: &[],
        options: &[],
        run: ports_set,
    },
    Command {
        name: "ports:remove",
        usage: "APP MAPPING|HOST_PORT...",
        about: "Stop listening on these ports",
        switches: &[],
        options: &[],
        run: ports_remove,
    },
    Command {
        name: "ports:clear",
        usage: "APP",
        about: "Back to http on the listen port to $PORT (and https with a certificate)",
        switches: &[],
        options: &[],
        run: ports_clear,
    },
    Command {
        name: "proxy:ports",
        usage: "APP [--format json]",
        about: "Dokku's older name for ports:list",
        switches: &[],
        options: &["--format"],
        run: ports,
    },
    Command {
        name: "proxy:ports-add",
        usage: "APP SCHEME:HOST_PORT:CONTAINER_PORT...",
        about: "Dokku's older name for ports:add",
        switches: &[],
        options: &[],
        run: ports_add,
    },
    Command {
        name: "proxy:ports-set",
        usage: "APP SCHEME:HOST_PORT:CONTAINER_PORT...",
        about: "Dokku's older name for ports:set",
        switches: &[],
        options: &[],
        run: ports_set,
    },
    Command {
        name: "proxy:ports-remove",
        usage: "APP MAPPING|HOST_PORT...",
        about: "Dokku's older name for ports:remove",
        switches: &[],
        options: &[],
        run: ports_remove,
    },
    Command {
        name: "proxy:ports-clear",
        usage: "APP",
        about: "Dokku's older name for ports:clear",
        switches: &[],
        options: &[],
        run: ports_clear,
    },
];

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

/// Dokku's JSON form of a port map: scheme, host_port, container_port.
fn maps_json(maps: &[PortMap]) -> String {
    let rows: Vec<serde_json::Value> = maps
        .iter()
        .map(|m| {
            let scheme = m.to_string().split(':').next().unwrap_or_default().to_owned();
            serde_json::json!({"scheme": scheme, "host_port": m.host, "container_port": m.container})
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

fn ports_report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root)?;
    for name in report_apps(ctx, &args)? {
        let mut meta = apps::meta(&apps::open(&ctx.root, &name)?)?;
        let own = meta.ports.take().unwrap_or_default();
        let detected = proxy::port_maps(&settings, &meta);
        let text = |maps: &[PortMap]| maps.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
        Report::new("ports", &name)
            .field("ports-map", text(&own))
            .field("ports-map-detected", text(&detected))
            .field("ports-map-json", maps_json(&own))
            .field("ports-map-detected-json", maps_json(&detected))
            .print(&args)?;
    }
    Ok(())
}
