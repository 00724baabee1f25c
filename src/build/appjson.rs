//! The parts of an app's `app.json` (Dokku's and Heroku's format) that
//! berth reads: `formation` (the initial scale of each process type),
//! `scripts.dokku`, `healthchecks`, `env`, `cron` and `addons`, parsed once as Dokku
//! parses it.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::procfile::is_process_name;
use crate::model::checks::{Check, ChecksError};
use crate::model::cron::{CronError, CronJob};
use crate::model::process::MAX_SCALE;
pub use crate::model::scripts::Scripts;
use crate::state::config::ConfigKey;

#[derive(Debug, thiserror::Error)]
pub enum AppJsonError {
    #[error("app.json is not valid: {0}")]
    Invalid(String),
    #[error("app.json is not valid: line {line} column {column}: {why}")]
    Syntax { line: usize, column: usize, why: String },
    #[error("app.json formation names {0:?}, which is not a process type name")]
    BadType(String),
    #[error("app.json formation gives {name} quantity {quantity}; use 0 to {MAX_SCALE}")]
    BadQuantity { name: String, quantity: u64 },
    #[error(transparent)]
    Checks(#[from] ChecksError),
    #[error(transparent)]
    Cron(#[from] CronError),
    #[error("app.json env names {0:?}, which is not a config var name")]
    BadEnvName(String),
    #[error("app.json addons entry {0} is not a plan like heroku-postgresql[:tier] with an optional \"as\" like DATABASE")]
    BadAddon(usize),
    #[error("app.json env {name} asks for generator {generator:?}; berth knows \"secret\"")]
    BadGenerator { name: String, generator: String },
}

/// The parts of app.json berth reads; everything else is the app's own.
#[derive(Debug, Default, Deserialize)]
pub struct AppJson {
    #[serde(default)]
    formation: BTreeMap<String, FormationEntry>,
    #[serde(default)]
    scripts: ScriptsJson,
    #[serde(default)]
    healthchecks: serde_json::Value,
    #[serde(default)]
    env: BTreeMap<String, EnvEntry>,
    #[serde(default)]
    cron: Vec<CronEntry>,
    #[serde(default)]
    addons: Vec<AddonEntry>,
}

/// One app.json `addons` entry as Heroku writes it: `"plan[:tier]"`, or an
/// object with `plan` and `as` (the attachment: `as: "CACHE"` gives
/// `CACHE_URL`); `options` and the rest are the add-on's own.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AddonEntry {
    Plan(String),
    Full {
        plan: String,
        #[serde(default, rename = "as")]
        alias: Option<String>,
    },
}

/// An add-on app.json asks for, checked: the plugin that serves its plan
/// creates and links it on the app's first deploy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Addon {
    /// `heroku-postgresql`, `dokku-redis:premium-0`, ...
    pub plan: String,
    /// The variable's prefix (`DATABASE` for `DATABASE_URL`), when app.json names one.
    pub alias: Option<String>,
}

/// One app.json `cron` entry as Dokku reads it.
#[derive(Debug, Deserialize)]
struct CronEntry {
    #[serde(default)]
    command: String,
    #[serde(default)]
    schedule: String,
}

/// One app.json `env` entry as Heroku writes it: a plain value, or an
/// object with `value`, `generator` and `required` (true unless given).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EnvEntry {
    Plain(String),
    Full {
        #[serde(default)]
        value: Option<String>,
        #[serde(default)]
        generator: Option<String>,
        #[serde(default)]
        required: Option<bool>,
    },
}

/// What app.json says a config var starts as.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvDefault {
    Value(String),
    /// `generator: secret`: 64 random hex digits, made once.
    Secret,
    /// No default: the app needs it set (required) or not (optional).
    Nothing {
        required: bool,
    },
}

#[derive(Debug, Default, Deserialize)]
struct ScriptsJson {
    #[serde(default)]
    dokku: Scripts,
}

#[derive(Debug, Deserialize)]
struct FormationEntry {
    quantity: Option<u64>,
}

