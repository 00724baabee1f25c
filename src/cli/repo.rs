//! `repo:*`: an app's build cache and its git repository's housekeeping.

use anyhow::{Context, bail};

use super::{Args, Command, Ctx};
use crate::state::apps;

pub const COMMANDS: &[Command] = &[
    Command { name: "repo:purge-cache", usage: "APP", about: "Empty the app's build cache", switches: &[], options: &[], run: purge_cache },
    Command {
        name: "repo:gc",
        usage: "APP",
        about: "Run git gc --aggressive on the app's repository",
        switches: &[],
        options: &[],
        run: gc,
    },
];

fn purge_cache(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let cache = locked.app.dir.join("cache");
    if cache.exists() {
        std::fs::remove_dir_all(&cache).with_context(|| format!("cannot empty {}", cache.display()))?;
    }
    println!("-----> Build cache of {} purged", locked.app.name);
    Ok(())
}

fn gc(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let repo = locked.app.repo_dir();
    if !repo.join("HEAD").exists() {
        bail!("{} has no repository yet: push to it first", locked.app.name);
    }
    // The repository may belong to the push user; git runs here as root.
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["-c", "safe.directory=*", "gc", "--aggressive", "--quiet"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        bail!("git gc failed: {}", said.lines().next().unwrap_or("no reason given").trim());
    }
    println!("-----> Packed the repository of {}", locked.app.name);
    Ok(())
}
