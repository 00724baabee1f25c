//! `stacks:*`: build, list, report, import and export the base images.

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use super::{Args, Command, Ctx, human_bytes, print_json, wants_json};
use crate::image::Store;
use crate::image::archive;
use crate::stack::build::{self, Outcome, RECIPE_LABEL};
use crate::stack::recipe::Recipe;
use crate::stack::{self, StackName};

pub const COMMANDS: &[Command] = &[
    Command {
        name: "stacks:build",
        usage: "[NAME] [--recipe DIR] [--cache DIR] [--force]",
        about: "Build the run and build images of a stack with mmdebstrap (default bookworm)",
        switches: &["--force"],
        options: &["--recipe", "--cache"],
        run: build,
    },
    Command {
        name: "stacks:list",
        usage: "[--format json]",
        about: "List stacks in the store",
        switches: &[],
        options: &["--format"],
        run: list,
    },
    Command {
        name: "stacks:report",
        usage: "[NAME] [--format json]",
        about: "Show a stack's images, layers and recipe",
        switches: &[],
        options: &["--format"],
        run: report,
    },
    Command {
        name: "stacks:outdated",
        usage: "[--format json]",
        about: "List deployed apps whose current release is on an older run image of its stack (apps:rebase)",
        switches: &[],
        options: &["--format"],
        run: outdated,
    },
    Command {
        name: "stacks:import",
        usage: "FILE",
        about: "Import stacks from an OCI or docker archive (every digest verified)",
        switches: &[],
        options: &[],
        run: import,
    },
    Command {
        name: "stacks:export",
        usage: "NAME FILE",
        about: "Write a stack's run and build images as one OCI archive",
        switches: &[],
        options: &[],
        run: export,
    },
];

/// Where recipes live when `--recipe` is not given: `BERTH_STACKS` (the
/// tests point it at the repository), else where install.sh copies them.
fn recipes_dir() -> PathBuf {
    std::env::var_os("BERTH_STACKS").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/local/share/berth/stacks"))
}

fn stack_name(args: &Args, i: usize) -> anyhow::Result<StackName> {
    match args.get(i) {
        Some(raw) => Ok(StackName::parse(&raw.to_string_lossy())?),
        None => Ok(StackName::parse("bookworm").expect("valid")),
    }
}

fn build(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 1)?;
    let name = stack_name(&args, 0)?;
    let recipe_dir = args.option("--recipe").map(PathBuf::from).unwrap_or_else(|| recipes_dir().join(name.to_string()));
    let recipe = Recipe::load(&recipe_dir)?;
    let cache = args.option("--cache").map(PathBuf::from);
    let store = Store::open(&ctx.root)?;
    let started = std::time::Instant::now();
    let outcome =
        build::build(&ctx.root, &store, &recipe, &name, cache.as_deref(), args.switch("--force"), &mut |line| println!("-----> {line}"))?;
    let took = started.elapsed().as_secs_f64();
    match outcome {
        Outcome::UpToDate => println!("-----> Stack {name} is up to date (recipe {})", &recipe.hash[..12]),
        Outcome::FromCache(_) => println!("-----> Stack {name} imported from cache in {took:.1} s"),
        Outcome::Built => println!("-----> Stack {name} built in {took:.1} s"),
    }
    Ok(())
}

#[derive(Serialize)]
struct StackReport {
    name: String,
    recipe: Option<String>,
    run_image: String,
    build_image: String,
    run_layers: Vec<String>,
    build_layers: Vec<String>,
    run_size: u64,
    build_extra_size: u64,
}

fn stack_report(store: &Store, name: &StackName) -> anyhow::Result<StackReport> {
    let run = store.image(&name.run_image()).with_context(|| format!("stack {name} has no run image"))?;
    let build = store.image(&name.build_image()).with_context(|| format!("stack {name} has no build image"))?;
    let digests = |image: &crate::image::Image| image.manifest.layers().iter().map(|l| l.digest().to_string()).collect::<Vec<_>>();
    let run_layers = digests(&run);
    let build_layers = digests(&build);
    let size_of = |image: &crate::image::Image, skip: usize| image.manifest.layers().iter().skip(skip).map(|l| l.size()).sum::<u64>();
    Ok(StackReport {
        name: name.to_string(),
        recipe: run.config.config().as_ref().and_then(|c| c.labels().as_ref()).and_then(|l| l.get(RECIPE_LABEL)).cloned(),
        run_image: run.manifest_digest.to_string(),
        build_image: build.manifest_digest.to_string(),
        run_size: size_of(&run, 0),
        build_extra_size: size_of(&build, run_layers.len()),
        run_layers,
        build_layers,
    })
}

fn list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let store = Store::open(&ctx.root)?;
    let names = stack::list(&store)?;
    if wants_json(&args)? {
        return print_json(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
    }
    println!("=====> Stacks");
    for name in names {
        println!("{name}");
    }
    Ok(())
}

fn report(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 1)?;
    let name = stack_name(&args, 0)?;
    let report = stack_report(&Store::open(&ctx.root)?, &name)?;
    if wants_json(&args)? {
        return print_json(&report);
    }
    println!("=====> stack {name}");
    println!("       Recipe:          {}", report.recipe.as_deref().unwrap_or("(imported, no recipe label)"));
    println!("       Run image:       {} ({} layer, {})", report.run_image, report.run_layers.len(), human_bytes(report.run_size));
    println!(
        "       Build image:     {} (+{} layer, {})",
        report.build_image,
        report.build_layers.len() - report.run_layers.len(),
        human_bytes(report.build_extra_size)
    );
    for (i, layer) in report.build_layers.iter().enumerate() {
        let shared = if i < report.run_layers.len() { "run+build" } else { "build" };
        println!("       Layer {i}:         {layer} ({shared})");
    }
    Ok(())
}

fn import(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let file = PathBuf::from(args.get(0).expect("checked"));
    let store = Store::open(&ctx.root)?;
    let _writing = store.writing()?;
    let imported = archive::import(&store, &file, None, archive::Names::Stacks)?;
    for image in &imported {
        println!("-----> Imported {} ({})", image.name, image.manifest.digest());
    }
    let stacks: Vec<_> = imported.iter().filter(|i| i.name.repository() == "berth/stack-run").collect();
    if stacks.is_empty() {
        anyhow::bail!("{} holds no berth/stack-run image; imported images are tagged as shown", file.display());
    }
    Ok(())
}

fn export(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let name = stack_name(&args, 0)?;
    let file = PathBuf::from(args.get(1).expect("checked"));
    let store = Store::open(&ctx.root)?;
    let images = [name.run_image(), name.build_image()]
        .into_iter()
        .map(|r| store.resolve(&r).map(|d| (r, d)))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("stack {name} is not in the store"))?;
    archive::export_oci(&store, &images, &file)?;
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!("-----> Exported stack {name} to {} ({})", file.display(), human_bytes(size));
    Ok(())
}

fn outdated(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let apps = crate::deploy::rebase::outdated(&ctx.root)?;
    if wants_json(&args)? {
        let rows: Vec<_> = apps.iter().map(|(name, stack)| serde_json::json!({"app": name.as_str(), "stack": stack})).collect();
        return print_json(&rows);
    }
    println!("=====> Apps on an older run image of their stack");
    for (name, stack) in apps {
        println!("{name} {stack}");
    }
    Ok(())
}
