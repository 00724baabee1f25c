//! `apps:*`: create, list, inspect, rename and destroy apps.

use anyhow::{Context, bail};

use super::fields::Report;
use super::{Args, Command, Ctx, print_json, wants_json};
use crate::state::apps;

pub const COMMANDS: &[Command] = &[
    Command { name: "apps:create", usage: "APP", about: "Create an app", switches: &[], options: &[], run: create },
    Command { name: "apps:list", usage: "[--format json]", about: "List apps", switches: &[], options: &["--format"], run: list },
    Command { name: "apps:exists", usage: "APP", about: "Exit 0 if the app exists, 1 if not", switches: &[], options: &[], run: exists },
    Command {
        name: "apps:lock",
        usage: "APP",
        about: "Refuse pushes and image deploys of the app until apps:unlock",
        switches: &[],
        options: &[],
        run: lock,
    },
    Command { name: "apps:unlock", usage: "APP", about: "Allow deploys of the app again", switches: &[], options: &[], run: unlock },
    Command {
        name: "apps:locked",
        usage: "APP",
        about: "Exit 0 if the app is locked for deploys, 1 if not",
        switches: &[],
        options: &[],
        run: locked,
    },
    Command {
        name: "apps:report",
        usage: "APP|--global [--format json] [--FIELD]",
        about: "Show an app's state",
        switches: &["--global"],
        options: &["--format"],
        run: report,
    },
    Command {
        name: "apps:set",
        usage: "--global disable-autocreation [true|false]",
        about: "Refuse pushes to apps that do not exist yet (apps:create first); no value: the default, false",
        switches: &["--global"],
        options: &[],
        run: set,
    },
    Command {
        name: "apps:info",
        usage: "APP [--format json]",
        about: "Same as apps:report",
        switches: &[],
        options: &["--format"],
        run: report,
    },
    Command { name: "apps:rename", usage: "OLD NEW", about: "Rename an app", switches: &[], options: &[], run: rename },
    Command {
        name: "apps:rebase",
        usage: "APP|--all",
        about: "Release the app's current image on its stack's newest run image, without a build (see stacks:outdated)",
        switches: &["--all"],
        options: &[],
        run: rebase,
    },
    Command {
        name: "apps:clone",
        usage: "OLD NEW [--skip-deploy] [--ignore-existing]",
        about: "A new app with OLD's config, settings and pushed commits, running OLD's current image (no rebuild) unless --skip-deploy",
        switches: &["--skip-deploy", "--ignore-existing"],
        options: &[],
        run: clone,
    },
    Command {
        name: "apps:destroy",
        usage: "APP [--force]",
        about: "Destroy an app and all its state (asks for the name unless --force)",
        switches: &["--force"],
        options: &[],
        run: destroy,
    },
];

fn create(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let name = args.app(0)?;
    apps::create(&ctx.root, &name)?;
    println!("-----> Creating {name}... done");
    Ok(())
}

fn list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let mut names = apps::list(&ctx.root)?;
    names.retain(|n| ctx.caller.sees(n));
    if wants_json(&args)? {
        return print_json(&names.iter().map(|n| n.as_str()).collect::<Vec<_>>());
    }
    println!("=====> My Apps");
    for name in names {
        println!("{name}");
    }
    Ok(())
}

fn exists(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let name = args.app(0)?;
    apps::open(&ctx.root, &name)?;
    println!("app {name} exists");
    Ok(())
}

fn set_deploy_lock(ctx: &Ctx, args: &Args, locked: bool) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::lock(&ctx.root, &args.app(0)?)?;
    let mut meta = apps::meta(&app.app)?;
    meta.deploy_locked = locked;
    apps::write_meta(&app, &meta)?;
    println!("-----> {} {}", if locked { "Locked deploys of" } else { "Unlocked deploys of" }, app.app.name);
    Ok(())
}

fn lock(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    set_deploy_lock(ctx, &args, true)
}

fn unlock(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    set_deploy_lock(ctx, &args, false)
}

fn locked(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let name = args.app(0)?;
    if !apps::meta(&apps::open(&ctx.root, &name)?)?.deploy_locked {
        bail!("app {name} is not locked");
    }
    println!("app {name} is locked");
    Ok(())
}

/// Whether a deploy or change holds the app's lock right now.
fn deploying(app: &crate::app::App) -> bool {
    use crate::state::lock::{FileLock, LockError};
    app.lock_file().exists() && matches!(FileLock::try_acquire(&app.lock_file()), Err(LockError::Busy))
}

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    let key = args.text(at).unwrap_or_default();
    if key != "disable-autocreation" {
        bail!("{key:?} is not an apps property (disable-autocreation)");
    }
    if app.is_some() {
        bail!("disable-autocreation is a global property: apps:set --global disable-autocreation true");
    }
    let value = match args.text(at + 1).as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => bail!("disable-autocreation must be true or false, not {other:?}"),
    };
    crate::state::settings::Settings::update(&ctx.root, |s| s.apps.disable_autocreation = value)?;
    let now = if value == Some(true) { "are refused until apps:create" } else { "create the app" };
    println!("-----> Pushes to apps that do not exist {now}");
    Ok(())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let autocreation = crate::state::settings::Settings::load(&ctx.root)?.apps.disable_autocreation.map(|b| b.to_string());
    let Some(name) = args.target()?.0 else {
        args.expect(0, 0)?;
        Report::new("app", "--global").global_setting("disable-autocreation", autocreation, "false").print(&args)?;
        return Ok(());
    };
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &name)?;
    let meta = apps::meta(&app)?;
    let vars = crate::state::config::ConfigVars::load(&app.env_file())?;
    let source = crate::state::releases::latest(&app.dir).map(|r| if r.git_revision.is_some() { "git" } else { "image" });
    Report::new("app", &name)
        .field("app-dir", app.dir.display())
        .field("app-created-at", &meta.created_at)
        .field("app-deploy-source", source.unwrap_or_default())
        .field("app-locked", meta.deploy_locked)
        .field("app-deploying", deploying(&app))
        .field("app-config-vars", vars.0.len())
        .field("app-global-disable-autocreation", autocreation.unwrap_or_default())
        .extra("name", name.to_string().into())
        .extra("config_vars", vars.0.len().into())
        .extra("created_at", meta.created_at.clone().into())
        .print(&args)?;
    Ok(())
}

