//! `images:*`: what the store holds, by tag.

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use super::{Args, Command, Ctx, human_bytes, print_json, wants_json};
use crate::image::{Digest, ImageRef, Store};
use crate::image::{archive, layer, unpack};

pub const COMMANDS: &[Command] = &[
    Command {
        name: "images:list",
        usage: "[--format json]",
        about: "List tagged images in the store",
        switches: &[],
        options: &["--format"],
        run: list,
    },
    Command {
        name: "images:inspect",
        usage: "REF",
        about: "Print an image's manifest and config as JSON",
        switches: &[],
        options: &[],
        run: inspect,
    },
    Command {
        name: "images:import",
        usage: "FILE [--name REF]",
        about: "Import an OCI archive or docker archive (every digest verified)",
        switches: &[],
        options: &["--name"],
        run: import,
    },
    Command {
        name: "images:export",
        usage: "APP [--release vN] [--format oci-archive|oci-dir|docker-archive] -o FILE",
        about: "Write an app's release image (default: the current one) as an OCI archive, OCI layout dir or docker archive, tagged APP:vN",
        switches: &[],
        options: &["--release", "--format", "-o"],
        run: export,
    },
    Command {
        name: "images:from-dir",
        usage: "DIR REF [--base REF]",
        about: "Make an image from a directory tree: one deterministic layer, on top of --base if given",
        switches: &[],
        options: &["--base"],
        run: from_dir,
    },
    Command {
        name: "images:unpack",
        usage: "REF",
        about: "Unpack an image's layers into the layer cache and print their directories, bottom first",
        switches: &[],
        options: &[],
        run: unpack,
    },
    Command {
        name: "images:remove",
        usage: "REF",
        about: "Remove a tag (store:gc frees its blobs)",
        switches: &[],
        options: &[],
        run: remove,
    },
];

pub fn image_ref(args: &Args, i: usize) -> anyhow::Result<ImageRef> {
    let raw = args.get(i).ok_or_else(|| args.usage_error("missing REF"))?;
    Ok(raw.to_string_lossy().parse()?)
}

#[derive(Serialize)]
struct Row {
    name: String,
    digest: String,
    size: u64,
    layers: usize,
    created: Option<String>,
}

fn list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let store = Store::open(&ctx.root)?;
    let mut rows = Vec::new();
    for (name, descriptor) in store.tags()? {
        let digest = Digest::try_from(descriptor.digest())?;
        let image = store.image_by_digest(&digest).with_context(|| format!("image {name}"))?;
        let size = image.manifest.config().size() + image.manifest.layers().iter().map(|l| l.size()).sum::<u64>();
        rows.push(Row {
            name,
            digest: digest.to_string(),
            size,
            layers: image.manifest.layers().len(),
            created: image.config.created().clone(),
        });
    }
    if wants_json(&args)? {
        return print_json(&rows);
    }
    println!("{:<40} {:<19} {:>7} {:>10}", "IMAGE", "DIGEST", "LAYERS", "SIZE");
    for row in rows {
        println!("{:<40} {:<19} {:>7} {:>10}", row.name, &row.digest[..19], row.layers, human_bytes(row.size));
    }
    Ok(())
}

fn inspect(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let name = image_ref(&args, 0)?;
    let image = Store::open(&ctx.root)?.image(&name)?;
    print_json(&serde_json::json!({
        "name": name.to_string(),
        "digest": image.manifest_digest.to_string(),
        "manifest": image.manifest,
        "config": image.config,
    }))
}

fn import(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let file = PathBuf::from(args.get(0).expect("checked"));
    let rename = args.option("--name").map(|n| n.to_string_lossy().parse::<ImageRef>()).transpose()?;
    let store = Store::open(&ctx.root)?;
    let _writing = store.writing()?;
    for image in archive::import(&store, &file, rename.as_ref(), archive::Names::NotReserved)? {
        println!("-----> Imported {} ({})", image.name, image.manifest.digest());
    }
    Ok(())
}

