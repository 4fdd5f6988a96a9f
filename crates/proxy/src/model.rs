//! The proxy's view of the cluster: service ports and their endpoints, built from Services and
//! discovery.k8s.io/v1 EndpointSlices the way kube-proxy's ServiceChangeTracker and
//! EndpointsChangeTracker build theirs (IPv4 only, headless and ExternalName skipped).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// Label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Default ClientIP affinity timeout of the API (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT_SECONDS: i32 = 10800;

/// namespace/name:port, upstream's `ServicePortName` (":port" omitted for an unnamed port).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortName {
    pub namespace: String,
    pub name: String,
    pub port: String,
}

impl fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if !self.port.is_empty() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// A transport protocol of a service port, lowercase as it appears in iptables arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// Parses the API's `TCP`/`UDP`/`SCTP` (absent means TCP).
    pub fn from_api(value: Option<&str>) -> Option<Protocol> {
        match value.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The lowercase name iptables and upstream's chain hashes use.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One port of a Service with a cluster IP: everything the rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub name: ServicePortName,
    pub protocol: Protocol,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    /// The NodePort, for NodePort and LoadBalancer services.
    pub node_port: Option<u16>,
    /// ClientIP affinity timeout in seconds; None without session affinity.
    pub affinity_timeout_seconds: Option<i32>,
    /// externalTrafficPolicy Local.
    pub external_policy_local: bool,
    /// internalTrafficPolicy Local.
    pub internal_policy_local: bool,
}

impl ServicePort {
    /// Whether the port is reachable from outside (here: it has a NodePort).
    pub fn externally_accessible(&self) -> bool {
        self.node_port.is_some()
    }

    /// Whether some traffic uses the Cluster-policy chain (upstream `UsesClusterEndpoints`).
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_policy_local || (self.externally_accessible() && !self.external_policy_local)
    }

    /// Whether some traffic uses the Local-policy chain (upstream `UsesLocalEndpoints`).
    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_policy_local || (self.external_policy_local && self.externally_accessible())
    }
}

/// One endpoint address:port of a service port with its conditions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// Whether the endpoint runs on this node (its nodeName is ours).
    pub local: bool,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

/// Everything one sync programs: each service port with its endpoints (sorted, deduplicated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub services: BTreeMap<ServicePortName, (ServicePort, Vec<Endpoint>)>,
}

/// The service ports of a Service that the proxy programs: none for headless, ExternalName or
/// non-IPv4 services.
pub fn service_ports(service: &Service) -> Vec<ServicePort> {
    let (Some(namespace), Some(name)) = (&service.metadata.namespace, &service.metadata.name)
    else {
        return Vec::new();
    };
    let Some(spec) = &service.spec else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let Some(cluster_ip) = spec
        .cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
    else {
        return Vec::new();
    };
    let affinity_timeout_seconds =
        (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .unwrap_or(DEFAULT_AFFINITY_TIMEOUT_SECONDS)
        });
    let has_node_ports = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
    let external_policy_local =
        has_node_ports && spec.external_traffic_policy.as_deref() == Some("Local");
    let internal_policy_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    spec.ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(ServicePort {
                name: ServicePortName {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    port: p.name.clone().unwrap_or_default(),
                },
                protocol: Protocol::from_api(p.protocol.as_deref())?,
                cluster_ip,
                port: u16::try_from(p.port).ok()?,
                node_port: if has_node_ports {
                    p.node_port
                        .and_then(|n| u16::try_from(n).ok())
                        .filter(|n| *n != 0)
                } else {
                    None
                },
                affinity_timeout_seconds,
                external_policy_local,
                internal_policy_local,
            })
        })
        .collect()
}

/// The service a slice belongs to, as (namespace, name), from its service-name label.
pub fn slice_service(slice: &EndpointSlice) -> Option<(String, String)> {
    let namespace = slice.metadata.namespace.clone()?;
    let name = slice
        .metadata
        .labels
        .as_ref()?
        .get(SERVICE_NAME_LABEL)?
        .clone();
    Some((namespace, name))
}

/// The endpoints of `port` among a service's slices: slice ports are matched by name and
/// protocol (the endpointslice controller has already resolved named target ports to numbers).
/// Conditions as upstream: ready absent means ready, serving absent means ready, terminating
/// absent means false. Duplicates across slices keep the first.
pub fn endpoints_for<'a>(
    port: &ServicePort,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    node_name: &str,
) -> Vec<Endpoint> {
    let mut found: BTreeMap<(Ipv4Addr, u16), Endpoint> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let Some(slice_port) = slice.ports.iter().flatten().find(|sp| {
            sp.name.as_deref().unwrap_or("") == port.name.port
                && Protocol::from_api(sp.protocol.as_deref()) == Some(port.protocol)
        }) else {
            continue;
        };
        let Some(number) = slice_port.port.and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(ready);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let local = endpoint.node_name.as_deref() == Some(node_name);
            for address in &endpoint.addresses {
                let Ok(ip) = address.parse::<Ipv4Addr>() else {
                    continue;
                };
                found.entry((ip, number)).or_insert(Endpoint {
                    ip,
                    port: number,
                    ready,
                    serving,
                    terminating,
                    local,
                });
            }
        }
    }
    found.into_values().collect()
}

/// Builds the snapshot of all services and slices for the node `node_name`.
pub fn snapshot<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    node_name: &str,
) -> Snapshot {
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        if let Some(key) = slice_service(slice) {
            by_service.entry(key).or_default().push(slice);
        }
    }
    let mut out = Snapshot::default();
    for service in services {
        for port in service_ports(service) {
            let key = (port.name.namespace.clone(), port.name.name.clone());
            let slices = by_service.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            let endpoints = endpoints_for(&port, slices.iter().copied(), node_name);
            out.services.insert(port.name.clone(), (port, endpoints));
        }
    }
    out
}

/// The endpoints each policy uses, as upstream's `CategorizeEndpoints`: ready endpoints, or when
/// there are none, the serving-and-terminating ones (separately for the cluster and local sets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Categorized {
    pub cluster: Vec<Endpoint>,
    pub local: Vec<Endpoint>,
    /// Whether any endpoint (cluster or local) can receive traffic.
    pub has_any: bool,
}

/// Splits `endpoints` of `port` into the Cluster and Local policy sets.
pub fn categorize(port: &ServicePort, endpoints: &[Endpoint]) -> Categorized {
    let pick = |local_only: bool| -> Vec<Endpoint> {
        let candidates = endpoints.iter().filter(|e| !local_only || e.local);
        let ready: Vec<Endpoint> = candidates.clone().filter(|e| e.ready).cloned().collect();
        if !ready.is_empty() {
            return ready;
        }
        candidates
            .filter(|e| e.serving && e.terminating)
            .cloned()
            .collect()
    };
    let cluster = if port.uses_cluster_endpoints() {
        pick(false)
    } else {
        Vec::new()
    };
    let local = if port.uses_local_endpoints() {
        pick(true)
    } else {
        Vec::new()
    };
    let has_any = endpoints
        .iter()
        .any(|e| e.ready || (e.serving && e.terminating));
    Categorized {
        cluster,
        local,
        has_any,
    }
}
