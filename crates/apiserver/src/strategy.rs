//! Per-kind rules of the generic verbs, as upstream's registry strategies have them
//! (pkg/registry/*/*/strategy.go): what PrepareForCreate resets or fills, whether
//! metadata.generation tracks the spec, and how the scale subresource reads the selector.
//! The generic handlers ask [`of`] and never branch on kind names for these.

use api::ResourceInfo;
use serde_json::{json, Value};

use crate::objects;

/// The rules of one kind; the defaults are those of most kinds.
pub trait Strategy: Sync {
    /// metadata.generation starts at 1 and grows with every spec change.
    fn tracks_generation(&self) -> bool {
        false
    }

    /// PrepareForCreate: status is the controllers' and kubelets' to write, so a new object
    /// starts without one (its wire form then has the zero status, a Service's
    /// `{loadBalancer: {}}`).
    fn prepare_for_create(&self, r: &ResourceInfo, obj: &mut Value) {
        if r.has_subresource(api::Subresource::Status) {
            if let Some(map) = obj.as_object_mut() {
                map.remove("status");
            }
        }
    }

    /// The label selector of the scale subresource's status, as a string (`app=web`).
    fn scale_selector(&self, obj: &Value) -> String {
        obj.pointer("/spec/selector")
            .map(crate::filter::selector_string)
            .unwrap_or_default()
    }
}

/// Kinds with nothing special.
struct Plain;
impl Strategy for Plain {}

/// Workloads (apps, batch, autoscaling): generation follows the spec.
struct Workload;
impl Strategy for Workload {
    fn tracks_generation(&self) -> bool {
        true
    }
}

/// Nodes keep the status they register with.
struct Node;
impl Strategy for Node {
    fn prepare_for_create(&self, _r: &ResourceInfo, _obj: &mut Value) {}
}

/// Namespaces start Active.
struct Namespace;
impl Strategy for Namespace {
    fn prepare_for_create(&self, _r: &ResourceInfo, obj: &mut Value) {
        obj["status"] = json!({"phase": "Active"});
    }
}

/// PersistentVolumes start Pending, with the time of that phase.
struct PersistentVolume;
impl Strategy for PersistentVolume {
    fn prepare_for_create(&self, _r: &ResourceInfo, obj: &mut Value) {
        obj["status"] = json!({
            "phase": "Pending",
            "lastPhaseTransitionTime": objects::now_rfc3339(),
        });
    }
}

/// core/v1 ReplicationController: a generation like the apps workloads, and a selector that is
/// a plain label map.
struct ReplicationController;
impl Strategy for ReplicationController {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn scale_selector(&self, obj: &Value) -> String {
        let mut pairs: Vec<String> = obj
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        pairs.sort();
        pairs.join(",")
    }
}

/// The strategy of a resource.
pub fn of(r: &ResourceInfo) -> &'static dyn Strategy {
    match (r.group, r.kind) {
        ("", "Node") => &Node,
        ("", "Namespace") => &Namespace,
        ("", "PersistentVolume") => &PersistentVolume,
        ("", "ReplicationController") => &ReplicationController,
        ("apps" | "batch" | "autoscaling", _) => &Workload,
        _ => &Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(plural: &str) -> &'static ResourceInfo {
        api::RESOURCES.iter().find(|r| r.plural == plural).unwrap()
    }

    #[test]
    fn create_resets_status_except_for_nodes() {
        let mut svc = json!({"status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
        let r = resource("services");
        of(r).prepare_for_create(r, &mut svc);
        assert!(svc.get("status").is_none());
        let mut node = json!({"status": {"capacity": {"cpu": "2"}}});
        let r = resource("nodes");
        of(r).prepare_for_create(r, &mut node);
        assert_eq!(node["status"]["capacity"]["cpu"], "2");
        let mut ns = json!({"status": {"phase": "Terminating"}});
        let r = resource("namespaces");
        of(r).prepare_for_create(r, &mut ns);
        assert_eq!(ns["status"], json!({"phase": "Active"}));
        let mut pv = json!({"status": {"phase": "Bound"}});
        let r = resource("persistentvolumes");
        of(r).prepare_for_create(r, &mut pv);
        assert_eq!(pv["status"]["phase"], "Pending");
    }

    #[test]
    fn replication_controller_selectors_are_label_maps() {
        let r = resource("replicationcontrollers");
        assert!(of(r).tracks_generation());
        let rc = json!({"spec": {"selector": {"tier": "web", "app": "a"}}});
        assert_eq!(of(r).scale_selector(&rc), "app=a,tier=web");
        let r = resource("replicasets");
        let rs = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}}});
        assert_eq!(of(r).scale_selector(&rs), "app=a");
        assert!(!of(resource("configmaps")).tracks_generation());
    }
}
