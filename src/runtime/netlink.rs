//! Links, addresses, routes and named network namespaces, set over
//! netlink (rtnetlink) in-process instead of by running `ip` for each.
//! Work inside a container's namespace happens on a short-lived thread
//! that joined it: a netlink socket belongs to the namespace of the thread
//! that opened it, and only that thread ever leaves the host's namespace.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::state::PathIo;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot {action} {link}: {source}")]
    Request {
        action: &'static str,
        link: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("there is no network link {0}")]
    NoLink(String),
    #[error("cannot {action}: {source}")]
    System {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] PathIo),
}

/// A netlink connection in the namespace of the thread that made it.
pub struct Netlink {
    runtime: tokio::runtime::Runtime,
    handle: Handle,
}

fn system(action: &'static str) -> impl FnOnce(std::io::Error) -> NetlinkError {
    move |source| NetlinkError::System { action, source }
}

fn errno(action: &'static str) -> impl FnOnce(nix::Error) -> NetlinkError {
    move |e| NetlinkError::System { action, source: e.into() }
}

/// Whether the kernel refused because the thing already exists.
fn exists(error: &rtnetlink::Error) -> bool {
    matches!(error, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::EEXIST)
}

impl Netlink {
    /// A connection in the calling thread's network namespace.
    pub fn here() -> Result<Netlink, NetlinkError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().map_err(system("start netlink"))?;
        let handle = {
            let _entered = runtime.enter();
            let (connection, handle, _) = rtnetlink::new_connection().map_err(system("open a netlink socket"))?;
            runtime.spawn(connection);
            handle
        };
        Ok(Netlink { runtime, handle })
    }

    /// Runs `work` with a connection inside the namespace at `netns`.
    pub fn inside<T: Send>(netns: &Path, work: impl FnOnce(&Netlink) -> Result<T, NetlinkError> + Send) -> Result<T, NetlinkError> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = fs::File::open(netns).map_err(|source| PathIo { action: "open", path: netns.to_owned(), source })?;
                    nix::sched::setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(errno("join the network namespace"))?;
                    work(&Netlink::here()?)
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    fn block<T>(
        &self,
        action: &'static str,
        link: &str,
        request: impl Future<Output = Result<T, rtnetlink::Error>>,
    ) -> Result<T, NetlinkError> {
        self.runtime.block_on(request).map_err(|source| NetlinkError::Request { action, link: link.to_owned(), source })
    }

    /// The index of the link named `name`, if there is one.
    pub fn index(&self, name: &str) -> Result<Option<u32>, NetlinkError> {
        let found = self.runtime.block_on(async {
            let mut links = self.handle.link().get().match_name(name.to_owned()).execute();
            links.try_next().await
        });
        match found {
            Ok(link) => Ok(link.map(|l| l.header.index)),
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -libc::ENODEV => Ok(None),
            Err(source) => Err(NetlinkError::Request { action: "look up", link: name.to_owned(), source }),
        }
    }

    fn must_index(&self, name: &str) -> Result<u32, NetlinkError> {
        self.index(name)?.ok_or_else(|| NetlinkError::NoLink(name.to_owned()))
    }

    /// Adds a bridge; one that appeared meanwhile (a racing berth) is fine.
    pub fn add_bridge(&self, name: &str) -> Result<(), NetlinkError> {
        match self.runtime.block_on(self.handle.link().add(LinkBridge::new(name).build()).execute()) {
            Err(e) if !exists(&e) => Err(NetlinkError::Request { action: "add the bridge", link: name.to_owned(), source: e }),
            _ => Ok(()),
        }
    }

    /// Sets a link's MAC address.
    pub fn set_mac(&self, name: &str, mac: [u8; 6]) -> Result<(), NetlinkError> {
        let index = self.must_index(name)?;
        let message = LinkUnspec::new_with_index(index).address(mac.to_vec()).build();
        self.block("set the address of", name, self.handle.link().set(message).execute())
    }

    /// Brings a link up.
    pub fn up(&self, name: &str) -> Result<(), NetlinkError> {
        let index = self.must_index(name)?;
        self.block("bring up", name, self.handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute())
    }

    /// Makes `name` a port of `bridge` and brings it up.
    pub fn enslave(&self, name: &str, bridge: &str) -> Result<(), NetlinkError> {
        let (index, master) = (self.must_index(name)?, self.must_index(bridge)?);
        let message = LinkUnspec::new_with_index(index).controller(master).up().build();
        self.block("add to the bridge", name, self.handle.link().set(message).execute())
    }

    /// Gives a link an IPv4 address; having it already is fine.
    pub fn add_address(&self, name: &str, address: Ipv4Addr, prefix: u8) -> Result<(), NetlinkError> {
        let index = self.must_index(name)?;
        match self.runtime.block_on(self.handle.address().add(index, IpAddr::V4(address), prefix).execute()) {
            Err(e) if !exists(&e) => Err(NetlinkError::Request { action: "add an address to", link: name.to_owned(), source: e }),
            _ => Ok(()),
        }
    }

    /// A veth pair: `host` here, its peer moved into the namespace at
    /// `netns` as `peer` with the MAC `mac`.
    pub fn add_veth(&self, host: &str, peer: &str, mac: [u8; 6], netns: &Path) -> Result<(), NetlinkError> {
        let file = fs::File::open(netns).map_err(|source| PathIo { action: "open", path: netns.to_owned(), source })?;
        let peer_message =
            LinkMessageBuilder::<LinkUnspec>::new().name(peer.to_owned()).address(mac.to_vec()).setns_by_fd(file.as_raw_fd()).build();
        let message = LinkVeth::new(host, peer).set_info_data(InfoData::Veth(InfoVeth::Peer(peer_message))).build();
        self.block("add the veth pair", host, self.handle.link().add(message).execute())
    }

    /// The default route, via `gateway`.
    pub fn default_route(&self, gateway: Ipv4Addr) -> Result<(), NetlinkError> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gateway).build();
        match self.runtime.block_on(self.handle.route().add(route).execute()) {
            Err(e) if !exists(&e) => {
                Err(NetlinkError::Request { action: "add the default route via", link: gateway.to_string(), source: e })
            }
            _ => Ok(()),
        }
    }

    /// Deletes a link if it exists (a veth takes its peer with it).
    pub fn delete(&self, name: &str) -> Result<(), NetlinkError> {
        match self.index(name)? {
            Some(index) => self.block("delete", name, self.handle.link().del(index).execute()),
            None => Ok(()),
        }
    }
}

