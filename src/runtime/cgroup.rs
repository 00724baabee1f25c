//! Reading a container's cgroup (v1 or v2): OOM kills, memory in use, and
//! whether anything is left of it.

use std::path::PathBuf;

fn read_key(file: PathBuf, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

/// How many times the kernel's OOM killer struck in this cgroup.
pub fn oom_kills(cgroup_path: &str) -> u64 {
    let rel = cgroup_path.trim_start_matches('/');
    let v1 = PathBuf::from("/sys/fs/cgroup/memory").join(rel).join("memory.oom_control");
    let v2 = PathBuf::from("/sys/fs/cgroup").join(rel).join("memory.events");
    read_key(v1, "oom_kill ").or_else(|| read_key(v2, "oom_kill ")).unwrap_or(0)
}

/// Bytes of memory in use, if the cgroup exists.
pub fn memory_bytes(cgroup_path: &str) -> Option<u64> {
    let rel = cgroup_path.trim_start_matches('/');
    let v1 = PathBuf::from("/sys/fs/cgroup/memory").join(rel).join("memory.usage_in_bytes");
    let v2 = PathBuf::from("/sys/fs/cgroup").join(rel).join("memory.current");
    [v1, v2].into_iter().find_map(|f| std::fs::read_to_string(f).ok()?.trim().parse().ok())
}
