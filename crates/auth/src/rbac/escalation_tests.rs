//! The escalation check on RBAC writes: who may grant what, the `escalate`/`bind` shortcuts,
//! the aggregationRule guard, GC-only updates, and upstream's Forbidden texts.

use std::cell::RefCell;

use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};

use super::*;
use crate::rbac::test_support::{binding, cluster_binding, cluster_role, role, rule, user};
use crate::rbac::MemoryRuleSource;

/// alice holds `get,list pods` cluster-wide and `create configmaps` in ns1.
fn world() -> MemoryRuleSource {
    MemoryRuleSource {
        cluster_roles: vec![
            cluster_role("pod-reader", vec![rule("get,list", "", "pods", "")]),
            cluster_role("cm-creator", vec![rule("create", "", "configmaps", "")]),
            cluster_role("secret-reader", vec![rule("get", "", "secrets", "")]),
            cluster_role(
                "admin-ish",
                vec![rule("*", "*", "*", ""), rule("*", "", "", "*")],
            ),
        ],
        roles: vec![role("ns1", "local-pods", vec![rule("get", "", "pods", "")])],
        cluster_role_bindings: vec![
            cluster_binding("pod-reader", &["User:alice"]),
            cluster_binding("admin-ish", &["User:root"]),
        ],
        role_bindings: vec![binding("ns1", "ClusterRole", "cm-creator", &["User:alice"])],
    }
}

fn never(_: &Attributes) -> bool {
    false
}

fn write<'a>(who: &'a UserInfo, namespace: &'a str, object: RbacObject<'a>) -> RbacWrite<'a> {
    RbacWrite {
        user: who,
        namespace,
        request_name: "",
        object,
        old: None,
    }
}

#[test]
fn masters_may_grant_anything() {
    let root = user("root", "system:masters");
    let role = role("ns1", "big", vec![rule("*", "*", "*", "")]);
    assert_eq!(
        escalation_allowed(
            &world(),
            &write(&root, "ns1", RbacObject::Role(&role)),
            never
        ),
        Ok(())
    );
}

#[test]
fn a_role_within_the_users_rules_is_allowed() {
    let alice = user("alice", "system:authenticated");
    let ok = role(
        "ns1",
        "r",
        vec![
            rule("get", "", "pods", ""),
            rule("create", "", "configmaps", ""),
        ],
    );
    assert_eq!(
        escalation_allowed(
            &world(),
            &write(&alice, "ns1", RbacObject::Role(&ok)),
            never
        ),
        Ok(())
    );
    // configmaps are only hers in ns1.
    assert!(escalation_allowed(
        &world(),
        &write(&alice, "ns2", RbacObject::Role(&ok)),
        never
    )
    .is_err());
}

#[test]
fn a_role_beyond_the_users_rules_is_refused_with_upstreams_text() {
    let alice = user("alice", "system:authenticated");
    let greedy = role(
        "ns1",
        "greedy",
        vec![rule("get,watch,delete", "", "pods,secrets", "")],
    );
    let err = escalation_allowed(
        &world(),
        &write(&alice, "ns1", RbacObject::Role(&greedy)),
        never,
    )
    .unwrap_err();
    assert_eq!(err.resource, "roles");
    assert_eq!(
        err.to_string(),
        "roles.rbac.authorization.k8s.io \"greedy\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) \
         is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"watch\" \"delete\"]}\n\
         {APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"watch\" \"delete\"]}"
    );
}

#[test]
fn the_simplest_refusal_reads_as_the_brief_says() {
    let alice = user("alice", "system:authenticated");
    let source = MemoryRuleSource::default();
    let r = role("default", "r", vec![rule("get", "", "pods", "")]);
    let err = escalation_allowed(
        &source,
        &write(&alice, "default", RbacObject::Role(&r)),
        never,
    )
    .unwrap_err();
    assert_eq!(
        err.cause.to_string(),
        "user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}"
    );
}

#[test]
fn unreadable_roles_of_the_user_are_listed_as_resolution_errors() {
    let mut source = world();
    source
        .cluster_role_bindings
        .push(cluster_binding("vanished", &["User:alice"]));
    let alice = user("alice", "");
    let r = role("ns1", "r", vec![rule("get", "", "secrets", "")]);
    let err = escalation_allowed(&source, &write(&alice, "ns1", RbacObject::Role(&r)), never)
        .unwrap_err();
    assert!(
        err.to_string().ends_with(
            "{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}; resolution errors: \
             [clusterroles.rbac.authorization.k8s.io \"vanished\" not found]"
        ),
        "{err}"
    );
}

