//! Reconciliation in union mode, after upstream's `TestComputeReconciledRole` and
//! `TestDiffObjectReferenceLists`/`TestComputeUpdate` (reconciliation/*_test.go).

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{AggregationRule, ClusterRole, ClusterRoleBinding, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::*;
use crate::policy::{
    cluster_role_bindings, cluster_roles, role_bindings, roles, AUTOUPDATE_ANNOTATION,
};
use crate::rbac::test_support::{binding, cluster_binding, cluster_role, rule, subjects};

fn with_annotation(mut role: ClusterRole, value: &str) -> ClusterRole {
    role.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(AUTOUPDATE_ANNOTATION.into(), value.into());
    role
}

fn selector(key: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(key.to_string(), "true".to_string())])),
        match_expressions: None,
    }
}

fn aggregating(role: ClusterRole, keys: &[&str]) -> ClusterRole {
    ClusterRole {
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: Some(keys.iter().map(|k| selector(k)).collect()),
        }),
        ..role
    }
}

#[test]
fn an_absent_role_is_created_as_desired() {
    let desired = cluster_role("r", vec![rule("get", "", "pods", "")]);
    assert_eq!(reconcile_cluster_role(None, &desired), Some(desired));
}

#[test]
fn identical_roles_need_nothing() {
    for desired in cluster_roles()
        .into_iter()
        .chain([cluster_role("plain", vec![rule("get", "", "pods", "")])])
    {
        assert_eq!(
            reconcile_cluster_role(Some(&desired), &desired),
            None,
            "{:?}",
            desired.metadata.name
        );
    }
    for desired in roles() {
        assert_eq!(reconcile_role(Some(&desired), &desired), None);
    }
    for desired in cluster_role_bindings() {
        assert_eq!(
            reconcile_cluster_role_binding(Some(&desired), &desired),
            None
        );
    }
    for desired in role_bindings() {
        assert_eq!(reconcile_role_binding(Some(&desired), &desired), None);
    }
}

#[test]
fn missing_rules_are_added_and_extra_ones_kept() {
    let mut existing = cluster_role(
        "r",
        vec![rule("get", "", "pods", ""), rule("*", "", "secrets", "")],
    );
    existing.metadata.resource_version = Some("42".into());
    let desired = cluster_role(
        "r",
        vec![
            rule("get,list", "", "pods", ""),
            rule("get", "", "nodes", ""),
        ],
    );
    let reconciled = reconcile_cluster_role(Some(&existing), &desired).expect("an update");
    assert_eq!(
        reconciled.rules,
        Some(vec![
            rule("get", "", "pods", ""),
            rule("*", "", "secrets", ""),
            rule("list", "", "pods", ""),
            rule("get", "", "nodes", ""),
        ])
    );
    assert_eq!(reconciled.metadata.resource_version.as_deref(), Some("42"));
}

#[test]
fn rules_covered_by_broader_existing_ones_are_not_added() {
    let existing = cluster_role("r", vec![rule("*", "*", "*", "")]);
    let desired = cluster_role("r", vec![rule("get", "", "pods", "")]);
    assert_eq!(reconcile_cluster_role(Some(&existing), &desired), None);
}

#[test]
fn labels_and_annotations_are_merged_existing_values_winning() {
    let mut existing = cluster_role("r", vec![]);
    existing.metadata.labels = Some(BTreeMap::from([
        ("mine".into(), "1".into()),
        ("shared".into(), "theirs".into()),
    ]));
    let mut desired = cluster_role("r", vec![]);
    desired.metadata.labels = Some(BTreeMap::from([
        ("shared".into(), "ours".into()),
        ("new".into(), "2".into()),
    ]));
    desired = with_annotation(desired, "true");
    let reconciled = reconcile_cluster_role(Some(&existing), &desired).expect("an update");
    assert_eq!(
        reconciled.metadata.labels,
        Some(BTreeMap::from([
            ("mine".into(), "1".into()),
            ("new".into(), "2".into()),
            ("shared".into(), "theirs".into())
        ]))
    );
    assert_eq!(
        reconciled.metadata.annotations,
        Some(BTreeMap::from([(
            AUTOUPDATE_ANNOTATION.into(),
            "true".into()
        )]))
    );
}

