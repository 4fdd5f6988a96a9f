//! Node lifecycle: allocates node.spec.podCIDR (/24s out of --cluster-cidr, never two nodes the
//! same one), watches node heartbeats (the node's Lease in kube-node-lease and its Ready
//! condition) and marks a silent node Ready=Unknown with the unreachable NoSchedule and NoExecute
//! taints (not-ready ones for a node that reports NotReady), evicts its pods once their
//! toleration runs out (the apiserver gives every pod one, --default-unreachable-toleration-
//! seconds; --pod-eviction-timeout only covers pods without any), and lifts the taints when the
//! node reports Ready again.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::Ipv4Net;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::time::Instant;

use crate::events::{EventType, Recorder};
use crate::informer::Informer;
use crate::manager::Config;
use crate::queue::WorkQueue;
use crate::Result;

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// The node lifecycle controller (with the CIDR allocator and the NoExecute taint manager).
pub struct NodeLifecycleController {
    client: Client,
    cfg: Config,
    nodes: Arc<Informer<Node>>,
    pods: Arc<Informer<Pod>>,
    leases: Arc<Informer<Lease>>,
    cidr_queue: Arc<WorkQueue>,
    /// node → (last heartbeat seen, when we saw it change)
    seen: Mutex<HashMap<String, (String, Instant)>>,
    /// CIDRs handed out but maybe not yet in the cache
    pending: Mutex<HashSet<Ipv4Net>>,
    /// (node, taint key) → when we first saw the taint (for taints without timeAdded)
    taint_seen: Mutex<HashMap<(String, String), jiff::Timestamp>>,
    recorder: Recorder,
}

/// The `n`-th /24 of `cluster` (None past the end).
pub fn nth_subnet(cluster: Ipv4Net, n: u32) -> Option<Ipv4Net> {
    let prefix = 24u8.max(cluster.prefix_len());
    let count = 1u64 << (prefix - cluster.prefix_len());
    if n as u64 >= count {
        return None;
    }
    let base = u32::from(cluster.network());
    let addr = base + (n << (32 - prefix));
    Ipv4Net::new(Ipv4Addr::from(addr), prefix).ok()
}

/// The first /24 of `cluster` not in `used`.
pub fn first_free_subnet(cluster: Ipv4Net, used: &HashSet<Ipv4Net>) -> Option<Ipv4Net> {
    (0..)
        .map_while(|i| nth_subnet(cluster, i))
        .find(|s| !used.contains(s))
}

fn tolerates(tols: &[Toleration], t: &Taint) -> Option<Option<i64>> {
    tols.iter()
        .filter(|tol| {
            let eff = tol
                .effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == t.effect);
            let key = tol.key.as_deref().is_none_or(|k| k.is_empty())
                || tol.key.as_deref() == Some(t.key.as_str());
            let val = tol.operator.as_deref() == Some("Exists")
                || tol.value.as_deref().unwrap_or("") == t.value.as_deref().unwrap_or("");
            eff && key && val
        })
        .map(|tol| tol.toleration_seconds)
        .min_by_key(|s| s.unwrap_or(i64::MAX))
}

/// When a pod on a node with `taints` must be evicted: None never, Some(0) now, else seconds
/// after the taint was added. Pods without a toleration for the not-ready/unreachable taints get
/// `default_secs` (the DefaultTolerationSeconds admission's role).
pub fn eviction_delay(
    pod: &Pod,
    taints: &[Taint],
    default_secs: i64,
) -> Option<(i64, Option<jiff::Timestamp>)> {
    let tols = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut best: Option<(i64, Option<jiff::Timestamp>)> = None;
    for t in taints.iter().filter(|t| t.effect == "NoExecute") {
        let added = t.time_added.as_ref().map(|x| x.0);
        let secs = match tolerates(&tols, t) {
            Some(None) => continue, // tolerated forever
            Some(Some(s)) => s.max(0),
            None if t.key == UNREACHABLE || t.key == NOT_READY => default_secs,
            None => 0,
        };
        if best.is_none_or(|(b, _)| secs < b) {
            best = Some((secs, added));
        }
    }
    best
}

