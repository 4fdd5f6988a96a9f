//! Wire fidelity: what real clients compare byte for byte or decode strictly. Status bodies in
//! upstream's exact serializations (400, 403, 404, 409, 410, 422), objects in Go's field order
//! with upstream's zero values (a Service's `status: {loadBalancer: {}}`) on every verb,
//! PartialObjectMetadata on every verb that takes `as=`, and the official Python client's typed
//! models (pinned and newest release) over every served kind.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{raw, watch_lines, Backend, TestServer};
use serde_json::{json, Value};

const JSON: &str = "application/json";
const POM: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const POM_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

/// Upstream's Status body: Go's field order, no spaces, a trailing newline.
fn status(message: &str, reason: &str, details: Option<Value>, code: u16) -> String {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason});
    if let Some(d) = details {
        s["details"] = d;
    }
    s["code"] = json!(code);
    format!("{}\n", serde_json::to_string(&s).unwrap())
}

fn configmap(name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
        .to_string()
}

#[tokio::test]
async fn status_bodies_are_upstreams_bytes() {
    let s = TestServer::start(Backend::Embedded).await.unwrap();
    let cms = "/api/v1/namespaces/default/configmaps";

    // 404
    let r = s.get(&format!("{cms}/nope")).await;
    assert_eq!(r.status, 404);
    let want = status(
        "configmaps \"nope\" not found",
        "NotFound",
        Some(json!({"name": "nope", "kind": "configmaps"})),
        404,
    );
    assert_eq!(r.text, want);

    // 409 AlreadyExists, and 409 Conflict on a stale resourceVersion
    let r = s.req("POST", cms, JSON, &configmap("c")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let rv = r.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s.req("POST", cms, JSON, &configmap("c")).await;
    assert_eq!(
        r.text,
        status(
            "configmaps \"c\" already exists",
            "AlreadyExists",
            Some(json!({"name": "c", "kind": "configmaps"})),
            409
        )
    );
    let update = |rv: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "resourceVersion": rv}, "data": {"k": "w"}})
        .to_string()
    };
    let r = s.req("PUT", &format!("{cms}/c"), JSON, &update(&rv)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.req("PUT", &format!("{cms}/c"), JSON, &update(&rv)).await;
    assert_eq!(
        r.text,
        status(
            "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again",
            "Conflict",
            Some(json!({"name": "c", "kind": "configmaps"})),
            409
        )
    );

    // 400: the name in the body is not the one in the URL
    let r = s
        .req("PUT", &format!("{cms}/other"), JSON, &update(&rv))
        .await;
    assert_eq!(
        r.text,
        status(
            "the name of the object (c) does not match the name on the URL (other)",
            "BadRequest",
            None,
            400
        )
    );

    // 422 with its causes
    let bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"},
        "spec": {"containers": []}})
    .to_string();
    let r = s
        .req("POST", "/api/v1/namespaces/default/pods", JSON, &bad)
        .await;
    assert_eq!(
        r.text,
        status(
            "Pod \"bad\" is invalid: spec.containers: Required value",
            "Invalid",
            Some(json!({"name": "bad", "kind": "Pod", "causes": [
                {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"}
            ]})),
            422
        )
    );

    // 422 for invalid list options (kind ListOptions of meta.k8s.io, no name)
    let r = s
        .get(&format!("{cms}?resourceVersionMatch=NotOlderThan"))
        .await;
    assert_eq!(
        r.text,
        status(
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            "Invalid",
            Some(json!({"group": "meta.k8s.io", "kind": "ListOptions", "causes": [{
                "reason": "FieldValueForbidden",
                "message": "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
                "field": "resourceVersionMatch"}]})),
            422
        )
    );

    // 403: NamespaceLifecycle, with its NamespaceTerminating cause
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "going"}});
    assert_eq!(s.post("/api/v1/namespaces", &ns).await.status, 201);
    assert_eq!(s.delete("/api/v1/namespaces/going").await.status, 200);
    let r = s
        .req(
            "POST",
            "/api/v1/namespaces/going/configmaps",
            JSON,
            &configmap("late"),
        )
        .await;
    assert_eq!(
        r.text,
        status(
            "configmaps \"late\" is forbidden: unable to create new content in namespace going because it is being terminated",
            "Forbidden",
            Some(json!({"name": "late", "kind": "configmaps", "causes": [{
                "reason": "NamespaceTerminating",
                "message": "namespace going is being terminated",
                "field": "metadata.namespace"}]})),
            403
        )
    );

    // 410: a list at a compacted revision
    let current = s.revision().await;
    s.srv.store.compact(current).await.unwrap();
    let r = s
        .get(&format!(
            "{cms}?resourceVersion={}&resourceVersionMatch=Exact",
            current - 1
        ))
        .await;
    assert_eq!(
        r.text,
        status(
            "The resourceVersion for the provided list is too old.",
            "Expired",
            None,
            410
        )
    );
}

