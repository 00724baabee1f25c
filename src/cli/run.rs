//! One-off processes: `run` (attached, with a terminal when the caller has
//! one), `run:detached`, and `enter` into a running container.

use anyhow::bail;

use super::{Args, Command, Ctx};
use crate::deploy::{self, processes};
use crate::runtime::ContainerId;
use crate::runtime::store::ContainerDir;
use crate::runtime::{attached, control};
use crate::state::apps;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "run",
        usage: "[--env K=V]... APP CMD...",
        about: "Run a command in a throw-away container of the current release, attached; exits with its code",
        switches: &[],
        options: &["--env", "-e"],
        run: run_attached,
    },
    Command {
        name: "run:detached",
        usage: "[--env K=V]... APP CMD...",
        about: "Run a command in a throw-away container in the background; prints its id (containers:logs ID)",
        switches: &[],
        options: &["--env", "-e"],
        run: run_detached,
    },
    Command {
        name: "run:list",
        usage: "APP [--format json]",
        about: "The app's one-off containers (run:detached, cron:run): id, state, command",
        switches: &[],
        options: &["--format"],
        run: list,
    },
    Command {
        name: "run:logs",
        usage: "APP|--container ID [-n NUM] [-q] [-t]",
        about: "Recent output of the app's run containers (-n lines each, default 100; -q without name headers; -t follows one --container)",
        switches: &["-q", "--quiet", "-t", "--tail"],
        options: &["--container", "-n", "--num"],
        run: logs,
    },
    Command {
        name: "run:stop",
        usage: "APP|--container ID",
        about: "Stop and remove the app's run containers (or one of them)",
        switches: &[],
        options: &["--container"],
        run: stop,
    },
    Command {
        name: "enter",
        usage: "APP PROCESS [CMD...]",
        about: "Run a command (default bash) inside a running container, like web.1",
        switches: &[],
        options: &[],
        run: enter,
    },
];

/// These take a command line after the app: its flags are the command's.
pub const RAW_TAIL: &[&str] = &["run", "run:detached", "enter", "storage:exec", "containers:exec"];

fn command_of(args: &Args, from: usize) -> Vec<String> {
    args.positional()[from..].iter().map(|a| a.to_string_lossy().into_owned()).collect()
}

/// The one-off container `run APP CMD...` asks for, from the current release.
fn one_off_for(ctx: &Ctx, args: &Args, terminal: bool) -> anyhow::Result<crate::runtime::ContainerConfig> {
    let name = args.app(0)?;
    let command = command_of(args, 1);
    if command.is_empty() {
        return Err(args.usage_error("missing CMD").into());
    }
    let app = apps::open(&ctx.root, &name)?;
    let release = deploy::current_release(&app)?;
    let mut env = deploy::release_env(&ctx.root, &app, &release)?;
    // `run --env K=V` (Dokku's): for this one container, over the config.
    for pair in args.option_all("--env").into_iter().chain(args.option_all("-e")) {
        let (key, value) = crate::state::config::parse_pair(pair, false)?;
        env.retain(|e| !e.starts_with(&format!("{key}=")));
        env.push(format!("{key}={}", String::from_utf8_lossy(&value)));
    }
    Ok(processes::one_off(&ctx.root, &app, &apps::meta(&app)?, &release, env, &command, terminal)?)
}

fn run_attached(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let config = one_off_for(ctx, &args, attached::at_terminal())?;
    let code = attached::run(&ctx.root, &config)?;
    std::process::exit(code);
}

fn run_detached(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let config = one_off_for(ctx, &args, false)?;
    control::create_and_start(&ctx.root, &config)?;
    println!("{}", config.id);
    Ok(())
}

