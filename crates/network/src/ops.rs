//! The Linux calls the pod network needs, behind the small `NetOps` trait so the planning in
//! lib.rs is unit-tested with a recording fake: links, addresses and routes over rtnetlink in
//! the calling process's network namespace ("the node"), pod-side configuration on a dedicated
//! thread that setns'es into the sandbox's namespace, sysctls, and iptables.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::TryStreamExt;
use ipnet::Ipv4Net;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use crate::NetworkError;

/// The interface name of the pod side of the veth.
pub const POD_INTERFACE: &str = "eth0";
/// The rtnetlink protocol number our host-gw routes carry, so stale ones can be found again
/// (any value above RTPROT_STATIC that no routing daemon uses).
pub const ROUTE_PROTOCOL: u8 = 77;
const MAIN_TABLE: u8 = 254;

/// What a pod's veth must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLinkSpec {
    pub bridge: String,
    pub host_veth: String,
    pub netns: PathBuf,
    /// The pod's address with the pod CIDR's prefix length.
    pub address: Ipv4Net,
    pub gateway: Ipv4Addr,
}

/// The pod side of an existing veth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLinkState {
    pub addresses: Vec<Ipv4Net>,
    pub mac: String,
}

/// The output of a command (iptables) that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// The system calls of the pod network. Every method acts on the calling process's network
/// namespace unless it takes a namespace path.
#[async_trait]
pub trait NetOps: Send + Sync {
    /// Creates the bridge if absent, gives it `address` if it lacks it, sets it up.
    async fn ensure_bridge(&self, name: &str, address: Ipv4Net) -> Result<(), NetworkError>;
    /// Deletes a link; false if there was none.
    async fn delete_link(&self, name: &str) -> Result<bool, NetworkError>;
    /// Whether a link with this name exists.
    async fn link_exists(&self, name: &str) -> Result<bool, NetworkError>;
    /// The pod side (eth0) inside `netns`, if there is one.
    async fn pod_link(&self, netns: &Path) -> Result<Option<PodLinkState>, NetworkError>;
    /// Creates the veth pair into the bridge and configures the pod side: eth0 with the address,
    /// up, lo up, default route via the gateway. Returns eth0's MAC address.
    async fn create_pod_link(&self, spec: &PodLinkSpec) -> Result<String, NetworkError>;
    /// Deletes eth0 inside `netns` (when the node side is already gone); false if absent.
    async fn delete_pod_link(&self, netns: &Path) -> Result<bool, NetworkError>;
    /// The host-gw routes this network installed (main table, our protocol number).
    async fn list_routes(&self) -> Result<Vec<(Ipv4Net, Ipv4Addr)>, NetworkError>;
    async fn add_route(&self, destination: Ipv4Net, via: Ipv4Addr) -> Result<(), NetworkError>;
    async fn delete_route(&self, destination: Ipv4Net, via: Ipv4Addr) -> Result<(), NetworkError>;
    /// Writes /proc/sys/<key with dots as slashes>.
    async fn write_sysctl(&self, key: &str, value: &str) -> Result<(), NetworkError>;
    /// Runs `iptables -w ARGS`.
    async fn iptables(&self, args: &[String]) -> Result<CommandOutput, NetworkError>;
    /// Runs `iptables-restore -w --noflush` with `input`.
    async fn iptables_restore(&self, input: &str) -> Result<(), NetworkError>;
}

/// The real implementation: rtnetlink, setns, /proc/sys, iptables.
#[derive(Debug, Default, Clone)]
pub struct LinuxNetOps;

fn netlink_err(operation: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    let operation = operation.into();
    move |source| NetworkError::Netlink { operation, source }
}

fn is_errno(err: &rtnetlink::Error, errno: nix::errno::Errno) -> bool {
    matches!(err, rtnetlink::Error::NetlinkError(msg)
        if msg.code.map(|c| c.get()) == Some(-(errno as i32)))
}

