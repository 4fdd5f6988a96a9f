//! Pod network for mini-cluster (the CNI role), a library the kubelet calls. See
//! docs/network.md.
//!
//! "The node" is the calling process's current network namespace (the kubelet runs inside the
//! node's namespace). Per node: a bridge carrying the first address of the node's podCIDR,
//! `net.ipv4.ip_forward=1`, and two nat chains of our own. Per pod: a veth pair from the bridge
//! into the sandbox's network namespace (`eth0` inside, lo up, default route via the bridge) and
//! an address from a host-local IPAM persisted under `state_dir`. Between nodes: host-gw routes,
//! one per other node's podCIDR via that node's IP.
//!
//! ```no_run
//! # async fn demo() -> Result<(), network::NetworkError> {
//! use network::{HostPort, NetworkConfig, PodNetwork, Protocol};
//! let net = PodNetwork::new(NetworkConfig {
//!     bridge: "mcbr0".into(),
//!     pod_cidr: "10.244.1.0/24".parse().unwrap(),
//!     cluster_cidr: "10.244.0.0/16".parse().unwrap(),
//!     node_ip: "192.168.77.10".parse().unwrap(),
//!     state_dir: "/var/lib/minicluster/kubelet/network".into(),
//! })?;
//! net.setup_node().await?;
//! let pod = net.attach("sandbox-1", "/proc/1234/ns/net".as_ref()).await?;
//! net.set_host_ports("sandbox-1", &[HostPort {
//!     protocol: Protocol::Tcp, host_port: 8080, container_port: 80, host_ip: None,
//! }]).await?;
//! net.sync_routes(&[("10.244.2.0/24".parse().unwrap(), "192.168.77.11".parse().unwrap())]).await?;
//! net.detach("sandbox-1", None).await?;
//! net.teardown_node().await?;
//! # let _ = pod; Ok(()) }
//! ```

pub mod ipam;
pub mod lab;
pub mod ops;
pub mod plan;

use std::collections::BTreeMap;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use tokio::sync::Mutex;

pub use ipam::Ipam;
pub use ops::{LinuxNetOps, NetOps};
pub use plan::{HostPort, Protocol, HOSTPORTS_CHAIN, POSTROUTING_CHAIN};

use ops::PodLinkSpec;
use plan::SandboxHostPorts;

/// Everything that can go wrong in the pod network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("no free address left in {cidr}")]
    Exhausted { cidr: Ipv4Net },
    #[error("invalid sandbox id {0:?}")]
    InvalidSandboxId(String),
    #[error("invalid network config: {0}")]
    Config(String),
    #[error("state {path}: {source}")]
    State { path: PathBuf, source: io::Error },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("network namespace {path}: {source}")]
    Netns { path: PathBuf, source: io::Error },
    #[error("netlink {operation}: {source}")]
    Netlink {
        operation: String,
        source: rtnetlink::Error,
    },
    #[error("link {0} not found")]
    LinkMissing(String),
    #[error("{command} failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("sandbox {sandbox_id} has no address (attach it first)")]
    NotAttached { sandbox_id: String },
}

/// The node's network settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Name of the node bridge, e.g. `mcbr0`.
    pub bridge: String,
    /// node.spec.podCIDR; the bridge gets its first address.
    pub pod_cidr: Ipv4Net,
    /// The whole pod network (--cluster-cidr); traffic leaving it is masqueraded.
    pub cluster_cidr: Ipv4Net,
    /// The node's own address.
    pub node_ip: Ipv4Addr,
    /// Where IPAM and hostPort state live (a directory under the kubelet's root dir).
    pub state_dir: PathBuf,
}

/// The pod's side of an attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInterface {
    /// The pod address with the pod CIDR's prefix length.
    pub ip: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// MAC address of eth0 in the pod.
    pub mac: String,
    /// The node-side veth name.
    pub host_veth: String,
}

/// The pod network of one node.
#[derive(Debug)]
pub struct PodNetwork<O: NetOps = LinuxNetOps> {
    config: NetworkConfig,
    ipam: Ipam,
    ops: O,
    /// Serialises rule rewrites and attach/detach of this node.
    guard: Mutex<()>,
}

