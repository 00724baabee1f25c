//! `plugin:*`: installing, listing, switching and running plugins
//! (docs/PLUGINS.md), and running a plugin's own `NAME:VERB` commands.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{Context, bail};

use super::{Args, Command, Ctx};
use crate::state::plugins::{self, Manifest, Plugin, PluginCommand, PluginName, Record};
use crate::state::{apps, triggers};

pub const COMMANDS: &[Command] = &[
    Command {
        name: "plugin:install",
        usage: "SOURCE [--name NAME]",
        about: "Install a plugin from a directory, a .tar.gz (path or URL) or a git URL[#ref]",
        switches: &[],
        options: &["--name"],
        run: install,
    },
    Command {
        name: "plugin:list",
        usage: "",
        about: "The installed plugins, their versions and state",
        switches: &[],
        options: &[],
        run: list,
    },
    Command {
        name: "plugin:installed",
        usage: "NAME",
        about: "Exit 0 if the plugin is installed, 1 if not",
        switches: &[],
        options: &[],
        run: installed,
    },
    Command {
        name: "plugin:install-dependencies",
        usage: "",
        about: "Run every enabled plugin's dependencies trigger (what it needs on the host)",
        switches: &[],
        options: &[],
        run: install_dependencies,
    },
    Command {
        name: "plugin:enable",
        usage: "NAME",
        about: "Run the plugin's triggers and commands again",
        switches: &[],
        options: &[],
        run: enable,
    },
    Command {
        name: "plugin:disable",
        usage: "NAME",
        about: "Keep the plugin installed but run none of its triggers or commands",
        switches: &[],
        options: &[],
        run: disable,
    },
    Command { name: "plugin:uninstall", usage: "NAME", about: "Remove the plugin", switches: &[], options: &[], run: uninstall },
    Command {
        name: "plugin:update",
        usage: "NAME",
        about: "Install the plugin again from where it came from",
        switches: &[],
        options: &[],
        run: update,
    },
    Command {
        name: "plugin:trigger",
        usage: "TRIGGER [ARGS...]",
        about: "Run a trigger of every enabled plugin now and show what each printed (for debugging)",
        switches: &[],
        options: &[],
        run: trigger,
    },
];

fn name_arg(args: &Args) -> anyhow::Result<PluginName> {
    args.expect(1, 1)?;
    Ok(PluginName::parse(&args.text(0).unwrap_or_default())?)
}

/// A built-in namespace (or help, version) is not a plugin's to take.
fn check_free(name: &PluginName) -> anyhow::Result<()> {
    let taken = super::all_commands().any(|c| c.name.split(':').next() == Some(name.as_str()))
        || ["help", "version", "shim", "events"].contains(&name.as_str());
    if taken {
        return Err(plugins::PluginError::Reserved(name.to_string()).into());
    }
    Ok(())
}

/// Fetches `source` into a new directory under `tmp`; returns the
/// directory holding plugin.toml.
fn fetch(source: &str, tmp: &Path) -> anyhow::Result<PathBuf> {
    let (location, reference) = match source.split_once('#') {
        Some((l, r)) => (l, Some(r)),
        None => (source, None),
    };
    let is_url = ["https://", "http://", "git://", "ssh://", "file://"].iter().any(|s| location.starts_with(s));
    let tarball = location.ends_with(".tar.gz") || location.ends_with(".tgz");
    let unpacked = tmp.join("src");
    if tarball {
        let bytes = if is_url { download(location)? } else { read_tarball(location)? };
        std::fs::create_dir_all(&unpacked)?;
        // The same safe unpack as git:from-archive: nothing lands outside.
        super::registry::unpack_source(&bytes, &unpacked, TARBALL_CAP * 4, 10_000)?;
        return Ok(single_dir(&unpacked)?);
    }
    if is_url || location.ends_with(".git") || Path::new(location).join(".git").exists() {
        if let Some(r) = reference {
            crate::git::sync::check_ref(r)?;
        }
        tool(Process::new("git").args(["clone", "--quiet", "--"]).arg(location).arg(&unpacked).env("GIT_TERMINAL_PROMPT", "0"))?;
        if let Some(r) = reference {
            tool(Process::new("git").arg("-C").arg(&unpacked).args(["checkout", "--quiet", r, "--"]))?;
        }
        let _ = std::fs::remove_dir_all(unpacked.join(".git"));
        return Ok(unpacked);
    }
    if !Path::new(location).is_absolute() || !Path::new(location).is_dir() {
        bail!("{source:?} is not a plugin source berth knows (an absolute directory, a .tar.gz, or a git URL[#ref])");
    }
    tool(Process::new("cp").args(["-a", "--no-target-directory", "--"]).arg(location).arg(&unpacked))?;
    Ok(unpacked)
}