impl NodeLifecycleController {
    /// Wires the controller to the shared informers.
    pub fn new(
        client: Client,
        cfg: &Config,
        nodes: Arc<Informer<Node>>,
        pods: Arc<Informer<Pod>>,
        leases: Arc<Informer<Lease>>,
    ) -> Arc<Self> {
        let cidr_queue = WorkQueue::new("nodeipam");
        let q = cidr_queue.clone();
        nodes.on_change(move |_, new| {
            if let Some(n) = new {
                if n.spec
                    .as_ref()
                    .and_then(|s| s.pod_cidr.as_deref())
                    .unwrap_or("")
                    .is_empty()
                {
                    q.add(n.name_any());
                }
            }
        });
        Arc::new(NodeLifecycleController {
            recorder: Recorder::new(client.clone(), "node-controller"),
            client,
            cfg: cfg.clone(),
            nodes,
            pods,
            leases,
            cidr_queue,
            seen: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashSet::new()),
            taint_seen: Mutex::new(HashMap::new()),
        })
    }

    /// Runs the CIDR allocator and the monitor loop.
    pub async fn run(self: Arc<Self>) {
        self.nodes.wait_synced().await;
        self.pods.wait_synced().await;
        self.leases.wait_synced().await;
        let c = self.clone();
        let alloc = tokio::spawn(crate::queue::run_workers(
            self.cidr_queue.clone(),
            1,
            move |name| {
                let c = c.clone();
                async move { c.allocate_cidr(&name).await }
            },
        ));
        let _guard = crate::manager::AbortOnDrop(vec![alloc]);
        loop {
            if let Err(e) = self.monitor().await {
                tracing::info!(error = %e, "node monitor pass failed");
            }
            tokio::time::sleep(self.cfg.node_monitor_period).await;
        }
    }

    async fn allocate_cidr(&self, name: &str) -> Result<Option<Duration>> {
        let Some(node) = self.nodes.store().find(|n| n.name_any() == name) else {
            return Ok(None);
        };
        if !node
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_deref())
            .unwrap_or("")
            .is_empty()
        {
            return Ok(None);
        }
        let mut used: HashSet<Ipv4Net> = self
            .nodes
            .store()
            .state()
            .iter()
            .filter_map(|n| n.spec.as_ref()?.pod_cidr.as_deref()?.parse().ok())
            .collect();
        used.extend(self.pending.lock().unwrap().iter().copied());
        let Some(cidr) = first_free_subnet(self.cfg.cluster_cidr, &used) else {
            self.recorder.event(
                node.as_ref(),
                EventType::Warning,
                "CIDRNotAvailable",
                "Node has no CIDR available",
            );
            return Ok(Some(Duration::from_secs(30)));
        };
        self.pending.lock().unwrap().insert(cidr);
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = json!({"metadata": {"resourceVersion": node.resource_version()},
            "spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]}});
        let r = api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        if r.is_err() {
            self.pending.lock().unwrap().remove(&cidr);
        }
        r?;
        self.recorder.event(
            node.as_ref(),
            EventType::Normal,
            "CIDRAssignmentSucceeded",
            &format!("Node {name} assigned podCIDR {cidr}"),
        );
        Ok(None)
    }

    fn heartbeat(&self, node: &Node) -> String {
        let lease = self
            .leases
            .store()
            .find(|l| l.name_any() == node.name_any())
            .and_then(|l| {
                l.spec
                    .as_ref()?
                    .renew_time
                    .as_ref()
                    .map(|t| t.0.to_string())
            })
            .unwrap_or_default();
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| {
                format!(
                    "{:?}{}",
                    c.last_heartbeat_time.as_ref().map(|t| t.0),
                    c.status
                )
            })
            .unwrap_or_default();
        format!("{lease}|{ready}")
    }

    /// One pass over all nodes.
    pub async fn monitor(&self) -> Result<()> {
        let now = Instant::now();
        let nodes = self.nodes.store().state();
        let grace = self.cfg.node_monitor_grace_period;
        for node in &nodes {
            let name = node.name_any();
            let hb = self.heartbeat(node);
            let stale = {
                let mut seen = self.seen.lock().unwrap();
                let e = seen.entry(name.clone()).or_insert((hb.clone(), now));
                if e.0 != hb {
                    *e = (hb, now);
                }
                now.duration_since(e.1) > grace
            };
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                .map(|c| c.status.clone());
            if stale && ready.as_deref() != Some("Unknown") {
                self.mark_unknown(node).await?;
                continue;
            }
            let want_taint = match ready.as_deref() {
                Some("True") => None,
                Some("Unknown") => Some(UNREACHABLE),
                _ => Some(NOT_READY),
            };
            self.reconcile_taints(node, want_taint).await?;
            self.evict(node).await?;
        }
        self.seen
            .lock()
            .unwrap()
            .retain(|n, _| nodes.iter().any(|x| &x.name_any() == n));
        Ok(())
    }

    async fn mark_unknown(&self, node: &Node) -> Result<()> {
        let name = node.name_any();
        let now = Time(jiff::Timestamp::now());
        let mut conds: Vec<NodeCondition> = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        if !conds.iter().any(|c| c.type_ == "Ready") {
            conds.push(NodeCondition {
                type_: "Ready".into(),
                ..Default::default()
            });
        }
        for c in conds.iter_mut() {
            if matches!(
                c.type_.as_str(),
                "Ready" | "MemoryPressure" | "DiskPressure" | "PIDPressure"
            ) {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(now.clone());
            }
        }
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = json!({"status": {"conditions": conds}});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tracing::info!(node = %name, "node stopped posting status: Ready=Unknown");
        self.recorder.event(
            node,
            EventType::Normal,
            "NodeNotReady",
            &format!("Node {name} status is now: NodeNotReady"),
        );
        // its pods are no longer ready
        for p in self.pods_on(&name) {
            let papi: Api<Pod> =
                Api::namespaced(self.client.clone(), &p.namespace().unwrap_or_default());
            let mut pconds = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            let mut changed = false;
            for c in pconds
                .iter_mut()
                .filter(|c| c.type_ == "Ready" && c.status != "False")
            {
                c.status = "False".into();
                c.last_transition_time = Some(now.clone());
                changed = true;
            }
            if changed {
                let patch = json!({"status": {"conditions": pconds}});
                let _ = papi
                    .patch_status(
                        &p.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await;
            }
        }
        Ok(())
    }

    fn pods_on(&self, node: &str) -> Vec<Arc<Pod>> {
        self.pods
            .store()
            .state()
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .collect()
    }

    async fn reconcile_taints(&self, node: &Node, want: Option<&str>) -> Result<()> {
        let taints: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let mut new: Vec<Taint> = taints
            .iter()
            .filter(|t| {
                !((t.key == UNREACHABLE || t.key == NOT_READY) && Some(t.key.as_str()) != want)
            })
            .cloned()
            .collect();
        // Upstream's two passes: the NoSchedule taint (TaintNodesByCondition) keeps the scheduler
        // away, the NoExecute taint (with timeAdded) drives evictions.
        if let Some(key) = want {
            if !new.iter().any(|t| t.key == key && t.effect == "NoSchedule") {
                new.push(Taint {
                    key: key.into(),
                    effect: "NoSchedule".into(),
                    time_added: None,
                    value: None,
                });
            }
            if !new.iter().any(|t| t.key == key && t.effect == "NoExecute") {
                new.push(Taint {
                    key: key.into(),
                    effect: "NoExecute".into(),
                    time_added: Some(Time(jiff::Timestamp::now())),
                    value: None,
                });
            }
        }
        if new == taints {
            return Ok(());
        }
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = json!({"metadata": {"resourceVersion": node.resource_version()}, "spec": {"taints": new}});
        match api
            .patch(
                &node.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn evict(&self, node: &Node) -> Result<()> {
        let mut taints: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let now = jiff::Timestamp::now();
        {
            let mut seen = self.taint_seen.lock().unwrap();
            let name = node.name_any();
            seen.retain(|(n, k), _| n != &name || taints.iter().any(|t| &t.key == k));
            for t in taints.iter_mut().filter(|t| t.time_added.is_none()) {
                let at = *seen.entry((name.clone(), t.key.clone())).or_insert(now);
                t.time_added = Some(Time(at));
            }
        }
        if !taints.iter().any(|t| t.effect == "NoExecute") {
            return Ok(());
        }
        tracing::debug!(node = %node.name_any(), pods = self.pods_on(&node.name_any()).len(), "NoExecute taint: checking pods");
        let default_secs = self.cfg.pod_eviction_timeout.as_secs() as i64;
        for p in self.pods_on(&node.name_any()) {
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some((secs, added)) = eviction_delay(&p, &taints, default_secs) else {
                continue;
            };
            let due = added.unwrap_or(now) + jiff::SignedDuration::from_secs(secs);
            if due > now {
                tracing::debug!(pod = %p.name_any(), %due, "eviction pending");
                continue;
            }
            let api: Api<Pod> =
                Api::namespaced(self.client.clone(), &p.namespace().unwrap_or_default());
            match api.delete(&p.name_any(), &DeleteParams::default()).await {
                Ok(_) => {
                    tracing::info!(pod = %p.name_any(), node = %node.name_any(), "evicted by taint manager");
                    self.recorder.event(
                        p.as_ref(),
                        EventType::Normal,
                        "TaintManagerEviction",
                        &format!(
                            "Marking for deletion Pod {}/{}",
                            p.namespace().unwrap_or_default(),
                            p.name_any()
                        ),
                    );
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_handed_out_in_order_and_never_twice() {
        let c: Ipv4Net = "10.244.0.0/16".parse().unwrap();
        let mut used = HashSet::new();
        let a = first_free_subnet(c, &used).unwrap();
        assert_eq!(a.to_string(), "10.244.0.0/24");
        used.insert(a);
        let b = first_free_subnet(c, &used).unwrap();
        assert_eq!(b.to_string(), "10.244.1.0/24");
        assert_eq!(nth_subnet(c, 255).unwrap().to_string(), "10.244.255.0/24");
        assert!(nth_subnet(c, 256).is_none());
        let small: Ipv4Net = "10.0.0.0/23".parse().unwrap();
        let full: HashSet<Ipv4Net> = (0..2).filter_map(|i| nth_subnet(small, i)).collect();
        assert!(first_free_subnet(small, &full).is_none());
    }

    #[test]
    fn eviction_follows_tolerations() {
        let t = Taint {
            key: UNREACHABLE.into(),
            effect: "NoExecute".into(),
            ..Default::default()
        };
        let pod = |tols: serde_json::Value| -> Pod {
            serde_json::from_value(
                json!({"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": tols}}),
            )
            .unwrap()
        };
        assert_eq!(
            eviction_delay(&pod(json!([])), std::slice::from_ref(&t), 300)
                .unwrap()
                .0,
            300
        );
        let p = pod(
            json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]),
        );
        assert_eq!(
            eviction_delay(&p, std::slice::from_ref(&t), 300).unwrap().0,
            5
        );
        let p = pod(json!([{"operator": "Exists"}]));
        assert!(eviction_delay(&p, std::slice::from_ref(&t), 300).is_none());
        let other = Taint {
            key: "x".into(),
            effect: "NoExecute".into(),
            ..Default::default()
        };
        assert_eq!(eviction_delay(&pod(json!([])), &[other], 300).unwrap().0, 0);
    }
}
