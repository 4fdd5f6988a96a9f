//! Upstream's bootstrap RBAC policy as of Kubernetes 1.33 with default feature gates: the
//! ClusterRoles, ClusterRoleBindings and namespaced Roles/RoleBindings the apiserver ensures
//! at start, and their reconciliation. Mirrors
//! `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/{policy.go,controller_policy.go,
//! namespace_policy.go}` and their rendered `testdata/*.yaml`. The data is built here and in
//! private submodules (general, component and controller roles); reconciliation is
//! [`reconcile_cluster_role`] and its siblings.

mod cluster_roles;
mod component_roles;
mod controller_roles;
mod reconcile;

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
    Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::rbac::{GROUP, GROUP_KIND, SERVICE_ACCOUNT_KIND, USER_KIND};

pub use reconcile::{
    reconcile_cluster_role, reconcile_cluster_role_binding, reconcile_role, reconcile_role_binding,
    Reconciliation,
};

/// The label every bootstrap object carries (with [`BOOTSTRAPPING_VALUE`]).
pub const BOOTSTRAPPING_LABEL: &str = "kubernetes.io/bootstrapping";
/// The value of [`BOOTSTRAPPING_LABEL`].
pub const BOOTSTRAPPING_VALUE: &str = "rbac-defaults";
/// The annotation that lets an administrator stop reconciliation by setting it to "false".
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
/// The label that aggregates a ClusterRole into `admin`.
pub const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
/// The label that aggregates a ClusterRole into `edit`.
pub const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
/// The label that aggregates a ClusterRole into `view`.
pub const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";
/// The prefix of the controllers' roles.
pub const CONTROLLER_ROLE_PREFIX: &str = "system:controller:";

/// The static rules of `system:node`, which the Node authorizer applies beside its graph.
pub fn node_rules() -> Vec<PolicyRule> {
    component_roles::node_rules()
}

/// Every bootstrap ClusterRole: the general ones, then the controllers' (`system:controller:*`),
/// each group sorted by name.
pub fn cluster_roles() -> Vec<ClusterRole> {
    let mut roles = cluster_roles::general();
    roles.extend(controller_roles());
    roles
}

/// The controllers' ClusterRoles (`system:controller:*`), sorted by name.
pub fn controller_roles() -> Vec<ClusterRole> {
    controller_roles::all()
}

/// Every bootstrap ClusterRoleBinding: the general ones, then one per controller role binding
/// it to the controller's ServiceAccount in kube-system.
pub fn cluster_role_bindings() -> Vec<ClusterRoleBinding> {
    let mut bindings = cluster_roles::general_bindings();
    bindings.extend(controller_role_bindings());
    bindings
}

/// `system:controller:<name>` bound to ServiceAccount `kube-system/<name>`, per controller role.
pub fn controller_role_bindings() -> Vec<ClusterRoleBinding> {
    controller_roles()
        .iter()
        .filter_map(|role| role.metadata.name.as_deref())
        .map(|name| {
            let account = name.strip_prefix(CONTROLLER_ROLE_PREFIX).unwrap_or(name);
            cluster_binding(name, vec![service_account("kube-system", account)])
        })
        .collect()
}

/// The namespaced bootstrap Roles (kube-public, then kube-system, each sorted by name).
pub fn roles() -> Vec<Role> {
    let configmaps_named =
        |verbs: &[&str], name: &str| named(verbs, &[""], &["configmaps"], &[name]);
    vec![
        role(
            "kube-public",
            "system:controller:bootstrap-signer",
            vec![
                rule(READ, &[""], &["configmaps"]),
                configmaps_named(&["update"], "cluster-info"),
                events_rule(),
            ],
        ),
        role(
            "kube-system",
            "extension-apiserver-authentication-reader",
            vec![configmaps_named(READ, "extension-apiserver-authentication")],
        ),
        role(
            "kube-system",
            "system::leader-locking-kube-controller-manager",
            vec![
                rule(&["watch"], &[""], &["configmaps"]),
                configmaps_named(&["get", "update"], "kube-controller-manager"),
                rule(
                    &["get", "watch", "list", "create", "update"],
                    &["coordination.k8s.io"],
                    &["leases"],
                ),
            ],
        ),
        role(
            "kube-system",
            "system::leader-locking-kube-scheduler",
            vec![
                rule(&["watch"], &[""], &["configmaps"]),
                configmaps_named(&["get", "update"], "kube-scheduler"),
            ],
        ),
        role(
            "kube-system",
            "system:controller:bootstrap-signer",
            vec![rule(READ, &[""], &["secrets"])],
        ),
        role(
            "kube-system",
            "system:controller:cloud-provider",
            vec![rule(
                &["create", "get", "list", "watch"],
                &[""],
                &["configmaps"],
            )],
        ),
        role(
            "kube-system",
            "system:controller:token-cleaner",
            vec![
                rule(&["get", "list", "watch", "delete"], &[""], &["secrets"]),
                events_rule(),
            ],
        ),
    ]
}

