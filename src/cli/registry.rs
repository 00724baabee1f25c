//! Everything that talks to an image registry: `registry:*` (logins, an
//! app's registry, pushing its releases), `images:pull`/`images:push`,
//! `stacks:pull`/`stacks:push`, and `git:from-image` (deploying an image
//! built elsewhere).

use std::io::Read;

use anyhow::{Context, bail};

use super::fields::Report;
use super::{Args, Command, Ctx};
use crate::app::AppName;
use crate::image::{Digest, ImageRef, Store};
use crate::model::git_props::GitProps;
use crate::registry::logins::{self, Login};
use crate::registry::{Client, RemoteRef, pull, push};
use crate::stack::StackName;
use crate::state::apps;
use crate::state::settings::Settings;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "registry:login",
        usage: "SERVER USER [PASSWORD] [--password-stdin] [--insecure]",
        about: "Check a login against the registry and keep it (root-only) for pushes and pulls",
        switches: &["--password-stdin", "--insecure"],
        options: &[],
        run: login,
    },
    Command { name: "registry:logout", usage: "SERVER", about: "Forget the login for SERVER", switches: &[], options: &[], run: logout },
    Command {
        name: "registry:set",
        usage: "APP|--global server|image-repo|push-on-release|insecure [VALUE]",
        about: "Set (or without VALUE, unset) where the app's images are pushed (--global: server for every app)",
        switches: &["--global"],
        options: &[],
        run: set,
    },
    Command {
        name: "registry:report",
        usage: "APP [--format json] [--FIELD]",
        about: "The app's registry settings",
        switches: &[],
        options: &["--format"],
        run: report,
    },
    Command {
        name: "registry:push",
        usage: "APP [TAG] [--release vN]",
        about: "Push a release's image (default: the current one) as TAG, or as N and its git revision",
        switches: &[],
        options: &["--release"],
        run: push_app,
    },
    Command {
        name: "images:pull",
        usage: "SERVER/NAME[:TAG|@DIGEST] [--insecure]",
        about: "Pull an image into the store as NAME:TAG, every digest verified",
        switches: &["--insecure"],
        options: &[],
        run: pull_image,
    },
    Command {
        name: "images:push",
        usage: "REF SERVER/NAME[:TAG] [--insecure] [--format oci|docker]",
        about: "Push an image from the store to a registry (--format docker: as Docker schema 2)",
        switches: &["--insecure"],
        options: &["--format"],
        run: push_image,
    },
    Command {
        name: "stacks:push",
        usage: "STACK SERVER/NAME [--insecure]",
        about: "Push a stack's run and build images as NAME:STACK-run and NAME:STACK-build",
        switches: &["--insecure"],
        options: &[],
        run: push_stack,
    },
    Command {
        name: "stacks:pull",
        usage: "SERVER/NAME:TAG [--as STACK] [--insecure]",
        about: "Pull a stack pushed by stacks:push (NAME:STACK-run and -build), or with --as any run image TAG and its TAG-build",
        switches: &["--insecure"],
        options: &["--as"],
        run: pull_stack,
    },
    Command {
        name: "git:from-image",
        usage: "APP REF [--insecure]",
        about: "Deploy an image berth built (a registry's SERVER/NAME:TAG, or a store tag); the app is made if missing",
        switches: &["--insecure"],
        options: &[],
        run: from_image,
    },
    Command {
        name: "git:load-image",
        usage: "APP IMAGE",
        about: "Deploy IMAGE from a docker or OCI archive on stdin (docker save IMAGE | ...); the app is made if missing",
        switches: &[],
        options: &[],
        run: load_image,
    },
    Command {
        name: "git:from-archive",
        usage: "APP [URL|-|--]",
        about: "Build and deploy a tar (or tar.gz) of source from an http(s) URL or stdin (-, --, or nothing); the app is made if missing",
        switches: &[],
        options: &[],
        run: from_archive,
    },
];

