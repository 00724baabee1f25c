//! Container networking with iproute2 and iptables: a bridge, one network
//! namespace per container with a veth pair, addresses from a file-locked
//! allocator, and outbound NAT for the subnet.
//!
//! Every command is built with argv lists; names are derived from a
//! validated container id and validated settings, never from free text.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::ContainerId;
use super::netlink::{self, Netlink};
use crate::state::atomic;
use crate::state::lock::{FileLock, LockError};
use crate::state::settings::{Settings, Subnet};

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{command} failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("no free address left in {0}")]
    Exhausted(Subnet),
    #[error(transparent)]
    Io(#[from] crate::state::PathIo),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Netlink(#[from] super::netlink::NetlinkError),
}

/// How a container reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Its own namespace on the berth bridge, with an address and NAT.
    Bridge,
    /// On the bridge, but walled in: the outside only, never another
    /// container (bridge forwarding is dropped for its port). What builds use.
    Sandbox,
    /// The host's namespace.
    Host,
    /// Its own namespace with only loopback.
    None,
}

#[derive(Debug, thiserror::Error)]
#[error("network mode {0:?} is not bridge, sandbox, host or none")]
pub struct InvalidNetworkMode(String);

impl std::str::FromStr for NetworkMode {
    type Err = InvalidNetworkMode;
    fn from_str(s: &str) -> Result<Self, InvalidNetworkMode> {
        match s {
            "bridge" => Ok(NetworkMode::Bridge),
            "sandbox" => Ok(NetworkMode::Sandbox),
            "host" => Ok(NetworkMode::Host),
            "none" => Ok(NetworkMode::None),
            _ => Err(InvalidNetworkMode(s.to_owned())),
        }
    }
}

pub fn netns_name(scope: &str, id: &ContainerId) -> String {
    format!("berth-{scope}-{id}")
}

pub fn netns_path(scope: &str, id: &ContainerId) -> PathBuf {
    Path::new("/run/netns").join(netns_name(scope, id))
}

/// Host-side veth name: short (IFNAMSIZ is 16) and unique per container.
/// The host end and the container end of a container's veth pair. Sandbox
/// host ends start with `vi`, which the bridge rules name (`vi+`).
fn veth_names(scope: &str, id: &ContainerId, mode: NetworkMode) -> (String, String) {
    let hash = crate::image::Digest::of(format!("{scope}/{id}").as_bytes());
    let short = &hash.hex()[..10];
    let host = if mode == NetworkMode::Sandbox { "vi" } else { "vb" };
    (format!("{host}{short}"), format!("vc{short}"))
}

/// What containers on the bridge may reach of the host: DNS and nginx's
/// ports; no other connection they open to the host's own addresses.
/// Only new connections are dropped: what belongs to the host's own
/// connections to containers passes, even when conntrack finds it odd (a
/// reused container address meets a stale entry, and dropping those
/// packets would stall nginx's requests). Link-local addresses (cloud
/// metadata) are out of reach for all, and sandboxes are cut off from every
/// other port of the bridge. The chain is one per bridge, remade when the
/// rules it should hold change (a new listen port, a new berth).
fn ensure_guard(settings: &Settings) -> Result<(), NetworkError> {
    let bridge = settings.network.bridge.as_str();
    let chain = format!("berth-in-{bridge}");
    let ports = format!("{},{}", settings.proxy.listen_port, settings.proxy.tls_listen_port);
    // The last rule's comment names what the chain holds.
    let version = format!("berth guard 2 ports {ports}");
    match run("iptables", &["-S", &chain]) {
        Ok(listed) if listed.contains(&version) => return Ok(()),
        Ok(_) => run("iptables", &["-F", &chain]).map(drop)?,
        Err(_) => {
            run("iptables", &["-N", &chain])?;
            run("iptables", &["-I", "INPUT", "-i", bridge, "-j", &chain])?;
            run("iptables", &["-I", "FORWARD", "-i", bridge, "-d", "169.254.0.0/16", "-j", "DROP"])?;
        }
    }
    let rules: [&[&str]; 4] = [
        &["-p", "udp", "--dport", "53", "-j", "ACCEPT"],
        &["-p", "tcp", "--dport", "53", "-j", "ACCEPT"],
        &["-p", "tcp", "-m", "multiport", "--dports", &ports, "-j", "ACCEPT"],
        &["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", &version, "-j", "DROP"],
    ];
    for rule in rules {
        let mut args = vec!["-A", chain.as_str()];
        args.extend_from_slice(rule);
        run("iptables", &args)?;
    }
    for direction in ["-i", "-o"] {
        let listed = run("ebtables", &["-L", "FORWARD"])?;
        if !listed.contains(&format!("{direction} vi+ -j DROP")) {
            run("ebtables", &["-A", "FORWARD", direction, "vi+", "-j", "DROP"])?;
        }
    }
    Ok(())
}

