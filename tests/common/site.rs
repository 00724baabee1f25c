//! A berth host for tests that run containers: its own BERTH_ROOT with the
//! stack (from the machine's stack cache), its own bridge and subnet, and
//! everything removed again when it is dropped.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use super::Host;

/// The stack cache install.sh fills and the tests share.
pub const STACK_CACHE: &str = "/var/cache/berth/stacks";

pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n")
}

pub struct Site {
    pub host: Host,
    pub bridge: String,
    pub subnet: String,
}

impl Site {
    /// `subnet` like `10.213.1.0/24`; `extra_config` is appended to config.toml.
    pub fn new(bridge: &str, subnet: &str, extra_config: &str) -> Site {
        let host = Host::new();
        fs::write(host.path().join("config.toml"), format!("[network]\nbridge = \"{bridge}\"\nsubnet = \"{subnet}\"\n{extra_config}"))
            .unwrap();
        let run = host
            .command(["stacks:build", "bookworm", "--cache", STACK_CACHE])
            .env("BERTH_STACKS", format!("{}/stacks", env!("CARGO_MANIFEST_DIR")))
            .output()
            .unwrap();
        assert!(run.status.success(), "stacks:build: {}", String::from_utf8_lossy(&run.stderr));
        Site { host, bridge: bridge.to_owned(), subnet: subnet.to_owned() }
    }
}

impl Site {
    pub fn run(&self, args: &[&str]) -> String {
        let mut all = vec!["containers:run", "berth/stack-run:bookworm"];
        all.extend_from_slice(args);
        self.host.ok(all).out().trim().to_owned()
    }

    pub fn info(&self, id: &str) -> serde_json::Value {
        let list: serde_json::Value = serde_json::from_str(&self.host.ok(["containers:list", "--format", "json"]).out()).unwrap();
        list.as_array().unwrap().iter().find(|c| c["id"] == id).cloned().unwrap_or_else(|| panic!("{id} not listed"))
    }

    pub fn wait_for(&self, id: &str, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let info = self.info(id);
            if done(&info) {
                return info;
            }
            assert!(Instant::now() < deadline, "{id} never {what}: {info}\n{}", self.logs(id));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self, id: &str) -> String {
        self.host.run(["containers:logs", id]).out()
    }

    /// Everything a container could leave behind on the host.
    pub fn leftovers(&self, id: &str) -> Vec<String> {
        let mut found = Vec::new();
        let root = self.host.path().to_string_lossy().into_owned();
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        found.extend(mounts.lines().filter(|l| l.contains(&root)).map(|l| format!("mount {l}")));
        // Host-wide names carry a tag of the berth root: berth-<tag>-<id>.
        let suffix = format!("-{id}");
        for netns in fs::read_dir("/run/netns").into_iter().flatten().flatten() {
            let name = netns.file_name().to_string_lossy().into_owned();
            if name.starts_with("berth-") && name.ends_with(&suffix) {
                found.push(format!("netns {name}"));
            }
        }
        for entry in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            for dir in fs::read_dir(entry.path().join("berth")).into_iter().flatten().flatten() {
                if dir.file_name().to_string_lossy().ends_with(&suffix) {
                    found.push(format!("cgroup {}", dir.path().display()));
                }
            }
        }
        let addresses = fs::read_to_string(self.host.path().join("network/addresses.json")).unwrap_or_default();
        if addresses.contains(id) {
            found.push(format!("address {addresses}"));
        }
        if self.host.path().join("containers").join(id).exists() {
            found.push("container directory".into());
        }
        found
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        for id in fs::read_dir(self.host.path().join("containers")).into_iter().flatten().flatten() {
            let _ = self.host.run(["containers:rm", &id.file_name().to_string_lossy(), "--force"]);
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).output();
        let _ = Command::new("iptables")
            .args(["-t", "nat", "-D", "POSTROUTING", "-s", &self.subnet, "!", "-o", &self.bridge, "-j", "MASQUERADE"])
            .output();
    }
}
