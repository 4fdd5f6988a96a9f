//! `Covers`, ported from upstream's `policy_comparator_test.go` (one test per upstream
//! case), plus `BreakdownRule`, `CompactRules` and `CompactString`.

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::*;

fn r(groups: &[&str], verbs: &[&str], resources: &[&str]) -> PolicyRule {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: (!groups.is_empty()).then(|| v(groups)),
        verbs: v(verbs),
        resources: (!resources.is_empty()).then(|| v(resources)),
        ..PolicyRule::default()
    }
}

fn with_names(mut rule: PolicyRule, names: &[&str]) -> PolicyRule {
    rule.resource_names = Some(names.iter().map(|x| x.to_string()).collect());
    rule
}

fn u(urls: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        non_resource_urls: Some(urls.iter().map(|x| x.to_string()).collect()),
        verbs: verbs.iter().map(|x| x.to_string()).collect(),
        ..PolicyRule::default()
    }
}

/// Upstream's `escalationTest.test`: the verdict, and the uncovered rules in any order.
fn check(owner: &[PolicyRule], servant: &[PolicyRule], covered: bool, uncovered: &[PolicyRule]) {
    let (got_covered, got_uncovered) = covers(owner, servant);
    assert_eq!(got_covered, covered, "verdict");
    assert_eq!(got_uncovered.len(), uncovered.len(), "{got_uncovered:?}");
    for expected in uncovered {
        assert!(
            got_uncovered.contains(expected),
            "missing {expected:?} in {got_uncovered:?}"
        );
    }
}

#[test]
fn exact_match() {
    check(
        &[r(&["v1"], &["get"], &["builds"])],
        &[r(&["v1"], &["get"], &["builds"])],
        true,
        &[],
    );
}

#[test]
fn multiple_rules_covering_single_rule() {
    check(
        &[
            r(&["v1"], &["delete"], &["deployments"]),
            r(&["v1"], &["delete"], &["builds"]),
            r(&["v1"], &["update"], &["builds", "deployments"]),
        ],
        &[r(
            &["v1"],
            &["delete", "update"],
            &["builds", "deployments"],
        )],
        true,
        &[],
    );
}

#[test]
fn multiple_api_groups_covering_single_rule() {
    let mut owner = Vec::new();
    for g in ["group1", "group2"] {
        owner.push(r(&[g], &["delete"], &["deployments"]));
        owner.push(r(&[g], &["delete"], &["builds"]));
        owner.push(r(&[g], &["update"], &["builds", "deployments"]));
    }
    check(
        &owner,
        &[r(
            &["group1", "group2"],
            &["delete", "update"],
            &["builds", "deployments"],
        )],
        true,
        &[],
    );
}

#[test]
fn single_api_groups_covering_multiple() {
    let mut servant = Vec::new();
    for g in ["group1", "group2"] {
        servant.push(r(&[g], &["delete"], &["deployments"]));
        servant.push(r(&[g], &["delete"], &["builds"]));
        servant.push(r(&[g], &["update"], &["builds", "deployments"]));
    }
    check(
        &[r(
            &["group1", "group2"],
            &["delete", "update"],
            &["builds", "deployments"],
        )],
        &servant,
        true,
        &[],
    );
}

#[test]
fn multiple_rules_missing_single_verb_resource_combination() {
    check(
        &[
            r(&["v1"], &["delete", "update"], &["builds", "deployments"]),
            r(&["v1"], &["delete"], &["pods"]),
        ],
        &[r(
            &["v1"],
            &["delete", "update"],
            &["builds", "deployments", "pods"],
        )],
        false,
        &[r(&["v1"], &["update"], &["pods"])],
    );
}

#[test]
fn api_group_star_covering_multiple() {
    check(
        &[r(&["*"], &["get"], &["roles"])],
        &[r(&["group1", "group2"], &["get"], &["roles"])],
        true,
        &[],
    );
}