#[test]
fn escalate_permission_skips_the_check() {
    let alice = user("alice", "");
    let asked = RefCell::new(Vec::new());
    let may = |a: &Attributes| {
        asked.borrow_mut().push(a.clone());
        a.verb == "escalate"
    };
    let big = role("ns1", "big", vec![rule("*", "*", "*", "")]);
    let mut w = write(&alice, "ns1", RbacObject::Role(&big));
    w.request_name = "big";
    assert_eq!(escalation_allowed(&world(), &w, may), Ok(()));
    let a = &asked.borrow()[0];
    assert_eq!(
        (
            a.verb.as_str(),
            a.api_group.as_str(),
            a.api_version.as_str()
        ),
        ("escalate", GROUP, "*")
    );
    assert_eq!(
        (a.resource.as_str(), a.name.as_str(), a.namespace.as_str()),
        ("roles", "big", "ns1")
    );
    assert!(a.resource_request);
}

fn aggregated(name: &str) -> ClusterRole {
    let mut role = cluster_role(name, vec![]);
    role.aggregation_rule = Some(AggregationRule {
        cluster_role_selectors: Some(vec![LabelSelector {
            match_labels: Some([("k".to_string(), "v".to_string())].into()),
            match_expressions: None,
        }]),
    });
    role
}

#[test]
fn an_aggregation_rule_needs_full_authority() {
    let alice = user("alice", "");
    let agg = aggregated("agg");
    let err = escalation_allowed(
        &world(),
        &write(&alice, "", RbacObject::ClusterRole(&agg)),
        never,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "clusterroles.rbac.authorization.k8s.io \"agg\" is forbidden: must have cluster-admin privileges to use the aggregationRule"
    );
    let root = user("root", "");
    assert_eq!(
        escalation_allowed(
            &world(),
            &write(&root, "", RbacObject::ClusterRole(&agg)),
            never
        ),
        Ok(())
    );

    // Dropping the rule from an aggregated role is guarded too.
    let plain = cluster_role("agg", vec![]);
    let mut update = write(&alice, "", RbacObject::ClusterRole(&plain));
    update.old = Some(RbacObject::ClusterRole(&agg));
    assert_eq!(
        escalation_allowed(&world(), &update, never).map_err(|e| *e.cause),
        Err(EscalationError::AggregationRuleNeedsClusterAdmin)
    );
}

#[test]
fn binding_a_role_needs_bind_or_its_rules() {
    let alice = user("alice", "");
    let rb = binding("ns1", "ClusterRole", "secret-reader", &["User:bob"]);
    let err = escalation_allowed(
        &world(),
        &write(&alice, "ns1", RbacObject::RoleBinding(&rb)),
        never,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with(
        "rolebindings.rbac.authorization.k8s.io \"secret-reader\" is forbidden: user \"alice\" (groups=[]) is attempting"
    ));

    let asked = RefCell::new(Vec::new());
    let may_bind = |a: &Attributes| {
        asked.borrow_mut().push(a.clone());
        a.verb == "bind" && a.name == "secret-reader"
    };
    assert_eq!(
        escalation_allowed(
            &world(),
            &write(&alice, "ns1", RbacObject::RoleBinding(&rb)),
            may_bind
        ),
        Ok(())
    );
    let a = &asked.borrow()[0];
    assert_eq!(
        (
            a.resource.as_str(),
            a.api_group.as_str(),
            a.namespace.as_str()
        ),
        ("clusterroles", GROUP, "ns1")
    );

    // Holding the rules is enough: pod-reader's rules are alice's.
    let pods = binding("ns2", "ClusterRole", "pod-reader", &["User:bob"]);
    assert_eq!(
        escalation_allowed(
            &world(),
            &write(&alice, "ns2", RbacObject::RoleBinding(&pods)),
            never
        ),
        Ok(())
    );
    // ...and a Role is read in the binding's namespace.
    let local = binding("ns1", "Role", "local-pods", &["User:bob"]);
    assert_eq!(
        escalation_allowed(
            &world(),
            &write(&alice, "ns1", RbacObject::RoleBinding(&local)),
            never
        ),
        Ok(())
    );
}