/// The keys of a JSON object in the order the text has them.
fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn objects_carry_upstreams_order_and_zero_values_on_every_verb() {
    let s = TestServer::start(Backend::Embedded).await.unwrap();
    let svcs = "/api/v1/namespaces/default/services";
    let body = json!({"metadata": {"name": "web", "labels": {"b": "2", "a": "1"}},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}},
        "apiVersion": "v1", "kind": "Service"});
    let created = s.post(svcs, &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let text = &created.text;
    assert!(
        text.starts_with("{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":"),
        "{text}"
    );
    assert!(
        text.ends_with(",\"status\":{\"loadBalancer\":{}}}\n"),
        "{text}"
    );
    assert_eq!(
        keys(&created.body["metadata"]),
        [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "labels"
        ]
    );
    // Go writes map keys sorted.
    assert_eq!(keys(&created.body["metadata"]["labels"]), ["a", "b"]);
    let got = s.get(&format!("{svcs}/web")).await;
    assert_eq!(got.text, created.text);
    let list = s.get(svcs).await;
    assert!(list.text.ends_with("]}\n"));
    assert_eq!(list.body["items"][0]["status"], json!({"loadBalancer": {}}));
    let events = watch_lines(
        &s.url,
        &format!("{svcs}?watch=true&timeoutSeconds=2"),
        1,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(events[0]["object"]["status"], json!({"loadBalancer": {}}));
    // An update that tries to set a status keeps the stored one.
    let mut put = got.body.clone();
    put["status"] = json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}});
    put["metadata"]["labels"]["c"] = json!("3");
    let updated = s.put(&format!("{svcs}/web"), &put).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["status"], json!({"loadBalancer": {}}));
    // Status bodies of a successful delete are in order too.
    let deleted = s.delete(&format!("{svcs}/web")).await;
    assert!(
        deleted.text.starts_with(
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Success\",\"details\":{\"name\":\"web\",\"kind\":\"services\",\"uid\":"
        ),
        "{}",
        deleted.text
    );
}

fn is_metadata_only(v: &Value, name: &str) -> bool {
    v["kind"] == "PartialObjectMetadata"
        && v["apiVersion"] == "meta.k8s.io/v1"
        && v["metadata"]["name"] == name
        && keys(v) == ["kind", "apiVersion", "metadata"]
}

