//! The event log (`events:on`): each moment of an app's life that Dokku
//! calls a trigger (post-create, pre-build, post-deploy, ...) appended as
//! one line to `$BERTH_ROOT/logs/events.log`, in Dokku's syslog form, so
//! `berth events` shows what happened and when. Off by default; logging
//! never fails what it logs.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The events berth records, in the order a push meets them (Dokku's names).
pub const EVENTS: &[&str] = &[
    "post-create",
    "pre-receive",
    "receive-app",
    "pre-build",
    "post-build",
    "provision-addons",
    "pre-release",
    "pre-deploy",
    "post-deploy",
    "post-release",
    "post-config-update",
    "post-domains-update",
    "post-certs-update",
    "post-stop",
    "post-start",
    "post-app-rename",
    "post-delete",
];

pub fn log_file(root: &Path) -> PathBuf {
    root.join("logs").join("events.log")
}

/// Records `event` with its arguments when the event log is on, and runs
/// the plugins' triggers of that name (their failures are only logged).
pub fn emit(root: &Path, event: &str, args: &[&str]) {
    log(root, event, args);
    super::triggers::notify(root, event, args);
}

/// A guarding event (`pre-build`, `pre-release`, `pre-deploy`): recorded,
/// then each plugin's trigger may stop what follows with its message.
pub fn gate(root: &Path, event: &str, args: &[&str], say: &mut dyn FnMut(&str)) -> Result<(), super::triggers::TriggerError> {
    log(root, event, args);
    super::triggers::check(root, event, args, say)
}

fn log(root: &Path, event: &str, args: &[&str]) {
    debug_assert!(EVENTS.contains(&event), "{event} is not in EVENTS");
    tracing::debug!(event, ?args, "event");
    let on = super::settings::Settings::load(root).is_ok_and(|s| s.events.enabled);
    if !on {
        return;
    }
    let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into());
    let when = chrono::Local::now().format("%b %e %H:%M:%S");
    let line = format!("{when} {host} berth[{}]: INVOKED: {event}( {} )\n", std::process::id(), args.join(" "));
    let path = log_file(root);
    let _ = std::fs::create_dir_all(path.parent().expect("a log file has a directory"));
    // One write of one line with O_APPEND: concurrent berths do not interleave.
    let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o640).custom_flags(libc::O_NOFOLLOW).open(&path);
    if let Ok(mut file) = file {
        let _ = file.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_logged_only_when_on() {
        let root = tempfile::tempdir().unwrap();
        emit(root.path(), "post-create", &["cat"]);
        assert!(!log_file(root.path()).exists());
        super::super::settings::Settings::update(root.path(), |s| s.events.enabled = true).unwrap();
        emit(root.path(), "post-create", &["cat"]);
        emit(root.path(), "post-deploy", &["cat", "v2"]);
        let log = std::fs::read_to_string(log_file(root.path())).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with("INVOKED: post-create( cat )") && lines[1].ends_with("INVOKED: post-deploy( cat v2 )"), "{log}");
    }
}
