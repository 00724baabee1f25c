//! `containers:*`: run images as containers directly. Operators and tests
//! use these; app processes will be containers started the same way.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use super::images::image_ref;
use super::{Args, Command, Ctx, UsageError, print_json, wants_json};
use crate::image::Store;
use crate::runtime::control::{self, current_state};
use crate::runtime::store::{self as containers, ContainerDir};
use crate::runtime::{ContainerConfig, ContainerId, Limits, NetworkMode, RestartPolicy, cgroup, spec};

const CREATE_OPTIONS: &[&str] = &[
    "--id",
    "--name",
    "--network",
    "--memory",
    "--cpus",
    "--pids",
    "--restart",
    "--stop-timeout",
    "--env",
    "--label",
    "--user",
    "--workdir",
    "--volume",
    "--env-file",
];
const CREATE_USAGE: &str = "IMAGE [--id ID] [--name NAME] [--network bridge|host|none] [--memory 64m] [--cpus 0.5] [--pids N] [--restart no|on-failure[:N]|always] [--stop-timeout SECS] [--env K=V]... [--env-file FILE] [--label K=V]... [--user UID:GID] [--workdir DIR] [--volume HOST:CONTAINER[:ro]]... [--isolated] [-- CMD ARGS...]";
/// The largest `--env-file` read: environment, not data.
const ENV_FILE_CAP: u64 = 64 * 1024;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "containers:create",
        usage: CREATE_USAGE,
        about: "Create a container from an image (not started)",
        switches: &["--isolated"],
        options: CREATE_OPTIONS,
        run: create,
    },
    Command {
        name: "containers:run",
        usage: CREATE_USAGE,
        about: "Create and start a container; prints its id",
        switches: &["--isolated"],
        options: CREATE_OPTIONS,
        run,
    },
    Command {
        name: "containers:start",
        usage: "ID",
        about: "Start a container under its own monitor",
        switches: &[],
        options: &[],
        run: start,
    },
    Command {
        name: "containers:stop",
        usage: "ID",
        about: "Stop: SIGTERM, the stop timeout, then SIGKILL",
        switches: &[],
        options: &[],
        run: stop,
    },
    Command {
        name: "containers:kill",
        usage: "ID [SIGNAL]",
        about: "Send a signal to the container's process (default SIGKILL)",
        switches: &[],
        options: &[],
        run: kill,
    },
    Command {
        name: "containers:rm",
        usage: "ID [--force]",
        about: "Remove a container and everything it held",
        switches: &["--force"],
        options: &[],
        run: rm,
    },
    Command {
        name: "containers:list",
        usage: "[--format json]",
        about: "List containers with state, pid, address, restarts and uptime",
        switches: &[],
        options: &["--format"],
        run: list,
    },
    Command {
        name: "containers:logs",
        usage: "ID [-f|--follow]",
        about: "Print a container's log",
        switches: &["-f", "--follow"],
        options: &[],
        run: logs,
    },
    Command {
        name: "containers:exec",
        usage: "ID CMD [ARGS...]",
        about: "Run a command inside a running container, attached; exits with its code",
        switches: &[],
        options: &[],
        run: exec,
    },
    Command {
        name: "containers:inspect",
        usage: "ID [--format json]",
        about: "Show a container's image, status, address and allow list",
        switches: &[],
        options: &["--format"],
        run: inspect,
    },
    Command {
        name: "containers:allow",
        usage: "ID APP",
        about: "Let APP's containers connect to an isolated container",
        switches: &[],
        options: &[],
        run: allow,
    },
    Command {
        name: "containers:deny",
        usage: "ID APP",
        about: "Take APP off an isolated container's allow list",
        switches: &[],
        options: &[],
        run: deny,
    },
];

fn container_id(args: &Args, i: usize) -> anyhow::Result<ContainerId> {
    let raw = args.get(i).ok_or_else(|| args.usage_error("missing ID"))?;
    Ok(ContainerId::parse(&raw.to_string_lossy())?)
}

