//! Builders for tests, after upstream's `newRule`, `newClusterRoleBinding`, `newRoleBinding`
//! and `requestAttributeBuilder` in `plugin/pkg/auth/authorizer/rbac/rbac_test.go`.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{GROUP, SERVICE_ACCOUNT_KIND};
use crate::{Attributes, UserInfo};

fn split(list: &str) -> Option<Vec<String>> {
    (!list.is_empty()).then(|| list.split(',').map(str::to_string).collect())
}

/// A rule from comma-separated verbs, groups, resources and URLs ("" for none; for groups,
/// "" is the core group when there are resources).
pub fn rule(verbs: &str, groups: &str, resources: &str, urls: &str) -> PolicyRule {
    let api_groups = if resources.is_empty() {
        split(groups)
    } else {
        Some(groups.split(',').map(str::to_string).collect())
    };
    PolicyRule {
        verbs: split(verbs).unwrap_or_default(),
        api_groups,
        resources: split(resources),
        non_resource_urls: split(urls),
        resource_names: None,
    }
}

/// [`rule`] limited to resource names.
pub fn named_rule(verbs: &str, groups: &str, resources: &str, names: &str) -> PolicyRule {
    PolicyRule {
        resource_names: split(names),
        ..rule(verbs, groups, resources, "")
    }
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        ..ObjectMeta::default()
    }
}

/// A ClusterRole.
pub fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: meta(name, None),
        rules: Some(rules),
        aggregation_rule: None,
    }
}

/// A Role.
pub fn role(namespace: &str, name: &str, rules: Vec<PolicyRule>) -> Role {
    Role {
        metadata: meta(name, Some(namespace)),
        rules: Some(rules),
    }
}

/// Subjects from `Kind:name` (`ServiceAccount:ns:name` or `ServiceAccount::name` without a namespace).
pub fn subjects(specs: &[&str]) -> Vec<Subject> {
    specs
        .iter()
        .map(|spec| {
            let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
            if kind == SERVICE_ACCOUNT_KIND {
                let (namespace, name) = rest.split_once(':').unwrap_or(("", rest));
                return Subject {
                    kind: kind.into(),
                    name: name.into(),
                    namespace: (!namespace.is_empty()).then(|| namespace.into()),
                    api_group: None,
                };
            }
            Subject {
                kind: kind.into(),
                name: rest.into(),
                api_group: Some(GROUP.into()),
                namespace: None,
            }
        })
        .collect()
}

/// A ClusterRoleBinding named after its ClusterRole.
pub fn cluster_binding(role_name: &str, specs: &[&str]) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(role_name, None),
        role_ref: RoleRef {
            api_group: GROUP.into(),
            kind: "ClusterRole".into(),
            name: role_name.into(),
        },
        subjects: Some(subjects(specs)),
    }
}

/// A RoleBinding named after its role, to a `Role` or `ClusterRole`.
pub fn binding(namespace: &str, kind: &str, role_name: &str, specs: &[&str]) -> RoleBinding {
    RoleBinding {
        metadata: meta(role_name, Some(namespace)),
        role_ref: RoleRef {
            api_group: GROUP.into(),
            kind: kind.into(),
            name: role_name.into(),
        },
        subjects: Some(subjects(specs)),
    }
}

/// A user with comma-separated groups.
pub fn user(name: &str, groups: &str) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: split(groups).unwrap_or_default(),
        ..UserInfo::default()
    }
}

/// A resource request.
pub fn resource_request(
    user: UserInfo,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
) -> Attributes {
    Attributes {
        user,
        verb: verb.into(),
        resource_request: true,
        api_group: group.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        ..Attributes::default()
    }
}

/// A non-resource request.
pub fn path_request(user: UserInfo, verb: &str, path: &str) -> Attributes {
    Attributes {
        user,
        verb: verb.into(),
        path: path.into(),
        ..Attributes::default()
    }
}
