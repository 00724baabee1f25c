//! How each berth command stands to Dokku's: the same command, Dokku's name
//! for it, or berth's own with the reason. `berth help --markdown` writes
//! docs/COMMANDS.md's command table from the tables and this list, and a
//! test fails when the file drifts from it.

/// A berth command beside Dokku's.
pub enum Dokku {
    /// Dokku has a command of this name and meaning.
    Same,
    /// Dokku names it so.
    Named(&'static str),
    /// Dokku has none; why berth does.
    Own(&'static str),
}

const DOCKER: &str = "berth runs containers itself; Dokku leaves this to Docker";
const STORE: &str = "berth keeps its own image store; Dokku uses Docker's";
const STACK: &str = "berth builds on its own stacks; Dokku pulls herokuish's";

/// Every command that is not simply Dokku's of the same name.
const DIFFERENCES: &[(&str, Dokku)] = &[
    ("apps:info", Dokku::Named("apps:report")),
    ("proxy:ports", Dokku::Named("ports:list")),
    ("proxy:ports-add", Dokku::Named("ports:add")),
    ("proxy:ports-set", Dokku::Named("ports:set")),
    ("proxy:ports-remove", Dokku::Named("ports:remove")),
    ("proxy:ports-clear", Dokku::Named("ports:clear")),
    ("proxy:rebuild", Dokku::Named("proxy:build-config")),
    ("domains:report-global", Dokku::Named("domains:report --global")),
    ("apps:rebase", Dokku::Own("Cloud Native Buildpacks' rebase: a new run image under the app's layers, no build")),
    ("builds:create", Dokku::Own("a build from a host directory, without a push (admin)")),
    ("bundle:create", Dokku::Own("air-gapped hosts: stacks, buildpacks and images in one archive")),
    ("bundle:load", Dokku::Own("air-gapped hosts: stacks, buildpacks and images in one archive")),
    ("cron:scheduler", Dokku::Own("berth runs app.json cron itself; Dokku writes a crontab")),
    ("releases", Dokku::Own("Heroku's releases; Dokku keeps no release history")),
    ("releases:info", Dokku::Own("Heroku's releases:info")),
    ("releases:rollback", Dokku::Own("Heroku's releases:rollback: a release's image and config again, no build")),
    ("releases:set", Dokku::Own("how many releases keep their images")),
    ("registry:push", Dokku::Own("push any release on demand; Dokku pushes only on release")),
    ("ssh-keys:grant", Dokku::Own("app-scoped keys; every Dokku key is an admin")),
    ("ssh-keys:revoke", Dokku::Own("app-scoped keys; every Dokku key is an admin")),
    ("ssh-keys:report", Dokku::Own("app-scoped keys; every Dokku key is an admin")),
    ("store:du", Dokku::Own(STORE)),
    ("store:fsck", Dokku::Own(STORE)),
    ("store:gc", Dokku::Own(STORE)),
    ("stacks:build", Dokku::Own(STACK)),
    ("stacks:export", Dokku::Own(STACK)),
    ("stacks:import", Dokku::Own(STACK)),
    ("stacks:list", Dokku::Own(STACK)),
    ("stacks:outdated", Dokku::Own(STACK)),
    ("stacks:pull", Dokku::Own(STACK)),
    ("stacks:push", Dokku::Own(STACK)),
    ("stacks:report", Dokku::Own(STACK)),
];

/// What Dokku has for `command`.
pub fn equivalent(command: &str) -> &'static Dokku {
    if let Some((_, d)) = DIFFERENCES.iter().find(|(name, _)| *name == command) {
        return d;
    }
    match command.split(':').next() {
        Some("containers") => &Dokku::Own(DOCKER),
        Some("images") => &Dokku::Own(STORE),
        _ => &Dokku::Same,
    }
}

/// The command table of docs/COMMANDS.md.
pub fn markdown(commands: &[&super::Command]) -> String {
    let cell = |text: &str| text.replace('|', "\\|");
    let mut out = String::from("| command | what it does | Dokku |\n|---|---|---|\n");
    for c in commands {
        let dokku = match equivalent(c.name) {
            Dokku::Same => "same".to_owned(),
            Dokku::Named(name) => format!("`{name}`"),
            Dokku::Own(why) => format!("none: {why}"),
        };
        out.push_str(&format!("| `{}` | {} | {} |\n", cell(format!("{} {}", c.name, c.usage).trim_end()), cell(c.about), dokku));
    }
    out
}
