//! Process type names (`web`, `worker`, `release`), as Procfiles and app.json give them.

pub fn is_process_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 63 && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The most containers one process type may run (`ps:scale`, app.json formation).
pub const MAX_SCALE: u32 = 100;
