//! `letsencrypt:*`: certificates from Let's Encrypt (or the ACME server
//! in `[letsencrypt]` of config.toml), proven over HTTP-01 by nginx and
//! renewed by `letsencrypt:auto-renew` (run daily by install.sh's timer).

use anyhow::bail;

use super::{Args, Command, Ctx, print_json, wants_json};
use crate::deploy::{acme, proxy, tls};
use crate::state::apps::{self, LockedApp};
use crate::state::settings::Settings;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "letsencrypt:enable",
        usage: "APP",
        about: "Get a certificate for the app's names and keep it renewed",
        switches: &[],
        options: &[],
        run: enable,
    },
    Command {
        name: "letsencrypt:disable",
        usage: "APP",
        about: "Remove the certificate; the app is served over HTTP only",
        switches: &[],
        options: &[],
        run: disable,
    },
    Command {
        name: "letsencrypt:auto-renew",
        usage: "[APP]",
        about: "Renew the certificates that expire within [letsencrypt] renew_days_before (30) days",
        switches: &[],
        options: &[],
        run: auto_renew,
    },
    Command {
        name: "letsencrypt:list",
        usage: "[--format json]",
        about: "Apps with Let's Encrypt certificates, their expiry and whether renewal is due",
        switches: &[],
        options: &["--format"],
        run: list,
    },
];

fn obtain(ctx: &Ctx, settings: &Settings, locked: &LockedApp) -> anyhow::Result<()> {
    acme::issue(&ctx.root, settings, &locked.app, &mut |line| println!("-----> {line}"))?;
    let mut meta = apps::meta(&locked.app)?;
    meta.letsencrypt = true;
    apps::write_meta(locked, &meta)?;
    println!("-----> {} serves HTTPS with a certificate valid until {}", locked.app.name, tls::not_after(&locked.app)?);
    Ok(())
}

fn enable(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let settings = Settings::load(&ctx.root)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    obtain(ctx, &settings, &locked)
}

fn disable(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let mut meta = apps::meta(&locked.app)?;
    if !meta.letsencrypt {
        bail!("app {} does not use Let's Encrypt", locked.app.name);
    }
    if tls::has_cert(&locked.app) {
        tls::remove(&locked.app)?;
    }
    meta.letsencrypt = false;
    apps::write_meta(&locked, &meta)?;
    proxy::refresh(&ctx.root, &locked.app)?;
    println!("-----> {} is served over HTTP only", locked.app.name);
    Ok(())
}

fn auto_renew(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 1)?;
    let settings = Settings::load(&ctx.root)?;
    let names = match args.get(0) {
        Some(_) => vec![args.app(0)?],
        None => apps::list(&ctx.root)?,
    };
    let mut failed = Vec::new();
    for name in names {
        let locked = apps::lock(&ctx.root, &name)?;
        if !apps::meta(&locked.app)?.letsencrypt {
            if args.get(0).is_some() {
                bail!("app {name} does not use Let's Encrypt; run letsencrypt:enable {name}");
            }
            continue;
        }
        if !acme::due(&settings, &locked.app)? {
            println!("-----> {name}: valid until {}, not due", tls::not_after(&locked.app)?);
            continue;
        }
        println!("-----> {name}: renewing");
        // One app's failure does not keep the others from renewing.
        if let Err(e) = obtain(ctx, &settings, &locked) {
            eprintln!("error: {name}: {e:#}");
            failed.push(name.to_string());
        }
    }
    if !failed.is_empty() {
        bail!("renewal failed for {}; their current certificates stay", failed.join(", "));
    }
    Ok(())
}

fn list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let settings = Settings::load(&ctx.root)?;
    let mut rows = Vec::new();
    for name in apps::list(&ctx.root)? {
        let app = apps::open(&ctx.root, &name)?;
        if !apps::meta(&app)?.letsencrypt {
            continue;
        }
        let expires = if tls::has_cert(&app) { tls::not_after(&app)? } else { "no certificate".into() };
        rows.push(serde_json::json!({ "app": name.to_string(), "expires": expires, "renewal_due": acme::due(&settings, &app)? }));
    }
    if wants_json(&args)? {
        return print_json(&rows);
    }
    println!("{:<24} {:<28} renewal due", "app", "expires");
    for row in rows {
        println!("{:<24} {:<28} {}", row["app"].as_str().unwrap_or(""), row["expires"].as_str().unwrap_or(""), row["renewal_due"]);
    }
    Ok(())
}
