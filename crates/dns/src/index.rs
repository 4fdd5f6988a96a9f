//! The in-memory index the answers come from: Services and EndpointSlices reduced to what DNS
//! needs, grouped by service, with a reverse (PTR) map kept current on every change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label an EndpointSlice names its Service with.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// (namespace, name) of a Service.
pub type ServiceKey = (String, String);

/// What a Service resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceKind {
    /// A virtual IP per family (spec.clusterIPs).
    ClusterIp(Vec<IpAddr>),
    /// clusterIP None: the endpoints' addresses.
    Headless,
    /// type ExternalName: a CNAME to this name.
    ExternalName(String),
}

/// A named or unnamed port of a Service or an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortEntry {
    /// Port name (empty when unnamed).
    pub name: String,
    /// Protocol, lowercase (tcp, udp, sctp).
    pub protocol: String,
    /// Port number.
    pub port: u16,
}

/// A Service as DNS sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// What the name resolves to.
    pub kind: ServiceKind,
    /// spec.ports.
    pub ports: Vec<PortEntry>,
    /// spec.publishNotReadyAddresses: not-ready endpoints are answered too.
    pub publish_not_ready: bool,
}

/// One endpoint of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointEntry {
    /// Its addresses (one in practice).
    pub addresses: Vec<IpAddr>,
    /// conditions.ready (nil counts as ready, as the API documents).
    pub ready: bool,
    /// hostname (StatefulSet pods with a subdomain).
    pub hostname: Option<String>,
}

impl EndpointEntry {
    /// The first label of this endpoint's name: its hostname, else its first address with
    /// dashes (CoreDNS' endpointHostname).
    pub fn label(&self) -> Option<String> {
        if let Some(h) = &self.hostname {
            return Some(h.to_ascii_lowercase());
        }
        self.addresses.first().map(dashed)
    }
}

/// An IP as a DNS label: 10.0.0.1 → 10-0-0-1, fd00::1 → fd00--1.
pub fn dashed(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

/// An EndpointSlice as DNS sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceEntry {
    /// The Service it belongs to (its label).
    pub service: String,
    /// The endpoints.
    pub endpoints: Vec<EndpointEntry>,
    /// The ports.
    pub ports: Vec<PortEntry>,
}

/// The index: services, their slices, and the reverse map.
#[derive(Debug, Default)]
pub struct Index {
    services: HashMap<ServiceKey, ServiceEntry>,
    /// Slices grouped by their service: (ns, service) → slice name → slice.
    slices: HashMap<ServiceKey, BTreeMap<String, SliceEntry>>,
    /// (ns, slice name) → the service it was filed under (for deletes and relabels).
    slice_owner: HashMap<(String, String), String>,
    /// Number of services per namespace (a namespace with services exists as a name).
    namespaces: HashMap<String, usize>,
    /// Reverse map: IP → the names pointing at it, owned by a service key.
    ptr: HashMap<IpAddr, BTreeSet<(ServiceKey, String)>>,
    /// What each service key put into `ptr`.
    ptr_owned: HashMap<ServiceKey, Vec<IpAddr>>,
    /// Bumped on every change; the SOA serial.
    serial: u32,
}