fn from_dir(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(2, 2)?;
    let dir = PathBuf::from(args.get(0).expect("checked"));
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let name = image_ref(&args, 1)?;
    let base = args.option("--base").map(|b| b.to_string_lossy().parse::<ImageRef>()).transpose()?;
    let store = Store::open(&ctx.root)?;
    let _writing = store.writing()?;
    let base = base.map(|b| store.image(&b)).transpose()?;
    let (manifest, layer, took) = one_layer_image(&store, &dir, &name, base, &format!("berth images:from-dir {}", dir.display()))?;
    println!("-----> Wrote layer {} ({}) in {took:.2} s", layer.digest, human_bytes(layer.size));
    println!("-----> Tagged {name} ({})", manifest.digest());
    Ok(())
}

/// Tags `name` as `base` (or nothing) plus one layer of `dir`'s tree.
/// Returns the manifest, the layer and the seconds the layer took.
pub fn one_layer_image(
    store: &Store,
    dir: &std::path::Path,
    name: &ImageRef,
    base: Option<crate::image::Image>,
    created_by: &str,
) -> anyhow::Result<(oci_spec::image::Descriptor, crate::image::LayerInfo, f64)> {
    let (mut layers, mut config) = match base {
        Some(image) => (image.layers()?, image.config),
        None => {
            let empty = serde_json::json!({"architecture": host_arch(), "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}});
            (Vec::new(), serde_json::from_value(empty)?)
        }
    };
    let started = std::time::Instant::now();
    let layer = layer::write_tree(store, dir, layer::LayerOptions::from_env())?;
    let took = started.elapsed().as_secs_f64();
    let mut rootfs = config.rootfs().clone();
    let mut diff_ids = rootfs.diff_ids().clone();
    diff_ids.push(layer.diff_id.to_string());
    rootfs.set_diff_ids(diff_ids);
    config.set_rootfs(rootfs);
    let mut history = config.history().clone().unwrap_or_default();
    history.push(serde_json::from_value(serde_json::json!({ "created_by": created_by }))?);
    config.set_history(Some(history));
    layers.push(layer.clone());
    let manifest = store.write_image(name, &layers, &config)?;
    Ok((manifest, layer, took))
}

/// The architecture name OCI uses for this host.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn unpack(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let name = image_ref(&args, 0)?;
    let store = Store::open(&ctx.root)?;
    for layer in store.image(&name)?.layers()? {
        println!("{}", unpack::unpacked(&ctx.root, &store, &layer)?.display());
    }
    Ok(())
}

fn remove(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let name = image_ref(&args, 0)?;
    Store::open(&ctx.root)?.remove_tag(&name)?;
    println!("-----> Removed tag {name}; run store:gc to free its blobs");
    Ok(())
}

fn export(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let app = crate::state::apps::open(&ctx.root, &args.app(0)?)?;
    let out = PathBuf::from(args.option("-o").ok_or_else(|| args.usage_error("missing -o FILE"))?);
    let release = super::release_option(&args, &app)?;
    let store = Store::open(&ctx.root)?;
    let digest: Digest = release.image_digest.parse()?;
    // The store keeps a release's image by digest; the archive names it APP:vN.
    let manifest =
        store.image_by_digest(&digest).with_context(|| format!("the image of v{} is no longer in the store", release.version))?;
    let size = store.read_blob(&manifest.manifest_digest)?.len() as u64;
    let descriptor = crate::image::store::descriptor(oci_spec::image::MediaType::ImageManifest, &digest, size);
    let name = ImageRef::new(app.name.as_str(), &format!("v{}", release.version))?;
    let images = [(name.clone(), descriptor)];
    let format = args.option("--format").map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "oci-archive".into());
    match format.as_str() {
        "oci-archive" => archive::export_oci(&store, &images, &out)?,
        "docker-archive" => archive::export_docker(&store, &images, &out)?,
        "oci-dir" => {
            if out.exists() {
                anyhow::bail!("{} exists; oci-dir writes a new directory", out.display());
            }
            archive::export_oci_dir(&store, &images, &out)?
        }
        other => return Err(args.usage_error(&format!("unknown format {other:?}: use oci-archive, oci-dir or docker-archive")).into()),
    }
    println!("-----> Exported {name} ({digest}) as {format} to {}", out.display());
    Ok(())
}
