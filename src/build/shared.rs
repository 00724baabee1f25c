//! Python dependencies shared across apps. When berth can tell from the
//! pushed files alone what the python buildpack would install (a lock
//! file, or a requirements.txt or pyproject.toml naming only packages of
//! the index), it installs them once per host in a sandbox of their own
//! that holds nothing but those files: no app code, no config vars, no
//! app cache. The result (`$BERTH_ROOT/deps/KEY`, root's, read only to
//! builds) and its layer are keyed by what produced them: the stack's
//! build and run image digests, the buildpack, and the files' bytes. A
//! later build of any app with the same key gets a copy of that .venv and
//! the same layer, and runs no installer.
//!
//! Nothing an app's own build does reaches the shared tree: its build
//! only ever sees a copy, and a copy it changed no longer matches the
//! recorded fingerprint, so that app gets a layer of its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

use super::{BuildError, BuildRecord, Job, Output, Stack, WorkTree, buildpacks, confined, handover, io_err, reuse};
use crate::app::App;
use crate::image::layer::{self, LayerOptions};
use crate::state::apps::APP_UID_BASE;

/// The uid shared installs run as: below every app's, owned by none.
const INSTALL_UID: u32 = APP_UID_BASE;
/// The most berth reads of a dependency file.
const FILE_CAP: u64 = 1 << 20;
const VENV: &str = ".venv";
/// Where an app asks for a Python version (pyproject.toml is a dependency file already).
const VERSION_FILES: &[&str] = &[".python-version", "runtime.txt"];

