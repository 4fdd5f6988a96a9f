//! rbac.authorization.k8s.io/v1 over HTTP on both store backends: CRUD of Role, ClusterRole,
//! RoleBinding and ClusterRoleBinding; upstream's validation (422 with its field paths, nothing
//! stored, roleRef immutable); the bootstrap policy present after start with its label and
//! annotation, reconciled on restart (removed rules come back, `autoupdate: "false"` objects are
//! left alone, nothing is written when all is in place); and the authorizer's in-memory index
//! seeing a new RoleBinding.

mod common;

use std::time::Duration;

use apiserver::rbac_index::RbacIndex;
use apiserver::ApiServer;
use auth::rbac::{covers, RuleSource};
use common::{test_config, Backend, TestServer};
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::{json, Value};

const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";
const GROUP: &str = "rbac.authorization.k8s.io";

fn roles(ns: &str) -> String {
    format!("{RBAC}/namespaces/{ns}/roles")
}

fn role_bindings(ns: &str) -> String {
    format!("{RBAC}/namespaces/{ns}/rolebindings")
}

fn cluster_roles() -> String {
    format!("{RBAC}/clusterroles")
}

fn cluster_role_bindings() -> String {
    format!("{RBAC}/clusterrolebindings")
}

fn pod_reader(name: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": name},
        "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]})
}

fn binding(kind: &str, name: &str, role_kind: &str, role: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
        "metadata": {"name": name},
        "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role},
        "subjects": [{"kind": "User", "name": "jane"},
                     {"kind": "ServiceAccount", "name": "builder", "namespace": "default"}]})
}

/// Creates, reads, lists, updates, patches and deletes one object at `collection`.
async fn crud(s: &TestServer, collection: &str, mut object: Value, change: (&str, Value)) {
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    let item = format!("{collection}/{name}");
    let r = s.post(collection, &object).await;
    assert_eq!(r.status, 201, "create {item}: {}", r.text);
    let revision = r.body["metadata"]["resourceVersion"].clone();
    assert_eq!(r.body["metadata"]["name"], name.as_str());
    assert!(r.body["metadata"]["uid"].is_string());
    assert!(
        r.body["metadata"].get("generation").is_none(),
        "RBAC objects track no generation: {}",
        r.text
    );
    let r = s.get(&item).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.get(collection).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["metadata"]["name"] == name.as_str()),
        "{name} listed"
    );
    assert_eq!(
        r.body["kind"],
        format!("{}List", object["kind"].as_str().unwrap())
    );
    let (field, value) = change;
    object[field] = value.clone();
    object["metadata"]["resourceVersion"] = revision;
    let r = s.put(&item, &object).await;
    assert_eq!(r.status, 200, "update {item}: {}", r.text);
    assert_eq!(r.body[field], value, "update {item}");
    let r = s
        .req(
            "PATCH",
            &item,
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"patched": "yes"}}}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "patch {item}: {}", r.text);
    assert_eq!(r.body["metadata"]["labels"]["patched"], "yes");
    assert_eq!(r.body[field], value, "patch keeps {field}");
    let r = s.delete(&item).await;
    assert_eq!(r.status, 200, "delete {item}: {}", r.text);
    assert_eq!(s.get(&item).await.status, 404);
}

async fn crud_of_every_kind(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let more_rules = json!([{"verbs": ["*"], "apiGroups": ["apps"], "resources": ["deployments"]}]);
    crud(
        &s,
        &roles("default"),
        pod_reader("reader"),
        ("rules", more_rules.clone()),
    )
    .await;
    let mut cluster_role = pod_reader("cluster-reader");
    cluster_role["kind"] = json!("ClusterRole");
    crud(&s, &cluster_roles(), cluster_role, ("rules", more_rules)).await;
    let more_subjects = json!([{"kind": "Group", "name": "devs", "apiGroup": GROUP}]);
    crud(
        &s,
        &role_bindings("default"),
        binding("RoleBinding", "readers", "Role", "reader"),
        ("subjects", more_subjects.clone()),
    )
    .await;
    crud(
        &s,
        &cluster_role_bindings(),
        binding("ClusterRoleBinding", "viewers", "ClusterRole", "view"),
        ("subjects", more_subjects),
    )
    .await;
}

