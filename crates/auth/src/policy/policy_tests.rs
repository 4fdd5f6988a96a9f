//! The bootstrap policy against the facts of upstream's rendered 1.33 testdata
//! (`bootstrappolicy/testdata/{cluster-roles,controller-roles,cluster-role-bindings,
//! controller-role-bindings,namespace-roles,namespace-role-bindings}.yaml` with default
//! feature gates): names, rule counts per role, key rules and subjects, so drift is caught.

use std::collections::BTreeSet;

use super::*;
use crate::rbac::{aggregated_rules, covers, rule_allows};
use crate::{Attributes, UserInfo};

/// Each general ClusterRole of cluster-roles.yaml with its number of rules.
const GENERAL_ROLES: &[(&str, usize)] = &[
    ("admin", 0),
    ("cluster-admin", 2),
    ("edit", 0),
    ("system:aggregate-to-admin", 2),
    ("system:aggregate-to-edit", 13),
    ("system:aggregate-to-view", 10),
    ("system:auth-delegator", 2),
    ("system:basic-user", 2),
    (
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        1,
    ),
    (
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        1,
    ),
    (
        "system:certificates.k8s.io:kube-apiserver-client-approver",
        1,
    ),
    (
        "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
        1,
    ),
    ("system:certificates.k8s.io:kubelet-serving-approver", 1),
    ("system:certificates.k8s.io:legacy-unknown-approver", 1),
    ("system:discovery", 1),
    ("system:heapster", 2),
    ("system:kube-aggregator", 1),
    ("system:kube-controller-manager", 11),
    ("system:kube-dns", 1),
    ("system:kube-scheduler", 18),
    ("system:kubelet-api-admin", 4),
    ("system:monitoring", 1),
    ("system:node", 22),
    ("system:node-bootstrapper", 1),
    ("system:node-problem-detector", 3),
    ("system:node-proxier", 5),
    ("system:persistent-volume-provisioner", 5),
    ("system:public-info-viewer", 1),
    ("system:service-account-issuer-discovery", 1),
    ("system:volume-scheduler", 3),
    ("view", 0),
];

/// Each controller ClusterRole of controller-roles.yaml (without `system:controller:`) with
/// its number of rules.
const CONTROLLER_ROLES: &[(&str, usize)] = &[
    ("attachdetach-controller", 8),
    ("certificate-controller", 6),
    ("clusterrole-aggregation-controller", 1),
    ("cronjob-controller", 6),
    ("daemon-set-controller", 8),
    ("deployment-controller", 6),
    ("disruption-controller", 9),
    ("endpoint-controller", 4),
    ("endpointslice-controller", 4),
    ("endpointslicemirroring-controller", 5),
    ("ephemeral-volume-controller", 4),
    ("expand-controller", 5),
    ("generic-garbage-collector", 2),
    ("horizontal-pod-autoscaler", 8),
    ("job-controller", 5),
    ("legacy-service-account-token-cleaner", 2),
    ("namespace-controller", 3),
    ("node-controller", 5),
    ("persistent-volume-binder", 10),
    ("pod-garbage-collector", 3),
    ("pv-protection-controller", 2),
    ("pvc-protection-controller", 3),
    ("replicaset-controller", 5),
    ("replication-controller", 5),
    ("resourcequota-controller", 3),
    ("root-ca-cert-publisher", 2),
    ("route-controller", 3),
    ("selinux-warning-controller", 5),
    ("service-account-controller", 2),
    ("service-cidrs-controller", 5),
    ("service-controller", 4),
    ("statefulset-controller", 10),
    ("ttl-after-finished-controller", 2),
    ("ttl-controller", 2),
    ("validatingadmissionpolicy-status-controller", 3),
];

fn find<'a>(roles: &'a [ClusterRole], name: &str) -> &'a ClusterRole {
    roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no role {name}"))
}

fn rules_of<'a>(roles: &'a [ClusterRole], name: &str) -> &'a [PolicyRule] {
    find(roles, name).rules.as_deref().unwrap_or_default()
}

fn is_bootstrap(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(BOOTSTRAPPING_LABEL))
        .map(String::as_str)
        == Some(BOOTSTRAPPING_VALUE)
        && meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(AUTOUPDATE_ANNOTATION))
            .map(String::as_str)
            == Some("true")
}

