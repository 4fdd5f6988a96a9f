//! The StatefulSet controller: pods `<set>-<ordinal>` with hostname and subdomain, OrderedReady
//! (ordinal n only once 0..n-1 are Running and Ready; scale-down from the highest ordinal, one
//! at a time) and Parallel policies, RollingUpdate in reverse ordinal order down to the
//! partition, OnDelete, ControllerRevisions named `<set>-<hash>`, and PVCs
//! `<template>-<set>-<ordinal>` created from volumeClaimTemplates that outlive their pods.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, ResourceExt};

use crate::events::{EventType, Recorder};
use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::util::{self, controller_ref, key_of, split_key};
use crate::Result;

pub const REVISION_LABEL: &str = "controller-revision-hash";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The StatefulSet controller.
pub struct StatefulSetController {
    client: Client,
    sets: Arc<Informer<StatefulSet>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue>,
    recorder: Recorder,
}

/// The ordinal of `pod` in `set` (None when the name does not fit).
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

fn running_and_ready(p: &Pod) -> bool {
    util::pod_phase(p) == "Running" && util::pod_is_ready(p)
}

/// The revision name of the set's current template.
pub fn revision_name(set: &StatefulSet) -> String {
    let tmpl = set
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let collision = set.status.as_ref().and_then(|s| s.collision_count);
    format!(
        "{}-{}",
        set.name_any(),
        util::compute_hash(&tmpl, collision)
    )
}