fn remote(args: &Args, i: usize) -> anyhow::Result<RemoteRef> {
    let raw = args.get(i).ok_or_else(|| args.usage_error("missing the registry reference"))?;
    Ok(RemoteRef::parse(&raw.to_string_lossy())?)
}

fn server_arg(args: &Args) -> anyhow::Result<String> {
    let server = args.get(0).expect("checked").to_string_lossy().into_owned();
    if !crate::registry::reference::valid_server(&server) {
        bail!("{server:?} is not a registry host[:port]");
    }
    Ok(server)
}

fn login(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 3)?;
    let server = server_arg(&args)?;
    let user = args.get(1).expect("checked").to_string_lossy().into_owned();
    let password = match (args.get(2), args.switch("--password-stdin")) {
        (Some(_), true) => return Err(args.usage_error("give the password or --password-stdin, not both").into()),
        (Some(p), false) => p.to_string_lossy().into_owned(),
        (None, true) => {
            let mut text = String::new();
            std::io::stdin().take(4096).read_to_string(&mut text).context("cannot read the password from stdin")?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => return Err(args.usage_error("missing PASSWORD (or --password-stdin)").into()),
    };
    if user.is_empty() || password.is_empty() || user.contains(':') {
        bail!("the user must be non-empty without ':' and the password non-empty");
    }
    let login = Login { user, password };
    Client::with_login(&ctx.root, &server, args.switch("--insecure"), None, false, Some(&login))?;
    let user = login.user.clone();
    logins::set(&ctx.root, &server, login)?;
    println!("-----> Logged in to {server} as {user}");
    Ok(())
}

fn logout(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let server = server_arg(&args)?;
    if !logins::remove(&ctx.root, &server)? {
        bail!("there is no login for {server}");
    }
    println!("-----> Logged out of {server}");
    Ok(())
}

/// `registry:set --global server HOST`: the registry of every app that names none.
fn set_global(ctx: &Ctx, key: &str, value: Option<String>) -> anyhow::Result<()> {
    if key != "server" {
        bail!("{key:?} is not a global registry setting: use server");
    }
    if let Some(s) = &value
        && !crate::registry::reference::valid_server(s)
    {
        bail!("{s:?} is not a registry host[:port]");
    }
    Settings::update(&ctx.root, |s| s.registry.server = value.clone())?;
    println!("-----> Every app's registry server is {}", value.as_deref().unwrap_or("unset"));
    Ok(())
}

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (app, at) = args.target()?;
    args.expect(at + 1, at + 2)?;
    let key = args.text(at).unwrap_or_default();
    let value = args.text(at + 1);
    let Some(app) = app else { return set_global(ctx, &key, value) };
    let locked = apps::lock(&ctx.root, &app)?;
    let mut meta = apps::meta(&locked.app)?;
    let flag = |v: &Option<String>| match v.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(anyhow::anyhow!("{key} is true or false, not {other:?}")),
    };
    match key.as_str() {
        "server" => {
            if let Some(s) = &value
                && !crate::registry::reference::valid_server(s)
            {
                bail!("{s:?} is not a registry host[:port]");
            }
            meta.registry.server = value.clone();
        }
        "image-repo" => {
            if let Some(r) = &value {
                ImageRef::new(r, "latest").map_err(|_| anyhow::anyhow!("{r:?} is not a repository name (a-z, 0-9, '.', '_', '-', '/')"))?;
            }
            meta.registry.image_repo = value.clone();
        }
        "push-on-release" => meta.registry.push_on_release = flag(&value)?,
        "insecure" => meta.registry.insecure = flag(&value)?,
        other => bail!("{other:?} is not a registry setting: use server, image-repo, push-on-release or insecure"),
    }
    apps::write_meta(&locked, &meta)?;
    match value {
        Some(v) => println!("-----> {} registry {key} is {v}", locked.app.name),
        None => println!("-----> {} registry {key} is unset", locked.app.name),
    }
    Ok(())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let r = apps::meta(&app)?.registry;
    let global = Settings::load(&ctx.root)?.registry.server;
    Report::new("registry", &app.name)
        .setting("server", r.server.clone(), global, "")
        .field("registry-image-repo", r.image_repo.as_deref().unwrap_or(app.name.as_str()))
        .field("registry-push-on-release", r.push_on_release)
        .field("registry-insecure", r.insecure)
        .print(&args)?;
    Ok(())
}

