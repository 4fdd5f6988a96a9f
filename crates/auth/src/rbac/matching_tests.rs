//! Rule and subject matching, ported from upstream's `TestRuleMatches` (rbac_test.go), the
//! evaluation helpers' semantics and `TestAppliesTo` (validation/rule_test.go), plus
//! `forbiddenMessage`'s three forms.

use super::test_support::*;
use super::*;

fn resource(verb: &str, group: &str, resource: &str, subresource: &str, name: &str) -> Attributes {
    Attributes {
        subresource: subresource.into(),
        name: name.into(),
        ..resource_request(UserInfo::default(), verb, group, resource, "ns")
    }
}

fn path(verb: &str, path: &str) -> Attributes {
    path_request(UserInfo::default(), verb, path)
}

/// (verb, group, resource, subresource, expected)
type ResourceCase = (&'static str, &'static str, &'static str, &'static str, bool);

fn check_resource_cases(name: &str, rule: &PolicyRule, cases: &[ResourceCase]) {
    for (verb, group, res, sub, expected) in cases {
        let a = resource(verb, group, res, sub, "");
        assert_eq!(
            rule_allows(rule, &a),
            *expected,
            "{name}: {verb} {group}/{res}/{sub}"
        );
    }
}

#[test]
fn star_verb_exact_match_other() {
    let r = rule("*", "group1", "resource1", "");
    check_resource_cases(
        "star verb",
        &r,
        &[
            ("verb1", "group1", "resource1", "", true),
            ("verb1", "group2", "resource1", "", false),
            ("verb1", "group1", "resource2", "", false),
            ("verb1", "group2", "resource2", "", false),
            ("verb2", "group1", "resource1", "", true),
            ("verb2", "group2", "resource1", "", false),
            ("verb2", "group1", "resource2", "", false),
            ("verb2", "group2", "resource2", "", false),
        ],
    );
}

#[test]
fn star_group_exact_match_other() {
    let r = rule("verb1", "*", "resource1", "");
    check_resource_cases(
        "star group",
        &r,
        &[
            ("verb1", "group1", "resource1", "", true),
            ("verb1", "group2", "resource1", "", true),
            ("verb1", "group1", "resource2", "", false),
            ("verb1", "group2", "resource2", "", false),
            ("verb2", "group1", "resource1", "", false),
            ("verb2", "group2", "resource1", "", false),
        ],
    );
}

#[test]
fn star_resource_exact_match_other() {
    let r = rule("verb1", "group1", "*", "");
    check_resource_cases(
        "star resource",
        &r,
        &[
            ("verb1", "group1", "resource1", "", true),
            ("verb1", "group2", "resource1", "", false),
            ("verb1", "group1", "resource2", "", true),
            ("verb1", "group1", "resource2", "status", true),
            ("verb2", "group1", "resource1", "", false),
        ],
    );
}

#[test]
fn tuple_expansion() {
    let r = rule("verb1,verb2", "group1,group2", "resource1,resource2", "");
    for verb in ["verb1", "verb2"] {
        for group in ["group1", "group2"] {
            for res in ["resource1", "resource2"] {
                assert!(rule_allows(&r, &resource(verb, group, res, "", "")));
            }
        }
    }
}

#[test]
fn subresource_expansion() {
    let r = rule("*", "*", "resource1/subresource1", "");
    check_resource_cases(
        "subresource",
        &r,
        &[
            ("verb1", "group1", "resource1", "subresource1", true),
            ("verb1", "group2", "resource1", "subresource2", false),
            ("verb1", "group1", "resource2", "subresource1", false),
            ("verb2", "group1", "resource1", "subresource1", true),
            ("verb2", "group1", "resource1", "", false),
        ],
    );
}

#[test]
fn star_slash_subresource_matches_any_resource_with_that_subresource() {
    let r = rule("get", "*", "*/scale", "");
    check_resource_cases(
        "*/scale",
        &r,
        &[
            ("get", "apps", "deployments", "scale", true),
            ("get", "", "replicationcontrollers", "scale", true),
            ("get", "apps", "deployments", "status", false),
            ("get", "apps", "deployments", "", false),
            ("get", "apps", "deployments", "xscale", false),
        ],
    );
}

#[test]
fn a_resource_rule_does_not_cover_its_subresources() {
    let r = rule("*", "*", "pods", "");
    assert!(rule_allows(&r, &resource("get", "", "pods", "", "")));
    assert!(!rule_allows(&r, &resource("get", "", "pods", "status", "")));
    let status = rule("*", "*", "pods/status", "");
    assert!(rule_allows(
        &status,
        &resource("get", "", "pods", "status", "")
    ));
    assert!(!rule_allows(&status, &resource("get", "", "pods", "", "")));
}

#[test]
fn resource_names_restrict_to_named_objects_and_never_match_unnamed_requests() {
    let r = named_rule(
        "get,list,create,update,delete,deletecollection,watch",
        "",
        "configmaps",
        "cm1,cm2",
    );
    assert!(rule_allows(
        &r,
        &resource("get", "", "configmaps", "", "cm1")
    ));
    assert!(rule_allows(
        &r,
        &resource("update", "", "configmaps", "", "cm2")
    ));
    assert!(!rule_allows(
        &r,
        &resource("get", "", "configmaps", "", "cm3")
    ));
    // A list, watch, create or deletecollection without a name (a list with a
    // metadata.name field selector arrives with the name set) is not matched.
    for verb in ["list", "watch", "create", "deletecollection"] {
        assert!(
            !rule_allows(&r, &resource(verb, "", "configmaps", "", "")),
            "{verb}"
        );
    }
    assert!(rule_allows(
        &r,
        &resource("list", "", "configmaps", "", "cm1")
    ));
    // No names: any object, named or not.
    let any = rule("create", "", "configmaps", "");
    assert!(rule_allows(
        &any,
        &resource("create", "", "configmaps", "", "")
    ));
    assert!(rule_allows(
        &any,
        &resource("create", "", "configmaps", "", "x")
    ));
}

