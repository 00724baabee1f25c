//! Plain data that state stores and deploy uses: names, port maps, nginx
//! options, health checks, deploy scripts, ACME answers. Each type is
//! validated when made and knows nothing of files, processes or nginx, so
//! `state` and `deploy` both depend on it and never on each other's types.

pub mod acme;
pub mod checks;
pub mod container;
pub mod cron;
pub mod domain;
pub mod git_props;
pub mod ports;
pub mod process;
pub mod repo_path;
pub mod scripts;
pub mod site;
