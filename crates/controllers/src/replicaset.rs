//! The ReplicaSet controller: claims pods (adoption and release through controller owner
//! references), creates and deletes pods towards spec.replicas with expectations so a lagging
//! cache never over-creates, ranks pods for deletion like upstream, and writes status. The same
//! controller runs over ReplicationControllers (the replication manager, [`Replicated`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::events::{EventType, Recorder};
use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::replication::Replicated;
use crate::util::{self, controller_ref, key_of, split_key};
use crate::Result;

/// How many pods one sync creates or deletes at most (upstream's burstReplicas).
pub const BURST_REPLICAS: usize = 500;
const EXPECTATIONS_TTL: Duration = Duration::from_secs(300);

/// Pending creations and deletions per controller key (upstream's ControllerExpectations).
#[derive(Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Expect>>,
}

struct Expect {
    adds: i64,
    dels: HashSet<String>,
    at: Instant,
}

impl Expectations {
    /// Whether the controller may act on its cache (nothing pending, or the record expired).
    pub fn satisfied(&self, key: &str) -> bool {
        match self.inner.lock().unwrap().get(key) {
            None => true,
            Some(e) => (e.adds <= 0 && e.dels.is_empty()) || e.at.elapsed() > EXPECTATIONS_TTL,
        }
    }
    /// Expects `adds` creations and the deletion of `dels` (pod UIDs).
    pub fn expect(&self, key: &str, adds: i64, dels: HashSet<String>) {
        self.inner.lock().unwrap().insert(
            key.to_string(),
            Expect {
                adds,
                dels,
                at: Instant::now(),
            },
        );
    }
    /// One creation observed (or failed).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.inner.lock().unwrap().get_mut(key) {
            e.adds -= 1;
        }
    }
    /// A deletion of `uid` observed (or failed).
    pub fn deletion_observed(&self, key: &str, uid: &str) {
        if let Some(e) = self.inner.lock().unwrap().get_mut(key) {
            e.dels.remove(uid);
        }
    }
    /// UIDs of pods `key` has deleted whose deletion its cache has not shown yet: they must not
    /// count in a status computed from that cache.
    pub fn pending_deletions(&self, key: &str) -> HashSet<String> {
        match self.inner.lock().unwrap().get(key) {
            Some(e) if e.at.elapsed() <= EXPECTATIONS_TTL => e.dels.clone(),
            _ => HashSet::new(),
        }
    }
    /// Drops the record of `key`.
    pub fn delete(&self, key: &str) {
        self.inner.lock().unwrap().remove(key);
    }
}

/// The ReplicaSet controller (and, over ReplicationControllers, the replication manager).
pub struct ReplicaSetController {
    client: Client,
    rs: Replicated,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue>,
    expectations: Arc<Expectations>,
    recorder: Recorder,
}

/// The `ns/name` key of the owner of `pod` when it is a `kind`.
fn owner_key_for_pod(kind: &str, pod: &Pod) -> Option<String> {
    let r = controller_ref(&pod.metadata)?;
    (r.kind == kind).then(|| format!("{}/{}", pod.namespace().unwrap_or_default(), r.name))
}

impl ReplicaSetController {
    /// Wires the controller to the shared informers.
    pub fn new(
        client: Client,
        rs: Arc<Informer<ReplicaSet>>,
        pods: Arc<Informer<Pod>>,
    ) -> Arc<Self> {
        Self::over(client, Replicated::ReplicaSets(rs), pods)
    }

