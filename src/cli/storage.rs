//! `storage:*`: host directories mounted into an app's containers.

use anyhow::bail;

use super::{Args, Command, Ctx, print_json, wants_json};
use crate::state::settings::Settings;
use crate::state::{apps, storage};

pub const COMMANDS: &[Command] = &[
    Command {
        name: "storage:ensure-directory",
        usage: "NAME",
        about: "Create $BERTH_ROOT/storage/NAME owned by the app user",
        switches: &[],
        options: &[],
        run: ensure_directory,
    },
    Command {
        name: "storage:mount",
        usage: "APP HOST:CONTAINER[:ro] [--force]",
        about: "Mount a host path into the app's containers from the next start (--force: outside the allowed roots)",
        switches: &["--force"],
        options: &[],
        run: mount,
    },
    Command {
        name: "storage:unmount",
        usage: "APP HOST:CONTAINER[:ro]",
        about: "Remove a mount from the next start",
        switches: &[],
        options: &[],
        run: unmount,
    },
    Command {
        name: "storage:list",
        usage: "APP [--format json]",
        about: "The app's mounts",
        switches: &[],
        options: &["--format"],
        run: list,
    },
];

fn spec_arg(args: &Args) -> anyhow::Result<crate::runtime::store::BindMount> {
    Ok(storage::parse(&args.get(1).expect("checked").to_string_lossy())?)
}

fn ensure_directory(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let dir = storage::ensure_directory(&ctx.root, &args.get(0).expect("checked").to_string_lossy())?;
    println!("-----> {} is ready; mount it with storage:mount APP {}:/PATH", dir.display(), dir.display());
    Ok(())
}

fn mount(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let wanted = spec_arg(&args)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let settings = Settings::load(&ctx.root)?;
    storage::check_host(&ctx.root, &wanted, &settings.storage.allowed_roots, args.switch("--force"))?;
    let mut meta = apps::meta(&locked.app)?;
    if meta.storage.iter().any(|m| m.destination == wanted.destination) {
        bail!("{} already has a mount at {}", locked.app.name, wanted.destination);
    }
    storage::hand_to_app(&ctx.root, &wanted.source, apps::uid(&ctx.root, &locked.app)?)?;
    meta.storage.push(wanted.clone());
    apps::write_meta(&locked, &meta)?;
    println!("-----> {} mounts {} at {} from the next start (ps:restart)", locked.app.name, wanted.source.display(), wanted.destination);
    Ok(())
}

fn unmount(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let wanted = spec_arg(&args)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let mut meta = apps::meta(&locked.app)?;
    let before = meta.storage.len();
    meta.storage.retain(|m| !(m.source == wanted.source && m.destination == wanted.destination));
    if meta.storage.len() == before {
        bail!("{} has no mount {}:{}", locked.app.name, wanted.source.display(), wanted.destination);
    }
    apps::write_meta(&locked, &meta)?;
    println!("-----> {} no longer mounts {} from the next start", locked.app.name, wanted.destination);
    Ok(())
}

fn list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let mounts = apps::meta(&app)?.storage;
    if wants_json(&args)? {
        return print_json(&mounts);
    }
    println!("=====> {} storage", app.name);
    for m in mounts {
        println!("{}:{}{}", m.source.display(), m.destination, if m.readonly { ":ro" } else { "" });
    }
    Ok(())
}
