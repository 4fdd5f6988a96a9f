//! The scheduling loop: a queue of unscheduled pods (schedulerName default-scheduler), one pod at
//! a time through filter and score against the cache, assume, bind through pods/binding in the
//! background; unschedulable pods wait with backoff and are retried when nodes or pods change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use controllers::events::{EventType, Recorder};
use controllers::informer::Informer;
use controllers::queue::{backoff, WorkQueue};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use rand::Rng;
use serde_json::json;

use crate::cache::Cache;
use crate::plugins;
use crate::preemption;

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or(jiff::Timestamp::now())
        .to_string()
}

/// The scheduler's name in pods' spec.schedulerName.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";

/// Settings of the scheduler.
#[derive(Debug, Clone)]
pub struct Config {
    pub scheduler_name: String,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Unschedulable pods are retried at least this often even without cluster changes.
    pub unschedulable_flush: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            scheduler_name: DEFAULT_SCHEDULER.into(),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            unschedulable_flush: Duration::from_secs(60),
        }
    }
}

/// The scheduler.
pub struct Scheduler {
    client: Client,
    cfg: Config,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    cache: Arc<Mutex<Cache>>,
    queue: Arc<WorkQueue>,
    /// unschedulable pods: key → attempts
    unschedulable: Arc<Mutex<HashMap<String, u32>>>,
    /// How many cluster changes have moved the unschedulable pods back (upstream's
    /// moveRequestCycle): a pod whose attempt saw a change during it is retried, not parked.
    move_requests: std::sync::atomic::AtomicU64,
    recorder: Recorder,
    /// Where the next cycle starts filtering (upstream's nextStartNodeIndex).
    next_start: std::sync::atomic::AtomicUsize,
    /// Bindings in flight at most (each is one request; unbounded, a burst of thousands opens
    /// a connection each).
    binders: Arc<tokio::sync::Semaphore>,
    /// Pods nominated to a node by preemption and not bound yet: uid → (node, pod). They count
    /// on that node for pods of lower or equal priority, so the room made for them is not taken.
    nominated: Arc<Mutex<Nominated>>,
}

/// Pods nominated by preemption: uid → (node, pod).
type Nominated = HashMap<String, (String, Arc<Pod>)>;

/// Bindings in flight at most.
const PARALLEL_BINDINGS: usize = 16;

fn wants_scheduling(p: &Pod, name: &str) -> bool {
    let spec = p.spec.as_ref();
    spec.and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
        .is_empty()
        && spec
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(DEFAULT_SCHEDULER)
            == name
        && p.metadata.deletion_timestamp.is_none()
        && !matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded") | Some("Failed")
        )
}

/// How many feasible nodes a cycle looks for before it scores them: upstream's
/// percentageOfNodesToScore with its adaptive default — every node below 100 nodes, else
/// n × max(5, 50 − n/125) %, at least 100.
pub fn feasible_nodes_to_find(total: usize) -> usize {
    if total < 100 {
        return total;
    }
    let percent = 50usize.saturating_sub(total / 125).max(5);
    (total * percent / 100).max(100)
}

/// Why no node fits a pod: every node examined and what failed on each.
#[derive(Debug, Clone)]
pub struct FitError {
    pub total: usize,
    pub failures: Vec<plugins::Failure>,
}

impl std::fmt::Display for FitError {
    /// Upstream's message when preemption found no victims.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&plugins::fit_error_message(self.total, &self.failures))
    }
}

/// One scheduling cycle's algorithm over all of `snapshot`: see [`select_host_from`].
pub fn select_host(pod: &Pod, snapshot: &[crate::cache::NodeInfo]) -> Result<String, FitError> {
    select_host_from(pod, snapshot, 0).map(|(host, _)| host)
}

