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
        name: "git:set",
        usage: "APP deploy-branch BRANCH",
        about: "Deploy pushes to BRANCH (default: main or master)",
        switches: &[],
        options: &[],
        run: git_set,
    },
    Command {
        name: "ps:rebuild",
        usage: "APP",
        about: "Build and deploy the last pushed commit again",
        switches: &[],
        options: &[],
        run: rebuild,
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
    Command {
        name: "releases:set",
        usage: "APP keep N",
        about: "Keep the images of the last N releases (default 20); store:gc frees older ones",
        switches: &[],
        options: &[],
        run: releases_set,
    },
    Command {
        name: "releases:rollback",
        usage: "APP [vN]",
        about: "Run release vN's image and config again (default: the one before), as a new release; no build",
        switches: &[],
        options: &[],
        run: rollback,
    },
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

fn git_set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(3, 3)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    if args.get(1).expect("checked") != "deploy-branch" {
        return Err(UsageError("the only git setting is deploy-branch".into()).into());
    }
    let branch = args.get(2).expect("checked").to_string_lossy().into_owned();
    let valid = !branch.is_empty()
        && !branch.starts_with('-')
        && !branch.contains("..")
        && !branch.ends_with('/')
        && branch.chars().all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c));
    if !valid {
        bail!("{branch:?} is not a branch name berth accepts (A-Z, a-z, 0-9, '.', '_', '/', '-')");
    }
    let mut meta = apps::meta(&locked.app)?;
    meta.deploy_branch = Some(branch.clone());
    apps::write_meta(&locked, &meta)?;
    println!("-----> Pushes to {branch} deploy {}", locked.app.name);
    Ok(())
}

fn rebuild(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let meta = apps::meta(&locked.app)?;
    let dir = repo::repo_dir(&locked.app);
    let revision = hook::deploy_refs(meta.deploy_branch.as_deref())
        .iter()
        .find_map(|r| {
            let out =
                std::process::Command::new("git").arg("--git-dir").arg(&dir).args(["rev-parse", "--verify", "--quiet", r]).output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .with_context(|| format!("{} has no pushed commit on its deploy branch yet", locked.app.name))?;
    hook::deploy_revision(&ctx.root, &locked.app, &revision, &mut |line| println!("{line}"))
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

fn release_version(args: &Args, i: usize) -> Result<Option<u64>, UsageError> {
    let Some(raw) = args.get(i) else { return Ok(None) };
    let raw = raw.to_string_lossy();
    raw.strip_prefix('v').unwrap_or(&raw).parse().map(Some).map_err(|_| UsageError(format!("{raw:?} is not a release like v3")))
}

fn releases_set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(3, 3)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    if args.get(1).expect("checked") != "keep" {
        bail!("{:?} is not a releases setting: use keep", args.get(1).expect("checked"));
    }
    let raw = args.get(2).expect("checked").to_string_lossy().into_owned();
    let keep =
        raw.parse::<u32>().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| UsageError(format!("keep {raw:?} is not 1 to 1000")))?;
    let mut meta = apps::meta(&locked.app)?;
    meta.keep_releases = Some(keep);
    apps::write_meta(&locked, &meta)?;
    let removed = crate::deploy::retention::prune(&ctx.root, &locked.app)?;
    println!("-----> {} keeps the images of its last {keep} releases", locked.app.name);
    for tag in removed {
        println!("       untagged {tag}; store:gc frees what only it used");
    }
    Ok(())
}

fn rollback(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 2)?;
    let version = release_version(&args, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let release = crate::deploy::rollback(&ctx.root, &locked.app, version, &mut |line| println!("-----> {line}"))?;
    println!("=====> Released v{}: {}", release.version, release.description);
    Ok(())
}

fn release_info(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let version = release_version(&args, 1)?.expect("checked");
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
            let locked = if receiving {
                Some(apps::lock_noting_wait(&ctx.root, &name, || {
                    eprintln!("-----> Another deploy of {name} is running; waiting for it to finish")
                })?)
            } else {
                None
            };
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
