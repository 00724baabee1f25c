//! The YAML a buildpack's `bin/release` prints: `config_vars` and
//! `default_process_types`, each a map of plain `key: value` lines. Only
//! this shape is read; anything else in the document is ignored.

use std::collections::BTreeMap;

#[derive(Debug, Default, PartialEq)]
pub struct Release {
    pub config_vars: BTreeMap<String, String>,
    pub default_process_types: BTreeMap<String, String>,
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_owned();
        }
    }
    v.to_owned()
}

pub fn parse(text: &str) -> Release {
    let mut release = Release::default();
    let mut section = "";
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') || line.starts_with("---") {
            continue;
        }
        if !line.starts_with(' ') && !line.starts_with('\t') {
            section = line.trim_end().trim_end_matches(':').trim();
            if let Some((key, rest)) = line.split_once(':')
                && rest.trim() == "{}"
            {
                section = key.trim();
            }
            continue;
        }
        let Some((key, value)) = line.trim().split_once(':') else { continue };
        let map = match section {
            "config_vars" => &mut release.config_vars,
            "default_process_types" => &mut release.default_process_types,
            _ => continue,
        };
        map.insert(key.trim().to_owned(), unquote(value));
    }
    release
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_heroku_release_output() {
        let release =
            parse("---\nconfig_vars:\n  LANG: \"en_US.UTF-8\"\ndefault_process_types:\n  web: node server.js --port $PORT\naddons: []\n");
        assert_eq!(release.config_vars["LANG"], "en_US.UTF-8");
        assert_eq!(release.default_process_types["web"], "node server.js --port $PORT");
        assert_eq!(parse("--- {}\n"), Release::default());
    }
}
