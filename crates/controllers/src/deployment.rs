//! The Deployment controller: ReplicaSets named `<deployment>-<pod-template-hash>`, RollingUpdate
//! (maxSurge/maxUnavailable with upstream's rounding), Recreate, proportional scaling, revision
//! annotations, revisionHistoryLimit clean-up, pause, and Progressing/Available conditions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::events::{EventType, Recorder};
use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::util::{self, controller_ref, key_of, split_key};
use crate::{Error, Result};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const HASH_LABEL: &str = "pod-template-hash";

/// The Deployment controller.
pub struct DeploymentController {
    client: Client,
    deployments: Arc<Informer<Deployment>>,
    rs: Arc<Informer<ReplicaSet>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue>,
    recorder: Recorder,
}

fn deploy_key_for(meta: &ObjectMeta) -> Option<String> {
    let r = controller_ref(meta)?;
    (r.kind == "Deployment")
        .then(|| format!("{}/{}", meta.namespace.clone().unwrap_or_default(), r.name))
}

impl DeploymentController {
    /// Wires the controller to the shared informers.
    pub fn new(
        client: Client,
        deployments: Arc<Informer<Deployment>>,
        rs: Arc<Informer<ReplicaSet>>,
        pods: Arc<Informer<Pod>>,
    ) -> Arc<Self> {
        let queue = WorkQueue::new("deployment");
        {
            let q = queue.clone();
            deployments.on_change(move |old, new| {
                if let Some(o) = new.or(old) {
                    q.add(key_of(o));
                }
            });
        }
        {
            let q = queue.clone();
            let ds = deployments.store().clone();
            rs.on_change(move |old, new| {
                for o in [old, new].into_iter().flatten() {
                    if let Some(k) = deploy_key_for(&o.metadata) {
                        q.add(k);
                    } else if new.is_some() {
                        // an orphan set: the deployments selecting it may adopt it
                        for d in ds.state() {
                            if d.namespace() == o.namespace()
                                && d.spec.as_ref().is_some_and(|s| {
                                    !util::selector_is_empty(&s.selector)
                                        && util::selector_matches(&s.selector, o.labels())
                                })
                            {
                                q.add(key_of(d.as_ref()));
                            }
                        }
                    }
                }
            });
        }
        {
            // Recreate waits for old pods to be gone
            let q = queue.clone();
            let rss = rs.store().clone();
            pods.on_change(move |old, new| {
                if new.is_some() {
                    return;
                }
                let Some(p) = old else { return };
                let Some(r) = controller_ref(&p.metadata) else {
                    return;
                };
                if r.kind != "ReplicaSet" {
                    return;
                }
                if let Some(set) = rss.find(|s| s.uid().as_deref() == Some(r.uid.as_str())) {
                    if let Some(k) = deploy_key_for(&set.metadata) {
                        q.add(k);
                    }
                }
            });
        }
        Arc::new(DeploymentController {
            recorder: Recorder::new(client.clone(), "deployment-controller"),
            client,
            deployments,
            rs,
            pods,
            queue,
        })
    }

