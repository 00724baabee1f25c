//! Git over SSH: the forced command every key runs, the bare repositories
//! pushes land in, and the hook that turns a push into a deploy.

pub mod command;
pub mod hook;
pub mod keys;
pub mod remote_auth;
pub mod repo;
pub mod sync;
