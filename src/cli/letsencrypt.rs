//! `letsencrypt:*`: certificates from Let's Encrypt (or the ACME server
//! in `[letsencrypt]` of config.toml), proven over HTTP-01 by nginx and
//! renewed by `letsencrypt:auto-renew` (run daily by install.sh's timer).

use anyhow::bail;

use super::fields::{Report, report_apps, store};
use super::{Args, Command, Ctx, UsageError, print_json, wants_json};
use crate::app::App;
use crate::deploy::{acme, proxy, tls};
use crate::model::acme::{LetsencryptProps, check_property};
use crate::state::apps::{self, LockedApp};
use crate::state::settings::{LetsencryptSettings, Settings};

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
    Command {
        name: "letsencrypt:set",
        usage: "APP|--global email|server|graceperiod [VALUE]",
        about: "An ACME property for the app or (--global) every app; no VALUE: unset (server takes default, staging or a URL)",
        switches: &["--global"],
        options: &[],
        run: set,
    },
    Command {
        name: "letsencrypt:report",
        usage: "[APP|--global] [--format json] [--FIELD]",
        about: "Whether the app uses Let's Encrypt, its certificate's expiry, and its email, server and grace period",
        switches: &["--global"],
        options: &["--format"],
        run: report,
    },
];

/// The host's settings with the app's own Let's Encrypt properties over them.
fn settings_for(settings: &Settings, app: &App) -> anyhow::Result<Settings> {
    let own = apps::meta(app)?.letsencrypt_props;
    let mut merged = settings.clone();
    merged.letsencrypt = settings.letsencrypt.for_app(&own);
    Ok(merged)
}

fn obtain(ctx: &Ctx, settings: &Settings, locked: &LockedApp) -> anyhow::Result<()> {
    let settings = settings_for(settings, &locked.app)?;
    acme::issue(&ctx.root, &settings, &locked.app, &mut |line| println!("-----> {line}"))?;
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
        if !acme::due(&settings_for(&settings, &locked.app)?, &locked.app)? {
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
        rows.push(serde_json::json!({ "app": name.to_string(), "expires": expires, "renewal_due": acme::due(&settings_for(&settings, &app)?, &app)? }));
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

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    let key = args.text(at).unwrap_or_default();
    let value = args.text(at + 1).filter(|v| !v.is_empty());
    let unsettable = ["email", "server", "graceperiod"].contains(&key.as_str());
    match &value {
        Some(v) => check_property(&key, v).map_err(UsageError)?,
        None if unsettable => {}
        None => check_property(&key, "").map_err(UsageError)?,
    }
    let whose = app.as_ref().map_or("every app".to_owned(), ToString::to_string);
    let seconds = value.as_deref().and_then(|v| v.parse::<u64>().ok());
    let text = value.clone();
    store(
        ctx,
        app,
        |s| match key.as_str() {
            "email" => s.letsencrypt.email = text.clone().unwrap_or_default(),
            "server" => s.letsencrypt.server = crate::model::acme::server_url(text.as_deref().unwrap_or("default")),
            _ => s.letsencrypt.graceperiod = seconds,
        },
        |m| match key.as_str() {
            "email" => m.letsencrypt_props.email = value.clone(),
            "server" => m.letsencrypt_props.server = value.clone(),
            _ => m.letsencrypt_props.graceperiod = seconds,
        },
    )?;
    println!("-----> Let's Encrypt {key} for {whose}: {}", value.as_deref().unwrap_or("unset"));
    Ok(())
}

/// The host's values as reported: empty where the host keeps the default.
fn global_props(le: &LetsencryptSettings) -> LetsencryptProps {
    let default = LetsencryptSettings::default();
    LetsencryptProps {
        email: Some(le.email.clone()).filter(|e| !e.is_empty()),
        server: Some(le.server.clone()).filter(|s| *s != default.server),
        graceperiod: le.graceperiod,
    }
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root)?;
    let host = &settings.letsencrypt;
    let global = global_props(host);
    let grace = |p: &LetsencryptProps| p.graceperiod.map(|g| g.to_string());
    let default_grace = host.grace_secs().to_string();
    if args.switch("--global") {
        args.expect(0, 0)?;
        Report::new("letsencrypt", "--global")
            .global_setting("email", global.email.clone(), "")
            .global_setting("graceperiod", grace(&global), &default_grace)
            .global_setting("server", global.server.clone(), &host.server)
            .print(&args)?;
        return Ok(());
    }
    for name in report_apps(ctx, &args)? {
        let app = apps::open(&ctx.root, &name)?;
        let meta = apps::meta(&app)?;
        let own = &meta.letsencrypt_props;
        let expiration = if meta.letsencrypt && tls::has_cert(&app) { tls::not_after(&app)? } else { String::new() };
        let computed_server = host.for_app(own).server;
        Report::new("letsencrypt", &name)
            .field("letsencrypt-active", meta.letsencrypt)
            .field("letsencrypt-autorenew", meta.letsencrypt)
            .field("letsencrypt-expiration", expiration)
            .setting("email", own.email.clone(), global.email.clone(), "")
            .setting("graceperiod", grace(own), grace(&global), &default_grace)
            .setting("server", own.server.clone(), global.server.clone(), &computed_server)
            .print(&args)?;
    }
    Ok(())
}
