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

/// Moving a task into a cgroup takes a kernel lock (cgroup_threadgroup_rwsem)
/// whose first writer waits for an RCU grace period: 6-13 ms on a v1 host,
/// most of a container's start. Writers that follow within a few
/// milliseconds find the lock ready and take 0.1 ms. Rewriting our own pid
/// into the cgroup we are already in is such a write and moves nothing, so
/// doing it on a thread while the network and the root are prepared lets
/// the container's own join (libcontainer's, moments later) skip the wait.
pub struct JoinWarmUp(Option<std::thread::JoinHandle<()>>);

/// Starts the warm-up; `wait` before anything forks.
pub fn warm_up_joins() -> JoinWarmUp {
    let Some(procs) = own_procs_file() else { return JoinWarmUp(None) };
    let pid = std::process::id().to_string();
    JoinWarmUp(
        std::thread::Builder::new()
            .name("cgroup-warm".into())
            .spawn(move || {
                // Nothing depends on it: a failed write only means no head start.
                let _ = std::fs::write(procs, pid);
            })
            .ok(),
    )
}

impl JoinWarmUp {
    /// Waits for the warm-up thread, so no second thread runs while
    /// libcontainer clones the container's processes.
    pub fn wait(self) {
        if let Some(thread) = self.0 {
            let _ = thread.join();
        }
    }
}

/// The `cgroup.procs` of this process's own cgroup: in the v1 pids
/// hierarchy where there is one, else in the v2 unified one.
fn own_procs_file() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path_of = |wanted: &str| {
        own.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            (controllers == wanted).then(|| path.trim_start_matches('/').to_owned())
        })
    };
    let candidates = [
        path_of("pids").map(|p| PathBuf::from("/sys/fs/cgroup/pids").join(p)),
        path_of("").map(|p| PathBuf::from("/sys/fs/cgroup").join(p)),
    ];
    candidates.into_iter().flatten().map(|dir| dir.join("cgroup.procs")).find(|f| f.exists())
}
