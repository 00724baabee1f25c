//! `storage:*`: named storage entries and host directories mounted into
//! an app's containers.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::fields::{Report, report_apps};
use super::{Args, Command, Ctx, UsageError, print_json, wants_json};
use crate::app::AppName;
use crate::model::container::BindMount;
use crate::state::settings::Settings;
use crate::state::storage_entries::{self as entries, Chown, Entry, EntryName, Reclaim};
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
        name: "storage:create",
        usage: "NAME [PATH] [--chown app|root|false|UID] [--mode OCTAL] [--reclaim-policy Retain|Delete] [--force]",
        about: "Register a named storage entry (default directory $BERTH_ROOT/storage/NAME); run again, it applies its settings",
        switches: &["--force"],
        options: &["--chown", "--mode", "--reclaim-policy"],
        run: create,
    },
    Command {
        name: "storage:info",
        usage: "NAME [--format json]",
        about: "One storage entry: its directory, owner, mode, reclaim policy and the apps mounting it",
        switches: &[],
        options: &["--format"],
        run: info,
    },
    Command {
        name: "storage:list-entries",
        usage: "[--format json]",
        about: "Every registered storage entry",
        switches: &[],
        options: &["--format"],
        run: list_entries,
    },
    Command {
        name: "storage:set",
        usage: "NAME chown|mode|reclaim-policy [VALUE]",
        about: "Change an entry's property (no VALUE: unset); owner and mode apply to the directory at once",
        switches: &[],
        options: &[],
        run: set,
    },
    Command {
        name: "storage:destroy",
        usage: "NAME [--force] [--destroy-host-dir]",
        about: "Remove an entry no app mounts; --destroy-host-dir (or reclaim-policy Delete) removes its directory too",
        switches: &["--force", "--destroy-host-dir"],
        options: &[],
        run: destroy,
    },
    Command {
        name: "storage:mount",
        usage: "APP NAME --container-dir PATH [--volume-readonly] | APP HOST:CONTAINER[:ro] [--force]",
        about: "Mount a storage entry (or a host path) into the app's containers from the next start (--force: outside the allowed roots)",
        switches: &["--force", "--volume-readonly"],
        options: &["--container-dir"],
        run: mount,
    },
    Command {
        name: "storage:unmount",
        usage: "APP NAME [--container-dir PATH] | APP HOST:CONTAINER[:ro]",
        about: "Remove a mount from the next start",
        switches: &[],
        options: &["--container-dir"],
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
    Command {
        name: "storage:exec",
        usage: "NAME [-- CMD...]",
        about: "Run CMD (default: a shell) as root in a throw-away stack container with the entry at /storage; exits with its code",
        switches: &[],
        options: &[],
        run: exec,
    },
    Command {
        name: "storage:report",
        usage: "[APP] [--format json] [--FIELD]",
        about: "The app's mounts as Dokku reports them: deploy and run mounts, one set of fields per attachment",
        switches: &[],
        options: &["--format"],
        run: report,
    },
];

fn entry_arg(args: &Args, i: usize) -> anyhow::Result<EntryName> {
    Ok(EntryName::parse(&args.text(i).unwrap_or_default())?)
}

fn ensure_directory(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let dir = storage::ensure_directory(&ctx.root, &args.get(0).expect("checked").to_string_lossy())?;
    println!("-----> {} is ready; mount it with storage:mount APP {}:/PATH", dir.display(), dir.display());
    Ok(())
}

/// The properties `storage:create` and `storage:set` share, applied to `entry`.
fn apply_property(root: &std::path::Path, entry: &mut Entry, key: &str, value: Option<&str>) -> anyhow::Result<()> {
    match key {
        "chown" => {
            entries::check_managed(root, entry, "chown")?;
            entry.chown = value.map(Chown::parse).transpose()?.unwrap_or(None);
        }
        "mode" => {
            entries::check_managed(root, entry, "mode")?;
            entry.mode = value.map(entries::parse_mode).transpose()?;
        }
        "reclaim-policy" => entry.reclaim_policy = value.map(Reclaim::parse).transpose()?.unwrap_or_default(),
        "namespace" | "size" | "access-mode" | "storage-class-name" => {
            return Err(UsageError(format!("{key} is a k3s property; berth runs entries as host directories")).into());
        }
        other => return Err(UsageError(format!("unknown storage property {other:?}: use chown, mode or reclaim-policy")).into()),
    }
    Ok(())
}