/// What Dokku accepts: JSON with comments and trailing commas (JSONC), one
/// object; nothing else of JSON5.
fn jsonc_options() -> jsonc_parser::ParseOptions {
    jsonc_parser::ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

impl AppJson {
    /// Parses app.json once; no file reads as an empty one.
    pub fn parse(bytes: Option<&[u8]>) -> Result<AppJson, AppJsonError> {
        let Some(bytes) = bytes else { return Ok(AppJson::default()) };
        let text = std::str::from_utf8(bytes).map_err(|_| AppJsonError::Invalid("it is not UTF-8".into()))?;
        jsonc_parser::parse_to_serde_value(text, &jsonc_options()).map_err(|e| AppJsonError::Syntax {
            line: e.line_display(),
            column: e.column_display(),
            // serde's own messages quote the offending value: never echo pushed bytes.
            why: match e.kind() {
                jsonc_parser::errors::ParseErrorKind::Custom(_) => "a value has the wrong type or shape".to_owned(),
                kind => kind.to_string(),
            },
        })
    }

    /// The deploy scripts app.json names.
    pub fn scripts(&self) -> Scripts {
        self.scripts.dokku.clone()
    }

    /// Health checks by process type, validated.
    pub fn healthchecks(&self) -> Result<BTreeMap<String, Vec<Check>>, AppJsonError> {
        Ok(crate::model::checks::from_app_json(&self.healthchecks)?)
    }

    /// The config vars app.json declares, with their defaults.
    pub fn env(&self) -> Result<BTreeMap<ConfigKey, EnvDefault>, AppJsonError> {
        let mut out = BTreeMap::new();
        for (name, entry) in &self.env {
            let key = ConfigKey::parse(std::ffi::OsStr::new(name)).map_err(|_| AppJsonError::BadEnvName(name.clone()))?;
            let default = match entry {
                EnvEntry::Plain(value) | EnvEntry::Full { value: Some(value), generator: None, .. } if value.contains('\0') => {
                    return Err(AppJsonError::Invalid(format!("env {name} holds a NUL byte")));
                }
                EnvEntry::Plain(value) => EnvDefault::Value(value.clone()),
                EnvEntry::Full { generator: Some(generator), .. } if generator != "secret" => {
                    return Err(AppJsonError::BadGenerator { name: name.clone(), generator: generator.clone() });
                }
                EnvEntry::Full { generator: Some(_), .. } => EnvDefault::Secret,
                EnvEntry::Full { value: Some(value), .. } => EnvDefault::Value(value.clone()),
                EnvEntry::Full { required, .. } => EnvDefault::Nothing { required: required.unwrap_or(true) },
            };
            out.insert(key, default);
        }
        Ok(out)
    }

    /// The scheduled jobs app.json lists, checked.
    pub fn cron(&self) -> Result<Vec<CronJob>, AppJsonError> {
        Ok(self.cron.iter().enumerate().map(|(i, e)| CronJob::new(i, &e.schedule, &e.command)).collect::<Result<_, _>>()?)
    }

    /// The add-ons app.json asks for, checked (a plan and an alias become
    /// trigger arguments).
    pub fn addons(&self) -> Result<Vec<Addon>, AppJsonError> {
        let word = |s: &str, first: fn(char) -> bool, rest: fn(char) -> bool| s.len() <= 64 && s.starts_with(first) && s.chars().all(rest);
        let is_plan_part = |s: &str| {
            word(s, |c| c.is_ascii_lowercase() || c.is_ascii_digit(), |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        let mut out = Vec::new();
        for (i, entry) in self.addons.iter().enumerate() {
            let (plan, alias) = match entry {
                AddonEntry::Plan(plan) => (plan, None),
                AddonEntry::Full { plan, alias } => (plan, alias.as_ref()),
            };
            let plan_ok = match plan.split_once(':') {
                Some((service, tier)) => is_plan_part(service) && is_plan_part(tier),
                None => is_plan_part(plan),
            };
            let alias_ok =
                alias.is_none_or(|a| word(a, |c| c.is_ascii_uppercase(), |c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
            if !plan_ok || !alias_ok {
                return Err(AppJsonError::BadAddon(i));
            }
            out.push(Addon { plan: plan.clone(), alias: alias.map(|a| a.trim_end_matches("_URL").to_owned()).filter(|a| !a.is_empty()) });
        }
        Ok(out)
    }

    /// The formation app.json asks for.
    pub fn formation(&self) -> Result<BTreeMap<String, u32>, AppJsonError> {
        let mut counts = BTreeMap::new();
        for (name, entry) in &self.formation {
            if !is_process_name(name) || name == "release" {
                return Err(AppJsonError::BadType(name.clone()));
            }
            if let Some(quantity) = entry.quantity {
                if quantity > u64::from(MAX_SCALE) {
                    return Err(AppJsonError::BadQuantity { name: name.clone(), quantity });
                }
                counts.insert(name.clone(), quantity as u32);
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formation(text: &[u8]) -> Result<BTreeMap<String, u32>, AppJsonError> {
        AppJson::parse(Some(text))?.formation()
    }

    #[test]
    fn reads_heroku_addons_and_refuses_odd_ones() {
        let text = br#"{"addons": ["heroku-postgresql", "heroku-redis:mini", {"plan": "dokku-postgres", "as": "REPORTING_URL"}]}"#;
        let addons = AppJson::parse(Some(text)).unwrap().addons().unwrap();
        let plans: Vec<(&str, Option<&str>)> = addons.iter().map(|a| (a.plan.as_str(), a.alias.as_deref())).collect();
        assert_eq!(plans, [("heroku-postgresql", None), ("heroku-redis:mini", None), ("dokku-postgres", Some("REPORTING"))]);
        for bad in [
            &br#"{"addons": ["--force"]}"#[..],
            br#"{"addons": ["a b"]}"#,
            br#"{"addons": [{"plan": "x", "as": "lower"}]}"#,
            br#"{"addons": ["x:"]}"#,
        ] {
            let err = AppJson::parse(Some(bad)).unwrap().addons().unwrap_err();
            assert!(matches!(err, AppJsonError::BadAddon(0)), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn reads_dokku_formation() {
        let text = br#"{"name": "x", "formation": {"web": {"quantity": 2}, "worker": {"quantity": 1, "max_parallel": 1}}, "scripts": {}}"#;
        let counts = formation(text).unwrap();
        assert_eq!(counts, BTreeMap::from([("web".to_string(), 2), ("worker".to_string(), 1)]));
        assert!(AppJson::parse(None).unwrap().formation().unwrap().is_empty());
        assert!(formation(b"{not json").is_err());
        assert!(formation(br#"{"formation": {"web": {"quantity": 1000}}}"#).is_err());
        assert!(formation(br#"{"formation": {"we b": {"quantity": 1}}}"#).is_err());
        let with_scripts = br#"{"scripts": {"dokku": {"predeploy": "python migrate.py", "postdeploy": "echo done"}}}"#;
        assert_eq!(AppJson::parse(Some(with_scripts)).unwrap().scripts().predeploy.as_deref(), Some("python migrate.py"));
        assert_eq!(AppJson::parse(None).unwrap().scripts(), Scripts::default());
    }

    #[test]
    fn accepts_comments_and_trailing_commas_as_dokku_does() {
        let text = b"{\n  // the web process\n  \"formation\": {\"web\": {\"quantity\": 2,},}, /* done */\n}\n";
        assert_eq!(formation(text).unwrap()["web"], 2);
    }

    #[test]
    fn reads_heroku_env() {
        let text = br#"{"env": {"PLAIN": "x", "SECRET_KEY": {"generator": "secret"}, "WEB_CONCURRENCY": {"value": "5"},
            "API_TOKEN": {"description": "set me"}, "OPTIONAL": {"required": false}}}"#;
        let env = AppJson::parse(Some(text)).unwrap().env().unwrap();
        let get = |k: &str| env[&ConfigKey::parse(std::ffi::OsStr::new(k)).unwrap()].clone();
        assert_eq!(get("PLAIN"), EnvDefault::Value("x".into()));
        assert_eq!(get("SECRET_KEY"), EnvDefault::Secret);
        assert_eq!(get("WEB_CONCURRENCY"), EnvDefault::Value("5".into()));
        assert_eq!(get("API_TOKEN"), EnvDefault::Nothing { required: true });
        assert_eq!(get("OPTIONAL"), EnvDefault::Nothing { required: false });
        assert!(AppJson::parse(Some(br#"{"env": {"1X": "y"}}"#)).unwrap().env().is_err());
        assert!(AppJson::parse(Some(br#"{"env": {"X": {"generator": "uuid"}}}"#)).unwrap().env().is_err());
    }

    #[test]
    fn a_broken_app_json_names_its_line() {
        let err = AppJson::parse(Some(b"{\n  \"formation\": {\n    \"web\" 2\n}")).unwrap_err().to_string();
        assert!(err.starts_with("app.json is not valid: line 3"), "{err}");
        assert!(AppJson::parse(Some(b"[1]")).is_err());
        assert!(AppJson::parse(Some(b"")).is_err());
        assert!(AppJson::parse(Some(b"{'single': 1}")).is_err());
        let wrong = AppJson::parse(Some(br#"{"formation": "secret-bytes"}"#)).unwrap_err().to_string();
        assert!(wrong.contains("wrong type") && !wrong.contains("secret-bytes"), "{wrong}");
        let deep = format!("{{\"a\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(AppJson::parse(Some(deep.as_bytes())).is_err());
    }

    #[test]
    fn hostile_cron_entries_are_refused_without_their_bytes() {
        let cron = |text: &str| AppJson::parse(Some(text.as_bytes())).and_then(|a| a.cron());
        for (text, shows) in [
            (r#"{"cron": [{"command": "x", "schedule": "$(reboot) * * * *"}]}"#, "$(reboot)"),
            (r#"{"cron": [{"command": "x", "schedule": "* * * * * * * *"}]}"#, "* * * * * *"),
            (r#"{"cron": [{"command": "a\nrm -rf /", "schedule": "* * * * *"}]}"#, "rm -rf"),
            (r#"{"cron": [{"command": "", "schedule": "* * * * *"}]}"#, "\"\""),
        ] {
            let err = cron(text).expect_err(text).to_string();
            assert!(err.contains("cron entry 0") && !err.contains(shows), "{text}: {err}");
        }
        let long = format!(r#"{{"cron": [{{"command": "{}", "schedule": "* * * * *"}}]}}"#, "x".repeat(5000));
        assert!(cron(&long).is_err(), "a command over 4 KiB");
        assert!(cron(r#"{"cron": [{"command": 7, "schedule": "* * * * *"}]}"#).is_err(), "a command that is not text");
        assert!(cron(r#"{"cron": "* * * * *"}"#).is_err(), "cron that is not a list");
        assert_eq!(cron(r#"{"cron": [{"command": "true", "schedule": "@daily"}]}"#).unwrap().len(), 1);
    }
}