#[test]
fn cluster_roles_are_upstreams_with_their_rule_counts() {
    let roles = cluster_roles();
    let expected: Vec<(String, usize)> = GENERAL_ROLES
        .iter()
        .map(|(n, c)| (n.to_string(), *c))
        .chain(
            CONTROLLER_ROLES
                .iter()
                .map(|(n, c)| (format!("{CONTROLLER_ROLE_PREFIX}{n}"), *c)),
        )
        .collect();
    let actual: Vec<(String, usize)> = roles
        .iter()
        .map(|r| {
            (
                r.metadata.name.clone().unwrap_or_default(),
                r.rules.as_ref().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(actual, expected);
    assert_eq!(controller_roles().len(), 35);
}

#[test]
fn every_bootstrap_object_is_labelled_and_auto_updated() {
    for r in cluster_roles() {
        assert!(is_bootstrap(&r.metadata), "{:?}", r.metadata.name);
    }
    for b in cluster_role_bindings() {
        assert!(is_bootstrap(&b.metadata), "{:?}", b.metadata.name);
    }
    for r in roles() {
        assert!(is_bootstrap(&r.metadata), "{:?}", r.metadata.name);
    }
    for b in role_bindings() {
        assert!(is_bootstrap(&b.metadata), "{:?}", b.metadata.name);
    }
}

#[test]
fn rules_are_sorted_like_rule_or_die() {
    let all = cluster_roles()
        .into_iter()
        .flat_map(|r| r.rules.unwrap_or_default());
    for rule in all.chain(
        roles()
            .into_iter()
            .flat_map(|r| r.rules.unwrap_or_default()),
    ) {
        for list in [
            Some(&rule.verbs),
            rule.api_groups.as_ref(),
            rule.resources.as_ref(),
            rule.resource_names.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            let mut sorted = list.clone();
            sorted.sort();
            assert_eq!(list, &sorted, "{rule:?}");
        }
    }
}

#[test]
fn aggregation_labels_and_selectors_are_upstreams() {
    let roles = cluster_roles();
    let selector_label = |name: &str| {
        let rule = find(&roles, name)
            .aggregation_rule
            .clone()
            .unwrap_or_default();
        let selectors = rule.cluster_role_selectors.unwrap_or_default();
        assert_eq!(selectors.len(), 1, "{name}");
        selectors[0]
            .match_labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        selector_label("admin"),
        vec![(AGGREGATE_TO_ADMIN.to_string(), "true".to_string())]
    );
    assert_eq!(
        selector_label("edit"),
        vec![(AGGREGATE_TO_EDIT.to_string(), "true".to_string())]
    );
    assert_eq!(
        selector_label("view"),
        vec![(AGGREGATE_TO_VIEW.to_string(), "true".to_string())]
    );
    let label = |name: &str, key: &str| {
        find(&roles, name)
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
    };
    assert_eq!(label("edit", AGGREGATE_TO_ADMIN).as_deref(), Some("true"));
    assert_eq!(label("view", AGGREGATE_TO_EDIT).as_deref(), Some("true"));
    assert_eq!(
        label("system:aggregate-to-admin", AGGREGATE_TO_ADMIN).as_deref(),
        Some("true")
    );
    assert_eq!(
        label("system:aggregate-to-edit", AGGREGATE_TO_EDIT).as_deref(),
        Some("true")
    );
    assert_eq!(
        label("system:aggregate-to-view", AGGREGATE_TO_VIEW).as_deref(),
        Some("true")
    );
    assert!(find(&roles, "cluster-admin").aggregation_rule.is_none());
}

#[test]
fn key_rules_are_upstreams() {
    let roles = cluster_roles();
    assert_eq!(
        rules_of(&roles, "cluster-admin"),
        &[rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])]
    );
    assert_eq!(
        rules_of(&roles, "system:discovery")[0]
            .non_resource_urls
            .as_ref()
            .map(Vec::len),
        Some(11)
    );
    assert_eq!(
        rules_of(&roles, "system:public-info-viewer"),
        &[urls(
            &["get"],
            &["/healthz", "/livez", "/readyz", "/version", "/version/"]
        )]
    );
    let kube_proxy = rules_of(&roles, "system:node-proxier");
    assert!(kube_proxy.contains(&rule(
        &["list", "watch"],
        &["networking.k8s.io"],
        &["servicecidrs"]
    )));
    assert!(rules_of(&roles, "system:kubelet-api-admin").contains(&rule(
        &["*"],
        &[""],
        &["nodes/configz", "nodes/healthz", "nodes/pods"]
    )));
    let node = rules_of(&roles, "system:node");
    assert_eq!(
        node[0],
        rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"])
    );
    assert_eq!(node[21], rule(READ, &["node.k8s.io"], &["runtimeclasses"]));
    // Gated off in 1.33: no DRA, ClusterTrustBundle or credential-provider rules.
    let node_groups: BTreeSet<String> = node
        .iter()
        .flat_map(|r| r.api_groups.clone().unwrap_or_default())
        .collect();
    assert!(!node_groups.contains("resource.k8s.io"));
    assert!(!node.iter().any(|r| r
        .resources
        .as_deref()
        .unwrap_or_default()
        .contains(&"clustertrustbundles".into())));
    let scheduler = rules_of(&roles, "system:kube-scheduler");
    assert!(scheduler.contains(&named(
        &["get", "update"],
        &["coordination.k8s.io"],
        &["leases"],
        &["kube-scheduler"]
    )));
    assert!(scheduler.contains(&rule(&["create"], &[""], &["bindings", "pods/binding"])));
    let edit = rules_of(&roles, "system:aggregate-to-edit");
    assert!(edit.contains(&rule(&["impersonate"], &[""], &["serviceaccounts"])));
    assert!(edit.contains(&rule(&["create"], &[""], &["serviceaccounts/token"])));
    let view = rules_of(&roles, "system:aggregate-to-view");
    assert!(!view.iter().any(|r| r
        .resources
        .as_deref()
        .unwrap_or_default()
        .contains(&"secrets".into())));
    assert_eq!(
        rules_of(&roles, "system:service-account-issuer-discovery")[0]
            .non_resource_urls
            .as_ref()
            .map(Vec::len),
        Some(4)
    );
    assert_eq!(
        rules_of(
            &roles,
            "system:certificates.k8s.io:kubelet-serving-approver"
        ),
        &[named(
            &["approve"],
            &["certificates.k8s.io"],
            &["signers"],
            &["kubernetes.io/kubelet-serving"]
        )]
    );
    let controllers = controller_roles();
    assert!(
        rules_of(&controllers, "system:controller:namespace-controller").contains(&rule(
            &["delete", "deletecollection", "get", "list", "watch"],
            &["*"],
            &["*"]
        ))
    );
    assert!(
        rules_of(&controllers, "system:controller:node-controller").contains(&rule(
            &["delete", "get", "list", "patch", "update", "watch"],
            &[""],
            &["nodes"]
        ))
    );
    assert_eq!(
        rules_of(
            &controllers,
            "system:controller:clusterrole-aggregation-controller"
        )[0]
        .verbs,
        sorted(&["escalate", "get", "list", "patch", "update", "watch"])
    );
    assert!(
        rules_of(&controllers, "system:controller:disruption-controller").contains(&rule(
            &["get"],
            &["*"],
            &["*/scale"]
        ))
    );
}

#[test]
fn aggregated_admin_covers_edit_and_edit_covers_view() {
    // Upstream's TestAdminEditRelationship and TestEditViewRelationship, on the roles as the
    // aggregation controller fills them (view feeds edit, edit feeds admin: three passes).
    let mut roles = cluster_roles();
    for _ in 0..3 {
        let snapshot = roles.clone();
        for role in &mut roles {
            if let Some(rules) = aggregated_rules(role, &snapshot) {
                role.rules = Some(rules);
            }
        }
    }
    let (admin_covers_edit, missing) = covers(rules_of(&roles, "admin"), rules_of(&roles, "edit"));
    assert!(admin_covers_edit, "{missing:?}");
    let (edit_covers_view, missing) = covers(rules_of(&roles, "edit"), rules_of(&roles, "view"));
    assert!(edit_covers_view, "{missing:?}");
    let (view_covers_edit, _) = covers(rules_of(&roles, "view"), rules_of(&roles, "edit"));
    assert!(!view_covers_edit);
    assert_eq!(rules_of(&roles, "view").len(), 10);
    assert_eq!(rules_of(&roles, "edit").len(), 13 + 10);
    assert_eq!(rules_of(&roles, "admin").len(), 2 + 13 + 10);
}

#[test]
fn cluster_role_bindings_are_upstreams() {
    let bindings = cluster_role_bindings();
    let subjects = |name: &str| -> Vec<(String, String, Option<String>)> {
        let b = bindings
            .iter()
            .find(|b| b.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            (
                b.role_ref.kind.as_str(),
                b.role_ref.name.as_str(),
                b.role_ref.api_group.as_str()
            ),
            ("ClusterRole", name, GROUP)
        );
        b.subjects
            .iter()
            .flatten()
            .map(|s| (s.kind.clone(), s.name.clone(), s.namespace.clone()))
            .collect()
    };
    let g = |n: &str| ("Group".to_string(), n.to_string(), None);
    let u = |n: &str| ("User".to_string(), n.to_string(), None);
    assert_eq!(subjects("cluster-admin"), vec![g("system:masters")]);
    assert_eq!(
        subjects("system:basic-user"),
        vec![g("system:authenticated")]
    );
    assert_eq!(
        subjects("system:discovery"),
        vec![g("system:authenticated")]
    );
    assert_eq!(
        subjects("system:public-info-viewer"),
        vec![g("system:authenticated"), g("system:unauthenticated")]
    );
    assert_eq!(
        subjects("system:kube-scheduler"),
        vec![u("system:kube-scheduler")]
    );
    assert_eq!(
        subjects("system:volume-scheduler"),
        vec![u("system:kube-scheduler")]
    );
    assert_eq!(
        subjects("system:kube-controller-manager"),
        vec![u("system:kube-controller-manager")]
    );
    assert_eq!(
        subjects("system:node-proxier"),
        vec![u("system:kube-proxy")]
    );
    assert_eq!(subjects("system:monitoring"), vec![g("system:monitoring")]);
    assert_eq!(subjects("system:node"), vec![]);
    assert_eq!(
        subjects("system:service-account-issuer-discovery"),
        vec![g("system:serviceaccounts")]
    );
    assert_eq!(
        subjects("system:kube-dns"),
        vec![(
            "ServiceAccount".into(),
            "kube-dns".into(),
            Some("kube-system".into())
        )]
    );
    assert_eq!(
        subjects("system:controller:replicaset-controller"),
        vec![(
            "ServiceAccount".into(),
            "replicaset-controller".into(),
            Some("kube-system".into())
        )]
    );
    assert_eq!(bindings.len(), 12 + 35);
    // Every binding's role exists.
    let roles: BTreeSet<String> = cluster_roles()
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect();
    for b in &bindings {
        assert!(roles.contains(&b.role_ref.name), "{}", b.role_ref.name);
    }
    // ServiceAccount subjects carry no apiGroup, users and groups the RBAC group.
    for s in bindings
        .iter()
        .flat_map(|b| b.subjects.clone().unwrap_or_default())
    {
        let want = (s.kind != "ServiceAccount").then(|| GROUP.to_string());
        assert_eq!(s.api_group, want, "{s:?}");
    }
}

#[test]
fn namespaced_roles_and_bindings_are_upstreams() {
    let ids = |items: Vec<(Option<String>, Option<String>)>| -> Vec<String> {
        items
            .into_iter()
            .map(|(ns, n)| format!("{}/{}", ns.unwrap_or_default(), n.unwrap_or_default()))
            .collect()
    };
    let expected = vec![
        "kube-public/system:controller:bootstrap-signer",
        "kube-system/extension-apiserver-authentication-reader",
        "kube-system/system::leader-locking-kube-controller-manager",
        "kube-system/system::leader-locking-kube-scheduler",
        "kube-system/system:controller:bootstrap-signer",
        "kube-system/system:controller:cloud-provider",
        "kube-system/system:controller:token-cleaner",
    ];
    assert_eq!(
        ids(roles()
            .into_iter()
            .map(|r| (r.metadata.namespace, r.metadata.name))
            .collect()),
        expected
    );
    let binding_ids = ids(role_bindings()
        .into_iter()
        .map(|b| (b.metadata.namespace, b.metadata.name))
        .collect());
    assert_eq!(
        binding_ids[1],
        "kube-system/system::extension-apiserver-authentication-reader"
    );
    assert_eq!(binding_ids.len(), 7);
    for b in role_bindings() {
        let ns = b.metadata.namespace.clone().unwrap_or_default();
        assert!(
            roles()
                .iter()
                .any(|r| r.metadata.namespace.as_deref() == Some(&ns)
                    && r.metadata.name.as_deref() == Some(&b.role_ref.name)),
            "{:?}",
            b.metadata.name
        );
    }
    let kcm = role_bindings().into_iter().find(|b| {
        b.metadata.name.as_deref() == Some("system::leader-locking-kube-controller-manager")
    });
    let names: Vec<String> = kcm
        .and_then(|b| b.subjects)
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        vec![
            "system:kube-controller-manager",
            "kube-controller-manager",
            "leader-election-controller"
        ]
    );
}

#[test]
fn the_node_role_lets_a_kubelet_do_its_job() {
    let roles = cluster_roles();
    let node = rules_of(&roles, "system:node");
    let kubelet = UserInfo {
        name: "system:node:n1".into(),
        groups: vec!["system:nodes".into()],
        ..UserInfo::default()
    };
    let can = |verb: &str, group: &str, resource: &str, subresource: &str| {
        let a = Attributes {
            user: kubelet.clone(),
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: "default".into(),
            ..Attributes::default()
        };
        node.iter().any(|r| rule_allows(r, &a))
    };
    assert!(can("patch", "", "nodes", "status"));
    assert!(can("update", "coordination.k8s.io", "leases", ""));
    assert!(can("create", "", "serviceaccounts", "token"));
    assert!(can("get", "", "secrets", ""));
    assert!(!can("delete", "", "secrets", ""));
    assert!(!can("create", "", "pods", "exec"));
}
