//! `stacks:build`: recipe -> two mmdebstrap trees -> run image (one layer)
//! and build image (the run layer plus ONE diff layer), sharing the run
//! layer's blob. Nothing is tagged until both images are complete.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use oci_spec::image::{ConfigBuilder, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder, RootFsBuilder};

use super::StackName;
use super::recipe::{Kind, Recipe};
use crate::image::archive::{self, ArchiveError};
use crate::image::layer::{self, LayerError, LayerOptions};
use crate::image::{LayerInfo, Store, StoreError};
use crate::state::atomic;

pub const RECIPE_LABEL: &str = "io.berth.stack.recipe";
/// The host's certificate authorities, lent to pip in the build tree.
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("pip failed installing the recipe's build_python_tools ({status}):\n{tail}")]
    Tools { status: String, tail: String },
    #[error("mmdebstrap failed building the {which} tree ({status}):\n{tail}")]
    Mmdebstrap { which: &'static str, status: String, tail: String },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{what} failed in the {which} tree: {status}")]
    Customize { what: &'static str, which: &'static str, status: String },
    #[error("this host has no apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d) to build a stack from")]
    NoSources,
    #[error(transparent)]
    Io(#[from] crate::state::PathIo),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StackError + use<> {
    let path = path.to_owned();
    move |source| StackError::Io(crate::state::PathIo { action, path, source })
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Both images exist, built from this very recipe.
    UpToDate,
    /// Imported from the stack cache (verified like any import).
    FromCache(PathBuf),
    Built,
}

/// The cache file for this recipe: `<cache>/<name>-<recipe hash>.oci.tar`.
pub fn cache_file(cache: &Path, name: &StackName, recipe: &Recipe) -> PathBuf {
    cache.join(format!("{name}-{}.oci.tar", recipe.hash))
}

pub fn build(
    root: &Path,
    store: &Store,
    recipe: &Recipe,
    name: &StackName,
    cache: Option<&Path>,
    force: bool,
    say: &mut dyn FnMut(&str),
) -> Result<Outcome, StackError> {
    if !force && up_to_date(store, recipe, name) {
        return Ok(Outcome::UpToDate);
    }
    let _writing = store.writing()?;
    if let Some(file) = cache.map(|c| cache_file(c, name, recipe)).filter(|f| f.is_file()) {
        say(&format!("Importing cached stack {}", file.display()));
        archive::import(store, &file, None, archive::Names::Stacks)?;
        if up_to_date(store, recipe, name) {
            return Ok(Outcome::FromCache(file));
        }
        say("the cached archive did not hold this recipe's stack; building it");
    }

    let work = atomic::temp_path_for(&root.join("tmp").join(format!("stack-{name}")));
    fs::create_dir_all(&work).map_err(io_err("create", &work))?;
    let result = build_in(store, recipe, name, &work, say);
    let _ = fs::remove_dir_all(&work);
    result?;

    if let Some(cache) = cache {
        fs::create_dir_all(cache).map_err(io_err("create", cache))?;
        let file = cache_file(cache, name, recipe);
        let images = name.images(recipe.kind).into_iter().map(|r| store.resolve(&r).map(|d| (r, d)));
        let images = images.collect::<Result<Vec<_>, _>>()?;
        archive::export_oci(store, &images, &file)?;
        say(&format!("Cached the stack in {}", file.display()));
    }
    Ok(Outcome::Built)
}

fn up_to_date(store: &Store, recipe: &Recipe, name: &StackName) -> bool {
    name.images(recipe.kind).iter().all(|r| {
        store.image(r).is_ok_and(|image| {
            image.config.config().as_ref().and_then(|c| c.labels().as_ref()).and_then(|l| l.get(RECIPE_LABEL)) == Some(&recipe.hash)
        })
    })
}

fn build_in(store: &Store, recipe: &Recipe, name: &StackName, work: &Path, say: &mut dyn FnMut(&str)) -> Result<(), StackError> {
    if recipe.kind == Kind::Service {
        return build_service(store, recipe, name, work, say);
    }
    let sources = sources_for(&recipe.suite, work)?;
    let (run_tree, build_tree) = (work.join("run"), work.join("build"));
    let mut build_packages = recipe.run_packages.clone();
    build_packages.extend(recipe.build_packages.iter().cloned());
    say(&format!(
        "Building stack {name} with mmdebstrap ({} run packages, {} build packages) from the host's apt sources",
        recipe.run_packages.len(),
        recipe.build_packages.len()
    ));
    // Both trees at once: the downloads overlap and two cores are used.
    let run = spawn_mmdebstrap(recipe, &recipe.run_packages, &run_tree, &sources, &work.join("run.log"))?;
    let build = spawn_mmdebstrap(recipe, &build_packages, &build_tree, &sources, &work.join("build.log"))?;
    let run_result = wait_mmdebstrap(run, "run", &work.join("run.log"));
    let build_result = wait_mmdebstrap(build, "build", &work.join("build.log"));
    run_result?;
    build_result?;

    if !recipe.build_python_tools.is_empty() {
        say(&format!("Installing {} into the build tree from the package index (hashes required)", recipe.build_python_tools.join(", ")));
        install_python_tools(&build_tree, &recipe.build_python_tools, &work.join("tools.log"))?;
    }
    for (tree, which) in [(&run_tree, "run"), (&build_tree, "build")] {
        customize(tree, recipe, which)?;
    }
    let versions = runtime_versions(&run_tree);
    let options = LayerOptions::from_env();
    say("Writing the run layer");
    let run_layer = layer::write_tree(store, &run_tree, options)?;
    say("Writing the build layer (what the build tree adds to the run tree)");
    let build_layer = layer::write_diff(store, &run_tree, &build_tree, options)?;

    let created = created_time(options.mtime);
    let run_config = image_config(recipe, name, "run", &[&run_layer], &created, &versions);
    let build_config = image_config(recipe, name, "build", &[&run_layer, &build_layer], &created, &versions);
    store.write_image(&name.build_image(), &[run_layer.clone(), build_layer.clone()], &build_config)?;
    store.write_image(&name.run_image(), std::slice::from_ref(&run_layer), &run_config)?;
    say(&format!(
        "Stack {name}: run layer {} ({} bytes), build layer {} ({} bytes)",
        run_layer.digest, run_layer.size, build_layer.digest, build_layer.size
    ));
    Ok(())
}

/// A service image: one tree of the run packages, one layer, no build image.
fn build_service(store: &Store, recipe: &Recipe, name: &StackName, work: &Path, say: &mut dyn FnMut(&str)) -> Result<(), StackError> {
    let sources = sources_for(&recipe.suite, work)?;
    let tree = work.join("run");
    say(&format!("Building service image {name} with mmdebstrap ({} packages) from the host's apt sources", recipe.run_packages.len()));
    let child = spawn_mmdebstrap(recipe, &recipe.run_packages, &tree, &sources, &work.join("run.log"))?;
    wait_mmdebstrap(child, "run", &work.join("run.log"))?;
    customize(&tree, recipe, "run")?;
    let options = LayerOptions::from_env();
    let layer = layer::write_tree(store, &tree, options)?;
    let config = image_config(recipe, name, "service", &[&layer], &created_time(options.mtime), &[]);
    store.write_image(&name.service_image(), std::slice::from_ref(&layer), &config)?;
    say(&format!("Service image {}: one layer {} ({} bytes)", name.service_image(), layer.digest, layer.size));
    Ok(())
}

/// The host's apt sources for `suite`: as they are when the host runs that
/// release, else copies in `work` with the host's codename replaced
/// (`bookworm-security` becomes `trixie-security`), so a stack of another
/// Debian release comes from the same mirrors.
fn sources_for(suite: &str, work: &Path) -> Result<Vec<PathBuf>, StackError> {
    let sources = host_sources()?;
    let Some(host) = host_codename().filter(|h| h != suite) else { return Ok(sources) };
    let mut rewritten = Vec::new();
    for (i, file) in sources.iter().enumerate() {
        let text = fs::read_to_string(file).map_err(io_err("read", file))?;
        let copy = work.join(format!("sources-{i}.{}", file.extension().and_then(|e| e.to_str()).unwrap_or("list")));
        fs::write(&copy, retarget(&text, &host, suite)).map_err(io_err("write", &copy))?;
        rewritten.push(copy);
    }
    Ok(rewritten)
}

/// The host's Debian codename (`VERSION_CODENAME` in /etc/os-release).
fn host_codename() -> Option<String> {
    let text = fs::read_to_string("/etc/os-release").ok()?;
    text.lines().find_map(|l| l.strip_prefix("VERSION_CODENAME=")).map(|v| v.trim_matches('"').to_owned()).filter(|v| !v.is_empty())
}

/// Every suite word `host` or `host-*` in sources text (one-line `deb`
/// lines or deb822 `Suites:` fields) becomes `suite` or `suite-*`.
fn retarget(text: &str, host: &str, suite: &str) -> String {
    let swap = |word: &str| match word.strip_prefix(host) {
        Some(rest) if rest.is_empty() || rest.starts_with('-') => format!("{suite}{rest}"),
        _ => word.to_owned(),
    };
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let changed = if let Some(value) = trimmed.strip_prefix("Suites:") {
            format!("Suites: {}", value.split_whitespace().map(swap).collect::<Vec<_>>().join(" "))
        } else if trimmed.starts_with("deb ") || trimmed.starts_with("deb-src ") {
            trimmed.split_whitespace().map(swap).collect::<Vec<_>>().join(" ")
        } else {
            line.to_owned()
        };
        out.push_str(&changed);
        out.push('\n');
    }
    out
}

