//! `git:set`, `releases*`, and the two commands only sshd and git call:
//! `ssh-command` (every key's forced command) and `git-hook` (pre-receive).

use std::ffi::OsString;

use anyhow::{Context, bail};

use super::access::{self, AccessError};
use super::fields::Report;
use super::{Args, Caller, Command, Ctx, UsageError, print_json, wants_json};
use crate::app::AppName;
use crate::git::command::{self, split};
use crate::git::keys;
use crate::git::{hook, repo};
use crate::state::grants::{self, Grant, Grants};
use crate::state::settings::Settings;
use crate::state::{apps, releases};

pub const COMMANDS: &[Command] = &[
    Command {
        name: "git:set",
        usage: "APP|--global deploy-branch [BRANCH]",
        about: "Deploy pushes to BRANCH (default: main or master; no BRANCH: unset)",
        switches: &["--global"],
        options: &[],
        run: git_set,
    },
    Command {
        name: "git:report",
        usage: "APP|--global [--format json] [--FIELD]",
        about: "The app's deploy branch and last pushed revision (Dokku's git-* fields)",
        switches: &["--global"],
        options: &["--format"],
        run: git_report,
    },
    Command {
        name: "git:sync",
        usage: "[--build|--build-if-changes] [--skip-deploy-branch] APP URL [REF]",
        about: "Fetch a branch, tag or commit (default: the remote's HEAD) onto the app's deploy branch; --build deploys it",
        switches: &["--build", "--build-if-changes", "--skip-deploy-branch"],
        options: &[],
        run: sync,
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

fn git_set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    if args.text(at).as_deref() != Some("deploy-branch") {
        return Err(UsageError("the only git setting is deploy-branch".into()).into());
    }
    let branch = args.text(at + 1);
    if let Some(branch) = &branch {
        let valid = !branch.is_empty()
            && !branch.starts_with('-')
            && !branch.contains("..")
            && !branch.ends_with('/')
            && branch.chars().all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c));
        if !valid {
            bail!("{branch:?} is not a branch name berth accepts (A-Z, a-z, 0-9, '.', '_', '/', '-')");
        }
    }
    let whose = match app {
        None => {
            Settings::update(&ctx.root, |s| s.git.deploy_branch = branch.clone())?;
            "every app".to_owned()
        }
        Some(name) => {
            let locked = apps::lock(&ctx.root, &name)?;
            let mut meta = apps::meta(&locked.app)?;
            meta.deploy_branch = branch.clone();
            apps::write_meta(&locked, &meta)?;
            name.to_string()
        }
    };
    match branch {
        Some(branch) => println!("-----> Pushes to {branch} deploy {whose}"),
        None => println!("-----> Pushes to main or master deploy {whose}"),
    }
    Ok(())
}

fn git_report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let global = Settings::load(&ctx.root)?.git.deploy_branch;
    let (Some(name), _) = args.target()? else {
        args.expect(0, 0)?;
        Report::new("git", "--global").global_setting("deploy-branch", global, "main").print(&args)?;
        return Ok(());
    };
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &name)?;
    let meta = apps::meta(&app)?;
    let latest = releases::latest(&app.dir);
    let revision = latest.as_ref().and_then(|r| r.git_revision.clone());
    Report::new("git", &app.name)
        .setting("deploy-branch", meta.deploy_branch, global, "main")
        .field("git-sha", revision.unwrap_or_default())
        .field("git-last-updated-at", latest.filter(|r| r.git_revision.is_some()).map(|r| r.created_at).unwrap_or_default())
        .print(&args)?;
    Ok(())
}

fn rebuild(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let meta = apps::meta_in_effect(&locked.app, &Settings::load(&ctx.root)?)?;
    let dir = repo::repo_dir(&locked.app);
    let mut revision = None;
    for reference in hook::deploy_refs(meta.deploy_branch.as_deref()) {
        revision = repo::resolve(&dir, &reference)?;
        if revision.is_some() {
            break;
        }
    }
    let revision = revision.with_context(|| format!("{} has no pushed commit on its deploy branch yet", locked.app.name))?;
    Ok(hook::deploy_revision(&ctx.root, &locked.app, &revision, &mut |line| println!("{line}"))?)
}