fn rename(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let (from, to) = (args.app(0)?, args.app(1)?);
    if apps::open(&ctx.root, &to).is_ok() {
        bail!("app {to} already exists");
    }
    let locked = apps::lock(&ctx.root, &from)?;
    println!("-----> Stopping {from} under its old name");
    crate::deploy::unroute(&ctx.root, &locked.app)?;
    drop(locked);
    let renamed = apps::rename(&ctx.root, &from, &to)?;
    let locked = apps::lock(&ctx.root, &to)?;
    crate::deploy::follow_rename(&ctx.root, &from, &renamed, &mut |line| println!("-----> {line}"))
        .with_context(|| format!("renamed {from} to {to}, but it did not start again; run ps:start {to}"))?;
    drop(locked);
    println!("-----> Renamed {from} to {to}");
    Ok(())
}

fn destroy(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let name = args.app(0)?;
    apps::open(&ctx.root, &name)?;
    super::confirm_destroy(&args, "app", name.as_str())?;
    let locked = apps::lock(&ctx.root, &name)?;
    crate::deploy::teardown(&ctx.root, &locked.app)?;
    drop(locked);
    apps::destroy(&ctx.root, &name)?;
    println!("-----> Destroying {name} (including all add-ons)... done");
    Ok(())
}

fn clone(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let (from, to) = (args.app(0)?, args.app(1)?);
    let source = apps::lock(&ctx.root, &from)?;
    if apps::exists(&ctx.root, &to) {
        if args.switch("--ignore-existing") {
            println!("-----> App {to} already exists; left as it is");
            return Ok(());
        }
        bail!("app {to} already exists");
    }
    let app = apps::create(&ctx.root, &to)?;
    let copied = copy_app(ctx, &source.app, &app);
    if let Err(e) = copied {
        let _ = apps::destroy(&ctx.root, &to);
        return Err(e);
    }
    println!("-----> Cloned {from} to {to}");
    let current = crate::state::releases::latest(&source.app.dir);
    drop(source);
    match current {
        Some(release) if !args.switch("--skip-deploy") => {
            let image: crate::image::ImageRef = release.image.parse()?;
            let description = format!("Clone of {from} v{}", release.version);
            crate::deploy::release::deploy_image(&ctx.root, &to, &image, &description, &mut |line| println!("{line}"))?;
        }
        _ => {}
    }
    Ok(())
}

/// What a clone takes from its source: config vars, the settings that are
/// not the source's own identity (names, ports and certificates stay), and
/// the pushed commits.
fn copy_app(ctx: &Ctx, from: &crate::app::App, to: &crate::app::App) -> anyhow::Result<()> {
    let vars = crate::state::config::ConfigVars::load(&from.env_file())?;
    crate::state::atomic::write_secret(&to.env_file(), &vars.encode())?;
    let mut meta = apps::meta(from)?;
    meta.created_at = apps::meta(to)?.created_at;
    (meta.domains, meta.ports, meta.letsencrypt, meta.deploy_locked, meta.stopped) = (None, None, false, false, false);
    meta.registry.image_repo = None;
    apps::write_meta_of(to, &meta)?;
    let repo = crate::git::repo::repo_dir(from);
    if repo.join("HEAD").exists() {
        let copied = std::process::Command::new("cp").arg("-a").arg(&repo).arg(crate::git::repo::repo_dir(to)).status()?;
        if !copied.success() {
            bail!("cannot copy the repository of {}", from.name);
        }
        crate::git::repo::ensure(&ctx.root, to)?;
    }
    Ok(())
}

/// `apps:rebase APP` or `--all` (every deployed app on an older run image).
fn rebase(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let names = if args.switch("--all") {
        args.expect(0, 0)?;
        let outdated: Vec<_> = crate::deploy::rebase::outdated(&ctx.root)?.into_iter().map(|(name, _)| name).collect();
        if outdated.is_empty() {
            println!("-----> Every deployed app is on its stack's newest run image");
        }
        outdated
    } else {
        args.expect(1, 1)?;
        vec![args.app(0)?]
    };
    for name in names {
        let locked = apps::lock(&ctx.root, &name)?;
        crate::deploy::rebase::rebase(&ctx.root, &locked.app, &mut |line| println!("{line}"))
            .with_context(|| format!("cannot rebase {name}"))?;
    }
    Ok(())
}