/// The host's apt source files, given to mmdebstrap as they are: the stack
/// uses whatever mirror (or local repository) this host is configured for.
fn host_sources() -> Result<Vec<PathBuf>, StackError> {
    let mut files = Vec::new();
    let main = Path::new("/etc/apt/sources.list");
    if fs::read_to_string(main).is_ok_and(|t| t.lines().any(|l| l.trim_start().starts_with("deb"))) {
        files.push(main.to_path_buf());
    }
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut listed: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources")).collect();
        listed.sort();
        files.extend(listed);
    }
    if files.is_empty() { Err(StackError::NoSources) } else { Ok(files) }
}

fn spawn_mmdebstrap(recipe: &Recipe, packages: &[String], tree: &Path, sources: &[PathBuf], log: &Path) -> Result<Child, StackError> {
    let log_file = fs::File::create(log).map_err(io_err("create", log))?;
    let log_err = log_file.try_clone().map_err(io_err("open", log))?;
    Command::new("mmdebstrap")
        .arg("--mode=root")
        .arg("--format=directory")
        .arg(format!("--variant={}", recipe.variant))
        .arg(format!("--include={}", packages.join(",")))
        .arg(&recipe.suite)
        .arg(tree)
        .args(sources)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|source| StackError::Spawn { program: "mmdebstrap", source })
}

