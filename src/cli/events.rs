//! `events*`: Dokku's event log. `events:on` makes berth append one line
//! per app event (post-create, pre-build, post-deploy, ...) to
//! `$BERTH_ROOT/logs/events.log`; `events` shows its last lines.

use super::{Args, Command, Ctx};
use crate::state::events::{EVENTS, log_file};
use crate::state::settings::Settings;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "events",
        usage: "[-t]",
        about: "The last 100 lines of the event log (-t follows it)",
        switches: &["-t", "--tail"],
        options: &[],
        run: show,
    },
    Command { name: "events:list", usage: "", about: "The events berth logs", switches: &[], options: &[], run: list },
    Command {
        name: "events:on",
        usage: "",
        about: "Log every app event to $BERTH_ROOT/logs/events.log",
        switches: &[],
        options: &[],
        run: on,
    },
    Command { name: "events:off", usage: "", about: "Stop logging app events", switches: &[], options: &[], run: off },
];

fn show(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    let file = log_file(&ctx.root);
    if !file.is_file() {
        let on = Settings::load(&ctx.root)?.events.enabled;
        anyhow::bail!("no events logged yet{}", if on { "" } else { "; turn the log on with events:on" });
    }
    super::tail_file(&file, args.switch("-t") || args.switch("--tail"))
}

fn list(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    if !Settings::load(&ctx.root)?.events.enabled {
        println!(" !     Events logger is disabled (events:on)");
        return Ok(());
    }
    println!("=====> Events currently logged");
    for event in EVENTS {
        println!("{event}");
    }
    Ok(())
}

fn switch(ctx: &Ctx, args: Args, enabled: bool) -> anyhow::Result<()> {
    args.expect(0, 0)?;
    Settings::update(&ctx.root, |s| s.events.enabled = enabled)?;
    println!("-----> {} berth events logger", if enabled { "Enabling" } else { "Disabling" });
    Ok(())
}

fn on(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    switch(ctx, args, true)
}

fn off(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    switch(ctx, args, false)
}