fn push_app(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 2)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let release = super::release_option(&args, &locked.app)?;
    let tags = match args.get(1) {
        // One tag given: push only that (as Dokku's `registry:push APP TAG`).
        Some(tag) => {
            let tag = tag.to_string_lossy().into_owned();
            ImageRef::new("x", &tag).map_err(|_| anyhow::anyhow!("{tag:?} is not a tag ([A-Za-z0-9_.-], at most 128)"))?;
            vec![tag]
        }
        None => crate::registry::release_tags(&release),
    };
    let sent = crate::registry::release_push(&ctx.root, &locked.app, &release, &tags, &mut |line| println!("       {line}"))?;
    println!("-----> Pushed {sent}");
    Ok(())
}

/// Pulls `remote` and says what came, with figures.
fn pull_into(ctx: &Ctx, remote: &RemoteRef, insecure: bool) -> anyhow::Result<(ImageRef, Digest)> {
    let store = Store::open(&ctx.root)?;
    let client = Client::connect(&ctx.root, &remote.server, insecure, &remote.repository, false)?;
    let (name, digest, pulled) = pull::pull(&store, &client, remote, &mut |l| println!("       {l}"))?;
    println!(
        "-----> Pulled {remote} as {name} ({digest}): {} of {} blobs fetched, {} bytes in {:.2} s",
        pulled.fetched, pulled.blobs, pulled.bytes_fetched, pulled.seconds
    );
    Ok((name, digest))
}

fn pull_image(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    pull_into(ctx, &remote(&args, 0)?, args.switch("--insecure"))?;
    Ok(())
}

fn push_to(ctx: &Ctx, local: &ImageRef, target: &RemoteRef, insecure: bool, format: push::Format) -> anyhow::Result<()> {
    let store = Store::open(&ctx.root)?;
    let digest = Digest::try_from(store.resolve(local)?.digest())?;
    let client = Client::connect(&ctx.root, &target.server, insecure, &target.repository, true)?;
    let to = push::Destination { repository: &target.repository, tags: &[target.reference()], format };
    let pushed = push::push(&ctx.root, &store, &client, &to, &digest, &mut |l| println!("       {l}"))?;
    println!(
        "-----> Pushed {local} to {target}: {} of {} bytes sent in {:.2} s ({} blobs already there, {} mounted)",
        pushed.bytes_sent, pushed.image_bytes, pushed.seconds, pushed.skipped, pushed.mounted
    );
    Ok(())
}

fn push_image(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let local = super::images::image_ref(&args, 0)?;
    let target = remote(&args, 1)?;
    if matches!(target.target, crate::registry::reference::Target::Digest(_)) {
        bail!("push to a tag, not a digest");
    }
    let format = match args.option_text("--format").as_deref() {
        None | Some("oci") => push::Format::Oci,
        Some("docker") => push::Format::Docker,
        Some(_) => return Err(args.usage_error("--format takes oci or docker").into()),
    };
    push_to(ctx, &local, &target, args.switch("--insecure"), format)
}

fn push_stack(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let stack = StackName::parse(&args.get(0).expect("checked").to_string_lossy())?;
    let base = remote(&args, 1)?;
    for (local, kind) in [(stack.run_image(), "run"), (stack.build_image(), "build")] {
        push_to(ctx, &local, &base.with_tag(&format!("{stack}-{kind}"))?, args.switch("--insecure"), push::Format::Oci)?;
    }
    Ok(())
}