fn sync(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 3)?;
    let url = args.text(1).unwrap_or_default();
    let reference = args.text(2);
    crate::git::sync::check_url(&url)?;
    reference.as_deref().map(crate::git::sync::check_ref).transpose()?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let fresh = !repo::repo_dir(&locked.app).exists();
    let dir = if fresh { repo::ensure(&ctx.root, &locked.app)? } else { repo::repo_dir(&locked.app) };
    println!("-----> Fetching {url}{}", reference.as_deref().map(|r| format!(" ({r})")).unwrap_or_default());
    let synced = match crate::git::sync::fetch(&dir, &url, reference.as_deref()) {
        Ok(synced) => synced,
        Err(e) => {
            // A failed sync leaves no repository behind that it made.
            if fresh {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return Err(e.into());
        }
    };
    let mut meta = apps::meta(&locked.app)?;
    // Dokku: syncing a branch makes it the deploy branch.
    if let Some(branch) = synced.branch.as_ref().filter(|_| !args.switch("--skip-deploy-branch")) {
        meta.deploy_branch = Some(branch.clone());
        apps::write_meta(&locked, &meta)?;
    }
    let in_effect = apps::meta_in_effect(&locked.app, &Settings::load(&ctx.root)?)?;
    let branch = in_effect.deploy_branch.unwrap_or_else(|| "main".into());
    let moved = crate::git::sync::set_branch(&dir, &branch, &synced.commit)?;
    println!("-----> {branch} is at {}{}", &synced.commit[..12], if moved { "" } else { " (unchanged)" });
    if args.switch("--build") || (args.switch("--build-if-changes") && moved) {
        hook::deploy_revision(&ctx.root, &locked.app, &synced.commit, &mut |line| println!("{line}"))?;
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

/// `berth ssh-command --key NAME`: what every authorized key runs. Reads
/// SSH_ORIGINAL_COMMAND, splits it without a shell, checks the key's grant
/// against the command, and runs git or a berth command.
pub fn ssh_command(ctx: &Ctx, argv: Vec<OsString>) -> anyhow::Result<i32> {
    let [flag, key] = argv.as_slice() else { bail!("ssh-command is run by sshd for an authorized key") };
    if flag != "--key" {
        bail!("ssh-command is run by sshd for an authorized key");
    }
    let key = key.to_string_lossy().into_owned();
    keys::check_name(&key)?;
    if !nix::unistd::geteuid().is_root() {
        // The berth user runs this through one sudo rule; root does the
        // work. The command line stays in SSH_ORIGINAL_COMMAND, which the
        // rule keeps: in argv, `ps` and sudo's log would show its secrets.
        let status = std::process::Command::new("sudo")
            .args(["-n", "--"])
            .arg(std::env::current_exe()?)
            .args(["ssh-command", "--key", &key])
            .status()
            .context("cannot run sudo")?;
        return Ok(status.code().unwrap_or(1));
    }
    let line = std::env::var("SSH_ORIGINAL_COMMAND").unwrap_or_default();
    let words = split(&line)?;
    let grant = Grants::load(&ctx.root)?.of(&key);
    let ctx = Ctx { root: ctx.root.clone(), caller: Caller::Key { grant: grant.clone() } };
    match (words[0].as_str(), words.len()) {
        ("git-receive-pack", 2) | ("git-upload-pack", 2) => git_over_ssh(&ctx, &key, &grant, &words),
        (git, _) if git.starts_with("git-") => bail!("{git} is not supported; push with git push berth main"),
        (name, _) if INTERNAL.contains(&name) => bail!("{name} cannot be run over ssh"),
        (name, _) => {
            let mut created = None;
            if let Some(command) = super::find(name)
                && let Some(args) = super::parse_args(command, words[1..].iter().map(OsString::from).collect())?
            {
                access::check(&ctx.root, &key, &grant, command.name, &args)?;
                created = args.get(0).and_then(|a| AppName::parse(a).ok()).filter(|a| !apps::exists(&ctx.root, a));
            }
            super::run(&ctx, words.into_iter().map(OsString::from).collect())?;
            if let Some(app) = created {
                grant_created(&ctx.root, &key, &grant, &app)?;
            }
            Ok(0)
        }
    }
}

/// An app a scoped key made is that key's to use.
fn grant_created(root: &std::path::Path, key: &str, grant: &Grant, app: &AppName) -> anyhow::Result<()> {
    if !grant.admin && apps::exists(root, app) {
        grants::update(root, |g| g.keys.entry(key.to_owned()).or_default().apps.insert(app.clone()))?;
    }
    Ok(())
}

/// `git push` and `git fetch`: receive-pack or upload-pack on the app's
/// repository, for a key granted the app (a push may create it with --create).
fn git_over_ssh(ctx: &Ctx, key: &str, grant: &Grant, words: &[String]) -> anyhow::Result<i32> {
    let name = AppName::parse(std::ffi::OsStr::new(command::repo_name(&words[1])))?;
    let receiving = words[0] == "git-receive-pack";
    let exists = apps::exists(&ctx.root, &name);
    if !grant.may_use(&name) {
        // Only a push to a name nobody has yet can make an app.
        if !receiving || exists {
            return Err(AccessError::NotGranted { key: key.to_owned(), app: name }.into());
        }
        if !grant.create {
            return Err(AccessError::NoCreate { key: key.to_owned(), app: name }.into());
        }
    }
    if receiving && !exists {
        apps::create(&ctx.root, &name)?;
        grant_created(&ctx.root, key, grant, &name)?;
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
    let mut git = std::process::Command::new(&words[0]);
    git.arg(&dir).env("BERTH_APP_LOCKED", "1").env("BERTH_ROOT", &ctx.root);
    if receiving {
        // receive-pack stops reading a pack larger than the archive cap
        // before it stores any of it.
        let cap = Settings::load(&ctx.root)?.limits.archive_bytes;
        git.env("GIT_CONFIG_COUNT", "1").env("GIT_CONFIG_KEY_0", "receive.maxInputSize").env("GIT_CONFIG_VALUE_0", cap.to_string());
    }
    let status = git.status()?;
    drop(locked);
    Ok(status.code().unwrap_or(1))
}

/// `berth git-hook APP`: the pre-receive hook of the app's repository.
pub fn git_hook(ctx: &Ctx, argv: Vec<OsString>) -> anyhow::Result<()> {
    let [name] = argv.as_slice() else { bail!("git-hook is run by git with the app's name") };
    let name = AppName::parse(name)?;
    Ok(hook::run(&ctx.root, &name, std::io::stdin().lock(), &mut |line| println!("{line}"))?)
}
