//! `store:*`: integrity, garbage collection and disk use of the image store.

use anyhow::bail;

use super::{Args, Command, Ctx, human_bytes, print_json, wants_json};
use crate::image::Store;
use crate::image::maintenance;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "store:fsck",
        usage: "[--format json]",
        about: "Re-hash every blob; report corrupted and missing ones",
        switches: &[],
        options: &["--format"],
        run: fsck,
    },
    Command {
        name: "store:gc",
        usage: "[--dry-run] [--format json]",
        about: "Remove blobs and unpacked layers no tag reaches",
        switches: &["--dry-run"],
        options: &["--format"],
        run: gc,
    },
    Command {
        name: "store:du",
        usage: "[--app APP] [--format json]",
        about: "Bytes per repository: own and shared with others (--app: per kept release)",
        switches: &[],
        options: &["--format", "--app"],
        run: du,
    },
];

fn fsck(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let report = maintenance::fsck(&Store::open(&ctx.root)?)?;
    if wants_json(&args)? {
        print_json(&report)?;
    } else {
        println!("-----> Checked {} blobs", report.blobs_checked);
        for digest in &report.corrupted {
            println!(" !     corrupted: {digest} (content does not match its digest)");
        }
        for (digest, tag) in &report.missing {
            println!(" !     missing: {digest} (needed by {tag})");
        }
    }
    if !report.is_clean() {
        bail!("store has {} corrupted and {} missing blobs", report.corrupted.len(), report.missing.len());
    }
    Ok(())
}

fn gc(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let dry_run = args.switch("--dry-run");
    let report = maintenance::gc(&ctx.root, &Store::open(&ctx.root)?, dry_run)?;
    if wants_json(&args)? {
        return print_json(&report);
    }
    let verb = if dry_run { "Would remove" } else { "Removed" };
    for (digest, size) in &report.blobs {
        println!("       sha256:{digest} {}", human_bytes(*size));
    }
    println!(
        "-----> {verb} {} blobs ({} bytes, {}) and {} unpacked layers ({})",
        report.blobs.len(),
        report.blob_bytes,
        human_bytes(report.blob_bytes),
        report.layer_dirs.len(),
        human_bytes(report.layer_bytes)
    );
    Ok(())
}

fn du(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    if let Some(name) = args.option("--app") {
        return du_app(ctx, &args, &crate::app::AppName::parse(name)?);
    }
    let (rows, total) = maintenance::du(&Store::open(&ctx.root)?)?;
    if wants_json(&args)? {
        return print_json(&serde_json::json!({ "repositories": rows, "total": total }));
    }
    println!("{:<32} {:>5} {:>10} {:>10} {:>10}", "REPOSITORY", "TAGS", "TOTAL", "OWN", "SHARED");
    for row in &rows {
        println!(
            "{:<32} {:>5} {:>10} {:>10} {:>10}",
            row.repository,
            row.tags.len(),
            human_bytes(row.total),
            human_bytes(row.own),
            human_bytes(row.shared)
        );
    }
    println!("store total (shared blobs counted once): {}", human_bytes(total));
    Ok(())
}

/// Each kept release of an app: what its image costs, what only it holds,
/// and what it shares with the app's other kept releases and the stack.
fn du_app(ctx: &Ctx, args: &Args, name: &crate::app::AppName) -> anyhow::Result<()> {
    let app = crate::state::apps::open(&ctx.root, name)?;
    let store = Store::open(&ctx.root)?;
    let mut images: Vec<(String, crate::image::Digest)> =
        crate::deploy::retention::kept_releases(&app)?.into_iter().map(|(v, d)| (format!("v{v}"), d)).collect();
    // The stack's run image: what every release shares with it is not the app's own.
    if let Ok(stack) =
        "berth/stack-run:bookworm".parse::<crate::image::ImageRef>().map_err(anyhow::Error::from).and_then(|r| Ok(store.resolve(&r)?))
    {
        images.push(("stack".into(), crate::image::Digest::try_from(stack.digest())?));
    }
    let (rows, total) = maintenance::du_images(&store, &images)?;
    let rows: Vec<_> = rows.into_iter().filter(|r| r.label != "stack").collect();
    if wants_json(args)? {
        return print_json(&serde_json::json!({ "app": app.name.to_string(), "releases": rows, "total_with_stack": total }));
    }
    println!("=====> {} kept releases", app.name);
    println!("{:<8} {:>10} {:>10} {:>10}", "RELEASE", "TOTAL", "OWN", "SHARED");
    for row in &rows {
        println!("{:<8} {:>10} {:>10} {:>10}", row.label, human_bytes(row.total), human_bytes(row.own), human_bytes(row.shared));
    }
    println!("all kept releases and their stack, shared blobs counted once: {}", human_bytes(total));
    Ok(())
}
