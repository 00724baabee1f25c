//! Who may run what over ssh, checked once at the edge (`ssh-command`)
//! before any handler runs. One table says for every command whether it is
//! for anyone, for a key granted the app named by its first argument, or
//! for admins; a few app commands have forms that reach the host (host
//! paths, host ports, host network) and those forms are admin-only.
//! Anything the table does not name is admin-only, so a new command is
//! safe until someone decides otherwise.

use std::ffi::OsStr;
use std::path::Path;

use super::Args;
use crate::app::AppName;
use crate::state::apps;
use crate::state::grants::Grant;
use crate::state::settings::Settings;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AccessError {
    #[error("key {key} may not run {command}: it is for admins")]
    AdminOnly { key: String, command: String },
    #[error("key {key} may not run {command} {form}: that form reaches the host and is for admins")]
    AdminForm { key: String, command: String, form: String },
    #[error("key {key} has no access to app {app}")]
    NotGranted { key: String, app: AppName },
    #[error("key {key} may not create apps: an admin creates {app} or runs ssh-keys:grant {key} --create")]
    NoCreate { key: String, app: AppName },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Help, version, and lists filtered to what the key may see.
    Anyone,
    /// The app named by the first positional argument must be granted.
    App,
    /// Host-level: keys, stacks, the store, containers, host files.
    Admin,
}

/// App commands; everything else not in `ANYONE` is admin-only.
const APP_COMMANDS: &[&str] = &[
    "apps:create",
    "apps:exists",
    "apps:lock",
    "apps:unlock",
    "apps:locked",
    "apps:report",
    "apps:info",
    "apps:rename",
    "apps:destroy",
    "apps:rebase",
    "builds:create",
    "builds:list",
    "builds:info",
    "builds:prune",
    "builds:output",
    "builds:cancel",
    "builds:set",
    "builds:report",
    "repo:purge-cache",
    "repo:gc",
    "buildpacks:list",
    "buildpacks:add",
    "buildpacks:set",
    "buildpacks:remove",
    "buildpacks:clear",
    "buildpacks:set-property",
    "buildpacks:report",
    "certs:add",
    "certs:generate",
    "certs:remove",
    "certs:report",
    "certs:update",
    "certs:show",
    "checks:disable",
    "checks:enable",
    "checks:skip",
    "checks:set",
    "checks:report",
    "checks:run",
    "config:set",
    "config:get",
    "config:unset",
    "config:show",
    "config:keys",
    "config:clear",
    "config:export",
    "domains:add",
    "domains:remove",
    "domains:set",
    "domains:clear",
    "domains:reset",
    "domains:report",
    "domains:enable",
    "domains:disable",
    "proxy:disable",
    "proxy:enable",
    "proxy:report",
    "proxy:set",
    "proxy:ports",
    "ports:list",
    "ports:report",
    "ports:add",
    "ports:set",
    "ports:remove",
    "ports:clear",
    "proxy:ports-add",
    "proxy:ports-set",
    "proxy:ports-remove",
    "proxy:ports-clear",
    "nginx:set",
    "nginx:report",
    "nginx:import-ssl",
    "git:set",
    "git:report",
    "git:from-image",
    "git:from-archive",
    "git:load-image",
    "git:initialize",
    "git:status",
    "ps:rebuild",
    "git:sync",
    "releases",
    "releases:info",
    "releases:set",
    "releases:rollback",
    "letsencrypt:enable",
    "letsencrypt:disable",
    "letsencrypt:auto-renew",
    "letsencrypt:set",
    "letsencrypt:report",
    "logs",
    "logs:failed",
    "logs:set",
    "logs:report",
    "builder:set",
    "builder:report",
    "app-json:set",
    "app-json:report",
    "ps:scale",
    "ps:stop",
    "ps:start",
    "ps:restart",
    "ps:restore",
    "ps:report",
    "ps:inspect",
    "run:list",
    "run:logs",
    "run:stop",
    "proxy:rebuild",
    "proxy:build-config",
    "proxy:clear-config",
    "cron:list",
    "cron:run",
    "cron:suspend",
    "cron:resume",
    "cron:report",
    "cron:set",
    "nginx:show-config",
    "nginx:access-logs",
    "nginx:error-logs",
    "ps:set",
    "registry:set",
    "registry:report",
    "registry:push",
    "report",
    "resource:report",
    "run",
    "run:detached",
    "enter",
    "storage:list",
    "storage:report",
];

const ANYONE: &[&str] = &["apps:list", "help", "version"];

/// Commands that make the app they name when it does not exist yet.
const CREATES: &[&str] = &["apps:create", "git:from-archive", "git:from-image", "git:load-image"];

pub fn scope(command: &str) -> Scope {
    if ANYONE.contains(&command) {
        Scope::Anyone
    } else if APP_COMMANDS.contains(&command) {
        Scope::App
    } else {
        Scope::Admin
    }
}

