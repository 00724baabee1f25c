//! The command grammar: `berth NAMESPACE:VERB ARGS`, as Dokku's.
//!
//! Each namespace file lists its commands in a `COMMANDS` table; this file
//! parses flags against the table, dispatches, and maps errors to exit codes
//! (0 ok, 1 failure, 2 usage).

mod access;
mod app_json;
mod apps;
mod args;
mod builder;
mod buildpacks;
mod builds;
mod bundle;
mod certs;
mod checks;
mod completions;
mod config;
mod containers;
mod cron;
mod dokku;
mod domains;
mod events;
mod fields;
mod git;
mod images;
mod keys;
mod letsencrypt;
mod logs;
mod nginx;
mod plugin;
mod ports;
mod proxy;
mod ps;
mod quiet;
mod registry;
mod repo;
mod report;
mod resource;
mod run;
mod stacks;
mod storage;
mod store;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

pub use args::{Args, UsageError};

/// What every handler gets: the state root and who is asking.
pub struct Ctx {
    pub root: PathBuf,
    pub caller: Caller,
}

/// Who runs a command: someone on the host (whom the file system already
/// limits), or an ssh key, whose grant `access` checked before the handler ran.
#[derive(Debug, Clone)]
pub enum Caller {
    Local,
    Key { grant: crate::state::grants::Grant },
}

impl Caller {
    /// Whether the caller may see `app` in lists.
    pub fn sees(&self, app: &crate::app::AppName) -> bool {
        match self {
            Caller::Local => true,
            Caller::Key { grant, .. } => grant.may_use(app),
        }
    }
}

pub type Handler = fn(&Ctx, Args) -> anyhow::Result<()>;

/// One `namespace:verb` command.
pub struct Command {
    pub name: &'static str,
    /// Argument synopsis shown in help and usage errors.
    pub usage: &'static str,
    pub about: &'static str,
    /// Flags without a value (`--force`).
    pub switches: &'static [&'static str],
    /// Flags with a value (`--format json`).
    pub options: &'static [&'static str],
    pub run: Handler,
}

fn tables() -> [&'static [Command]; 31] {
    [
        apps::COMMANDS,
        app_json::COMMANDS,
        builder::COMMANDS,
        builds::COMMANDS,
        bundle::COMMANDS,
        certs::COMMANDS,
        checks::COMMANDS,
        cron::COMMANDS,
        config::COMMANDS,
        containers::COMMANDS,
        domains::COMMANDS,
        events::COMMANDS,
        proxy::COMMANDS,
        ports::COMMANDS,
        nginx::COMMANDS,
        git::COMMANDS,
        buildpacks::COMMANDS,
        images::COMMANDS,
        keys::COMMANDS,
        letsencrypt::COMMANDS,
        logs::COMMANDS,
        ps::COMMANDS,
        plugin::COMMANDS,
        registry::COMMANDS,
        report::COMMANDS,
        repo::COMMANDS,
        resource::COMMANDS,
        run::COMMANDS,
        stacks::COMMANDS,
        storage::COMMANDS,
        store::COMMANDS,
    ]
}

/// Every command of every namespace, in table order.
pub fn all_commands() -> impl Iterator<Item = &'static Command> {
    tables().into_iter().flatten()
}

pub fn find(name: &str) -> Option<&'static Command> {
    tables().into_iter().flatten().find(|c| c.name == name)
}

fn namespace(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

fn in_namespace(topic: &str) -> impl Iterator<Item = &'static Command> + '_ {
    tables().into_iter().flatten().filter(move |c| namespace(c.name) == topic)
}

/// The known word closest to a mistyped one, when it is close enough to be
/// what was meant (at most a third of its letters off).
pub fn did_you_mean<'a>(typed: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (typed.chars().count() / 3).max(1);
    known.map(|k| (strsim::damerau_levenshtein(typed, k), k)).filter(|(d, _)| *d <= limit).min_by_key(|(d, _)| *d).map(|(_, k)| k)
}

/// Dokku's global flags, which come before the command.
pub struct GlobalFlags {
    pub trace: bool,
    pub quiet: bool,
}

