//! `bundle:*`: everything an air-gapped berth host needs from a connected
//! one, in one OCI archive: the stacks (so no mmdebstrap run is needed),
//! the built-in buildpacks (as a one-layer image), and apps' current
//! images. Loading imports it (every digest verified), adds buildpacks the
//! host lacks, and deploys each app from its image. Config vars stay
//! behind: they are secrets, set them with config:set.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{Args, Command, Ctx, human_bytes};
use crate::app::AppName;
use crate::build::buildpacks;
use crate::image::{Digest, ImageRef, Store, archive, unpack};
use crate::state::{apps, releases};

pub const COMMANDS: &[Command] = &[
    Command {
        name: "bundle:create",
        usage: "FILE [--apps A,B]",
        about: "Write the stacks, the buildpacks and the apps' current images (default: every deployed app) to one OCI archive",
        switches: &[],
        options: &["--apps"],
        run: create,
    },
    Command {
        name: "bundle:load",
        usage: "FILE",
        about: "Import a bundle (digests verified), add the buildpacks this host lacks, and deploy its apps",
        switches: &[],
        options: &[],
        run: load,
    },
];

const BUILDPACKS: &str = "berth/buildpacks";
const RUNTIMES: &str = "berth/runtimes";
const APP_PREFIX: &str = "berth/app-";

fn create(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let file = PathBuf::from(args.get(0).expect("checked"));
    let names: Vec<AppName> = match args.option("--apps") {
        Some(list) => list
            .to_string_lossy()
            .split(',')
            .map(|n| AppName::parse(std::ffi::OsStr::new(n.trim())).map_err(anyhow::Error::from))
            .collect::<anyhow::Result<_>>()?,
        None => apps::list(&ctx.root)?
            .into_iter()
            .filter(|n| apps::open(&ctx.root, n).is_ok_and(|a| releases::latest(&a.dir).is_some()))
            .collect(),
    };
    let store = Store::open(&ctx.root)?;
    let _writing = store.writing()?;
    let mut images = Vec::new();
    for (name, descriptor) in store.tags()? {
        // Stacks, and the images backing services run from.
        if ["berth/stack-run:", "berth/stack-build:", "berth/service:"].iter().any(|p| name.starts_with(p)) {
            images.push((name.parse::<ImageRef>()?, descriptor));
        }
    }
    if images.is_empty() {
        bail!("this host has no stack to bundle; build one with stacks:build");
    }
    for name in &names {
        let app = apps::open(&ctx.root, name)?;
        let release = releases::latest(&app.dir).with_context(|| format!("app {name} has no release to bundle"))?;
        let digest: Digest = release.image_digest.parse()?;
        let size = store.read_blob(&digest).with_context(|| format!("the image of {name} v{} is not in the store", release.version))?.len();
        let descriptor = crate::image::store::descriptor(oci_spec::image::MediaType::ImageManifest, &digest, size as u64);
        images.push((ImageRef::new(&format!("{APP_PREFIX}{name}"), &format!("v{}", release.version))?, descriptor));
    }
    let pack_dir = buildpacks::built_in_dir();
    let pack_tag = ImageRef::new(BUILDPACKS, "bundle")?;
    if pack_dir.is_dir() {
        let (descriptor, layer, _) = super::images::one_layer_image(&store, &pack_dir, &pack_tag, None, "berth bundle:create buildpacks")?;
        println!("-----> Buildpacks from {} ({})", pack_dir.display(), human_bytes(layer.size));
        images.push((pack_tag.clone(), descriptor));
    }
    // Runtimes builds fetched (Node.js for engines.node), for builds offline.
    let runtimes_dir = crate::build::node::runtimes_dir(&ctx.root);
    let runtimes_tag = ImageRef::new(RUNTIMES, "bundle")?;
    if runtimes_dir.is_dir() {
        let (descriptor, layer, _) =
            super::images::one_layer_image(&store, &runtimes_dir, &runtimes_tag, None, "berth bundle:create runtimes")?;
        println!("-----> Runtimes from {} ({})", runtimes_dir.display(), human_bytes(layer.size));
        images.push((runtimes_tag.clone(), descriptor));
    }
    let written = archive::export_oci(&store, &images, &file);
    // The buildpacks and runtimes images live in the bundle, not as tags here.
    let _ = store.remove_tag(&pack_tag);
    let _ = store.remove_tag(&runtimes_tag);
    written?;
    for (name, descriptor) in &images {
        println!("       {name} {}", descriptor.digest());
    }
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!("-----> Wrote {} ({}, {} images)", file.display(), human_bytes(size), images.len());
    Ok(())
}

fn load(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let file = PathBuf::from(args.get(0).expect("checked"));
    let store = Store::open(&ctx.root)?;
    let imported = {
        let _writing = store.writing()?;
        archive::import(&store, &file, None, archive::Names::Any)?
    };
    println!("-----> Imported {} images from {}", imported.len(), file.display());
    let mut deploy = Vec::new();
    for image in &imported {
        let repository = image.name.repository();
        if repository == BUILDPACKS {
            add_buildpacks(ctx, &store, &image.name)?;
            let _ = store.remove_tag(&image.name);
        } else if repository == RUNTIMES {
            for layer in store.image(&image.name)?.layers()? {
                for version in crate::build::node::adopt(&ctx.root, &unpack::unpacked(&ctx.root, &store, &layer)?)? {
                    println!("-----> Added Node.js {version}");
                }
            }
            let _ = store.remove_tag(&image.name);
        } else if let Some(app) = repository.strip_prefix(APP_PREFIX) {
            deploy.push((AppName::parse(std::ffi::OsStr::new(app))?, image.clone()));
        } else {
            println!("       {}", image.name);
        }
    }
    for (name, image) in deploy {
        let current = apps::open(&ctx.root, &name).ok().and_then(|a| releases::latest(&a.dir));
        if current.is_some_and(|r| r.image_digest == image.manifest.digest().to_string()) {
            println!("-----> {name} already runs {}", image.manifest.digest());
            continue;
        }
        crate::deploy::release::deploy_image(
            &ctx.root,
            &name,
            &image.name,
            &format!("Deploy {} from a bundle", image.name),
            &mut |line| println!("{line}"),
        )?;
    }
    Ok(())
}

/// Copies the bundle's buildpacks that this host does not have; the ones
/// it has stay as they are (they came with its own install).
fn add_buildpacks(ctx: &Ctx, store: &Store, name: &ImageRef) -> anyhow::Result<()> {
    let image = store.image(name)?;
    let target = buildpacks::built_in_dir();
    std::fs::create_dir_all(&target).with_context(|| format!("cannot create {}", target.display()))?;
    for layer in image.layers()? {
        let dir = unpack::unpacked(&ctx.root, store, &layer)?;
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let entry = entry?;
            let dest = target.join(entry.file_name());
            if dest.exists() {
                continue;
            }
            let copied = std::process::Command::new("cp").arg("-a").arg(entry.path()).arg(&dest).status()?;
            if !copied.success() {
                bail!("cannot copy buildpack {} to {}", entry.path().display(), dest.display());
            }
            println!("-----> Added buildpack {}", entry.file_name().to_string_lossy());
        }
    }
    Ok(())
}