#[tokio::test]
async fn partial_object_metadata_on_every_verb_that_takes_as() {
    let s = TestServer::start(Backend::Embedded).await.unwrap();
    let cms = "/api/v1/namespaces/default/configmaps";
    let with = |accept: &'static str, ct: &'static str| [("accept", accept), ("content-type", ct)];
    // create
    let r = raw(
        &s.url,
        "POST",
        cms,
        &with(POM, JSON),
        configmap("m").into_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(is_metadata_only(&r.body, "m"), "create: {}", r.text);
    // get
    let r = raw(&s.url, "GET", &format!("{cms}/m"), &with(POM, JSON), vec![]).await;
    assert!(is_metadata_only(&r.body, "m"), "get: {}", r.text);
    // list
    let r = raw(&s.url, "GET", cms, &with(POM_LIST, JSON), vec![]).await;
    assert_eq!(r.body["kind"], "PartialObjectMetadataList", "{}", r.text);
    assert!(
        is_metadata_only(&r.body["items"][0], "m"),
        "list: {}",
        r.text
    );
    // patch (kube-rs' patch_metadata asks this)
    let r = raw(
        &s.url,
        "PATCH",
        &format!("{cms}/m"),
        &with(POM, "application/merge-patch+json"),
        br#"{"metadata":{"labels":{"patched":"yes"}}}"#.to_vec(),
    )
    .await;
    assert!(is_metadata_only(&r.body, "m"), "patch: {}", r.text);
    assert_eq!(r.body["metadata"]["labels"]["patched"], "yes");
    // update
    let got = s.get(&format!("{cms}/m")).await.body;
    let r = raw(
        &s.url,
        "PUT",
        &format!("{cms}/m"),
        &with(POM, JSON),
        got.to_string().into_bytes(),
    )
    .await;
    assert!(is_metadata_only(&r.body, "m"), "update: {}", r.text);
    // watch
    let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let req = http::Request::get(format!("{}{cms}?watch=true&timeoutSeconds=1", s.url))
        .header("accept", POM)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let first: Value =
        serde_json::from_str(String::from_utf8_lossy(&body).lines().next().unwrap()).unwrap();
    assert!(is_metadata_only(&first["object"], "m"), "watch: {first}");
    // delete (a ConfigMap is gone at once: the Status stays a Status, as upstream)
    let r = raw(
        &s.url,
        "DELETE",
        &format!("{cms}/m"),
        &with(POM, JSON),
        vec![],
    )
    .await;
    assert_eq!(r.body["kind"], "Status", "{}", r.text);
    // delete of an object that stays (a finalizer) answers its metadata
    let mut kept: Value = serde_json::from_str(&configmap("kept")).unwrap();
    kept["metadata"]["finalizers"] = json!(["example.com/hold"]);
    assert_eq!(s.post(cms, &kept).await.status, 201);
    let r = raw(
        &s.url,
        "DELETE",
        &format!("{cms}/kept"),
        &with(POM, JSON),
        vec![],
    )
    .await;
    assert!(is_metadata_only(&r.body, "kept"), "delete: {}", r.text);
    // deletecollection
    assert_eq!(
        s.post(
            cms,
            &serde_json::from_str::<Value>(&configmap("n")).unwrap()
        )
        .await
        .status,
        201
    );
    let r = raw(
        &s.url,
        "DELETE",
        &format!("{cms}?labelSelector="),
        &with(POM_LIST, JSON),
        vec![],
    )
    .await;
    assert_eq!(r.body["kind"], "PartialObjectMetadataList", "{}", r.text);
    assert!(r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["kind"] == "PartialObjectMetadata"));
}

#[tokio::test]
async fn kube_rs_patch_metadata_gets_partial_object_metadata() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    let s = TestServer::start(Backend::Embedded).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(s.client(), "default");
    let cm: ConfigMap = serde_json::from_str(&configmap("meta")).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let patch = json!({"metadata": {"annotations": {"touched": "yes"}}});
    let meta = api
        .patch_metadata("meta", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(
        meta.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    assert_eq!(
        meta.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("touched"))
            .map(String::as_str),
        Some("yes")
    );
    let got = api.get_metadata("meta").await.unwrap();
    assert_eq!(got.metadata.name.as_deref(), Some("meta"));
}

