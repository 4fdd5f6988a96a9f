//! Pure helpers shared by the controllers: owner references, label selectors, pod readiness and
//! availability, upstream's ActivePods ranking, the pod-template hash, int-or-percent rounding.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

/// The owner reference with controller=true, if any.
pub fn controller_ref(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// A controller owner reference to `owner` (controller=true, blockOwnerDeletion=true).
pub fn new_controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// `ns/name` (or `name` for cluster-scoped objects).
pub fn key_of<K: Resource>(obj: &K) -> String {
    match obj.meta().namespace.as_deref() {
        Some(ns) if !ns.is_empty() => {
            format!("{ns}/{}", obj.meta().name.clone().unwrap_or_default())
        }
        _ => obj.meta().name.clone().unwrap_or_default(),
    }
}

/// Splits a key into (namespace, name).
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, key),
    }
}

/// Whether `labels` match `sel` (an empty selector matches everything, as in apps/v1 semantics
/// callers decide whether empty means everything or nothing).
pub fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(ml) = &sel.match_labels {
        for (k, v) in ml {
            if labels.get(k) != Some(v) {
                return false;
            }
        }
    }
    if let Some(exprs) = &sel.match_expressions {
        for e in exprs {
            let vals = e.values.clone().unwrap_or_default();
            let ok = match e.operator.as_str() {
                "In" => labels.get(&e.key).is_some_and(|v| vals.contains(v)),
                "NotIn" => labels.get(&e.key).is_none_or(|v| !vals.contains(v)),
                "Exists" => labels.contains_key(&e.key),
                "DoesNotExist" => !labels.contains_key(&e.key),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// True when the selector selects nothing (no labels, no expressions).
pub fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty())
}

/// The pod's phase ("" when unset).
pub fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Active: not Succeeded/Failed and not being deleted (upstream's IsPodActive).
pub fn pod_is_active(pod: &Pod) -> bool {
    let ph = pod_phase(pod);
    ph != "Succeeded" && ph != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// The Ready condition's (status, lastTransitionTime).
fn ready_condition(pod: &Pod) -> Option<(bool, Option<jiff::Timestamp>)> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((
        c.status == "True",
        c.last_transition_time.as_ref().map(|t| t.0),
    ))
}

/// Whether the pod is Ready.
pub fn pod_is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|(r, _)| r)
}

/// Since when the pod is Ready.
pub fn pod_ready_since(pod: &Pod) -> Option<jiff::Timestamp> {
    match ready_condition(pod) {
        Some((true, t)) => t,
        _ => None,
    }
}

/// Available: ready for at least `min_ready_seconds` at `now` (upstream's IsPodAvailable).
pub fn pod_is_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    match ready_condition(pod) {
        Some((true, since)) => {
            if min_ready_seconds <= 0 {
                return true;
            }
            match since {
                Some(t) => t + jiff::SignedDuration::from_secs(min_ready_seconds as i64) <= now,
                None => false,
            }
        }
        _ => false,
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.annotations()
        .get("controller.kubernetes.io/pod-deletion-cost")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn phase_rank(p: &str) -> i32 {
    match p {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

/// Upstream's ActivePodsWithRanks ordering: pods that should be deleted first sort first.
/// `rank` is the number of related pods on the pod's node (more doubled-up first).
pub fn compare_pods_for_deletion(a: &Pod, ra: usize, b: &Pod, rb: usize) -> Ordering {
    let a_node = a
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("");
    let b_node = b
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("");
    // 1. unassigned < assigned
    if a_node.is_empty() != b_node.is_empty() {
        return if a_node.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    // 2. Pending < Unknown < Running
    let (pa, pb) = (phase_rank(pod_phase(a)), phase_rank(pod_phase(b)));
    if pa != pb {
        return pa.cmp(&pb);
    }
    // 3. not ready < ready
    let (ya, yb) = (pod_is_ready(a), pod_is_ready(b));
    if ya != yb {
        return if !ya {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    // 4. lower pod-deletion-cost first
    let (ca, cb) = (deletion_cost(a), deletion_cost(b));
    if ca != cb {
        return ca.cmp(&cb);
    }
    // 5. doubled-up pods first
    if ra != rb {
        return rb.cmp(&ra);
    }
    // 6. ready for less time first
    if ya && yb {
        let (ta, tb) = (pod_ready_since(a), pod_ready_since(b));
        if ta != tb {
            return match (ta, tb) {
                (None, _) => Ordering::Less,
                (_, None) => Ordering::Greater,
                (Some(x), Some(y)) => y.cmp(&x),
            };
        }
    }
    // 7. more restarts first
    let (xa, xb) = (restarts(a), restarts(b));
    if xa != xb {
        return xb.cmp(&xa);
    }
    // 8. newer first
    let (ta, tb) = (
        a.metadata.creation_timestamp.as_ref().map(|t| t.0),
        b.metadata.creation_timestamp.as_ref().map(|t| t.0),
    );
    if ta != tb {
        return match (ta, tb) {
            (None, _) => Ordering::Less,
            (_, None) => Ordering::Greater,
            (Some(x), Some(y)) => y.cmp(&x),
        };
    }
    Ordering::Equal
}

/// The `n` pods to delete first out of `pods`, ranked like upstream (doubled-up pods are ranked
/// by how many of `related` share their node).
pub fn pods_to_delete<'a>(pods: &[&'a Pod], related: &[&Pod], n: usize) -> Vec<&'a Pod> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for p in related {
        if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            if !node.is_empty() && pod_is_active(p) {
                *per_node.entry(node).or_default() += 1;
            }
        }
    }
    let rank = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| per_node.get(n).copied())
            .unwrap_or(0)
    };
    let mut v: Vec<&Pod> = pods.to_vec();
    v.sort_by(|a, b| compare_pods_for_deletion(a, rank(a), b, rank(b)));
    v.truncate(n);
    v
}