fn enter(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let name = args.app(0)?;
    let Some(wanted) = args.get(1).map(|p| p.to_string_lossy().into_owned()) else {
        return Err(args.usage_error("missing PROCESS (like web.1)").into());
    };
    let app = apps::open(&ctx.root, &name)?;
    let running = processes::of_app(&ctx.root, &app);
    let Some(process) = running.iter().find(|p| p.is_up() && (format!("{}.{}", p.process, p.index) == wanted || p.id.as_str() == wanted))
    else {
        let names: Vec<String> = running.iter().filter(|p| p.is_up()).map(|p| format!("{}.{}", p.process, p.index)).collect();
        bail!("{name} has no running {wanted}; running: {}", if names.is_empty() { "none".to_owned() } else { names.join(", ") });
    };
    let mut command = command_of(&args, 2);
    if command.is_empty() {
        command = vec!["/bin/bash".into()];
    }
    let code = attached::exec(&ctx.root, &process.id, command, attached::at_terminal())?;
    std::process::exit(code);
}

fn list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = apps::open(&ctx.root, &args.app(0)?)?;
    let rows: Vec<serde_json::Value> = processes::one_offs(&ctx.root, &app)
        .iter()
        .filter_map(|id| {
            let dir = ContainerDir::new(&ctx.root, id);
            let (config, state) = (dir.config().ok()?, dir.state().ok()?);
            let status = serde_json::to_value(state.status).ok()?;
            // The command after the launcher's own words.
            let command = config.args.iter().skip_while(|a| *a != "run").skip(1).cloned().collect::<Vec<_>>().join(" ");
            Some(serde_json::json!({ "id": id.to_string(), "name": config.name, "status": status, "command": command, "created_at": config.created_at }))
        })
        .collect();
    if super::wants_json(&args)? {
        return super::print_json(&rows);
    }
    println!("=====> {} run containers", app.name);
    println!("{:<44} {:<10} COMMAND", "ID", "STATUS");
    for row in &rows {
        println!(
            "{:<44} {:<10} {}",
            row["id"].as_str().unwrap_or(""),
            row["status"].as_str().unwrap_or(""),
            row["command"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// The run containers `run:logs`/`run:stop` act on: the app's, or the one
/// `--container` names (by id or name) among every app's.
fn run_containers(ctx: &Ctx, args: &Args) -> anyhow::Result<Vec<(ContainerId, String)>> {
    let named = |id: &ContainerId| ContainerDir::new(&ctx.root, id).config().map(|c| c.name).unwrap_or_default();
    let Some(wanted) = args.option_text("--container") else {
        args.expect(1, 1)?;
        let app = apps::open(&ctx.root, &args.app(0)?)?;
        return Ok(processes::one_offs(&ctx.root, &app)
            .into_iter()
            .map(|id| {
                let name = named(&id);
                (id, name)
            })
            .collect());
    };
    args.expect(0, 0)?;
    for name in apps::list(&ctx.root)? {
        let app = apps::open(&ctx.root, &name)?;
        if let Some(id) = processes::one_offs(&ctx.root, &app).into_iter().find(|id| id.as_str() == wanted || named(id) == wanted) {
            let name = named(&id);
            return Ok(vec![(id, name)]);
        }
    }
    bail!("no run container {wanted:?}; run:list APP lists them")
}

fn logs(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let lines = match args.option_text("-n").or_else(|| args.option_text("--num")) {
        None => 100,
        Some(n) => n.parse::<usize>().map_err(|_| args.usage_error(&format!("-n takes a number of lines, not {n:?}")))?,
    };
    let follow = args.switch("-t") || args.switch("--tail");
    let quiet = args.switch("-q") || args.switch("--quiet");
    let containers = run_containers(ctx, &args)?;
    if follow && containers.len() != 1 {
        bail!("-t follows one run container: name it with --container");
    }
    for (id, name) in containers {
        if !quiet {
            println!("=====> {name}");
        }
        super::containers::print_log(ctx, &id, Some(lines), follow)?;
    }
    Ok(())
}

fn stop(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    for (id, name) in run_containers(ctx, &args)? {
        control::stop(&ctx.root, &id)?;
        control::remove(&ctx.root, &id, true)?;
        println!("{name}");
    }
    Ok(())
}
