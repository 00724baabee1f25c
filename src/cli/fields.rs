//! Reports as Dokku prints them, so scripts written for Dokku read berth's:
//! `=====> APP KIND information`, then one line per field, sorted by its
//! flag and padded as Dokku pads; `--FLAG` prints that field's value
//! alone; `--format json` prints every field as a flat object of strings
//! (plus any structured members a berth report adds). Also the two halves
//! of every `NAMESPACE:set APP|--global KEY VALUE`: where the value goes.

use anyhow::bail;

use super::{Args, Ctx, wants_json};
use crate::app::AppName;
use crate::state::apps::{self, AppMeta};
use crate::state::settings::Settings;

/// The reports that print through `Report`, whose flags name fields.
pub const REPORTS: &[&str] = &[
    "apps:report",
    "apps:info",
    "app-json:report",
    "builder:report",
    "buildpacks:report",
    "builds:report",
    "certs:report",
    "checks:report",
    "cron:report",
    "domains:report",
    "git:report",
    "letsencrypt:report",
    "logs:report",
    "nginx:report",
    "ports:report",
    "proxy:report",
    "ps:report",
    "registry:report",
    "resource:report",
    "storage:report",
];

pub struct Report {
    kind: &'static str,
    subject: String,
    fields: Vec<(String, String)>,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl Report {
    /// A report on `subject` (an app, or `--global`) of `kind` (`ps`, `git`).
    pub fn new(kind: &'static str, subject: impl ToString) -> Report {
        Report { kind, subject: subject.to_string(), fields: Vec::new(), extra: serde_json::Map::new() }
    }

    /// One field; `flag` without its dashes (`ps-restart-policy`).
    pub fn field(mut self, flag: &str, value: impl ToString) -> Report {
        self.fields.push((flag.to_owned(), value.to_string()));
        self
    }

    /// A setting an app may set and the host may default, as Dokku reports
    /// it: the app's value, the global one, and the one that applies.
    pub fn setting(self, name: &str, app: Option<String>, global: Option<String>, default: &str) -> Report {
        let computed = app.clone().or_else(|| global.clone()).unwrap_or_else(|| default.to_owned());
        let kind = self.kind;
        self.field(&format!("{kind}-{name}"), app.unwrap_or_default())
            .field(&format!("{kind}-global-{name}"), global.unwrap_or_default())
            .field(&format!("{kind}-computed-{name}"), computed)
    }

    /// Only the global and computed halves, for `REPORT --global`.
    pub fn global_setting(self, name: &str, global: Option<String>, default: &str) -> Report {
        let computed = global.clone().unwrap_or_else(|| default.to_owned());
        let kind = self.kind;
        self.field(&format!("{kind}-global-{name}"), global.unwrap_or_default()).field(&format!("{kind}-computed-{name}"), computed)
    }

    /// A structured member of the JSON form only (berth's detail).
    pub fn extra(mut self, key: &str, value: serde_json::Value) -> Report {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// Prints the report as `args` ask: one field, JSON, or the table.
    /// Returns whether the whole table was printed (a caller may add to it).
    pub fn print(mut self, args: &Args) -> anyhow::Result<bool> {
        self.fields.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(flag) = args.info_flag() {
            let wanted = flag.trim_start_matches("--");
            if let Some((_, value)) = self.fields.iter().find(|(f, _)| f == wanted) {
                println!("{value}");
                return Ok(false);
            }
            let valid: Vec<String> = self.fields.iter().map(|(f, _)| format!("--{f}")).collect();
            let hint = super::did_you_mean(flag, valid.iter().map(String::as_str)).map(|s| format!("did you mean {s}? "));
            bail!("invalid flag passed ({flag}); {}valid flags: {}", hint.unwrap_or_default(), valid.join(", "));
        }
        if wants_json(args)? {
            let mut map = self.extra;
            for (flag, value) in self.fields {
                map.insert(flag, serde_json::Value::String(value));
            }
            super::print_json(&map)?;
            return Ok(false);
        }
        print!("{}", self.table());
        Ok(true)
    }

    fn table(&self) -> String {
        let width = self.fields.iter().map(|(f, _)| f.len() + 2).max().unwrap_or(0).max(31);
        let mut out = format!("=====> {} {} information\n", self.subject, self.kind);
        for (flag, value) in &self.fields {
            let label = format!("{}:", upper_first(&flag.replace(['-', '.'], " ")));
            out.push_str(&format!("       {label:<width$}{value}\n"));
        }
        out
    }
}

/// Writes a setting to the host's config.toml (`--global`) or to the app.
pub fn store(ctx: &Ctx, app: Option<AppName>, global: impl FnOnce(&mut Settings), own: impl FnOnce(&mut AppMeta)) -> anyhow::Result<()> {
    match app {
        None => Settings::update(&ctx.root, global)?,
        Some(name) => {
            let locked = apps::lock(&ctx.root, &name)?;
            let mut meta = apps::meta(&locked.app)?;
            own(&mut meta);
            apps::write_meta(&locked, &meta)?;
        }
    }
    Ok(())
}

/// The apps a `*:report [APP]` covers: the one named, or all of them.
pub fn report_apps(ctx: &Ctx, args: &Args) -> anyhow::Result<Vec<AppName>> {
    args.expect(0, 1)?;
    Ok(match args.get(0) {
        Some(_) => vec![args.app(0)?],
        None => apps::list(&ctx.root)?,
    })
}

fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_and_sorts_as_dokku() {
        let mut report = Report::new("ps", "cat").field("ps-restart-policy", "on-failure:10").field("deployed", "true");
        report.fields.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            report.table(),
            "=====> cat ps information\n       Deployed:                      true\n       Ps restart policy:             on-failure:10\n"
        );
    }
}