/// The namespaced bootstrap RoleBindings (kube-public, then kube-system, each sorted by name).
pub fn role_bindings() -> Vec<RoleBinding> {
    let sa = |name: &str| service_account("kube-system", name);
    vec![
        role_binding(
            "kube-public",
            "system:controller:bootstrap-signer",
            "system:controller:bootstrap-signer",
            vec![sa("bootstrap-signer")],
        ),
        role_binding(
            "kube-system",
            "system::extension-apiserver-authentication-reader",
            "extension-apiserver-authentication-reader",
            vec![
                user("system:kube-controller-manager"),
                user("system:kube-scheduler"),
            ],
        ),
        role_binding(
            "kube-system",
            "system::leader-locking-kube-controller-manager",
            "system::leader-locking-kube-controller-manager",
            vec![
                user("system:kube-controller-manager"),
                sa("kube-controller-manager"),
                sa("leader-election-controller"),
            ],
        ),
        role_binding(
            "kube-system",
            "system::leader-locking-kube-scheduler",
            "system::leader-locking-kube-scheduler",
            vec![user("system:kube-scheduler"), sa("kube-scheduler")],
        ),
        role_binding(
            "kube-system",
            "system:controller:bootstrap-signer",
            "system:controller:bootstrap-signer",
            vec![sa("bootstrap-signer")],
        ),
        role_binding(
            "kube-system",
            "system:controller:cloud-provider",
            "system:controller:cloud-provider",
            vec![sa("cloud-provider")],
        ),
        role_binding(
            "kube-system",
            "system:controller:token-cleaner",
            "system:controller:token-cleaner",
            vec![sa("token-cleaner")],
        ),
    ]
}

// Builders for the policy tables. Like upstream's `PolicyRuleBuilder.Rule()`, each sorts
// the lists it is given, so the data reads as the rendered testdata does.

/// `get list watch`.
const READ: &[&str] = &["get", "list", "watch"];
/// `create update patch delete deletecollection`.
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
/// [`READ`] and [`WRITE`].
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];
/// `get list watch update patch`.
const READ_UPDATE: &[&str] = &["get", "list", "watch", "update", "patch"];

fn sorted(items: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

fn present(items: &[&str]) -> Option<Vec<String>> {
    (!items.is_empty()).then(|| sorted(items))
}

/// A resource rule.
fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    named(verbs, groups, resources, &[])
}

/// A resource rule limited to some names.
fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: sorted(verbs),
        api_groups: Some(sorted(groups)),
        resources: present(resources),
        resource_names: present(names),
        non_resource_urls: None,
    }
}

/// A non-resource rule.
fn urls(verbs: &[&str], paths: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: sorted(verbs),
        non_resource_urls: present(paths),
        ..PolicyRule::default()
    }
}

/// Upstream's `eventsRule()`: write events in the core and events.k8s.io groups.
fn events_rule() -> PolicyRule {
    rule(
        &["create", "update", "patch"],
        &["", "events.k8s.io"],
        &["events"],
    )
}

fn metadata(name: &str, namespace: Option<&str>, extra_labels: &[(&str, &str)]) -> ObjectMeta {
    let mut labels = BTreeMap::from([(
        BOOTSTRAPPING_LABEL.to_string(),
        BOOTSTRAPPING_VALUE.to_string(),
    )]);
    labels.extend(
        extra_labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels),
        annotations: Some(BTreeMap::from([(
            AUTOUPDATE_ANNOTATION.to_string(),
            "true".to_string(),
        )])),
        ..ObjectMeta::default()
    }
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: metadata(name, None, &[]),
        rules: Some(rules),
        aggregation_rule: None,
    }
}

/// A ClusterRole with extra labels (the aggregate-to-* ones).
fn labelled_cluster_role(
    name: &str,
    labels: &[(&str, &str)],
    rules: Vec<PolicyRule>,
) -> ClusterRole {
    ClusterRole {
        metadata: metadata(name, None, labels),
        rules: Some(rules),
        aggregation_rule: None,
    }
}

/// An aggregated ClusterRole: no rules of its own, filled by the aggregation controller from
/// the roles labelled `aggregate_label: "true"`.
fn aggregated_cluster_role(
    name: &str,
    labels: &[(&str, &str)],
    aggregate_label: &str,
) -> ClusterRole {
    ClusterRole {
        metadata: metadata(name, None, labels),
        rules: None,
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: Some(vec![LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    aggregate_label.to_string(),
                    "true".to_string(),
                )])),
                match_expressions: None,
            }]),
        }),
    }
}

fn role(namespace: &str, name: &str, rules: Vec<PolicyRule>) -> Role {
    Role {
        metadata: metadata(name, Some(namespace), &[]),
        rules: Some(rules),
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: GROUP.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
    }
}

fn cluster_binding(role_name: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: metadata(role_name, None, &[]),
        role_ref: role_ref("ClusterRole", role_name),
        subjects: (!subjects.is_empty()).then_some(subjects),
    }
}

fn role_binding(
    namespace: &str,
    name: &str,
    role_name: &str,
    subjects: Vec<Subject>,
) -> RoleBinding {
    RoleBinding {
        metadata: metadata(name, Some(namespace), &[]),
        role_ref: role_ref("Role", role_name),
        subjects: Some(subjects),
    }
}

fn user(name: &str) -> Subject {
    Subject {
        api_group: Some(GROUP.to_string()),
        kind: USER_KIND.to_string(),
        name: name.to_string(),
        namespace: None,
    }
}

fn group(name: &str) -> Subject {
    Subject {
        api_group: Some(GROUP.to_string()),
        kind: GROUP_KIND.to_string(),
        name: name.to_string(),
        namespace: None,
    }
}

fn service_account(namespace: &str, name: &str) -> Subject {
    Subject {
        api_group: None,
        kind: SERVICE_ACCOUNT_KIND.to_string(),
        name: name.to_string(),
        namespace: Some(namespace.to_string()),
    }
}

#[cfg(test)]
#[path = "policy/policy_tests.rs"]
mod policy_tests;
