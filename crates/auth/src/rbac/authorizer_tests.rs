//! The authorizer and `rules_for`, ported from upstream's `TestAuthorizer` (rbac_test.go)
//! and `TestDefaultRuleResolver` (validation/rule_test.go), plus the decisions' reasons and
//! the bootstrap policy seen through the authorizer.

use super::test_support::*;
use super::*;
use crate::policy;

fn source(
    cluster_roles: Vec<ClusterRole>,
    roles: Vec<Role>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    role_bindings: Vec<RoleBinding>,
) -> RbacAuthorizer<MemoryRuleSource> {
    RbacAuthorizer::new(MemoryRuleSource {
        cluster_roles,
        roles,
        cluster_role_bindings,
        role_bindings,
    })
}

fn allowed(a: &RbacAuthorizer<MemoryRuleSource>, attrs: &Attributes) -> bool {
    a.authorize(attrs).allowed()
}

#[test]
fn admin_bound_in_one_namespace_only() {
    let a = source(
        vec![cluster_role("admin", vec![rule("*", "*", "*", "*")])],
        vec![],
        vec![],
        vec![binding(
            "ns1",
            "ClusterRole",
            "admin",
            &["User:admin", "Group:admins"],
        )],
    );
    for (who, groups, verb, res) in [
        ("admin", "", "get", "Pods"),
        ("admin", "", "watch", "Pods"),
        ("admin", "group1", "watch", "Foobar"),
        ("joe", "admins", "watch", "Foobar"),
        ("joe", "group1,admins", "watch", "Foobar"),
    ] {
        assert!(
            allowed(
                &a,
                &resource_request(user(who, groups), verb, "", res, "ns1")
            ),
            "{who} {verb} {res}"
        );
    }
    for (who, groups, verb, res, ns) in [
        ("admin", "", "GET", "Pods", "ns2"),
        ("admin", "", "GET", "Nodes", ""),
        ("admin", "admins", "GET", "Pods", "ns2"),
        ("admin", "admins", "GET", "Nodes", ""),
    ] {
        assert!(
            !allowed(&a, &resource_request(user(who, groups), verb, "", res, ns)),
            "{who} {verb} {res} {ns}"
        );
    }
}

#[test]
fn non_resource_urls_through_cluster_role_bindings() {
    let a = source(
        vec![
            cluster_role(
                "non-resource-url-getter",
                vec![rule("get", "", "", "/apis")],
            ),
            cluster_role("non-resource-url", vec![rule("*", "", "", "/apis")]),
            cluster_role(
                "non-resource-url-prefix",
                vec![rule("get", "", "", "/apis/*")],
            ),
        ],
        vec![],
        vec![
            cluster_binding("non-resource-url-getter", &["User:foo", "Group:bar"]),
            cluster_binding("non-resource-url", &["User:admin", "Group:admin"]),
            cluster_binding(
                "non-resource-url-prefix",
                &["User:prefixed", "Group:prefixed"],
            ),
        ],
        vec![],
    );
    let by_name = |n: &str| user(n, "");
    let by_group = |g: &str| user("", g);
    let pass = [
        (by_name("foo"), "get", "/apis"),
        (by_group("bar"), "get", "/apis"),
        (by_name("admin"), "get", "/apis"),
        (by_group("admin"), "get", "/apis"),
        (by_name("admin"), "watch", "/apis"),
        (by_group("admin"), "watch", "/apis"),
        (by_name("prefixed"), "get", "/apis/v1"),
        (by_group("prefixed"), "get", "/apis/v1"),
        (by_name("prefixed"), "get", "/apis/v1/foobar"),
    ];
    for (who, verb, p) in pass {
        assert!(
            allowed(&a, &path_request(who.clone(), verb, p)),
            "{who:?} {verb} {p}"
        );
    }
    let fail = [
        (by_name("foo"), "watch", "/apis"),
        (by_group("bar"), "watch", "/apis"),
        (by_name("foo"), "get", "/api/v1"),
        (by_name("admin"), "get", "/api/v1"),
        (by_group("admin"), "get", "/api/v1"),
        (by_name("prefixed"), "get", "/api/v1"),
        (by_name("prefixed"), "get", "/apis"),
    ];
    for (who, verb, p) in fail {
        assert!(
            !allowed(&a, &path_request(who.clone(), verb, p)),
            "{who:?} {verb} {p}"
        );
    }
}

