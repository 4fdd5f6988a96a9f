//! Pod priority as scheduling.k8s.io defines it: the built-in system PriorityClasses, the
//! highest value a user-defined class may have, and the PriorityClass validation rules.

use serde_json::Value;

use crate::validation::FieldError;

/// The highest value of a user-defined PriorityClass (upstream's HighestUserDefinablePriority).
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;

/// Names starting with this are reserved for the system classes.
pub const SYSTEM_PREFIX: &str = "system-";

/// Upstream's SystemCriticalPriority (2 × HighestUserDefinablePriority).
pub const SYSTEM_CRITICAL_PRIORITY: i64 = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;

/// The built-in classes every cluster has: (name, value, description).
pub const SYSTEM_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        SYSTEM_CRITICAL_PRIORITY + 1000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        SYSTEM_CRITICAL_PRIORITY,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// The preemption policies a class or pod may name.
pub const PREEMPTION_POLICIES: &[&str] = &["Never", "PreemptLowerPriority"];

/// The value of a system class, or None when `name` is not one.
pub fn system_class_value(name: &str) -> Option<i64> {
    SYSTEM_CLASSES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, v, _)| *v)
}

/// Upstream's ValidatePriorityClass beyond object metadata: `system-` names are the built-in
/// classes with their own values, other classes stay at or below
/// [`HIGHEST_USER_DEFINABLE_PRIORITY`], and the preemption policy is a known one.
pub(crate) fn validate_priority_class(object: &Value, errs: &mut Vec<FieldError>) {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let value = object.get("value").and_then(Value::as_i64).unwrap_or(0);
    let global_default = object
        .get("globalDefault")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if name.starts_with(SYSTEM_PREFIX) {
        let known = match system_class_value(name) {
            None => Err(format!("{name:?} is not a known system priority class")),
            Some(v) if v != value => Err(format!("value of {name} PriorityClass must be {v}")),
            Some(_) if global_default => Err(format!(
                "globalDefault of {name} PriorityClass must be false"
            )),
            Some(_) => Ok(()),
        };
        if let Err(e) = known {
            errs.push(FieldError::forbidden(
                "metadata.name",
                &format!(
                    "priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system use only. error: {e}"
                ),
            ));
        }
    } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(FieldError::forbidden(
            "value",
            &format!(
                "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
            ),
        ));
    }
    if let Some(p) = object.get("preemptionPolicy").filter(|p| !p.is_null()) {
        if !p.as_str().is_some_and(|p| PREEMPTION_POLICIES.contains(&p)) {
            errs.push(FieldError::not_supported(
                "preemptionPolicy",
                p,
                PREEMPTION_POLICIES,
            ));
        }
    }
}

/// Upstream's ValidatePriorityClassUpdate: the value and the preemption policy never change.
pub(crate) fn validate_priority_class_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    if new.get("value").and_then(Value::as_i64) != old.get("value").and_then(Value::as_i64) {
        errs.push(FieldError::forbidden(
            "value",
            "may not be changed in an update.",
        ));
    }
    let policy = |v: &Value| v.get("preemptionPolicy").cloned().unwrap_or(Value::Null);
    if policy(new) != policy(old) {
        errs.push(FieldError::invalid(
            "preemptionPolicy",
            &policy(new),
            "field is immutable",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;
    use crate::validation::{validate_create, validate_update};
    use serde_json::json;

    fn class(name: &str, value: i64, extra: Value) -> Value {
        let mut v = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value});
        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        v
    }

    fn messages(object: &Value) -> Vec<String> {
        let r = find("scheduling.k8s.io", "v1", "priorityclasses").unwrap();
        validate_create(r, object)
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn user_classes_stay_below_the_system_range() {
        assert!(messages(&class("high", 1_000_000_000, json!({}))).is_empty());
        assert_eq!(
            messages(&class("too-high", 1_000_000_001, json!({}))),
            ["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
        );
        assert!(messages(&class("neg", -5, json!({}))).is_empty());
    }

    #[test]
    fn system_names_are_reserved_for_the_built_in_classes() {
        assert!(messages(&class("system-node-critical", 2_000_001_000, json!({}))).is_empty());
        let m = messages(&class("system-mine", 5, json!({})));
        assert_eq!(m.len(), 1);
        assert!(
            m[0].starts_with("metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only"),
            "{m:?}"
        );
        let m = messages(&class("system-cluster-critical", 7, json!({})));
        assert!(m[0].contains("must be 2000000000"), "{m:?}");
    }

    #[test]
    fn preemption_policy_is_known_and_value_and_policy_are_immutable() {
        let m = messages(&class("p", 1, json!({"preemptionPolicy": "Sometimes"})));
        assert_eq!(
            m,
            ["preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"Never\", \"PreemptLowerPriority\""]
        );
        let r = find("scheduling.k8s.io", "v1", "priorityclasses").unwrap();
        let old = class("p", 1, json!({"preemptionPolicy": "Never"}));
        let new = class("p", 2, json!({"preemptionPolicy": "PreemptLowerPriority"}));
        let m: Vec<String> = validate_update(r, &new, &old)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            m,
            [
                "value: Forbidden: may not be changed in an update.",
                "preemptionPolicy: Invalid value: \"PreemptLowerPriority\": field is immutable"
            ]
        );
        let same = class(
            "p",
            1,
            json!({"preemptionPolicy": "Never", "description": "new"}),
        );
        assert!(validate_update(r, &same, &old).is_empty());
    }
}