/// A fresh rtnetlink connection whose socket lives in the calling thread's network namespace.
fn connect() -> Result<Handle, NetworkError> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|source| NetworkError::Io {
            what: "netlink socket".into(),
            source,
        })?;
    tokio::spawn(connection);
    Ok(handle)
}

async fn find_link(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, NetworkError> {
    let mut links = handle.link().get().match_name(name).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        Err(e) if is_errno(&e, nix::errno::Errno::ENODEV) => Ok(None),
        Err(e) => Err(netlink_err(format!("get link {name}"))(e)),
    }
}

async fn link_index(handle: &Handle, name: &str) -> Result<u32, NetworkError> {
    find_link(handle, name)
        .await?
        .map(|l| l.header.index)
        .ok_or_else(|| NetworkError::LinkMissing(name.to_string()))
}

async fn ipv4_addresses(handle: &Handle, index: u32) -> Result<Vec<Ipv4Net>, NetworkError> {
    let mut found = Vec::new();
    let mut addresses = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    while let Some(msg) = addresses
        .try_next()
        .await
        .map_err(netlink_err("list addresses"))?
    {
        if msg.header.index != index {
            continue;
        }
        for attr in &msg.attributes {
            if let AddressAttribute::Address(IpAddr::V4(ip)) = attr {
                if let Ok(net) = Ipv4Net::new(*ip, msg.header.prefix_len) {
                    found.push(net);
                }
            }
        }
    }
    Ok(found)
}

async fn ensure_address(handle: &Handle, index: u32, address: Ipv4Net) -> Result<(), NetworkError> {
    if ipv4_addresses(handle, index).await?.contains(&address) {
        return Ok(());
    }
    match handle
        .address()
        .add(index, IpAddr::V4(address.addr()), address.prefix_len())
        .execute()
        .await
    {
        Err(e) if !is_errno(&e, nix::errno::Errno::EEXIST) => {
            Err(netlink_err(format!("add address {address}"))(e))
        }
        _ => Ok(()),
    }
}

async fn set_up(handle: &Handle, index: u32, name: &str) -> Result<(), NetworkError> {
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(netlink_err(format!("set {name} up")))
}

