//! The DaemonSet controller: one pod per eligible node (nodeSelector matches, NoSchedule and
//! NoExecute taints tolerated), pinned with required node affinity on metadata.name as upstream
//! does so the scheduler binds it; the daemon tolerations added; RollingUpdate replacing old
//! pods at most maxUnavailable at a time; OnDelete.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::events::{EventType, Recorder};
use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::util::{self, controller_ref, key_of, split_key};
use crate::Result;

pub const TEMPLATE_HASH_LABEL: &str = "controller-revision-hash";

/// The DaemonSet controller.
pub struct DaemonSetController {
    client: Client,
    sets: Arc<Informer<DaemonSet>>,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    queue: Arc<WorkQueue>,
    expectations: Arc<crate::replicaset::Expectations>,
    recorder: Recorder,
}

/// The tolerations every daemon pod gets (upstream's AddOrUpdateDaemonPodTolerations).
pub fn daemon_tolerations() -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
}

/// Whether the set's pods should run on `node`.
pub fn node_eligible(ds: &DaemonSet, node: &Node) -> bool {
    let spec = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    if let Some(sel) = spec.and_then(|s| s.node_selector.as_ref()) {
        if sel.iter().any(|(k, v)| node.labels().get(k) != Some(v)) {
            return false;
        }
    }
    let mut tols = spec.and_then(|s| s.tolerations.clone()).unwrap_or_default();
    tols.extend(daemon_tolerations());
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|t| {
            tols.iter().any(|tol| {
                let key_ok = tol.key.as_deref().is_none_or(|k| k.is_empty())
                    || tol.key.as_deref() == Some(t.key.as_str());
                let eff_ok = tol
                    .effect
                    .as_deref()
                    .is_none_or(|e| e.is_empty() || e == t.effect);
                let val_ok = tol.operator.as_deref() == Some("Exists")
                    || tol.value.as_deref().unwrap_or("") == t.value.as_deref().unwrap_or("");
                key_ok && eff_ok && val_ok
            })
        })
}

fn pod_node(p: &Pod) -> Option<String> {
    if let Some(n) = p
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty())
    {
        return Some(n);
    }
    // not yet bound: the node it is pinned to
    let terms = &p
        .spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .first()?
        .match_fields
        .as_ref()?
        .first()?
        .values
        .as_ref()?
        .first()
        .cloned()
}

impl DaemonSetController {
    /// Wires the controller to the shared informers.
    pub fn new(
        client: Client,
        sets: Arc<Informer<DaemonSet>>,
        pods: Arc<Informer<Pod>>,
        nodes: Arc<Informer<Node>>,
    ) -> Arc<Self> {
        let queue = WorkQueue::new("daemonset");
        let expectations = Arc::new(crate::replicaset::Expectations::default());
        {
            let q = queue.clone();
            sets.on_change(move |old, new| {
                if let Some(s) = new.or(old) {
                    q.add(key_of(s));
                }
            });
        }
        {
            let q = queue.clone();
            let exp = expectations.clone();
            pods.on_change(move |old, new| {
                if let (None, Some(p)) = (old, new) {
                    if let Some(r) = controller_ref(&p.metadata).filter(|r| r.kind == "DaemonSet") {
                        exp.creation_observed(&format!(
                            "{}/{}",
                            p.namespace().unwrap_or_default(),
                            r.name
                        ));
                    }
                }
                for p in [old, new].into_iter().flatten() {
                    if let Some(r) = controller_ref(&p.metadata).filter(|r| r.kind == "DaemonSet") {
                        q.add(format!("{}/{}", p.namespace().unwrap_or_default(), r.name));
                    }
                }
            });
        }
        {
            let q = queue.clone();
            let ss = sets.store().clone();
            nodes.on_change(move |_, _| {
                for s in ss.state() {
                    q.add(key_of(s.as_ref()));
                }
            });
        }
        Arc::new(DaemonSetController {
            recorder: Recorder::new(client.clone(), "daemonset-controller"),
            client,
            sets,
            pods,
            nodes,
            queue,
            expectations,
        })
    }

