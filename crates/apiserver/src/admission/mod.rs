//! Admission: what the apiserver changes or checks beyond defaulting and validation, as
//! upstream's admission chain runs it: mutating plugins (ServiceAccount, NodeRestriction,
//! Priority) on the decoded and defaulted object, then validating ones (PodSecurity,
//! PriorityClass) on the object the registry is about to store, plus the RBAC escalation check
//! of the RBAC registries. Also Service ClusterIP and NodePort allocation and pod status at
//! creation.

mod node_restriction;
mod plugins;
mod pod_security;
mod priority;
mod rbac_escalation;
mod request;
mod service_account;
mod services;

use serde_json::Value;

pub use plugins::{Plugin, PluginError, Plugins};
pub use priority::{admit_pod_priority, admit_priority_class, check_priority_class_delete};
pub use request::{admit_delete, mutate, validate, Operation, Request};
pub use services::{on_create, on_delete, on_update, restore, Allocations};

/// The QoS class of a pod, as the kubelet and apiserver compute it.
pub fn qos_class(pod: &Value) -> &'static str {
    let mut containers: Vec<&Value> = Vec::new();
    for field in ["containers", "initContainers"] {
        if let Some(a) = pod
            .pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
        {
            containers.extend(a.iter());
        }
    }
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        let relevant = |m: Option<&serde_json::Map<String, Value>>| {
            m.map(|m| {
                m.iter()
                    .filter(|(k, _)| k.as_str() == "cpu" || k.as_str() == "memory")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<std::collections::BTreeMap<_, _>>()
            })
            .unwrap_or_default()
        };
        let req = relevant(requests);
        let lim = relevant(limits);
        if !req.is_empty() || !lim.is_empty() {
            any = true;
        }
        // Guaranteed: cpu and memory limits set, and requests (defaulted to limits) equal.
        if lim.len() != 2 {
            guaranteed = false;
        }
        for (k, v) in &req {
            if lim.get(k) != Some(v) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn qos_classes() {
        assert_eq!(
            qos_class(&json!({"spec": {"containers": [{"name": "a"}]}})),
            "BestEffort"
        );
        assert_eq!(
            qos_class(&json!({"spec": {"containers": [{"name": "a", "resources": {
                "limits": {"cpu": "1", "memory": "1Gi"}}}]}})),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&json!({"spec": {"containers": [{"name": "a", "resources": {
                "requests": {"cpu": "100m"}}}]}})),
            "Burstable"
        );
    }
}