fn run_python(python: &std::path::Path, kubeconfig: &std::path::Path, suffix: &str) {
    let script = testkit::repo_root().join("tests/python/fidelity_check.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(kubeconfig)
        .arg(suffix)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_typed_models_accept_every_kind() {
    let clients: Vec<testkit::python::PythonClient> =
        [testkit::python::pinned(), testkit::python::newest()]
            .into_iter()
            .flatten()
            .collect();
    if clients.is_empty() {
        return;
    }
    let s = TestServer::start(Backend::Embedded).await.unwrap();
    let kubeconfig = s.dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, apiserver::kubeconfig::render(&s.url, "py")).unwrap();
    for (i, c) in clients.iter().enumerate() {
        eprintln!("python client {} ({})", c.version, c.python.display());
        let python = c.python.clone();
        let kc = kubeconfig.clone();
        tokio::task::spawn_blocking(move || run_python(&python, &kc, &format!("v{i}")))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_componentstatuses_and_replication_controllers() {
    let Some(kubectl) = testkit::kubectl() else {
        return;
    };
    let s = TestServer::start(Backend::Embedded).await.unwrap();
    let kubeconfig = s.dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, apiserver::kubeconfig::render(&s.url, "k")).unwrap();
    let kc = |args: &[&str]| {
        let o = Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    let (ok, out) = kc(&["get", "cs"]);
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with("Warning")).collect();
    assert!(lines[0].starts_with("NAME"), "{out}");
    assert!(
        lines[0].contains("STATUS") && lines[0].contains("MESSAGE") && lines[0].contains("ERROR"),
        "{out}"
    );
    assert!(lines.iter().any(|l| l.starts_with("scheduler ")), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("embedded-store") && l.contains("Healthy")),
        "{out}"
    );
    let rc = s.dir.path().join("rc.yaml");
    std::fs::write(
        &rc,
        "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: legacy\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels: {app: legacy}\n    spec:\n      containers:\n      - {name: c, image: busybox:latest}\n",
    )
    .unwrap();
    let (ok, out) = kc(&["apply", "-f", rc.to_str().unwrap()]);
    assert!(ok, "{out}");
    let (ok, out) = kc(&["get", "rc", "-o", "wide"]);
    assert!(ok, "{out}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert!(out.contains("app=legacy"), "{out}");
    let (ok, out) = kc(&["scale", "rc", "legacy", "--replicas=4"]);
    assert!(ok, "{out}");
    let (ok, out) = kc(&["get", "rc", "legacy", "-o", "jsonpath={.spec.replicas}"]);
    assert!(ok && out.trim() == "4", "{out}");
}

#[tokio::test]
async fn kube_rs_ephemeral_containers_subresource() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    let s = TestServer::start(Backend::Embedded).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "target"},
        "spec": {"containers": [{"name": "app", "image": "busybox:latest"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    // What kubectl debug sends: a strategic merge patch adding one ephemeral container.
    let patch = json!({"spec": {"ephemeralContainers": [{"name": "dbg", "image": "busybox:latest",
        "targetContainerName": "app", "stdin": true, "tty": true}]}});
    let patched = pods
        .patch_ephemeral_containers("target", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let spec = patched.spec.unwrap();
    let ec = &spec.ephemeral_containers.as_ref().unwrap()[0];
    assert_eq!(ec.target_container_name.as_deref(), Some("app"));
    // defaulted like any container
    assert_eq!(
        ec.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    let got = pods.get_ephemeral_containers("target").await.unwrap();
    assert_eq!(
        got.spec
            .as_ref()
            .unwrap()
            .ephemeral_containers
            .as_ref()
            .unwrap()
            .len(),
        1
    );
    // Only ephemeral containers change through it: a label in the body is dropped.
    let mut labelled = got.clone();
    labelled.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
    let replaced = pods
        .replace_ephemeral_containers("target", &PostParams::default(), &labelled)
        .await
        .unwrap();
    assert!(replaced.metadata.labels.is_none());
    // Once added, never removed.
    let mut other = replaced.clone();
    other.spec.as_mut().unwrap().ephemeral_containers = Some(vec![]);
    let err = pods
        .replace_ephemeral_containers("target", &PostParams::default(), &other)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 422);
    assert!(
        status
            .message
            .contains("existing ephemeral containers \"dbg\" may not be removed"),
        "{}",
        status.message
    );
    // Through the main resource they cannot change.
    let main =
        json!({"spec": {"ephemeralContainers": [{"name": "dbg2", "image": "busybox:latest"}]}});
    assert!(pods
        .patch("target", &PatchParams::default(), &Patch::Strategic(&main))
        .await
        .is_err());
    let pod = pods.get("target").await.unwrap();
    assert!(pod.metadata.labels.is_none());
    assert_eq!(pod.spec.unwrap().ephemeral_containers.unwrap().len(), 1);
}