/// Where named namespaces live, as `ip netns` keeps them.
pub const NETNS_DIR: &str = "/run/netns";

/// Creates the named network namespace `path` (a file under /run/netns
/// that a new namespace is bind-mounted on, as `ip netns add` makes it).
pub fn create_netns(path: &Path) -> Result<(), NetlinkError> {
    let io = |action| move |source| NetlinkError::Io(PathIo { action, path: path.to_owned(), source });
    fs::create_dir_all(NETNS_DIR).map_err(io("create"))?;
    fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(io("create"))?;
    let target: PathBuf = path.to_owned();
    // A thread of its own unshares, so the caller stays in the host's namespace.
    let made = std::thread::spawn(move || -> Result<(), NetlinkError> {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(errno("make a network namespace"))?;
        nix::mount::mount(Some("/proc/thread-self/ns/net"), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(errno("mount the network namespace"))
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    if made.is_err() {
        let _ = fs::remove_file(path);
    }
    made
}

/// Removes a named network namespace; the namespace ends with its last user.
pub fn delete_netns(path: &Path) -> Result<(), NetlinkError> {
    match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(errno("unmount the network namespace")(e)),
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(NetlinkError::Io(PathIo { action: "remove", path: path.to_owned(), source: e }))
        }
        _ => Ok(()),
    }
}
