//! Filter and score plugins with upstream's names and failure reasons, and the FitError message
//! ("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}.
//! preemption: ...").

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodAffinityTerm, Taint, Toleration,
};
use kube::ResourceExt;

use crate::cache::{host_ports, HostPort, NodeInfo};
use crate::resources::{pod_requests, pod_requests_nonzero, Resources};

/// What one scheduling cycle computes once for its pod (upstream's PreFilter and PreScore
/// state), so that each node costs only comparisons.
pub struct Cycle<'a> {
    all: &'a [NodeInfo],
    requests: Resources,
    ports: Vec<HostPort>,
    /// Existing pods with required anti-affinity terms, with their nodes.
    existing_anti: Vec<(&'a NodeInfo, &'a Pod)>,
}

impl<'a> Cycle<'a> {
    /// The state of a cycle placing `pod` on one of `all`.
    pub fn new(pod: &Pod, all: &'a [NodeInfo]) -> Cycle<'a> {
        Cycle {
            all,
            requests: pod_requests(pod),
            ports: host_ports(pod),
            existing_anti: all
                .iter()
                .flat_map(|ni| {
                    ni.anti_affinity_pods
                        .values()
                        .map(move |p| (ni, p.as_ref()))
                })
                .collect(),
        }
    }
}

/// Why a node does not fit; `unresolvable` means preemption cannot help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reasons: Vec<String>,
    pub unresolvable: bool,
}

fn fail(reason: impl Into<String>, unresolvable: bool) -> Option<Failure> {
    Some(Failure {
        reasons: vec![reason.into()],
        unresolvable,
    })
}

fn tolerates(tols: &[Toleration], taint: &Taint) -> bool {
    tols.iter().any(|t| {
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == taint.effect);
        let key_ok = t.key.as_deref().is_none_or(|k| k.is_empty())
            || t.key.as_deref() == Some(taint.key.as_str());
        let op = t.operator.as_deref().unwrap_or("Equal");
        let value_ok = match op {
            "Exists" => true,
            _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        };
        // an empty key with Exists tolerates everything
        effect_ok && key_ok && value_ok
    })
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

fn node_labels(node: &Node) -> &BTreeMap<String, String> {
    node.labels()
}

fn requirement_matches(r: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let vals = r.values.clone().unwrap_or_default();
    let v = labels.get(&r.key);
    match r.operator.as_str() {
        "In" => v.is_some_and(|v| vals.contains(v)),
        "NotIn" => v.is_none_or(|v| !vals.contains(v)),
        "Exists" => v.is_some(),
        "DoesNotExist" => v.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(x)) = (
                v.and_then(|v| v.parse::<i64>().ok()),
                vals.first().and_then(|x| x.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > x
            } else {
                v < x
            }
        }
        _ => false,
    }
}

fn term_matches(t: &NodeSelectorTerm, node: &Node) -> bool {
    let labels = node_labels(node);
    let exprs = t.match_expressions.as_deref().unwrap_or(&[]);
    let fields = t.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let mut name = BTreeMap::new();
    name.insert("metadata.name".to_string(), node.name_any());
    exprs.iter().all(|r| requirement_matches(r, labels))
        && fields.iter().all(|r| requirement_matches(r, &name))
}

/// Filter NodeUnschedulable.
pub fn node_unschedulable(pod: &Pod, node: &Node) -> Option<Failure> {
    if node.spec.as_ref().and_then(|s| s.unschedulable) != Some(true) {
        return None;
    }
    let t = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    (!tolerates(tolerations(pod), &t)).then(|| Failure {
        reasons: vec!["node(s) were unschedulable".into()],
        unresolvable: true,
    })
}

/// Filter NodeName.
pub fn node_name(pod: &Pod, node: &Node) -> Option<Failure> {
    let want = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("");
    if want.is_empty() || want == node.name_any() {
        return None;
    }
    fail("node(s) didn't match the requested node name", true)
}

/// Filter TaintToleration (NoSchedule and NoExecute taints).
pub fn taint_toleration(pod: &Pod, node: &Node) -> Option<Failure> {
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    let tols = tolerations(pod);
    for t in taints {
        if t.effect != "NoSchedule" && t.effect != "NoExecute" {
            continue;
        }
        if !tolerates(tols, t) {
            return fail(
                format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    t.key,
                    t.value.as_deref().unwrap_or("")
                ),
                true,
            );
        }
    }
    None
}