/// One scheduling cycle: nodes are filtered starting at `start` (round the list) until
/// [`feasible_nodes_to_find`] pass, those are scored, and one of the best is picked at random.
/// Returns the host and where the next cycle starts (after the nodes examined, as upstream's
/// nextStartNodeIndex); Err with every node's failure when no node fits.
pub fn select_host_from(
    pod: &Pod,
    snapshot: &[crate::cache::NodeInfo],
    start: usize,
) -> Result<(String, usize), FitError> {
    let cycle = plugins::Cycle::new(pod, snapshot);
    let total = snapshot.len();
    let want = feasible_nodes_to_find(total);
    let mut feasible = Vec::new();
    let mut failures = Vec::new();
    let mut examined = 0;
    for k in 0..total {
        let ni = &snapshot[(start + k) % total];
        examined += 1;
        match plugins::filter_in(pod, ni, &cycle) {
            None => {
                feasible.push(ni);
                if feasible.len() >= want {
                    break;
                }
            }
            Some(f) => failures.push(f),
        }
    }
    if feasible.is_empty() {
        return Err(FitError { total, failures });
    }
    let scores = plugins::score(pod, &feasible);
    let best = scores.iter().copied().max().unwrap_or(0);
    let top: Vec<usize> = (0..feasible.len()).filter(|i| scores[*i] == best).collect();
    let pick = top[rand::rng().random_range(0..top.len())];
    Ok((feasible[pick].name(), (start + examined) % total.max(1)))
}

impl Scheduler {
    /// A scheduler with its own pod and node informers.
    pub fn new(client: Client, cfg: Config) -> Arc<Self> {
        let pods = Informer::new(Api::<Pod>::all(client.clone()));
        let nodes = Informer::new(Api::<Node>::all(client.clone()));
        let cache = Arc::new(Mutex::new(Cache::default()));
        let queue = WorkQueue::new("scheduler");
        let unschedulable: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let nominated: Arc<Mutex<Nominated>> = Arc::default();
        let s = Arc::new(Scheduler {
            nominated: nominated.clone(),
            recorder: Recorder::new(client.clone(), DEFAULT_SCHEDULER),
            client,
            cfg: cfg.clone(),
            pods: pods.clone(),
            nodes: nodes.clone(),
            cache: cache.clone(),
            queue: queue.clone(),
            unschedulable: unschedulable.clone(),
            move_requests: std::sync::atomic::AtomicU64::new(0),
            next_start: std::sync::atomic::AtomicUsize::new(0),
            binders: Arc::new(tokio::sync::Semaphore::new(PARALLEL_BINDINGS)),
        });
        {
            let (cache, q, s2) = (cache.clone(), queue.clone(), Arc::downgrade(&s));
            let unsched = unschedulable.clone();
            let name = cfg.scheduler_name.clone();
            pods.on_change(move |old, new| {
                let mut moved = false;
                match new {
                    Some(p) => {
                        let was_bound = old.is_some_and(|o| {
                            o.spec
                                .as_ref()
                                .and_then(|s| s.node_name.as_deref())
                                .is_some_and(|n| !n.is_empty())
                        });
                        cache.lock().unwrap().upsert_pod(Arc::new(p.clone()));
                        if !wants_scheduling(p, &name) {
                            nominated
                                .lock()
                                .unwrap()
                                .remove(&p.uid().unwrap_or_default());
                        }
                        // a status-only update (our own PodScheduled=False included) does
                        // not make an unschedulable pod schedulable: it waits for a cluster change
                        let key = controllers::util::key_of(p);
                        let status_only = old.is_some_and(|o| {
                            o.spec == p.spec && o.metadata.labels == p.metadata.labels
                        });
                        let parked = unsched.lock().unwrap().contains_key(&key);
                        if wants_scheduling(p, &name) && !(status_only && parked) {
                            // the activeQ: higher spec.priority first
                            let priority = p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
                            q.add_with_priority(key, priority);
                        }
                        // a pod finishing frees room
                        if was_bound
                            && !matches!(
                                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                                Some("Running") | Some("Pending") | None
                            )
                        {
                            moved = true;
                        }
                    }
                    None => {
                        if let Some(o) = old {
                            let uid = o.uid().unwrap_or_default();
                            nominated.lock().unwrap().remove(&uid);
                            cache.lock().unwrap().remove_pod(&uid);
                            moved = o
                                .spec
                                .as_ref()
                                .and_then(|s| s.node_name.as_deref())
                                .is_some_and(|n| !n.is_empty());
                        }
                    }
                }
                if moved {
                    if let Some(s) = s2.upgrade() {
                        s.move_unschedulable();
                    }
                }
            });
        }
        {
            let (cache, s2) = (cache.clone(), Arc::downgrade(&s));
            nodes.on_change(move |_old, new| {
                match new {
                    Some(n) => cache.lock().unwrap().upsert_node(Arc::new(n.clone())),
                    None => {
                        if let Some(o) = _old {
                            cache.lock().unwrap().remove_node(&o.name_any());
                        }
                    }
                }
                if new.is_some() {
                    if let Some(s) = s2.upgrade() {
                        s.move_unschedulable();
                    }
                }
            });
        }
        s
    }

