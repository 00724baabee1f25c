//! Backing services' firewall: an isolated container (a database) takes
//! connections over the bridge only from the containers of the apps on its
//! allow list (`containers:allow`). One nftables bridge table per berth
//! root holds the rules, rebuilt whole in one transaction whenever a
//! container gets or gives up an address or an allow list changes, so no
//! moment exists with half of them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

use super::network::{self, NetworkError};
use super::store::{self, ContainerDir};
use crate::state::lock::{FileLock, LockError};

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Dir(#[from] crate::state::PathIo),
    #[error(transparent)]
    Nft(#[from] super::nft::NftError),
}

/// Each guarded service's address, with the addresses allowed to reach it.
type Guarded = BTreeMap<Ipv4Addr, BTreeSet<Ipv4Addr>>;

fn table_name(root: &Path) -> String {
    format!("berth_guard_{}", super::scope(root))
}

/// Brings the rules in line with the containers, addresses and allow lists.
pub fn sync(root: &Path) -> Result<(), FirewallError> {
    let dir = root.join("network");
    std::fs::create_dir_all(&dir).map_err(|source| crate::state::PathIo { action: "create", path: dir.clone(), source })?;
    // Two syncs at once must not apply what each saw in the wrong order.
    let _lock = FileLock::acquire(&dir.join("firewall.lock"))?;
    let guarded = guarded(root)?;
    // Most hosts run no service: a container start then costs no nft run.
    // The marker says a table may exist (made here), so it is emptied once.
    let marker = dir.join("firewall.on");
    if guarded.is_empty() && !marker.exists() {
        return Ok(());
    }
    super::nft::apply(&script(&table_name(root), &guarded))?;
    let (action, done) = match guarded.is_empty() {
        true => ("remove", std::fs::remove_file(&marker)),
        false => ("write", std::fs::write(&marker, b"")),
    };
    Ok(done.map_err(|source| crate::state::PathIo { action, path: marker, source })?)
}

fn guarded(root: &Path) -> Result<Guarded, FirewallError> {
    let addresses = network::addresses(root)?;
    let mut of_app: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
    let mut services = Vec::new();
    for id in store::list(root) {
        let paths = ContainerDir::new(root, &id);
        let (Ok(config), Some(address)) = (paths.config(), addresses.get(id.as_str())) else { continue };
        if let Some(app) = super::app_of(&config) {
            of_app.entry(app.to_owned()).or_default().push(*address);
        }
        if config.isolated {
            // An unreadable list admits nobody.
            services.push((*address, paths.allowed().unwrap_or_default()));
        }
    }
    Ok(services
        .into_iter()
        .map(|(address, apps)| {
            let allowed = apps.iter().filter_map(|app| of_app.get(app)).flatten().copied().collect();
            (address, allowed)
        })
        .collect())
}

/// The nft script: the table declared (so the delete cannot fail), deleted,
/// and made again with one accept and one drop rule per service.
fn script(table: &str, guarded: &Guarded) -> String {
    let mut text = format!("table bridge {table} {{ }}\ndelete table bridge {table}\n");
    if guarded.is_empty() {
        return text;
    }
    text.push_str(&format!("table bridge {table} {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n"));
    for (service, allowed) in guarded {
        if !allowed.is_empty() {
            let sources: Vec<String> = allowed.iter().map(Ipv4Addr::to_string).collect();
            text.push_str(&format!("    ip daddr {service} ip saddr {{ {} }} accept\n", sources.join(", ")));
        }
        text.push_str(&format!("    ip daddr {service} drop\n"));
    }
    text.push_str("  }\n}\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_admits_its_apps_and_drops_the_rest() {
        let db = Ipv4Addr::new(10, 88, 0, 5);
        let lonely = Ipv4Addr::new(10, 88, 0, 6);
        let guarded =
            Guarded::from([(db, BTreeSet::from([Ipv4Addr::new(10, 88, 0, 2), Ipv4Addr::new(10, 88, 0, 3)])), (lonely, BTreeSet::new())]);
        let text = script("berth_guard_0a1b2c3d", &guarded);
        assert!(text.starts_with("table bridge berth_guard_0a1b2c3d { }\ndelete table bridge berth_guard_0a1b2c3d\n"), "{text}");
        assert!(text.contains("    ip daddr 10.88.0.5 ip saddr { 10.88.0.2, 10.88.0.3 } accept\n    ip daddr 10.88.0.5 drop\n"), "{text}");
        assert!(text.contains("    ip daddr 10.88.0.6 drop\n") && !text.contains("10.88.0.6 ip saddr"), "{text}");
        assert_eq!(script("t", &Guarded::new()), "table bridge t { }\ndelete table bridge t\n");
    }
}