/// `stacks:pull`: a stack pushed by stacks:push (`NAME:STACK-run`,
/// `NAME:STACK-build`), or with `--as NAME` any pair of a run image and
/// its `-build` image (`heroku/heroku:24` and `heroku/heroku:24-build`).
fn pull_stack(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let base = remote(&args, 0)?;
    let (stack, sources) = match args.option_text("--as") {
        Some(name) => {
            let tag = base.reference();
            (StackName::parse(&name)?, [base.clone(), base.with_tag(&format!("{tag}-build"))?])
        }
        None => {
            let stack = StackName::parse(&base.reference())?;
            (stack.clone(), [base.with_tag(&format!("{stack}-run"))?, base.with_tag(&format!("{stack}-build"))?])
        }
    };
    if matches!(base.target, crate::registry::reference::Target::Digest(_)) {
        bail!("pull a stack by its tag: its build image is the tag with -build");
    }
    let store = Store::open(&ctx.root)?;
    for (local, source) in [stack.run_image(), stack.build_image()].into_iter().zip(sources) {
        let (pulled, digest) = pull_into(ctx, &source, args.switch("--insecure"))?;
        // The stack's own names, as stacks:build would have tagged them.
        store.set_tag(&local, &store.resolve(&pulled)?)?;
        println!("-----> {local} is {digest}");
    }
    Ok(())
}

fn from_image(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let name = args.app(0)?;
    let raw = args.get(1).expect("checked").to_string_lossy().into_owned();
    // A registry reference is pulled first; anything else names a store tag.
    let local = match RemoteRef::parse(&raw) {
        Ok(remote) => pull_into(ctx, &remote, args.switch("--insecure"))?.0,
        Err(_) => raw.parse()?,
    };
    crate::deploy::release::deploy_image(&ctx.root, &name, &local, &format!("Deploy image {raw}"), &mut |line| println!("{line}"))?;
    record_source_image(ctx, &name, raw)
}

fn load_image(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let name = args.app(0)?;
    let image: ImageRef = args.text(1).unwrap_or_default().parse()?;
    if image.repository().starts_with("berth/") {
        bail!("{image} is a name berth reserves for its own images");
    }
    let cap = Settings::load(&ctx.root)?.limits.archive_bytes;
    let tmp = ctx.root.join("tmp").join(format!("load-image-{}.tar", std::process::id()));
    std::fs::create_dir_all(ctx.root.join("tmp"))?;
    let result = (|| -> anyhow::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        let copied = std::io::copy(&mut std::io::stdin().take(cap + 1), &mut file).context("cannot read the image archive from stdin")?;
        if copied > cap {
            bail!("the image archive is over {cap} bytes (limits.archive_bytes in config.toml)");
        }
        let store = Store::open(&ctx.root)?;
        let imported = {
            let _writing = store.writing()?;
            crate::image::archive::import(&store, &tmp, Some(&image), crate::image::archive::Names::NotReserved)?
        };
        if !imported.iter().any(|i| i.name == image) {
            let held: Vec<String> = imported.iter().map(|i| i.name.to_string()).collect();
            bail!("the archive holds {} but not {image}", held.join(", "));
        }
        println!("-----> Loaded {image}");
        crate::deploy::release::deploy_image(&ctx.root, &name, &image, &format!("Deploy loaded image {image}"), &mut |line| {
            println!("{line}")
        })?;
        record_source_image(ctx, &name, image.to_string())
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Dokku records where the source came from (git:report --git-source-image).
fn record_source_image(ctx: &Ctx, name: &AppName, image: String) -> anyhow::Result<()> {
    let locked = apps::lock(&ctx.root, name)?;
    let mut meta = apps::meta(&locked.app)?;
    meta.git.source_image = Some(image);
    Ok(apps::write_meta(&locked, &meta)?)
}

/// The archive limits that apply to `name` (git:set archive-max-*): the
/// app's, else the host's, else Dokku's defaults.
fn archive_limits(ctx: &Ctx, name: &AppName) -> anyhow::Result<GitProps> {
    let settings = Settings::load(&ctx.root)?;
    Ok(match apps::exists(&ctx.root, name) {
        true => apps::meta_in_effect(&apps::open(&ctx.root, name)?, &settings)?.git,
        false => settings.git.props,
    })
}

/// Unpacks a tar (or tar.gz) of source into `work`, as root, safely:
/// unpack_in refuses entries that would land outside `work` (`..`,
/// absolute paths, through a symlink); devices and fifos are no source;
/// at most `limit` bytes and `max_files` entries.
pub(super) fn unpack_source(bytes: &[u8], work: &std::path::Path, limit: u64, max_files: u64) -> anyhow::Result<()> {
    let gzipped = bytes.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read + '_> = if gzipped { Box::new(flate2::read::GzDecoder::new(bytes)) } else { Box::new(bytes) };
    let mut archive = tar::Archive::new(crate::image::limit::Capped::new(reader, limit, "the archive"));
    for (n, entry) in archive.entries().context("the archive is not a tar or tar.gz")?.enumerate() {
        let mut entry = entry.context("the archive is not a tar or tar.gz")?;
        if n as u64 >= max_files {
            bail!("the archive holds more than {max_files} entries (git:set archive-max-files)");
        }
        use tar::EntryType::{Block, Char, Fifo};
        if matches!(entry.header().entry_type(), Block | Char | Fifo) {
            continue;
        }
        let inside =
            entry.path().is_ok_and(|p| p.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir)));
        if !inside {
            bail!("the archive holds an entry with an absolute path or '..'; berth unpacks only what stays inside it");
        }
        if entry.header().entry_type() == tar::EntryType::Link {
            let target = entry.link_name().ok().flatten().map(|p| p.into_owned()).unwrap_or_default();
            if !target.components().all(|c| matches!(c, std::path::Component::Normal(_))) {
                bail!("the archive holds a hard link that points out of it");
            }
        }
        entry.unpack_in(work).context("the archive holds an entry berth will not unpack")?;
    }
    Ok(())
}