/// FNV-32a.
pub fn fnv32a(data: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for d in data {
        for b in *d {
            h ^= *b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// apimachinery's rand.SafeEncodeString: maps each byte onto a vowel-free alphabet.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[(b as usize) % ALPHANUMS.len()] as char)
        .collect()
}

/// The pod-template hash as upstream's ComputeHash shapes it: FNV-32a over the template (here
/// its canonical JSON, where upstream feeds Go's spew dump), then the collision count as 8
/// little-endian bytes (the upper 4 zero), then the decimal sum safe-encoded.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let json = serde_json::to_vec(&prune_empty(
        serde_json::to_value(template).unwrap_or_default(),
    ))
    .unwrap_or_default();
    let sum = match collision_count {
        Some(c) => {
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&(c as u32).to_le_bytes());
            fnv32a(&[&json, &b])
        }
        None => fnv32a(&[&json]),
    };
    safe_encode(&sum.to_string())
}

/// Drops nulls, empty objects and empty arrays recursively (Go's semantic equality treats them
/// as unset).
pub fn prune_empty(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, prune_empty(v)))
                .filter(|(_, v)| match v {
                    Value::Null => false,
                    Value::Object(o) => !o.is_empty(),
                    Value::Array(a) => !a.is_empty(),
                    _ => true,
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(prune_empty).collect()),
        other => other,
    }
}

/// Resolves an int-or-percent against `total`, rounding up or down (upstream's
/// GetScaledValueFromIntOrPercent).
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> i32 {
    match v {
        IntOrString::Int(i) => *i,
        IntOrString::String(s) => {
            let Some(p) = s
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<i64>().ok())
            else {
                return s.parse().unwrap_or(0);
            };
            let num = p * total as i64;
            if round_up {
                ((num + 99).div_euclid(100)) as i32
            } else {
                num.div_euclid(100) as i32
            }
        }
    }
}

/// Upstream's ResolveFenceposts: (maxSurge rounded up, maxUnavailable rounded down); both zero
/// makes unavailable 1.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let def = IntOrString::String("25%".into());
    let surge = scaled_value(max_surge.unwrap_or(&def), desired, true);
    let unavailable = scaled_value(max_unavailable.unwrap_or(&def), desired, false);
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(name: &str, node: &str, phase: &str, ready_at: Option<i64>, created: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(jiff::Timestamp::from_second(created).unwrap())),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_string()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready_at.is_some() { "True" } else { "False" }.into(),
                    last_transition_time: ready_at
                        .map(|s| Time(jiff::Timestamp::from_second(s).unwrap())),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn ranking_follows_active_pods_order() {
        let unassigned = pod("unassigned", "", "Pending", None, 10);
        let pending = pod("pending", "n1", "Pending", None, 10);
        let notready = pod("notready", "n1", "Running", None, 10);
        let ready_new = pod("ready-new", "n2", "Running", Some(100), 10);
        let ready_old = pod("ready-old", "n3", "Running", Some(50), 10);
        let all = [&ready_old, &ready_new, &notready, &pending, &unassigned];
        let order: Vec<String> = pods_to_delete(&all, &[], 5)
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(
            order,
            [
                "unassigned",
                "pending",
                "notready",
                "ready-new",
                "ready-old"
            ]
        );
        // newer first on a tie
        let a = pod("a", "n1", "Running", Some(50), 10);
        let b = pod("b", "n2", "Running", Some(50), 20);
        assert_eq!(pods_to_delete(&[&a, &b], &[], 1)[0].name_any(), "b");
        // doubled-up node first
        let c = pod("c", "n1", "Running", Some(50), 10);
        let d = pod("d", "n2", "Running", Some(50), 10);
        let e = pod("e", "n2", "Running", Some(50), 10);
        let first = pods_to_delete(&[&c, &d], &[&c, &d, &e], 1)[0].name_any();
        assert_eq!(first, "d");
    }

    #[test]
    fn rounding_like_upstream() {
        let p = |s: &str| IntOrString::String(s.into());
        assert_eq!(
            resolve_fenceposts(Some(&p("25%")), Some(&p("25%")), 10),
            (3, 2)
        );
        assert_eq!(
            resolve_fenceposts(Some(&p("0%")), Some(&p("0%")), 10),
            (0, 1)
        );
        assert_eq!(
            resolve_fenceposts(Some(&IntOrString::Int(0)), Some(&IntOrString::Int(0)), 3),
            (0, 1)
        );
        assert_eq!(resolve_fenceposts(None, None, 1), (1, 0));
        assert_eq!(
            resolve_fenceposts(Some(&p("30%")), Some(&p("30%")), 5),
            (2, 1)
        );
        assert_eq!(scaled_value(&IntOrString::Int(4), 10, false), 4);
    }

    #[test]
    fn hash_is_fnv32a_safe_encoded() {
        assert_eq!(fnv32a(&[b""]), 0x811c9dc5);
        assert_eq!(fnv32a(&[b"a"]), 0xe40c292c);
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        let t = PodTemplateSpec::default();
        let h = compute_hash(&t, None);
        assert_eq!(h, compute_hash(&t, None));
        assert_ne!(h, compute_hash(&t, Some(1)));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn availability_honours_min_ready_seconds() {
        let p = pod("a", "n1", "Running", Some(100), 10);
        let at = |s| jiff::Timestamp::from_second(s).unwrap();
        assert!(pod_is_available(&p, 0, at(100)));
        assert!(!pod_is_available(&p, 10, at(105)));
        assert!(pod_is_available(&p, 10, at(110)));
    }
}