/// Endpoints that are answered for a service (ready ones, or all with publishNotReadyAddresses),
/// in slice-name order, each address once.
pub struct Answerable<'a> {
    /// The endpoint.
    pub endpoint: &'a EndpointEntry,
    /// The slice it is in (its ports apply).
    pub slice: &'a SliceEntry,
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// The SOA serial: changes whenever the index does.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Number of services.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Number of endpoints over all slices.
    pub fn endpoint_count(&self) -> usize {
        self.slices
            .values()
            .flat_map(|s| s.values())
            .map(|s| s.endpoints.len())
            .sum()
    }

    /// Number of reverse (PTR) names.
    pub fn ptr_count(&self) -> usize {
        self.ptr.values().map(|s| s.len()).sum()
    }

    /// A service by namespace and name (lowercase).
    pub fn service(&self, ns: &str, name: &str) -> Option<&ServiceEntry> {
        self.services.get(&(ns.to_string(), name.to_string()))
    }

    /// Whether any service lives in `ns`.
    pub fn namespace_exists(&self, ns: &str) -> bool {
        self.namespaces.contains_key(ns)
    }

    /// The names an IP points back to (sorted, deduplicated).
    pub fn ptr(&self, ip: &IpAddr) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .ptr
            .get(ip)
            .map(|s| s.iter().map(|(_, n)| n.as_str()).collect())
            .unwrap_or_default();
        names.dedup();
        names
    }

    /// The endpoints answered for a service (see [`Answerable`]).
    pub fn answerable(&self, ns: &str, name: &str) -> Vec<Answerable<'_>> {
        let key = (ns.to_string(), name.to_string());
        let all = self
            .services
            .get(&key)
            .map(|s| s.publish_not_ready)
            .unwrap_or(false);
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for slice in self.slices.get(&key).into_iter().flat_map(|m| m.values()) {
            for endpoint in &slice.endpoints {
                if !(endpoint.ready || all) {
                    continue;
                }
                if endpoint.addresses.iter().all(|a| !seen.insert(*a)) {
                    continue;
                }
                out.push(Answerable { endpoint, slice });
            }
        }
        out
    }

    /// Adds or replaces a Service.
    pub fn apply_service(&mut self, svc: &Service) {
        let Some((key, entry)) = service_entry(svc) else {
            return;
        };
        if self.services.get(&key) == Some(&entry) {
            return;
        }
        if self.services.insert(key.clone(), entry).is_none() {
            *self.namespaces.entry(key.0.clone()).or_default() += 1;
        }
        self.changed(&key);
    }

    /// Removes a Service.
    pub fn delete_service(&mut self, svc: &Service) {
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        self.delete_service_key(&(ns, name));
    }

    fn delete_service_key(&mut self, key: &ServiceKey) {
        if self.services.remove(key).is_some() {
            if let Some(n) = self.namespaces.get_mut(&key.0) {
                *n -= 1;
                if *n == 0 {
                    self.namespaces.remove(&key.0);
                }
            }
            self.changed(key);
        }
    }

    /// Replaces every Service (after a relist).
    pub fn replace_services(&mut self, services: &[Service]) {
        let fresh: BTreeSet<ServiceKey> = services
            .iter()
            .filter_map(|s| service_entry(s).map(|(k, _)| k))
            .collect();
        let gone: Vec<ServiceKey> = self
            .services
            .keys()
            .filter(|k| !fresh.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            self.delete_service_key(&key);
        }
        for svc in services {
            self.apply_service(svc);
        }
    }

    /// Adds or replaces an EndpointSlice.
    pub fn apply_slice(&mut self, slice: &EndpointSlice) {
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        let name = slice.metadata.name.clone().unwrap_or_default();
        let Some(entry) = slice_entry(slice) else {
            // No service label (any more): it serves no name.
            self.delete_slice_key(&(ns, name));
            return;
        };
        let owner_key = (ns.clone(), name.clone());
        if let Some(previous) = self.slice_owner.get(&owner_key) {
            if *previous != entry.service {
                self.delete_slice_key(&owner_key);
            }
        }
        let key = (ns, entry.service.clone());
        let group = self.slices.entry(key.clone()).or_default();
        if group.get(&name) == Some(&entry) {
            return;
        }
        group.insert(name.clone(), entry);
        self.slice_owner.insert(owner_key, key.1.clone());
        self.changed(&key);
    }

    /// Removes an EndpointSlice.
    pub fn delete_slice(&mut self, slice: &EndpointSlice) {
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        let name = slice.metadata.name.clone().unwrap_or_default();
        self.delete_slice_key(&(ns, name));
    }

    fn delete_slice_key(&mut self, owner_key: &(String, String)) {
        let Some(service) = self.slice_owner.remove(owner_key) else {
            return;
        };
        let key = (owner_key.0.clone(), service);
        if let Some(group) = self.slices.get_mut(&key) {
            group.remove(&owner_key.1);
            if group.is_empty() {
                self.slices.remove(&key);
            }
        }
        self.changed(&key);
    }

    /// Replaces every EndpointSlice (after a relist).
    pub fn replace_slices(&mut self, slices: &[EndpointSlice]) {
        let fresh: BTreeSet<(String, String)> = slices
            .iter()
            .map(|s| {
                (
                    s.metadata.namespace.clone().unwrap_or_default(),
                    s.metadata.name.clone().unwrap_or_default(),
                )
            })
            .collect();
        let gone: Vec<(String, String)> = self
            .slice_owner
            .keys()
            .filter(|k| !fresh.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            self.delete_slice_key(&key);
        }
        for slice in slices {
            self.apply_slice(slice);
        }
    }

    /// Recomputes the reverse entries of one service after it or one of its slices changed.
    fn changed(&mut self, key: &ServiceKey) {
        self.serial = self.serial.wrapping_add(1);
        for ip in self.ptr_owned.remove(key).unwrap_or_default() {
            if let Some(set) = self.ptr.get_mut(&ip) {
                set.retain(|(owner, _)| owner != key);
                if set.is_empty() {
                    self.ptr.remove(&ip);
                }
            }
        }
        let Some(svc) = self.services.get(key) else {
            return;
        };
        // Names without the cluster domain; the answer code appends it.
        let base = format!("{}.{}.svc", key.1, key.0);
        let mut entries: Vec<(IpAddr, String)> = Vec::new();
        if let ServiceKind::ClusterIp(ips) = &svc.kind {
            entries.extend(ips.iter().map(|ip| (*ip, base.clone())));
        }
        for a in self.answerable(&key.0, &key.1) {
            if let Some(label) = a.endpoint.label() {
                for ip in &a.endpoint.addresses {
                    entries.push((*ip, format!("{label}.{base}")));
                }
            }
        }
        let mut owned = Vec::with_capacity(entries.len());
        for (ip, name) in entries {
            self.ptr.entry(ip).or_default().insert((key.clone(), name));
            owned.push(ip);
        }
        if !owned.is_empty() {
            self.ptr_owned.insert(key.clone(), owned);
        }
    }
}