#[tokio::test]
async fn crud_of_every_kind_embedded() {
    crud_of_every_kind(Backend::Embedded).await;
}

#[tokio::test]
async fn crud_of_every_kind_etcd() {
    crud_of_every_kind(Backend::Etcd).await;
}

#[tokio::test]
async fn subjects_and_role_ref_are_defaulted() {
    let s = TestServer::start(Backend::Embedded).await.unwrap();
    let mut b = binding("RoleBinding", "defaulted", "ClusterRole", "view");
    b["roleRef"]["apiGroup"] = json!("");
    let r = s.post(&role_bindings("default"), &b).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["roleRef"]["apiGroup"], GROUP);
    assert_eq!(r.body["subjects"][0]["apiGroup"], GROUP);
    assert!(
        r.body["subjects"][1].get("apiGroup").is_none(),
        "{}",
        r.text
    );
}

/// The 422 message and causes of a malformed object, with nothing written.
async fn refused(s: &TestServer, collection: &str, object: &Value) -> (String, Vec<String>) {
    let before = s.revision().await;
    let r = s.post(collection, object).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["reason"], "Invalid");
    assert_eq!(s.revision().await, before, "nothing stored");
    let causes = r.body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}: {}",
                c["field"].as_str().unwrap(),
                c["message"].as_str().unwrap()
            )
        })
        .collect();
    (r.body["message"].as_str().unwrap().to_string(), causes)
}

