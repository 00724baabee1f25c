//! Containers: images from the store run through youki's libcontainer, one
//! monitor process (`berth shim`) each. Knows nothing of apps or git.

pub mod attached;
pub mod balancer;
pub mod cgroup;
pub mod control;
pub mod error;
pub mod firewall;
pub mod launch;
pub mod logs;
pub mod netlink;
pub mod network;
pub mod nft;
pub mod oneshot;
pub mod rootfs;
pub mod shim;
pub mod spec;
pub mod store;
pub mod trim;

use std::fmt;

pub use network::NetworkMode;

/// The label naming the app whose process a container runs.
pub const APP_LABEL: &str = "io.berth.app";
/// One-off containers (`run`) carry this instead of the app label.
pub const ONE_OFF_LABEL: &str = "io.berth.run-of";

/// The app a container belongs to: its process or one of its one-offs.
pub fn app_of(config: &ContainerConfig) -> Option<&str> {
    config.labels.get(APP_LABEL).or_else(|| config.labels.get(ONE_OFF_LABEL)).map(String::as_str)
}
pub use store::{ContainerConfig, Limits, RestartPolicy};

#[derive(Debug, thiserror::Error)]
#[error("container id {0:?} is not valid: use a-z, 0-9, '.', '_' and '-', starting with a letter or digit, at most 64 characters")]
pub struct InvalidContainerId(String);

/// A container's id: its directory name, hostname, cgroup and netns suffix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl ContainerId {
    pub fn parse(raw: &str) -> Result<ContainerId, InvalidContainerId> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if ok { Ok(ContainerId(raw.to_owned())) } else { Err(InvalidContainerId(raw.to_owned())) }
    }

    /// A fresh random id: 12 hex digits, as Docker shows them.
    pub fn random() -> ContainerId {
        let mut bytes = [0u8; 6];
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            use std::io::Read;
            let _ = f.read_exact(&mut bytes);
        }
        ContainerId(hex::encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContainerId {
    type Error = InvalidContainerId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ContainerId::parse(&s)
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> String {
        id.0
    }
}

/// A short tag of a `BERTH_ROOT`: network namespaces, veths and cgroups are
/// host-wide names, so two berth roots on one host (the tests, or a second
/// installation) must never pick the same ones for equal container ids.
pub fn scope(root: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    crate::image::Digest::of(canonical.as_os_str().as_bytes()).hex()[..8].to_owned()
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