/// Takes `--trace`, `--quiet` and `--force` off the front of `argv`;
/// `--force` becomes the command's own, as if typed after it.
pub fn take_global_flags(argv: &mut Vec<OsString>) -> GlobalFlags {
    let (mut trace, mut quiet, mut force) = (false, false, false);
    while let Some(flag) = argv.first().and_then(|a| a.to_str()).filter(|a| ["--trace", "--quiet", "--force"].contains(a)) {
        match flag {
            "--trace" => trace = true,
            "--quiet" => quiet = true,
            _ => force = true,
        }
        argv.remove(0);
    }
    if force && !argv.is_empty() {
        argv.insert(1, OsString::from("--force"));
    }
    GlobalFlags { trace, quiet }
}

/// Dokku's older spellings, as the commands they stand for, so the ssh
/// edge checks the same name the handler runs: `config APP` is config:show.
pub fn expand_alias(argv: &mut [OsString]) {
    if argv.len() > 1 && argv[0] == "config" {
        argv[0] = OsString::from("config:show");
    }
}

pub fn main() -> i32 {
    let mut argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    let GlobalFlags { trace, quiet } = take_global_flags(&mut argv);
    expand_alias(&mut argv);
    crate::logging::init(trace);
    let filter = if quiet { quiet::start().ok() } else { None };
    let ctx = Ctx { root: crate::state::root_from_env(), caller: Caller::Local };
    let code = match run(&ctx, argv) {
        Ok(()) => 0,
        Err(err) => {
            let code = if err.downcast_ref::<UsageError>().is_some() { 2 } else { 1 };
            let _ = writeln!(std::io::stderr(), "berth: {}", one_line(&err));
            code
        }
    };
    if let Some(filter) = filter {
        filter.finish();
    }
    code
}

/// The error and its causes in one line, each cause once: many messages
/// already quote their source (`cannot write X: File exists`), and
/// repeating it after them says nothing new.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