impl PodNetwork<LinuxNetOps> {
    /// The pod network acting on the calling process's network namespace.
    pub fn new(config: NetworkConfig) -> Result<Self, NetworkError> {
        Self::with_ops(config, LinuxNetOps)
    }
}

impl<O: NetOps> PodNetwork<O> {
    /// The pod network over any implementation of the system calls (tests use a fake).
    pub fn with_ops(config: NetworkConfig, ops: O) -> Result<Self, NetworkError> {
        if config.pod_cidr.prefix_len() > 30 {
            return Err(NetworkError::Config(format!(
                "pod cidr {} is too small",
                config.pod_cidr
            )));
        }
        if !config.cluster_cidr.contains(&config.pod_cidr) {
            return Err(NetworkError::Config(format!(
                "pod cidr {} is not inside cluster cidr {}",
                config.pod_cidr, config.cluster_cidr
            )));
        }
        if config.bridge.is_empty() || config.bridge.len() > 15 {
            return Err(NetworkError::Config(format!(
                "bridge name {:?} must have 1 to 15 characters",
                config.bridge
            )));
        }
        let ipam = Ipam::new(config.state_dir.join("ipam"), config.pod_cidr);
        Ok(PodNetwork {
            config: NetworkConfig {
                pod_cidr: config.pod_cidr.trunc(),
                cluster_cidr: config.cluster_cidr.trunc(),
                ..config
            },
            ipam,
            ops,
            guard: Mutex::new(()),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The bridge address (first host of the pod CIDR), every pod's default gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        self.ipam.gateway()
    }

    /// The system-call implementation (tests inspect the fake).
    pub fn ops(&self) -> &O {
        &self.ops
    }

    fn bridge_address(&self) -> Ipv4Net {
        Ipv4Net::new(self.gateway(), self.config.pod_cidr.prefix_len())
            .unwrap_or(self.config.pod_cidr)
    }

    fn host_ports_dir(&self) -> PathBuf {
        self.config.state_dir.join("hostports")
    }

    /// Creates the bridge, turns forwarding on, installs the nat chains and their jumps.
    /// Idempotent; run it at every kubelet start.
    pub async fn setup_node(&self) -> Result<(), NetworkError> {
        let _guard = self.guard.lock().await;
        self.ops
            .ensure_bridge(&self.config.bridge, self.bridge_address())
            .await?;
        self.ops.write_sysctl("net.ipv4.ip_forward", "1").await?;
        // Bridged pod-to-pod replies must pass conntrack for Service DNAT to be undone
        // (Kubernetes requires the same); absent when br_netfilter is not loaded.
        match self
            .ops
            .write_sysctl("net.bridge.bridge-nf-call-iptables", "1")
            .await
        {
            Err(NetworkError::State { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                tracing::warn!(
                    "br_netfilter is not loaded: Service traffic between pods of one node may fail"
                );
            }
            other => other?,
        }
        self.apply_rules().await?;
        for (parent, matches, chain, insert) in plan::jump_rules() {
            let mut rule = matches.clone();
            rule.extend(["-j".to_string(), chain.to_string()]);
            let check = [
                vec!["-t".into(), "nat".into(), "-C".into(), parent.into()],
                rule.clone(),
            ]
            .concat();
            if self.ops.iptables(&check).await?.success {
                continue;
            }
            let verb = if insert { "-I" } else { "-A" };
            let add = [
                vec!["-t".into(), "nat".into(), verb.into(), parent.into()],
                rule,
            ]
            .concat();
            let output = self.ops.iptables(&add).await?;
            if !output.success {
                return Err(NetworkError::Command {
                    command: format!("iptables {}", add.join(" ")),
                    stderr: output.stderr.trim().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Gives the sandbox whose network namespace is `netns` an interface and an address.
    /// Attaching a sandbox that is already attached returns its existing interface.
    pub async fn attach(
        &self,
        sandbox_id: &str,
        netns: &Path,
    ) -> Result<PodInterface, NetworkError> {
        let _guard = self.guard.lock().await;
        let (ip, newly_reserved) = self.ipam.allocate(sandbox_id)?;
        let host_veth = plan::host_veth_name(sandbox_id);
        let result = self.connect_pod(ip, &host_veth, netns).await;
        if result.is_err() && newly_reserved {
            // Leave nothing behind: no veth and no address for a sandbox this call started on.
            let _ = self.ops.delete_link(&host_veth).await;
            let _ = self.ipam.release(sandbox_id);
        }
        result
    }

    /// Makes (or finds) the veth of a sandbox whose address is `ip`.
    async fn connect_pod(
        &self,
        ip: Ipv4Addr,
        host_veth: &str,
        netns: &Path,
    ) -> Result<PodInterface, NetworkError> {
        let address = Ipv4Net::new(ip, self.config.pod_cidr.prefix_len())
            .map_err(|e| NetworkError::Config(e.to_string()))?;
        let interface = |mac: String| PodInterface {
            ip: address,
            gateway: self.gateway(),
            mac,
            host_veth: host_veth.to_string(),
        };
        if self.ops.link_exists(host_veth).await? {
            if let Some(existing) = self.ops.pod_link(netns).await? {
                if existing.addresses.contains(&address) {
                    return Ok(interface(existing.mac));
                }
            }
            // A half-made attachment (e.g. the kubelet died in the middle): start over.
            self.ops.delete_link(host_veth).await?;
        }
        if self.ops.pod_link(netns).await?.is_some() {
            self.ops.delete_pod_link(netns).await?;
        }
        let spec = PodLinkSpec {
            bridge: self.config.bridge.clone(),
            host_veth: host_veth.to_string(),
            netns: netns.to_path_buf(),
            address,
            gateway: self.gateway(),
        };
        match self.ops.create_pod_link(&spec).await {
            Ok(mac) => Ok(interface(mac)),
            Err(err) => {
                let _ = self.ops.delete_link(host_veth).await;
                Err(err)
            }
        }
    }

    /// Removes the sandbox's veth, hostPorts and address. Safe to repeat, and safe when the
    /// namespace is already gone (pass `None`).
    pub async fn detach(&self, sandbox_id: &str, netns: Option<&Path>) -> Result<(), NetworkError> {
        ipam::validate_id(sandbox_id)?;
        let _guard = self.guard.lock().await;
        let host_veth = plan::host_veth_name(sandbox_id);
        let deleted = self.ops.delete_link(&host_veth).await?;
        if !deleted {
            if let Some(netns) = netns.filter(|p| p.exists()) {
                self.ops.delete_pod_link(netns).await?;
            }
        }
        let ports_file = self.host_ports_dir().join(format!("{sandbox_id}.json"));
        if ports_file.exists() {
            std::fs::remove_file(&ports_file).map_err(|source| NetworkError::State {
                path: ports_file.clone(),
                source,
            })?;
            self.apply_rules().await?;
        }
        self.ipam.release(sandbox_id)?;
        Ok(())
    }

    /// Every address allocation as (sandbox id, address), so the kubelet can detach sandboxes
    /// that no longer exist.
    pub fn allocations(&self) -> Result<Vec<(String, Ipv4Addr)>, NetworkError> {
        self.ipam.allocations()
    }

    /// Makes the host-gw routes exactly `peers` (pod CIDR, node IP) of the other nodes: adds
    /// missing ones, replaces changed ones, removes stale ones. Our own pod CIDR is ignored.
    pub async fn sync_routes(&self, peers: &[(Ipv4Net, Ipv4Addr)]) -> Result<(), NetworkError> {
        let _guard = self.guard.lock().await;
        let current = self.ops.list_routes().await?;
        let diff = plan::diff_routes(self.config.pod_cidr, &current, peers);
        for (destination, via) in &diff.delete {
            self.ops.delete_route(*destination, *via).await?;
        }
        for (destination, via) in &diff.add {
            self.ops.add_route(*destination, *via).await?;
        }
        Ok(())
    }

    /// Sets the hostPort mappings of an attached sandbox (an empty list removes them).
    pub async fn set_host_ports(
        &self,
        sandbox_id: &str,
        ports: &[HostPort],
    ) -> Result<(), NetworkError> {
        ipam::validate_id(sandbox_id)?;
        let _guard = self.guard.lock().await;
        let dir = self.host_ports_dir();
        let file = dir.join(format!("{sandbox_id}.json"));
        if ports.is_empty() {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(source) => return Err(NetworkError::State { path: file, source }),
            }
        } else {
            let pod_ip =
                self.ipam
                    .lookup(sandbox_id)?
                    .ok_or_else(|| NetworkError::NotAttached {
                        sandbox_id: sandbox_id.to_string(),
                    })?;
            let mut ports = ports.to_vec();
            ports.sort();
            ports.dedup();
            let mapping = SandboxHostPorts { pod_ip, ports };
            std::fs::create_dir_all(&dir).map_err(|source| NetworkError::State {
                path: dir.clone(),
                source,
            })?;
            let json = serde_json::to_vec_pretty(&mapping)
                .map_err(|e| NetworkError::Config(e.to_string()))?;
            std::fs::write(&file, json).map_err(|source| NetworkError::State {
                path: file.clone(),
                source,
            })?;
        }
        self.apply_rules().await
    }

    /// Removes everything `setup_node`, `attach` and `sync_routes` made on this node: pod
    /// veths still attached, the bridge, our routes, our chains and their jumps, the IPAM and
    /// hostPort state. `ip_forward` is left on (kube-proxy needs it too).
    pub async fn teardown_node(&self) -> Result<(), NetworkError> {
        let _guard = self.guard.lock().await;
        for (sandbox_id, _) in self.ipam.allocations()? {
            self.ops
                .delete_link(&plan::host_veth_name(&sandbox_id))
                .await?;
        }
        self.ops.delete_link(&self.config.bridge).await?;
        for (destination, via) in self.ops.list_routes().await? {
            self.ops.delete_route(destination, via).await?;
        }
        for (parent, matches, chain, _) in plan::jump_rules() {
            let mut delete = vec!["-t".into(), "nat".into(), "-D".into(), parent.into()];
            delete.extend(matches);
            delete.extend(["-j".to_string(), chain.to_string()]);
            // A jump may have been added twice by hand; remove every copy (bounded).
            for _ in 0..8 {
                if !self.ops.iptables(&delete).await?.success {
                    break;
                }
            }
        }
        for chain in [HOSTPORTS_CHAIN, POSTROUTING_CHAIN] {
            for verb in ["-F", "-X"] {
                let args: Vec<String> = vec!["-t".into(), "nat".into(), verb.into(), chain.into()];
                let output = self.ops.iptables(&args).await?;
                if !output.success && !output.stderr.contains("No chain") {
                    return Err(NetworkError::Command {
                        command: format!("iptables {}", args.join(" ")),
                        stderr: output.stderr.trim().to_string(),
                    });
                }
            }
        }
        self.ipam.remove_all()?;
        let ports_dir = self.host_ports_dir();
        match std::fs::remove_dir_all(&ports_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(NetworkError::State {
                path: ports_dir,
                source,
            }),
        }
    }

    /// Rewrites our nat chains from the persisted hostPort state.
    async fn apply_rules(&self) -> Result<(), NetworkError> {
        let rules = plan::render_nat_rules(
            self.config.pod_cidr,
            self.config.cluster_cidr,
            &self.read_host_ports()?,
        );
        self.ops.iptables_restore(&rules).await
    }

    fn read_host_ports(&self) -> Result<BTreeMap<String, SandboxHostPorts>, NetworkError> {
        let dir = self.host_ports_dir();
        let mut all = BTreeMap::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(all),
            Err(source) => return Err(NetworkError::State { path: dir, source }),
        };
        for entry in entries {
            let path = entry
                .map_err(|source| NetworkError::State {
                    path: dir.clone(),
                    source,
                })?
                .path();
            let Some(sandbox_id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_string)
            else {
                continue;
            };
            let bytes = std::fs::read(&path).map_err(|source| NetworkError::State {
                path: path.clone(),
                source,
            })?;
            let mapping: SandboxHostPorts =
                serde_json::from_slice(&bytes).map_err(|e| NetworkError::State {
                    path: path.clone(),
                    source: io::Error::other(e),
                })?;
            all.insert(sandbox_id, mapping);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod fake;
