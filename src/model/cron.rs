//! Scheduled jobs, as app.json's `cron` lists them (Dokku's format): a
//! standard five-field schedule (or `@hourly`, `@daily`, ...) and a command
//! run as a one-off container of the current release.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error("app.json cron entry {0} has no command")]
    NoCommand(usize),
    #[error("app.json cron entry {0} has a schedule that is not five cron fields (minute hour day month weekday) or @hourly/@daily/...")]
    BadSchedule(usize),
}

/// One job: when, and what to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronJob {
    pub schedule: String,
    pub command: String,
}

/// The longest command a job may have.
const MAX_COMMAND: usize = 4096;

impl CronJob {
    /// Checks app.json's `index`th entry: a command, and a schedule croner
    /// reads with exactly five fields (no seconds) or as a nickname.
    pub fn new(index: usize, schedule: &str, command: &str) -> Result<CronJob, CronError> {
        let command = command.trim();
        if command.is_empty() || command.len() > MAX_COMMAND || command.contains(['\n', '\r', '\0']) {
            return Err(CronError::NoCommand(index));
        }
        let schedule = schedule.split_whitespace().collect::<Vec<_>>().join(" ");
        let fields = schedule.split(' ').count();
        let nickname = schedule.starts_with('@') && fields == 1;
        if !(fields == 5 || nickname) || croner::Cron::from_str(&schedule).is_err() {
            return Err(CronError::BadSchedule(index));
        }
        Ok(CronJob { schedule, command: command.to_owned() })
    }

    /// A stable id: the same schedule and command keep it across releases.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(format!("{}\n{}", self.schedule, self.command).as_bytes());
        hex::encode(&digest[..5])
    }

    /// Whether the job is due in the minute that holds `at`.
    pub fn is_due(&self, at: chrono::DateTime<chrono::Utc>) -> bool {
        use chrono::Timelike;
        let minute = at.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(at);
        croner::Cron::from_str(&self.schedule).ok().and_then(|c| c.is_time_matching(&minute).ok()).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_fields_or_a_nickname_and_a_command() {
        let job = CronJob::new(0, " */5  * * * * ", "python task.py").unwrap();
        assert_eq!(job.schedule, "*/5 * * * *");
        assert_eq!(job.id(), CronJob::new(0, "*/5 * * * *", "python task.py").unwrap().id());
        assert_ne!(job.id(), CronJob::new(0, "*/5 * * * *", "python other.py").unwrap().id());
        assert!(CronJob::new(0, "@daily", "x").is_ok());
        for bad in ["* * * *", "0 * * * * *", "61 * * * *", "@often", "", "* * * * * ; rm"] {
            assert!(matches!(CronJob::new(3, bad, "x"), Err(CronError::BadSchedule(3))), "{bad:?}");
        }
        assert!(matches!(CronJob::new(1, "* * * * *", "  "), Err(CronError::NoCommand(1))));
        assert!(matches!(CronJob::new(1, "* * * * *", "a\nb"), Err(CronError::NoCommand(1))));
    }

    #[test]
    fn due_in_the_minutes_it_names() {
        let job = CronJob::new(0, "*/5 * * * *", "x").unwrap();
        assert!(job.is_due(chrono::Utc.with_ymd_and_hms(2026, 12, 1, 3, 10, 42).unwrap()));
        assert!(!job.is_due(chrono::Utc.with_ymd_and_hms(2026, 12, 1, 3, 11, 0).unwrap()));
        assert!(CronJob::new(0, "@hourly", "x").unwrap().is_due(chrono::Utc.with_ymd_and_hms(2026, 12, 1, 3, 0, 30).unwrap()));
    }
}
