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
    recorder: Recorder,
    /// Where the next cycle starts filtering (upstream's nextStartNodeIndex).
    next_start: std::sync::atomic::AtomicUsize,
    /// Bindings in flight at most (each is one request; unbounded, a burst of thousands opens
    /// a connection each).
    binders: Arc<tokio::sync::Semaphore>,
}

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

/// One scheduling cycle's algorithm over all of `snapshot`: see [`select_host_from`].
pub fn select_host(pod: &Pod, snapshot: &[crate::cache::NodeInfo]) -> Result<String, String> {
    select_host_from(pod, snapshot, 0).map(|(host, _)| host)
}

/// One scheduling cycle: nodes are filtered starting at `start` (round the list) until
/// [`feasible_nodes_to_find`] pass, those are scored, and one of the best is picked at random.
/// Returns the host and where the next cycle starts (after the nodes examined, as upstream's
/// nextStartNodeIndex); Err with the FailedScheduling message when no node fits.
pub fn select_host_from(
    pod: &Pod,
    snapshot: &[crate::cache::NodeInfo],
    start: usize,
) -> Result<(String, usize), String> {
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
        return Err(plugins::fit_error_message(total, &failures));
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
        let s = Arc::new(Scheduler {
            recorder: Recorder::new(client.clone(), DEFAULT_SCHEDULER),
            client,
            cfg: cfg.clone(),
            pods: pods.clone(),
            nodes: nodes.clone(),
            cache: cache.clone(),
            queue: queue.clone(),
            unschedulable: unschedulable.clone(),
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
                            cache
                                .lock()
                                .unwrap()
                                .remove_pod(&o.uid().unwrap_or_default());
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
        let drained: Vec<(String, u32)> = self.unschedulable.lock().unwrap().drain().collect();
        for (k, attempts) in drained {
            let d = backoff(
                self.cfg.initial_backoff,
                self.cfg.max_backoff,
                attempts.saturating_sub(1),
            );
            // most of the backoff has usually passed while the pod waited; keep it short
            self.queue.add_after(k, d.min(Duration::from_millis(200)));
        }
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
        let snapshot = {
            let c = self.cache.lock().unwrap();
            if c.is_assumed(&uid) {
                return;
            }
            c.snapshot()
        };
        let start = self.next_start.load(std::sync::atomic::Ordering::Relaxed);
        let host = match select_host_from(&pod, &snapshot, start) {
            Ok((host, next)) => {
                self.next_start
                    .store(next, std::sync::atomic::Ordering::Relaxed);
                host
            }
            Err(msg) => {
                self.unschedulable_pod(&pod, key, &msg).await;
                return;
            }
        };
        self.cache.lock().unwrap().assume(&pod, &host);
        self.unschedulable.lock().unwrap().remove(key);
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

    async fn unschedulable_pod(&self, pod: &Pod, key: &str, msg: &str) {
        tracing::debug!(pod = %key, %msg, "unschedulable");
        let attempts = {
            let mut u = self.unschedulable.lock().unwrap();
            let a = u.entry(key.to_string()).or_insert(0);
            *a += 1;
            *a
        };
        self.recorder
            .event(pod, EventType::Warning, "FailedScheduling", msg);
        // PodScheduled=False with reason Unschedulable, as upstream reports it
        let already = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
            .is_some_and(|c| c.status == "False" && c.message.as_deref() == Some(msg));
        if !already {
            let api: Api<Pod> =
                Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
            let now = jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or(jiff::Timestamp::now())
                .to_string();
            let patch = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": msg, "lastTransitionTime": now}]}});
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
        let _ = attempts;
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
        let err = select_host_from(&big, &snapshot, 37).unwrap_err();
        assert!(
            err.starts_with("0/200 nodes are available: 200 Insufficient cpu."),
            "{err}"
        );
    }
}