fn create(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 2)?;
    let name = entry_arg(&args, 0)?;
    let path = args.text(1).map(PathBuf::from);
    if let Some(path) = &path {
        let settings = Settings::load(&ctx.root)?;
        storage::check_host(&ctx.root, path, &settings.storage.allowed_roots, args.switch("--force"))?;
    }
    let mut entry = match entries::load(&ctx.root, &name) {
        Ok(existing) if path.as_ref().is_some_and(|p| *p != existing.host_path) => {
            bail!("storage entry {name} already exists at {}", existing.host_path.display())
        }
        Ok(existing) => existing,
        Err(entries::EntryError::NotFound(_)) => Entry::new(&ctx.root, name.clone(), path),
        Err(e) => return Err(e.into()),
    };
    for key in ["chown", "mode", "reclaim-policy"] {
        if let Some(value) = args.option_text(&format!("--{key}")) {
            apply_property(&ctx.root, &mut entry, key, Some(&value))?;
        }
    }
    entries::converge(&ctx.root, &entry, None)?;
    entries::save(&ctx.root, &entry)?;
    println!("-----> Storage entry {name} at {}", entry.host_path.display());
    Ok(())
}

/// Every app's mounts, read once for all the entries a command looks at.
fn all_mounts(ctx: &Ctx) -> anyhow::Result<Vec<(AppName, Vec<BindMount>)>> {
    let mut mounts = Vec::new();
    for name in apps::list(&ctx.root)? {
        let storage = apps::meta(&apps::open(&ctx.root, &name)?)?.storage;
        mounts.push((name, storage));
    }
    Ok(mounts)
}

/// The apps whose mounts use `entry`'s directory.
fn mounted_by(mounts: &[(AppName, Vec<BindMount>)], entry: &Entry) -> Vec<AppName> {
    mounts.iter().filter(|(_, m)| m.iter().any(|m| m.source == entry.host_path)).map(|(name, _)| name.clone()).collect()
}

fn entry_json(mounts: &[(AppName, Vec<BindMount>)], entry: &Entry) -> serde_json::Value {
    let apps: Vec<String> = mounted_by(mounts, entry).iter().map(ToString::to_string).collect();
    serde_json::json!({
        "name": entry.name.as_str(),
        "scheduler": "berth",
        "host_path": entry.host_path,
        "chown": entry.chown_label(),
        "mode": entry.mode_label(),
        "reclaim_policy": format!("{:?}", entry.reclaim_policy),
        "created_at": entry.created_at,
        "apps": apps,
    })
}

/// A container of the default stack's run image, no network, read-only
/// but for the entry at /storage, attached to the caller (a terminal if
/// it has one).
fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    use crate::runtime::{ContainerConfig, ContainerId, NetworkMode, attached};
    let entry = entries::load(&ctx.root, &entry_arg(&args, 0)?)?;
    let mut command: Vec<String> = args.positional()[1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
    if command.is_empty() {
        command = vec!["/bin/bash".into()];
    }
    let stack = crate::stack::StackName::parse(crate::build::DEFAULT_STACK)?;
    let image = stack.run_image();
    let digest = crate::image::Store::open(&ctx.root)?.image(&image)?.manifest_digest.to_string();
    let terminal = attached::at_terminal();
    let mut env = vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(), "HOME=/root".to_owned()];
    if terminal {
        env.push("TERM=xterm".into());
    }
    let suffix = &ContainerId::random().to_string()[..6];
    let config = ContainerConfig {
        id: ContainerId::parse(&format!("storage.{}.{suffix}", entry.name))?,
        name: "storage-exec".into(),
        image: image.to_string(),
        image_digest: digest,
        args: command,
        env,
        cwd: "/storage".into(),
        uid: 0,
        gid: 0,
        network: NetworkMode::None,
        limits: Default::default(),
        restart: crate::runtime::RestartPolicy::No,
        stop_timeout_secs: 5,
        labels: Default::default(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        mounts: vec![BindMount { source: entry.host_path.clone(), destination: "/storage".into(), readonly: false }],
        readonly_root: true,
        terminal,
        log_max_bytes: None,
        isolated: false,
    };
    let code = attached::run(&ctx.root, &config)?;
    std::process::exit(code);
}