/// Whether `key` (holding `grant`) may run `command` with `args`.
pub fn check(root: &Path, key: &str, grant: &Grant, command: &str, args: &Args) -> Result<(), AccessError> {
    if grant.admin {
        return Ok(());
    }
    let admin_only = || AccessError::AdminOnly { key: key.to_owned(), command: command.to_owned() };
    match scope(command) {
        Scope::Anyone => return Ok(()),
        Scope::Admin => return Err(admin_only()),
        Scope::App => {}
    }
    // `--global` changes (or reads) every app's defaults: the host's.
    if args.switch("--global") {
        return Err(AccessError::AdminForm { key: key.to_owned(), command: command.to_owned(), form: "--global".into() });
    }
    // An app command without its app (`report`, `ps:restore`) acts on every app.
    let raw = args.get(0).ok_or_else(admin_only)?;
    let Ok(app) = AppName::parse(raw) else {
        // The handler refuses the name itself, with its own message.
        return Ok(());
    };
    if !grant.may_use(&app) {
        let creating = CREATES.contains(&command) && !apps::exists(root, &app);
        if !creating {
            return Err(AccessError::NotGranted { key: key.to_owned(), app });
        }
        if !grant.create {
            return Err(AccessError::NoCreate { key: key.to_owned(), app });
        }
    }
    match host_form(root, command, args) {
        Some(form) => Err(AccessError::AdminForm { key: key.to_owned(), command: command.to_owned(), form }),
        None => Ok(()),
    }
}

/// A plugin's command: for admins, or, when its plugin.toml says it is
/// app-scoped, for a key granted the app its first argument names.
pub fn check_plugin(key: &str, grant: &Grant, command: &str, app_scoped: bool, first: Option<&str>) -> Result<(), AccessError> {
    if grant.admin {
        return Ok(());
    }
    let admin_only = || AccessError::AdminOnly { key: key.to_owned(), command: command.to_owned() };
    if !app_scoped {
        return Err(admin_only());
    }
    let app = first.and_then(|a| AppName::parse(std::ffi::OsStr::new(a)).ok()).ok_or_else(admin_only)?;
    if grant.may_use(&app) { Ok(()) } else { Err(AccessError::NotGranted { key: key.to_owned(), app }) }
}

/// The part of an app command's arguments that reaches outside the app, if any.
fn host_form(root: &Path, command: &str, args: &Args) -> Option<String> {
    let arg = |i: usize| args.get(i).map(OsStr::to_string_lossy).unwrap_or_default().into_owned();
    match command {
        // A directory or files on the host, read as root.
        "builds:create" => Some("DIR".into()),
        "certs:add" | "certs:update" if args.get(1).is_some() => Some("CERT KEY (host files; send them on stdin)".into()),
        "builds:set" if arg(1) == "network" && arg(2) == "host" => Some("network host".into()),
        "nginx:set" if arg(1).ends_with("-log-path") => Some(arg(1)),
        // The host would talk to whatever ACME server the key names.
        "letsencrypt:set" if arg(1) == "server" => Some("server".into()),
        "git:from-archive" if !arg(1).is_empty() && arg(1) != "-" && !arg(1).starts_with("https://") => {
            Some("URL (only - or https:// URLs)".into())
        }
        // Other transports read host paths or use root's ssh keys.
        "git:sync" if !arg(1).starts_with("https://") => Some("URL (only https:// URLs)".into()),
        "git:from-image" | "registry:set" if args.switch("--insecure") || arg(1) == "insecure" => Some("insecure".into()),
        "proxy:ports-add" | "proxy:ports-set" | "ports:add" | "ports:set" => foreign_port(root, &args.positional()[1..]),
        // nginx would listen on a port of the app's own, not a listen port.
        "domains:disable" => Some("(a host port of its own)".into()),
        _ => None,
    }
}

/// A port map whose host port is not one of the configured listen ports.
fn foreign_port(root: &Path, maps: &[std::ffi::OsString]) -> Option<String> {
    let settings = Settings::load(root).ok()?;
    let allowed = [settings.proxy.listen_port, settings.proxy.tls_listen_port];
    maps.iter().map(|m| m.to_string_lossy().into_owned()).find(|m| {
        let host_port = m.split(':').nth(1).and_then(|p| p.parse::<u16>().ok());
        !host_port.is_some_and(|p| allowed.contains(&p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlisted_commands_are_admin_only() {
        for admin in ["ssh-keys:add", "stacks:import", "store:gc", "containers:run", "registry:login", "storage:mount", "bundle:load"] {
            assert_eq!(scope(admin), Scope::Admin, "{admin}");
        }
        assert_eq!(scope("config:set"), Scope::App);
        assert_eq!(scope("apps:list"), Scope::Anyone);
        assert_eq!(scope("no-such-command"), Scope::Admin);
    }
}
