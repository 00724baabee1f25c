//! `git:set`, `releases*`, and the two commands only sshd and git call:
//! `ssh-command` (every key's forced command) and `git-hook` (pre-receive).

use std::ffi::OsString;
use std::io::Read;

use anyhow::{Context, bail};

use super::access::{self, AccessError};
use super::fields::Report;
use super::{Args, Caller, Command, Ctx, UsageError, print_json, wants_json};
use crate::app::AppName;
use crate::git::command::{self, split};
use crate::git::keys;
use crate::git::remote_auth::{self, GitHome, GitHost};
use crate::git::{hook, repo};
use crate::state::apps::AppMeta;
use crate::state::grants::{self, Grant, Grants};
use crate::state::settings::{GitGlobals, Settings};
use crate::state::{apps, releases};

pub const COMMANDS: &[Command] = &[
    Command {
        name: "git:set",
        usage: "APP|--global KEY [VALUE]",
        about: "Set or clear deploy-branch, rev-env-var, keep-git-dir, archive-max-files, archive-max-size or source-image",
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
        name: "git:initialize",
        usage: "APP",
        about: "Make the app's repository and its deploy hook (again), as a push would",
        switches: &[],
        options: &[],
        run: initialize,
    },
    Command {
        name: "git:status",
        usage: "APP",
        about: "The deploy branch's commit and whether the running release is built from it",
        switches: &[],
        options: &[],
        run: status,
    },
    Command {
        name: "git:auth",
        usage: "HOST [USER [PASSWORD]]",
        about: "Log in to HOST as USER when fetching over https (password from stdin if not given); no USER: forget HOST",
        switches: &[],
        options: &[],
        run: auth,
    },
    Command {
        name: "git:auth-status",
        usage: "HOST [USER [PASSWORD]]",
        about: "Exit 0 if HOST's login is USER with PASSWORD (no USER: if there is none), else 1",
        switches: &[],
        options: &[],
        run: auth_status,
    },
    Command {
        name: "git:allow-host",
        usage: "HOST[:PORT]",
        about: "Trust HOST's ssh host keys (ssh-keyscan) for fetches over ssh",
        switches: &[],
        options: &[],
        run: allow_host,
    },
    Command {
        name: "git:generate-deploy-key",
        usage: "",
        about: "Make the ed25519 key berth fetches over ssh with (kept if one exists)",
        switches: &[],
        options: &[],
        run: generate_deploy_key,
    },
    Command {
        name: "git:public-key",
        usage: "",
        about: "Print the deploy key's public half, to add to a git server",
        switches: &[],
        options: &[],
        run: public_key,
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
    let key = args.text(at).unwrap_or_default();
    let value = args.text(at + 1);
    if key == "deploy-branch" {
        return set_deploy_branch(ctx, app, value);
    }
    // Checked on a scratch copy first: a bad value changes nothing.
    crate::model::git_props::GitProps::default().set(&key, value.as_deref())?;
    let set = |props: &mut crate::model::git_props::GitProps| props.set(&key, value.as_deref()).expect("checked above");
    let whose = app.as_ref().map_or("every app".to_owned(), ToString::to_string);
    super::fields::store(ctx, app, |s| set(&mut s.git.props), |m| set(&mut m.git))?;
    match value {
        Some(value) => println!("-----> Set {key} to {value:?} for {whose}"),
        None => println!("-----> Unset {key} for {whose}"),
    }
    Ok(())
}

fn set_deploy_branch(ctx: &Ctx, app: Option<AppName>, branch: Option<String>) -> anyhow::Result<()> {
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
    let whose = app.as_ref().map_or("every app".to_owned(), ToString::to_string);
    super::fields::store(ctx, app, |s| s.git.deploy_branch = branch.clone(), |m| m.deploy_branch = branch.clone())?;
    match branch {
        Some(branch) => println!("-----> Pushes to {branch} deploy {whose}"),
        None => println!("-----> Pushes to main or master deploy {whose}"),
    }
    Ok(())
}

/// Dokku's git-* fields: each property's app, global and computed value
/// (archive limits only global and computed; rev-env-var and source-image
/// only as they apply), then what the repository says.
fn git_report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let host = Settings::load(&ctx.root)?.git;
    let (Some(name), _) = args.target()? else {
        args.expect(0, 0)?;
        git_fields(Report::new("git", "--global"), None, &host).print(&args)?;
        return Ok(());
    };
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &name)?;
    let meta = apps::meta(&app)?;
    let latest = releases::latest(&app.dir);
    let revision = latest.as_ref().and_then(|r| r.git_revision.clone());
    git_fields(Report::new("git", &app.name), Some(&meta), &host)
        .field("git-sha", revision.unwrap_or_default())
        .field("git-last-updated-at", latest.filter(|r| r.git_revision.is_some()).map(|r| r.created_at).unwrap_or_default())
        .print(&args)?;
    Ok(())
}

fn git_fields(report: Report, app: Option<&AppMeta>, host: &GitGlobals) -> Report {
    let bool_text = |b: Option<bool>| b.map(|b| b.to_string());
    let text = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let own = app.map(|m| m.git.clone()).unwrap_or_default();
    let computed = own.over(&host.props);
    let report = match app {
        Some(meta) => report.setting("deploy-branch", meta.deploy_branch.clone(), host.deploy_branch.clone(), "main").setting(
            "keep-git-dir",
            bool_text(own.keep_git_dir),
            bool_text(host.props.keep_git_dir),
            "false",
        ),
        None => report.global_setting("deploy-branch", host.deploy_branch.clone(), "main").global_setting(
            "keep-git-dir",
            bool_text(host.props.keep_git_dir),
            "false",
        ),
    };
    report
        .field("git-global-archive-max-files", text(host.props.archive_max_files))
        .field("git-computed-archive-max-files", computed.max_files())
        .field("git-global-archive-max-size", text(host.props.archive_max_size))
        .field("git-computed-archive-max-size", computed.max_size())
        .field("git-rev-env-var", computed.rev_var().unwrap_or_default())
        .field("git-source-image", computed.source_image.unwrap_or_default())
}

