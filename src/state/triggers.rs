//! Plugin triggers (docs/PLUGINS.md): at each moment the event log
//! records, every enabled plugin with an executable of the trigger's name
//! runs it, in plugin name order, with the trigger's arguments, a clean
//! environment (BERTH_ROOT, PATH with this berth first, PLUGIN_NAME,
//! PLUGIN_DIR, TRIGGER, APP) and a timeout. A `pre-*` trigger that exits
//! non-zero stops what it guards with its message; others only log.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::plugins::{self, Plugin, PluginName};

/// What berth keeps of a trigger's stdout and stderr.
const OUTPUT_CAP: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("plugin {plugin} stopped this in {trigger}: {message}")]
    Refused { plugin: PluginName, trigger: String, message: String },
    #[error("plugin {plugin}'s {trigger} ran past {secs} s and was stopped")]
    TimedOut { plugin: PluginName, trigger: String, secs: u64 },
    #[error("cannot run plugin {plugin}'s {trigger}: {source}")]
    Spawn {
        plugin: PluginName,
        trigger: String,
        #[source]
        source: std::io::Error,
    },
}

/// One plugin's run of a trigger.
pub struct Ran {
    pub plugin: PluginName,
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Ran {
    /// Its message: the first line of stderr, else of stdout, shortened.
    fn message(&self) -> String {
        let pick = if self.stderr.iter().any(|b| !b.is_ascii_whitespace()) { &self.stderr } else { &self.stdout };
        let text = String::from_utf8_lossy(pick);
        let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no message");
        let line: String = line.chars().filter(|c| !c.is_control()).take(300).collect();
        if line.is_empty() { format!("exit code {}", self.code) } else { line }
    }
}

/// How long `trigger` may run. `dependencies` installs software (a
/// service's image is built then): at least an hour.
fn timeout(root: &Path, trigger: &str) -> Duration {
    let limit = Duration::from_secs(super::settings::Settings::load(root).map(|s| s.plugins.trigger_timeout_secs).unwrap_or(60));
    if trigger == "dependencies" { limit.max(Duration::from_secs(3600)) } else { limit }
}

/// Runs `trigger` of every enabled plugin that has it, in name order.
pub fn run_all(root: &Path, trigger: &str, args: &[&str]) -> Vec<Result<Ran, TriggerError>> {
    let limit = timeout(root, trigger);
    plugins::enabled(root)
        .into_iter()
        .filter_map(|plugin| plugin.executable(trigger).map(|exe| run_one(root, &plugin, &exe, trigger, args, limit)))
        .collect()
}

fn run_one(root: &Path, plugin: &Plugin, exe: &Path, trigger: &str, args: &[&str], limit: Duration) -> Result<Ran, TriggerError> {
    let spawn_err = |source| TriggerError::Spawn { plugin: plugin.name.clone(), trigger: trigger.to_owned(), source };
    let mut child = plugin_command(root, plugin, exe)
        .args(args)
        .env("TRIGGER", trigger)
        .env("APP", args.first().copied().unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(spawn_err)? {
            break status;
        }
        if started.elapsed() > limit {
            // The trigger's whole process group: what it started goes too.
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            return Err(TriggerError::TimedOut { plugin: plugin.name.clone(), trigger: trigger.to_owned(), secs: limit.as_secs() });
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Ran { plugin: plugin.name.clone(), code: status.code().unwrap_or(1), stdout: join(out), stderr: join(err) })
}

/// A plugin executable with berth's clean environment, in its own
/// process group (so a timeout can stop all of it).
pub fn plugin_command(root: &Path, plugin: &Plugin, exe: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let exe_dir = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)).unwrap_or_default();
    let mut command = Command::new(exe);
    command
        .env_clear()
        .env("PATH", format!("{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", exe_dir.display()))
        .env("BERTH_ROOT", root)
        .env("PLUGIN_NAME", plugin.name.as_str())
        .env("PLUGIN_DIR", &plugin.dir)
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .current_dir(&plugin.dir)
        .process_group(0);
    command
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(pipe) = pipe {
            let mut pipe = pipe.take(OUTPUT_CAP);
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

fn join(handle: std::thread::JoinHandle<Vec<u8>>) -> Vec<u8> {
    handle.join().unwrap_or_default()
}

/// A guarding trigger (`pre-build`, `pre-deploy`, ...): each plugin's
/// output goes to `say`; the first that fails stops what it guards.
pub fn check(root: &Path, trigger: &str, args: &[&str], say: &mut dyn FnMut(&str)) -> Result<(), TriggerError> {
    for ran in run_all(root, trigger, args) {
        let ran = ran?;
        for line in String::from_utf8_lossy(&ran.stdout).lines() {
            say(line);
        }
        if ran.code != 0 {
            return Err(TriggerError::Refused { plugin: ran.plugin.clone(), trigger: trigger.to_owned(), message: ran.message() });
        }
    }
    Ok(())
}

/// A trigger that reports what happened: failures are logged, never fatal.
pub fn notify(root: &Path, trigger: &str, args: &[&str]) {
    for ran in run_all(root, trigger, args) {
        match ran {
            Ok(ran) if ran.code == 0 => {}
            Ok(ran) => tracing::warn!(plugin = %ran.plugin, trigger, message = ran.message(), "trigger failed"),
            Err(e) => tracing::warn!(trigger, error = %e, "trigger failed"),
        }
    }
}

/// `deploy-env APP`: the `KEY=VALUE` lines plugins print, for the app's
/// containers only (never stored in its config). Lines that are not a
/// valid assignment are skipped.
pub fn deploy_env(root: &Path, app: &str) -> Result<Vec<String>, TriggerError> {
    let mut env = Vec::new();
    for ran in run_all(root, "deploy-env", &[app]) {
        let ran = ran?;
        if ran.code != 0 {
            return Err(TriggerError::Refused { plugin: ran.plugin.clone(), trigger: "deploy-env".into(), message: ran.message() });
        }
        for line in String::from_utf8_lossy(&ran.stdout).lines() {
            // No NUL can reach an environment; a bad line is skipped, not echoed.
            let Some((key, _)) = line.split_once('=').filter(|_| !line.contains('\0')) else { continue };
            if super::config::ConfigKey::parse(std::ffi::OsStr::new(key)).is_ok() {
                env.push(line.to_owned());
            }
        }
    }
    Ok(env)
}