    /// A cluster change: unschedulable pods go back to the queue after their backoff.
    pub fn move_unschedulable(&self) {
        // Counted before the drain: an attempt that parks its pod after this sees the change.
        self.move_requests
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let drained: Vec<(String, u32)> = self.unschedulable.lock().unwrap().drain().collect();
        for (k, attempts) in drained {
            self.retry(k, attempts);
        }
    }

    /// Puts an unschedulable pod back in the queue after its backoff.
    fn retry(&self, key: String, attempts: u32) {
        let d = backoff(
            self.cfg.initial_backoff,
            self.cfg.max_backoff,
            attempts.saturating_sub(1),
        );
        // most of the backoff has usually passed while the pod waited; keep it short
        self.queue.add_after(key, d.min(Duration::from_millis(200)));
    }

    /// Runs until dropped.
    pub async fn run(self: Arc<Self>) {
        let _p = self.pods.start();
        let _n = self.nodes.start();
        self.pods.wait_synced().await;
        self.nodes.wait_synced().await;
        tracing::info!("scheduler caches synced");
        {
            let s = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(s.cfg.unschedulable_flush).await;
                    s.move_unschedulable();
                }
            });
        }
        loop {
            let key = self.queue.get().await;
            self.schedule_one(&key).await;
            self.queue.done(&key);
        }
    }

    async fn schedule_one(self: &Arc<Self>, key: &str) {
        let (ns, name) = controllers::util::split_key(key);
        let ns = ns.unwrap_or("default").to_string();
        let Some(pod) = self
            .pods
            .store()
            .get(&kube::runtime::reflector::ObjectRef::new(name).within(&ns))
        else {
            return;
        };
        if !wants_scheduling(&pod, &self.cfg.scheduler_name) {
            return;
        }
        let uid = pod.uid().unwrap_or_default();
        let cycle = self.move_requests.load(std::sync::atomic::Ordering::SeqCst);
        let snapshot = {
            let c = self.cache.lock().unwrap();
            if c.is_assumed(&uid) {
                return;
            }
            c.snapshot()
        };
        let snapshot = self.with_nominated(&pod, snapshot);
        let start = self.next_start.load(std::sync::atomic::Ordering::Relaxed);
        let host = match select_host_from(&pod, &snapshot, start) {
            Ok((host, next)) => {
                self.next_start
                    .store(next, std::sync::atomic::Ordering::Relaxed);
                host
            }
            Err(fit) => {
                let (msg, nominate) = self.preempt(&pod, &snapshot, &fit).await;
                self.unschedulable_pod(&pod, key, &msg, nominate.as_deref(), cycle)
                    .await;
                return;
            }
        };
        self.cache.lock().unwrap().assume(&pod, &host);
        self.unschedulable.lock().unwrap().remove(key);
        self.nominated.lock().unwrap().remove(&uid);
        let s = self.clone();
        let key = key.to_string();
        let permit = self.binders.clone().acquire_owned().await;
        tokio::spawn(async move {
            let _permit = permit;
            match s.bind(&pod, &host).await {
                Ok(()) => {
                    s.queue.forget(&key);
                    s.recorder.event(
                        pod.as_ref(),
                        EventType::Normal,
                        "Scheduled",
                        &format!(
                            "Successfully assigned {}/{} to {host}",
                            pod.namespace().unwrap_or_default(),
                            pod.name_any()
                        ),
                    );
                }
                Err(e) => {
                    tracing::info!(pod = %key, error = %e, "binding failed");
                    s.cache
                        .lock()
                        .unwrap()
                        .forget(&pod.uid().unwrap_or_default());
                    s.queue.add_rate_limited(&key);
                }
            }
        });
    }

    async fn bind(&self, pod: &Pod, host: &str) -> Result<(), kube::Error> {
        let ns = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let binding = json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name, "namespace": ns, "uid": pod.uid()},
            "target": {"apiVersion": "v1", "kind": "Node", "name": host}});
        let req = http::Request::post(format!("/api/v1/namespaces/{ns}/pods/{name}/binding"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&binding).unwrap_or_default())
            .map_err(kube::Error::HttpError)?;
        self.client.request_text(req).await.map(|_| ())
    }

    /// `snapshot` with the pods nominated by preemption counted on their nodes, those of at
    /// least `pod`'s priority (other than `pod`): the room preemption made is theirs.
    fn with_nominated(
        &self,
        pod: &Pod,
        mut snapshot: Vec<crate::cache::NodeInfo>,
    ) -> Vec<crate::cache::NodeInfo> {
        let nominated = self.nominated.lock().unwrap();
        if nominated.is_empty() {
            return snapshot;
        }
        let uid = pod.uid().unwrap_or_default();
        let prio = preemption::priority_of(pod);
        for (other, (node, p)) in nominated.iter() {
            if *other == uid || preemption::priority_of(p) < prio {
                continue;
            }
            if let Ok(i) = snapshot.binary_search_by(|ni| ni.name().as_str().cmp(node.as_str())) {
                let mut placed = (**p).clone();
                placed.spec.get_or_insert_with(Default::default).node_name = Some(node.clone());
                snapshot[i].add_pod(Arc::new(placed));
            }
        }
        snapshot
    }

    /// The PostFilter: when `pod` may preempt and evicting lower-priority pods makes room on a
    /// node, the victims are deleted and that node is returned for nomination. Returns the
    /// FailedScheduling message and the node.
    async fn preempt(
        &self,
        pod: &Arc<Pod>,
        snapshot: &[crate::cache::NodeInfo],
        fit: &FitError,
    ) -> (String, Option<String>) {
        let reasons = plugins::fit_error_reasons(fit.total, &fit.failures);
        if let Some(why) = preemption::not_eligible(pod, snapshot) {
            return (format!("{reasons} preemption: {why}"), None);
        }
        let Some(candidate) = preemption::find_candidate(pod, snapshot) else {
            return (fit.to_string(), None);
        };
        for victim in &candidate.victims {
            self.evict(victim, pod, &candidate.node).await;
        }
        self.nominated.lock().unwrap().insert(
            pod.uid().unwrap_or_default(),
            (candidate.node.clone(), pod.clone()),
        );
        (reasons, Some(candidate.node))
    }

    /// Deletes a preemption victim (with its own grace period), marked DisruptionTarget first
    /// and with a Preempted event, as upstream does.
    async fn evict(&self, victim: &Pod, preemptor: &Pod, node: &str) {
        let api: Api<Pod> =
            Api::namespaced(self.client.clone(), &victim.namespace().unwrap_or_default());
        let patch = json!({"status": {"conditions": [{"type": "DisruptionTarget",
            "status": "True", "reason": "PreemptionByScheduler",
            "message": format!("{}: preempting to accommodate a higher priority pod",
                self.cfg.scheduler_name),
            "lastTransitionTime": now_rfc3339()}]}});
        if let Err(e) = api
            .patch_status(
                &victim.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            tracing::debug!(error = %e, "DisruptionTarget condition not written");
        }
        match api
            .delete(&victim.name_any(), &kube::api::DeleteParams::default())
            .await
        {
            Ok(_) => {
                tracing::info!(victim = %victim.name_any(), preemptor = %preemptor.name_any(),
                    %node, "preempted");
                self.recorder.event(
                    victim,
                    EventType::Normal,
                    "Preempted",
                    &format!(
                        "Preempted by pod {} on node {node}",
                        preemptor.uid().unwrap_or_default()
                    ),
                );
            }
            Err(e) => tracing::info!(victim = %victim.name_any(), error = %e, "victim not deleted"),
        }
    }

    /// Parks a pod that did not fit until a cluster change, unless one came since `cycle` (the
    /// move count when its attempt began, e.g. a victim of its own preemption went away): then
    /// it is retried after its backoff at once, as a parked pod would have been.
    async fn unschedulable_pod(
        &self,
        pod: &Pod,
        key: &str,
        msg: &str,
        nominate: Option<&str>,
        cycle: u64,
    ) {
        tracing::debug!(pod = %key, %msg, "unschedulable");
        {
            let mut u = self.unschedulable.lock().unwrap();
            let attempts = {
                let a = u.entry(key.to_string()).or_insert(0);
                *a += 1;
                *a
            };
            let moved = self.move_requests.load(std::sync::atomic::Ordering::SeqCst) != cycle;
            if moved {
                u.remove(key);
                drop(u);
                self.retry(key.to_string(), attempts);
            }
        }
        self.recorder
            .event(pod, EventType::Warning, "FailedScheduling", msg);
        // PodScheduled=False with reason Unschedulable, as upstream reports it
        let already = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
            .is_some_and(|c| c.status == "False" && c.message.as_deref() == Some(msg))
            && nominate.is_none();
        if !already {
            let api: Api<Pod> =
                Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
            let mut patch = json!({"status": {"conditions": [{"type": "PodScheduled",
                "status": "False", "reason": "Unschedulable", "message": msg,
                "lastTransitionTime": now_rfc3339()}]}});
            if let Some(node) = nominate {
                patch["status"]["nominatedNodeName"] = json!(node);
            }
            if let Err(e) = api
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(&patch),
                )
                .await
            {
                tracing::debug!(error = %e, "pod condition not written");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;

    #[test]
    fn nodes_to_find_follow_upstreams_adaptive_percentage() {
        assert_eq!(feasible_nodes_to_find(3), 3);
        assert_eq!(feasible_nodes_to_find(99), 99);
        assert_eq!(feasible_nodes_to_find(100), 100);
        assert_eq!(feasible_nodes_to_find(1000), 420); // 50 − 8 = 42 %
        assert_eq!(feasible_nodes_to_find(5000), 500); // 50 − 40 = 10 %
        assert_eq!(feasible_nodes_to_find(10_000), 500); // floor of 5 %
    }

    #[test]
    fn cycles_rotate_over_the_nodes_and_report_failures_over_all() {
        let mut cache = Cache::default();
        for i in 0..200 {
            let node: Node = serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("n{i:03}")},
                "status": {"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "10"},
                    "conditions": [{"type": "Ready", "status": "True"}]}
            }))
            .unwrap();
            cache.upsert_node(Arc::new(node));
        }
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        }))
        .unwrap();
        let snapshot = cache.snapshot();
        // 200 nodes: all are examined (at least 100 feasible wanted, all 200 fit → stop at 100)
        let (_, next) = select_host_from(&pod, &snapshot, 0).unwrap();
        assert_eq!(next, 100);
        let (_, next) = select_host_from(&pod, &snapshot, 150).unwrap();
        assert_eq!(next, 50);
        let big: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "big", "namespace": "default", "uid": "b"},
            "spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": "2"}}}]}
        }))
        .unwrap();
        let err = select_host_from(&big, &snapshot, 37)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("0/200 nodes are available: 200 Insufficient cpu."),
            "{err}"
        );
    }
}