    /// Runs `workers` workers until the task is dropped.
    pub async fn run(self: Arc<Self>, workers: usize) {
        self.deployments.wait_synced().await;
        self.rs.wait_synced().await;
        self.pods.wait_synced().await;
        let c = self.clone();
        crate::queue::run_workers(self.queue.clone(), workers, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    fn rs_api(&self, ns: &str) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// One sync of the Deployment `key`.
    pub async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (ns, name) = split_key(key);
        let ns = ns.unwrap_or("default");
        let Some(d) = self
            .deployments
            .store()
            .find(|d| d.name_any() == name && d.namespace().as_deref() == Some(ns))
        else {
            return Ok(None);
        };
        let d: Deployment = (*d).clone();
        let spec = d.spec.clone().unwrap_or_default();
        if util::selector_is_empty(&spec.selector) {
            self.recorder.event(
                &d,
                EventType::Warning,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            );
            return Ok(None);
        }
        let rs_list = self.claim_replicasets(&d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            self.sync_status_only(&d, &rs_list).await?;
            return Ok(None);
        }
        let mut d = d;
        self.check_paused_conditions(&mut d).await?;
        if spec.paused == Some(true) {
            self.sync_scale(&d, &rs_list).await?;
            return Ok(None);
        }
        if self.is_scaling_event(&d, &rs_list) {
            self.sync_scale(&d, &rs_list).await?;
            return Ok(None);
        }
        let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
        if recreate {
            self.rollout_recreate(&d, rs_list).await
        } else {
            self.rollout_rolling(&d, rs_list).await
        }
    }

    /// Sets owned (claimed) ReplicaSets: adopts matching orphans, releases non-matching ones.
    async fn claim_replicasets(&self, d: &Deployment) -> Result<Vec<ReplicaSet>> {
        let ns = d.namespace().unwrap_or_default();
        let uid = d.uid().unwrap_or_default();
        let sel = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        let api = self.rs_api(&ns);
        let mut out = Vec::new();
        for rs in self.rs.store().state() {
            if rs.namespace().as_deref() != Some(ns.as_str()) {
                continue;
            }
            let matches = util::selector_matches(&sel, rs.labels());
            match controller_ref(&rs.metadata) {
                Some(r) if r.uid == uid => {
                    if matches || d.metadata.deletion_timestamp.is_some() {
                        out.push((*rs).clone());
                    } else {
                        let refs: Vec<_> = rs
                            .owner_references()
                            .iter()
                            .filter(|r| r.uid != uid)
                            .cloned()
                            .collect();
                        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": rs.resource_version()}});
                        ignore_404(
                            api.patch(
                                &rs.name_any(),
                                &PatchParams::default(),
                                &Patch::Merge(&patch),
                            )
                            .await,
                        )?;
                    }
                }
                Some(_) => {}
                None => {
                    if matches
                        && d.metadata.deletion_timestamp.is_none()
                        && rs.metadata.deletion_timestamp.is_none()
                    {
                        let mut refs = rs.owner_references().to_vec();
                        refs.push(util::new_controller_ref(d));
                        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": rs.resource_version()}});
                        if let Some(new) = ignore_404(
                            api.patch(
                                &rs.name_any(),
                                &PatchParams::default(),
                                &Patch::Merge(&patch),
                            )
                            .await,
                        )? {
                            out.push(new);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// New RS (template equal ignoring the hash label) and the old ones.
    fn find_new_and_old(
        d: &Deployment,
        rs_list: &[ReplicaSet],
    ) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
        let tmpl = d
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let mut sorted: Vec<&ReplicaSet> = rs_list.iter().collect();
        sorted.sort_by_key(|r| {
            (
                r.metadata.creation_timestamp.as_ref().map(|t| t.0),
                r.name_any(),
            )
        });
        let new = sorted
            .iter()
            .find(|r| {
                r.spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| templates_equal_ignoring_hash(t, &tmpl))
            })
            .map(|r| (*r).clone());
        let old = rs_list
            .iter()
            .filter(|r| Some(r.uid()) != new.as_ref().map(|n| n.uid()))
            .cloned()
            .collect();
        (new, old)
    }

    /// Finds or creates the new RS and syncs revision annotations (upstream's
    /// getAllReplicaSetsAndSyncRevision).
    async fn get_all_and_sync_revision(
        &self,
        d: &Deployment,
        rs_list: &[ReplicaSet],
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let (new, old) = Self::find_new_and_old(d, rs_list);
        let max_old = old.iter().map(revision_of).max().unwrap_or(0);
        let new_revision = (max_old + 1).to_string();
        let ns = d.namespace().unwrap_or_default();
        let api = self.rs_api(&ns);
        let spec = d.spec.clone().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1);
        let surge = max_surge(d);
        let new = match new {
            Some(rs) => {
                let mut ann = rs.annotations().clone();
                let mut changed = false;
                if revision_of(&rs) < max_old + 1 {
                    ann.insert(REVISION.into(), new_revision.clone());
                    changed = true;
                }
                changed |= set_replicas_annotations(&mut ann, replicas, replicas + surge);
                changed |= copy_deployment_annotations(d, &mut ann);
                let min_ready = spec.min_ready_seconds;
                let rs_min_ready = rs.spec.as_ref().and_then(|s| s.min_ready_seconds);
                if changed || rs_min_ready != min_ready {
                    let patch = json!({"metadata": {"annotations": ann}, "spec": {"minReadySeconds": min_ready.unwrap_or(0)}});
                    let rs = api
                        .patch(
                            &rs.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(&patch),
                        )
                        .await?;
                    Some(rs)
                } else {
                    Some(rs)
                }
            }
            None if create => Some(self.create_new_rs(d, &old, &new_revision).await?),
            None => None,
        };
        // the deployment carries the revision of its new set
        if let Some(n) = &new {
            let rev = revision_of(n).to_string();
            if d.annotations().get(REVISION) != Some(&rev) {
                let dapi: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
                let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
                dapi.patch(
                    &d.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            }
        }
        Ok((new, old))
    }

    async fn create_new_rs(
        &self,
        d: &Deployment,
        old: &[ReplicaSet],
        revision: &str,
    ) -> Result<ReplicaSet> {
        let ns = d.namespace().unwrap_or_default();
        let spec = d.spec.clone().unwrap_or_default();
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = util::compute_hash(&spec.template, collision);
        let mut tmpl = spec.template.clone();
        let mut tm = tmpl.metadata.clone().unwrap_or_default();
        tm.labels
            .get_or_insert_with(BTreeMap::new)
            .insert(HASH_LABEL.into(), hash.clone());
        tmpl.metadata = Some(tm.clone());
        let mut sel = spec.selector.clone();
        sel.match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(HASH_LABEL.into(), hash.clone());
        let replicas = spec.replicas.unwrap_or(1);
        let surge = max_surge(d);
        let mut ann = BTreeMap::new();
        copy_deployment_annotations(d, &mut ann);
        ann.insert(REVISION.into(), revision.into());
        set_replicas_annotations(&mut ann, replicas, replicas + surge);
        let new_replicas = new_rs_new_replicas(d, old, None);
        let name = format!("{}-{}", d.name_any(), hash);
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: tm.labels.clone(),
                annotations: Some(ann),
                owner_references: Some(vec![util::new_controller_ref(d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(new_replicas),
                min_ready_seconds: spec.min_ready_seconds,
                selector: sel,
                template: Some(tmpl),
            }),
            status: None,
        };
        let api = self.rs_api(&ns);
        match api.create(&PostParams::default(), &rs).await {
            Ok(created) => {
                self.recorder.event(
                    d,
                    EventType::Normal,
                    "ScalingReplicaSet",
                    &format!("Scaled up replica set {name} from 0 to {new_replicas}"),
                );
                let mut dd = d.clone();
                let st = dd.status.get_or_insert_with(Default::default);
                set_condition(
                    st,
                    progressing(
                        "True",
                        "NewReplicaSetCreated",
                        &format!("Created new replica set \"{name}\""),
                    ),
                );
                self.update_status(&dd, d).await?;
                Ok(created)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // same name: ours with an equal template is fine; else a hash collision
                let existing = api.get(&name).await?;
                let ours = controller_ref(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == d.uid().as_ref());
                let same = existing
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| templates_equal_ignoring_hash(t, &spec.template));
                if ours && same {
                    return Ok(existing);
                }
                let mut dd = d.clone();
                let st = dd.status.get_or_insert_with(Default::default);
                st.collision_count = Some(collision.unwrap_or(0) + 1);
                self.update_status(&dd, d).await?;
                Err(Error::Retry(format!(
                    "hash collision for replica set {name}"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn scale_rs(&self, d: &Deployment, rs: &ReplicaSet, to: i32) -> Result<ReplicaSet> {
        let from = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let surge = max_surge(d);
        let mut ann = rs.annotations().clone();
        let ann_changed = set_replicas_annotations(&mut ann, replicas, replicas + surge);
        if from == to && !ann_changed {
            return Ok(rs.clone());
        }
        let api = self.rs_api(&rs.namespace().unwrap_or_default());
        let patch = json!({"metadata": {"annotations": ann, "resourceVersion": rs.resource_version()}, "spec": {"replicas": to}});
        let new = api
            .patch(
                &rs.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        if from != to {
            let verb = if to > from { "up" } else { "down" };
            self.recorder.event(
                d,
                EventType::Normal,
                "ScalingReplicaSet",
                &format!(
                    "Scaled {verb} replica set {} from {from} to {to}",
                    rs.name_any()
                ),
            );
        }
        Ok(new)
    }

    async fn rollout_rolling(
        &self,
        d: &Deployment,
        rs_list: Vec<ReplicaSet>,
    ) -> Result<Option<Duration>> {
        let (new, old) = self.get_all_and_sync_revision(d, &rs_list, true).await?;
        let new = new.expect("created");
        let mut all: Vec<ReplicaSet> = old.clone();
        all.push(new.clone());
        // scale up the new set
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let new_count = spec_replicas(&new);
        if new_count != want {
            let target = if new_count > want {
                want
            } else {
                new_rs_new_replicas(d, &all, Some(&new))
            };
            if target != new_count {
                let n = self.scale_rs(d, &new, target).await?;
                let all = replace_in(&all, n.clone());
                return self.sync_rollout_status(d, &all, Some(&n)).await;
            }
        }
        // scale down old sets
        let scaled = self.reconcile_old(d, &all, &old, &new).await?;
        if let Some(all) = scaled {
            return self.sync_rollout_status(d, &all, Some(&new)).await;
        }
        let st = calculate_status(d, &all, Some(&new));
        if deployment_complete(d, &st) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(d, &all, Some(&new)).await
    }

    /// Upstream's reconcileOldReplicaSets; Some(new list) when something was scaled down.
    async fn reconcile_old(
        &self,
        d: &Deployment,
        all: &[ReplicaSet],
        old: &[ReplicaSet],
        new: &ReplicaSet,
    ) -> Result<Option<Vec<ReplicaSet>>> {
        let old_pods: i32 = old.iter().map(spec_replicas).sum();
        if old_pods == 0 {
            return Ok(None);
        }
        let all_pods: i32 = all.iter().map(spec_replicas).sum();
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let min_available = replicas - max_unavailable(d);
        let new_unavailable = spec_replicas(new) - available_of(new);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(None);
        }
        let mut all = all.to_vec();
        let mut olds: Vec<ReplicaSet> = old.to_vec();
        olds.sort_by_key(|r| {
            (
                r.metadata.creation_timestamp.as_ref().map(|t| t.0),
                r.name_any(),
            )
        });
        // 1. clean up unhealthy replicas of old sets
        let mut cleaned = 0;
        for slot in olds.iter_mut() {
            if cleaned >= max_scaled_down {
                break;
            }
            let rs = slot.clone();
            let (sr, av) = (spec_replicas(&rs), available_of(&rs));
            let n = unhealthy_to_clean(sr, av, max_scaled_down - cleaned);
            if n == 0 {
                continue;
            }
            let newrs = self.scale_rs(d, &rs, sr - n).await?;
            cleaned += n;
            all = replace_in(&all, newrs.clone());
            *slot = newrs;
        }
        // 2. scale down old sets while availability stays above minAvailable
        let available: i32 = all.iter().map(available_of).sum();
        let mut scaled = 0;
        if available > min_available {
            let total = available - min_available;
            for rs in &olds {
                if scaled >= total {
                    break;
                }
                let sr = spec_replicas(rs);
                if sr == 0 {
                    continue;
                }
                let n = sr.min(total - scaled);
                let newrs = self.scale_rs(d, rs, sr - n).await?;
                scaled += n;
                all = replace_in(&all, newrs);
            }
        }
        Ok((cleaned + scaled > 0).then_some(all))
    }

    async fn rollout_recreate(
        &self,
        d: &Deployment,
        rs_list: Vec<ReplicaSet>,
    ) -> Result<Option<Duration>> {
        let (new, old) = self.get_all_and_sync_revision(d, &rs_list, false).await?;
        let mut all: Vec<ReplicaSet> = old.clone();
        all.extend(new.clone());
        // scale down all old sets
        let mut scaled = false;
        for rs in old.iter().filter(|r| spec_replicas(r) > 0) {
            let n = self.scale_rs(d, rs, 0).await?;
            all = replace_in(&all, n);
            scaled = true;
        }
        if scaled {
            return self.sync_rollout_status(d, &all, new.as_ref()).await;
        }
        // wait until no old pod is left (terminating ones included)
        let old_uids: Vec<String> = old.iter().filter_map(|r| r.uid()).collect();
        let old_running = self.pods.store().state().iter().any(|p| {
            controller_ref(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid))
                && !matches!(util::pod_phase(p), "Failed" | "Succeeded")
        });
        if old_running
            || old
                .iter()
                .any(|r| r.status.as_ref().is_some_and(|s| s.replicas > 0))
        {
            return self.sync_rollout_status(d, &all, new.as_ref()).await;
        }
        let new = match new {
            Some(n) => n,
            None => {
                let (n, _) = self.get_all_and_sync_revision(d, &rs_list, true).await?;
                let n = n.expect("created");
                all.push(n.clone());
                n
            }
        };
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        if spec_replicas(&new) != want {
            let n = self.scale_rs(d, &new, want).await?;
            all = replace_in(&all, n.clone());
            return self.sync_rollout_status(d, &all, Some(&n)).await;
        }
        let st = calculate_status(d, &all, Some(&new));
        if deployment_complete(d, &st) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(d, &all, Some(&new)).await
    }

    /// Whether some active set's desired-replicas annotation differs from spec.replicas.
    fn is_scaling_event(&self, d: &Deployment, rs_list: &[ReplicaSet]) -> bool {
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        rs_list.iter().filter(|r| spec_replicas(r) > 0).any(|r| {
            r.annotations()
                .get(DESIRED_REPLICAS)
                .and_then(|v| v.parse::<i32>().ok())
                .is_some_and(|v| v != want)
        })
    }

    /// Scaling (and the paused case): upstream's sync + scale with proportional scaling.
    async fn sync_scale(&self, d: &Deployment, rs_list: &[ReplicaSet]) -> Result<()> {
        let (new, old) = self.get_all_and_sync_revision(d, rs_list, false).await?;
        let mut all: Vec<ReplicaSet> = old.clone();
        all.extend(new.clone());
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let active: Vec<&ReplicaSet> = all.iter().filter(|r| spec_replicas(r) > 0).collect();
        let plan: Vec<(ReplicaSet, i32)> = if active.len() <= 1 {
            let target = active.first().map(|r| (*r).clone()).or(new.clone());
            target.map(|r| vec![(r, want)]).unwrap_or_default()
        } else if new.as_ref().is_some_and(|n| spec_replicas(n) == want) {
            old.iter()
                .filter(|r| spec_replicas(r) > 0)
                .map(|r| (r.clone(), 0))
                .collect()
        } else {
            proportional_scale(d, &all)
        };
        for (rs, to) in plan {
            let n = self.scale_rs(d, &rs, to).await?;
            all = replace_in(&all, n);
        }
        if d.spec.as_ref().and_then(|s| s.paused) == Some(true) {
            self.cleanup(d, &old).await?;
        }
        let new = new.and_then(|n| all.iter().find(|r| r.uid() == n.uid()).cloned());
        let st = calculate_status(d, &all, new.as_ref());
        let mut dd = d.clone();
        dd.status = Some(st);
        self.update_status(&dd, d).await
    }

    async fn sync_status_only(&self, d: &Deployment, rs_list: &[ReplicaSet]) -> Result<()> {
        let (new, _) = Self::find_new_and_old(d, rs_list);
        let st = calculate_status(d, rs_list, new.as_ref());
        let mut dd = d.clone();
        dd.status = Some(st);
        self.update_status(&dd, d).await
    }

    async fn check_paused_conditions(&self, d: &mut Deployment) -> Result<()> {
        if !has_progress_deadline(d) {
            return Ok(());
        }
        let paused = d.spec.as_ref().and_then(|s| s.paused) == Some(true);
        let cond = d
            .status
            .as_ref()
            .and_then(|s| get_condition(s, "Progressing"))
            .cloned();
        let cond_paused = cond
            .as_ref()
            .is_some_and(|c| c.reason.as_deref() == Some("DeploymentPaused"));
        let orig = d.clone();
        let st = d.status.get_or_insert_with(Default::default);
        if paused && !cond_paused {
            set_condition(
                st,
                progressing("Unknown", "DeploymentPaused", "Deployment is paused"),
            );
        } else if !paused && cond_paused {
            set_condition(
                st,
                progressing("Unknown", "DeploymentResumed", "Deployment is resumed"),
            );
        } else {
            return Ok(());
        }
        self.update_status(d, &orig).await
    }

    /// Deletes old sets beyond revisionHistoryLimit (oldest revisions first).
    async fn cleanup(&self, d: &Deployment, old: &[ReplicaSet]) -> Result<()> {
        let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut cands: Vec<&ReplicaSet> = old
            .iter()
            .filter(|r| {
                r.metadata.deletion_timestamp.is_none()
                    && spec_replicas(r) == 0
                    && r.status.as_ref().is_none_or(|s| s.replicas == 0)
                    && r.status.as_ref().and_then(|s| s.observed_generation)
                        >= r.metadata.generation
            })
            .collect();
        let excess = cands.len() as i64 - limit.max(0) as i64;
        if excess <= 0 {
            return Ok(());
        }
        cands.sort_by_key(|r| {
            (
                revision_of(r),
                r.metadata.creation_timestamp.as_ref().map(|t| t.0),
            )
        });
        for rs in cands.into_iter().take(excess as usize) {
            let api = self.rs_api(&rs.namespace().unwrap_or_default());
            let dp = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..Default::default()
            };
            ignore_404(api.delete(&rs.name_any(), &dp).await.map(|_| ()))?;
        }
        Ok(())
    }

    /// Status plus progress conditions (upstream's syncRolloutStatus); requeues for the deadline.
    async fn sync_rollout_status(
        &self,
        d: &Deployment,
        all: &[ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> Result<Option<Duration>> {
        let now = jiff::Timestamp::now();
        let mut st = calculate_status(d, all, new);
        let paused = d.spec.as_ref().and_then(|s| s.paused) == Some(true);
        let mut requeue = None;
        if has_progress_deadline(d) && !paused {
            let cur = get_condition(&st, "Progressing").cloned();
            let old_st = d.status.clone().unwrap_or_default();
            let new_name = new.map(|n| n.name_any()).unwrap_or_default();
            if deployment_complete(d, &st) {
                set_condition(
                    &mut st,
                    progressing(
                        "True",
                        "NewReplicaSetAvailable",
                        &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
                    ),
                );
            } else if deployment_progressing(&old_st, &st) {
                let mut c = progressing(
                    "True",
                    "ReplicaSetUpdated",
                    &format!("ReplicaSet \"{new_name}\" is progressing."),
                );
                if let Some(cur) = &cur {
                    if cur.status == "True" {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                }
                set_condition(&mut st, c);
            } else if deployment_timed_out(d, &st, now) {
                set_condition(
                    &mut st,
                    progressing(
                        "False",
                        "ProgressDeadlineExceeded",
                        &format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                    ),
                );
            }
            // requeue at the deadline of a rollout that is still in progress
            if !deployment_complete(d, &st) {
                if let Some(c) = get_condition(&st, "Progressing") {
                    if c.reason.as_deref() != Some("ProgressDeadlineExceeded") {
                        let secs = d
                            .spec
                            .as_ref()
                            .and_then(|s| s.progress_deadline_seconds)
                            .unwrap_or(600) as i64;
                        let from = c.last_update_time.as_ref().map(|t| t.0).unwrap_or(now);
                        let left =
                            (from + jiff::SignedDuration::from_secs(secs)).duration_since(now);
                        let left = left.as_secs_f64().max(0.0) + 0.5;
                        requeue = Some(Duration::from_secs_f64(left));
                    }
                }
            }
        }
        // keep conditions' timestamps when nothing changed
        let mut dd = d.clone();
        dd.status = Some(st);
        self.update_status(&dd, d).await?;
        Ok(requeue)
    }

    async fn update_status(&self, new: &Deployment, old: &Deployment) -> Result<()> {
        if new.status == old.status {
            return Ok(());
        }
        let api: Api<Deployment> =
            Api::namespaced(self.client.clone(), &new.namespace().unwrap_or_default());
        let mut obj = new.clone();
        // the revision annotation may have been patched meanwhile: write status only
        obj.metadata.resource_version = None;
        let patch = json!({"status": obj.status});
        api.patch_status(
            &new.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        Ok(())
    }
}

fn ignore_404<T>(r: std::result::Result<T, kube::Error>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn replace_in(all: &[ReplicaSet], n: ReplicaSet) -> Vec<ReplicaSet> {
    all.iter()
        .map(|r| {
            if r.uid() == n.uid() {
                n.clone()
            } else {
                r.clone()
            }
        })
        .collect()
}

/// spec.replicas of a set.
pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// Available replicas of a set, never more than its spec: pods beyond spec are on their way out
/// (a status that lags a scale-down still counts them), so they cannot carry availability.
pub fn available_of(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
        .min(spec_replicas(rs))
}

/// How many unavailable replicas of an old set upstream's cleanupUnhealthyReplicas removes, within
/// `budget`. A set whose status still counts pods it has just been told to delete reports more
/// available than spec; that is never a reason to scale it (upwards).
pub fn unhealthy_to_clean(spec: i32, available: i32, budget: i32) -> i32 {
    (spec - available).min(budget).max(0)
}

/// The revision annotation as a number (0 when absent).
pub fn revision_of(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Templates equal once the pod-template-hash label is dropped (upstream's EqualIgnoreHash).
pub fn templates_equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        let mut m = t.metadata.clone().unwrap_or_default();
        if let Some(l) = m.labels.as_mut() {
            l.remove(HASH_LABEL);
            if l.is_empty() {
                m.labels = None;
            }
        }
        if m.annotations.as_ref().is_some_and(|a| a.is_empty()) {
            m.annotations = None;
        }
        t.metadata = Some(m);
        util::prune_empty(serde_json::to_value(&t).unwrap_or_default())
    };
    strip(a) == strip(b)
}

fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let spec = d.spec.clone().unwrap_or_default();
    let ru = spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.clone())
        .unwrap_or_default();
    util::resolve_fenceposts(
        ru.max_surge.as_ref(),
        ru.max_unavailable.as_ref(),
        spec.replicas.unwrap_or(1),
    )
}

/// maxSurge resolved (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

/// maxUnavailable resolved (upstream's MaxUnavailable: 0 for Recreate or 0 replicas, at most
/// replicas).
pub fn max_unavailable(d: &Deployment) -> i32 {
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if !is_rolling(d) || replicas == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas)
}

/// Replicas for the new set (upstream's NewRSNewReplicas).
pub fn new_rs_new_replicas(d: &Deployment, all: &[ReplicaSet], new: Option<&ReplicaSet>) -> i32 {
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if !is_rolling(d) {
        return replicas;
    }
    let new_count = new.map(spec_replicas).unwrap_or(0);
    let current: i32 = all.iter().map(spec_replicas).sum();
    let max_total = replicas + max_surge(d);
    if current >= max_total {
        return new_count;
    }
    let up = (max_total - current).min(replicas - new_count);
    new_count + up.max(0)
}

fn set_replicas_annotations(ann: &mut BTreeMap<String, String>, desired: i32, max: i32) -> bool {
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if ann.get(k) != Some(&v) {
            ann.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

fn copy_deployment_annotations(d: &Deployment, ann: &mut BTreeMap<String, String>) -> bool {
    let skip = [
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    ];
    let mut changed = false;
    for (k, v) in d.annotations() {
        if skip.contains(&k.as_str()) {
            continue;
        }
        if ann.get(k) != Some(v) {
            ann.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

/// Proportional scaling of several active sets (upstream's scale()).
pub fn proportional_scale(d: &Deployment, all: &[ReplicaSet]) -> Vec<(ReplicaSet, i32)> {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let allowed = want + max_surge(d);
    let current: i32 = all.iter().map(spec_replicas).sum();
    let to_add = allowed - current;
    let mut sets: Vec<ReplicaSet> = all
        .iter()
        .filter(|r| spec_replicas(r) > 0)
        .cloned()
        .collect();
    // larger first; newer first on ties
    sets.sort_by(|a, b| {
        spec_replicas(b).cmp(&spec_replicas(a)).then_with(|| {
            b.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0)
                .cmp(&a.metadata.creation_timestamp.as_ref().map(|t| t.0))
        })
    });
    let status_replicas = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let mut added = 0;
    let mut plan: Vec<(ReplicaSet, i32)> = Vec::new();
    for rs in &sets {
        let sr = spec_replicas(rs);
        let mut prop = 0;
        if to_add != 0 {
            let annotated = rs
                .annotations()
                .get(MAX_REPLICAS)
                .and_then(|v| v.parse::<i32>().ok())
                .unwrap_or(status_replicas)
                .max(1);
            let frac = if want == 0 {
                -sr
            } else {
                ((sr as f64 * allowed as f64) / annotated as f64).round() as i32 - sr
            };
            let left = to_add - added;
            prop = if to_add > 0 {
                frac.min(left)
            } else {
                frac.max(left)
            };
            added += prop;
        }
        plan.push((rs.clone(), sr + prop));
    }
    if let Some(first) = plan.first_mut() {
        first.1 = (first.1 + to_add - added).max(0);
    }
    plan
}

fn progressing(status: &str, reason: &str, msg: &str) -> DeploymentCondition {
    let now = Time(jiff::Timestamp::now());
    DeploymentCondition {
        type_: "Progressing".into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(msg.into()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

fn get_condition<'a>(st: &'a DeploymentStatus, t: &str) -> Option<&'a DeploymentCondition> {
    st.conditions.as_ref()?.iter().find(|c| c.type_ == t)
}

/// Sets a condition, keeping lastTransitionTime when the status did not change and leaving it
/// alone entirely when status and reason are the same (upstream's SetDeploymentCondition).
pub fn set_condition(st: &mut DeploymentStatus, mut c: DeploymentCondition) {
    let conds = st.conditions.get_or_insert_with(Vec::new);
    if let Some(cur) = conds.iter().find(|x| x.type_ == c.type_) {
        if cur.status == c.status
            && cur.reason == c.reason
            && c.reason.as_deref() != Some("ReplicaSetUpdated")
            && cur.message == c.message
        {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    conds.retain(|x| x.type_ != c.type_);
    conds.push(c);
}

/// The status the deployment has given its sets (upstream's calculateStatus).
pub fn calculate_status(
    d: &Deployment,
    all: &[ReplicaSet],
    new: Option<&ReplicaSet>,
) -> DeploymentStatus {
    let available: i32 = all
        .iter()
        .map(|r| {
            r.status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0)
        })
        .sum();
    let total: i32 = all.iter().map(spec_replicas).sum();
    let actual = |r: &ReplicaSet| r.status.as_ref().map(|s| s.replicas).unwrap_or(0);
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let old = d.status.clone().unwrap_or_default();
    let mut st = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all.iter().map(actual).sum()),
        updated_replicas: Some(new.map(actual).unwrap_or(0)),
        ready_replicas: Some(
            all.iter()
                .map(|r| {
                    r.status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0)
                })
                .sum(),
        ),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: old.terminating_replicas,
    };
    if available >= want - max_unavailable(d) {
        set_available(
            &mut st,
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        );
    } else {
        set_available(
            &mut st,
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        );
    }
    st
}

fn set_available(st: &mut DeploymentStatus, status: &str, reason: &str, msg: &str) {
    let now = Time(jiff::Timestamp::now());
    set_condition(
        st,
        DeploymentCondition {
            type_: "Available".into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(msg.into()),
            last_update_time: Some(now.clone()),
            last_transition_time: Some(now),
        },
    );
}

fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_none_or(|v| v != i32::MAX)
}

/// All replicas updated and available, no old ones (upstream's DeploymentComplete).
pub fn deployment_complete(d: &Deployment, st: &DeploymentStatus) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    st.updated_replicas == Some(want)
        && st.replicas == Some(want)
        && st.available_replicas == Some(want)
        && st.observed_generation >= d.metadata.generation
}

/// Progress since the last status (upstream's DeploymentProgressing).
pub fn deployment_progressing(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas > old.updated_replicas
        || new_old < old_old
        || new.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
        || new.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

/// Whether the progress deadline passed (upstream's DeploymentTimedOut).
pub fn deployment_timed_out(d: &Deployment, st: &DeploymentStatus, now: jiff::Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(c) = get_condition(st, "Progressing") else {
        return false;
    };
    match c.reason.as_deref() {
        Some("NewReplicaSetAvailable") => return false,
        Some("ProgressDeadlineExceeded") => return true,
        _ => {}
    }
    let secs = d
        .spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .unwrap_or(600) as i64;
    let Some(from) = c.last_update_time.as_ref().map(|t| t.0) else {
        return false;
    };
    from + jiff::SignedDuration::from_secs(secs) < now
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetStatus;

    fn deploy(replicas: i32, surge: &str, unavail: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "d", "namespace": "default", "generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": "b"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavail}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
        }))
        .unwrap()
    }

    fn rs(name: &str, replicas: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(name.into()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas,
                available_replicas: Some(available),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn surge_and_unavailable_follow_upstream() {
        let d = deploy(10, "25%", "25%");
        assert_eq!((max_surge(&d), max_unavailable(&d)), (3, 2));
        let d = deploy(10, "0%", "0%");
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 1));
        let d = deploy(1, "0", "50");
        assert_eq!(max_unavailable(&d), 1);
    }

    #[test]
    fn new_replicas_respect_surge() {
        let d = deploy(10, "25%", "25%");
        let old = rs("old", 10, 10);
        let new = rs("new", 0, 0);
        assert_eq!(
            new_rs_new_replicas(&d, &[old.clone(), new.clone()], Some(&new)),
            3
        );
        let new = rs("new", 3, 0);
        assert_eq!(new_rs_new_replicas(&d, &[old, new.clone()], Some(&new)), 3);
        let old = rs("old", 7, 7);
        assert_eq!(new_rs_new_replicas(&d, &[old, new.clone()], Some(&new)), 6);
    }

    #[test]
    fn hash_label_is_ignored_when_comparing_templates() {
        let d = deploy(1, "1", "1");
        let t = d.spec.unwrap().template;
        let mut t2 = t.clone();
        t2.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(HASH_LABEL.into(), "abc".into());
        assert!(templates_equal_ignoring_hash(&t, &t2));
        t2.spec.as_mut().unwrap().containers[0].image = Some("other".into());
        assert!(!templates_equal_ignoring_hash(&t, &t2));
    }

    #[test]
    fn empty_fields_compare_equal_like_semantic_deep_equal() {
        let d = deploy(1, "1", "1");
        let t = d.spec.unwrap().template;
        let mut v = serde_json::to_value(&t).unwrap();
        v["spec"]["containers"][0]["resources"] = json!({});
        let t2: PodTemplateSpec = serde_json::from_value(v).unwrap();
        assert!(templates_equal_ignoring_hash(&t, &t2));
    }

    #[test]
    fn proportional_scaling_splits_by_size() {
        // 10 → 20 with two sets at 5 (max-replicas 13 annotated)
        let d = deploy(20, "3", "2");
        let mut a = rs("a", 5, 5);
        let mut b = rs("b", 5, 5);
        for r in [&mut a, &mut b] {
            r.metadata.annotations = Some([(MAX_REPLICAS.to_string(), "13".to_string())].into());
        }
        let plan = proportional_scale(&d, &[a, b]);
        let total: i32 = plan.iter().map(|p| p.1).sum();
        assert_eq!(total, 23);
    }

    #[test]
    fn unhealthy_cleanup_never_scales_up() {
        assert_eq!(unhealthy_to_clean(5, 2, 10), 3);
        assert_eq!(unhealthy_to_clean(5, 2, 1), 1);
        assert_eq!(unhealthy_to_clean(4, 4, 3), 0);
        // status lags a scale-down: 5 available, spec already 4
        assert_eq!(unhealthy_to_clean(4, 5, 3), 0);
    }

    #[test]
    fn stale_status_never_overstates_availability() {
        let mut r = rs("a", 8, 10);
        r.metadata.generation = Some(3);
        r.status.as_mut().unwrap().observed_generation = Some(2);
        assert_eq!(available_of(&r), 8);
        r.status.as_mut().unwrap().observed_generation = Some(3);
        assert_eq!(available_of(&r), 8);
    }

    #[test]
    fn complete_and_timed_out() {
        let d = deploy(2, "1", "1");
        let st = DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(2),
            updated_replicas: Some(2),
            available_replicas: Some(2),
            ..Default::default()
        };
        assert!(deployment_complete(&d, &st));
        let mut st2 = st.clone();
        let mut c = progressing("True", "ReplicaSetUpdated", "x");
        c.last_update_time = Some(Time(jiff::Timestamp::from_second(0).unwrap()));
        st2.conditions = Some(vec![c]);
        assert!(deployment_timed_out(
            &d,
            &st2,
            jiff::Timestamp::from_second(601).unwrap()
        ));
        assert!(!deployment_timed_out(
            &d,
            &st2,
            jiff::Timestamp::from_second(599).unwrap()
        ));
    }
}