impl StatefulSetController {
    /// Wires the controller to the shared informers.
    pub fn new(
        client: Client,
        sets: Arc<Informer<StatefulSet>>,
        pods: Arc<Informer<Pod>>,
    ) -> Arc<Self> {
        let queue = WorkQueue::new("statefulset");
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
            pods.on_change(move |old, new| {
                for p in [old, new].into_iter().flatten() {
                    if let Some(r) = controller_ref(&p.metadata) {
                        if r.kind == "StatefulSet" {
                            q.add(format!("{}/{}", p.namespace().unwrap_or_default(), r.name));
                        }
                    }
                }
            });
        }
        Arc::new(StatefulSetController {
            recorder: Recorder::new(client.clone(), "statefulset-controller"),
            client,
            sets,
            pods,
            queue,
        })
    }

    /// Runs `workers` workers.
    pub async fn run(self: Arc<Self>, workers: usize) {
        self.sets.wait_synced().await;
        self.pods.wait_synced().await;
        let c = self.clone();
        crate::queue::run_workers(self.queue.clone(), workers, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    fn new_pod(&self, set: &StatefulSet, ord: i32, rev: &str) -> Pod {
        let spec = set.spec.clone().unwrap_or_default();
        let name = format!("{}-{ord}", set.name_any());
        let tm = spec.template.metadata.clone().unwrap_or_default();
        let mut labels = tm.labels.clone().unwrap_or_default();
        labels.insert(POD_NAME_LABEL.into(), name.clone());
        labels.insert(POD_INDEX_LABEL.into(), ord.to_string());
        labels.insert(REVISION_LABEL.into(), rev.to_string());
        let mut pspec = spec.template.spec.clone().unwrap_or_default();
        pspec.hostname = Some(name.clone());
        pspec.subdomain = spec.service_name.clone().filter(|s| !s.is_empty());
        let mut volumes: Vec<Volume> = pspec.volumes.take().unwrap_or_default();
        for t in spec.volume_claim_templates.iter().flatten() {
            let tname = t.name_any();
            volumes.retain(|v| v.name != tname);
            volumes.push(Volume {
                name: tname.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: format!("{tname}-{name}"),
                    read_only: None,
                }),
                ..Default::default()
            });
        }
        pspec.volumes = (!volumes.is_empty()).then_some(volumes);
        Pod {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: set.namespace(),
                labels: Some(labels),
                annotations: tm.annotations,
                owner_references: Some(vec![util::new_controller_ref(set)]),
                ..Default::default()
            },
            spec: Some(pspec),
            status: None,
        }
    }

    async fn ensure_claims(&self, set: &StatefulSet, ord: i32) -> Result<()> {
        let ns = set.namespace().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        let sel = set
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone())
            .unwrap_or_default();
        for t in set
            .spec
            .as_ref()
            .and_then(|s| s.volume_claim_templates.clone())
            .unwrap_or_default()
        {
            let name = format!("{}-{}-{ord}", t.name_any(), set.name_any());
            if api.get_opt(&name).await?.is_some() {
                continue;
            }
            let mut labels = t.labels().clone();
            labels.extend(sel.clone());
            let pvc = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            };
            match api.create(&PostParams::default(), &pvc).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn ensure_revision(&self, set: &StatefulSet, rev: &str) {
        let ns = set.namespace().unwrap_or_default();
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &ns);
        if let Ok(Some(_)) = api.get_opt(rev).await {
            return;
        }
        let number = api
            .list(&Default::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter(|r| {
                        controller_ref(&r.metadata)
                            .is_some_and(|o| Some(&o.uid) == set.uid().as_ref())
                    })
                    .map(|r| r.revision)
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
            + 1;
        let tmpl = set
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let cr = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(rev.to_string()),
                namespace: Some(ns),
                labels: set
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.match_labels.clone()),
                owner_references: Some(vec![util::new_controller_ref(set)]),
                ..Default::default()
            },
            data: Some(RawExtension(
                serde_json::json!({"spec": {"template": tmpl, "$patch": "replace"}}),
            )),
            revision: number,
        };
        if let Err(e) = api.create(&PostParams::default(), &cr).await {
            tracing::debug!(error = %e, "controller revision not created");
        }
    }

    /// One sync of the StatefulSet `key`.
    pub async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (ns, name) = split_key(key);
        let ns = ns.unwrap_or("default");
        let Some(set) = self
            .sets
            .store()
            .find(|s| s.name_any() == name && s.namespace().as_deref() == Some(ns))
        else {
            return Ok(None);
        };
        let set: StatefulSet = (*set).clone();
        if set.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let spec = set.spec.clone().unwrap_or_default();
        let uid = set.uid().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1);
        let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
        let rev = revision_name(&set);
        self.ensure_revision(&set, &rev).await;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let mut pods: BTreeMap<i32, Arc<Pod>> = BTreeMap::new();
        for p in self.pods.store().state() {
            if p.namespace().as_deref() != Some(ns) {
                continue;
            }
            let owned = controller_ref(&p.metadata).is_some_and(|r| r.uid == uid);
            if !owned {
                continue;
            }
            if let Some(o) = ordinal_of(name, &p.name_any()) {
                pods.insert(o, p);
            }
        }
        let mut blocked = false;
        // create or replace missing and failed pods in ordinal order
        for ord in 0..replicas {
            match pods.get(&ord) {
                None => {
                    self.ensure_claims(&set, ord).await?;
                    let pod = self.new_pod(&set, ord, &rev);
                    match api.create(&PostParams::default(), &pod).await {
                        Ok(_) => self.recorder.event(
                            &set,
                            EventType::Normal,
                            "SuccessfulCreate",
                            &format!(
                                "create Pod {} in StatefulSet {name} successful",
                                pod.name_any()
                            ),
                        ),
                        Err(kube::Error::Api(s)) if s.code == 409 => {}
                        Err(e) => return Err(e.into()),
                    }
                    if !parallel {
                        blocked = true;
                        break;
                    }
                }
                Some(p) => {
                    if util::pod_phase(p) == "Failed" && p.metadata.deletion_timestamp.is_none() {
                        let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
                        blocked = true;
                        if !parallel {
                            break;
                        }
                    }
                    if !parallel
                        && (!running_and_ready(p) || p.metadata.deletion_timestamp.is_some())
                    {
                        blocked = true;
                        break;
                    }
                }
            }
        }
        // scale down from the highest ordinal
        if !blocked {
            let condemned: Vec<&Arc<Pod>> = pods.range(replicas..).rev().map(|(_, p)| p).collect();
            for p in condemned {
                if p.metadata.deletion_timestamp.is_some() {
                    if !parallel {
                        blocked = true;
                        break;
                    }
                    continue;
                }
                match api.delete(&p.name_any(), &DeleteParams::default()).await {
                    Ok(_) => self.recorder.event(
                        &set,
                        EventType::Normal,
                        "SuccessfulDelete",
                        &format!(
                            "delete Pod {} in StatefulSet {name} successful",
                            p.name_any()
                        ),
                    ),
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
                blocked = true;
                if !parallel {
                    break;
                }
            }
        }
        // rolling update: highest ordinal first, down to the partition, one at a time
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        let on_delete = strategy.type_.as_deref() == Some("OnDelete");
        if !blocked && !on_delete {
            let partition = strategy
                .rolling_update
                .as_ref()
                .and_then(|r| r.partition)
                .unwrap_or(0);
            for ord in (partition.max(0)..replicas).rev() {
                let Some(p) = pods.get(&ord) else { continue };
                if p.labels().get(REVISION_LABEL) == Some(&rev) {
                    if !running_and_ready(p) {
                        break;
                    }
                    continue;
                }
                if p.metadata.deletion_timestamp.is_none() {
                    api.delete(&p.name_any(), &DeleteParams::default()).await?;
                }
                break;
            }
        }
        // status
        let active: Vec<&Arc<Pod>> = pods
            .values()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let updated = active
            .iter()
            .filter(|p| p.labels().get(REVISION_LABEL) == Some(&rev))
            .count() as i32;
        let ready = active.iter().filter(|p| running_and_ready(p)).count() as i32;
        let old = set.status.clone().unwrap_or_default();
        let current_revision = if updated == replicas && active.len() as i32 == replicas {
            rev.clone()
        } else {
            old.current_revision.clone().unwrap_or_else(|| rev.clone())
        };
        let current = active
            .iter()
            .filter(|p| p.labels().get(REVISION_LABEL) == Some(&current_revision))
            .count() as i32;
        let st = StatefulSetStatus {
            replicas: active.len() as i32,
            ready_replicas: Some(ready),
            available_replicas: Some(ready),
            current_replicas: Some(current),
            updated_replicas: Some(updated),
            current_revision: Some(current_revision),
            update_revision: Some(rev),
            observed_generation: set.metadata.generation,
            collision_count: old.collision_count,
            conditions: old.conditions.clone(),
        };
        if set.status.as_ref() != Some(&st) {
            let sapi: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
            let patch = serde_json::json!({"status": st});
            sapi.patch_status(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await?;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_parse_only_own_pods() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "webby-1"), None);
    }
}
