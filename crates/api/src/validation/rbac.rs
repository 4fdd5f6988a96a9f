//! rbac.authorization.k8s.io/v1 validation, as upstream's pkg/apis/rbac/validation/validation.go
//! has it: ValidateRole, ValidateClusterRole (with its aggregationRule), ValidatePolicyRule,
//! ValidateRoleBinding, ValidateClusterRoleBinding, ValidateRoleBindingSubject, and the
//! roleRef that never changes (ValidateRoleBindingUpdate). Object names are checked by the
//! caller with [`super::NameRule::PathSegment`] (upstream's ValidateRBACName).

use serde_json::Value;

use super::{arr, child, index, is_dns1123_subdomain, s, workloads, FieldError, NameRule};

/// The API group of the RBAC kinds, the only roleRef.apiGroup upstream accepts.
pub const GROUP: &str = crate::rbac::GROUP;

/// Role: every rule, namespaced (no nonResourceURLs).
pub(crate) fn validate_role(object: &Value, errs: &mut Vec<FieldError>) {
    validate_rules(object, true, errs);
}

/// ClusterRole: every rule, and an aggregationRule with at least one valid selector.
pub(crate) fn validate_cluster_role(object: &Value, errs: &mut Vec<FieldError>) {
    validate_rules(object, false, errs);
    let Some(rule) = object.get("aggregationRule").filter(|v| !v.is_null()) else {
        return;
    };
    let path = "aggregationRule.clusterRoleSelectors";
    let selectors = arr(rule, "clusterRoleSelectors");
    if selectors.is_empty() {
        errs.push(FieldError::required(
            path,
            "at least one clusterRoleSelector required if aggregationRule is non-nil",
        ));
    }
    for (i, selector) in selectors.iter().enumerate() {
        workloads::validate_label_selector(selector, &index(path, i), errs);
    }
}

fn validate_rules(object: &Value, namespaced: bool, errs: &mut Vec<FieldError>) {
    for (i, rule) in arr(object, "rules").iter().enumerate() {
        validate_policy_rule(rule, namespaced, &index("rules", i), errs);
    }
}

/// `[]string{"a", "b"}`, Go's %#v of a string slice.
fn go_strings(list: &[Value]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|v| format!("{:?}", v.as_str().unwrap_or("")))
        .collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// Upstream's ValidatePolicyRule.
