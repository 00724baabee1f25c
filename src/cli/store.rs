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
        usage: "[--format json]",
        about: "Bytes per repository: own and shared with others",
        switches: &[],
        options: &["--format"],
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