fn config_from(ctx: &Ctx, args: &Args) -> anyhow::Result<ContainerConfig> {
    let image_name = image_ref(args, 0)?;
    let store = Store::open(&ctx.root)?;
    let image = store.image(&image_name)?;
    let defaults = image.config.config().clone().unwrap_or_default();
    let id = match args.option_text("--id") {
        Some(id) => ContainerId::parse(&id)?,
        None => ContainerId::random(),
    };
    let usage = |why: String| -> anyhow::Error { UsageError(why).into() };
    let mut env: Vec<String> = defaults.env().clone().unwrap_or_default();
    for pair in env_file(args)?.into_iter().chain(env_options(args)?) {
        let key = pair.split_once('=').map(|(k, _)| k.to_owned());
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != key.as_deref());
        env.push(pair);
    }
    let mut labels = BTreeMap::new();
    for pair in args.option_all("--label") {
        let pair = pair.to_string_lossy();
        let (k, v) = pair.split_once('=').ok_or_else(|| usage(format!("--label {pair:?} is not KEY=VALUE")))?;
        labels.insert(k.to_owned(), v.to_owned());
    }
    // Never root by default: the image's user, else the stack's unprivileged app user.
    let user = args.option_text("--user").or_else(|| defaults.user().clone()).unwrap_or_else(|| "1000:1000".into());
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u.parse().ok(), g.parse().ok()),
        None => (user.parse().ok(), user.parse().ok()),
    };
    let (Some(uid), Some(gid)) = (uid, gid) else { bail!("user {user:?} is not numeric UID[:GID]") };
    let command: Vec<String> = args.positional()[1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let command = if command.is_empty() { defaults.cmd().clone().unwrap_or_default() } else { command };
    if command.is_empty() {
        return Err(usage("no command given and the image has none".into()));
    }
    let limits = limits_from(args)?;
    Ok(ContainerConfig {
        name: args.option_text("--name").unwrap_or_else(|| id.to_string()),
        id,
        image: image_name.to_string(),
        image_digest: image.manifest_digest.to_string(),
        args: command,
        env,
        cwd: args.option_text("--workdir").or_else(|| defaults.working_dir().clone()).unwrap_or_else(|| "/".into()),
        uid,
        gid,
        network: args
            .option_text("--network")
            .map(|n| n.parse::<NetworkMode>().map_err(|e| usage(e.to_string())))
            .transpose()?
            .unwrap_or(NetworkMode::Bridge),
        limits,
        restart: args
            .option_text("--restart")
            .map(|r| r.parse::<RestartPolicy>().map_err(|e| usage(e.to_string())))
            .transpose()?
            .unwrap_or_default(),
        stop_timeout_secs: args
            .option_text("--stop-timeout")
            .map(|s| {
                s.parse::<u64>().ok().filter(|s| *s <= 3600).ok_or_else(|| usage(format!("--stop-timeout {s:?} is not 0 to 3600 seconds")))
            })
            .transpose()?
            .unwrap_or(30),
        labels,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        mounts: volumes(args)?,
        readonly_root: false,
        terminal: false,
        log_max_bytes: None,
        isolated: args.switch("--isolated"),
    })
}

/// `--env K=V`, each key checked.
fn env_options(args: &Args) -> anyhow::Result<Vec<String>> {
    let mut pairs = Vec::new();
    for pair in args.option_all("--env") {
        let pair = pair.to_str().context("--env values must be UTF-8")?;
        let (key, _) = pair.split_once('=').ok_or_else(|| UsageError(format!("--env {pair:?} is not KEY=VALUE")))?;
        crate::state::config::ConfigKey::parse(std::ffi::OsStr::new(key))?;
        pairs.push(pair.to_owned());
    }
    Ok(pairs)
}

/// `--env-file FILE`: KEY=VALUE lines, blank lines and `#` comments
/// skipped. Secrets come this way so they never sit in argv; a bad line is
/// named by number, never shown.
fn env_file(args: &Args) -> anyhow::Result<Vec<String>> {
    let Some(path) = args.option_all("--env-file").last().map(std::path::PathBuf::from) else { return Ok(Vec::new()) };
    let bytes = crate::state::read_capped(&path, ENV_FILE_CAP)?;
    let text = String::from_utf8(bytes).map_err(|_| UsageError(format!("--env-file {} is not UTF-8", path.display())))?;
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let key = line.split_once('=').map(|(k, _)| k);
        if key.is_none_or(|k| crate::state::config::ConfigKey::parse(std::ffi::OsStr::new(k)).is_err()) {
            bail!(UsageError(format!("line {} of --env-file {} is not KEY=VALUE", n + 1, path.display())));
        }
        pairs.push(line.to_owned());
    }
    Ok(pairs)
}

/// `--volume HOST:CONTAINER[:ro]`; the host path must exist.
fn volumes(args: &Args) -> anyhow::Result<Vec<crate::runtime::store::BindMount>> {
    let mut mounts = Vec::new();
    for spec in args.option_all("--volume") {
        let spec = spec.to_str().context("--volume must be UTF-8")?;
        let mount = crate::state::storage::parse(spec)?;
        if std::fs::symlink_metadata(&mount.source).is_err() {
            bail!(UsageError(format!("--volume {spec:?}: {} does not exist", mount.source.display())));
        }
        mounts.push(mount);
    }
    Ok(mounts)
}