    /// Runs `workers` workers.
    pub async fn run(self: Arc<Self>, workers: usize) {
        self.sets.wait_synced().await;
        self.pods.wait_synced().await;
        self.nodes.wait_synced().await;
        let c = self.clone();
        crate::queue::run_workers(self.queue.clone(), workers, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    fn new_pod(&self, ds: &DaemonSet, node: &str, hash: &str) -> Pod {
        let spec = ds.spec.clone().unwrap_or_default();
        let tm = spec.template.metadata.clone().unwrap_or_default();
        let mut labels: BTreeMap<String, String> = tm.labels.clone().unwrap_or_default();
        labels.insert(TEMPLATE_HASH_LABEL.into(), hash.into());
        let mut pspec = spec.template.spec.clone().unwrap_or_default();
        let mut tols = pspec.tolerations.take().unwrap_or_default();
        for t in daemon_tolerations() {
            if !tols.iter().any(|x| x.key == t.key && x.effect == t.effect) {
                tols.push(t);
            }
        }
        pspec.tolerations = Some(tols);
        let mut v = serde_json::to_value(&pspec).unwrap_or_default();
        v["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!({"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]});
        let pspec = serde_json::from_value(v).unwrap_or(pspec);
        Pod {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", ds.name_any())),
                namespace: ds.namespace(),
                labels: Some(labels),
                annotations: tm.annotations,
                owner_references: Some(vec![util::new_controller_ref(ds)]),
                ..Default::default()
            },
            spec: Some(pspec),
            status: None,
        }
    }

    /// One sync of the DaemonSet `key`.
    pub async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (ns, name) = split_key(key);
        let ns = ns.unwrap_or("default");
        let Some(ds) = self
            .sets
            .store()
            .find(|s| s.name_any() == name && s.namespace().as_deref() == Some(ns))
        else {
            return Ok(None);
        };
        let ds: DaemonSet = (*ds).clone();
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let spec = ds.spec.clone().unwrap_or_default();
        let hash = util::compute_hash(
            &spec.template,
            ds.status.as_ref().and_then(|s| s.collision_count),
        );
        let uid = ds.uid().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for p in self.pods.store().state() {
            if p.namespace().as_deref() == Some(ns)
                && controller_ref(&p.metadata).is_some_and(|r| r.uid == uid)
                && util::pod_is_active(&p)
            {
                if let Some(n) = pod_node(&p) {
                    by_node.entry(n).or_default().push(p);
                }
            }
        }
        let nodes = self.nodes.store().state();
        let eligible: Vec<String> = nodes
            .iter()
            .filter(|n| node_eligible(&ds, n))
            .map(|n| n.name_any())
            .collect();
        // create missing, delete extras and pods on ineligible nodes
        let may_create = self.expectations.satisfied(key);
        let missing = eligible
            .iter()
            .filter(|n| !by_node.contains_key(*n))
            .count();
        if may_create && missing > 0 {
            self.expectations
                .expect(key, missing as i64, Default::default());
        }
        for n in &eligible {
            let pods = by_node.get(n).cloned().unwrap_or_default();
            if pods.is_empty() {
                if !may_create {
                    continue;
                }
                let p = api
                    .create(&PostParams::default(), &self.new_pod(&ds, n, &hash))
                    .await?;
                self.recorder.event(
                    &ds,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {}", p.name_any()),
                );
            } else {
                for extra in pods.iter().skip(1) {
                    let _ = api
                        .delete(&extra.name_any(), &DeleteParams::default())
                        .await;
                }
            }
        }
        let mut misscheduled = 0;
        for (n, pods) in &by_node {
            if !eligible.contains(n) {
                misscheduled += 1;
                for p in pods {
                    let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
                }
            }
        }
        // rolling update
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        let mut updated = 0;
        let mut ready = 0;
        let mut old_pods = Vec::new();
        for n in &eligible {
            if let Some(p) = by_node.get(n).and_then(|v| v.first()) {
                if p.labels().get(TEMPLATE_HASH_LABEL) == Some(&hash) {
                    updated += 1;
                } else {
                    old_pods.push(p.clone());
                }
                if util::pod_is_ready(p) {
                    ready += 1;
                }
            }
        }
        let desired = eligible.len() as i32;
        if strategy.type_.as_deref() != Some("OnDelete") && !old_pods.is_empty() {
            let max_unavailable = strategy
                .rolling_update
                .as_ref()
                .and_then(|r| r.max_unavailable.as_ref())
                .map(|v| util::scaled_value(v, desired, true))
                .unwrap_or(1)
                .max(1);
            let unavailable = desired - ready;
            let budget = (max_unavailable - unavailable).max(0) as usize;
            // not-ready old pods go first, they cost no availability
            old_pods.sort_by_key(|p| util::pod_is_ready(p));
            let mut spent = 0;
            for p in old_pods {
                let free = !util::pod_is_ready(&p);
                if !free && spent >= budget {
                    break;
                }
                if !free {
                    spent += 1;
                }
                let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
            }
        }
        let scheduled = eligible.iter().filter(|n| by_node.contains_key(*n)).count() as i32;
        let st = DaemonSetStatus {
            desired_number_scheduled: desired,
            current_number_scheduled: scheduled,
            number_misscheduled: misscheduled,
            number_ready: ready,
            number_available: Some(ready),
            number_unavailable: Some((desired - ready).max(0)),
            updated_number_scheduled: Some(updated),
            observed_generation: ds.metadata.generation,
            collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
            conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
        };
        if ds.status.as_ref() != Some(&st) {
            let dapi: Api<DaemonSet> = Api::namespaced(self.client.clone(), ns);
            dapi.patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": st})),
            )
            .await?;
        }
        Ok(None)
    }
}