    /// The controller over `rs` (ReplicaSets or ReplicationControllers).
    pub fn over(client: Client, rs: Replicated, pods: Arc<Informer<Pod>>) -> Arc<Self> {
        let queue = WorkQueue::new(rs.controller_name());
        let expectations = Arc::new(Expectations::default());
        let c = Arc::new(ReplicaSetController {
            recorder: Recorder::new(client.clone(), rs.component()),
            client,
            rs: rs.clone(),
            pods: pods.clone(),
            queue: queue.clone(),
            expectations: expectations.clone(),
        });
        {
            let q = queue.clone();
            rs.on_change(move |key| q.add(key));
        }
        {
            let q = queue.clone();
            let kind = rs.kind();
            let rs_key_for_pod = move |p: &Pod| owner_key_for_pod(kind, p);
            let rs_store = rs.clone();
            let exp = expectations;
            pods.on_change(move |old, new| match (old, new) {
                (None, Some(p)) => {
                    if let Some(k) = rs_key_for_pod(p) {
                        if p.metadata.deletion_timestamp.is_some() {
                            exp.deletion_observed(&k, &p.uid().unwrap_or_default());
                        } else {
                            exp.creation_observed(&k);
                        }
                        q.add(k);
                    } else {
                        enqueue_matching(&rs_store, p, &q);
                    }
                }
                (Some(o), Some(p)) => {
                    if p.metadata.deletion_timestamp.is_some()
                        && o.metadata.deletion_timestamp.is_none()
                    {
                        if let Some(k) = rs_key_for_pod(p) {
                            exp.deletion_observed(&k, &p.uid().unwrap_or_default());
                        }
                    }
                    let (ko, kn) = (rs_key_for_pod(o), rs_key_for_pod(p));
                    if ko != kn {
                        if let Some(k) = ko {
                            q.add(k);
                        }
                    }
                    if let Some(k) = kn {
                        q.add(k);
                    }
                    if o.labels() != p.labels() || rs_key_for_pod(p).is_none() {
                        enqueue_matching(&rs_store, p, &q);
                    }
                }
                (Some(o), None) => {
                    if let Some(k) = rs_key_for_pod(o) {
                        exp.deletion_observed(&k, &o.uid().unwrap_or_default());
                        q.add(k);
                    }
                }
                (None, None) => {}
            });
        }
        c
    }