/// `--memory`, `--cpus` and `--pids`, checked.
fn limits_from(args: &Args) -> anyhow::Result<Limits> {
    let usage = |why: String| -> anyhow::Error { UsageError(why).into() };
    Ok(Limits {
        memory_bytes: args
            .option_text("--memory")
            .map(|m| crate::runtime::store::parse_size(&m).ok_or_else(|| usage(format!("--memory {m:?} is not a size like 64m"))))
            .transpose()?,
        cpus: args
            .option_text("--cpus")
            .map(|c| c.parse::<f64>().ok().filter(|c| *c > 0.0).ok_or_else(|| usage(format!("--cpus {c:?} is not a positive number"))))
            .transpose()?,
        pids: args
            .option_text("--pids")
            .map(|p| p.parse::<i64>().ok().filter(|p| *p > 0).ok_or_else(|| usage(format!("--pids {p:?} is not a positive number"))))
            .transpose()?,
        ..Limits::default()
    })
}

fn create(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let config = config_from(ctx, &args)?;
    control::create(&ctx.root, &config)?;
    println!("{}", config.id);
    Ok(())
}

fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let config = config_from(ctx, &args)?;
    control::create_and_start(&ctx.root, &config)?;
    println!("{}", config.id);
    Ok(())
}

fn start(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let id = container_id(&args, 0)?;
    let pid = control::start(&ctx.root, &id)?;
    println!("-----> Started {id} (pid {pid})");
    Ok(())
}

fn stop(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let id = container_id(&args, 0)?;
    control::stop(&ctx.root, &id)?;
    println!("-----> Stopped {id}");
    Ok(())
}

fn kill(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 2)?;
    let id = container_id(&args, 0)?;
    let signal = args.get(1).map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "SIGKILL".into());
    control::signal(&ctx.root, &id, &signal)?;
    Ok(())
}

fn rm(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let id = container_id(&args, 0)?;
    control::remove(&ctx.root, &id, args.switch("--force"))?;
    println!("-----> Removed {id}");
    Ok(())
}

#[derive(Serialize)]
struct Row {
    id: String,
    name: String,
    image: String,
    status: String,
    pid: Option<i32>,
    address: Option<String>,
    restarts: u32,
    last_exit_code: Option<i32>,
    oom_kills: u32,
    uptime_secs: Option<i64>,
    memory_bytes: Option<u64>,
    labels: BTreeMap<String, String>,
    error: Option<String>,
}

fn list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let mut rows = Vec::new();
    for id in containers::list(&ctx.root) {
        let paths = ContainerDir::new(&ctx.root, &id);
        let (Ok(config), Ok(state)) = (paths.config(), current_state(&paths)) else { continue };
        let uptime = state
            .started_at
            .as_deref()
            .filter(|_| state.pid.is_some())
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds());
        rows.push(Row {
            id: id.to_string(),
            name: config.name.clone(),
            image: config.image.clone(),
            status: serde_json::to_value(state.status)?.as_str().unwrap_or("?").to_owned(),
            pid: state.pid,
            address: state.address.clone(),
            restarts: state.restarts,
            last_exit_code: state.last_exit_code,
            oom_kills: state.oom_kills,
            uptime_secs: uptime,
            memory_bytes: state.pid.and_then(|_| cgroup::memory_bytes(&spec::cgroup_path(&paths))),
            labels: config.labels.clone(),
            error: state.error.clone(),
        });
    }
    if wants_json(&args)? {
        return print_json(&rows);
    }
    println!("{:<14} {:<12} {:<10} {:>8} {:<15} {:>8} {:>4} {:>8}", "ID", "NAME", "STATUS", "PID", "ADDRESS", "RESTARTS", "OOM", "UPTIME");
    for r in rows {
        let pid = r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        let uptime = r.uptime_secs.map(|s| format!("{s}s")).unwrap_or_else(|| "-".into());
        println!(
            "{:<14} {:<12} {:<10} {:>8} {:<15} {:>8} {:>4} {:>8}",
            r.id,
            r.name,
            r.status,
            pid,
            r.address.as_deref().unwrap_or("-"),
            r.restarts,
            r.oom_kills,
            uptime
        );
    }
    Ok(())
}

fn logs(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let id = container_id(&args, 0)?;
    print_log(ctx, &id, None, args.switch("-f") || args.switch("--follow"))
}