#[test]
fn enumeration_not_covering_api_group_star() {
    check(
        &[r(&["dummy-group"], &["get"], &["roles"])],
        &[r(&["*"], &["get"], &["roles"])],
        false,
        &[r(&["*"], &["get"], &["roles"])],
    );
}

#[test]
fn api_group_star_covering_star() {
    check(
        &[r(&["*"], &["get"], &["roles"])],
        &[r(&["*"], &["get"], &["roles"])],
        true,
        &[],
    );
}

#[test]
fn verb_star_covering_multiple() {
    check(
        &[r(&["v1"], &["*"], &["roles"])],
        &[r(&["v1"], &["watch", "list"], &["roles"])],
        true,
        &[],
    );
}

#[test]
fn enumeration_not_covering_verb_star() {
    check(
        &[r(
            &["v1"],
            &["get", "list", "watch", "create", "update", "delete", "exec"],
            &["roles"],
        )],
        &[r(&["v1"], &["*"], &["roles"])],
        false,
        &[r(&["v1"], &["*"], &["roles"])],
    );
}

#[test]
fn verb_star_covering_star() {
    check(
        &[r(&["v1"], &["*"], &["roles"])],
        &[r(&["v1"], &["*"], &["roles"])],
        true,
        &[],
    );
}

#[test]
fn resource_star_covering_multiple() {
    check(
        &[r(&["v1"], &["get"], &["*"])],
        &[r(&["v1"], &["get"], &["resourcegroup:deployments"])],
        true,
        &[],
    );
}

#[test]
fn enumeration_not_covering_resource_star() {
    check(
        &[r(
            &["v1"],
            &["get"],
            &["roles", "resourcegroup:deployments"],
        )],
        &[r(&["v1"], &["get"], &["*"])],
        false,
        &[r(&["v1"], &["get"], &["*"])],
    );
}

#[test]
fn resource_star_covering_star() {
    check(
        &[r(&["v1"], &["get"], &["*"])],
        &[r(&["v1"], &["get"], &["*"])],
        true,
        &[],
    );
}

#[test]
fn resource_name_empty_covering_multiple() {
    check(
        &[with_names(r(&["v1"], &["get"], &["pods"]), &[])],
        &[with_names(r(&["v1"], &["get"], &["pods"]), &["foo", "bar"])],
        true,
        &[],
    );
}

#[test]
fn enumeration_not_covering_resource_name_empty() {
    check(
        &[with_names(r(&["v1"], &["get"], &["pods"]), &["foo", "bar"])],
        &[with_names(r(&["v1"], &["get"], &["pods"]), &[])],
        false,
        &[r(&["v1"], &["get"], &["pods"])],
    );
}

#[test]
fn non_resource_urls() {
    check(
        &[u(&["/apis"], &["*"])],
        &[u(&["/apis"], &["*"])],
        true,
        &[],
    );
}

#[test]
fn non_resource_urls_star() {
    check(
        &[u(&["*"], &["*"])],
        &[u(&["/apis", "/apis/v1", "/"], &["*"])],
        true,
        &[],
    );
}

#[test]
fn non_resource_urls_star_after_prefix_doesnt_cover() {
    check(
        &[u(&["/apis/*"], &["*"])],
        &[u(&["/apis", "/apis/v1"], &["get"])],
        false,
        &[u(&["/apis"], &["get"])],
    );
}

#[test]
fn non_resource_urls_star_after_prefix() {
    check(
        &[u(&["/apis/*"], &["*"])],
        &[u(&["/apis/v1/foo", "/apis/v1"], &["get"])],
        true,
        &[],
    );
}

#[test]
fn non_resource_urls_with_other_fields() {
    let mut both = r(&["v1"], &["get"], &["builds"]);
    both.non_resource_urls = Some(vec!["/apis".into()]);
    check(std::slice::from_ref(&both), &[both.clone()], true, &[]);
}

