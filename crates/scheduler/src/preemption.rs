//! Preemption, upstream's DefaultPreemption PostFilter: when no node fits a pod, find the node
//! where evicting the fewest and least important lower-priority pods makes room, so that the
//! pod can be nominated there and its victims deleted.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::cache::NodeInfo;
use crate::plugins;

/// A node where the pod fits once `victims` are gone.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<Pod>>,
}

/// Upstream's minCandidateNodesAbsolute: the dry runs stop once this many candidates are found.
const MIN_CANDIDATE_NODES: usize = 100;

/// A pod's priority (0 when the Priority admission left none).
pub fn priority_of(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

fn start_time(pod: &Pod) -> Option<jiff::Timestamp> {
    let t = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .or(pod.metadata.creation_timestamp.as_ref())?;
    t.0.to_string().parse().ok()
}

/// Why a pod may not preempt, as upstream words it in the FailedScheduling message; None when
/// it may. A pod already nominated to a node where lower-priority pods are still terminating
/// waits for them instead of preempting again.
pub fn not_eligible(pod: &Pod, snapshot: &[NodeInfo]) -> Option<&'static str> {
    let spec = pod.spec.as_ref()?;
    if spec.preemption_policy.as_deref() == Some("Never") {
        return Some("not eligible due to preemptionPolicy=Never.");
    }
    let nominated = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty())?;
    let prio = priority_of(pod);
    let terminating = snapshot
        .iter()
        .filter(|ni| ni.name() == nominated)
        .flat_map(|ni| ni.pods.values())
        .any(|p| p.metadata.deletion_timestamp.is_some() && priority_of(p) < prio);
    terminating.then_some("not eligible due to a terminating pod on the nominated node.")
}

/// Upstream's MoreImportantPod: higher priority, then the one that started earlier.
fn more_important_first(a: &Arc<Pod>, b: &Arc<Pod>) -> std::cmp::Ordering {
    priority_of(b)
        .cmp(&priority_of(a))
        .then_with(|| start_time(a).cmp(&start_time(b)))
}

/// The victims on node `i` of `all` (upstream's SelectVictimsOnNode): every lower-priority pod
/// is removed; if the pod then fits, the removed pods are added back most important first
/// whenever the pod still fits with them (reprieved), and the rest are the victims. None when
/// the pod does not fit even with every lower-priority pod gone. `all[i]` is restored.
fn victims_on_node(pod: &Pod, all: &mut [NodeInfo], i: usize) -> Option<Vec<Arc<Pod>>> {
    let prio = priority_of(pod);
    let original = all[i].clone();
    let mut potential: Vec<Arc<Pod>> = original
        .pods
        .values()
        .filter(|p| priority_of(p) < prio)
        .cloned()
        .collect();
    for p in &potential {
        all[i].remove_pod(&p.uid().unwrap_or_default());
    }
    let fits = |all: &[NodeInfo]| plugins::filter(pod, &all[i], all).is_none();
    let result = if !fits(all) {
        None
    } else {
        potential.sort_by(more_important_first);
        let mut victims = Vec::new();
        for p in potential {
            all[i].add_pod(p.clone());
            if !fits(all) {
                all[i].remove_pod(&p.uid().unwrap_or_default());
                victims.push(p);
            }
        }
        Some(victims)
    };
    all[i] = original;
    result
}

/// Upstream's pickOneNodeForPreemption (without PodDisruptionBudgets): the lowest highest
/// victim priority, then the lowest sum of priorities, then the fewest victims, then the latest
/// start among the highest-priority victims, then the first.
fn pick(mut candidates: Vec<Candidate>) -> Option<Candidate> {
    let key = |c: &Candidate| {
        let highest = c
            .victims
            .iter()
            .map(|p| priority_of(p))
            .max()
            .unwrap_or(i32::MIN);
        // each priority shifted to be positive, as upstream sums them
        let sum: i64 = c
            .victims
            .iter()
            .map(|p| i64::from(priority_of(p)) + i64::from(i32::MAX) + 1)
            .sum();
        let earliest_of_highest = c
            .victims
            .iter()
            .filter(|p| priority_of(p) == highest)
            .filter_map(|p| start_time(p))
            .min();
        (
            highest,
            sum,
            c.victims.len(),
            std::cmp::Reverse(earliest_of_highest),
        )
    };
    // stable: among equal keys the first candidate wins
    candidates.sort_by_key(key);
    candidates.into_iter().next()
}