#[test]
fn binding_a_missing_role_is_refused_with_the_lookup_error() {
    let alice = user("alice", "");
    let rb = binding("ns1", "Role", "nope", &["User:bob"]);
    let err = escalation_allowed(
        &world(),
        &write(&alice, "ns1", RbacObject::RoleBinding(&rb)),
        never,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "rolebindings.rbac.authorization.k8s.io \"nope\" is forbidden: roles.rbac.authorization.k8s.io \"nope\" not found"
    );
}

#[test]
fn cluster_role_bindings_need_cluster_wide_rules() {
    let alice = user("alice", "");
    let crb = cluster_binding("cm-creator", &["User:bob"]);
    let err = escalation_allowed(
        &world(),
        &write(&alice, "", RbacObject::ClusterRoleBinding(&crb)),
        never,
    )
    .unwrap_err();
    assert_eq!(err.resource, "clusterrolebindings");
    let pods = cluster_binding("pod-reader", &["User:bob"]);
    assert_eq!(
        escalation_allowed(
            &world(),
            &write(&alice, "", RbacObject::ClusterRoleBinding(&pods)),
            never
        ),
        Ok(())
    );
}

#[test]
fn updates_of_gc_fields_only_need_no_rights() {
    let alice = user("alice", "");
    let old: Role = role("ns1", "big", vec![rule("*", "*", "*", "")]);
    let mut new = old.clone();
    new.metadata.owner_references = Some(vec![OwnerReference {
        name: "owner".into(),
        uid: "u".into(),
        ..OwnerReference::default()
    }]);
    new.metadata.finalizers = Some(vec!["x".into()]);
    let mut w = write(&alice, "ns1", RbacObject::Role(&new));
    w.old = Some(RbacObject::Role(&old));
    assert_eq!(escalation_allowed(&world(), &w, never), Ok(()));

    let mut changed = new.clone();
    changed.rules = Some(vec![rule("*", "*", "*", ""), rule("get", "", "x", "")]);
    w.object = RbacObject::Role(&changed);
    assert!(escalation_allowed(&world(), &w, never).is_err());

    let old_rb: RoleBinding = binding("ns1", "ClusterRole", "secret-reader", &["User:bob"]);
    let mut new_rb = old_rb.clone();
    new_rb.metadata.finalizers = Some(vec!["x".into()]);
    let mut wb = write(&alice, "ns1", RbacObject::RoleBinding(&new_rb));
    wb.old = Some(RbacObject::RoleBinding(&old_rb));
    assert_eq!(escalation_allowed(&world(), &wb, never), Ok(()));
}

#[test]
fn only_gc_fields_changed_ignores_exactly_those_fields() {
    let a: ClusterRoleBinding = cluster_binding("x", &["User:a"]);
    let mut b = a.clone();
    assert!(only_gc_fields_changed(&b, &a));
    b.metadata.finalizers = Some(vec!["f".into()]);
    assert!(only_gc_fields_changed(&b, &a));
    b.metadata.labels = Some([("l".to_string(), "v".to_string())].into());
    assert!(!only_gc_fields_changed(&b, &a));
    let r: PolicyRule = rule("get", "", "pods", "");
    let role_a = cluster_role("c", vec![r.clone()]);
    let role_b = cluster_role("c", vec![r.clone(), r]);
    assert!(!only_gc_fields_changed(&role_b, &role_a));
}

#[test]
fn the_questions_are_those_the_check_asks() {
    let alice = user("alice", "");
    let r = role("ns1", "r", vec![]);
    let mut w = write(&alice, "ns1", RbacObject::Role(&r));
    w.request_name = "r";
    let asked = RefCell::new(Vec::new());
    let _ = escalation_allowed(&world(), &w, |a: &Attributes| {
        asked.borrow_mut().push(a.clone());
        false
    });
    assert_eq!(escalation_questions(&w), asked.into_inner());

    let rb = binding("ns1", "ClusterRole", "secret-reader", &["User:bob"]);
    let wb = write(&alice, "ns1", RbacObject::RoleBinding(&rb));
    let questions = escalation_questions(&wb);
    assert_eq!(questions.len(), 1);
    assert_eq!(
        (questions[0].verb.as_str(), questions[0].resource.as_str()),
        ("bind", "clusterroles")
    );
}
