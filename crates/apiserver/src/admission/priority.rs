//! The Priority and PriorityClass admission plugins: a pod's priority from its
//! PriorityClass (or the global default), at most one default class, and the system classes
//! kept.

use std::sync::Arc;

use api::ResourceInfo;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::objects;
use crate::server::ApiServer;

fn priority_classes() -> &'static ResourceInfo {
    api::registry::find("scheduling.k8s.io", "v1", "priorityclasses")
        .expect("priorityclasses are registered")
}

/// A PriorityClass by name: from the watch cache, else from the store (a class created just
/// before the pod may not have reached the cache yet).
async fn priority_class(srv: &ApiServer, name: &str) -> Result<Option<Value>, ApiError> {
    let r = priority_classes();
    crate::handlers::cached_or_stored(srv, r, &r.key(None, name)).await
}

/// Whether a PriorityClass is marked as the global default.
fn is_global_default(pc: &Value) -> bool {
    pc.get("globalDefault").and_then(Value::as_bool) == Some(true)
}

/// Every PriorityClass with globalDefault set, from the watch cache.
async fn global_defaults(srv: &ApiServer) -> Vec<Arc<Value>> {
    let r = priority_classes();
    let revision = srv.cache.revision();
    srv.cache
        .resource(r)
        .snapshot(&r.key_prefix(), revision)
        .await
        .objects
        .into_iter()
        .filter(|pc| is_global_default(pc))
        .collect()
}

/// The Priority admission plugin on a new pod: `spec.priorityClassName` (or the global default
/// class, the one with the lowest value when several claim it) gives `spec.priority` and
/// `spec.preemptionPolicy`; a pod naming a missing class, or carrying a priority or policy that
/// differs from its class's, is forbidden.
pub async fn admit_pod_priority(srv: &ApiServer, pod: &mut Value) -> Result<(), ApiError> {
    let pods = api::registry::find("", "v1", "pods").expect("pods are registered");
    let name = objects::name(pod).to_string();
    let class_name = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let (class_name, priority, policy) = if class_name.is_empty() {
        let default = global_defaults(srv)
            .await
            .into_iter()
            .min_by_key(|pc| pc.get("value").and_then(Value::as_i64).unwrap_or(0));
        match default {
            Some(pc) => (
                objects::name(&pc).to_string(),
                pc.get("value").and_then(Value::as_i64).unwrap_or(0),
                class_policy(&pc),
            ),
            None => (String::new(), 0, "PreemptLowerPriority".to_string()),
        }
    } else {
        let pc = priority_class(srv, &class_name).await?.ok_or_else(|| {
            ApiError::forbidden(
                pods,
                &name,
                &format!("no PriorityClass with name {class_name} was found"),
            )
        })?;
        let value = pc.get("value").and_then(Value::as_i64).unwrap_or(0);
        (class_name, value, class_policy(&pc))
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64) {
        if given != priority {
            return Err(ApiError::forbidden(
                pods,
                &name,
                &format!("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"),
            ));
        }
    }
    if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str) {
        if given != policy {
            return Err(ApiError::forbidden(
                pods,
                &name,
                &format!("the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"),
            ));
        }
    }
    if !class_name.is_empty() {
        spec.insert("priorityClassName".into(), json!(class_name));
    }
    spec.insert("priority".into(), json!(priority));
    spec.insert("preemptionPolicy".into(), json!(policy));
    Ok(())
}

fn class_policy(pc: &Value) -> String {
    pc.get("preemptionPolicy")
        .and_then(Value::as_str)
        .unwrap_or("PreemptLowerPriority")
        .to_string()
}

/// The PriorityClass admission plugin: at most one class is the global default.
pub async fn admit_priority_class(srv: &ApiServer, class: &Value) -> Result<(), ApiError> {
    if !is_global_default(class) {
        return Ok(());
    }
    let name = objects::name(class);
    // Read from the store, not the watch cache: a default class created just before may not
    // have reached the cache yet, and this check guards a write.
    let r = priority_classes();
    let stored = srv
        .store
        .list(&r.key_prefix(), store::ListOptions::default())
        .await?;
    if let Some(other) = stored
        .items
        .iter()
        .filter_map(|kv| crate::cache::decode(&kv.value, kv.mod_revision).ok())
        .filter(is_global_default)
        .find(|pc| objects::name(pc) != name)
    {
        return Err(ApiError::forbidden(
            priority_classes(),
            name,
            &format!(
                "PriorityClass {} is already marked as default. Only one default can exist",
                objects::name(&other)
            ),
        ));
    }
    Ok(())
}

/// The system PriorityClasses cannot be deleted.
pub fn check_priority_class_delete(r: &ResourceInfo, name: &str) -> Result<(), ApiError> {
    if r.kind == "PriorityClass" && api::priority::system_class_value(name).is_some() {
        return Err(ApiError::forbidden(
            r,
            name,
            "this is a system priority class and cannot be deleted",
        ));
    }
    Ok(())
}