/// Node readiness: a node whose Ready condition is not True counts as carrying the not-ready
/// taint (what the node lifecycle controller puts there).
pub fn node_ready(pod: &Pod, node: &Node) -> Option<Failure> {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    let key = match ready {
        Some("True") => return None,
        Some("Unknown") => "node.kubernetes.io/unreachable",
        _ => "node.kubernetes.io/not-ready",
    };
    let t = Taint {
        key: key.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    if tolerates(tolerations(pod), &t) {
        return None;
    }
    fail(format!("node(s) had untolerated taint {{{key}: }}"), true)
}

/// Filter NodeAffinity: nodeSelector and required node affinity.
pub fn node_affinity(pod: &Pod, node: &Node) -> Option<Failure> {
    let spec = pod.spec.as_ref()?;
    let msg = "node(s) didn't match Pod's node affinity/selector";
    if let Some(sel) = &spec.node_selector {
        let labels = node_labels(node);
        if sel.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return fail(msg, true);
        }
    }
    let req = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    if let Some(req) = req {
        if !req
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, node))
        {
            return fail(msg, true);
        }
    }
    None
}

/// Filter NodePorts.
pub fn node_ports(pod: &Pod, ni: &NodeInfo) -> Option<Failure> {
    node_ports_of(&host_ports(pod), ni)
}

fn node_ports_of(ports: &[HostPort], ni: &NodeInfo) -> Option<Failure> {
    for (proto, ip, port) in ports {
        let conflict = ni.used_ports.iter().any(|(p, i, n)| {
            p == proto && n == port && (i == ip || i == "0.0.0.0" || ip == "0.0.0.0")
        });
        if conflict {
            return fail(
                "node(s) didn't have free ports for the requested pod ports",
                false,
            );
        }
    }
    None
}

/// Filter NodeResourcesFit: requests against allocatable minus assigned pods' requests.
pub fn resources_fit(pod: &Pod, ni: &NodeInfo) -> Option<Failure> {
    resources_fit_of(&pod_requests(pod), ni)
}

fn resources_fit_of(req: &Resources, ni: &NodeInfo) -> Option<Failure> {
    ni.node.as_ref()?;
    let alloc = &ni.allocatable;
    let mut reasons = Vec::new();
    if ni.requested.pods + 1 > alloc.pods {
        reasons.push("Too many pods".to_string());
    }
    if req.milli_cpu > 0 && ni.requested.milli_cpu + req.milli_cpu > alloc.milli_cpu {
        reasons.push("Insufficient cpu".to_string());
    }
    if req.memory > 0 && ni.requested.memory + req.memory > alloc.memory {
        reasons.push("Insufficient memory".to_string());
    }
    (!reasons.is_empty()).then_some(Failure {
        reasons,
        unresolvable: false,
    })
}

fn selector_matches_pod(term: &PodAffinityTerm, pod_ns: &str, candidate: &Pod) -> bool {
    let nss = term.namespaces.clone().unwrap_or_default();
    let cand_ns = candidate.namespace().unwrap_or_default();
    if nss.is_empty() && term.namespace_selector.is_none() {
        if cand_ns != pod_ns {
            return false;
        }
    } else if !nss.is_empty() && !nss.contains(&cand_ns) {
        return false;
    }
    match &term.label_selector {
        Some(sel) => label_selector_matches(sel, candidate.labels()),
        None => false,
    }
}