/// The node to nominate `pod` to and the pods to evict there, or None when no eviction of
/// lower-priority pods makes it fit. Nodes whose failure preemption cannot fix (taints,
/// selectors, a missing node name...) are skipped.
pub fn find_candidate(pod: &Pod, snapshot: &[NodeInfo]) -> Option<Candidate> {
    let mut all = snapshot.to_vec();
    let mut candidates = Vec::new();
    for i in 0..all.len() {
        match plugins::filter(pod, &all[i], &all) {
            Some(f) if !f.unresolvable => {}
            _ => continue,
        }
        if let Some(victims) = victims_on_node(pod, &mut all, i) {
            if victims.is_empty() {
                // it fits without evicting anyone (the cache moved on): nominate there
                return Some(Candidate {
                    node: all[i].name(),
                    victims,
                });
            }
            candidates.push(Candidate {
                node: all[i].name(),
                victims,
            });
            if candidates.len() >= MIN_CANDIDATE_NODES {
                break;
            }
        }
    }
    pick(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::json;

    fn node(name: &str, cpu: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                    "conditions": [{"type": "Ready", "status": "True"}]}
            }))
            .unwrap(),
        )
    }

    fn pod(name: &str, cpu: &str, priority: i32, node: Option<&str>, started: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name,
                "creationTimestamp": started},
            "spec": {"nodeName": node, "priority": priority,
                "containers": [{"name": "c", "image": "i",
                    "resources": {"requests": {"cpu": cpu}}}]},
            "status": {"phase": "Running", "startTime": started}
        }))
        .unwrap()
    }

    fn names(c: &Candidate) -> Vec<String> {
        let mut v: Vec<String> = c.victims.iter().map(|p| p.name_any()).collect();
        v.sort();
        v
    }

    #[test]
    fn evicts_only_what_makes_room_and_prefers_the_cheapest_node() {
        let mut cache = Cache::default();
        cache.upsert_node(node("a", "2"));
        cache.upsert_node(node("b", "2"));
        let t = "2026-01-01T00:00:00Z";
        // a: two low pods (1 cpu each); b: one medium pod (2 cpu)
        for p in [
            pod("a-low1", "1", 1, Some("a"), t),
            pod("a-low2", "1", 1, Some("a"), t),
            pod("b-mid", "2", 5, Some("b"), t),
        ] {
            cache.upsert_pod(Arc::new(p));
        }
        let snapshot = cache.snapshot();
        let high = pod("high", "1", 10, None, t);
        let c = find_candidate(&high, &snapshot).unwrap();
        // on a one low pod suffices (the other is reprieved); b would cost a priority-5 pod
        assert_eq!(c.node, "a");
        assert_eq!(c.victims.len(), 1);

        // a pod of equal priority preempts nothing
        let equal = pod("eq", "1", 1, None, t);
        assert!(find_candidate(&equal, &snapshot).is_none());
    }

    #[test]
    fn the_newest_of_equal_victims_goes_first_and_policy_never_is_not_eligible() {
        let mut cache = Cache::default();
        cache.upsert_node(node("a", "2"));
        cache.upsert_pod(Arc::new(pod(
            "old",
            "1",
            0,
            Some("a"),
            "2026-01-01T00:00:00Z",
        )));
        cache.upsert_pod(Arc::new(pod(
            "new",
            "1",
            0,
            Some("a"),
            "2026-01-02T00:00:00Z",
        )));
        let snapshot = cache.snapshot();
        let high = pod("high", "1", 100, None, "2026-01-03T00:00:00Z");
        let c = find_candidate(&high, &snapshot).unwrap();
        // the older pod is more important: reprieved first
        assert_eq!(names(&c), ["new"]);
        let big = pod("big", "2", 100, None, "2026-01-03T00:00:00Z");
        assert_eq!(
            names(&find_candidate(&big, &snapshot).unwrap()),
            ["new", "old"]
        );
        let too_big = pod("huge", "3", 100, None, "2026-01-03T00:00:00Z");
        assert!(find_candidate(&too_big, &snapshot).is_none());

        let mut never = high.clone();
        never.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
        assert_eq!(
            not_eligible(&never, &snapshot),
            Some("not eligible due to preemptionPolicy=Never.")
        );
        assert_eq!(not_eligible(&high, &snapshot), None);
    }

    #[test]
    fn unresolvable_nodes_are_not_candidates() {
        let mut cache = Cache::default();
        let mut tainted = (*node("a", "2")).clone();
        tainted.spec = Some(
            serde_json::from_value(json!({"taints": [{"key": "k", "effect": "NoSchedule"}]}))
                .unwrap(),
        );
        cache.upsert_node(Arc::new(tainted));
        cache.upsert_pod(Arc::new(pod(
            "low",
            "2",
            0,
            Some("a"),
            "2026-01-01T00:00:00Z",
        )));
        let high = pod("high", "1", 100, None, "2026-01-03T00:00:00Z");
        assert!(find_candidate(&high, &cache.snapshot()).is_none());
    }
}
