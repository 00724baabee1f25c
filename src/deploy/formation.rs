//! Formation: how many containers of each process type an app runs.
//! `ps:scale APP web=2 worker=1` writes it; a release's Procfile says
//! which types exist. Web runs one container and the others none unless
//! scaled, as on Dokku and Heroku.

use std::collections::BTreeMap;

pub use crate::model::process::MAX_SCALE;
use crate::model::process::is_process_name;

/// The most containers of one process type berth starts.

#[derive(Debug, thiserror::Error)]
pub enum FormationError {
    #[error("{0:?} is not TYPE=COUNT (like web=2)")]
    NotAPair(String),
    #[error("{0:?} is not a process type name (a-z, 0-9, '_' and '-')")]
    BadName(String),
    #[error("{count:?} is not a count for {name} (0 to {MAX_SCALE})")]
    BadCount { name: String, count: String },
    #[error("the current release has no process type {name}; its Procfile has {known}")]
    Unknown { name: String, known: String },
    #[error("`release` is run once per deploy, not scaled")]
    ReleaseProcess,
}

/// Parses `web=2 worker=1` into counts, all checked before any is used.
pub fn parse(pairs: &[String]) -> Result<BTreeMap<String, u32>, FormationError> {
    let mut counts = BTreeMap::new();
    for pair in pairs {
        let (name, count) = pair.split_once('=').ok_or_else(|| FormationError::NotAPair(pair.clone()))?;
        if !is_process_name(name) {
            return Err(FormationError::BadName(name.to_owned()));
        }
        if name == "release" {
            return Err(FormationError::ReleaseProcess);
        }
        let n = count
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= MAX_SCALE && !count.starts_with('+'))
            .ok_or_else(|| FormationError::BadCount { name: name.to_owned(), count: count.to_owned() })?;
        counts.insert(name.to_owned(), n);
    }
    Ok(counts)
}

/// Refuses counts for process types the release does not have.
pub fn check_known(counts: &BTreeMap<String, u32>, process_types: &BTreeMap<String, String>) -> Result<(), FormationError> {
    for name in counts.keys() {
        if !process_types.contains_key(name) {
            let known: Vec<&str> = process_types.keys().map(String::as_str).filter(|t| *t != "release").collect();
            return Err(FormationError::Unknown { name: name.clone(), known: known.join(", ") });
        }
    }
    Ok(())
}

/// The containers a release runs under `scale` (from `ps:scale`, else the
/// release's app.json `defaults`, else web=1 and the rest 0): (process
/// type, count) for each type with at least one, web first. Types the
/// release lacks are skipped.
pub fn effective(
    scale: &BTreeMap<String, u32>,
    defaults: &BTreeMap<String, u32>,
    process_types: &BTreeMap<String, String>,
) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = process_types
        .keys()
        .filter(|name| *name != "release")
        .map(|name| (name.clone(), scale.get(name).or(defaults.get(name)).copied().unwrap_or(if name == "web" { 1 } else { 0 })))
        .filter(|(_, n)| *n > 0)
        .collect();
    out.sort_by_key(|(name, _)| name != "web");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(names: &[&str]) -> BTreeMap<String, String> {
        names.iter().map(|n| (n.to_string(), "cmd".to_string())).collect()
    }

    #[test]
    fn web_runs_once_and_others_not_until_scaled() {
        let procs = types(&["web", "worker", "release"]);
        let empty = BTreeMap::new();
        assert_eq!(effective(&empty, &empty, &procs), vec![("web".to_string(), 1)]);
        let scaled = parse(&["worker=2".into(), "web=3".into()]).unwrap();
        assert_eq!(effective(&scaled, &empty, &procs), vec![("web".to_string(), 3), ("worker".to_string(), 2)]);
        let none = parse(&["web=0".into()]).unwrap();
        assert!(effective(&none, &empty, &procs).is_empty());
        let app_json = BTreeMap::from([("worker".to_string(), 1), ("web".to_string(), 2)]);
        let web_only = parse(&["web=1".into()]).unwrap();
        assert_eq!(effective(&web_only, &app_json, &procs), vec![("web".to_string(), 1), ("worker".to_string(), 1)], "ps:scale wins");
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["web", "web=x", "web=-1", "web=+1", "web=101", "Web=1", "w;b=1", "release=1", "=1"] {
            assert!(parse(&[bad.to_string()]).is_err(), "{bad} accepted");
        }
        let counts = parse(&["clock=1".into()]).unwrap();
        assert!(check_known(&counts, &types(&["web"])).is_err());
    }
}