#[test]
fn non_resource_urls_with_other_fields_failure() {
    let mut both = r(&["v1"], &["get"], &["builds"]);
    both.non_resource_urls = Some(vec!["/apis".into()]);
    check(
        &[r(&["v1"], &["get"], &["builds"])],
        &[both],
        false,
        &[u(&["/apis"], &["get"])],
    );
}

#[test]
fn star_slash_subresource_covers_any_resource_with_it() {
    check(
        &[r(&["*"], &["get"], &["*/scale"])],
        &[r(
            &["apps"],
            &["get"],
            &["deployments/scale", "statefulsets/scale"],
        )],
        true,
        &[],
    );
    check(
        &[r(&["*"], &["get"], &["*/scale"])],
        &[r(&["apps"], &["get"], &["deployments"])],
        false,
        &[r(&["apps"], &["get"], &["deployments"])],
    );
}

#[test]
fn non_resource_url_covers_cases() {
    for (owner, requested, want) in [
        ("*", "/api", true),
        ("/api", "/api", true),
        ("/apis", "/api", false),
        ("/api/v1", "/api", false),
        ("/api/v1", "/api/v1", true),
        ("/api/*", "/api/v1", true),
        ("/api/*", "/api", false),
        ("/api/*/*", "/api/v1", false),
        ("/*/v1/*", "/api/v1", false),
    ] {
        assert_eq!(
            non_resource_url_covers(owner, requested),
            want,
            "{owner} {requested}"
        );
    }
}

#[test]
fn breakdown_splits_into_single_tuples_urls_last() {
    let mut rule = with_names(r(&["", "apps"], &["get", "list"], &["pods"]), &["a", "b"]);
    rule.non_resource_urls = Some(vec!["/x".into()]);
    let parts = breakdown_rule(&rule);
    assert_eq!(parts.len(), 2 * 2 * 2 + 2);
    assert_eq!(parts[0], with_names(r(&[""], &["get"], &["pods"]), &["a"]));
    assert_eq!(parts[1], with_names(r(&[""], &["get"], &["pods"]), &["b"]));
    assert_eq!(parts[2], with_names(r(&[""], &["list"], &["pods"]), &["a"]));
    assert_eq!(parts[8], u(&["/x"], &["get"]));
    assert_eq!(parts[9], u(&["/x"], &["list"]));
}

#[test]
fn compact_rules_merges_verbs_of_simple_rules() {
    let missing = vec![
        r(&[""], &["get"], &["pods"]),
        u(&["/x"], &["get"]),
        r(&[""], &["list"], &["pods"]),
        with_names(r(&[""], &["get"], &["pods"]), &["p1"]),
        r(&["apps"], &["get"], &["pods"]),
        r(&[""], &["get"], &["pods"]),
    ];
    let compacted = compact_rules(&missing);
    assert_eq!(
        compacted,
        vec![
            u(&["/x"], &["get"]),
            r(&[""], &["get", "list"], &["pods"]),
            with_names(r(&[""], &["get"], &["pods"]), &["p1"]),
            r(&["apps"], &["get"], &["pods"]),
        ]
    );
}

#[test]
fn compact_string_shows_set_fields_go_style() {
    assert_eq!(
        compact_string(&r(&[""], &["get"], &["pods"])),
        r#"{APIGroups:[""], Resources:["pods"], Verbs:["get"]}"#
    );
    assert_eq!(
        compact_string(&u(&["/healthz", "/version"], &["get"])),
        r#"{NonResourceURLs:["/healthz" "/version"], Verbs:["get"]}"#
    );
    assert_eq!(
        compact_string(&with_names(
            r(&["apps"], &["get", "update"], &["deployments"]),
            &["web"]
        )),
        r#"{APIGroups:["apps"], Resources:["deployments"], ResourceNames:["web"], Verbs:["get" "update"]}"#
    );
}
