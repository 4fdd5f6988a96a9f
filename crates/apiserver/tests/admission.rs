//! The admission chain through HTTP (issue 15), on an in-process apiserver whose static tokens
//! name an admin (system:masters) and the kubelet of node n1: ServiceAccount defaults and
//! mounts the token volume or refuses a pod whose ServiceAccount is missing; NodeRestriction
//! keeps n1 to its own pods; PodSecurity enforces and warns by namespace labels.

mod common;

use std::sync::Arc;

use apiserver::admission::{Plugin, Plugins};
use apiserver::authn::Authenticator;
use apiserver::authz::Authorizer;
use apiserver::{ApiServer, Security};
use auth::UserInfo;
use serde_json::{json, Value};

struct Server {
    url: String,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..UserInfo::default()
    }
}

async fn start(plugins: Plugins) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(common::Backend::Embedded, &dir, None).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = common::test_config(addr);
    config.admission = plugins;
    let security = Security {
        authn: Authenticator::anonymous_only()
            .with_token("admin", user("admin", &["system:masters"]))
            .with_token("n1", user("system:node:n1", &["system:nodes"])),
        authz: Authorizer::always_allow(),
        sa_tokens: None,
    };
    let srv: Arc<ApiServer> = ApiServer::start_secured(store, config, security)
        .await
        .unwrap();
    let router = srv.router();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Server {
        url: format!("http://{addr}"),
        _dir: dir,
        task,
    }
}

impl Server {
    async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        ct: &str,
        body: &Value,
    ) -> common::Resp {
        let auth = format!("Bearer {token}");
        common::raw(
            &self.url,
            method,
            path,
            &[("authorization", &auth), ("content-type", ct)],
            body.to_string().into_bytes(),
        )
        .await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> common::Resp {
        self.call(token, "POST", path, "application/json", &body)
            .await
    }

    async fn namespace(&self, name: &str, labels: Value) {
        let r = self
            .post(
                "admin",
                "/api/v1/namespaces",
                json!({"metadata": {"name": name, "labels": labels}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

#[tokio::test]
async fn service_account_admission_defaults_mounts_and_refuses() {
    let s = start(Plugins::default()).await;
    s.namespace("a", json!({})).await;
    let r = s.post("admin", "/api/v1/namespaces/a/pods", pod("p")).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "pods \"p\" is forbidden: error looking up service account a/default: serviceaccount \"default\" not found"
    );
    let r = s
        .post(
            "admin",
            "/api/v1/namespaces/a/serviceaccounts",
            json!({"metadata": {"name": "default"}, "imagePullSecrets": [{"name": "reg"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = s.post("admin", "/api/v1/namespaces/a/pods", pod("p")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let spec = &r.body["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["imagePullSecrets"], json!([{"name": "reg"}]));
    let volume = &spec["volumes"][0];
    let vname = volume["name"].as_str().unwrap();
    assert!(
        vname.starts_with("kube-api-access-") && vname.len() == "kube-api-access-".len() + 5,
        "{vname}"
    );
    assert_eq!(volume["projected"]["defaultMode"], 420);
    assert_eq!(
        volume["projected"]["sources"][0],
        json!({"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}})
    );
    assert_eq!(
        spec["containers"][0]["volumeMounts"],
        json!([{"name": vname, "readOnly": true,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])
    );
    // automountServiceAccountToken: false on the pod is honoured
    let mut quiet = pod("q");
    quiet["spec"]["automountServiceAccountToken"] = json!(false);
    let r = s.post("admin", "/api/v1/namespaces/a/pods", quiet).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body["spec"].get("volumes").is_none(), "{}", r.body);
    assert_eq!(r.body["spec"]["serviceAccountName"], "default");
}

#[tokio::test]
async fn node_restriction_keeps_a_kubelet_to_its_own_pods() {
    let s = start(
        Plugins::default()
            .without(Plugin::ServiceAccount)
            .with(Plugin::NodeRestriction),
    )
    .await;
    for (name, node) in [("theirs", "n2"), ("mine", "n1")] {
        let mut p = pod(name);
        p["spec"]["nodeName"] = json!(node);
        let r = s.post("admin", "/api/v1/namespaces/default/pods", p).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let patch = json!({"status": {"phase": "Running"}});
    let ct = "application/merge-patch+json";
    let r = s
        .call(
            "n1",
            "PATCH",
            "/api/v1/namespaces/default/pods/theirs/status",
            ct,
            &patch,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "pods \"theirs\" is forbidden: node \"n1\" can only update pod status for pods with spec.nodeName set to itself"
    );
    let r = s
        .call(
            "n1",
            "PATCH",
            "/api/v1/namespaces/default/pods/mine/status",
            ct,
            &patch,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"]["phase"], "Running");
    let mut own = pod("made-by-node");
    own["spec"]["nodeName"] = json!("n1");
    let r = s.post("n1", "/api/v1/namespaces/default/pods", own).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "pods \"made-by-node\" is forbidden: pod does not have \"kubernetes.io/config.mirror\" annotation, node \"n1\" can only create mirror pods"
    );
    let r = s
        .call(
            "n1",
            "DELETE",
            "/api/v1/namespaces/default/pods/theirs",
            "application/json",
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "pods \"theirs\" is forbidden: node \"n1\" can only delete pods with spec.nodeName set to itself"
    );
}

#[tokio::test]
async fn pod_security_enforces_and_warns_by_namespace_labels() {
    let s = start(Plugins::default().without(Plugin::ServiceAccount)).await;
    s.namespace(
        "strict",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    s.namespace(
        "loose",
        json!({"pod-security.kubernetes.io/warn": "baseline"}),
    )
    .await;
    let mut privileged = pod("priv");
    privileged["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let r = s
        .post(
            "admin",
            "/api/v1/namespaces/strict/pods",
            privileged.clone(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let msg = r.body["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "pods \"priv\" is forbidden: violates PodSecurity \"restricted:latest\": privileged (container \"c\" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false)"
        ),
        "{msg}"
    );
    let r = s
        .post("admin", "/api/v1/namespaces/loose/pods", privileged)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let warnings: Vec<&str> = r
        .headers
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(
        warnings,
        ["299 - \"would violate PodSecurity \\\"baseline:latest\\\": privileged (container \\\"c\\\" must not set securityContext.privileged=true)\""]
    );
    // a workload in the warn namespace is warned about, on update too
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"hostNetwork": true,
            "containers": [{"name": "c", "image": "nginx"}]}}}});
    let r = s
        .post(
            "admin",
            "/apis/apps/v1/namespaces/loose/deployments",
            deploy,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.headers.get("warning").is_some(), "{:?}", r.headers);
    let r = s
        .call(
            "admin",
            "PATCH",
            "/apis/apps/v1/namespaces/loose/deployments/d",
            "application/merge-patch+json",
            &json!({"spec": {"replicas": 2}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let w = r.headers.get("warning").unwrap().to_str().unwrap();
    assert!(w.contains("host namespaces (hostNetwork=true)"), "{w}");
}
