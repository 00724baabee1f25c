//! Stable addresses in front of containers. A vip is an address of the
//! bridge's subnet that never moves (an app's web processes get one), and
//! nginx only ever names it. The host's own new connections to a vip are
//! translated (nftables, output hook) round robin to the containers standing
//! behind it; a vip with none refuses at once (TCP reset), so nginx answers
//! its error page instead of waiting.
//!
//! Changing who stands behind a vip is one nftables transaction: a
//! connection already open keeps its container (conntrack holds its
//! translation), new ones go to the new set, and nginx is never reloaded.
//! The table is rebuilt whole from the containers' own records on every
//! change: a container stands behind a vip while its `serving` file (written
//! by a deploy's switch) names it and its process runs, so a monitor whose
//! process died syncs, and the dead container leaves the set before nginx
//! connects again.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::net::Ipv4Addr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::control::current_state;
use super::network::{self, NetworkError};
use super::store::{self as containers, ContainerDir, Status};
use super::{ContainerId, scope};
use crate::state::PathIo;
use crate::state::atomic;
use crate::state::lock::{FileLock, LockError};
use crate::state::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum BalancerError {
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Io(#[from] PathIo),
    #[error(transparent)]
    Nft(#[from] super::nft::NftError),
}

/// Address-book owners of vips start with this; container ids cannot.
const OWNER_PREFIX: &str = "vip:";

/// The stable address of `name` (an app's web, say), made on first use.
pub fn vip(root: &Path, settings: &Settings, name: &str) -> Result<Ipv4Addr, BalancerError> {
    Ok(network::allocate_for(root, settings.subnet(), &format!("{OWNER_PREFIX}{name}"))?)
}

/// The stable address of `name` if it has one.
pub fn existing_vip(root: &Path, name: &str) -> Option<Ipv4Addr> {
    let owner = format!("{OWNER_PREFIX}{name}");
    network::owned_with_prefix(root, OWNER_PREFIX).ok()?.into_iter().find(|(_, o)| *o == owner).map(|(a, _)| a)
}

/// `name`'s vip goes to `to` (an app renamed keeps its address).
pub fn rename_vip(root: &Path, from: &str, to: &str) -> Result<(), BalancerError> {
    network::rename_owner(root, &format!("{OWNER_PREFIX}{from}"), &format!("{OWNER_PREFIX}{to}"))?;
    sync(root)
}

/// Frees `name`'s vip and its routes.
pub fn forget_vip(root: &Path, name: &str) -> Result<(), BalancerError> {
    network::release_of(root, &format!("{OWNER_PREFIX}{name}"))?;
    sync(root)
}

fn serving_file(root: &Path, id: &ContainerId) -> PathBuf {
    ContainerDir::new(root, id).dir.join("serving")
}

/// Puts the container behind `vip` (from the next `sync` on).
pub fn admit(root: &Path, id: &ContainerId, vip: Ipv4Addr) -> Result<(), BalancerError> {
    let path = serving_file(root, id);
    atomic::write_atomic(&path, vip.to_string().as_bytes()).map_err(|e| PathIo { action: "write", path, source: e.source })?;
    Ok(())
}

/// Takes the container out of its vip's set (from the next `sync` on).
pub fn withdraw(root: &Path, id: &ContainerId) -> Result<(), BalancerError> {
    let path = serving_file(root, id);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(PathIo { action: "remove", path, source: e }.into()),
        _ => Ok(()),
    }
}

/// The vip the container was admitted behind, if any.
pub fn serving(root: &Path, id: &ContainerId) -> Option<Ipv4Addr> {
    let mut text = String::new();
    fs::File::open(serving_file(root, id)).ok()?.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Every container standing behind a vip now (admitted, its process
/// running), with its vip and address: one pass over the containers.
fn serving_now(root: &Path) -> Vec<(Ipv4Addr, ContainerId, Ipv4Addr)> {
    containers::list(root)
        .into_iter()
        .filter_map(|id| {
            let vip = serving(root, &id)?;
            let state = current_state(&ContainerDir::new(root, &id)).ok()?;
            let running = state.status == Status::Running && state.pid.is_some();
            let address = state.address?.parse().ok().filter(|_| running)?;
            Some((vip, id, address))
        })
        .collect()
}

/// The containers behind `vip` now: admitted, and their process running.
pub fn backends(root: &Path, vip: Ipv4Addr) -> Vec<(ContainerId, Ipv4Addr)> {
    serving_now(root).into_iter().filter(|(v, ..)| *v == vip).map(|(_, id, address)| (id, address)).collect()
}

/// Rebuilds berth's nftables table for this root from the vips and the
/// containers behind them, in one transaction.
pub fn sync(root: &Path) -> Result<(), BalancerError> {
    let dir = root.join("network");
    fs::create_dir_all(&dir).map_err(|source| PathIo { action: "create", path: dir.clone(), source })?;
    // Two syncs at once would each write what they saw; the later one must
    // also have seen last.
    let _lock = FileLock::acquire(&dir.join("balancer.lock"))?;
    let mut routes: BTreeMap<Ipv4Addr, Vec<Ipv4Addr>> =
        network::owned_with_prefix(root, OWNER_PREFIX)?.into_iter().map(|(vip, _)| (vip, Vec::new())).collect();
    for (vip, _, address) in serving_now(root) {
        // A container admitted behind a vip since freed routes nowhere.
        if let Some(backends) = routes.get_mut(&vip) {
            backends.push(address);
        }
    }
    tracing::debug!(?routes, "routing vips");
    let mut script = forget_gone_roots(root);
    script.push_str(&table_script(&table_name(root), &routes));
    Ok(super::nft::apply(&script)?)
}

/// Where each berth root's table is recorded: `/run` is emptied at boot,
/// as nftables is.
const ROOTS: &str = "/run/berth/tables";

/// Records this root's table, and returns the script that removes the
/// tables of roots that no longer exist. A table outlives its root (a test,
/// a moved install) and would keep routing addresses that the next root on
/// the same subnet hands to its containers.
fn forget_gone_roots(root: &Path) -> String {
    let own = scope(root);
    let dir = Path::new(ROOTS);
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    if fs::create_dir_all(dir).is_ok() {
        let _ = atomic::write_atomic(&dir.join(&own), canonical.as_os_str().as_encoded_bytes());
    }
    let mut script = String::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == own || name.len() != 8 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let mut recorded = Vec::new();
        let _ = fs::File::open(entry.path()).and_then(|f| f.take(4096).read_to_end(&mut recorded));
        let gone = !Path::new(std::ffi::OsStr::from_bytes(&recorded)).join("network").is_dir();
        if gone {
            script.push_str(&format!("table ip berth_{name} {{ }}\ndelete table ip berth_{name}\n"));
            let _ = fs::remove_file(entry.path());
        }
    }
    script
}

/// The name of berth's nftables table for this root.
pub fn table_name(root: &Path) -> String {
    format!("berth_{}", scope(root))
}

fn chain_of(vip: Ipv4Addr) -> String {
    let [a, b, c, d] = vip.octets();
    format!("vip_{a}_{b}_{c}_{d}")
}

/// The whole table. Made only of addresses and a hex scope.
fn table_script(table: &str, routes: &BTreeMap<Ipv4Addr, Vec<Ipv4Addr>>) -> String {
    let mut text = format!("table ip {table} {{ }}\ndelete table ip {table}\n");
    if routes.is_empty() {
        return text;
    }
    let jumps: Vec<String> = routes.keys().map(|vip| format!("{vip} : jump {}", chain_of(*vip))).collect();
    let vips: Vec<String> = routes.keys().map(Ipv4Addr::to_string).collect();
    text.push_str(&format!("table ip {table} {{\n"));
    text.push_str(&format!(
        "  chain route {{\n    type nat hook output priority -100; policy accept;\n    ip daddr vmap {{ {} }}\n  }}\n",
        jumps.join(", ")
    ));
    text.push_str(&format!(
        "  chain refuse {{\n    type filter hook output priority 0; policy accept;\n    ip daddr {{ {} }} reject with tcp reset\n  }}\n",
        vips.join(", ")
    ));
    for (vip, backends) in routes {
        let rule = if backends.is_empty() {
            String::new()
        } else {
            let members: Vec<String> = backends.iter().enumerate().map(|(i, a)| format!("{i} : {a}")).collect();
            format!("    dnat to numgen inc mod {} map {{ {} }}\n", backends.len(), members.join(", "))
        };
        text.push_str(&format!("  chain {} {{\n{rule}  }}\n", chain_of(*vip)));
    }
    text.push_str("}\n");
    text
}

/// TCP connections the container's process has open on `port` (accepted
/// and not yet closed), read from its network namespace's table.
pub fn open_connections(root: &Path, id: &ContainerId, port: u16) -> usize {
    let Some(pid) = current_state(&ContainerDir::new(root, id)).ok().and_then(|s| s.pid) else { return 0 };
    let mut text = String::new();
    let Ok(file) = fs::File::open(format!("/proc/{pid}/net/tcp")) else { return 0 };
    // The kernel writes this file; the cap only bounds a huge table.
    let _ = file.take(8 << 20).read_to_string(&mut text);
    let local = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some((*fields.get(1)?, *fields.get(3)?))
        })
        // 01 established, 03 SYN received, 08 close wait: a request may still be answered.
        .filter(|(address, state)| address.ends_with(&local) && matches!(*state, "01" | "03" | "08"))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_routes_each_vip_to_its_containers_and_refuses_an_empty_one() {
        let routes = BTreeMap::from([
            (Ipv4Addr::new(10, 88, 0, 9), vec![Ipv4Addr::new(10, 88, 0, 2), Ipv4Addr::new(10, 88, 0, 3)]),
            (Ipv4Addr::new(10, 88, 0, 10), Vec::new()),
        ]);
        let text = table_script("berth_0a1b2c3d", &routes);
        assert!(text.starts_with("table ip berth_0a1b2c3d { }\ndelete table ip berth_0a1b2c3d\n"), "{text}");
        assert!(text.contains("ip daddr vmap { 10.88.0.9 : jump vip_10_88_0_9, 10.88.0.10 : jump vip_10_88_0_10 }"), "{text}");
        assert!(text.contains("ip daddr { 10.88.0.9, 10.88.0.10 } reject with tcp reset"), "{text}");
        assert!(text.contains("chain vip_10_88_0_9 {\n    dnat to numgen inc mod 2 map { 0 : 10.88.0.2, 1 : 10.88.0.3 }\n  }"), "{text}");
        assert!(text.contains("chain vip_10_88_0_10 {\n  }"), "{text}");
        let empty = table_script("berth_0a1b2c3d", &BTreeMap::new());
        assert_eq!(empty, "table ip berth_0a1b2c3d { }\ndelete table ip berth_0a1b2c3d\n");
    }
}
