//! `ssh-keys:*`: the keys that may reach berth over ssh, and what each may do.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{Args, Command, Ctx, print_json, wants_json};
use crate::app::AppName;
use crate::git::keys::{self, PublicKey};
use crate::state::grants::{self, Grant, Grants};
use crate::state::settings::Settings;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "ssh-keys:add",
        usage: "NAME [FILE|-] [--admin | --apps A,B] [--create]",
        about: "Allow a public key over ssh: as an admin, or for some apps (--create: it may make new apps)",
        switches: &["--admin", "--create"],
        options: &["--apps"],
        run: add,
    },
    Command { name: "ssh-keys:remove", usage: "NAME", about: "Remove a key", switches: &[], options: &[], run: remove },
    Command {
        name: "ssh-keys:list",
        usage: "[--format json]",
        about: "List keys with their fingerprints",
        switches: &[],
        options: &["--format"],
        run: list,
    },
    Command {
        name: "ssh-keys:grant",
        usage: "NAME [APP...] [--admin] [--create]",
        about: "Let a key use more apps, create apps, or be an admin",
        switches: &["--admin", "--create"],
        options: &[],
        run: grant,
    },
    Command {
        name: "ssh-keys:revoke",
        usage: "NAME [APP...] [--admin] [--create]",
        about: "Take apps, app creation or admin rights from a key",
        switches: &["--admin", "--create"],
        options: &[],
        run: revoke,
    },
    Command {
        name: "ssh-keys:report",
        usage: "[NAME] [--format json]",
        about: "Show what each key may do",
        switches: &[],
        options: &["--format"],
        run: report,
    },
];

fn authorized_keys(ctx: &Ctx) -> anyhow::Result<PathBuf> {
    Ok(PathBuf::from(Settings::load(&ctx.root)?.ssh.authorized_keys))
}

fn key_name(args: &Args) -> anyhow::Result<String> {
    let name = args.get(0).expect("checked by expect").to_string_lossy().into_owned();
    keys::check_name(&name)?;
    Ok(name)
}

fn app_names<'a>(raw: impl IntoIterator<Item = &'a std::ffi::OsStr>) -> anyhow::Result<Vec<AppName>> {
    raw.into_iter().map(|a| Ok(AppName::parse(a)?)).collect()
}

fn add(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 2)?;
    let name = key_name(&args)?;
    let apps = match args.option("--apps") {
        Some(list) => app_names(list.to_string_lossy().split(',').filter(|a| !a.is_empty()).map(std::ffi::OsStr::new))?,
        None => Vec::new(),
    };
    if args.switch("--admin") && !apps.is_empty() {
        return Err(args.usage_error("--admin and --apps exclude each other").into());
    }
    let mut text = String::new();
    match args.get(1).filter(|f| *f != "-") {
        Some(file) => {
            let path = PathBuf::from(file);
            std::fs::File::open(&path)
                .and_then(|f| f.take(16 * 1024).read_to_string(&mut text))
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        None => {
            std::io::stdin().take(16 * 1024).read_to_string(&mut text).context("cannot read the key from stdin")?;
        }
    }
    let key = PublicKey::parse(&text)?;
    let exe = std::env::current_exe()?.display().to_string();
    // The grant first: a key in authorized_keys without one may do nothing,
    // never more than it was meant to.
    let grant = Grant { admin: args.switch("--admin"), create: args.switch("--create"), apps: apps.into_iter().collect() };
    let role = describe(&grant);
    grants::update(&ctx.root, |g| g.keys.insert(name.clone(), grant))?;
    keys::add(&authorized_keys(ctx)?, &exe, &name, &key)?;
    println!("-----> Added key {name} ({}): {role}", key.fingerprint());
    Ok(())
}

fn remove(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let name = key_name(&args)?;
    keys::remove(&authorized_keys(ctx)?, &name)?;
    grants::update(&ctx.root, |g| g.keys.remove(&name))?;
    println!("-----> Removed key {name}");
    Ok(())
}

fn list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let listed: Vec<(String, String, String)> =
        keys::list(&authorized_keys(ctx)?).into_iter().map(|(n, k)| (n, k.kind.clone(), k.fingerprint())).collect();
    if wants_json(&args)? {
        let rows: Vec<_> = listed.iter().map(|(n, k, f)| serde_json::json!({"name": n, "type": k, "fingerprint": f})).collect();
        return print_json(&rows);
    }
    for (name, kind, fingerprint) in listed {
        println!("{name} {kind} {fingerprint}");
    }
    Ok(())
}

fn describe(grant: &Grant) -> String {
    if grant.admin {
        return "admin".into();
    }
    let apps: Vec<&str> = grant.apps.iter().map(AppName::as_str).collect();
    let apps = if apps.is_empty() { "no apps".to_owned() } else { format!("apps {}", apps.join(",")) };
    if grant.create { format!("{apps}, may create apps") } else { apps }
}

/// The key must be in authorized_keys: grants for keys that do not exist are typos.
fn existing_key(ctx: &Ctx, args: &Args) -> anyhow::Result<String> {
    let name = key_name(args)?;
    if !keys::list(&authorized_keys(ctx)?).iter().any(|(n, _)| *n == name) {
        bail!("no key named {name}");
    }
    Ok(name)
}

fn change(ctx: &Ctx, args: Args, giving: bool) -> anyhow::Result<()> {
    args.expect(1, usize::MAX)?;
    let name = existing_key(ctx, &args)?;
    let apps = app_names(args.positional()[1..].iter().map(|a| a.as_os_str()))?;
    if apps.is_empty() && !args.switch("--admin") && !args.switch("--create") {
        return Err(args.usage_error("name apps, --admin or --create").into());
    }
    let grant = grants::update(&ctx.root, |g| {
        let grant = g.keys.entry(name.clone()).or_default();
        for app in apps {
            if giving {
                grant.apps.insert(app);
            } else {
                grant.apps.remove(&app);
            }
        }
        if args.switch("--admin") {
            grant.admin = giving;
        }
        if args.switch("--create") {
            grant.create = giving;
        }
        grant.clone()
    })?;
    println!("-----> Key {name}: {}", describe(&grant));
    Ok(())
}

fn grant(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    change(ctx, args, true)
}

fn revoke(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    change(ctx, args, false)
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 1)?;
    let grants = Grants::load(&ctx.root)?;
    let mut names: Vec<String> = keys::list(&authorized_keys(ctx)?).into_iter().map(|(n, _)| n).collect();
    if args.get(0).is_some() {
        let only = existing_key(ctx, &args)?;
        names.retain(|n| *n == only);
    }
    if wants_json(&args)? {
        let rows: Vec<_> = names
            .iter()
            .map(|n| {
                let g = grants.of(n);
                serde_json::json!({"name": n, "admin": g.admin, "create": g.create, "apps": g.apps})
            })
            .collect();
        return print_json(&rows);
    }
    for name in names {
        println!("{name:<24} {}", describe(&grants.of(&name)));
    }
    Ok(())
}
