//! Running health checks against a new container: the first answer on
//! its port, then the HTTP checks its release names (see `model::checks`).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::model::checks::{Check, Kind};

/// Why a new container did not pass a check (its answers are quoted only
/// as a status code and the content that was wanted).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no HTTP answer to GET / within {secs} s: {why}")]
    NoAnswer { secs: u64, why: String },
    #[error("answered {status} without {wanted:?}")]
    Missing { status: u16, wanted: String },
    #[error("answered {0}")]
    Status(u16),
    #[error("{0}")]
    Transport(String),
    #[error("health check {label} failed after {attempts} attempts: {last}")]
    Failed { label: String, attempts: u32, last: Box<CheckError> },
}

/// The default check after TCP: one GET / must come back with any HTTP
/// answer within `limit`. A listening socket is not yet a serving app
/// (lazy imports, first-request setup); traffic moves only after this.
/// An answer that is not HTTP passes: the process speaks something else.
pub fn first_answer(address: Ipv4Addr, port: u16, limit: Duration) -> Result<(), CheckError> {
    let agent = ureq::AgentBuilder::new().timeout(limit).redirects(0).build();
    match agent.get(&format!("http://{address}:{port}/")).call() {
        Ok(_) | Err(ureq::Error::Status(..)) => Ok(()),
        Err(ureq::Error::Transport(t)) if t.kind() == ureq::ErrorKind::Io => {
            Err(CheckError::NoAnswer { secs: limit.as_secs(), why: t.to_string() })
        }
        Err(_) => Ok(()),
    }
}

/// Runs one check against a container: up to `attempts` GETs, `wait`
/// apart; each must answer 2xx or 3xx within `timeout` and hold `content`.
pub fn run(check: &Check, address: Ipv4Addr, default_port: u16, say: &mut dyn FnMut(&str)) -> Result<(), CheckError> {
    if check.kind == Kind::Liveness {
        return Ok(());
    }
    std::thread::sleep(Duration::from_secs(check.initial_delay));
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(check.timeout)).redirects(0).build();
    let url = format!("http://{address}:{}{}", check.port.unwrap_or(default_port), check.path);
    let mut last = CheckError::Transport("no attempt made".into());
    for attempt in 1..=check.attempts {
        let outcome = match agent.get(&url).call() {
            Ok(response) => {
                let status = response.status();
                let body = response.into_string().unwrap_or_default();
                match &check.content {
                    Some(wanted) if !body.contains(wanted.as_str()) => Err(CheckError::Missing { status, wanted: wanted.clone() }),
                    _ => Ok(()),
                }
            }
            Err(ureq::Error::Status(status, response)) if (300..400).contains(&status) => {
                drop(response);
                Ok(())
            }
            Err(ureq::Error::Status(status, _)) => Err(CheckError::Status(status)),
            Err(e) => Err(CheckError::Transport(e.to_string())),
        };
        match outcome {
            Ok(()) => {
                say(&format!("Check {} passed", check.label()));
                return Ok(());
            }
            Err(why) => {
                say(&format!("Check {} attempt {attempt}/{}: {why}", check.label(), check.attempts));
                last = why;
            }
        }
        if attempt < check.attempts {
            std::thread::sleep(Duration::from_secs(check.wait));
        }
    }
    Err(CheckError::Failed { label: check.label(), attempts: check.attempts, last: Box::new(last) })
}