#[test]
fn autoupdate_false_protects_the_object() {
    let existing = with_annotation(cluster_role("r", vec![]), "false");
    let desired = with_annotation(cluster_role("r", vec![rule("get", "", "pods", "")]), "true");
    assert_eq!(reconcile_cluster_role(Some(&existing), &desired), None);
    // "true", or no annotation at all, does not.
    let unannotated = cluster_role("r", vec![]);
    assert!(reconcile_cluster_role(Some(&unannotated), &desired).is_some());

    let mut protected = cluster_binding("b", &["User:alice"]);
    protected.metadata.annotations = Some(BTreeMap::from([(
        AUTOUPDATE_ANNOTATION.into(),
        "false".into(),
    )]));
    let mut other_role = cluster_binding("b", &["User:bob"]);
    other_role.role_ref.name = "other".into();
    assert_eq!(
        reconcile_cluster_role_binding(Some(&protected), &other_role),
        None
    );
}

#[test]
fn aggregation_selectors_are_unioned_and_removed_when_not_expected() {
    let existing = aggregating(
        cluster_role("agg", vec![rule("get", "", "pods", "")]),
        &["a", "extra"],
    );
    let desired = aggregating(cluster_role("agg", vec![]), &["a", "b"]);
    let reconciled = reconcile_cluster_role(Some(&existing), &desired).expect("an update");
    let keys: Vec<String> = reconciled
        .aggregation_rule
        .and_then(|r| r.cluster_role_selectors)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|s| s.match_labels.unwrap_or_default().into_keys())
        .collect();
    assert_eq!(keys, vec!["a", "extra", "b"]);
    // Aggregated rules already there are kept; nothing is missing from an empty desired set.
    assert_eq!(reconciled.rules, Some(vec![rule("get", "", "pods", "")]));

    let unexpected = aggregating(cluster_role("plain", vec![]), &["a"]);
    let plain = cluster_role("plain", vec![]);
    let reconciled = reconcile_cluster_role(Some(&unexpected), &plain).expect("an update");
    assert_eq!(reconciled.aggregation_rule, None);
}

#[test]
fn bindings_gain_missing_subjects_and_keep_others() {
    let mut existing = cluster_binding("b", &["User:alice", "Group:ops"]);
    existing.metadata.uid = Some("u1".into());
    let desired = cluster_binding(
        "b",
        &["Group:ops", "User:bob", "ServiceAccount:kube-system:sa"],
    );
    let Some(Reconciliation::Update(updated)) =
        reconcile_cluster_role_binding(Some(&existing), &desired)
    else {
        panic!("expected an update");
    };
    assert_eq!(
        updated.subjects,
        Some(subjects(&[
            "User:alice",
            "Group:ops",
            "User:bob",
            "ServiceAccount:kube-system:sa"
        ]))
    );
    assert_eq!(updated.metadata.uid.as_deref(), Some("u1"));

    // An explicit "" apiGroup on a stored ServiceAccount subject is the same subject.
    let mut stored = desired.clone();
    for s in stored.subjects.iter_mut().flatten() {
        s.api_group.get_or_insert_with(String::new);
    }
    assert_eq!(
        reconcile_cluster_role_binding(Some(&stored), &desired),
        None
    );
}

#[test]
fn a_different_role_ref_recreates_the_binding() {
    let mut existing: RoleBinding = binding("ns", "Role", "r", &["User:alice"]);
    existing.role_ref.name = "old-role".into();
    let desired = binding("ns", "Role", "r", &["User:bob"]);
    assert_eq!(
        reconcile_role_binding(Some(&existing), &desired),
        Some(Reconciliation::Recreate(desired.clone()))
    );
    assert_eq!(
        reconcile_role_binding(None, &desired),
        Some(Reconciliation::Create(desired.clone()))
    );
    let crb: ClusterRoleBinding = cluster_binding("x", &[]);
    assert_eq!(
        reconcile_cluster_role_binding(None, &crb).map(|r| r.object().clone()),
        Some(crb)
    );
}

#[test]
fn the_subjectless_node_binding_never_strips_subjects() {
    let desired = cluster_role_bindings()
        .into_iter()
        .find(|b| b.metadata.name.as_deref() == Some("system:node"))
        .expect("system:node binding");
    let mut legacy = desired.clone();
    legacy.subjects = Some(subjects(&["Group:system:nodes"]));
    assert_eq!(
        reconcile_cluster_role_binding(Some(&legacy), &desired),
        None
    );
}
