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
    std::process::exit(cli::main());
}