fn info(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let entry = entries::load(&ctx.root, &entry_arg(&args, 0)?)?;
    let json = entry_json(&all_mounts(ctx)?, &entry);
    if wants_json(&args)? {
        return print_json(&json);
    }
    println!("-----> Storage entry {}", entry.name);
    println!("       Scheduler:        berth");
    println!("       Host path:        {}", entry.host_path.display());
    println!("       Chown:            {}", entry.chown_label());
    println!("       Mode:             {}", entry.mode_label());
    println!("       Reclaim policy:   {:?}", entry.reclaim_policy);
    println!(
        "       Apps:             {}",
        json["apps"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(" ")).unwrap_or_default()
    );
    Ok(())
}

fn list_entries(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let all = entries::list(&ctx.root)?;
    if wants_json(&args)? {
        let mounts = all_mounts(ctx)?;
        let rows: Vec<serde_json::Value> = all.iter().map(|e| entry_json(&mounts, e)).collect();
        return print_json(&rows);
    }
    println!("=====> Storage entries");
    for entry in all {
        println!("       {:<24} {}", entry.name.as_str(), entry.host_path.display());
    }
    Ok(())
}

fn set(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 3)?;
    let mut entry = entries::load(&ctx.root, &entry_arg(&args, 0)?)?;
    let key = args.text(1).unwrap_or_default();
    let value = args.text(2).filter(|v| !v.is_empty());
    apply_property(&ctx.root, &mut entry, &key, value.as_deref())?;
    entries::converge(&ctx.root, &entry, None)?;
    entries::save(&ctx.root, &entry)?;
    println!("-----> Storage entry {}: {key} {}", entry.name, value.as_deref().unwrap_or("unset"));
    Ok(())
}

fn destroy(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let entry = entries::load(&ctx.root, &entry_arg(&args, 0)?)?;
    let users = mounted_by(&all_mounts(ctx)?, &entry);
    if !users.is_empty() {
        let names: Vec<String> = users.iter().map(ToString::to_string).collect();
        bail!("storage entry {} is mounted by {}; storage:unmount it first", entry.name, names.join(", "));
    }
    let remove_dir = args.switch("--destroy-host-dir") || entry.reclaim_policy == Reclaim::Delete;
    if remove_dir {
        entries::check_managed(&ctx.root, &entry, "removing the directory")?;
        eprintln!(
            " !     Storage entry {} is backed by {}, which will be removed along with its contents.",
            entry.name,
            entry.host_path.display()
        );
    }
    super::confirm_destroy(&args, "storage entry", entry.name.as_str())?;
    if remove_dir {
        entries::remove_directory(&ctx.root, &entry)?;
    }
    entries::remove(&ctx.root, &entry.name)?;
    println!("-----> Storage entry {} destroyed", entry.name);
    Ok(())
}

/// The mount `storage:mount`/`unmount` name: an entry with `--container-dir`,
/// or Dokku's older `HOST:CONTAINER[:ro]`.
fn wanted_mount(ctx: &Ctx, args: &Args) -> anyhow::Result<(BindMount, Option<Entry>)> {
    let spec = args.text(1).unwrap_or_default();
    if spec.contains(':') {
        return Ok((storage::parse(&spec)?, None));
    }
    let entry = entries::load(&ctx.root, &EntryName::parse(&spec)?)?;
    let dir = args.option_text("--container-dir").context("a storage entry is mounted with --container-dir PATH")?;
    Ok((storage::attach(entry.host_path.clone(), &dir, args.switch("--volume-readonly"))?, Some(entry)))
}