/// Prints a container's log (the last `lines` lines, or all of it) and,
/// with `follow`, what is appended until the container ends for good.
pub(super) fn print_log(ctx: &Ctx, id: &ContainerId, lines: Option<usize>, follow: bool) -> anyhow::Result<()> {
    let paths = ContainerDir::open(&ctx.root, id)?;
    let path = paths.log_file();
    let mut file = std::fs::File::open(&path).with_context(|| format!("container {id} has no log yet"))?;
    let mut out = std::io::stdout();
    match lines {
        None => {
            std::io::copy(&mut file, &mut out)?;
        }
        Some(n) => {
            // The last lines lie in the last few MiB however large the log grew.
            const TAIL_BYTES: u64 = 8 << 20;
            let len = file.metadata()?.len();
            file.seek(std::io::SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
            let mut all = Vec::new();
            (&mut file).take(TAIL_BYTES).read_to_end(&mut all)?;
            let body = all.strip_suffix(b"\n").unwrap_or(&all);
            let start = body.iter().enumerate().rev().filter(|(_, b)| **b == b'\n').nth(n.saturating_sub(1)).map_or(0, |(i, _)| i + 1);
            out.write_all(&all[if n == 0 { all.len() } else { start }..])?;
        }
    }
    if !follow {
        return Ok(());
    }
    // Follow: print what is appended until the container ends for good.
    let mut buf = Vec::new();
    loop {
        buf.clear();
        file.read_to_end(&mut buf)?;
        out.write_all(&buf)?;
        out.flush()?;
        if buf.is_empty() {
            if current_state(&paths)?.shim_pid.is_none() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // A rotation replaced the file: start over on the new one.
        if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) < file.stream_position()? {
            file = std::fs::File::open(&path)?;
        }
    }
}

fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let id = container_id(&args, 0)?;
    let command: Vec<String> = args.positional()[1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
    if command.is_empty() {
        return Err(args.usage_error("missing CMD").into());
    }
    let code = crate::runtime::attached::exec(&ctx.root, &id, command, crate::runtime::attached::at_terminal())?;
    std::process::exit(code);
}

#[derive(Serialize)]
struct Inspection {
    id: String,
    name: String,
    image: String,
    image_digest: String,
    status: String,
    pid: Option<i32>,
    /// Kept while the container exists, running or not.
    address: Option<String>,
    network: String,
    restart: String,
    isolated: bool,
    allowed: std::collections::BTreeSet<String>,
    labels: BTreeMap<String, String>,
}

fn inspect(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let id = container_id(&args, 0)?;
    let paths = ContainerDir::open(&ctx.root, &id)?;
    let (config, state) = (paths.config()?, current_state(&paths)?);
    let address = crate::runtime::network::addresses(&ctx.root)?.get(id.as_str()).map(|a| a.to_string());
    let seen = Inspection {
        id: id.to_string(),
        name: config.name.clone(),
        image: config.image.clone(),
        image_digest: config.image_digest.clone(),
        status: serde_json::to_value(state.status)?.as_str().unwrap_or("?").to_owned(),
        pid: state.pid,
        address,
        network: serde_json::to_value(config.network)?.as_str().unwrap_or("?").to_owned(),
        restart: config.restart.to_string(),
        isolated: config.isolated,
        allowed: paths.allowed()?,
        labels: config.labels.clone(),
    };
    if wants_json(&args)? {
        return print_json(&seen);
    }
    let allowed: Vec<&str> = seen.allowed.iter().map(String::as_str).collect();
    for (field, value) in [
        ("id", seen.id.clone()),
        ("name", seen.name.clone()),
        ("image", seen.image.clone()),
        ("status", seen.status.clone()),
        ("pid", seen.pid.map(|p| p.to_string()).unwrap_or_default()),
        ("address", seen.address.clone().unwrap_or_default()),
        ("network", seen.network.clone()),
        ("restart", seen.restart.clone()),
        ("isolated", seen.isolated.to_string()),
        ("allowed", allowed.join(" ")),
    ] {
        println!("{:<10} {value}", format!("{field}:"));
    }
    Ok(())
}

fn allow(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    change_allowed(ctx, &args, true)
}

fn deny(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    change_allowed(ctx, &args, false)
}

/// Adds the app to (or takes it off) the container's allow list, then
/// brings the firewall in line before saying so.
fn change_allowed(ctx: &Ctx, args: &Args, admit: bool) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let id = container_id(args, 0)?;
    let app = args.app(1)?;
    let paths = ContainerDir::open(&ctx.root, &id)?;
    if !paths.config()?.isolated {
        bail!("container {id} is not isolated: every container on the bridge can reach it");
    }
    let _lock = crate::state::lock::FileLock::acquire(&paths.dir.join("allowed.lock"))?;
    let mut allowed = paths.allowed()?;
    let changed = if admit { allowed.insert(app.to_string()) } else { allowed.remove(app.as_str()) };
    paths.write_allowed(&allowed)?;
    crate::runtime::firewall::sync(&ctx.root)?;
    let verb = match (admit, changed) {
        (true, true) => "may now connect to",
        (true, false) => "could already connect to",
        (false, true) => "may no longer connect to",
        (false, false) => "was not allowed to connect to",
    };
    println!("-----> {app} {verb} {id}");
    Ok(())
}