/// The largest plugin tarball berth reads.
const TARBALL_CAP: u64 = 64 << 20;

fn download(url: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let response = ureq::get(url).call().with_context(|| format!("cannot fetch {url}"))?;
    response.into_reader().take(TARBALL_CAP + 1).read_to_end(&mut bytes).with_context(|| format!("cannot fetch {url}"))?;
    if bytes.len() as u64 > TARBALL_CAP {
        bail!("{url} is over 64 MiB: not a plugin");
    }
    Ok(bytes)
}

fn read_tarball(path: &str) -> anyhow::Result<Vec<u8>> {
    crate::state::read_capped(Path::new(path), TARBALL_CAP).with_context(|| format!("cannot read {path} (at most 64 MiB)"))
}

/// A tarball of one directory (as GitHub's) is that directory.
fn single_dir(dir: &Path) -> std::io::Result<PathBuf> {
    let entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    Ok(match &entries[..] {
        [only] if only.file_type()?.is_dir() && !dir.join("plugin.toml").exists() => only.path(),
        _ => dir.to_owned(),
    })
}

fn tool(command: &mut Process) -> anyhow::Result<()> {
    let out = command.output().with_context(|| format!("cannot run {:?}", command.get_program()))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        bail!("{} failed: {}", command.get_program().to_string_lossy(), said.lines().next().unwrap_or("no reason given").trim());
    }
    Ok(())
}

/// Fetches and checks a plugin into a temp directory; returns it with
/// its name and manifest. The caller moves it into place.
fn stage(ctx: &Ctx, source: &str, rename: Option<&str>) -> anyhow::Result<(tempfile::TempDir, PathBuf, PluginName, Manifest)> {
    std::fs::create_dir_all(ctx.root.join("tmp"))?;
    let tmp = tempfile::Builder::new().prefix("plugin-").tempdir_in(ctx.root.join("tmp"))?;
    let dir = fetch(source, tmp.path())?;
    let manifest = Manifest::load(&dir)?;
    let name = PluginName::parse(rename.unwrap_or(&manifest.name))?;
    check_free(&name)?;
    Ok((tmp, dir, name, manifest))
}

fn install(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(1, 1)?;
    let source = args.text(0).unwrap_or_default();
    let rename = args.option_text("--name");
    if let Some(name) = &rename {
        PluginName::parse(name)?;
    }
    let (_tmp, dir, name, manifest) = stage(ctx, &source, rename.as_deref())?;
    let mut records = plugins::records(&ctx.root)?;
    let target = plugins::plugins_dir(&ctx.root).join(name.as_str());
    if records.contains_key(&name) || target.exists() {
        return Err(plugins::PluginError::Installed(name.to_string()).into());
    }
    std::fs::create_dir_all(plugins::plugins_dir(&ctx.root))?;
    std::fs::rename(&dir, &target).with_context(|| format!("cannot move the plugin to {}", target.display()))?;
    records.insert(name.clone(), Record { source, disabled: false });
    plugins::write_records(&ctx.root, &records)?;
    println!("-----> Installed plugin {name} {}", manifest.version);
    Ok(())
}

fn update(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let name = name_arg(&args)?;
    let plugin = plugins::find(&ctx.root, &name)?;
    let (_tmp, dir, _, manifest) = stage(ctx, &plugin.record.source, Some(name.as_str()))?;
    // The old tree goes aside only once the new one is checked.
    let aside = ctx.root.join("tmp").join(format!("plugin-old-{name}-{}", std::process::id()));
    std::fs::rename(&plugin.dir, &aside)?;
    if let Err(e) = std::fs::rename(&dir, &plugin.dir) {
        std::fs::rename(&aside, &plugin.dir)?;
        return Err(e.into());
    }
    let _ = std::fs::remove_dir_all(&aside);
    println!("-----> Updated plugin {name} to {} from {}", manifest.version, plugin.record.source);
    Ok(())
}

