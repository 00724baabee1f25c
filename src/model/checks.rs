//! Health checks that gate a switch: by default a web process must accept
//! TCP on $PORT; `app.json` `healthchecks` (Dokku's format) and the older
//! `CHECKS` file add HTTP checks (path, expected content, attempts, wait,
//! timeout) that every new container of the type must pass before traffic
//! moves to it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ChecksError {
    #[error("app.json healthchecks are not valid: {0}")]
    AppJson(String),
    #[error("CHECKS line {line}: {why}")]
    ChecksFile { line: usize, why: String },
}

/// A check whose values are out of bounds.
#[derive(Debug, thiserror::Error)]
pub enum InvalidCheck {
    #[error("path {0:?} must start with / and hold no spaces or control characters")]
    Path(String),
    #[error("attempts 1-100, timeout 1-300 s, wait up to 300 s, initialDelay up to 600 s")]
    Range,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Startup,
    Readiness,
    Liveness,
}

/// One HTTP check, with Dokku's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    #[serde(default, rename = "type")]
    pub kind: Kind,
    #[serde(default)]
    pub name: Option<String>,
    pub path: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    #[serde(default = "default_wait")]
    pub wait: u64,
    #[serde(default)]
    pub initial_delay: u64,
    #[serde(default)]
    pub content: Option<String>,
}

fn default_attempts() -> u32 {
    3
}
fn default_timeout() -> u64 {
    5
}
fn default_wait() -> u64 {
    5
}

impl Check {
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("GET {}", self.path))
    }

    fn validate(&self) -> Result<(), InvalidCheck> {
        let path_ok = self.path.starts_with('/') && self.path.len() <= 2048 && self.path.chars().all(|c| c.is_ascii_graphic());
        if !path_ok {
            return Err(InvalidCheck::Path(self.path.clone()));
        }
        if !(1..=100).contains(&self.attempts) || !(1..=300).contains(&self.timeout) || self.wait > 300 || self.initial_delay > 600 {
            return Err(InvalidCheck::Range);
        }
        Ok(())
    }
}

/// `app.json` healthchecks by process type (liveness checks are kept but
/// only startup and readiness gate a switch); `null` when app.json has none.
pub fn from_app_json(value: &serde_json::Value) -> Result<BTreeMap<String, Vec<Check>>, ChecksError> {
    if value.is_null() {
        return Ok(BTreeMap::new());
    }
    let parsed: BTreeMap<String, Vec<Check>> = serde_json::from_value(value.clone()).map_err(|e| ChecksError::AppJson(e.to_string()))?;
    for (process, checks) in &parsed {
        if !super::process::is_process_name(process) {
            return Err(ChecksError::AppJson(format!("{process:?} is not a process type")));
        }
        for check in checks {
            check.validate().map_err(|e| ChecksError::AppJson(e.to_string()))?;
        }
    }
    Ok(parsed)
}

/// The old `CHECKS` file: `WAIT=`, `TIMEOUT=`, `ATTEMPTS=` settings and
/// `/path expected content` lines, for the web process.
pub fn from_checks_file(text: &str) -> Result<Vec<Check>, ChecksError> {
    let (mut wait, mut timeout, mut attempts) = (default_wait(), default_timeout(), default_attempts());
    let mut checks = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let bad = |why: &str| ChecksError::ChecksFile { line: i + 1, why: why.to_owned() };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && !line.starts_with('/')
        {
            let n: u64 = value.trim().parse().map_err(|_| bad("settings are WAIT=N, TIMEOUT=N or ATTEMPTS=N"))?;
            match key.trim() {
                "WAIT" => wait = n,
                "TIMEOUT" => timeout = n,
                "ATTEMPTS" => attempts = n as u32,
                _ => return Err(bad("settings are WAIT=N, TIMEOUT=N or ATTEMPTS=N")),
            }
            continue;
        }
        let (target, content) = line.split_once(char::is_whitespace).map_or((line, None), |(p, c)| (p, Some(c.trim().to_owned())));
        // `//host/path` names a host in Dokku's format; berth checks the path.
        let path = if let Some(rest) = target.strip_prefix("//") {
            format!("/{}", rest.split_once('/').map_or("", |(_, p)| p))
        } else {
            target.to_owned()
        };
        let check = Check { kind: Kind::Startup, name: None, path, port: None, attempts, timeout, wait, initial_delay: 0, content };
        check.validate().map_err(|why| bad(&why.to_string()))?;
        checks.push(check);
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dokku_healthchecks() {
        let json =
            serde_json::json!({"web": [{"type": "startup", "name": "root", "path": "/", "attempts": 2, "content": "meow", "wait": 1}]});
        let checks = from_app_json(&json).unwrap();
        let web = &checks["web"][0];
        assert_eq!((web.attempts, web.wait, web.timeout, web.content.as_deref()), (2, 1, 5, Some("meow")));
        assert!(from_app_json(&serde_json::json!({"web": [{"path": "no-slash"}]})).is_err());
        assert!(from_app_json(&serde_json::json!({"web": [{"path": "/", "attempts": 0}]})).is_err());
        assert!(from_app_json(&serde_json::Value::Null).unwrap().is_empty());
    }

    #[test]
    fn reads_checks_files() {
        let checks = from_checks_file("WAIT=2\nATTEMPTS=4\n# comment\n/ Cat dreams\n//example.com/health ok\n/plain\n").unwrap();
        assert_eq!(checks.len(), 3);
        assert_eq!(
            (checks[0].path.as_str(), checks[0].content.as_deref(), checks[0].wait, checks[0].attempts),
            ("/", Some("Cat dreams"), 2, 4)
        );
        assert_eq!(checks[1].path, "/health");
        assert_eq!(checks[2].content, None);
        assert!(from_checks_file("FOO=1\n").is_err());
        assert!(from_checks_file("/a\u{7}b x\n").is_err());
    }
}