fn mount(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let (wanted, entry) = wanted_mount(ctx, &args)?;
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let mut meta = apps::meta(&locked.app)?;
    if entry.is_some() {
        // Dokku: mounting an entry again at the same path updates it in place.
        meta.storage.retain(|m| !(m.source == wanted.source && m.destination == wanted.destination));
    } else {
        let settings = Settings::load(&ctx.root)?;
        storage::check_host(&ctx.root, &wanted.source, &settings.storage.allowed_roots, args.switch("--force"))?;
    }
    if meta.storage.iter().any(|m| m.destination == wanted.destination) {
        bail!("{} already has a mount at {}", locked.app.name, wanted.destination);
    }
    // Checked: now the directory may become the app's.
    let uid = apps::uid(&ctx.root, &locked.app)?;
    match &entry {
        Some(entry) => entries::converge(&ctx.root, entry, Some(uid))?,
        None => storage::hand_to_app(&ctx.root, &wanted.source, uid)?,
    }
    meta.storage.push(wanted.clone());
    apps::write_meta(&locked, &meta)?;
    println!("-----> {} mounts {} at {} from the next start (ps:restart)", locked.app.name, wanted.source.display(), wanted.destination);
    Ok(())
}

fn unmount(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let spec = args.text(1).unwrap_or_default();
    let (source, destination) = if spec.contains(':') {
        let m = storage::parse(&spec)?;
        (m.source, Some(m.destination))
    } else {
        (entries::load(&ctx.root, &EntryName::parse(&spec)?)?.host_path, args.option_text("--container-dir"))
    };
    let locked = apps::lock(&ctx.root, &args.app(0)?)?;
    let mut meta = apps::meta(&locked.app)?;
    let before = meta.storage.len();
    meta.storage.retain(|m| !(m.source == source && destination.as_ref().is_none_or(|d| *d == m.destination)));
    if meta.storage.len() == before {
        bail!("{} has no mount of {spec}", locked.app.name);
    }
    apps::write_meta(&locked, &meta)?;
    println!("-----> {} no longer mounts {spec} from the next start", locked.app.name);
    Ok(())
}

/// The entry whose directory a mount uses, by name ("" for a plain host path).
fn entry_of(all: &[Entry], mount: &BindMount) -> String {
    all.iter().find(|e| e.host_path == mount.source).map(|e| e.name.to_string()).unwrap_or_default()
}

fn list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let mounts = apps::meta(&app)?.storage;
    let all = entries::list(&ctx.root)?;
    if wants_json(&args)? {
        let rows: Vec<serde_json::Value> = mounts
            .iter()
            .map(|m| {
                let mut row = serde_json::json!({"entry_name": entry_of(&all, m), "host_path": m.source, "container_path": m.destination});
                if m.readonly {
                    row["readonly"] = true.into();
                }
                row
            })
            .collect();
        return print_json(&rows);
    }
    println!("-----> {} volume bind-mounts:", app.name);
    for m in mounts {
        println!("       {}", volume(&m));
    }
    Ok(())
}

/// `HOST:CONTAINER[:ro]`, as Docker's `-v` takes it.
fn volume(mount: &BindMount) -> String {
    format!("{}:{}{}", mount.source.display(), mount.destination, if mount.readonly { ":ro" } else { "" })
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let all = entries::list(&ctx.root)?;
    for name in report_apps(ctx, &args)? {
        let mounts = apps::meta(&apps::open(&ctx.root, &name)?)?.storage;
        let flags: Vec<String> = mounts.iter().map(|m| format!("-v {}", volume(m))).collect();
        let mut report = Report::new("storage", &name)
            .field("storage-build-mounts", "")
            .field("storage-deploy-mounts", flags.join(" "))
            .field("storage-run-mounts", flags.join(" "));
        for (i, m) in mounts.iter().enumerate() {
            let fields = [
                ("container-path", m.destination.clone()),
                ("entry-name", entry_of(&all, m)),
                ("host-path", m.source.display().to_string()),
                ("phases", "deploy,run".into()),
                ("process-type", "_default_".into()),
                ("readonly", m.readonly.to_string()),
                ("subpath", String::new()),
                ("volume-chown", String::new()),
                ("volume-options", String::new()),
            ];
            for (field, value) in fields {
                report = report.extra(&format!("attachment.{}.{field}", i + 1), value.clone().into());
                report = report.field(&format!("storage-attachment.{}.{field}", i + 1), value);
            }
        }
        report.print(&args)?;
    }
    Ok(())
}