fn mac_of(link: &LinkMessage) -> String {
    link.attributes
        .iter()
        .find_map(|attr| match attr {
            LinkAttribute::Address(bytes) => Some(
                bytes
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// Moves the calling thread (a dedicated one) into the network namespace at `path`.
fn enter_netns(path: &Path) -> std::io::Result<()> {
    let file = File::open(path)?;
    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
    Ok(())
}

/// Connects to `127.0.0.1:port` inside the network namespace at `netns` (port-forward's
/// "localhost of the pod"). The socket is made on a new thread that enters the namespace and
/// ends; a socket keeps the namespace it was made in.
pub async fn connect_in_netns(
    netns: &Path,
    port: u16,
    timeout: std::time::Duration,
) -> std::io::Result<tokio::net::TcpStream> {
    let path = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns-connect".into())
        .spawn(move || {
            let result = (|| -> std::io::Result<std::net::TcpStream> {
                enter_netns(&path)?;
                let addr = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                let stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
                stream.set_nonblocking(true)?;
                Ok(stream)
            })();
            let _ = tx.send(result);
        })?;
    let stream = rx
        .await
        .map_err(|_| std::io::Error::other("the connecting thread died"))??;
    tokio::net::TcpStream::from_std(stream)
}

/// Runs `work` with a fresh current-thread tokio runtime on a new thread that first moves into
/// the network namespace at `netns`; the netlink socket it opens lives there.
async fn in_netns<T, F, Fut>(netns: &Path, work: F) -> Result<T, NetworkError>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, NetworkError>>,
{
    let path = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns-config".into())
        .spawn(move || {
            let result = (|| {
                enter_netns(&path).map_err(|source| NetworkError::Netns {
                    path: path.clone(),
                    source,
                })?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| NetworkError::Io {
                        what: "runtime for the pod namespace".into(),
                        source,
                    })?;
                runtime.block_on(async move { work(connect()?).await })
            })();
            let _ = tx.send(result);
        })
        .map_err(|source| NetworkError::Io {
            what: "thread for the pod namespace".into(),
            source,
        })?;
    rx.await.map_err(|_| NetworkError::Netns {
        path: netns.to_path_buf(),
        source: std::io::Error::other("configuration thread died"),
    })?
}

async fn read_pod_link(handle: Handle) -> Result<Option<PodLinkState>, NetworkError> {
    let Some(link) = find_link(&handle, POD_INTERFACE).await? else {
        return Ok(None);
    };
    let addresses = ipv4_addresses(&handle, link.header.index).await?;
    Ok(Some(PodLinkState {
        addresses,
        mac: mac_of(&link),
    }))
}

#[async_trait]
impl NetOps for LinuxNetOps {
    async fn ensure_bridge(&self, name: &str, address: Ipv4Net) -> Result<(), NetworkError> {
        let handle = connect()?;
        if find_link(&handle, name).await?.is_none() {
            match handle
                .link()
                .add(LinkBridge::new(name).build())
                .execute()
                .await
            {
                Err(e) if !is_errno(&e, nix::errno::Errno::EEXIST) => {
                    return Err(netlink_err(format!("add bridge {name}"))(e))
                }
                _ => {}
            }
        }
        let index = link_index(&handle, name).await?;
        ensure_address(&handle, index, address).await?;
        set_up(&handle, index, name).await
    }

    async fn delete_link(&self, name: &str) -> Result<bool, NetworkError> {
        let handle = connect()?;
        let Some(link) = find_link(&handle, name).await? else {
            return Ok(false);
        };
        match handle.link().del(link.header.index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if is_errno(&e, nix::errno::Errno::ENODEV) => Ok(false),
            Err(e) => Err(netlink_err(format!("delete link {name}"))(e)),
        }
    }

    async fn link_exists(&self, name: &str) -> Result<bool, NetworkError> {
        let handle = connect()?;
        Ok(find_link(&handle, name).await?.is_some())
    }

    async fn pod_link(&self, netns: &Path) -> Result<Option<PodLinkState>, NetworkError> {
        in_netns(netns, read_pod_link).await
    }

    async fn create_pod_link(&self, spec: &PodLinkSpec) -> Result<String, NetworkError> {
        let handle = connect()?;
        let bridge_index = link_index(&handle, &spec.bridge).await?;
        let netns_file = File::open(&spec.netns).map_err(|source| NetworkError::Netns {
            path: spec.netns.clone(),
            source,
        })?;
        // The peer is created directly inside the pod's namespace under its final name.
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(POD_INTERFACE)
            .setns_by_fd(netns_file.as_raw_fd())
            .build();
        let veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(spec.host_veth.clone())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        handle
            .link()
            .add(veth)
            .execute()
            .await
            .map_err(netlink_err(format!(
                "add veth {} into {}",
                spec.host_veth,
                spec.netns.display()
            )))?;
        drop(netns_file);
        let host_index = link_index(&handle, &spec.host_veth).await?;
        handle
            .link()
            .set(
                LinkUnspec::new_with_index(host_index)
                    .controller(bridge_index)
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(netlink_err(format!(
                "attach {} to {}",
                spec.host_veth, spec.bridge
            )))?;
        // Hairpin: a pod may reach itself through a hostPort or a Service that DNATs back to it.
        handle
            .link()
            .set_port(LinkBridgePort::new(host_index).hairpin(true).build())
            .execute()
            .await
            .map_err(netlink_err(format!("set hairpin on {}", spec.host_veth)))?;
        let address = spec.address;
        let gateway = spec.gateway;
        in_netns(&spec.netns, move |handle| async move {
            let lo = link_index(&handle, "lo").await?;
            set_up(&handle, lo, "lo").await?;
            let eth0 = find_link(&handle, POD_INTERFACE)
                .await?
                .ok_or_else(|| NetworkError::LinkMissing(POD_INTERFACE.into()))?;
            let index = eth0.header.index;
            ensure_address(&handle, index, address).await?;
            set_up(&handle, index, POD_INTERFACE).await?;
            let default_route = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
                .gateway(gateway)
                .output_interface(index)
                .build();
            handle
                .route()
                .add(default_route)
                .replace()
                .execute()
                .await
                .map_err(netlink_err(format!("add default route via {gateway}")))?;
            Ok(mac_of(&eth0))
        })
        .await
    }

    async fn delete_pod_link(&self, netns: &Path) -> Result<bool, NetworkError> {
        in_netns(netns, |handle| async move {
            let Some(link) = find_link(&handle, POD_INTERFACE).await? else {
                return Ok(false);
            };
            handle
                .link()
                .del(link.header.index)
                .execute()
                .await
                .map_err(netlink_err("delete pod eth0"))?;
            Ok(true)
        })
        .await
    }

    async fn list_routes(&self) -> Result<Vec<(Ipv4Net, Ipv4Addr)>, NetworkError> {
        let handle = connect()?;
        let mut routes = handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        let mut found = Vec::new();
        while let Some(route) = routes
            .try_next()
            .await
            .map_err(netlink_err("list routes"))?
        {
            if route.header.protocol != RouteProtocol::Other(ROUTE_PROTOCOL)
                || route.header.table != MAIN_TABLE
            {
                continue;
            }
            if let Some(entry) = host_gw_route(&route) {
                found.push(entry);
            }
        }
        Ok(found)
    }

    async fn add_route(&self, destination: Ipv4Net, via: Ipv4Addr) -> Result<(), NetworkError> {
        let handle = connect()?;
        handle
            .route()
            .add(route_message(destination, via))
            .replace()
            .execute()
            .await
            .map_err(netlink_err(format!("add route {destination} via {via}")))
    }

    async fn delete_route(&self, destination: Ipv4Net, via: Ipv4Addr) -> Result<(), NetworkError> {
        let handle = connect()?;
        match handle
            .route()
            .del(route_message(destination, via))
            .execute()
            .await
        {
            Err(e) if !is_errno(&e, nix::errno::Errno::ESRCH) => {
                Err(netlink_err(format!("delete route {destination} via {via}"))(e))
            }
            _ => Ok(()),
        }
    }

    async fn write_sysctl(&self, key: &str, value: &str) -> Result<(), NetworkError> {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|source| NetworkError::State { path, source })
    }

    async fn iptables(&self, args: &[String]) -> Result<CommandOutput, NetworkError> {
        let output = tokio::process::Command::new("iptables")
            .arg("-w")
            .args(args)
            .output()
            .await
            .map_err(|source| NetworkError::Io {
                what: "iptables".into(),
                source,
            })?;
        Ok(CommandOutput {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    async fn iptables_restore(&self, input: &str) -> Result<(), NetworkError> {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new("iptables-restore")
            .args(["-w", "--noflush"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|source| NetworkError::Io {
                what: "iptables-restore".into(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .await
                .map_err(|source| NetworkError::Io {
                    what: "iptables-restore stdin".into(),
                    source,
                })?;
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|source| NetworkError::Io {
                what: "iptables-restore".into(),
                source,
            })?;
        if !output.status.success() {
            return Err(NetworkError::Command {
                command: "iptables-restore --noflush".into(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(())
    }
}

fn route_message(destination: Ipv4Net, via: Ipv4Addr) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(destination.network(), destination.prefix_len())
        .gateway(via)
        .protocol(RouteProtocol::Other(ROUTE_PROTOCOL))
        .build()
}

fn host_gw_route(route: &RouteMessage) -> Option<(Ipv4Net, Ipv4Addr)> {
    let mut destination = None;
    let mut gateway = None;
    for attr in &route.attributes {
        match attr {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => destination = Some(*ip),
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => gateway = Some(*ip),
            _ => {}
        }
    }
    let destination = Ipv4Net::new(
        destination.unwrap_or(Ipv4Addr::UNSPECIFIED),
        route.header.destination_prefix_length,
    )
    .ok()?;
    Some((destination, gateway?))
}
