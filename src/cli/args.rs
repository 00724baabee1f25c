//! Flag and positional parsing against a command's table entry.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};

use super::Command;
use crate::app::AppName;

/// A usage mistake: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

#[derive(Debug)]
pub struct Args {
    command: &'static str,
    usage: &'static str,
    positional: Vec<OsString>,
    switches: Vec<&'static str>,
    options: HashMap<&'static str, Vec<OsString>>,
    /// `--app APP`, put first among the positionals once parsing ends.
    app_flag: Option<OsString>,
    /// A report's single field (`ps:report APP --ps-restart-policy`).
    info_flag: Option<String>,
}

/// Whether the command's first argument is an app (so `--app` may name it).
fn takes_app_first(command: &Command) -> bool {
    command.usage.split_whitespace().next().is_some_and(|first| {
        let first = first.trim_start_matches('[').trim_end_matches(']');
        first.split('|').next() == Some("APP")
    })
}

/// `-tn 5` as `-t -n 5`, as getopt reads it, when every letter is one of
/// the command's short flags (only the last may take a value).
fn expand_short_flags(command: &Command, argv: Vec<OsString>) -> Vec<OsString> {
    let known = |flag: &str| command.switches.contains(&flag) || command.options.contains(&flag);
    let mut out = Vec::with_capacity(argv.len());
    let mut words = argv.into_iter();
    while let Some(word) = words.next() {
        if word == "--" {
            out.push(word);
            out.extend(words.by_ref());
            break;
        }
        let text = word.to_string_lossy();
        let letters = text.strip_prefix('-').filter(|l| l.len() > 1 && l.chars().all(|c| c.is_ascii_alphabetic()));
        let flags: Vec<String> = letters.map(|l| l.chars().map(|c| format!("-{c}")).collect()).unwrap_or_default();
        let takes_value_early = flags.iter().rev().skip(1).any(|f| command.options.contains(&f.as_str()));
        if !flags.is_empty() && flags.iter().all(|f| known(f)) && !takes_value_early {
            out.extend(flags.into_iter().map(OsString::from));
        } else {
            out.push(word);
        }
    }
    out
}

impl Args {
    /// Splits argv into flags the command declares and positionals. An
    /// unknown `-x` is a usage error (so `apps:create -x` never makes an
    /// app named `-x`); after `--` everything is positional.
    pub fn parse(command: &'static Command, argv: Vec<OsString>) -> Result<Args, UsageError> {
        let mut args = Args {
            command: command.name,
            usage: command.usage,
            positional: Vec::new(),
            switches: Vec::new(),
            options: HashMap::new(),
            app_flag: None,
            info_flag: None,
        };
        let mut rest = expand_short_flags(command, argv).into_iter();
        while let Some(arg) = rest.next() {
            let text = arg.to_string_lossy();
            if text == "--" {
                args.positional.extend(rest.by_ref());
                break;
            }
            if !text.starts_with('-') || text == "-" {
                args.positional.push(arg);
                continue;
            }
            let (flag, inline) = match text.split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(OsString::from(v))),
                None => (text.into_owned(), None),
            };
            if flag == "--app" && takes_app_first(command) {
                // Dokku's `--app APP`, anywhere on the line: the app as the first argument.
                let app = inline.or_else(|| rest.next()).ok_or_else(|| args.usage_error("--app needs a value"))?;
                args.app_flag = Some(app);
                continue;
            }
            if let Some(&s) = command.switches.iter().find(|&&s| s == flag) {
                if inline.is_some() {
                    return Err(args.usage_error(&format!("{flag} takes no value")));
                }
                args.switches.push(s);
            } else if let Some(&o) = command.options.iter().find(|&&o| o == flag) {
                let value = inline.or_else(|| rest.next()).ok_or_else(|| args.usage_error(&format!("{flag} needs a value")))?;
                args.options.entry(o).or_default().push(value);
            } else if super::fields::REPORTS.contains(&command.name) && flag.starts_with("--") && args.info_flag.is_none() {
                // The report knows its fields; it checks the name.
                args.info_flag = Some(flag);
            } else {
                let known = command.switches.iter().chain(command.options).copied();
                let hint = super::did_you_mean(&flag, known).map(|s| format!("; did you mean {s}?")).unwrap_or_default();
                return Err(args.usage_error(&format!("unknown flag {flag:?}{hint}")));
            }
        }
        if let Some(app) = args.app_flag.take() {
            args.positional.insert(0, app);
        }
        Ok(args)
    }

    /// The single report field asked for, with its dashes.
    pub fn info_flag(&self) -> Option<&str> {
        self.info_flag.as_deref()
    }

    pub fn usage_error(&self, why: &str) -> UsageError {
        UsageError(format!("{why}; usage: berth {} {}", self.command, self.usage))
    }

    pub fn switch(&self, name: &str) -> bool {
        self.switches.contains(&name)
    }

    /// The option's last value.
    pub fn option(&self, name: &str) -> Option<&OsStr> {
        self.options.get(name).and_then(|v| v.last()).map(|v| v.as_os_str())
    }

    /// An option's value as text (lossy), if given.
    pub fn option_text(&self, name: &str) -> Option<String> {
        self.option(name).map(|v| v.to_string_lossy().into_owned())
    }

    /// Every value of a repeatable option (`--env A=1 --env B=2`), in order.
    pub fn option_all(&self, name: &str) -> Vec<&OsStr> {
        self.options.get(name).map(|v| v.iter().map(|s| s.as_os_str()).collect()).unwrap_or_default()
    }

    /// Checks the number of positionals is within `min..=max`.
    pub fn expect(&self, min: usize, max: usize) -> Result<(), UsageError> {
        let n = self.positional.len();
        if n < min {
            Err(self.usage_error("missing arguments"))
        } else if n > max {
            Err(self.usage_error(&format!("unexpected argument {:?}", self.positional[max].to_string_lossy())))
        } else {
            Ok(())
        }
    }

    pub fn positional(&self) -> &[OsString] {
        &self.positional
    }

    pub fn get(&self, i: usize) -> Option<&OsStr> {
        self.positional.get(i).map(|s| s.as_os_str())
    }

    /// Whom a `NAMESPACE:set` or report is about: the app named first, or
    /// with `--global` the host's defaults. Returns it and the index of
    /// the first positional after it.
    pub fn target(&self) -> anyhow::Result<(Option<AppName>, usize)> {
        if self.switch("--global") { Ok((None, 0)) } else { Ok((Some(self.app(0)?), 1)) }
    }

    /// The positional at `i` as text (lossy), if there is one.
    pub fn text(&self, i: usize) -> Option<String> {
        self.get(i).map(|v| v.to_string_lossy().into_owned())
    }

    /// The positional at `i` as an app name, validated.
    pub fn app(&self, i: usize) -> anyhow::Result<AppName> {
        let raw = self.get(i).ok_or_else(|| self.usage_error("missing APP"))?;
        Ok(AppName::parse(raw)?)
    }
}
