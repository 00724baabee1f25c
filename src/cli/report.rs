//! `report [APP]`: the host at a glance (versions, stacks, store use, apps,
//! running containers, nginx), or one app's deploy state.

use serde::Serialize;

use super::{Args, Command, Ctx, human_bytes, print_json, wants_json};
use crate::deploy::{self, formation, processes, proxy};
use crate::image::Store;
use crate::image::maintenance;
use crate::state::settings::Settings;
use crate::state::{apps, releases};

pub const COMMANDS: &[Command] = &[Command {
    name: "report",
    usage: "[APP] [--format json]",
    about: "The host (versions, stacks, store, apps, containers, nginx) or one app's deploy state",
    switches: &[],
    options: &["--format"],
    run: report,
}];

#[derive(Serialize)]
struct AppRow {
    app: String,
    state: &'static str,
    release: Option<u64>,
    url: Option<String>,
    formation: Vec<(String, u32)>,
    containers_running: usize,
    containers: usize,
}

fn app_row(ctx: &Ctx, settings: &Settings, name: &crate::app::AppName) -> anyhow::Result<AppRow> {
    let app = apps::open(&ctx.root, name)?;
    let meta = apps::meta(&app)?;
    let latest = releases::latest(&app.dir);
    let running = processes::of_app(&ctx.root, &app);
    let up = running.iter().filter(|p| p.is_up()).count();
    let state = match (&latest, meta.stopped) {
        (None, _) => "not deployed",
        (Some(_), true) => "stopped",
        (Some(_), false) if up == 0 => "down",
        (Some(_), false) => "running",
    };
    Ok(AppRow {
        app: app.name.to_string(),
        state,
        release: latest.as_ref().map(|r| r.version),
        url: latest.as_ref().and_then(|_| proxy::url(settings, &app, &meta)),
        formation: latest.map(|r| formation::effective(&meta.formation, &r.formation, &r.process_types)).unwrap_or_default(),
        containers_running: up,
        containers: running.len(),
    })
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 1)?;
    let settings = Settings::load(&ctx.root)?;
    if args.get(0).is_some() {
        let row = app_row(ctx, &settings, &args.app(0)?)?;
        if wants_json(&args)? {
            return print_json(&row);
        }
        println!("=====> {} report", row.app);
        print_app(&row);
        return Ok(());
    }
    let store = Store::open(&ctx.root)?;
    let stacks: Vec<String> = store
        .tags()?
        .into_iter()
        .map(|(tag, _)| tag)
        .filter(|t| t.starts_with("berth/stack-run:"))
        .map(|t| t["berth/stack-run:".len()..].to_owned())
        .collect();
    let (_, store_bytes) = maintenance::du(&store)?;
    let rows = apps::list(&ctx.root)?.iter().map(|name| app_row(ctx, &settings, name)).collect::<anyhow::Result<Vec<_>>>()?;
    let running: usize = crate::runtime::store::list(&ctx.root)
        .iter()
        .filter(|id| {
            crate::runtime::control::current_state(&crate::runtime::store::ContainerDir::new(&ctx.root, id))
                .is_ok_and(|s| s.shim_pid.is_some())
        })
        .count();
    let (nginx_pid, nginx_check) = deploy::nginx::status(&settings);
    if wants_json(&args)? {
        return print_json(&serde_json::json!({
            "berth": env!("CARGO_PKG_VERSION"),
            "root": ctx.root,
            "stacks": stacks,
            "store_bytes": store_bytes,
            "apps": rows,
            "running_containers": running,
            "nginx": {"pid": nginx_pid, "config_ok": nginx_check.is_ok(), "error": nginx_check.as_ref().err().map(|e| e.to_string())},
        }));
    }
    println!("=====> berth report");
    println!("       berth version:       {}", env!("CARGO_PKG_VERSION"));
    println!("       state root:          {}", ctx.root.display());
    println!("       stacks:              {}", if stacks.is_empty() { "none (stacks:build)".to_owned() } else { stacks.join(", ") });
    println!("       store:               {} (store:du for details)", human_bytes(store_bytes));
    println!("       running containers:  {running}");
    let nginx = match (nginx_pid, &nginx_check) {
        (Some(pid), Ok(())) => format!("running (pid {pid}), configuration ok"),
        (Some(pid), Err(e)) => format!("running (pid {pid}), configuration FAILS: {e}"),
        (None, Ok(())) => "not running, configuration ok".to_owned(),
        (None, Err(e)) => format!("not running, configuration FAILS: {e}"),
    };
    println!("       nginx:               {nginx}");
    println!("       apps:                {}", rows.len());
    for row in &rows {
        println!("=====> {}", row.app);
        print_app(row);
    }
    Ok(())
}

fn print_app(row: &AppRow) {
    let formation: Vec<String> = row.formation.iter().map(|(t, n)| format!("{t}={n}")).collect();
    println!("       state:               {}", row.state);
    println!("       release:             {}", row.release.map(|v| format!("v{v}")).unwrap_or_else(|| "-".into()));
    println!("       url:                 {}", row.url.as_deref().unwrap_or("-"));
    println!("       formation:           {}", if formation.is_empty() { "-".to_owned() } else { formation.join(" ") });
    println!("       containers:          {} running of {}", row.containers_running, row.containers);
}
