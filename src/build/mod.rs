//! Builds: a source tree + config vars -> buildpacks in a sandbox container
//! from the stack's build image -> an app image of the run image's layers
//! plus a dependency layer and an app layer.

pub mod appjson;
pub mod buildpacks;
pub mod confined;
mod driver;
mod gitdir;
pub mod handover;
mod layout;
pub mod node;
pub mod procfile;
pub mod records;
pub mod release;
pub mod reuse;
pub mod settings;
mod shared;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use buildpacks::{BUILT_IN, Source};
use layout::Layout;
use records::{BuildRecord, BuildStatus};
use settings::BuildSettings;

use crate::app::App;
use crate::image::layer::{self, LayerOptions};
use crate::image::{ImageRef, LayerInfo, Store};
use crate::runtime::oneshot;
use crate::runtime::store::BindMount;
use crate::runtime::{ContainerConfig, ContainerId, Limits, RestartPolicy};
use crate::state::config::ConfigVars;

const LAUNCHER: &str = include_str!("launcher.sh");
/// The stack an app builds on when neither it nor the host names one.
pub const DEFAULT_STACK: &str = "bookworm";
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Paths inside /app that always go to the dependency layer when present.
const DEFAULT_DEPENDENCY_PATHS: &[&str] = &[".venv", "node_modules"];

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no buildpack detected this app: add a requirements.txt, package.json, index.html or Procfile, or set one with buildpacks:set")]
    NoBuildpack,
    #[error("the {0} buildpack failed; see the output above (builds:output)")]
    CompileFailed(String),
    #[error("the build ran past its limit of {0} s and was stopped")]
    TimedOut(u64),
    #[error("the build sandbox exited with code {0}")]
    Sandbox(i32),
    #[error("this app declares no process types: add a Procfile such as `web: python app.py`")]
    NoProcesses,
    #[error("no stack: run `berth stacks:build` first ({0})")]
    NoStack(String),
    #[error("{0}")]
    Procfile(#[from] procfile::ProcfileError),
    #[error(transparent)]
    AppJson(#[from] appjson::AppJsonError),
    #[error(transparent)]
    Checks(#[from] crate::model::checks::ChecksError),
    #[error(transparent)]
    Buildpack(#[from] buildpacks::BuildpackError),
    #[error(transparent)]
    Node(#[from] node::NodeError),
    #[error(transparent)]
    Confined(#[from] confined::ConfinedError),
    #[error(transparent)]
    Store(#[from] crate::image::StoreError),
    #[error(transparent)]
    Layer(#[from] crate::image::layer::LayerError),
    #[error(transparent)]
    Config(#[from] crate::state::config::ConfigError),
    #[error(transparent)]
    Apps(#[from] crate::state::apps::AppsError),
    #[error(transparent)]
    Control(#[from] crate::runtime::control::ControlError),
    #[error(transparent)]
    ContainerId(#[from] crate::runtime::InvalidContainerId),
    #[error("buildpack {0} is on this host: only an admin names those (buildpacks:set)")]
    LocalBuildpack(String),
    #[error(transparent)]
    Io(#[from] crate::state::PathIo),
    #[error(transparent)]
    Trigger(#[from] crate::state::triggers::TriggerError),
    #[error("cannot give the build a .git at {revision}: {why}")]
    GitDir { revision: String, why: String },
    #[error("cannot hand {0} to the app's user (chown failed)")]
    Chown(PathBuf),
    #[error("cannot copy the source from {0}")]
    CopySource(PathBuf),
    #[error("the build dir {0} is not a directory of the pushed tree (builder:set APP build-dir)")]
    BuildDir(String),
    #[error(transparent)]
    Settings(#[from] crate::state::settings::SettingsError),
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + use<> {
    let path = path.to_owned();
    move |source| BuildError::Io(crate::state::PathIo { action, path, source })
}

/// Labels on an app image: the stack's name, its run image's digest, and
/// how many of the image's layers (bottom first) are that run image's.
pub const STACK_NAME_LABEL: &str = "io.berth.stack-name";
pub const STACK_LABEL: &str = "io.berth.stack";
pub const STACK_LAYERS_LABEL: &str = "io.berth.stack-layers";

/// The image label holding app.json's formation, health checks and scripts.
pub const RELEASE_SPEC_LABEL: &str = "io.berth.release-spec";

/// `RELEASE_SPEC_LABEL`'s content.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ReleaseSpec {
    pub formation: BTreeMap<String, u32>,
    pub healthchecks: BTreeMap<String, Vec<crate::model::checks::Check>>,
    pub scripts: crate::model::scripts::Scripts,
    pub cron: Vec<crate::model::cron::CronJob>,
    pub addons: Vec<appjson::Addon>,
}

/// What a successful build made.
#[derive(Debug)]
pub struct Built {
    pub id: u64,
    pub image: ImageRef,
    pub process_types: BTreeMap<String, String>,
    /// The initial scale `app.json` asks for.
    pub formation: BTreeMap<String, u32>,
    /// Health checks from app.json, or the CHECKS file for web.
    pub healthchecks: BTreeMap<String, Vec<crate::model::checks::Check>>,
    /// app.json's predeploy and postdeploy scripts.
    pub scripts: crate::model::scripts::Scripts,
    /// app.json's scheduled jobs.
    pub cron: Vec<crate::model::cron::CronJob>,
    /// The config vars app.json declares, with their defaults.
    pub env: BTreeMap<crate::state::config::ConfigKey, appjson::EnvDefault>,
    /// The add-ons app.json asks for.
    pub addons: Vec<appjson::Addon>,
}

/// Output to the user and into the build's log file.
struct Output<'a> {
    log: fs::File,
    say: &'a mut dyn FnMut(&str),
}

impl Output<'_> {
    fn line(&mut self, text: &str) {
        let _ = writeln!(self.log, "{text}");
        (self.say)(text);
    }
}

/// Builds `source` for `app`. The caller holds the app's lock.
pub fn build(root: &Path, app: &App, source: &Path, revision: Option<&str>, say: &mut dyn FnMut(&str)) -> Result<Built, BuildError> {
    let id = records::next_id(&app.dir);
    let container = format!("build-{}-{id}", app.name);
    let mut record = BuildRecord {
        id,
        status: BuildStatus::Running,
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_at: None,
        revision: revision.map(str::to_owned),
        image: None,
        image_digest: None,
        buildpacks: Vec::new(),
        error: None,
        phases: Vec::new(),
        container: container.clone(),
        pid: Some(std::process::id()),
    };
    records::save(&app.dir, &record).map_err(io_err("record", &app.dir))?;
    let log_path = records::log_path(&app.dir, id);
    let log = fs::File::create(&log_path).map_err(io_err("create", &log_path))?;
    let mut out = Output { log, say };
    let work = root.join("tmp").join(format!("build-{}-{id}", app.name));
    let result = run_build(root, app, source, &work, &container, &mut record, &mut out);
    handover::take_back(&app.dir.join("cache"), &work.join("app"));
    let _ = make_removable(&work);
    let _ = fs::remove_dir_all(&work);
    record.finished_at = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    match &result {
        Ok(built) => {
            record.status = BuildStatus::Succeeded;
            record.image = Some(built.image.to_string());
            crate::state::events::emit(root, "post-build", &[app.name.as_str(), &built.image.to_string()]);
        }
        Err(e) => {
            record.status = BuildStatus::Failed;
            record.error = Some(e.to_string());
            out.line(&format!(" !     Build failed: {e}"));
        }
    }
    let _ = records::save(&app.dir, &record);
    records::prune(&app.dir, settings::retention(root, &app.dir));
    result
}

/// The build tree may hold read-only directories (pip, npm): make them
/// writable so the work dir can be removed.
fn make_removable(dir: &Path) -> std::io::Result<()> {
    Command::new("chmod").args(["-R", "u+w"]).arg(dir).status().map(|_| ())
}

/// Hands `path` to the app's own uid (without following symlinks: `chown -R` is physical).
fn chown_app_user(path: &Path, uid: u32) -> Result<(), BuildError> {
    let owner = format!("{uid}:{uid}");
    let status = Command::new("chown").args(["-R", "--no-dereference", &owner]).arg(path).status().map_err(io_err("chown", path))?;
    if status.success() { Ok(()) } else { Err(BuildError::Chown(path.to_owned())) }
}

/// Which buildpacks, and whether they were named (explicit) or are to be detected.
fn choose_buildpacks(app: &App, vars: &ConfigVars, app_dir: &Path) -> Result<(Vec<Source>, bool), BuildError> {
    if let Ok(text) = fs::read_to_string(settings::buildpacks_file(&app.dir)) {
        let list = buildpacks::parse_list(&text)?;
        if !list.is_empty() {
            return Ok((list, true));
        }
    }
    // BUILDPACK_URL and .buildpacks come from whoever may push or set config:
    // remote buildpacks only, never a path on the host.
    let pushed = |list: Vec<Source>| match list.iter().find(|s| s.is_local()) {
        Some(local) => Err(BuildError::LocalBuildpack(local.label())),
        None => Ok((list, true)),
    };
    let url_key = crate::state::config::ConfigKey::parse(std::ffi::OsStr::new("BUILDPACK_URL")).expect("valid key");
    if let Some(url) = vars.0.get(&url_key) {
        return pushed(vec![Source::parse(&String::from_utf8_lossy(url))?]);
    }
    if let Some(bytes) = confined::read(app_dir, ".buildpacks", 64 * 1024)? {
        let list = buildpacks::parse_list(&String::from_utf8_lossy(&bytes))?;
        if !list.is_empty() {
            return pushed(list);
        }
    }
    Ok((BUILT_IN.iter().map(|n| Source::BuiltIn((*n).to_owned())).collect(), false))
}

/// The most berth reads of any one file a build leaves (Procfile, app.json, release.yml, ...).
const OUTPUT_CAP: u64 = 1 << 20;

/// The stack's two images, as a build uses them.
struct Stack {
    name: String,
    /// `$STACK` in builds: what the run image's environment says (Heroku's
    /// images say `heroku-24`), else the stack's name.
    id: String,
    store: Store,
    build_ref: ImageRef,
    build: crate::image::store::Image,
    run: crate::image::store::Image,
    /// Every stack's Python on this host, for the builds' version check.
    pythons: String,
}

impl Stack {
    /// The stack `name` (buildpacks:set-property stack), else the default.
    fn open(root: &Path, name: Option<&str>) -> Result<Stack, BuildError> {
        let store = Store::open(root)?;
        let name = crate::stack::StackName::parse(name.unwrap_or(DEFAULT_STACK)).map_err(|e| BuildError::NoStack(e.to_string()))?;
        let (build_ref, run_ref) = (name.build_image(), name.run_image());
        let build = store.image(&build_ref).map_err(|e| BuildError::NoStack(e.to_string()))?;
        let run = store.image(&run_ref).map_err(|e| BuildError::NoStack(e.to_string()))?;
        let id = stack_id(&run).unwrap_or_else(|| name.to_string());
        let pythons = stack_pythons(&store);
        Ok(Stack { name: name.to_string(), id, store, build_ref, build, run, pythons })
    }
}

/// `NAME=VERSION` of each stack's Python on this host, as its stacks:build
/// recorded it (for the one line a misfit `.python-version` gets).
fn stack_pythons(store: &Store) -> String {
    let names = crate::stack::list(store).unwrap_or_default();
    let python = |name: &crate::stack::StackName| {
        let image = store.image(&name.run_image()).ok()?;
        let version = image.config.config().as_ref()?.labels().as_ref()?.get(crate::stack::build::PYTHON_LABEL)?.clone();
        Some(format!("{name}={version}"))
    };
    names.iter().filter_map(python).collect::<Vec<_>>().join(" ")
}

/// The `STACK` a stack image declares in its environment, when it is a
/// plain name (it reaches buildpacks' case statements).
fn stack_id(image: &crate::image::store::Image) -> Option<String> {
    let env = image.config.config().as_ref()?.env().as_ref()?;
    let id = env.iter().find_map(|e| e.strip_prefix("STACK="))?;
    crate::stack::StackName::parse(id).ok().map(|n| n.to_string())
}

/// The directories a build works in, all on the host under `work` but the
/// cache, which is the app's and outlives the build.
struct WorkTree {
    app: PathBuf,
    env: PathBuf,
    driver: PathBuf,
    out: PathBuf,
    cache: PathBuf,
    uid: u32,
}

/// What the build left that the release needs.
struct Outputs {
    process_types: BTreeMap<String, String>,
    config_vars: BTreeMap<String, String>,
    formation: BTreeMap<String, u32>,
    healthchecks: BTreeMap<String, Vec<crate::model::checks::Check>>,
    scripts: crate::model::scripts::Scripts,
    cron: Vec<crate::model::cron::CronJob>,
    env: BTreeMap<crate::state::config::ConfigKey, appjson::EnvDefault>,
    addons: Vec<appjson::Addon>,
    dependency_paths: Vec<PathBuf>,
}

fn run_build(
    root: &Path,
    app: &App,
    source: &Path,
    work: &Path,
    container: &str,
    record: &mut BuildRecord,
    out: &mut Output,
) -> Result<Built, BuildError> {
    let started = Instant::now();
    crate::state::events::gate(root, "pre-build", &[app.name.as_str()], &mut |line| out.line(&format!("-----> {line}")))?;
    let meta = crate::state::apps::meta_in_effect(app, &crate::state::settings::Settings::load(root)?)?;
    let stack = Stack::open(root, meta.stack.as_deref())?;
    cache_for_stack(app, &stack.name, out)?;
    let vars = ConfigVars::load(&app.env_file())?;
    let layout = Layout::of(root, app)?;
    let git = meta.git;
    let tree = prepare(root, app, &layout.source(source)?, work, &vars)?;
    if let Some(revision) = record.revision.as_deref().filter(|_| git.keep_git_dir == Some(true)) {
        gitdir::attach(&app.repo_dir(), revision, &tree.app)?;
        chown_app_user(&tree.app, tree.uid)?;
    }
    let (sources, explicit) = choose_buildpacks(app, &vars, &tree.app)?;
    let shared = shared::provide(root, app, &stack, &tree, explicit, record, out)?;
    let mut provided = Provided { buildpacks: sources, explicit, ..Provided::default() };
    if shared.is_some() {
        provided.env.push("BERTH_DEPENDENCIES=shared".to_owned());
    }
    if (!explicit || provided.buildpacks.contains(&Source::BuiltIn("nodejs".to_owned())))
        && let Some(node) = node::provide(root, &tree.app, &mut |line| out.line(&format!("-----> {line}")))?
    {
        provided.mounts.push(BindMount { source: node.tarball, destination: "/berth/node.tgz".into(), readonly: true });
        provided.env.push(format!("BERTH_NODE_VERSION={}", node.version));
    }
    let mut phases = sandbox(root, app, &stack, &tree, git.rev_var(), container, record, provided, out)?;
    let outputs = read_outputs(&tree, &layout, record)?;
    write_launcher(&tree.app, &outputs.process_types)?;
    out.line("-----> Writing image layers");
    let layers_started = Instant::now();
    let _writing = stack.store.writing()?;
    let shared_dir = shared.as_ref().map(|entry| entry.dir.as_path());
    let (dependency_layer, app_layer) = write_layers(app, &stack.store, &tree, &outputs.dependency_paths, shared_dir, out)?;
    phases.push(("layers".to_owned(), layers_started.elapsed().as_secs_f64()));
    let image = compose(app, &stack, &outputs, [&dependency_layer, &app_layer], record)?;
    phases.push(("total".to_owned(), started.elapsed().as_secs_f64()));
    let summary: Vec<String> = phases.iter().map(|(name, secs)| format!("{name} {secs:.2} s")).collect();
    out.line(&format!("-----> Build phases: {}", summary.join(", ")));
    out.line(&format!(
        "-----> Dependency layer {} ({} bytes), app layer {} ({} bytes)",
        dependency_layer.digest, dependency_layer.size, app_layer.digest, app_layer.size
    ));
    out.line(&format!("=====> Built {image}"));
    record.phases = phases;
    let Outputs { process_types, formation, healthchecks, scripts, cron, env, addons, .. } = outputs;
    Ok(Built { id: record.id, image, process_types, formation, healthchecks, scripts, cron, env, addons })
}

/// A build cache made on another stack holds binaries for other
/// libraries: a stack change starts the cache afresh. Caches from before
/// stacks could be chosen were made on the default one.
fn cache_for_stack(app: &App, stack: &str, out: &mut Output) -> Result<(), BuildError> {
    let marker = app.dir.join("cache-stack");
    let before = fs::read_to_string(&marker).unwrap_or_else(|_| DEFAULT_STACK.to_owned());
    if before.trim() == stack {
        return Ok(());
    }
    let cache = app.dir.join("cache");
    if cache.exists() {
        out.line(&format!("-----> The stack changed from {} to {stack}: starting with an empty build cache", before.trim()));
        fs::remove_dir_all(&cache).map_err(io_err("empty", &cache))?;
    }
    crate::state::atomic::write_atomic(&marker, stack.as_bytes()).map_err(|e| crate::state::PathIo {
        action: "write",
        path: e.path,
        source: e.source,
    })?;
    Ok(())
}

/// The work tree: a copy of the source and the cached trees handed over,
/// owned by the app's uid; the config vars as files; the driver; an output dir.
fn prepare(root: &Path, app: &App, source: &Path, work: &Path, vars: &ConfigVars) -> Result<WorkTree, BuildError> {
    let uid = crate::state::apps::uid(root, app)?;
    let tree = WorkTree {
        app: work.join("app"),
        env: work.join("env"),
        driver: work.join("driver"),
        out: work.join("out"),
        cache: app.dir.join("cache"),
        uid,
    };
    for dir in [&tree.app, &tree.env, &tree.driver, &tree.out, &tree.cache] {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    }
    let mut source_arg = source.as_os_str().to_owned();
    source_arg.push("/.");
    let copied = Command::new("cp").arg("-a").arg(&source_arg).arg(&tree.app).status().map_err(io_err("copy", source))?;
    if !copied.success() {
        return Err(BuildError::CopySource(source.to_owned()));
    }
    let _ = fs::remove_dir_all(tree.app.join(".git"));
    for (key, value) in &vars.0 {
        fs::write(tree.env.join(key.as_str()), value).map_err(io_err("write", &tree.env))?;
    }
    fs::write(tree.driver.join("driver.sh"), driver::SCRIPT).map_err(io_err("write", &tree.driver))?;
    handover::hand_over(&tree.cache, &tree.app);
    for dir in [&tree.app, &tree.out, &tree.cache] {
        chown_app_user(dir, uid)?;
    }
    Ok(tree)
}

/// The sandbox's mounts: the work tree and each buildpack read only. Returns them with the driver's arguments.
fn sandbox_mounts(
    root: &Path,
    tree: &WorkTree,
    sources: &[Source],
    explicit: bool,
    out: &mut Output,
) -> Result<(Vec<BindMount>, Vec<String>), BuildError> {
    let mut mounts = vec![
        BindMount { source: tree.app.clone(), destination: "/app".into(), readonly: false },
        BindMount { source: tree.cache.clone(), destination: "/cache".into(), readonly: false },
        BindMount { source: tree.env.clone(), destination: "/env".into(), readonly: true },
        BindMount { source: tree.driver.clone(), destination: "/berth/driver".into(), readonly: true },
        BindMount { source: tree.out.clone(), destination: "/berth/out".into(), readonly: false },
    ];
    let mut args =
        vec!["/bin/bash".to_owned(), "/berth/driver/driver.sh".to_owned(), if explicit { "explicit" } else { "detect" }.to_owned()];
    for (n, source) in sources.iter().enumerate() {
        let dir = source.resolve(root, &mut |line| out.line(&format!("-----> {line}")))?;
        let destination =
            format!("/buildpacks/{}-{}", n + 1, dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default());
        mounts.push(BindMount { source: dir, destination: destination.clone(), readonly: true });
        args.push(destination);
    }
    Ok((mounts, args))
}

/// What berth prepared for the build beyond its tree: the buildpacks
/// (chosen once), the shared dependencies, a Node.js runtime.
#[derive(Default)]
struct Provided {
    buildpacks: Vec<Source>,
    explicit: bool,
    mounts: Vec<BindMount>,
    env: Vec<String>,
}

/// One run in a build sandbox: what it mounts and runs, as whom, with
/// which variables beyond the stack's.
struct Job {
    container: String,
    mounts: Vec<BindMount>,
    args: Vec<String>,
    env: Vec<String>,
    uid: u32,
}

/// The sandbox container for `job`: the stack's build image, read only,
/// under the app's build limits and network.
fn sandbox_config(
    app: &App,
    stack: &Stack,
    job: Job,
    settings: &BuildSettings,
    record: &BuildRecord,
) -> Result<ContainerConfig, BuildError> {
    let defaults = stack.build.config.config().clone().unwrap_or_default();
    let mut env = defaults.env().clone().unwrap_or_default();
    env.retain(|e| !e.starts_with("HOME=") && !e.starts_with("STACK="));
    env.extend(["HOME=/app".to_owned(), format!("STACK={}", stack.id), "CI=true".to_owned()]);
    for var in ["SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO", "CURL_CA_BUNDLE"] {
        env.push(format!("{var}={HOST_CA_BUNDLE}"));
    }
    env.push(format!("BERTH_STACK_PYTHONS={}", stack.pythons));
    env.extend(job.env);
    let mut mounts = job.mounts;
    // Builds trust the certificate authorities this host trusts: behind a
    // TLS-inspecting proxy (common in companies) the stack's own bundle
    // would refuse every package registry.
    let host_bundle = Path::new(HOST_CA_BUNDLE);
    if host_bundle.is_file() {
        mounts.push(BindMount { source: host_bundle.to_owned(), destination: HOST_CA_BUNDLE.into(), readonly: true });
    }
    Ok(ContainerConfig {
        id: ContainerId::parse(&job.container)?,
        name: job.container,
        image: stack.build_ref.to_string(),
        image_digest: stack.build.manifest_digest.to_string(),
        args: job.args,
        env,
        cwd: "/app".into(),
        uid: job.uid,
        gid: job.uid,
        network: settings.network,
        limits: Limits { memory_bytes: Some(settings.memory_bytes), pids: Some(settings.pids), ..Limits::default() },
        restart: RestartPolicy::No,
        stop_timeout_secs: 1,
        labels: BTreeMap::from([("io.berth.app".to_owned(), app.name.to_string()), ("io.berth.build".to_owned(), record.id.to_string())]),
        created_at: record.started_at.clone(),
        mounts,
        readonly_root: true,
        terminal: false,
        log_max_bytes: None,
        isolated: false,
    })
}

/// Runs `config` within the build's time limit, each line of output
/// handed to `on_line`; returns the exit code.
fn run_sandbox(root: &Path, config: &ContainerConfig, settings: &BuildSettings, on_line: &mut dyn FnMut(&str)) -> Result<i32, BuildError> {
    let finished = oneshot::run(root, config, Some(Duration::from_secs(settings.timeout_secs)), &mut |_stream, line| {
        on_line(&String::from_utf8_lossy(line));
    })?;
    if finished.timed_out {
        return Err(BuildError::TimedOut(settings.timeout_secs));
    }
    Ok(finished.exit_code)
}

/// Runs the driver in the sandbox, its output to the user and the log;
/// returns how long each phase took.
#[allow(clippy::too_many_arguments)]
fn sandbox(
    root: &Path,
    app: &App,
    stack: &Stack,
    tree: &WorkTree,
    rev_var: Option<&str>,
    container: &str,
    record: &BuildRecord,
    provided: Provided,
    out: &mut Output,
) -> Result<Vec<(String, f64)>, BuildError> {
    let settings = BuildSettings::load(&app.dir);
    let (mut mounts, args) = sandbox_mounts(root, tree, &provided.buildpacks, provided.explicit, out)?;
    mounts.extend(provided.mounts);
    let mut env = driver::driver_env();
    env.extend(provided.env);
    // The pushed commit, as Heroku (SOURCE_VERSION) and Dokku (GIT_REV, or
    // the app's rev-env-var) name it.
    if let Some(rev) = record.revision.as_deref().filter(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_hexdigit())) {
        env.push(format!("SOURCE_VERSION={rev}"));
        env.extend(rev_var.map(|name| format!("{name}={rev}")));
    }
    let job = Job { container: container.to_owned(), mounts, args, env, uid: tree.uid };
    let config = sandbox_config(app, stack, job, &settings, record)?;
    out.line(&format!("-----> Building {} (build {}) with the {} stack", app.name, record.id, stack.name));
    let mut progress = driver::Progress::new();
    let exit_code = run_sandbox(root, &config, &settings, &mut |text| match driver::Mark::parse(text) {
        Some(mark) => progress.on(mark),
        // stdout and stderr alike go to the pushing client and the log.
        None => out.line(text),
    })?;
    progress.outcome(exit_code)?;
    Ok(progress.phases)
}

/// The config vars the source's app.json declares, read before a build so
/// that build already sees their defaults.
pub fn declared_env(
    root: &Path,
    app: &App,
    source: &Path,
) -> Result<BTreeMap<crate::state::config::ConfigKey, appjson::EnvDefault>, BuildError> {
    let layout = Layout::of(root, app)?;
    Ok(appjson::AppJson::parse(confined::read(&layout.source(source)?, layout.app_json(), OUTPUT_CAP)?.as_deref())?.env()?)
}

/// What the build wrote, read as plain capped files beneath their
/// directories: buildpack names, release.yml, Procfile, app.json, CHECKS,
/// and the dependency paths buildpacks named.
fn read_outputs(tree: &WorkTree, layout: &Layout, record: &mut BuildRecord) -> Result<Outputs, BuildError> {
    let text = |base: &Path, name: &str| -> Result<String, BuildError> {
        Ok(confined::read(base, name, OUTPUT_CAP)?.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default())
    };
    record.buildpacks = text(&tree.out, "buildpacks")?.lines().map(str::to_owned).collect();
    // Process types: the Procfile wins over the buildpack's defaults.
    let release = release::parse(&text(&tree.out, "release.yml")?);
    let mut process_types = release.default_process_types.clone();
    if let Some(bytes) = confined::read(&tree.app, "Procfile", OUTPUT_CAP)? {
        process_types.extend(procfile::parse(&bytes)?);
    }
    process_types.retain(|name, _| procfile::is_process_name(name));
    if process_types.is_empty() {
        return Err(BuildError::NoProcesses);
    }
    let app_json = appjson::AppJson::parse(confined::read(&tree.app, layout.app_json(), OUTPUT_CAP)?.as_deref())?;
    let mut healthchecks = app_json.healthchecks()?;
    if !healthchecks.contains_key("web")
        && let Some(bytes) = confined::read(&tree.app, "CHECKS", OUTPUT_CAP)?
    {
        healthchecks.insert("web".into(), crate::model::checks::from_checks_file(&String::from_utf8_lossy(&bytes))?);
    }
    let mut dependency_paths: Vec<PathBuf> = text(&tree.out, "layers")?
        .lines()
        .map(|l| l.trim().trim_start_matches("/app/").trim_matches('/'))
        .filter(|l| !l.is_empty() && !l.split('/').any(|p| p == ".." || p == "."))
        .map(PathBuf::from)
        .collect();
    dependency_paths.extend(DEFAULT_DEPENDENCY_PATHS.iter().map(PathBuf::from));
    dependency_paths.retain(|p| tree.app.join(p).exists());
    dependency_paths.sort();
    dependency_paths.dedup();
    Ok(Outputs {
        process_types,
        config_vars: release.config_vars.clone(),
        formation: app_json.formation()?,
        scripts: app_json.scripts(),
        cron: app_json.cron()?,
        env: app_json.env()?,
        addons: app_json.addons()?,
        healthchecks,
        dependency_paths,
    })
}

/// `/app/.berth`: the process table and the launcher every process starts through.
fn write_launcher(app_dir: &Path, process_types: &BTreeMap<String, String>) -> Result<(), BuildError> {
    let berth_dir = app_dir.join(".berth");
    let _ = fs::remove_dir_all(&berth_dir);
    fs::create_dir_all(&berth_dir).map_err(io_err("create", &berth_dir))?;
    let processes: String = process_types.iter().map(|(n, c)| format!("{n}\t{}\n", c.replace('\n', " "))).collect();
    fs::write(berth_dir.join("processes"), processes).map_err(io_err("write", &berth_dir))?;
    fs::write(berth_dir.join("launcher"), LAUNCHER).map_err(io_err("write", &berth_dir))?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(berth_dir.join("launcher"), fs::Permissions::from_mode(0o755)).map_err(io_err("chmod", &berth_dir))
}

/// The dependency layer (reused when its inputs are unchanged: the shared
/// install's, else this app's last) and the app layer.
fn write_layers(
    app: &App,
    store: &Store,
    tree: &WorkTree,
    dependency_paths: &[PathBuf],
    shared: Option<&Path>,
    out: &mut Output,
) -> Result<(LayerInfo, LayerInfo), BuildError> {
    let in_dependency = |rel: &Path| dependency_paths.iter().any(|d| rel.starts_with(d));
    let above_dependency = |rel: &Path| dependency_paths.iter().any(|d| d.starts_with(rel) && d != rel);
    let options = LayerOptions::from_env();
    let fingerprint = reuse::fingerprint(&tree.app, dependency_paths);
    let shared_layer = shared.and_then(|dir| reuse::lookup(dir, store, &fingerprint));
    let dependency_layer = match shared_layer.clone().or_else(|| reuse::lookup(&app.dir, store, &fingerprint)) {
        Some(layer) if shared_layer.is_some() => {
            out.line("-----> Dependencies as other apps on this host have them: reusing their layer");
            layer
        }
        Some(layer) => {
            out.line("-----> Dependencies unchanged: reusing their layer");
            layer
        }
        None => {
            let layer =
                layer::write_subtree(store, &tree.app, Path::new("app"), &|rel| in_dependency(rel) || above_dependency(rel), options)?;
            reuse::remember(&app.dir, &fingerprint, &layer);
            layer
        }
    };
    let app_layer = layer::write_subtree(store, &tree.app, Path::new("app"), &|rel| !in_dependency(rel), options)?;
    Ok((dependency_layer, app_layer))
}

/// The app image: the stack's run image, then the two layers, with labels
/// for the process types and what app.json asks of a release; tagged
/// `berth/app-APP:bN` and `:latest`.
fn compose(app: &App, stack: &Stack, outputs: &Outputs, added: [&LayerInfo; 2], record: &mut BuildRecord) -> Result<ImageRef, BuildError> {
    let mut config = stack.run.config.clone();
    let mut rootfs = config.rootfs().clone();
    let mut diff_ids = rootfs.diff_ids().clone();
    diff_ids.extend(added.iter().map(|l| l.diff_id.to_string()));
    rootfs.set_diff_ids(diff_ids);
    config.set_rootfs(rootfs);
    let mut inner = config.config().clone().unwrap_or_default();
    let mut env = inner.env().clone().unwrap_or_default();
    env.extend(outputs.config_vars.iter().map(|(k, v)| format!("{k}={v}")));
    inner.set_env(Some(env));
    inner.set_working_dir(Some("/app".into()));
    inner.set_cmd(Some(vec!["/app/.berth/launcher".to_owned(), "web".to_owned()]));
    inner.set_labels(Some(labels(app, stack, outputs, record, inner.labels().clone().unwrap_or_default())));
    config.set_config(Some(inner));
    let mut history = config.history().clone().unwrap_or_default();
    for what in ["dependencies", "app"] {
        history.push(
            serde_json::from_value(serde_json::json!({"created_by": format!("berth build {} {}: {what}", app.name, record.id)}))
                .expect("history"),
        );
    }
    config.set_history(Some(history));
    let mut layers = stack.run.layers()?;
    layers.extend(added.into_iter().cloned());
    let image = ImageRef::new(&format!("berth/app-{}", app.name), &format!("b{}", record.id)).expect("valid tag");
    let manifest = stack.store.write_image(&image, &layers, &config)?;
    stack.store.set_tag(&ImageRef::new(&format!("berth/app-{}", app.name), "latest").expect("valid"), &manifest)?;
    record.image_digest = Some(manifest.digest().to_string());
    Ok(image)
}

/// The image's labels: what a deploy from this image alone (git:from-image,
/// bundle:load) needs to keep its process types, scale, checks and scripts.
fn labels(
    app: &App,
    stack: &Stack,
    outputs: &Outputs,
    record: &BuildRecord,
    mut labels: std::collections::HashMap<String, String>,
) -> std::collections::HashMap<String, String> {
    labels.insert("io.berth.app".into(), app.name.to_string());
    labels.insert("io.berth.process-types".into(), serde_json::to_string(&outputs.process_types).expect("map serialises"));
    let spec = serde_json::json!({
        "formation": outputs.formation, "healthchecks": outputs.healthchecks, "scripts": outputs.scripts, "cron": outputs.cron,
        "addons": outputs.addons
    });
    labels.insert(RELEASE_SPEC_LABEL.into(), spec.to_string());
    labels.insert("io.berth.buildpacks".into(), record.buildpacks.join(","));
    labels.insert(STACK_LABEL.into(), stack.run.manifest_digest.to_string());
    labels.insert(STACK_NAME_LABEL.into(), stack.name.clone());
    labels.insert(STACK_LAYERS_LABEL.into(), stack.run.manifest.layers().len().to_string());
    labels.insert("io.berth.build-time".into(), record.started_at.clone());
    if let Some(rev) = &record.revision {
        labels.insert("io.berth.git-revision".into(), rev.clone());
    }
    labels
}
