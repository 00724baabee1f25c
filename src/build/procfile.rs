//! Procfile parsing: `name: command` lines, comments, blank lines, CRLF.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProcfileError {
    #[error("Procfile line {line}: {why}")]
    Line { line: usize, why: String },
    #[error("Procfile is not UTF-8")]
    NotText,
}

/// Process type -> command, in name order.
pub type ProcessTypes = BTreeMap<String, String>;

pub use crate::model::process::is_process_name;

pub fn parse(bytes: &[u8]) -> Result<ProcessTypes, ProcfileError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ProcfileError::NotText)?;
    let mut types = ProcessTypes::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw).trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |why: String| ProcfileError::Line { line: i + 1, why };
        let (name, command) = line.split_once(':').ok_or_else(|| err(format!("{line:?} is not `name: command`")))?;
        let (name, command) = (name.trim(), command.trim());
        if !is_process_name(name) {
            return Err(err(format!("process type {name:?} must use a-z, 0-9, _ and -")));
        }
        if command.is_empty() {
            return Err(err(format!("process type {name} has no command")));
        }
        if types.insert(name.to_owned(), command.to_owned()).is_some() {
            return Err(err(format!("process type {name} appears twice")));
        }
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heroku_procfiles() {
        let types = parse(b"# comment\r\nweb: python catmeow.py --port $PORT\r\n\nworker:  celery -A tasks worker \n").unwrap();
        assert_eq!(types["web"], "python catmeow.py --port $PORT");
        assert_eq!(types["worker"], "celery -A tasks worker");
    }

    #[test]
    fn garbage_names_its_line() {
        assert_eq!(
            parse(b"web: ok\nthis is garbage\n").unwrap_err().to_string(),
            "Procfile line 2: \"this is garbage\" is not `name: command`"
        );
        assert!(parse(b"Web: x").is_err());
        assert!(parse(b"web:").is_err());
        assert!(parse(b"web: a\nweb: b").is_err());
        assert!(parse(b"\xff").is_err());
    }
}
