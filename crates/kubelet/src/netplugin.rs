//! The kubelet's view of the pod network (the CNI role): a small trait the pod workers call,
//! implemented over crates/network, and ready only once the node has a podCIDR.

use std::net::Ipv4Addr;
use std::path::Path;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ContainerPort;

/// A network plugin failure, as text for events and status messages.
#[derive(Debug, thiserror::Error)]
#[error("network: {0}")]
pub struct NetworkError(pub String);

/// What the pod workers need from the pod network.
#[async_trait]
pub trait PodNetworkPlugin: Send + Sync + 'static {
    /// Gives the sandbox `id` (network namespace `netns`) an interface and address.
    async fn attach(&self, id: &str, netns: &Path) -> Result<Ipv4Addr, NetworkError>;
    /// Releases what `attach` made; idempotent.
    async fn detach(&self, id: &str, netns: Option<&Path>) -> Result<(), NetworkError>;
    /// Sandboxes holding an address (to release those whose sandbox is gone).
    async fn allocated(&self) -> Vec<String>;
    /// Maps the pod's hostPorts to it.
    async fn set_host_ports(
        &self,
        id: &str,
        ip: Ipv4Addr,
        ports: &[ContainerPort],
    ) -> Result<(), NetworkError>;
}

#[async_trait]
impl crate::manager::RouteSync for BridgeNetwork {
    async fn sync(&self, peers: &[(ipnet::Ipv4Net, Ipv4Addr)]) -> Result<(), String> {
        self.inner
            .sync_routes(peers)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The network over crates/network's bridge, veth and host-local IPAM.
pub struct BridgeNetwork {
    inner: network::PodNetwork,
}

impl BridgeNetwork {
    /// Sets the node up (bridge, forwarding, masquerade) for `pod_cidr` and returns the plugin.
    pub async fn start(cfg: network::NetworkConfig) -> Result<Self, NetworkError> {
        let inner = network::PodNetwork::new(cfg).map_err(|e| NetworkError(e.to_string()))?;
        inner
            .setup_node()
            .await
            .map_err(|e| NetworkError(e.to_string()))?;
        Ok(BridgeNetwork { inner })
    }

    /// The underlying network (routes, teardown).
    pub fn inner(&self) -> &network::PodNetwork {
        &self.inner
    }
}

#[async_trait]
impl PodNetworkPlugin for BridgeNetwork {
    async fn attach(&self, id: &str, netns: &Path) -> Result<Ipv4Addr, NetworkError> {
        let iface = self
            .inner
            .attach(id, netns)
            .await
            .map_err(|e| NetworkError(e.to_string()))?;
        Ok(iface.ip.addr())
    }

    async fn detach(&self, id: &str, netns: Option<&Path>) -> Result<(), NetworkError> {
        self.inner
            .detach(id, netns)
            .await
            .map_err(|e| NetworkError(e.to_string()))
    }

    async fn allocated(&self) -> Vec<String> {
        self.inner
            .allocations()
            .unwrap_or_default()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    async fn set_host_ports(
        &self,
        id: &str,
        _ip: Ipv4Addr,
        ports: &[ContainerPort],
    ) -> Result<(), NetworkError> {
        let maps: Vec<network::HostPort> = ports
            .iter()
            .filter_map(|p| {
                let host_port = u16::try_from(p.host_port?).ok().filter(|p| *p > 0)?;
                let protocol = match p.protocol.as_deref() {
                    Some("UDP") => network::Protocol::Udp,
                    _ => network::Protocol::Tcp,
                };
                Some(network::HostPort {
                    protocol,
                    host_port,
                    container_port: u16::try_from(p.container_port).ok()?,
                    host_ip: p.host_ip.as_deref().and_then(|h| h.parse().ok()),
                })
            })
            .collect();
        self.inner
            .set_host_ports(id, &maps)
            .await
            .map_err(|e| NetworkError(e.to_string()))
    }
}