#[test]
fn allow_reason_names_binding_role_and_subject() {
    let a = source(
        vec![cluster_role("reader", vec![rule("get", "", "pods", "")])],
        vec![role("ns1", "writer", vec![rule("create", "", "pods", "")])],
        vec![cluster_binding("reader", &["Group:devs", "User:alice"])],
        vec![binding(
            "ns1",
            "Role",
            "writer",
            &["ServiceAccount::builder"],
        )],
    );
    assert_eq!(
        a.authorize(&resource_request(user("alice", ""), "get", "", "pods", "ns1")),
        Decision::Allow(r#"RBAC: allowed by ClusterRoleBinding "reader" of ClusterRole "reader" to User "alice""#.into())
    );
    assert_eq!(
        a.authorize(&resource_request(user("bob", "devs"), "get", "", "pods", "")),
        Decision::Allow(r#"RBAC: allowed by ClusterRoleBinding "reader" of ClusterRole "reader" to Group "devs""#.into())
    );
    assert_eq!(
        a.authorize(&resource_request(user("system:serviceaccount:ns1:builder", ""), "create", "", "pods", "ns1")),
        Decision::Allow(
            r#"RBAC: allowed by RoleBinding "writer/ns1" of Role "writer" to ServiceAccount "builder/ns1""#.into()
        )
    );
    assert_eq!(
        a.authorize(&resource_request(
            user("carol", ""),
            "get",
            "",
            "pods",
            "ns1"
        )),
        Decision::NoOpinion(String::new())
    );
}

#[test]
fn missing_roles_are_reported_in_the_no_opinion_reason() {
    let a = source(
        vec![],
        vec![],
        vec![
            cluster_binding("gone", &["User:alice"]),
            cluster_binding("also-gone", &["User:alice"]),
        ],
        vec![
            binding("ns1", "Role", "vanished", &["User:alice"]),
            binding("ns1", "ClusterRole", "gone", &["User:bob"]),
        ],
    );
    assert_eq!(
        a.authorize(&resource_request(user("alice", ""), "get", "", "pods", "")),
        Decision::NoOpinion(r#"RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, clusterrole.rbac.authorization.k8s.io "also-gone" not found]"#.into())
    );
    let (rules, errors) = a.rules_for(&user("alice", ""), "ns1");
    assert!(rules.is_empty());
    assert_eq!(
        errors,
        vec![
            r#"clusterrole.rbac.authorization.k8s.io "gone" not found"#.to_string(),
            r#"clusterrole.rbac.authorization.k8s.io "also-gone" not found"#.to_string(),
            r#"role.rbac.authorization.k8s.io "vanished" not found"#.to_string(),
        ]
    );
    assert_eq!(
        a.authorize(&resource_request(user("bob", ""), "get", "", "pods", "ns1")),
        Decision::NoOpinion(
            r#"RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#.into()
        )
    );
}

#[test]
fn rules_for_lists_cluster_rules_then_the_namespace_rules() {
    let a = source(
        vec![
            cluster_role("cluster-reader", vec![rule("get", "", "nodes", "")]),
            cluster_role("edit-ish", vec![rule("create", "", "pods", "")]),
        ],
        vec![role(
            "ns1",
            "local",
            vec![rule("delete", "", "secrets", "")],
        )],
        vec![cluster_binding("cluster-reader", &["Group:readers"])],
        vec![
            binding("ns1", "Role", "local", &["User:alice"]),
            binding("ns1", "ClusterRole", "edit-ish", &["User:alice"]),
            binding("ns2", "ClusterRole", "edit-ish", &["User:alice"]),
        ],
    );
    let alice = user("alice", "readers");
    let (rules, errors) = a.rules_for(&alice, "ns1");
    assert!(errors.is_empty());
    assert_eq!(
        rules,
        vec![
            rule("get", "", "nodes", ""),
            rule("delete", "", "secrets", ""),
            rule("create", "", "pods", "")
        ]
    );
    let (cluster_only, _) = a.rules_for(&alice, "");
    assert_eq!(cluster_only, vec![rule("get", "", "nodes", "")]);
}

#[test]
fn unsupported_role_ref_kind_is_an_error() {
    let mut b = binding("ns1", "Role", "x", &["User:alice"]);
    b.role_ref.kind = "Thing".into();
    let a = source(vec![], vec![], vec![], vec![b]);
    let (_, errors) = a.rules_for(&user("alice", ""), "ns1");
    assert_eq!(
        errors,
        vec![r#"unsupported role reference kind: "Thing""#.to_string()]
    );
}

/// The bootstrap policy as the apiserver stores it, admin/edit/view aggregated the way the
/// controller does it over time (until nothing changes: view feeds edit, edit feeds admin).
fn bootstrap() -> RbacAuthorizer<MemoryRuleSource> {
    let mut cluster_roles = policy::cluster_roles();
    loop {
        let snapshot = cluster_roles.clone();
        for role in &mut cluster_roles {
            if let Some(rules) = aggregated_rules(role, &snapshot) {
                role.rules = Some(rules);
            }
        }
        if cluster_roles == snapshot {
            break;
        }
    }
    source(
        cluster_roles,
        policy::roles(),
        policy::cluster_role_bindings(),
        policy::role_bindings(),
    )
}

#[test]
fn bootstrap_policy_grants_what_upstream_grants() {
    let a = bootstrap();
    let anonymous = user(crate::names::ANONYMOUS, crate::names::UNAUTHENTICATED);
    let alice = user("alice", crate::names::AUTHENTICATED);
    let root = user("root", "system:masters,system:authenticated");
    assert!(allowed(
        &a,
        &path_request(anonymous.clone(), "get", "/healthz")
    ));
    assert!(allowed(
        &a,
        &path_request(anonymous.clone(), "get", "/version")
    ));
    assert!(!allowed(
        &a,
        &path_request(anonymous.clone(), "get", "/api")
    ));
    assert!(allowed(
        &a,
        &path_request(alice.clone(), "get", "/apis/apps/v1")
    ));
    assert!(!allowed(
        &a,
        &path_request(alice.clone(), "get", "/metrics")
    ));
    assert!(allowed(
        &a,
        &resource_request(
            alice.clone(),
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            ""
        )
    ));
    assert!(allowed(
        &a,
        &resource_request(
            alice.clone(),
            "create",
            "authentication.k8s.io",
            "selfsubjectreviews",
            ""
        )
    ));
    assert!(!allowed(
        &a,
        &resource_request(alice.clone(), "list", "", "pods", "default")
    ));
    assert!(allowed(
        &a,
        &resource_request(root.clone(), "delete", "apps", "deployments", "x")
    ));
    assert!(allowed(&a, &path_request(root, "post", "/anything")));

    let scheduler = user("system:kube-scheduler", crate::names::AUTHENTICATED);
    let mut bind = resource_request(scheduler.clone(), "create", "", "pods", "default");
    bind.subresource = "binding".into();
    assert!(allowed(&a, &bind));
    let lease = Attributes {
        name: "kube-scheduler".into(),
        ..resource_request(
            scheduler.clone(),
            "update",
            "coordination.k8s.io",
            "leases",
            "kube-system",
        )
    };
    assert!(allowed(&a, &lease));
    let other_lease = Attributes {
        name: "kube-controller-manager".into(),
        ..lease.clone()
    };
    assert!(!allowed(&a, &other_lease));
    let reader = Attributes {
        name: "extension-apiserver-authentication".into(),
        ..resource_request(scheduler, "get", "", "configmaps", "kube-system")
    };
    assert!(allowed(&a, &reader));

    let proxy = user("system:kube-proxy", crate::names::AUTHENTICATED);
    assert!(allowed(
        &a,
        &resource_request(
            proxy.clone(),
            "watch",
            "discovery.k8s.io",
            "endpointslices",
            ""
        )
    ));
    assert!(allowed(
        &a,
        &resource_request(proxy, "list", "networking.k8s.io", "servicecidrs", "")
    ));

    let rs = user(
        "system:serviceaccount:kube-system:replicaset-controller",
        "system:serviceaccounts",
    );
    assert!(allowed(
        &a,
        &resource_request(rs.clone(), "create", "", "pods", "default")
    ));
    assert!(!allowed(
        &a,
        &resource_request(rs, "delete", "", "secrets", "default")
    ));
    let sa = user(
        "system:serviceaccount:default:default",
        "system:serviceaccounts,system:authenticated",
    );
    assert!(allowed(&a, &path_request(sa, "get", "/openid/v1/jwks")));
}

#[test]
fn aggregated_bootstrap_roles_grant_through_role_bindings() {
    let mut a = bootstrap();
    let mut source = a.source().clone();
    source
        .role_bindings
        .push(binding("team", "ClusterRole", "view", &["User:viewer"]));
    source
        .role_bindings
        .push(binding("team", "ClusterRole", "edit", &["User:editor"]));
    source
        .role_bindings
        .push(binding("team", "ClusterRole", "admin", &["User:boss"]));
    a = RbacAuthorizer::new(source);
    let viewer = user("viewer", crate::names::AUTHENTICATED);
    let editor = user("editor", crate::names::AUTHENTICATED);
    let boss = user("boss", crate::names::AUTHENTICATED);
    assert!(allowed(
        &a,
        &resource_request(viewer.clone(), "list", "", "pods", "team")
    ));
    assert!(!allowed(
        &a,
        &resource_request(viewer.clone(), "get", "", "secrets", "team")
    ));
    assert!(!allowed(
        &a,
        &resource_request(viewer, "list", "", "pods", "other")
    ));
    assert!(allowed(
        &a,
        &resource_request(editor.clone(), "get", "", "secrets", "team")
    ));
    assert!(allowed(
        &a,
        &resource_request(editor.clone(), "create", "apps", "deployments", "team")
    ));
    assert!(allowed(
        &a,
        &resource_request(editor.clone(), "list", "", "pods", "team")
    ));
    assert!(!allowed(
        &a,
        &resource_request(
            editor,
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings",
            "team"
        )
    ));
    assert!(allowed(
        &a,
        &resource_request(
            boss.clone(),
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings",
            "team"
        )
    ));
    assert!(allowed(
        &a,
        &resource_request(boss, "delete", "", "configmaps", "team")
    ));
}