/// The files that say what to install, with their bytes, and the key.
struct Plan {
    files: Vec<(&'static str, Vec<u8>)>,
    key: String,
}

/// A shared install on this host: `.venv` and its layer record.
pub struct Entry {
    pub dir: PathBuf,
}

/// A requirements line names a package of the index: no option (another
/// file, another index), no URL, path or direct reference.
fn plain_requirements(text: &str) -> bool {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .all(|line| !line.starts_with(['-', '.', '/']) && !line.contains("://") && !line.contains('@') && !line.contains("file:"))
}

/// The dependency files, picked in the buildpack's order (bin/compile),
/// when they alone decide what is installed.
fn dependency_files(app_dir: &Path) -> Option<Vec<(&'static str, Vec<u8>)>> {
    let read = |name: &str| confined::read(app_dir, name, FILE_CAP).ok().flatten();
    let present = |name: &str| fs::symlink_metadata(app_dir.join(name)).is_ok();
    if present("vendor") {
        return None;
    }
    for lock in ["uv.lock", "poetry.lock", "Pipfile.lock"] {
        if present(lock) {
            let mut files = vec![(lock, read(lock)?)];
            // Poetry's lock names what the app wants in pyproject.toml.
            if lock == "poetry.lock" {
                files.push(("pyproject.toml", read("pyproject.toml")?));
            }
            return Some(files);
        }
    }
    for name in ["requirements.txt", "pyproject.toml"] {
        if present(name) {
            let bytes = read(name)?;
            let text = std::str::from_utf8(&bytes).ok()?;
            let package = name == "pyproject.toml" && text.lines().any(|l| l.trim() == "[build-system]");
            return (plain_requirements(text) && !package && !present("setup.py")).then(|| vec![(name, bytes)]);
        }
    }
    None
}

/// Every file of the buildpack, by path, into the key.
fn hash_tree(hasher: &mut Sha256, dir: &Path, rel: &Path) {
    let mut names: Vec<_> = fs::read_dir(dir.join(rel)).map(|e| e.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    names.sort();
    for name in names {
        let path = rel.join(&name);
        let Ok(meta) = fs::symlink_metadata(dir.join(&path)) else { continue };
        hasher.update(path.as_os_str().as_encoded_bytes());
        if meta.is_dir() {
            hash_tree(hasher, dir, &path);
        } else if meta.is_file() {
            hasher.update(fs::read(dir.join(&path)).unwrap_or_default());
        }
    }
}

fn plan(stack: &Stack, app_dir: &Path) -> Option<Plan> {
    let files = dependency_files(app_dir)?;
    let mut hasher = Sha256::new();
    hasher.update(b"berth shared python dependencies 1\0");
    hasher.update(stack.build.manifest_digest.to_string());
    hasher.update(stack.run.manifest_digest.to_string());
    hash_tree(&mut hasher, &buildpacks::built_in_dir().join("python"), Path::new(""));
    for (name, bytes) in &files {
        hasher.update(format!("\0{name}\0{}\0", bytes.len()));
        hasher.update(bytes);
    }
    Some(Plan { files, key: hex::encode(hasher.finalize()) })
}

impl Entry {
    fn open(root: &Path, key: &str) -> Option<Entry> {
        let dir = root.join("deps").join(key);
        confined::is_real_dir(&dir, Path::new(VENV)).then_some(Entry { dir })
    }
}

/// Before an app's build: the shared install for its dependency files,
/// made now if the host has none, copied into the work tree. None when
/// the app's dependencies are not shareable (the build then installs them
/// itself, as before). A failed install fails the build: the app's own
/// would have failed the same way.
#[allow(clippy::too_many_arguments)]
pub(super) fn provide(
    root: &Path,
    app: &App,
    stack: &Stack,
    tree: &WorkTree,
    explicit_buildpacks: bool,
    record: &BuildRecord,
    out: &mut Output,
) -> Result<Option<Entry>, BuildError> {
    let Some(plan) = plan(stack, &tree.app).filter(|_| !explicit_buildpacks) else { return Ok(None) };
    let entry = match Entry::open(root, &plan.key) {
        Some(entry) => entry,
        None => install(root, app, stack, &plan, &tree.app, record, out)?,
    };
    // The app's cached venv goes back to its cache; a pushed .venv is replaced.
    handover::take_back(&tree.cache, &tree.app);
    let target = tree.app.join(VENV);
    if fs::symlink_metadata(&target).is_ok() {
        let _ = fs::remove_file(&target);
        let _ = fs::remove_dir_all(&target);
    }
    let copied = Command::new("cp").args(["-a", "--reflink=auto"]).arg(entry.dir.join(VENV)).arg(&target).status();
    if !copied.is_ok_and(|s| s.success()) {
        let _ = fs::remove_dir_all(&target);
        return Ok(None);
    }
    Ok(Some(entry))
}

/// Installs the plan's dependencies in a sandbox of their own and keeps
/// the result under `deps/KEY`, with its layer written and remembered.
#[allow(clippy::too_many_arguments)]
fn install(
    root: &Path,
    app: &App,
    stack: &Stack,
    plan: &Plan,
    app_dir: &Path,
    record: &BuildRecord,
    out: &mut Output,
) -> Result<Entry, BuildError> {
    out.line("-----> Installing the dependencies apart from the app, to share with apps on this host that need the same");
    let work = root.join("tmp").join(format!("deps-{}-{}", &plan.key[..16], std::process::id()));
    // The Python the app asks for is checked first, as its own build would.
    let versions: Vec<_> =
        VERSION_FILES.iter().filter_map(|name| Some((*name, confined::read(app_dir, name, FILE_CAP).ok().flatten()?))).collect();
    let result = install_in(root, app, stack, plan, &versions, &work, record, out);
    let _ = super::make_removable(&work);
    let _ = fs::remove_dir_all(&work);
    result?.ok_or_else(|| BuildError::CompileFailed("python".to_owned()))
}

#[allow(clippy::too_many_arguments)]
fn install_in(
    root: &Path,
    app: &App,
    stack: &Stack,
    plan: &Plan,
    versions: &[(&str, Vec<u8>)],
    work: &Path,
    record: &BuildRecord,
    out: &mut Output,
) -> Result<Option<Entry>, BuildError> {
    let (app_dir, cache, env) = (work.join("app"), work.join("cache"), work.join("env"));
    for dir in [&app_dir, &cache, &env] {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    }
    for (name, bytes) in plan.files.iter().chain(versions) {
        fs::write(app_dir.join(name), bytes).map_err(io_err("write", &app_dir))?;
    }
    for dir in [&app_dir, &cache] {
        super::chown_app_user(dir, INSTALL_UID)?;
    }
    let buildpack = buildpacks::built_in_dir().join("python");
    let mounts = vec![
        super::BindMount { source: app_dir.clone(), destination: "/app".into(), readonly: false },
        super::BindMount { source: cache, destination: "/cache".into(), readonly: false },
        super::BindMount { source: env, destination: "/env".into(), readonly: true },
        super::BindMount { source: buildpack, destination: "/buildpacks/python".into(), readonly: true },
    ];
    let args = ["/bin/bash", "/buildpacks/python/bin/compile", "/app", "/cache", "/env"].map(str::to_owned).to_vec();
    let env = vec!["BERTH_DEPENDENCIES=only".to_owned(), "BERTH_LAYERS=/dev/null".to_owned()];
    let job = Job { container: format!("{}-deps", record.container), mounts, args, env, uid: INSTALL_UID };
    let settings = super::BuildSettings::load(&app.dir);
    let config = super::sandbox_config(app, stack, job, &settings, record)?;
    let exit_code = super::run_sandbox(root, &config, &settings, &mut |text| out.line(text))?;
    if exit_code != 0 || !confined::is_real_dir(&app_dir, Path::new(VENV)) {
        return Ok(None);
    }
    keep(root, stack, plan, &app_dir).map(Some)
}

/// Makes the installed .venv root's (so no app's build can change it),
/// writes its layer, and names the entry `deps/KEY` in one rename.
fn keep(root: &Path, stack: &Stack, plan: &Plan, app_dir: &Path) -> Result<Entry, BuildError> {
    super::chown_app_user(&app_dir.join(VENV), 0)?;
    let venv = PathBuf::from(VENV);
    let _writing = stack.store.writing()?;
    let layer = layer::write_subtree(&stack.store, app_dir, Path::new("app"), &|rel| rel.starts_with(&venv), LayerOptions::from_env())?;
    let deps = root.join("deps");
    let staging = deps.join(format!(".new-{}-{}", &plan.key[..16], std::process::id()));
    fs::create_dir_all(&staging).map_err(io_err("create", &staging))?;
    fs::rename(app_dir.join(VENV), staging.join(VENV)).map_err(io_err("move", &staging))?;
    reuse::remember(&staging, &reuse::fingerprint(&staging, &[venv]), &layer);
    let dir = deps.join(&plan.key);
    // Another build may have made the same entry meanwhile: either is good.
    if fs::rename(&staging, &dir).is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    Ok(Entry { dir })
}

#[cfg(test)]
mod tests {
    use super::plain_requirements;

    #[test]
    fn only_index_packages_are_plain() {
        assert!(plain_requirements("flask==3.0.0\n# a comment\nrequests>=2 ; python_version > '3.8'\n\n"));
        for line in ["-r other.txt", "--index-url https://x", "-e .", "./pkg", "/abs/pkg", "pkg @ https://x/p.whl", "file:pkg"] {
            assert!(!plain_requirements(&format!("flask\n{line}\n")), "{line}");
        }
    }
}
