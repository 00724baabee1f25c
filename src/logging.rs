//! Diagnostics: `BERTH_LOG=debug` (any `tracing` filter, e.g.
//! `berth=debug,libcontainer=info`) or a leading `--trace` turns on the
//! events of berth and of libcontainer, on stderr. Without either, berth
//! prints exactly what it always did. The shim gets the same filter; its
//! events reach the CLI until the container runs, then its log file.

use std::sync::OnceLock;

/// The filter in force in this process, if any.
static FILTER: OnceLock<String> = OnceLock::new();

/// The filter `--trace` stands for.
const TRACE: &str = "debug";

/// Starts logging when asked; returns whether it did.
pub fn init(trace: bool) -> bool {
    let wanted = std::env::var("BERTH_LOG").ok().filter(|f| !f.trim().is_empty()).or_else(|| trace.then(|| TRACE.to_owned()));
    let Some(filter) = wanted else { return false };
    let env_filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(TRACE));
    let installed =
        tracing_subscriber::fmt().with_env_filter(env_filter).with_writer(std::io::stderr).with_target(true).with_ansi(false).try_init();
    if installed.is_ok() {
        let _ = FILTER.set(filter);
    }
    installed.is_ok()
}

/// The filter to hand to a child berth (the shim), when logging is on.
pub fn filter() -> Option<&'static str> {
    FILTER.get().map(String::as_str)
}