fn initialize(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    repo::ensure(&ctx.root, &locked.app)?;
    println!("-----> Initialized the repository of {} and its deploy hook", locked.app.name);
    Ok(())
}

fn status(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let meta = apps::meta_in_effect(&app, &Settings::load(&ctx.root)?)?;
    let dir = repo::repo_dir(&app);
    let mut head = None;
    for reference in hook::deploy_refs(meta.deploy_branch.as_deref()) {
        if let Some(commit) = repo::resolve(&dir, &reference).ok().flatten() {
            head = Some((reference.trim_start_matches("refs/heads/").to_owned(), commit));
            break;
        }
    }
    let deployed = releases::latest(&app.dir).and_then(|r| r.git_revision.map(|rev| (r.version, rev)));
    let Some((branch, commit)) = head else {
        println!("{} has no pushed commit on its deploy branch", app.name);
        return Ok(());
    };
    println!("On branch {branch} at {commit}");
    match deployed {
        Some((version, rev)) if rev == commit => println!("Deployed: v{version} is built from it"),
        Some((version, rev)) => println!("Not deployed: v{version} runs {rev} (ps:rebuild deploys {branch})"),
        None => println!("Not deployed: no release is built from a commit"),
    }
    Ok(())
}

/// HOST and the login a `git:auth*` names; the password from stdin when
/// the line gives a user but no password (so it stays out of argv).
fn auth_args(args: &Args) -> anyhow::Result<(GitHost, Option<(String, String)>)> {
    args.expect(1, 3)?;
    let host = GitHost::parse(&args.text(0).unwrap_or_default())?;
    let Some(user) = args.text(1) else { return Ok((host, None)) };
    remote_auth::check_token("login", &user)?;
    let password = match args.text(2) {
        Some(password) => password,
        None => {
            let mut text = String::new();
            std::io::stdin().take(4096).read_to_string(&mut text).context("cannot read the password from stdin")?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    if password.is_empty() {
        return Err(remote_auth::AuthError::NoPassword.into());
    }
    remote_auth::check_token("password", &password)?;
    Ok((host, Some((user, password))))
}

fn as_login(login: &Option<(String, String)>) -> Option<(&str, &str)> {
    login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
}

fn auth(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (host, login) = auth_args(&args)?;
    GitHome::of(&ctx.root).set_login(&host, as_login(&login))?;
    match login {
        Some((user, _)) => println!("-----> Fetches from {} log in as {user}", host.name),
        None => println!("-----> Removed the login for {}", host.name),
    }
    Ok(())
}

fn auth_status(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (host, login) = auth_args(&args)?;
    if GitHome::of(&ctx.root).login_is(&host, as_login(&login))? {
        return Ok(());
    }
    match login {
        Some((user, _)) => bail!("the login for {} is not {user} with that password", host.name),
        None => bail!("{} has a login", host.name),
    }
}

fn allow_host(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let host = GitHost::parse(&args.text(0).unwrap_or_default())?;
    let added = GitHome::of(&ctx.root).allow_host(&host)?;
    println!("-----> {} added to known hosts ({added} new key{})", host.name, if added == 1 { "" } else { "s" });
    Ok(())
}

fn generate_deploy_key(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let home = GitHome::of(&ctx.root);
    if !home.generate_key()? {
        println!(" !     A deploy key already exists for this host");
        return Ok(());
    }
    println!("-----> Generated the deploy key; add this public key to the git server:");
    println!("{}", home.public_key()?);
    Ok(())
}

fn public_key(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    println!("{}", GitHome::of(&ctx.root).public_key()?);
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
    // The host's logins and deploy key are an admin's: a key scoped to
    // an app would otherwise fetch whatever they open.
    let admin = match &ctx.caller {
        Caller::Local => true,
        Caller::Key { grant } => grant.admin,
    };
    let credentials = admin.then(|| GitHome::of(&ctx.root));
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let fresh = !repo::repo_dir(&locked.app).exists();
    let dir = if fresh { repo::ensure(&ctx.root, &locked.app)? } else { repo::repo_dir(&locked.app) };
    println!("-----> Fetching {url}{}", reference.as_deref().map(|r| format!(" ({r})")).unwrap_or_default());
    let synced = match crate::git::sync::fetch(&dir, credentials.as_ref(), &url, reference.as_deref()) {
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
    // `ssh host --quiet apps:list`: Dokku's global flags work over ssh too.
    let mut argv: Vec<OsString> = split(&line)?.into_iter().map(OsString::from).collect();
    let flags = super::take_global_flags(&mut argv);
    super::expand_alias(&mut argv);
    let words: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    if words.is_empty() {
        bail!("give a berth command, or push with git push berth main");
    }
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
            } else if let Some((_, _, command)) = crate::state::plugins::command(&ctx.root, name) {
                access::check_plugin(&key, &grant, name, command.app, words.get(1).map(String::as_str))?;
            }
            let filter = if flags.quiet { super::quiet::start().ok() } else { None };
            let result = super::run(&ctx, argv);
            if let Some(filter) = filter {
                filter.finish();
            }
            result?;
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
        if Settings::load(&ctx.root)?.apps.disable_autocreation == Some(true) {
            bail!(
                "app {name} does not exist and this host does not make apps on push (apps:set --global disable-autocreation): run apps:create {name} first"
            );
        }
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