    /// Runs `workers` workers until the task is dropped.
    pub async fn run(self: Arc<Self>, workers: usize) {
        self.rs.wait_synced().await;
        self.pods.wait_synced().await;
        tracing::debug!("replicaset controller synced");
        let c = self.clone();
        crate::queue::run_workers(self.queue.clone(), workers, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    /// One sync of the ReplicaSet `key`; Some(d) asks to be synced again after d.
    pub async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (ns, name) = split_key(key);
        let ns = ns.unwrap_or("default");
        let Some(rs) = self.rs.find(ns, name) else {
            self.expectations.delete(key);
            return Ok(None);
        };
        let needs_sync = self.expectations.satisfied(key);
        let selector = rs
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        let all_pods: Vec<Arc<Pod>> = self
            .pods
            .store()
            .state()
            .into_iter()
            .filter(|p| p.namespace().as_deref() == Some(ns))
            .collect();
        let pod_api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let rs_uid = rs.uid().unwrap_or_default();
        let rs_deleting = rs.metadata.deletion_timestamp.is_some();
        // claim
        let mut owned: Vec<Arc<Pod>> = Vec::new();
        for p in &all_pods {
            if !util::pod_is_active(p) {
                continue;
            }
            let matches = !util::selector_is_empty(&selector)
                && util::selector_matches(&selector, p.labels());
            match controller_ref(&p.metadata) {
                Some(r) if r.uid == rs_uid => {
                    if matches {
                        owned.push(p.clone());
                    } else if !rs_deleting {
                        self.release(&pod_api, p, &rs_uid).await?;
                    }
                }
                Some(_) => {}
                None => {
                    if matches && !rs_deleting {
                        if let Some(p2) = self.adopt(&pod_api, &rs, p).await? {
                            owned.push(Arc::new(p2));
                        }
                    }
                }
            }
        }
        tracing::debug!(rs = %key, needs_sync, owned = owned.len(), pods = all_pods.len(), "sync replicaset");
        let mut manage_err = None;
        if needs_sync && !rs_deleting {
            match self.manage(&rs, key, &owned, &all_pods, &pod_api).await {
                // pods deleted now no longer count in the status written below
                Ok(deleted) => owned.retain(|p| !deleted.contains(&p.uid().unwrap_or_default())),
                Err(e) => manage_err = Some(e),
            }
        } else {
            // A sync before the cache has caught up with earlier deletions: the pods still look
            // alive there but are on their way out, so they are not available replicas.
            let pending = self.expectations.pending_deletions(key);
            owned.retain(|p| !pending.contains(&p.uid().unwrap_or_default()));
        }
        let requeue = self.update_status(&rs, &owned, manage_err.as_ref()).await?;
        if let Some(e) = manage_err {
            return Err(e);
        }
        Ok(requeue)
    }

    async fn release(&self, api: &Api<Pod>, p: &Pod, owner_uid: &str) -> Result<()> {
        let refs: Vec<_> = p
            .owner_references()
            .iter()
            .filter(|r| r.uid != owner_uid)
            .cloned()
            .collect();
        let patch =
            json!({"metadata": {"ownerReferences": refs, "resourceVersion": p.resource_version()}});
        match api
            .patch(
                &p.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn adopt(&self, api: &Api<Pod>, rs: &ReplicaSet, p: &Pod) -> Result<Option<Pod>> {
        // upstream's canAdopt: recheck the owner against the API (not the cache).
        let ns = rs.namespace().unwrap_or_default();
        match self.rs.get_fresh(&self.client, &ns, &rs.name_any()).await? {
            Some(fresh)
                if fresh.uid() == rs.uid() && fresh.metadata.deletion_timestamp.is_none() => {}
            _ => return Ok(None),
        }
        let mut refs = p.owner_references().to_vec();
        refs.push(self.rs.controller_ref(rs));
        let patch =
            json!({"metadata": {"ownerReferences": refs, "resourceVersion": p.resource_version()}});
        match api
            .patch(
                &p.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(p) => Ok(Some(p)),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn manage(
        &self,
        rs: &ReplicaSet,
        key: &str,
        owned: &[Arc<Pod>],
        all_pods: &[Arc<Pod>],
        api: &Api<Pod>,
    ) -> Result<HashSet<String>> {
        let mut deleted = HashSet::new();
        let want = rs
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1)
            .max(0) as usize;
        let have = owned.len();
        if have < want {
            let n = (want - have).min(BURST_REPLICAS);
            self.expectations.expect(key, n as i64, HashSet::new());
            let pod = pod_from_template(rs, self.rs.controller_ref(rs));
            let pp = PostParams::default();
            // slow start: batches of 1, 2, 4, ... stop at the first failing batch
            let mut remaining = n;
            let mut batch = 1usize;
            let mut created = 0usize;
            while remaining > 0 {
                let size = batch.min(remaining);
                let futs = (0..size).map(|_| api.create(&pp, &pod));
                let res = futures::future::join_all(futs).await;
                let mut err = None;
                for r in res {
                    match r {
                        Ok(p) => {
                            created += 1;
                            self.recorder.event_ref(
                                self.rs.object_reference(rs),
                                EventType::Normal,
                                "SuccessfulCreate",
                                &format!("Created pod: {}", p.name_any()),
                            );
                        }
                        Err(e) => {
                            self.expectations.creation_observed(key);
                            err = Some(e);
                        }
                    }
                }
                remaining -= size;
                if let Some(e) = err {
                    for _ in 0..remaining {
                        self.expectations.creation_observed(key);
                    }
                    self.recorder.event_ref(
                        self.rs.object_reference(rs),
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {e}"),
                    );
                    return Err(e.into());
                }
                batch *= 2;
            }
            tracing::debug!(rs = %key, created, "created pods");
        } else if have > want {
            let n = (have - want).min(BURST_REPLICAS);
            let owned_refs: Vec<&Pod> = owned.iter().map(|p| p.as_ref()).collect();
            let rs_labels = rs.labels();
            // related pods: the owner's (deployment's) other pods, approximated by pods
            // sharing this set's owner, else this set's own pods
            let owner_uid = controller_ref(&rs.metadata).map(|r| r.uid.clone());
            let related: Vec<&Pod> = all_pods
                .iter()
                .map(|p| p.as_ref())
                .filter(|p| {
                    owned_refs.iter().any(|o| o.uid() == p.uid())
                        || (owner_uid.is_some()
                            && !rs_labels.is_empty()
                            && p.labels().get("pod-template-hash").is_some()
                            && util::selector_matches(
                                &rs.spec
                                    .as_ref()
                                    .map(|s| s.selector.clone())
                                    .unwrap_or_default(),
                                p.labels(),
                            ))
                })
                .collect();
            let victims = util::pods_to_delete(&owned_refs, &related, n);
            let uids: HashSet<String> = victims.iter().filter_map(|p| p.uid()).collect();
            self.expectations.expect(key, 0, uids);
            let futs = victims.iter().map(|p| async move {
                (
                    p.uid().unwrap_or_default(),
                    p.name_any(),
                    api.delete(&p.name_any(), &DeleteParams::default()).await,
                )
            });
            let mut err = None;
            for (uid, name, r) in futures::future::join_all(futs).await {
                match r {
                    Ok(_) => {
                        deleted.insert(uid);
                        self.recorder.event_ref(
                            self.rs.object_reference(rs),
                            EventType::Normal,
                            "SuccessfulDelete",
                            &format!("Deleted pod: {name}"),
                        )
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        self.expectations.deletion_observed(key, &uid)
                    }
                    Err(e) => {
                        self.expectations.deletion_observed(key, &uid);
                        err = Some(e);
                    }
                }
            }
            if let Some(e) = err {
                return Err(e.into());
            }
        }
        Ok(deleted)
    }

    async fn update_status(
        &self,
        rs: &ReplicaSet,
        owned: &[Arc<Pod>],
        manage_err: Option<&crate::Error>,
    ) -> Result<Option<Duration>> {
        let min_ready = rs
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        let now = jiff::Timestamp::now();
        let st = compute_status(rs, owned, min_ready, now, manage_err.map(|e| e.to_string()));
        let want = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        if rs.status.as_ref() != Some(&st) && !self.rs.write_status(&self.client, rs, &st).await? {
            return Ok(None);
        }
        // requeue to flip pods to available once minReadySeconds passed
        if min_ready > 0 && st.ready_replicas == Some(want) && st.available_replicas != Some(want) {
            return Ok(Some(Duration::from_secs(min_ready as u64)));
        }
        if min_ready > 0 && st.ready_replicas.unwrap_or(0) > st.available_replicas.unwrap_or(0) {
            return Ok(Some(Duration::from_secs(1)));
        }
        Ok(None)
    }
}

/// The status a ReplicaSet should have given its pods (upstream's calculateStatus).
pub fn compute_status(
    rs: &ReplicaSet,
    owned: &[Arc<Pod>],
    min_ready: i32,
    now: jiff::Timestamp,
    failure: Option<String>,
) -> ReplicaSetStatus {
    let tmpl_labels = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully = owned
        .iter()
        .filter(|p| {
            tmpl_labels
                .iter()
                .all(|(k, v)| p.labels().get(k) == Some(v))
        })
        .count() as i32;
    let ready = owned.iter().filter(|p| util::pod_is_ready(p)).count() as i32;
    let avail = owned
        .iter()
        .filter(|p| util::pod_is_available(p, min_ready, now))
        .count() as i32;
    let old = rs.status.clone().unwrap_or_default();
    let mut conditions: Vec<ReplicaSetCondition> = old
        .conditions
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "ReplicaFailure")
        .collect();
    if let Some(msg) = failure {
        let prev = old
            .conditions
            .as_ref()
            .and_then(|cs| cs.iter().find(|c| c.type_ == "ReplicaFailure"));
        conditions.push(ReplicaSetCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some("FailedCreate".into()),
            message: Some(msg),
            last_transition_time: prev
                .and_then(|c| c.last_transition_time.clone())
                .or(Some(Time(now))),
        });
    }
    ReplicaSetStatus {
        replicas: owned.len() as i32,
        fully_labeled_replicas: Some(fully),
        ready_replicas: Some(ready),
        available_replicas: Some(avail),
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
        terminating_replicas: old.terminating_replicas,
    }
}

/// A new pod for `rs`: its template, generateName `<rs>-`, the controller reference `owner`.
pub fn pod_from_template(rs: &ReplicaSet, owner: OwnerReference) -> Pod {
    let tmpl = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let tm = tmpl.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", rs.name_any())),
            namespace: rs.namespace(),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: tmpl.spec,
        status: None,
    }
}

fn enqueue_matching(store: &Replicated, p: &Pod, q: &WorkQueue) {
    if p.metadata.deletion_timestamp.is_some() {
        return;
    }
    let ns = p.namespace();
    for rs in store.state() {
        if rs.namespace() != ns {
            continue;
        }
        if let Some(sel) = rs.spec.as_ref().map(|s| &s.selector) {
            if !util::selector_is_empty(sel) && util::selector_matches(sel, p.labels()) {
                q.add(key_of(&rs));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_deletions_shrink_as_deletions_are_observed() {
        let exp = Expectations::default();
        assert!(exp.pending_deletions("ns/rs").is_empty());
        exp.expect("ns/rs", 0, ["a".to_string(), "b".to_string()].into());
        assert!(!exp.satisfied("ns/rs"));
        assert_eq!(exp.pending_deletions("ns/rs").len(), 2);
        exp.deletion_observed("ns/rs", "a");
        assert_eq!(
            exp.pending_deletions("ns/rs"),
            HashSet::from(["b".to_string()])
        );
        exp.deletion_observed("ns/rs", "b");
        assert!(exp.pending_deletions("ns/rs").is_empty());
        assert!(exp.satisfied("ns/rs"));
    }
}