fn run(program: &'static str, args: &[&str]) -> Result<String, NetworkError> {
    let out = Command::new(program).args(args).output().map_err(|source| NetworkError::Spawn { program, source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetworkError::Command {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Creates the bridge with the gateway address, turns on forwarding and
/// adds the NAT rule for the subnet, each only if missing.
pub fn ensure_bridge(settings: &Settings) -> Result<(), NetworkError> {
    let bridge = settings.network.bridge.as_str();
    let subnet = settings.subnet();
    let netlink = Netlink::here()?;
    if !link_exists(bridge) {
        netlink.add_bridge(bridge)?;
    }
    pin_bridge_mac(&netlink, bridge, subnet.gateway())?;
    netlink.add_address(bridge, subnet.gateway(), subnet.prefix)?;
    netlink.up(bridge)?;
    let forward = Path::new("/proc/sys/net/ipv4/ip_forward");
    if fs::read_to_string(forward).map(|v| v.trim() != "1").unwrap_or(true) {
        fs::write(forward, "1")
            .map_err(|source| NetworkError::Io(crate::state::PathIo { action: "enable", path: forward.to_owned(), source }))?;
    }
    let subnet_text = subnet.to_string();
    let rule = ["-t", "nat", "POSTROUTING", "-s", &subnet_text, "!", "-o", bridge, "-j", "MASQUERADE"];
    let with = |op: &'static str| {
        let mut args = vec![rule[0], rule[1], op];
        args.extend_from_slice(&rule[2..]);
        args
    };
    if run("iptables", &with("-C")).is_err() {
        run("iptables", &with("-A"))?;
    }
    ensure_guard(settings)
}

/// The MAC a bridged address gets, as Docker derives it: handed out again,
/// the address keeps its MAC, so ARP entries for it stay right.
fn mac_of(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0x42, a, b, c, d]
}

/// A bridge left to itself takes the lowest MAC of its ports, so its MAC
/// changed whenever a container or build came or went; containers kept
/// sending to the gateway's old MAC, which went nowhere once that port was
/// gone, and stalled for up to a minute. A MAC set by hand stays put.
fn pin_bridge_mac(netlink: &Netlink, bridge: &str, gateway: Ipv4Addr) -> Result<(), NetworkError> {
    let wanted = mac_of(gateway).map(|b| format!("{b:02x}")).join(":");
    let current = fs::read_to_string(Path::new("/sys/class/net").join(bridge).join("address")).unwrap_or_default();
    if current.trim() != wanted {
        netlink.set_mac(bridge, mac_of(gateway))?;
    }
    Ok(())
}

/// The address book: address -> container, under a file lock.
struct Addresses {
    path: PathBuf,
    _lock: FileLock,
    taken: BTreeMap<Ipv4Addr, String>,
}

impl Addresses {
    fn open(root: &Path) -> Result<Addresses, NetworkError> {
        let dir = root.join("network");
        fs::create_dir_all(&dir)
            .map_err(|source| NetworkError::Io(crate::state::PathIo { action: "create", path: dir.clone(), source }))?;
        let lock = FileLock::acquire(&dir.join("addresses.lock"))?;
        let path = dir.join("addresses.json");
        let taken = fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        Ok(Addresses { path, _lock: lock, taken })
    }

    fn save(&self) -> Result<(), NetworkError> {
        let json = serde_json::to_vec_pretty(&self.taken).expect("map serialises");
        atomic::write_atomic(&self.path, &json)
            .map_err(|e| NetworkError::Io(crate::state::PathIo { action: "write", path: self.path.clone(), source: e.source }))
    }
}

/// Gives `id` an address (the same one again if it has one).
pub fn allocate(root: &Path, subnet: Subnet, id: &ContainerId) -> Result<Ipv4Addr, NetworkError> {
    allocate_for(root, subnet, id.as_str())
}

/// Gives `owner` (a container id, or a `vip:` name, which no container id
/// can be) an address of the subnet: the same one again if it has one.
pub fn allocate_for(root: &Path, subnet: Subnet, owner: &str) -> Result<Ipv4Addr, NetworkError> {
    let mut book = Addresses::open(root)?;
    if let Some((addr, _)) = book.taken.iter().find(|(_, taken_by)| *taken_by == owner) {
        return Ok(*addr);
    }
    let free = subnet.hosts().find(|a| !book.taken.contains_key(a)).ok_or(NetworkError::Exhausted(subnet))?;
    book.taken.insert(free, owner.to_owned());
    book.save()?;
    Ok(free)
}

pub fn release(root: &Path, id: &ContainerId) -> Result<(), NetworkError> {
    release_of(root, id.as_str())
}

/// Frees whatever address `owner` holds.
pub fn release_of(root: &Path, owner: &str) -> Result<(), NetworkError> {
    let mut book = Addresses::open(root)?;
    let before = book.taken.len();
    book.taken.retain(|_, taken_by| taken_by != owner);
    if book.taken.len() != before {
        book.save()?;
    }
    Ok(())
}

/// Hands `from`'s address to `to` (an app renamed keeps its stable address).
pub fn rename_owner(root: &Path, from: &str, to: &str) -> Result<(), NetworkError> {
    let mut book = Addresses::open(root)?;
    let mut changed = false;
    for taken_by in book.taken.values_mut().filter(|t| *t == from) {
        *taken_by = to.to_owned();
        changed = true;
    }
    if changed {
        book.save()?;
    }
    Ok(())
}

/// The addresses whose owners start with `prefix`, with their owners.
pub fn owned_with_prefix(root: &Path, prefix: &str) -> Result<Vec<(Ipv4Addr, String)>, NetworkError> {
    let book = Addresses::open(root)?;
    Ok(book.taken.iter().filter(|(_, owner)| owner.starts_with(prefix)).map(|(a, o)| (*a, o.clone())).collect())
}

/// Creates the container's namespace. Bridged: a veth pair, eth0 with its
/// address, a default route via the bridge. `none`: loopback only.
/// Returns the container's address when bridged.
pub fn attach(root: &Path, settings: &Settings, id: &ContainerId, mode: NetworkMode) -> Result<Option<Ipv4Addr>, NetworkError> {
    tracing::debug!(container = %id, ?mode, "attaching the network");
    if mode == NetworkMode::Host {
        return Ok(None);
    }
    let scope = super::scope(root);
    let netns = netns_path(&scope, id);
    if !netns.exists() {
        netlink::create_netns(&netns)?;
    }
    if mode == NetworkMode::None {
        Netlink::inside(&netns, |inside| inside.up("lo"))?;
        return Ok(None);
    }
    ensure_bridge(settings)?;
    let subnet = settings.subnet();
    let address = allocate(root, subnet, id)?;
    let (host_veth, peer) = veth_names(&scope, id, mode);
    if !link_exists(&host_veth) {
        let netlink = Netlink::here()?;
        netlink.add_veth(&host_veth, &peer, mac_of(address), &netns)?;
        Netlink::inside(&netns, |inside| {
            inside.up("lo")?;
            inside.add_address(&peer, address, subnet.prefix)?;
            inside.up(&peer)?;
            inside.default_route(subnet.gateway())
        })?;
        netlink.enslave(&host_veth, &settings.network.bridge)?;
    }
    Ok(Some(address))
}

/// Every address given out, by its owner.
pub fn addresses(root: &Path) -> Result<BTreeMap<String, Ipv4Addr>, NetworkError> {
    Ok(Addresses::open(root)?.taken.into_iter().map(|(address, owner)| (owner, address)).collect())
}

/// Removes whatever of the container's network exists: safe to repeat, and
/// safe after a crash half-way through `attach`. The address stays the
/// container's until it is removed (`forget`): a database restarted, or
/// brought back at boot, answers where its apps were told it is.
pub fn detach(root: &Path, id: &ContainerId) -> Result<(), NetworkError> {
    let scope = super::scope(root);
    let netlink = Netlink::here()?;
    for mode in [NetworkMode::Bridge, NetworkMode::Sandbox] {
        let (host_veth, _) = veth_names(&scope, id, mode);
        if link_exists(&host_veth) {
            let _ = netlink.delete(&host_veth);
        }
    }
    Ok(netlink::delete_netns(&netns_path(&scope, id))?)
}

/// Detaches the container for good: its address is free again.
pub fn forget(root: &Path, id: &ContainerId) -> Result<(), NetworkError> {
    detach(root, id)?;
    release(root, id)
}

/// Network namespaces and addresses of this root whose container is gone
/// (a crash between a container's removal and its network's): freed.
/// Returns what was removed, for the caller to say.
pub fn sweep_orphans(root: &Path) -> Vec<String> {
    let prefix = format!("berth-{}-", super::scope(root));
    let exists = |id: &ContainerId| super::store::ContainerDir::new(root, id).dir.exists();
    let mut removed = Vec::new();
    for entry in fs::read_dir("/run/netns").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix(&prefix).and_then(|rest| ContainerId::parse(rest).ok()) else { continue };
        if !exists(&id) && forget(root, &id).is_ok() {
            removed.push(format!("network namespace {name}"));
        }
    }
    let owners: Vec<String> = Addresses::open(root).map(|book| book.taken.into_values().collect()).unwrap_or_default();
    for owner in owners {
        if let Ok(id) = ContainerId::parse(&owner)
            && !exists(&id)
            && release_of(root, &owner).is_ok()
        {
            removed.push(format!("address of {owner}"));
        }
    }
    removed
}