fn validate_policy_rule(rule: &Value, namespaced: bool, path: &str, errs: &mut Vec<FieldError>) {
    if arr(rule, "verbs").is_empty() {
        errs.push(FieldError::required(
            child(path, "verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = arr(rule, "nonResourceURLs");
    if !urls.is_empty() {
        if namespaced {
            errs.push(FieldError::invalid_raw(
                child(path, "nonResourceURLs"),
                &go_strings(urls),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !arr(rule, "apiGroups").is_empty()
            || !arr(rule, "resources").is_empty()
            || !arr(rule, "resourceNames").is_empty()
        {
            errs.push(FieldError::invalid_raw(
                child(path, "nonResourceURLs"),
                &go_strings(urls),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return;
    }
    if arr(rule, "apiGroups").is_empty() {
        errs.push(FieldError::required(
            child(path, "apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if arr(rule, "resources").is_empty() {
        errs.push(FieldError::required(
            child(path, "resources"),
            "resource rules must supply at least one resource",
        ));
    }
}

/// RoleBinding: roleRef to a Role or ClusterRole of this group, and its subjects.
pub(crate) fn validate_role_binding(object: &Value, errs: &mut Vec<FieldError>) {
    validate_binding(object, &["Role", "ClusterRole"], true, errs);
}

/// ClusterRoleBinding: roleRef to a ClusterRole only; ServiceAccounts need a namespace.
pub(crate) fn validate_cluster_role_binding(object: &Value, errs: &mut Vec<FieldError>) {
    validate_binding(object, &["ClusterRole"], false, errs);
}

fn validate_binding(object: &Value, kinds: &[&str], namespaced: bool, errs: &mut Vec<FieldError>) {
    let empty = Value::Object(Default::default());
    let role_ref = object.get("roleRef").unwrap_or(&empty);
    let text = |k: &str| Value::String(s(role_ref, k).to_string());
    if s(role_ref, "apiGroup") != GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            &text("apiGroup"),
            &[GROUP],
        ));
    }
    if !kinds.contains(&s(role_ref, "kind")) {
        errs.push(FieldError::not_supported(
            "roleRef.kind",
            &text("kind"),
            kinds,
        ));
    }
    let name = s(role_ref, "name");
    if name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        for msg in NameRule::PathSegment.check(name) {
            errs.push(FieldError::invalid("roleRef.name", &text("name"), &msg));
        }
    }
    for (i, subject) in arr(object, "subjects").iter().enumerate() {
        validate_subject(subject, namespaced, &index("subjects", i), errs);
    }
}

/// Upstream's ValidateRoleBindingSubject.
fn validate_subject(subject: &Value, namespaced: bool, path: &str, errs: &mut Vec<FieldError>) {
    let name = s(subject, "name");
    let api_group = Value::String(s(subject, "apiGroup").to_string());
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    }
    match s(subject, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for msg in is_dns1123_subdomain(name) {
                    errs.push(FieldError::invalid(
                        child(path, "name"),
                        &Value::String(name.to_string()),
                        &msg,
                    ));
                }
            }
            if !s(subject, "apiGroup").is_empty() {
                errs.push(FieldError::not_supported(
                    child(path, "apiGroup"),
                    &api_group,
                    &[""],
                ));
            }
            if !namespaced && s(subject, "namespace").is_empty() {
                errs.push(FieldError::required(child(path, "namespace"), ""));
            }
        }
        "User" | "Group" => {
            if s(subject, "apiGroup") != GROUP {
                errs.push(FieldError::not_supported(
                    child(path, "apiGroup"),
                    &api_group,
                    &[GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            child(path, "kind"),
            &Value::String(other.to_string()),
            &["ServiceAccount", "User", "Group"],
        )),
    }
}

/// Upstream's ValidateRoleBindingUpdate: the roleRef stays what it was.
pub(crate) fn validate_binding_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let part = |v: &Value, k: &str| {
        v.get("roleRef")
            .map(|r| s(r, k).to_string())
            .unwrap_or_default()
    };
    let changed = ["apiGroup", "kind", "name"]
        .iter()
        .any(|k| part(new, k) != part(old, k));
    if changed {
        let rendered = format!(
            "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
            part(new, "apiGroup"),
            part(new, "kind"),
            part(new, "name")
        );
        errs.push(FieldError::invalid_raw(
            "roleRef",
            &rendered,
            "cannot change roleRef",
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::{messages, res};
    use super::super::{prune_unknown_fields, validate_create, validate_update};

    #[test]
    fn unknown_fields_are_pruned_through_the_typed_structs() {
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "r"}, "rules": [{"verbs": ["get"], "apiGroups": [""],
            "resources": ["pods"], "bogus": 1}],
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}});
        let (pruned, unknown) = prune_unknown_fields(res("clusterroles"), role).unwrap();
        assert_eq!(unknown, vec!["rules[0].bogus"]);
        assert!(pruned["rules"][0].get("bogus").is_none());
        assert_eq!(
            pruned["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]["a"],
            "b"
        );
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "b"}, "roleRef": "view"});
        let err = prune_unknown_fields(res("rolebindings"), binding).unwrap_err();
        assert!(err.contains("RoleBinding.roleRef"), "{err}");
    }

    #[test]
    fn rules_need_verbs_and_groups_and_resources() {
        let role = json!({"metadata": {"name": "r", "namespace": "default"},
            "rules": [{"resources": ["pods"]}, {"verbs": ["get"], "apiGroups": [""]}]});
        assert_eq!(
            messages(&validate_create(res("roles"), &role)),
            vec![
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[1].resources: Required value: resource rules must supply at least one resource",
            ]
        );
    }

    #[test]
    fn non_resource_urls_only_in_cluster_roles_and_alone() {
        let rule = json!({"verbs": ["get"], "nonResourceURLs": ["/healthz"]});
        let role = json!({"metadata": {"name": "r", "namespace": "default"}, "rules": [rule]});
        assert_eq!(
            messages(&validate_create(res("roles"), &role)),
            vec!["rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs"]
        );
        let cluster = json!({"metadata": {"name": "r"}, "rules": [rule]});
        assert!(validate_create(res("clusterroles"), &cluster).is_empty());
        let mixed = json!({"metadata": {"name": "r"}, "rules": [{"verbs": ["get"],
            "nonResourceURLs": ["/a", "/b"], "resources": ["pods"]}]});
        assert_eq!(
            messages(&validate_create(res("clusterroles"), &mixed)),
            vec!["rules[0].nonResourceURLs: Invalid value: []string{\"/a\", \"/b\"}: rules cannot apply to both regular resources and non-resource URLs"]
        );
    }

    #[test]
    fn aggregation_rule_needs_valid_selectors() {
        let empty = json!({"metadata": {"name": "agg"}, "aggregationRule": {}});
        assert_eq!(
            messages(&validate_create(res("clusterroles"), &empty)),
            vec!["aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"]
        );
        let bad = json!({"metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [
            {"matchExpressions": [{"key": "a", "operator": "In"}]}]}});
        assert_eq!(
            messages(&validate_create(res("clusterroles"), &bad)),
            vec!["aggregationRule.clusterRoleSelectors[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"]
        );
        let good = json!({"metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": {"rbac.example.com/aggregate-to-agg": "true"}}]}});
        assert!(validate_create(res("clusterroles"), &good).is_empty());
    }

    #[test]
    fn names_are_path_segments() {
        let role = json!({"metadata": {"name": "system:a/b", "namespace": "default"}});
        assert_eq!(
            messages(&validate_create(res("roles"), &role)),
            vec!["metadata.name: Invalid value: \"system:a/b\": may not contain '/'"]
        );
        let ok = json!({"metadata": {"name": "system:controller:x"}});
        assert!(validate_create(res("clusterroles"), &ok).is_empty());
    }

    #[test]
    fn role_ref_must_name_a_role_of_this_group() {
        let binding = json!({"metadata": {"name": "b", "namespace": "default"},
            "roleRef": {"apiGroup": "example.com", "kind": "Secret"}});
        assert_eq!(
            messages(&validate_create(res("rolebindings"), &binding)),
            vec![
                "roleRef.apiGroup: Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\"",
                "roleRef.kind: Unsupported value: \"Secret\": supported values: \"Role\", \"ClusterRole\"",
                "roleRef.name: Required value",
            ]
        );
        let cluster = json!({"metadata": {"name": "b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ".."}});
        assert_eq!(
            messages(&validate_create(res("clusterrolebindings"), &cluster)),
            vec![
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "roleRef.name: Invalid value: \"..\": may not be '..'",
            ]
        );
    }

    #[test]
    fn subjects_by_kind() {
        let role_ref = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
            "name": "view"});
        let subjects = json!([
            {"kind": "ServiceAccount", "name": "Bad_Name", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "User", "name": "jane", "apiGroup": ""},
            {"kind": "Group", "name": ""},
            {"kind": "Robot", "name": "r2"},
        ]);
        let binding = json!({"metadata": {"name": "b"}, "roleRef": role_ref,
            "subjects": subjects});
        let m = messages(&validate_create(res("clusterrolebindings"), &binding));
        assert_eq!(m.len(), 7, "{m:#?}");
        assert!(m[0].starts_with(
            "subjects[0].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ));
        assert_eq!(m[1], "subjects[0].apiGroup: Unsupported value: \"rbac.authorization.k8s.io\": supported values: \"\"");
        assert_eq!(m[2], "subjects[0].namespace: Required value");
        assert_eq!(m[3], "subjects[1].apiGroup: Unsupported value: \"\": supported values: \"rbac.authorization.k8s.io\"");
        assert_eq!(m[4], "subjects[2].name: Required value");
        assert_eq!(m[5], "subjects[2].apiGroup: Unsupported value: \"\": supported values: \"rbac.authorization.k8s.io\"");
        assert_eq!(m[6], "subjects[3].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"");
        // the namespaced binding does not need the ServiceAccount's namespace
        let rb = json!({"metadata": {"name": "b", "namespace": "default"}, "roleRef": role_ref,
            "subjects": [{"kind": "ServiceAccount", "name": "builder"}]});
        assert!(validate_create(res("rolebindings"), &rb).is_empty());
    }

    #[test]
    fn role_ref_cannot_change() {
        let old = json!({"metadata": {"name": "b", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}});
        let mut new = old.clone();
        new["roleRef"]["name"] = json!("edit");
        assert_eq!(
            messages(&validate_update(res("rolebindings"), &new, &old)),
            vec!["roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"]
        );
        let mut same = old.clone();
        same["subjects"] = json!([{"kind": "User", "name": "a",
            "apiGroup": "rbac.authorization.k8s.io"}]);
        assert!(validate_update(res("rolebindings"), &same, &old).is_empty());
    }
}