fn wait_mmdebstrap(mut child: Child, which: &'static str, log: &Path) -> Result<(), StackError> {
    let status = child.wait().map_err(|source| StackError::Spawn { program: "mmdebstrap", source })?;
    if status.success() {
        return Ok(());
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(12)..].join("\n");
    Err(StackError::Mmdebstrap { which, status: status.to_string(), tail })
}

/// The same finishing touches on both trees, so the build layer holds only
/// what the build packages add: the app user, /app, an empty /dev (the
/// runtime provides devices) and host-specific files emptied.
/// pip, in the build tree, installs the recipe's pinned tools (into
/// /usr/local) from wheels whose sha256 the recipe names. The host's CA
/// bundle is lent for the download (a TLS-inspecting proxy) and removed.
fn install_python_tools(tree: &Path, tools: &[String], log: &Path) -> Result<(), StackError> {
    let (list, ca) = (tree.join("tmp/berth-tools.txt"), tree.join("tmp/berth-ca.crt"));
    fs::write(&list, tools.join("\n") + "\n").map_err(io_err("write", &list))?;
    let cert = if fs::copy(HOST_CA_BUNDLE, &ca).is_ok() { "/tmp/berth-ca.crt" } else { "/etc/ssl/certs/ca-certificates.crt" };
    let out = fs::File::create(log).map_err(io_err("create", log))?;
    let err = out.try_clone().map_err(io_err("create", log))?;
    let status = Command::new("chroot")
        .arg(tree)
        .args(["python3", "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-input"])
        .args(["--break-system-packages", "--root-user-action=ignore", "--require-hashes", "--only-binary=:all:"])
        // No --prefix: Debian's pip puts root's installs in /usr/local
        // already (a --prefix there would become /usr/local/local).
        .args(["--cert", cert, "-r", "/tmp/berth-tools.txt"])
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/root")
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|source| StackError::Spawn { program: "chroot", source })?;
    let _ = (fs::remove_file(&list), fs::remove_file(&ca));
    if status.success() {
        return Ok(());
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    let tail = text.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    Err(StackError::Tools { status: status.to_string(), tail })
}