fn from_archive(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 2)?;
    let name = args.app(0)?;
    // Dokku's `git:from-archive APP --` (the parser takes `--` away) reads stdin too.
    let from = args.text(1).unwrap_or_else(|| "-".into());
    let limits = archive_limits(ctx, &name)?;
    let mut bytes = Vec::new();
    if from == "-" {
        std::io::stdin().take(limits.max_size() + 1).read_to_end(&mut bytes).context("cannot read the archive from stdin")?;
    } else if from.starts_with("https://") || from.starts_with("http://") {
        let response = ureq::get(&from).call().with_context(|| format!("cannot fetch {from}"))?;
        response.into_reader().take(limits.max_size() + 1).read_to_end(&mut bytes).with_context(|| format!("cannot fetch {from}"))?;
    } else {
        bail!("{from:?} is neither an http(s) URL nor - (stdin)");
    }
    if bytes.len() as u64 > limits.max_size() {
        bail!("the archive is over {} bytes (git:set archive-max-size)", limits.max_size());
    }
    let work = ctx.root.join("tmp").join(format!("archive-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = (|| -> anyhow::Result<()> {
        let limit = crate::state::settings::Settings::load(&ctx.root)?.limits.archive_bytes;
        unpack_source(&bytes, &work, limit, limits.max_files())?;
        // A tarball of one directory (as GitHub's) is that directory's source.
        let top: Vec<_> = std::fs::read_dir(&work)?.collect::<Result<_, _>>()?;
        let source = match &top[..] {
            [only] if only.file_type()?.is_dir() => only.path(),
            [] => bail!("the archive is empty"),
            _ => work.clone(),
        };
        println!("-----> Unpacked {} bytes of source", bytes.len());
        // Only a readable archive makes the app.
        if !apps::exists(&ctx.root, &name) {
            apps::create(&ctx.root, &name)?;
            println!("-----> Created app {name}");
        }
        let locked = apps::lock(&ctx.root, &name)?;
        Ok(crate::deploy::release::deploy_source(&ctx.root, &locked.app, &source, None, "Deploy from an archive", &mut |line| {
            println!("{line}")
        })?)
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}
