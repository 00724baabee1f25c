//! What a container is given, as plain data: its restart policy, its
//! cgroup limits, and the host directories bound into it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `no`, `on-failure[:N]` or `always` (`unless-stopped` is `always`: a stop
/// by the operator always holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    OnFailure { max_retries: u32 },
    Always,
}

#[derive(Debug, thiserror::Error)]
#[error("restart policy {0:?} is not no, on-failure[:N], always or unless-stopped")]
pub struct InvalidRestartPolicy(String);

impl Default for RestartPolicy {
    /// Dokku's default.
    fn default() -> Self {
        RestartPolicy::OnFailure { max_retries: 10 }
    }
}

/// As Dokku writes it, so a report reads back what `ps:set` took.
impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::OnFailure { max_retries } => write!(f, "on-failure:{max_retries}"),
            RestartPolicy::Always => f.write_str("always"),
        }
    }
}

impl std::str::FromStr for RestartPolicy {
    type Err = InvalidRestartPolicy;
    fn from_str(s: &str) -> Result<Self, InvalidRestartPolicy> {
        match s {
            "no" => Ok(RestartPolicy::No),
            "always" | "unless-stopped" => Ok(RestartPolicy::Always),
            "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: 10 }),
            _ => match s.strip_prefix("on-failure:").and_then(|n| n.parse().ok()) {
                Some(max_retries) => Ok(RestartPolicy::OnFailure { max_retries }),
                None => Err(InvalidRestartPolicy(s.to_owned())),
            },
        }
    }
}

impl RestartPolicy {
    /// Whether a process that ended with `exit_code` after `restarts`
    /// restarts should be started again.
    pub fn restarts(&self, exit_code: i32, restarts: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure { max_retries } => exit_code != 0 && restarts < *max_retries,
        }
    }
}

/// cgroup limits and reservations; `None` means unlimited or none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub memory_bytes: Option<i64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
    /// Memory the kernel reclaims from last under pressure (a soft limit).
    #[serde(default)]
    pub memory_reservation_bytes: Option<i64>,
    /// A CPU share (1.0 = one CPU's weight) when CPUs are contended.
    #[serde(default)]
    pub cpu_reservation: Option<f64>,
}

/// `64m`, `1g`, `512k` or plain bytes.
pub fn parse_size(text: &str) -> Option<i64> {
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = match lower.trim_end_matches('b').char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&lower[..i], c),
        _ => (lower.trim_end_matches('b'), ' '),
    };
    let n: i64 = digits.parse().ok().filter(|n| *n > 0)?;
    let scale = match unit {
        ' ' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// A log rotation size as Dokku's `logs:set max-size` takes it: `20m`,
/// `512k`, `1g`, plain bytes, or `unlimited` (0 here).
pub fn parse_log_size(text: &str) -> Option<u64> {
    if text == "unlimited" {
        return Some(0);
    }
    parse_size(text).and_then(|n| u64::try_from(n).ok())
}

/// The Dokku spelling of a log rotation size: `10m`, `512k`, `unlimited`.
pub fn format_log_size(bytes: u64) -> String {
    match bytes {
        0 => "unlimited".into(),
        b if b % (1 << 30) == 0 => format!("{}g", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}m", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}k", b >> 10),
        b => b.to_string(),
    }
}

/// A host directory bound into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}