fn list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    for plugin in plugins::installed(&ctx.root)? {
        let state = if plugin.record.disabled { "disabled" } else { "enabled" };
        println!("  {:<20} {:<10} {state:<9} {}", plugin.name, plugin.manifest.version, plugin.manifest.description);
    }
    Ok(())
}

fn installed(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let name = name_arg(&args)?;
    plugins::find(&ctx.root, &name)?;
    println!("plugin {name} is installed");
    Ok(())
}

/// Dokku's `dependencies` trigger: each plugin installs what it needs.
fn install_dependencies(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    triggers::check(&ctx.root, "dependencies", &[], &mut |line| println!("-----> {line}"))?;
    println!("-----> Plugin dependencies installed");
    Ok(())
}

fn set_disabled(ctx: &Ctx, args: &Args, disabled: bool) -> anyhow::Result<()> {
    let name = name_arg(args)?;
    let mut records = plugins::records(&ctx.root)?;
    let record = records.get_mut(&name).ok_or_else(|| plugins::PluginError::Missing(name.to_string()))?;
    record.disabled = disabled;
    plugins::write_records(&ctx.root, &records)?;
    println!("-----> Plugin {name} {}", if disabled { "disabled" } else { "enabled" });
    Ok(())
}

fn enable(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    set_disabled(ctx, &args, false)
}

fn disable(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    set_disabled(ctx, &args, true)
}

fn uninstall(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let name = name_arg(&args)?;
    let mut records = plugins::records(&ctx.root)?;
    if records.remove(&name).is_none() {
        return Err(plugins::PluginError::Missing(name.to_string()).into());
    }
    plugins::write_records(&ctx.root, &records)?;
    let dir = plugins::plugins_dir(&ctx.root).join(name.as_str());
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    println!("-----> Uninstalled plugin {name}");
    Ok(())
}

fn trigger(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let words: Vec<String> = args.positional().iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let Some((name, rest)) = words.split_first() else { return Err(args.usage_error("missing TRIGGER").into()) };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let mut failed = 0;
    for ran in triggers::run_all(&ctx.root, name, &rest) {
        let ran = ran?;
        println!("=====> {} {name}: exit {}", ran.plugin, ran.code);
        print!("{}", String::from_utf8_lossy(&ran.stdout));
        eprint!("{}", String::from_utf8_lossy(&ran.stderr));
        failed += usize::from(ran.code != 0);
    }
    if failed > 0 {
        bail!("{failed} plugin(s) failed {name}");
    }
    Ok(())
}

/// `berth help`'s section for the enabled plugins' commands.
pub fn help_section(root: &Path) -> String {
    let out = plugin_commands(root, None);
    if out.is_empty() { out } else { format!("\nPlugin commands:\n{out}") }
}

/// `berth NAME`, `berth NAME:help`, `berth help NAME` for a plugin: its
/// commands, or None when no enabled plugin has that name.
pub fn namespace_help(root: &Path, topic: &str) -> Option<String> {
    let out = plugin_commands(root, Some(topic));
    (!out.is_empty()).then_some(out)
}

fn plugin_commands(root: &Path, only: Option<&str>) -> String {
    let mut out = String::new();
    for plugin in plugins::enabled(root).into_iter().filter(|p| only.is_none_or(|o| p.name.as_str() == o)) {
        for (verb, command) in &plugin.manifest.commands {
            let synopsis = format!("{}:{verb} {}", plugin.name, command.usage);
            out.push_str(&format!("  {synopsis:<44}{}\n", command.about));
        }
    }
    out
}

/// Runs a plugin's `NAME:VERB`: its `subcommands/VERB` with the arguments
/// as given, the caller's terminal, and APP set when it is app-scoped.
/// Exits with the command's code.
pub fn run_command(ctx: &Ctx, plugin: &Plugin, verb: &str, command: &PluginCommand, argv: Vec<OsString>) -> anyhow::Result<()> {
    let exe = plugin.executable(&format!("subcommands/{verb}")).context("the plugin command has no executable")?;
    let mut process = triggers::plugin_command(&ctx.root, plugin, &exe);
    if command.app {
        let raw = argv.first().with_context(|| format!("usage: berth {}:{verb} {}", plugin.name, command.usage))?;
        let app = crate::app::AppName::parse(raw)?;
        apps::open(&ctx.root, &app)?;
        process.env("APP", app.as_str());
    }
    let status = process.args(&argv).status().with_context(|| format!("cannot run {}:{verb}", plugin.name))?;
    std::process::exit(status.code().unwrap_or(1));
}