fn customize(tree: &Path, recipe: &Recipe, which: &'static str) -> Result<(), StackError> {
    let uid = recipe.user.uid.to_string();
    let chroot = |what: &'static str, args: &[&str]| -> Result<(), StackError> {
        let status =
            Command::new("chroot").arg(tree).args(args).status().map_err(|source| StackError::Spawn { program: "chroot", source })?;
        if status.success() { Ok(()) } else { Err(StackError::Customize { what, which, status: status.to_string() }) }
    };
    chroot("groupadd", &["groupadd", "--gid", &uid, &recipe.user.name])?;
    let mut useradd =
        vec!["useradd", "--uid", &uid, "--gid", &uid, "--create-home", "--home-dir", &recipe.user.home, "--shell", "/bin/bash"];
    if recipe.kind == Kind::Service {
        // A high uid (services') would make lastlog a sparse file of gigabytes.
        useradd.push("--no-log-init");
    }
    useradd.push(&recipe.user.name);
    chroot("useradd", &useradd)?;
    let app = tree.join("app");
    fs::create_dir_all(&app).map_err(io_err("create", &app))?;
    std::os::unix::fs::chown(&app, Some(recipe.user.uid), Some(recipe.user.uid)).map_err(io_err("chown", &app))?;
    // Whatever umask berth ran under, "/" and /app are open to every user.
    use std::os::unix::fs::PermissionsExt;
    for dir in [tree, app.as_path()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io_err("chmod", dir))?;
    }
    let dev = tree.join("dev");
    for entry in fs::read_dir(&dev).map_err(io_err("list", &dev))?.flatten() {
        let path = entry.path();
        let removed = if path.is_dir() && !path.is_symlink() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        removed.map_err(io_err("remove", &path))?;
    }
    for pruned in &recipe.prune {
        let path = tree.join(pruned);
        // Checked relative at load; a link is removed, never followed.
        let removed = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(_) => Ok(()),
        };
        removed.map_err(io_err("remove", &path))?;
    }
    for file in ["etc/hostname", "etc/resolv.conf"] {
        let path = tree.join(file);
        if path.is_symlink() {
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
        }
        fs::write(&path, b"").map_err(io_err("write", &path))?;
    }
    Ok(())
}

/// The label a stack's run and build images carry with its Python's version.
pub const PYTHON_LABEL: &str = "io.berth.stack.python";
pub const NODE_LABEL: &str = "io.berth.stack.node";

/// The interpreters' versions in a finished run tree, as labels (builds
/// name them when an app asks for a version no stack has).
fn runtime_versions(tree: &Path) -> Vec<(String, String)> {
    let ask = |args: &[&str]| -> Option<String> {
        let out = Command::new("chroot").arg(tree).args(args).env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().trim_start_matches('v').to_owned();
        (out.status.success() && !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.')).then_some(text)
    };
    let mut labels = Vec::new();
    labels.extend(ask(&["python3", "-c", "import platform; print(platform.python_version())"]).map(|v| (PYTHON_LABEL.to_owned(), v)));
    labels.extend(ask(&["node", "--version"]).map(|v| (NODE_LABEL.to_owned(), v)));
    labels
}

fn created_time(epoch: u64) -> String {
    chrono::DateTime::from_timestamp(epoch as i64, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn image_config(
    recipe: &Recipe,
    name: &StackName,
    kind: &str,
    layers: &[&LayerInfo],
    created: &str,
    versions: &[(String, String)],
) -> ImageConfiguration {
    let mut labels = HashMap::from([
        ("io.berth.stack".to_owned(), name.to_string()),
        ("io.berth.stack.kind".to_owned(), kind.to_owned()),
        (RECIPE_LABEL.to_owned(), recipe.hash.clone()),
    ]);
    labels.extend(versions.iter().cloned());
    let config = ConfigBuilder::default()
        .user(format!("{uid}:{uid}", uid = recipe.user.uid))
        .env(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            "LANG=C.UTF-8".to_owned(),
            format!("HOME={}", recipe.user.home),
        ])
        .working_dir("/app")
        .cmd(vec!["/bin/bash".to_owned()])
        .labels(labels)
        .build()
        .expect("config fields are all optional");
    let history = layers
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let what = if i == 0 { "run packages" } else { "build packages" };
            HistoryBuilder::default()
                .created(created.to_owned())
                .created_by(format!("berth stacks:build {name}: {what}"))
                .build()
                .expect("history fields are optional")
        })
        .collect::<Vec<_>>();
    ImageConfigurationBuilder::default()
        .created(created.to_owned())
        .architecture(host_arch())
        .os(oci_spec::image::Os::Linux)
        .config(config)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>())
                .build()
                .expect("rootfs has its fields"),
        )
        .history(history)
        .build()
        .expect("image config has its fields")
}

/// The image architecture of this host, in OCI's words.
fn host_arch() -> oci_spec::image::Arch {
    match std::env::consts::ARCH {
        "aarch64" => oci_spec::image::Arch::ARM64,
        "x86" => oci_spec::image::Arch::i386,
        _ => oci_spec::image::Arch::Amd64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_retargeted_to_the_recipes_suite() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nSuites: bookworm-security\n";
        assert_eq!(
            retarget(deb822, "bookworm", "trixie"),
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie trixie-updates\nComponents: main\n\nSuites: trixie-security\n"
        );
        let one_line =
            "deb http://mirror/debian bookworm main\ndeb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n# bookworm\n";
        assert_eq!(
            retarget(one_line, "bookworm", "trixie"),
            "deb http://mirror/debian trixie main\ndeb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n# bookworm\n"
        );
    }
}