/// Label selector matching (matchLabels and matchExpressions).
pub fn label_selector_matches(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: &BTreeMap<String, String>,
) -> bool {
    if let Some(ml) = &sel.match_labels {
        if ml.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return false;
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let vals = e.values.clone().unwrap_or_default();
        let v = labels.get(&e.key);
        let ok = match e.operator.as_str() {
            "In" => v.is_some_and(|v| vals.contains(v)),
            "NotIn" => v.is_none_or(|v| !vals.contains(v)),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn anti_affinity_terms(pod: &Pod) -> &[PodAffinityTerm] {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|pa| {
            pa.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or(&[])
}

/// Filter InterPodAffinity (required anti-affinity, both directions) over all nodes: pods in the
/// same topology domain (node label `topologyKey`) must not match.
pub fn inter_pod_anti_affinity(pod: &Pod, ni: &NodeInfo, all: &[NodeInfo]) -> Option<Failure> {
    inter_pod_anti_affinity_in(pod, ni, &Cycle::new(pod, all))
}

fn inter_pod_anti_affinity_in(pod: &Pod, ni: &NodeInfo, cycle: &Cycle) -> Option<Failure> {
    let all = cycle.all;
    let node = ni.node.as_ref()?;
    let ns = pod.namespace().unwrap_or_default();
    let same_domain = |other: &NodeInfo, key: &str| -> bool {
        let Some(on) = other.node.as_ref() else {
            return false;
        };
        match (node.labels().get(key), on.labels().get(key)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    };
    for term in anti_affinity_terms(pod) {
        for other in all {
            if !same_domain(other, &term.topology_key) {
                continue;
            }
            if other
                .pods
                .values()
                .any(|p| selector_matches_pod(term, &ns, p))
            {
                return fail("node(s) didn't match pod anti-affinity rules", false);
            }
        }
    }
    // existing pods' anti-affinity against the incoming pod
    for (other, p) in &cycle.existing_anti {
        for term in anti_affinity_terms(p) {
            if same_domain(other, &term.topology_key)
                && selector_matches_pod(term, &p.namespace().unwrap_or_default(), pod)
            {
                return fail(
                    "node(s) didn't satisfy existing pods anti-affinity rules",
                    false,
                );
            }
        }
    }
    None
}

/// Runs the filters in upstream's order; the first failing plugin decides.
pub fn filter(pod: &Pod, ni: &NodeInfo, all: &[NodeInfo]) -> Option<Failure> {
    filter_in(pod, ni, &Cycle::new(pod, all))
}

/// [`filter`] with the cycle's precomputed state.
pub fn filter_in(pod: &Pod, ni: &NodeInfo, cycle: &Cycle) -> Option<Failure> {
    let node = ni.node.as_ref()?;
    node_unschedulable(pod, node)
        .or_else(|| node_name(pod, node))
        .or_else(|| taint_toleration(pod, node))
        .or_else(|| node_ready(pod, node))
        .or_else(|| node_affinity(pod, node))
        .or_else(|| node_ports_of(&cycle.ports, ni))
        .or_else(|| resources_fit_of(&cycle.requests, ni))
        .or_else(|| inter_pod_anti_affinity_in(pod, ni, cycle))
}

/// Upstream's FitError message for `failures` over `total` nodes, with the summary of a
/// preemption attempt that found no victims.
pub fn fit_error_message(total: usize, failures: &[Failure]) -> String {
    let mut msg = fit_error_reasons(total, failures);
    let unresolvable = failures.iter().filter(|f| f.unresolvable).count();
    let resolvable = failures.len() - unresolvable;
    let mut pre = Vec::new();
    if resolvable > 0 {
        pre.push(format!(
            "{resolvable} No preemption victims found for incoming pod"
        ));
    }
    if unresolvable > 0 {
        pre.push(format!(
            "{unresolvable} Preemption is not helpful for scheduling"
        ));
    }
    pre.sort();
    msg.push_str(&format!(
        " preemption: 0/{total} nodes are available: {}.",
        pre.join(", ")
    ));
    msg
}

/// The first part of the FitError message: "0/3 nodes are available: 1 Insufficient cpu, ...".
/// Alone it is the whole message when preemption nominated a node.
pub fn fit_error_reasons(total: usize, failures: &[Failure]) -> String {
    let mut hist: HashMap<&str, usize> = HashMap::new();
    for f in failures {
        for r in &f.reasons {
            *hist.entry(r.as_str()).or_default() += 1;
        }
    }
    let mut parts: Vec<String> = hist.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    let mut msg = format!("0/{total} nodes are available:");
    if !parts.is_empty() {
        msg.push_str(&format!(" {}.", parts.join(", ")));
    }
    msg
}

fn alloc(ni: &NodeInfo) -> (i64, i64) {
    (ni.allocatable.milli_cpu, ni.allocatable.memory)
}

/// Score NodeResourcesFit/LeastAllocated (0..=100).
pub fn least_allocated(pod: &Pod, ni: &NodeInfo) -> i64 {
    least_allocated_of(&pod_requests_nonzero(pod), ni)
}

fn least_allocated_of(req: &Resources, ni: &NodeInfo) -> i64 {
    let (ac, am) = alloc(ni);
    let score = |cap: i64, used: i64| {
        if cap == 0 || used > cap {
            0
        } else {
            (cap - used) * 100 / cap
        }
    };
    (score(ac, ni.nonzero_requested.milli_cpu + req.milli_cpu)
        + score(am, ni.nonzero_requested.memory + req.memory))
        / 2
}

/// Score NodeResourcesBalancedAllocation (0..=100).
pub fn balanced_allocation(pod: &Pod, ni: &NodeInfo) -> i64 {
    balanced_allocation_of(&pod_requests(pod), ni)
}

fn balanced_allocation_of(req: &Resources, ni: &NodeInfo) -> i64 {
    let (ac, am) = alloc(ni);
    if ac == 0 || am == 0 {
        return 0;
    }
    let fc = ((ni.requested.milli_cpu + req.milli_cpu) as f64 / ac as f64).min(1.0);
    let fm = ((ni.requested.memory + req.memory) as f64 / am as f64).min(1.0);
    let std = (fc - fm).abs() / 2.0;
    ((1.0 - std) * 100.0) as i64
}

fn owner_uid(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
}

/// Raw spreading count: pods of the same owner on the node.
pub fn same_owner_count(pod: &Pod, ni: &NodeInfo) -> i64 {
    let Some(uid) = owner_uid(pod) else { return 0 };
    ni.pods
        .values()
        .filter(|p| owner_uid(p) == Some(uid))
        .count() as i64
}

/// Raw preferred node affinity: the sum of the weights of matching terms.
pub fn preferred_node_affinity(pod: &Pod, ni: &NodeInfo) -> i64 {
    let Some(node) = ni.node.as_ref() else {
        return 0;
    };
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|terms| {
            terms
                .iter()
                .filter(|t| term_matches(&t.preference, node))
                .map(|t| t.weight as i64)
                .sum()
        })
        .unwrap_or(0)
}

/// Total scores of feasible nodes (each plugin 0..=100, weight 1; spreading and preferred
/// affinity normalized over the feasible nodes like upstream's NormalizeScore).
pub fn score(pod: &Pod, feasible: &[&NodeInfo]) -> Vec<i64> {
    let (requests, nonzero) = (pod_requests(pod), pod_requests_nonzero(pod));
    let spread: Vec<i64> = feasible.iter().map(|n| same_owner_count(pod, n)).collect();
    let max_spread = spread.iter().copied().max().unwrap_or(0);
    let aff: Vec<i64> = feasible
        .iter()
        .map(|n| preferred_node_affinity(pod, n))
        .collect();
    let max_aff = aff.iter().copied().max().unwrap_or(0);
    feasible
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let s_spread = if max_spread == 0 {
                100
            } else {
                (max_spread - spread[i]) * 100 / max_spread
            };
            let s_aff = if max_aff == 0 {
                0
            } else {
                aff[i] * 100 / max_aff
            };
            least_allocated_of(&nonzero, n)
                + balanced_allocation_of(&requests, n)
                + s_spread * 2
                + s_aff * 2
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use std::sync::Arc;

    fn node(name: &str, cpu: &str, extra: serde_json::Value) -> Node {
        let mut v = serde_json::json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]}
        });
        merge(&mut v, extra);
        serde_json::from_value(v).unwrap()
    }

    fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
        if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b.clone()) {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(x) if x.is_object() && v.is_object() => merge(x, v),
                    _ => {
                        a.insert(k, v);
                    }
                }
            }
        }
    }

    fn pod(name: &str, cpu: &str, extra: serde_json::Value) -> Pod {
        let mut v = serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu}}}]}
        });
        merge(&mut v, extra);
        serde_json::from_value(v).unwrap()
    }

    fn infos(nodes: Vec<Node>, pods: Vec<(Pod, &str)>) -> Vec<NodeInfo> {
        let mut c = Cache::default();
        for n in nodes {
            c.upsert_node(Arc::new(n));
        }
        for (mut p, n) in pods {
            p.spec.as_mut().unwrap().node_name = Some(n.into());
            c.upsert_pod(Arc::new(p));
        }
        c.snapshot()
    }

    fn failures(p: &Pod, all: &[NodeInfo]) -> Vec<Failure> {
        all.iter().filter_map(|n| filter(p, n, all)).collect()
    }

    #[test]
    fn fit_error_message_has_upstreams_form() {
        let all = infos(
            vec![
                node("a", "1", serde_json::json!({})),
                node(
                    "b",
                    "8",
                    serde_json::json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
                ),
                node(
                    "c",
                    "8",
                    serde_json::json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
                ),
            ],
            vec![],
        );
        let p = pod("big", "2", serde_json::json!({}));
        let f = failures(&p, &all);
        assert_eq!(
            fit_error_message(3, &f),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}. \
             preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
             2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn tolerations_selectors_affinity_ports_and_anti_affinity() {
        let tainted = node(
            "t",
            "8",
            serde_json::json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
        );
        let tol = pod(
            "p",
            "1",
            serde_json::json!({"spec": {"tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}]}}),
        );
        let all = infos(vec![tainted.clone()], vec![]);
        assert!(filter(&tol, &all[0], &all).is_none());
        let exists = pod(
            "p",
            "1",
            serde_json::json!({"spec": {"tolerations": [{"operator": "Exists"}]}}),
        );
        assert!(filter(&exists, &all[0], &all).is_none());
        // nodeSelector and required affinity
        let ssd = node(
            "s",
            "8",
            serde_json::json!({"metadata": {"labels": {"disk": "ssd"}}}),
        );
        let plain = node("p", "8", serde_json::json!({}));
        let all = infos(vec![ssd, plain], vec![]);
        let sel = pod(
            "x",
            "1",
            serde_json::json!({"spec": {"nodeSelector": {"disk": "ssd"}}}),
        );
        let ok: Vec<String> = all
            .iter()
            .filter(|n| filter(&sel, n, &all).is_none())
            .map(|n| n.name())
            .collect();
        assert_eq!(ok, ["s"]);
        let aff = pod(
            "x",
            "1",
            serde_json::json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}]}}}}}),
        );
        let ok: Vec<String> = all
            .iter()
            .filter(|n| filter(&aff, n, &all).is_none())
            .map(|n| n.name())
            .collect();
        assert_eq!(ok, ["p"]);
        // host ports
        let hp = serde_json::json!({"spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}});
        let all = infos(
            vec![
                node("a", "8", serde_json::json!({})),
                node("b", "8", serde_json::json!({})),
            ],
            vec![(pod("old", "1", hp.clone()), "a")],
        );
        let newp = pod("new", "1", hp);
        let ok: Vec<String> = all
            .iter()
            .filter(|n| filter(&newp, n, &all).is_none())
            .map(|n| n.name())
            .collect();
        assert_eq!(ok, ["b"]);
        // anti-affinity on hostname
        let anti = serde_json::json!({"metadata": {"labels": {"app": "db"}}, "spec": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "db"}}}]}}}});
        let all = infos(
            vec![
                node("a", "8", serde_json::json!({})),
                node("b", "8", serde_json::json!({})),
            ],
            vec![(pod("db1", "1", anti.clone()), "a")],
        );
        let db2 = pod("db2", "1", anti);
        let ok: Vec<String> = all
            .iter()
            .filter(|n| filter(&db2, n, &all).is_none())
            .map(|n| n.name())
            .collect();
        assert_eq!(ok, ["b"]);
    }

    #[test]
    fn pods_count_and_unschedulable_and_not_ready() {
        let small = node(
            "a",
            "8",
            serde_json::json!({"status": {"allocatable": {"pods": "1"}}}),
        );
        let all = infos(
            vec![small],
            vec![(pod("x", "1", serde_json::json!({})), "a")],
        );
        let f = filter(&pod("y", "1", serde_json::json!({})), &all[0], &all).unwrap();
        assert_eq!(f.reasons, ["Too many pods"]);
        let cordoned = node(
            "c",
            "8",
            serde_json::json!({"spec": {"unschedulable": true}}),
        );
        assert_eq!(
            node_unschedulable(&pod("y", "1", serde_json::json!({})), &cordoned)
                .unwrap()
                .reasons,
            ["node(s) were unschedulable"]
        );
        let down = node(
            "d",
            "8",
            serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
        );
        assert!(node_ready(&pod("y", "1", serde_json::json!({})), &down).is_some());
    }

    #[test]
    fn scores_prefer_free_spread_and_preferred_affinity() {
        let owner = serde_json::json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "rs1", "controller": true}]}});
        let all = infos(
            vec![
                node("a", "8", serde_json::json!({})),
                node("b", "8", serde_json::json!({})),
            ],
            vec![(pod("x", "1", owner.clone()), "a")],
        );
        let p = pod("y", "1", owner);
        let refs: Vec<&NodeInfo> = all.iter().collect();
        let s = score(&p, &refs);
        assert!(s[1] > s[0], "{s:?}");
        let pref = pod(
            "z",
            "1",
            serde_json::json!({"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "preference": {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}]}}]}}}}),
        );
        let s = score(&pref, &refs);
        assert!(s[0] > s[1], "{s:?}");
        assert!(least_allocated(&p, &all[1]) > least_allocated(&p, &all[0]));
        assert!(balanced_allocation(&p, &all[1]) <= 100);
    }
}