pub fn run(ctx: &Ctx, mut argv: Vec<OsString>) -> anyhow::Result<()> {
    if argv.is_empty() {
        print!("{}{}", help_all(), plugin::help_section(&ctx.root));
        return Ok(());
    }
    let first = argv.remove(0);
    let Some(name) = first.to_str() else {
        return Err(UsageError("the command name is not UTF-8; see 'berth help'".into()).into());
    };
    match name {
        "help" if argv.first().is_some_and(|a| a == "--markdown") => {
            // docs/COMMANDS.md's table: every command, what it does, Dokku's.
            print!("{}", dokku::markdown(&tables().into_iter().flatten().collect::<Vec<_>>()));
            Ok(())
        }
        "help" if argv.first().is_some_and(|a| a == "--completions") => {
            let shell = argv.get(1).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            print!("{}", completions::script(&shell, &all_commands().collect::<Vec<_>>())?);
            Ok(())
        }
        "help" if argv.first().is_some_and(|a| a == "--man") => {
            print!("{}", completions::man(&all_commands().collect::<Vec<_>>()));
            Ok(())
        }
        "help" | "--help" | "-h" if argv.is_empty() => {
            print!("{}{}", help_all(), plugin::help_section(&ctx.root));
            Ok(())
        }
        "help" | "--help" | "-h" => {
            let topic = argv.first().and_then(|a| a.to_str());
            match topic.and_then(|t| plugin::namespace_help(&ctx.root, t)) {
                Some(text) if find(topic.unwrap_or_default()).is_none() => {
                    print!("{text}");
                    Ok(())
                }
                _ => help(topic),
            }
        }
        // Internal: the monitor of one container, started by containers:start.
        "shim" => {
            let id = argv.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default();
            let id = crate::runtime::ContainerId::parse(&id)?;
            std::process::exit(crate::runtime::shim::main(&ctx.root, &id));
        }
        // Internal: sshd runs this for every authorized key.
        "ssh-command" => std::process::exit(git::ssh_command(ctx, argv)?),
        // Internal: the pre-receive hook of every app repository.
        "git-hook" => git::git_hook(ctx, argv),
        "version" | "--version" => {
            println!("berth {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        _ => run_named(ctx, name, argv),
    }
}

/// A command from the tables, else an enabled plugin's, else namespace help.
fn run_named(ctx: &Ctx, name: &str, argv: Vec<OsString>) -> anyhow::Result<()> {
    if find(name).is_none()
        && let Some((plugin, verb, command)) = crate::state::plugins::command(&ctx.root, name)
    {
        return plugin::run_command(ctx, &plugin, &verb, &command, argv);
    }
    let Some(command) = find(name) else {
        // `berth apps` and `berth apps:help`: the namespace's commands.
        let topic = name.strip_suffix(":help").unwrap_or(name);
        if in_namespace(topic).next().is_some() {
            return help(Some(topic));
        }
        if let Some(text) = plugin::namespace_help(&ctx.root, topic) {
            print!("{text}");
            return Ok(());
        }
        let hint = did_you_mean(name, tables().into_iter().flatten().map(|c| c.name))
            .map_or_else(|| "see 'berth help'".to_owned(), |s| format!("did you mean {s}?"));
        return Err(UsageError(format!("unknown command {name:?}; {hint}")).into());
    };
    match parse_args(command, argv)? {
        None => {
            print!("{}", help_command(command));
            Ok(())
        }
        Some(args) => (command.run)(ctx, args),
    }
}

/// The command's arguments, or None when they ask for its help.
pub fn parse_args(command: &'static Command, mut argv: Vec<OsString>) -> Result<Option<Args>, UsageError> {
    let raw_tail = run::RAW_TAIL.contains(&command.name);
    // `run --env A=1 APP cmd`: the flags before the app are berth's.
    let app_at = if raw_tail { leading_flags(command, &argv) } else { 0 };
    let flags = if raw_tail { &argv[..argv.len().min(app_at + 1)] } else { &argv[..] };
    if flags.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(None);
    }
    if raw_tail && argv.len() > app_at + 1 && argv[app_at + 1] != "--" {
        // `run APP python -c ...`: what follows the app is the command's own.
        argv.insert(app_at + 1, OsString::from("--"));
    }
    Args::parse(command, argv).map(Some)
}

/// How many words of `argv` are the command's flags before its first
/// positional (an option's value counts with it).
fn leading_flags(command: &Command, argv: &[OsString]) -> usize {
    let mut at = 0;
    while let Some(word) = argv.get(at).and_then(|w| w.to_str()).filter(|w| w.starts_with('-') && *w != "--") {
        at += if command.options.contains(&word) { 2 } else { 1 };
    }
    at
}

fn help(topic: Option<&str>) -> anyhow::Result<()> {
    let text = match topic {
        None => help_all(),
        Some(topic) => match find(topic) {
            Some(command) => help_command(command),
            None => {
                let commands: Vec<&Command> = in_namespace(topic).collect();
                if commands.is_empty() {
                    return Err(UsageError(format!("no command or namespace named {topic:?}; see 'berth help'")).into());
                }
                list(&commands)
            }
        },
    };
    print!("{text}");
    Ok(())
}

fn help_command(command: &Command) -> String {
    format!("usage: berth {} {}\n\n{}\n", command.name, command.usage, command.about)
}

/// One line per command; a synopsis too long for the column gets a line
/// of its own, with the description under it.
fn list(commands: &[&Command]) -> String {
    const COLUMN: usize = 44;
    let mut out = String::new();
    for c in commands {
        let synopsis = format!("{} {}", c.name, c.usage);
        if synopsis.len() <= COLUMN {
            out.push_str(&format!("  {synopsis:<COLUMN$}  {}\n", c.about));
        } else {
            out.push_str(&format!("  {synopsis}\n  {:<COLUMN$}  {}\n", "", c.about));
        }
    }
    out
}

fn help_all() -> String {
    let mut out = String::from("usage: berth NAMESPACE:VERB [ARGS]\n\nCommands:\n");
    let all: Vec<&Command> = tables().into_iter().flatten().collect();
    out.push_str(&list(&all));
    out.push_str("\n'berth help NAMESPACE' lists one namespace; 'berth help COMMAND' shows one command.\n");
    out
}

/// Prints `value` as pretty JSON: what every `--format json` shares.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Bytes for people: `12.3 MB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// The release `--release vN` names, else the app's current one.
pub fn release_option(args: &Args, app: &crate::app::App) -> anyhow::Result<crate::state::releases::Release> {
    use anyhow::Context;
    let all = crate::state::releases::list(&app.dir);
    match args.option("--release") {
        None => all.last().cloned().with_context(|| format!("app {} has no release yet", app.name)),
        Some(v) => {
            let n: u64 =
                v.to_string_lossy().trim_start_matches('v').parse().map_err(|_| args.usage_error("--release takes vN, e.g. v3"))?;
            all.into_iter().find(|r| r.version == n).with_context(|| format!("app {} has no release v{n}", app.name))
        }
    }
}

/// `--format` is `json` or absent (human text).
pub fn wants_json(args: &Args) -> anyhow::Result<bool> {
    match args.option("--format") {
        None => Ok(false),
        Some(f) if f == "json" => Ok(true),
        Some(f) => Err(UsageError(format!("unknown format {:?}: use json", f.to_string_lossy())).into()),
    }
}

#[cfg(test)]
mod suggestion_tests {
    use super::*;

    #[test]
    fn suggests_what_was_meant_and_nothing_far_off() {
        let names = || tables().into_iter().flatten().map(|c| c.name);
        assert_eq!(did_you_mean("apps:lst", names()), Some("apps:list"));
        assert_eq!(did_you_mean("config:sett", names()), Some("config:set"));
        assert_eq!(did_you_mean("ps:scael", names()), Some("ps:scale"));
        assert_eq!(did_you_mean("frobnicate", names()), None);
        assert_eq!(did_you_mean("--forse", ["--force", "--format"].into_iter()), Some("--force"));
    }

    #[test]
    fn dokku_habits_of_the_parser() {
        let words = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        // `run --env A=1 APP cmd --flag`: berth's flags before the app, the command's after it.
        let args = parse_args(find("run").unwrap(), words(&["--env", "A=1", "cat", "printenv", "--null"])).unwrap().unwrap();
        assert_eq!(args.option_all("--env"), vec!["A=1"]);
        assert_eq!(args.positional(), words(&["cat", "printenv", "--null"]).as_slice());
        // `logs APP -tn 5` as getopt reads it; unknown letters stay one (refused) word.
        let args = parse_args(find("logs").unwrap(), words(&["cat", "-tn", "5"])).unwrap().unwrap();
        assert!(args.switch("-t") && args.option("-n").unwrap() == "5");
        assert!(parse_args(find("logs").unwrap(), words(&["cat", "-xn", "5"])).is_err());
        // `git:from-archive APP --`: the app alone, read from stdin.
        let args = parse_args(find("git:from-archive").unwrap(), words(&["cat", "--"])).unwrap().unwrap();
        assert_eq!(args.positional(), words(&["cat"]).as_slice());
    }

    #[test]
    fn app_flag_is_the_first_argument_anywhere_on_the_line() {
        let command = find("config:set").unwrap();
        let argv = ["A=1", "--app", "catmeow", "--no-restart"].map(OsString::from).to_vec();
        let args = parse_args(command, argv).unwrap().unwrap();
        assert_eq!(args.get(0).unwrap(), "catmeow");
        assert_eq!(args.get(1).unwrap(), "A=1");
        assert!(args.switch("--no-restart"));
        let err = parse_args(command, ["catmeow", "--no-restrat"].map(OsString::from).to_vec()).err().unwrap();
        assert!(err.0.contains("did you mean --no-restart?"), "{}", err.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_are_unique_and_namespaced() {
        let all: Vec<&Command> = tables().into_iter().flatten().collect();
        for (i, c) in all.iter().enumerate() {
            assert!(c.name.contains(':') || !c.name.is_empty());
            assert!(all[i + 1..].iter().all(|o| o.name != c.name), "{} twice", c.name);
        }
    }
}

/// The last 100 lines of a log file through `tail` (argv only); `follow`
/// keeps printing what is appended, across rotations.
pub fn tail_file(file: &std::path::Path, follow: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut tail = std::process::Command::new("tail");
    tail.args(["-n", "100"]);
    if follow {
        tail.arg("-F");
    }
    let status = tail.arg("--").arg(file).status().context("cannot run tail")?;
    anyhow::ensure!(status.success(), "tail could not read {}", file.display());
    Ok(())
}

/// Dokku's guard on destructive commands: the user types the name back,
/// unless `--force` is on the line.
pub fn confirm_destroy(args: &Args, what: &str, name: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::{BufRead, Read};
    if args.switch("--force") {
        return Ok(());
    }
    eprintln!(" !     WARNING: Potentially Destructive Action");
    eprintln!(" !     This command will destroy {what} {name}.");
    eprintln!(" !     To proceed, type \"{name}\"");
    eprint!("> ");
    let mut answer = String::new();
    std::io::stdin().lock().take(4096).read_line(&mut answer).context("cannot read the confirmation")?;
    if answer.trim_end_matches(['\n', '\r']) != name {
        anyhow::bail!("confirmation did not match {name}; nothing was destroyed");
    }
    Ok(())
}
