//! rbac.authorization.k8s.io/v1 defaults (upstream's pkg/apis/rbac/v1/defaults.go); the
//! validation of the RBAC kinds is in `validation/rbac.rs`.

use serde_json::{json, Value};

/// The API group of Role, ClusterRole, RoleBinding and ClusterRoleBinding.
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// upstream's SetDefaults_RoleBinding / SetDefaults_ClusterRoleBinding and SetDefaults_Subject:
/// roleRef.apiGroup is rbac.authorization.k8s.io when empty; a User or Group subject without an
/// apiGroup gets rbac.authorization.k8s.io (a ServiceAccount's stays "").
pub fn default_binding(object: &mut Value) {
    let empty = |v: Option<&Value>| v.and_then(Value::as_str).is_none_or(str::is_empty);
    if let Some(role_ref) = object.get_mut("roleRef").and_then(Value::as_object_mut) {
        if empty(role_ref.get("apiGroup")) {
            role_ref.insert("apiGroup".into(), json!(GROUP));
        }
    }
    let subjects = object.get_mut("subjects").and_then(Value::as_array_mut);
    for subject in subjects.into_iter().flatten() {
        let Some(subject) = subject.as_object_mut() else {
            continue;
        };
        let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
        if matches!(kind, "User" | "Group") && empty(subject.get("apiGroup")) {
            subject.insert("apiGroup".into(), json!(GROUP));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_default_role_ref_and_subject_groups() {
        let mut b = json!({"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [
            {"kind": "User", "name": "jane"},
            {"kind": "Group", "name": "devs", "apiGroup": ""},
            {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"},
            {"kind": "User", "name": "x", "apiGroup": "example.com"},
        ]});
        default_binding(&mut b);
        assert_eq!(b["roleRef"]["apiGroup"], GROUP);
        assert_eq!(b["subjects"][0]["apiGroup"], GROUP);
        assert_eq!(b["subjects"][1]["apiGroup"], GROUP);
        assert!(b["subjects"][2].get("apiGroup").is_none());
        assert_eq!(b["subjects"][3]["apiGroup"], "example.com");
    }
}
