//! `ssh-keys:*`, `releases*`, and the two commands only sshd and git call:
//! `ssh-command` (every key's forced command) and `git-hook` (pre-receive).

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{Args, Command, Ctx, UsageError, print_json, wants_json};
use crate::app::AppName;
use crate::git::command::{self, split};
use crate::git::keys::{self, PublicKey};
use crate::git::{hook, repo};
use crate::state::settings::Settings;
use crate::state::{apps, releases};

pub const COMMANDS: &[Command] = &[
    Command {
        name: "ssh-keys:add",
        usage: "NAME [FILE|-]",
        about: "Allow a public key to push and run berth commands over ssh",
        switches: &[],
        options: &[],
        run: keys_add,
    },
    Command { name: "ssh-keys:remove", usage: "NAME", about: "Remove a key", switches: &[], options: &[], run: keys_remove },
    Command {
        name: "ssh-keys:list",
        usage: "[--format json]",
        about: "List keys with their fingerprints",
        switches: &[],
        options: &["--format"],
        run: keys_list,
    },
    Command {
        name: "releases",
        usage: "APP [--format json]",
        about: "List an app's releases",
        switches: &[],
        options: &["--format"],
        run: list_releases,
    },
    Command { name: "releases:info", usage: "APP vN", about: "Show one release", switches: &[], options: &[], run: release_info },
];

/// Commands that exist only for sshd, git and the shim: refused over ssh.
pub const INTERNAL: &[&str] = &["ssh-command", "git-hook", "shim"];

fn authorized_keys(ctx: &Ctx) -> anyhow::Result<PathBuf> {
    Ok(PathBuf::from(Settings::load(&ctx.root)?.ssh.authorized_keys))
}

fn keys_add(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 2)?;
    let name = args.get(0).expect("checked").to_string_lossy().into_owned();
    let mut text = String::new();
    match args.get(1).filter(|f| *f != "-") {
        Some(file) => text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", PathBuf::from(file).display()))?,
        None => {
            std::io::stdin().read_to_string(&mut text).context("cannot read the key from stdin")?;
        }
    }
    let key = PublicKey::parse(&text)?;
    let exe = std::env::current_exe()?.display().to_string();
    keys::add(&authorized_keys(ctx)?, &exe, &name, &key)?;
    println!("-----> Added key {name} ({})", key.fingerprint());
    Ok(())
}

fn keys_remove(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let name = args.get(0).expect("checked").to_string_lossy().into_owned();
    keys::remove(&authorized_keys(ctx)?, &name)?;
    println!("-----> Removed key {name}");
    Ok(())
}

fn keys_list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
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

fn list_releases(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let all = releases::list(&app.dir);
    if wants_json(&args)? {
        return print_json(&all);
    }
    println!("=====> {} releases", app.name);
    for r in all.iter().rev() {
        println!("v{:<4} {:<28} {:<21} {}", r.version, r.description, r.created_at, r.image);
    }
    Ok(())
}

fn release_info(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let raw = args.get(1).expect("checked").to_string_lossy().into_owned();
    let version: u64 = raw.trim_start_matches('v').parse().map_err(|_| UsageError(format!("{raw:?} is not a release like v3")))?;
    let release = releases::list(&app.dir)
        .into_iter()
        .find(|r| r.version == version)
        .with_context(|| format!("{} has no release v{version}", app.name))?;
    print_json(&release)
}

/// `berth ssh-command --key NAME [--command LINE]`: what every authorized
/// key runs. Reads SSH_ORIGINAL_COMMAND (or --command, when re-run through
/// sudo), splits it without a shell, and runs git or a berth command.
pub fn ssh_command(ctx: &Ctx, argv: Vec<OsString>) -> anyhow::Result<i32> {
    let argv: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let (key, line) = match argv.as_slice() {
        [flag, key] if flag == "--key" => (key.clone(), std::env::var("SSH_ORIGINAL_COMMAND").unwrap_or_default()),
        [flag, key, cflag, line] if flag == "--key" && cflag == "--command" => (key.clone(), line.clone()),
        _ => bail!("ssh-command is run by sshd for an authorized key"),
    };
    keys::check_name(&key)?;
    if !nix::unistd::geteuid().is_root() {
        // The berth user runs this through one sudo rule; root does the work.
        let exe = std::env::current_exe()?;
        let status = std::process::Command::new("sudo")
            .args(["-n", "--"])
            .arg(exe)
            .args(["ssh-command", "--key", &key, "--command", &line])
            .status()
            .context("cannot run sudo")?;
        return Ok(status.code().unwrap_or(1));
    }
    let words = split(&line)?;
    match (words[0].as_str(), words.len()) {
        ("git-receive-pack", 2) | ("git-upload-pack", 2) => {
            let name = AppName::parse(std::ffi::OsStr::new(command::repo_name(&words[1])))?;
            let receiving = words[0] == "git-receive-pack";
            if receiving && !apps::exists(&ctx.root, &name) {
                apps::create(&ctx.root, &name)?;
                eprintln!("-----> Created app {name}");
            }
            let locked = if receiving { Some(apps::lock(&ctx.root, &name)?) } else { None };
            let app = apps::open(&ctx.root, &name)?;
            let dir = repo::ensure(&ctx.root, &app)?;
            let status =
                std::process::Command::new(&words[0]).arg(&dir).env("BERTH_APP_LOCKED", "1").env("BERTH_ROOT", &ctx.root).status()?;
            drop(locked);
            Ok(status.code().unwrap_or(1))
        }
        (git, _) if git.starts_with("git-") => bail!("{git} is not supported; push with git push berth main"),
        (name, _) if INTERNAL.contains(&name) => bail!("{name} cannot be run over ssh"),
        _ => {
            super::run(ctx, words.into_iter().map(OsString::from).collect())?;
            Ok(0)
        }
    }
}

/// `berth git-hook APP`: the pre-receive hook of the app's repository.
pub fn git_hook(ctx: &Ctx, argv: Vec<OsString>) -> anyhow::Result<()> {
    let [name] = argv.as_slice() else { bail!("git-hook is run by git with the app's name") };
    let name = AppName::parse(name)?;
    hook::run(&ctx.root, &name, std::io::stdin().lock(), &mut |line| println!("{line}"))
}