fn lower_opt(s: &Option<String>) -> String {
    s.as_deref().unwrap_or_default().to_ascii_lowercase()
}

/// The DNS view of a Service; None for objects without a name.
pub fn service_entry(svc: &Service) -> Option<(ServiceKey, ServiceEntry)> {
    let ns = svc.metadata.namespace.clone()?.to_ascii_lowercase();
    let name = svc.metadata.name.clone()?.to_ascii_lowercase();
    let spec = svc.spec.clone().unwrap_or_default();
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        ServiceKind::ExternalName(spec.external_name.clone().unwrap_or_default())
    } else if spec.cluster_ip.as_deref() == Some("None") {
        ServiceKind::Headless
    } else {
        let mut ips: Vec<IpAddr> = spec
            .cluster_ips
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        if ips.is_empty() {
            ips.extend(
                spec.cluster_ip
                    .as_deref()
                    .and_then(|s| s.parse::<IpAddr>().ok()),
            );
        }
        ServiceKind::ClusterIp(ips)
    };
    let ports = spec
        .ports
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            Some(PortEntry {
                name: lower_opt(&p.name),
                protocol: p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase(),
                port: u16::try_from(p.port).ok()?,
            })
        })
        .collect();
    Some((
        (ns, name),
        ServiceEntry {
            kind,
            ports,
            publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
        },
    ))
}

/// The DNS view of an EndpointSlice; None without the service-name label.
pub fn slice_entry(slice: &EndpointSlice) -> Option<SliceEntry> {
    let service = slice
        .metadata
        .labels
        .as_ref()?
        .get(SERVICE_NAME_LABEL)?
        .to_ascii_lowercase();
    if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
        return None;
    }
    let endpoints = slice
        .endpoints
        .iter()
        .map(|e| EndpointEntry {
            addresses: e.addresses.iter().filter_map(|a| a.parse().ok()).collect(),
            ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
            hostname: e.hostname.clone(),
        })
        .filter(|e| !e.addresses.is_empty())
        .collect();
    let ports = slice
        .ports
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            Some(PortEntry {
                name: lower_opt(&p.name),
                protocol: p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase(),
                port: u16::try_from(p.port?).ok()?,
            })
        })
        .collect();
    Some(SliceEntry {
        service,
        endpoints,
        ports,
    })
}
