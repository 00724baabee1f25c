//! berth: a Docker-free, Dokku-style PaaS in one binary.
#![deny(unsafe_code)]

mod app;
mod build;
mod cli;
mod deploy;
mod git;
mod image;
mod logging;
mod model;
mod progress;
mod registry;
mod runtime;
mod stack;
mod state;

fn main() {
    // Image trees, overlay roots and mount points get the modes berth gives
    // them, not what a caller's umask (a plugin's 077) would take away; state
    // that must be private is written with its own mode and under a 0700 root.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    std::process::exit(cli::main());
}
