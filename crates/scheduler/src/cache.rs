//! The scheduler's cache: per node, its Node object and the pods assigned to it (bound ones from
//! the informer plus pods assumed on it while their binding is in flight). A snapshot for one
//! scheduling cycle is cheap: a node's pod maps are shared (`Arc`) and copied only when the node
//! changes while a snapshot still holds them, and nodes are kept in name order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;

use crate::resources::{pod_requests, pod_requests_nonzero, Resources};

/// A host port in use: (protocol, hostIP, port).
pub type HostPort = (String, String, i32);

/// One node and what is placed on it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub node: Option<Arc<Node>>,
    /// The node's allocatable cpu (milli), memory and pods, parsed once per node update.
    pub allocatable: Resources,
    pub pods: Arc<HashMap<String, Arc<Pod>>>,
    /// The pods among `pods` with required pod anti-affinity terms (few, usually none).
    pub anti_affinity_pods: Arc<HashMap<String, Arc<Pod>>>,
    pub requested: Resources,
    pub nonzero_requested: Resources,
    pub used_ports: HashSet<HostPort>,
}

/// Whether a pod has required anti-affinity terms (it then constrains pods placed after it).
fn has_required_anti_affinity(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|pa| {
            pa.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|terms| !terms.is_empty())
}

/// A node's allocatable resources.
pub fn allocatable_of(node: &Node) -> Resources {
    let alloc = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    let get = |k: &str| alloc.and_then(|a| a.get(k));
    Resources {
        milli_cpu: get("cpu").map(crate::resources::milli).unwrap_or(0),
        memory: get("memory").map(crate::resources::units).unwrap_or(0),
        pods: get("pods").map(crate::resources::units).unwrap_or(0),
    }
}

/// The host ports a pod asks for.
pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let mut out = Vec::new();
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        for p in c.ports.iter().flatten() {
            if let Some(hp) = p.host_port.filter(|hp| *hp > 0) {
                out.push((
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                    hp,
                ));
            }
        }
    }
    out
}

impl NodeInfo {
    /// The node's name.
    pub fn name(&self) -> String {
        self.node.as_ref().map(|n| n.name_any()).unwrap_or_default()
    }

    pub(crate) fn add_pod(&mut self, pod: Arc<Pod>) {
        let uid = pod.uid().unwrap_or_default();
        if self.pods.contains_key(&uid) {
            self.remove_pod(&uid);
        }
        self.requested.add(&pod_requests(&pod));
        self.nonzero_requested.add(&pod_requests_nonzero(&pod));
        for hp in host_ports(&pod) {
            self.used_ports.insert(hp);
        }
        if has_required_anti_affinity(&pod) {
            Arc::make_mut(&mut self.anti_affinity_pods).insert(uid.clone(), pod.clone());
        }
        Arc::make_mut(&mut self.pods).insert(uid, pod);
    }

    pub(crate) fn remove_pod(&mut self, uid: &str) {
        if let Some(p) = Arc::make_mut(&mut self.pods).remove(uid) {
            self.requested.sub(&pod_requests(&p));
            self.nonzero_requested.sub(&pod_requests_nonzero(&p));
            if self.anti_affinity_pods.contains_key(uid) {
                Arc::make_mut(&mut self.anti_affinity_pods).remove(uid);
            }
            if !host_ports(&p).is_empty() {
                self.used_ports.clear();
                let ports: Vec<HostPort> = self.pods.values().flat_map(|p| host_ports(p)).collect();
                self.used_ports.extend(ports);
            }
        }
    }
}

/// Nodes and their pods, plus assumed pods.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: BTreeMap<String, NodeInfo>,
    /// pod uid → node of every pod counted
    pod_node: HashMap<String, String>,
    /// pods assumed (binding in flight): uid → node
    assumed: HashMap<String, String>,
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn counts(pod: &Pod) -> bool {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    phase != "Succeeded" && phase != "Failed"
}

impl Cache {
    /// Adds or updates a node.
    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let name = node.name_any();
        let info = self.nodes.entry(name).or_default();
        info.allocatable = allocatable_of(&node);
        info.node = Some(node);
    }

    /// Removes a node (its pods stay counted until they go).
    pub fn remove_node(&mut self, name: &str) {
        if let Some(n) = self.nodes.get_mut(name) {
            n.node = None;
            if n.pods.is_empty() {
                self.nodes.remove(name);
            }
        }
    }

    /// Applies a pod from the informer (bound pods count on their node).
    pub fn upsert_pod(&mut self, pod: Arc<Pod>) {
        let uid = pod.uid().unwrap_or_default();
        match node_of(&pod) {
            Some(node) if counts(&pod) => {
                self.assumed.remove(&uid);
                if let Some(prev) = self.pod_node.get(&uid).cloned() {
                    if prev != node {
                        if let Some(ni) = self.nodes.get_mut(&prev) {
                            ni.remove_pod(&uid);
                        }
                    }
                }
                let node = node.to_string();
                self.nodes.entry(node.clone()).or_default().add_pod(pod);
                self.pod_node.insert(uid, node);
            }
            _ => {
                if !self.assumed.contains_key(&uid) || node_of(&pod).is_some() {
                    self.remove_pod(&uid);
                }
            }
        }
    }

    /// Forgets a pod.
    pub fn remove_pod(&mut self, uid: &str) {
        self.assumed.remove(uid);
        if let Some(node) = self.pod_node.remove(uid) {
            if let Some(ni) = self.nodes.get_mut(&node) {
                ni.remove_pod(uid);
                if ni.node.is_none() && ni.pods.is_empty() {
                    self.nodes.remove(&node);
                }
            }
        }
    }

    /// Counts `pod` on `node` before its binding is confirmed.
    pub fn assume(&mut self, pod: &Pod, node: &str) {
        let mut p = pod.clone();
        p.spec.get_or_insert_with(Default::default).node_name = Some(node.to_string());
        let uid = pod.uid().unwrap_or_default();
        self.nodes
            .entry(node.to_string())
            .or_default()
            .add_pod(Arc::new(p));
        self.pod_node.insert(uid.clone(), node.to_string());
        self.assumed.insert(uid, node.to_string());
    }

    /// Drops an assumed pod whose binding failed.
    pub fn forget(&mut self, uid: &str) {
        if self.assumed.contains_key(uid) {
            self.remove_pod(uid);
        }
    }

    /// Whether the pod is assumed (binding in flight).
    pub fn is_assumed(&self, uid: &str) -> bool {
        self.assumed.contains_key(uid)
    }

    /// The nodes that exist, in name order, for one scheduling cycle.
    pub fn snapshot(&self) -> Vec<NodeInfo> {
        self.nodes
            .values()
            .filter(|n| n.node.is_some())
            .cloned()
            .collect()
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.values().filter(|n| n.node.is_some()).count()
    }
}
