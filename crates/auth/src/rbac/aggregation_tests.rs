//! The aggregation controller's result, after upstream's `TestSyncClusterRole`
//! (clusterroleaggregation_controller_test.go), and label-selector semantics.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{AggregationRule, ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::*;
use crate::rbac::test_support::{cluster_role, rule};

fn labelled(name: &str, labels: &[(&str, &str)], rules: Vec<PolicyRule>) -> ClusterRole {
    let mut role = cluster_role(name, rules);
    role.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    role
}

fn match_labels(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        match_expressions: None,
    }
}

fn aggregating(name: &str, selectors: Vec<LabelSelector>, rules: Vec<PolicyRule>) -> ClusterRole {
    let mut role = cluster_role(name, rules);
    role.aggregation_rule = Some(AggregationRule {
        cluster_role_selectors: Some(selectors),
    });
    role
}

#[test]
fn no_aggregation_rule_means_nothing_to_do() {
    let plain = cluster_role("plain", vec![rule("get", "", "pods", "")]);
    assert_eq!(aggregated_rules(&plain, std::slice::from_ref(&plain)), None);
}

#[test]
fn no_match_gives_no_rules() {
    let target = aggregating(
        "target",
        vec![match_labels(&[("foo", "bar")])],
        vec![rule("get", "", "pods", "")],
    );
    let other = labelled(
        "other",
        &[("foo", "baz")],
        vec![rule("list", "", "pods", "")],
    );
    assert_eq!(
        aggregated_rules(&target, &[target.clone(), other]),
        Some(vec![])
    );
}

#[test]
fn rules_of_selected_roles_in_name_order_deduplicated() {
    let target = aggregating("target", vec![match_labels(&[("foo", "bar")])], vec![]);
    let b = labelled(
        "b",
        &[("foo", "bar")],
        vec![rule("get", "", "pods", ""), rule("list", "", "pods", "")],
    );
    let a = labelled(
        "a",
        &[("foo", "bar"), ("x", "y")],
        vec![rule("list", "", "pods", ""), rule("get", "", "nodes", "")],
    );
    let c = labelled("c", &[("foo", "other")], vec![rule("*", "*", "*", "")]);
    let all = [b, target.clone(), c, a];
    assert_eq!(
        aggregated_rules(&target, &all),
        Some(vec![
            rule("list", "", "pods", ""),
            rule("get", "", "nodes", ""),
            rule("get", "", "pods", "")
        ])
    );
}

#[test]
fn selectors_are_visited_in_order_and_the_role_itself_is_skipped() {
    let mut target = aggregating(
        "target",
        vec![
            match_labels(&[("second", "true")]),
            match_labels(&[("first", "true")]),
        ],
        vec![],
    );
    target.metadata.labels = Some(BTreeMap::from([("first".into(), "true".into())]));
    let one = labelled(
        "a-first",
        &[("first", "true")],
        vec![rule("get", "", "a", "")],
    );
    let two = labelled(
        "z-second",
        &[("second", "true")],
        vec![rule("get", "", "z", "")],
    );
    let both = labelled(
        "m-both",
        &[("first", "true"), ("second", "true")],
        vec![rule("get", "", "m", "")],
    );
    let all = [one, two, both, target.clone()];
    assert_eq!(
        aggregated_rules(&target, &all),
        Some(vec![
            rule("get", "", "m", ""),
            rule("get", "", "z", ""),
            rule("get", "", "a", "")
        ])
    );
}

#[test]
fn absent_and_empty_lists_count_as_the_same_rule() {
    let target = aggregating("target", vec![match_labels(&[("k", "v")])], vec![]);
    let mut with_empty = rule("get", "", "pods", "");
    with_empty.resource_names = Some(vec![]);
    let a = labelled("a", &[("k", "v")], vec![rule("get", "", "pods", "")]);
    let b = labelled("b", &[("k", "v")], vec![with_empty]);
    assert_eq!(aggregated_rules(&target, &[a, b]).map(|r| r.len()), Some(1));
}

#[test]
fn match_expressions_select_too() {
    let expr = |key: &str, operator: &str, values: &[&str]| LabelSelectorRequirement {
        key: key.into(),
        operator: operator.into(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
    };
    let selector = |exprs: Vec<LabelSelectorRequirement>| LabelSelector {
        match_labels: None,
        match_expressions: Some(exprs),
    };
    let labels = BTreeMap::from([
        ("tier".to_string(), "web".to_string()),
        ("team".to_string(), "a".to_string()),
    ]);
    let cases = [
        (selector(vec![expr("tier", "In", &["web", "db"])]), true),
        (selector(vec![expr("tier", "In", &["db"])]), false),
        (selector(vec![expr("tier", "NotIn", &["db"])]), true),
        (selector(vec![expr("missing", "NotIn", &["x"])]), true),
        (selector(vec![expr("tier", "NotIn", &["web"])]), false),
        (selector(vec![expr("team", "Exists", &[])]), true),
        (selector(vec![expr("missing", "Exists", &[])]), false),
        (selector(vec![expr("missing", "DoesNotExist", &[])]), true),
        (selector(vec![expr("team", "DoesNotExist", &[])]), false),
        (
            selector(vec![
                expr("team", "Exists", &[]),
                expr("tier", "In", &["db"]),
            ]),
            false,
        ),
        (LabelSelector::default(), true),
    ];
    for (sel, want) in cases {
        assert_eq!(label_selector_matches(&sel, &labels), Ok(want), "{sel:?}");
    }
    let mixed = LabelSelector {
        match_labels: Some(BTreeMap::from([("team".to_string(), "a".to_string())])),
        match_expressions: Some(vec![expr("tier", "In", &["db"])]),
    };
    assert_eq!(label_selector_matches(&mixed, &labels), Ok(false));

    assert_eq!(
        label_selector_matches(&selector(vec![expr("k", "In", &[])]), &labels),
        Err(SelectorError::MissingValues)
    );
    assert_eq!(
        label_selector_matches(&selector(vec![expr("k", "Exists", &["v"])]), &labels),
        Err(SelectorError::UnexpectedValues)
    );
    assert_eq!(
        label_selector_matches(&selector(vec![expr("k", "Gt", &["1"])]), &labels),
        Err(SelectorError::InvalidOperator("Gt".into()))
    );
}

#[test]
fn an_invalid_selector_leaves_the_role_alone() {
    let bad = LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "k".into(),
            operator: "Bogus".into(),
            values: None,
        }]),
    };
    let target = aggregating("target", vec![bad], vec![rule("get", "", "pods", "")]);
    let other = labelled("other", &[("k", "v")], vec![]);
    assert_eq!(
        aggregated_rules(&target, std::slice::from_ref(&other)),
        None
    );
    assert!(try_aggregated_rules(&target, &[other]).is_err());
}