#[tokio::test]
async fn malformed_objects_are_refused_with_upstreams_field_paths() {
    let s = TestServer::start(Backend::Embedded).await.unwrap();
    let mut role = pod_reader("bad");
    role["rules"] = json!([{"apiGroups": [""], "resources": ["pods"]},
        {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]);
    let (message, causes) = refused(&s, &roles("default"), &role).await;
    assert_eq!(
        message,
        "Role.rbac.authorization.k8s.io \"bad\" is invalid: [rules[0].verbs: Required value: verbs must contain at least one value, rules[1].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs]"
    );
    assert_eq!(causes.len(), 2);

    let aggregated = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": []}});
    let (_, causes) = refused(&s, &cluster_roles(), &aggregated).await;
    assert_eq!(
        causes,
        ["aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"]
    );

    let mut b = binding("ClusterRoleBinding", "bad", "Role", "view");
    b["subjects"] = json!([{"kind": "ServiceAccount", "name": "builder"},
        {"kind": "Robot", "name": "r2"}]);
    let (_, causes) = refused(&s, &cluster_role_bindings(), &b).await;
    assert_eq!(
        causes,
        [
            "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
            "subjects[0].namespace: Required value",
            "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
        ]
    );

    let mut b = binding("RoleBinding", "bad", "Role", "a/b");
    b["roleRef"]["apiGroup"] = json!("example.com");
    let (_, causes) = refused(&s, &role_bindings("default"), &b).await;
    assert_eq!(
        causes,
        [
            "roleRef.apiGroup: Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\"",
            "roleRef.name: Invalid value: \"a/b\": may not contain '/'",
        ]
    );
}

#[tokio::test]
async fn role_ref_cannot_change() {
    let s = TestServer::start(Backend::Embedded).await.unwrap();
    let created = s
        .post(
            &role_bindings("default"),
            &binding("RoleBinding", "b", "ClusterRole", "view"),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let before = s.revision().await;
    let mut changed = created.body.clone();
    changed["roleRef"]["name"] = json!("edit");
    let r = s
        .put(&format!("{}/b", role_bindings("default")), &changed)
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "RoleBinding.rbac.authorization.k8s.io \"b\" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"
    );
    assert_eq!(s.revision().await, before);
    let r = s
        .req(
            "PATCH",
            &format!("{}/b", role_bindings("default")),
            "application/merge-patch+json",
            r#"{"roleRef": {"kind": "Role"}}"#,
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
}

async fn get_ok(s: &TestServer, path: &str) -> Value {
    let r = s.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.body
}

fn assert_bootstrap_metadata(object: &Value) {
    let meta = &object["metadata"];
    assert_eq!(
        meta["labels"]["kubernetes.io/bootstrapping"], "rbac-defaults",
        "{object}"
    );
    assert_eq!(
        meta["annotations"]["rbac.authorization.kubernetes.io/autoupdate"], "true",
        "{object}"
    );
}

async fn bootstrap_policy_is_present(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:basic-user",
        "system:discovery",
        "system:public-info-viewer",
        "system:node-proxier",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:kube-dns",
        "system:auth-delegator",
        "system:node",
        "system:controller:deployment-controller",
    ] {
        let role = get_ok(&s, &format!("{}/{name}", cluster_roles())).await;
        assert_bootstrap_metadata(&role);
    }
    let admin = get_ok(&s, &format!("{}/cluster-admin", cluster_roles())).await;
    assert_eq!(
        admin["rules"],
        json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
               {"verbs": ["*"], "nonResourceURLs": ["*"]}])
    );
    let view = get_ok(&s, &format!("{}/view", cluster_roles())).await;
    assert_eq!(
        view["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]
            ["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );
    let subjects = |b: &Value| -> Vec<String> {
        b["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                format!(
                    "{}:{}",
                    s["kind"].as_str().unwrap(),
                    s["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    for (name, expected) in [
        ("cluster-admin", vec!["Group:system:masters"]),
        ("system:basic-user", vec!["Group:system:authenticated"]),
        ("system:discovery", vec!["Group:system:authenticated"]),
        (
            "system:public-info-viewer",
            vec!["Group:system:authenticated", "Group:system:unauthenticated"],
        ),
        ("system:node-proxier", vec!["User:system:kube-proxy"]),
        ("system:kube-scheduler", vec!["User:system:kube-scheduler"]),
        (
            "system:kube-controller-manager",
            vec!["User:system:kube-controller-manager"],
        ),
        ("system:kube-dns", vec!["ServiceAccount:kube-dns"]),
        ("system:node", vec![]),
        (
            "system:controller:deployment-controller",
            vec!["ServiceAccount:deployment-controller"],
        ),
    ] {
        let b = get_ok(&s, &format!("{}/{name}", cluster_role_bindings())).await;
        assert_bootstrap_metadata(&b);
        assert_eq!(subjects(&b), expected, "{name}");
        assert_eq!(b["roleRef"]["kind"], "ClusterRole");
        assert_eq!(b["roleRef"]["name"], name);
    }
    for name in ["admin", "edit", "view", "system:auth-delegator"] {
        let r = s.get(&format!("{}/{name}", cluster_role_bindings())).await;
        assert_eq!(r.status, 404, "upstream binds no {name}");
    }
    let leader = get_ok(
        &s,
        &format!(
            "{}/system::leader-locking-kube-scheduler",
            roles("kube-system")
        ),
    )
    .await;
    assert_bootstrap_metadata(&leader);
    let rb = get_ok(
        &s,
        &format!(
            "{}/system:controller:bootstrap-signer",
            role_bindings("kube-public")
        ),
    )
    .await;
    assert_eq!(rb["roleRef"]["kind"], "Role");
    // every object of auth::policy is there, and a second pass writes nothing
    for (collection, count) in [
        (cluster_roles(), auth::policy::cluster_roles().len()),
        (
            cluster_role_bindings(),
            auth::policy::cluster_role_bindings().len(),
        ),
    ] {
        let list = get_ok(&s, &collection).await;
        assert_eq!(
            list["items"].as_array().unwrap().len(),
            count,
            "{collection}"
        );
    }
    let before = s.revision().await;
    let again = apiserver::bootstrap_rbac::run(&s.srv).await.unwrap();
    assert_eq!(again, apiserver::bootstrap_rbac::Outcome::default());
    assert_eq!(s.revision().await, before);
}

#[tokio::test]
async fn bootstrap_policy_is_present_embedded() {
    bootstrap_policy_is_present(Backend::Embedded).await;
}

#[tokio::test]
async fn bootstrap_policy_is_present_etcd() {
    bootstrap_policy_is_present(Backend::Etcd).await;
}

/// A second apiserver over the same store, as after a restart.
async fn restart(s: &TestServer) -> std::sync::Arc<ApiServer> {
    ApiServer::start(s.srv.store.clone(), test_config(s.addr))
        .await
        .unwrap()
}

async fn reconciled_on_restart(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    // an administrator narrows a bootstrap role (services no longer listed) and adds a rule
    let path = format!("{}/system:kube-dns", cluster_roles());
    let mut dns = get_ok(&s, &path).await;
    let original: Vec<PolicyRule> = serde_json::from_value(dns["rules"].clone()).unwrap();
    let mine = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]});
    dns["rules"] = json!([{"verbs": ["list", "watch"], "apiGroups": [""],
        "resources": ["endpoints"]}, mine.clone()]);
    let narrowed: Vec<PolicyRule> = serde_json::from_value(dns["rules"].clone()).unwrap();
    assert!(
        !covers(&narrowed, &original).0,
        "the test takes something away"
    );
    let r = s.put(&path, &dns).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // ... and takes another bootstrap role out of reconciliation, emptying it
    let frozen_path = format!("{}/system:discovery", cluster_roles());
    let mut frozen = get_ok(&s, &frozen_path).await;
    frozen["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] =
        json!("false");
    frozen["rules"] = json!([]);
    let r = s.put(&frozen_path, &frozen).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // ... and a bootstrap binding loses its subjects
    let binding_path = format!("{}/system:kube-scheduler", cluster_role_bindings());
    let mut b = get_ok(&s, &binding_path).await;
    b["subjects"] = json!([{"kind": "User", "name": "someone-else", "apiGroup": GROUP}]);
    assert_eq!(s.put(&binding_path, &b).await.status, 200);

    let _restarted = restart(&s).await;

    let dns = get_ok(&s, &path).await;
    let rules: Vec<PolicyRule> = serde_json::from_value(dns["rules"].clone()).unwrap();
    assert!(covers(&rules, &original).0, "restored: {}", dns["rules"]);
    assert!(
        dns["rules"].as_array().unwrap().contains(&mine),
        "the administrator's rule stays"
    );
    let frozen = get_ok(&s, &frozen_path).await;
    assert_eq!(frozen["rules"], json!([]), "autoupdate=false is left alone");
    let b = get_ok(&s, &binding_path).await;
    let names: Vec<&str> = b["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["someone-else", "system:kube-scheduler"]);
    // a further restart finds everything in place
    let before = s.revision().await;
    let _again = restart(&s).await;
    assert_eq!(
        s.revision().await,
        before,
        "a restart with all in place writes nothing"
    );
}

#[tokio::test]
async fn reconciled_on_restart_embedded() {
    reconciled_on_restart(Backend::Embedded).await;
}

#[tokio::test]
async fn reconciled_on_restart_etcd() {
    reconciled_on_restart(Backend::Etcd).await;
}

#[tokio::test]
async fn the_authorizers_index_sees_a_new_role_binding() {
    let s = TestServer::start(Backend::Embedded).await.unwrap();
    let index = RbacIndex::start(&s.srv.cache);
    let r = s
        .post(
            &role_bindings("default"),
            &binding("RoleBinding", "readers", "ClusterRole", "view"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let bindings = index.role_bindings("default");
        let found = bindings
            .iter()
            .find(|b| b.metadata.name.as_deref() == Some("readers"))
            .cloned();
        // the bootstrap objects count too
        let bootstrap = index.cluster_role("cluster-admin").is_some()
            && index
                .cluster_role_bindings()
                .iter()
                .any(|b| b.metadata.name.as_deref() == Some("system:basic-user"));
        if let (Some(b), true) = (found, bootstrap) {
            break b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the index never saw the binding and the bootstrap policy"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seen.role_ref.name, "view");
    assert_eq!(seen.subjects.as_ref().unwrap()[0].name, "jane");
}