#[test]
fn star_nonresource_exact_match_other() {
    let r = rule("verb1", "", "", "*");
    for p in [
        "/foo",
        "/foo/bar",
        "/foo/baz",
        "/foo/bar/one",
        "/foo/baz/one",
    ] {
        assert!(rule_allows(&r, &path("verb1", p)), "{p}");
        assert!(!rule_allows(&r, &path("verb2", p)), "{p}");
    }
}

#[test]
fn star_nonresource_subpath() {
    let r = rule("verb1", "", "", "/foo/*");
    for (p, expected) in [
        ("/foo", false),
        ("/foo/bar", true),
        ("/foo/baz", true),
        ("/foo/bar/one", true),
        ("/foo/baz/one", true),
        ("/notfoo", false),
        ("/notfoo/bar", false),
        ("/notfoo/bar/one", false),
    ] {
        assert_eq!(rule_allows(&r, &path("verb1", p)), expected, "{p}");
    }
}

#[test]
fn star_verb_exact_nonresource() {
    let r = rule("*", "", "", "/foo,/foo/bar/one");
    for (p, expected) in [
        ("/foo", true),
        ("/foo/bar", false),
        ("/foo/baz", false),
        ("/foo/bar/one", true),
        ("/foo/baz/one", false),
    ] {
        assert_eq!(rule_allows(&r, &path("verb1", p)), expected, "{p}");
        assert_eq!(rule_allows(&r, &path("verb2", p)), expected, "{p}");
    }
}

#[test]
fn resource_rules_and_path_rules_do_not_cross() {
    let resources = rule("*", "*", "*", "");
    assert!(!rule_allows(&resources, &path("get", "/api")));
    let paths = rule("*", "", "", "*");
    assert!(!rule_allows(&paths, &resource("get", "", "pods", "", "")));
}

#[test]
fn applies_to_users_groups_and_service_accounts() {
    let alice = user("alice", "devs,system:authenticated");
    let sa = user(
        "system:serviceaccount:ns1:builder",
        "system:serviceaccounts",
    );
    let cases: &[(&str, &UserInfo, &str, bool)] = &[
        ("User:alice", &alice, "", true),
        ("User:bob", &alice, "", false),
        ("Group:devs", &alice, "", true),
        ("Group:ops", &alice, "", false),
        ("User:devs", &alice, "", false),
        ("ServiceAccount:ns1:builder", &sa, "", true),
        ("ServiceAccount:ns2:builder", &sa, "", false),
        ("ServiceAccount:ns1:other", &sa, "", false),
        // The namespace defaults to the RoleBinding's...
        ("ServiceAccount::builder", &sa, "ns1", true),
        ("ServiceAccount::builder", &sa, "ns2", false),
        // ...and a ClusterRoleBinding's SA without one matches nobody.
        ("ServiceAccount::builder", &sa, "", false),
        ("Group:system:serviceaccounts", &sa, "", true),
        ("Unknown:alice", &alice, "", false),
    ];
    for (spec, who, binding_ns, expected) in cases {
        let subject = &subjects(&[spec])[0];
        assert_eq!(
            applies_to(subject, who, binding_ns),
            *expected,
            "{spec} {} in {binding_ns:?}",
            who.name
        );
    }
    // A prefix of the name is not a match.
    let tricky = user("system:serviceaccount:ns1:builder-2", "");
    assert!(!applies_to(
        &subjects(&["ServiceAccount:ns1:builder"])[0],
        &tricky,
        ""
    ));
}

#[test]
fn forbidden_messages_are_upstreams() {
    let alice = user("alice", "system:authenticated");
    let list_pods = resource_request(alice.clone(), "list", "", "pods", "default");
    assert_eq!(
        forbidden_message(&list_pods),
        r#"User "alice" cannot list resource "pods" in API group "" in the namespace "default""#
    );
    let nodes = resource_request(alice.clone(), "get", "", "nodes", "");
    assert_eq!(
        forbidden_message(&nodes),
        r#"User "alice" cannot get resource "nodes" in API group "" at the cluster scope"#
    );
    let scale = Attributes {
        subresource: "scale".into(),
        ..resource_request(alice.clone(), "update", "apps", "deployments", "web")
    };
    assert_eq!(
        forbidden_message(&scale),
        r#"User "alice" cannot update resource "deployments/scale" in API group "apps" in the namespace "web""#
    );
    assert_eq!(
        forbidden_message(&path_request(user("x", ""), "get", "/foo")),
        r#"User "x" cannot get path "/foo""#
    );
    assert_eq!(
        forbidden_message(&path_request(UserInfo::default(), "get", "/foo")),
        r#"User "" cannot get path "/foo""#
    );
}

#[test]
fn forbidden_status_messages_are_new_forbidden() {
    let alice = user("alice", "");
    let get = Attributes {
        name: "web".into(),
        ..resource_request(alice.clone(), "get", "", "pods", "default")
    };
    assert_eq!(
        forbidden_status_message(&get, ""),
        r#"pods "web" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "default""#
    );
    let list = resource_request(alice.clone(), "list", "apps", "deployments", "");
    assert_eq!(
        forbidden_status_message(&list, "RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found"),
        "deployments.apps is forbidden: User \"alice\" cannot list resource \"deployments\" in API group \"apps\" \
         at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found"
    );
    assert_eq!(
        forbidden_status_message(&path_request(alice, "get", "/metrics"), ""),
        r#"forbidden: User "alice" cannot get path "/metrics""#
    );
}
