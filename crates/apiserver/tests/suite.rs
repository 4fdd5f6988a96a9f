//! The apiserver suite: Kubernetes semantics of the REST API (CRUD, subresources, patches,
//! selectors, paging, watch, deletion, allocation, bad input), run on both store backends.

mod common;

use std::time::Duration;

use common::{Backend, TestServer};
use serde_json::{json, Value};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(s) = super::TestServer::start(super::Backend::Embedded).await {
                        super::$name(s).await;
                    }
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(s) = super::TestServer::start(super::Backend::Etcd).await {
                        super::$name(s).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    crud_and_optimistic_concurrency,
    generation_and_status_split,
    scale_subresource,
    binding_sets_node_once,
    three_patch_types,
    selectors_and_paging,
    watch_resumes_and_filters,
    deletion_semantics,
    namespaces_lifecycle,
    service_allocation,
    priority_admission,
    bad_input_changes_nothing,
    dry_run_and_field_validation,
    table_and_metadata_rendering,
    bootstrap_objects,
    discovery_documents,
);

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "demo-web:v1"}]}
            }
        }
    })
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "p"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]}
    })
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";
const PODS: &str = "/api/v1/namespaces/default/pods";

fn rv(v: &Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

async fn crud_and_optimistic_concurrency(s: TestServer) {
    let created = s.post(CMS, &cm("a")).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let b = &created.body;
    assert!(!rv(b).is_empty());
    assert_eq!(b["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(b["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(b["metadata"]["namespace"], "default");

    let again = s.post(CMS, &cm("a")).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["reason"], "AlreadyExists");
    assert_eq!(again.body["message"], "configmaps \"a\" already exists");

    let got = s.get(&format!("{CMS}/a")).await;
    assert_eq!(got.status, 200);
    assert_eq!(rv(&got.body), rv(b));

    let mut upd = got.body.clone();
    upd["data"]["k"] = json!("v2");
    let ok = s.put(&format!("{CMS}/a"), &upd).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_ne!(rv(&ok.body), rv(b));
    // The same stale resourceVersion again: 409 Conflict.
    let stale = s.put(&format!("{CMS}/a"), &upd).await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.body["reason"], "Conflict");
    assert!(stale.body["message"]
        .as_str()
        .unwrap()
        .contains("the object has been modified"));
    // An update that changes nothing writes nothing.
    let before = s.revision().await;
    let same = s.put(&format!("{CMS}/a"), &ok.body).await;
    assert_eq!(same.status, 200);
    assert_eq!(rv(&same.body), rv(&ok.body));
    assert_eq!(s.revision().await, before);

    // generateName.
    let gen = s
        .post(
            CMS,
            &json!({"metadata": {"generateName": "gen-"}, "data": {}}),
        )
        .await;
    assert_eq!(gen.status, 201);
    let name = gen.body["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    let del = s.delete(&format!("{CMS}/a")).await;
    assert_eq!(del.status, 200);
    assert_eq!(del.body["status"], "Success");
    let gone = s.get(&format!("{CMS}/a")).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["message"], "configmaps \"a\" not found");
    assert_eq!(gone.body["details"]["kind"], "configmaps");
}

async fn generation_and_status_split(s: TestServer) {
    let created = s.post(DEPLOYS, &deployment("web", 1)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["metadata"]["generation"], 1);
    // Defaults as Kubernetes.
    assert_eq!(created.body["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(created.body["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(created.body["spec"]["progressDeadlineSeconds"], 600);

    // A status written through the main resource is ignored.
    let mut d = created.body.clone();
    d["status"] = json!({"replicas": 5});
    d["metadata"]["labels"]["extra"] = json!("x");
    let upd = s.put(&format!("{DEPLOYS}/web"), &d).await;
    assert_eq!(upd.status, 200, "{}", upd.text);
    assert!(upd.body["status"].get("replicas").is_none());
    assert_eq!(
        upd.body["metadata"]["generation"], 1,
        "labels do not bump generation"
    );

    // Status through /status: spec changes there are ignored, generation stays.
    let mut st = upd.body.clone();
    st["status"] = json!({"replicas": 3, "observedGeneration": 1});
    st["spec"]["replicas"] = json!(7);
    let s1 = s.put(&format!("{DEPLOYS}/web/status"), &st).await;
    assert_eq!(s1.status, 200, "{}", s1.text);
    assert_eq!(s1.body["status"]["replicas"], 3);
    assert_eq!(s1.body["spec"]["replicas"], 1);
    assert_eq!(s1.body["metadata"]["generation"], 1);

    // A spec change bumps generation.
    let mut sp = s1.body.clone();
    sp["spec"]["template"]["spec"]["containers"][0]["image"] = json!("demo-web:v2");
    let s2 = s.put(&format!("{DEPLOYS}/web"), &sp).await;
    assert_eq!(s2.status, 200, "{}", s2.text);
    assert_eq!(s2.body["metadata"]["generation"], 2);
    assert_eq!(s2.body["status"]["replicas"], 3, "status kept");
}

async fn scale_subresource(s: TestServer) {
    assert_eq!(s.post(DEPLOYS, &deployment("sc", 2)).await.status, 201);
    let scale = s.get(&format!("{DEPLOYS}/sc/scale")).await;
    assert_eq!(scale.status, 200);
    assert_eq!(scale.body["kind"], "Scale");
    assert_eq!(scale.body["apiVersion"], "autoscaling/v1");
    assert_eq!(scale.body["spec"]["replicas"], 2);
    assert_eq!(scale.body["status"]["selector"], "app=sc");
    let mut sc = scale.body.clone();
    sc["spec"]["replicas"] = json!(5);
    let put = s.put(&format!("{DEPLOYS}/sc/scale"), &sc).await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["spec"]["replicas"], 5);
    // Stale resourceVersion on the Scale: conflict.
    let stale = s.put(&format!("{DEPLOYS}/sc/scale"), &sc).await;
    assert_eq!(stale.status, 409);
    let patched = s
        .req(
            "PATCH",
            &format!("{DEPLOYS}/sc/scale"),
            "application/merge-patch+json",
            r#"{"spec":{"replicas":1}}"#,
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let d = s.get(&format!("{DEPLOYS}/sc")).await;
    assert_eq!(d.body["spec"]["replicas"], 1);
    assert_eq!(d.body["metadata"]["generation"], 3);
}

async fn binding_sets_node_once(s: TestServer) {
    let p = s.post(PODS, &pod("b1")).await;
    assert_eq!(p.status, 201, "{}", p.text);
    assert_eq!(p.body["status"]["phase"], "Pending");
    assert_eq!(p.body["status"]["qosClass"], "BestEffort");
    assert_eq!(p.body["spec"]["restartPolicy"], "Always");
    assert_eq!(p.body["spec"]["containers"][0]["imagePullPolicy"], "Always");
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b1"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}});
    let b = s.post(&format!("{PODS}/b1/binding"), &binding).await;
    assert_eq!(b.status, 201, "{}", b.text);
    let got = s.get(&format!("{PODS}/b1")).await;
    assert_eq!(got.body["spec"]["nodeName"], "node-1");
    let conds = got.body["status"]["conditions"].as_array().unwrap();
    assert!(conds
        .iter()
        .any(|c| c["type"] == "PodScheduled" && c["status"] == "True"));
    let again = s.post(&format!("{PODS}/b1/binding"), &binding).await;
    assert_eq!(again.status, 409);
    assert!(again.body["message"]
        .as_str()
        .unwrap()
        .contains("already assigned"));
    // A pod's spec is immutable apart from a few fields.
    let mut upd = got.body.clone();
    upd["spec"]["containers"][0]["name"] = json!("renamed");
    let bad = s.put(&format!("{PODS}/b1"), &upd).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let mut img = got.body.clone();
    img["spec"]["containers"][0]["image"] = json!("busybox:v2");
    assert_eq!(s.put(&format!("{PODS}/b1"), &img).await.status, 200);
}

async fn three_patch_types(s: TestServer) {
    assert_eq!(s.post(DEPLOYS, &deployment("pt", 1)).await.status, 201);
    let path = format!("{DEPLOYS}/pt");
    let merge = s
        .req(
            "PATCH",
            &path,
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"tier":"a"}}}"#,
        )
        .await;
    assert_eq!(merge.status, 200, "{}", merge.text);
    assert_eq!(merge.body["metadata"]["labels"]["tier"], "a");
    assert_eq!(merge.body["metadata"]["labels"]["app"], "pt");

    let jp = s
        .req(
            "PATCH",
            &path,
            "application/json-patch+json",
            r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
        )
        .await;
    assert_eq!(jp.status, 200, "{}", jp.text);
    assert_eq!(jp.body["spec"]["replicas"], 4);

    // Strategic merge: containers merge by name, so the image changes and the list stays.
    let smp = s
        .req(
            "PATCH",
            &path,
            "application/strategic-merge-patch+json",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox:latest"}]}}}}"#,
        )
        .await;
    assert_eq!(smp.status, 200, "{}", smp.text);
    let containers = smp.body["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 2, "{containers:?}");
    let smp2 = s
        .req(
            "PATCH",
            &path,
            "application/strategic-merge-patch+json",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"demo-web:v2"}]}}}}"#,
        )
        .await;
    let containers = smp2.body["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 2);
    assert_eq!(
        containers.iter().find(|c| c["name"] == "web").unwrap()["image"],
        "demo-web:v2"
    );
    // A resourceVersion in a patch is a precondition.
    let stale = s
        .req(
            "PATCH",
            &path,
            "application/merge-patch+json",
            r#"{"metadata":{"resourceVersion":"1","labels":{"x":"y"}}}"#,
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.text);
    // Unknown patch type.
    let bad = s.req("PATCH", &path, "text/plain", "x").await;
    assert_eq!(bad.status, 415);
    // Patch of a missing object.
    let missing = s
        .req(
            "PATCH",
            &format!("{DEPLOYS}/nope"),
            "application/merge-patch+json",
            "{}",
        )
        .await;
    assert_eq!(missing.status, 404);
}

async fn selectors_and_paging(s: TestServer) {
    for i in 0..7 {
        let mut c = cm(&format!("s{i}"));
        c["metadata"]["labels"] =
            json!({"n": i.to_string(), "group": if i % 2 == 0 { "even" } else { "odd" }});
        assert_eq!(s.post(CMS, &c).await.status, 201);
    }
    let names = |r: &common::Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let even = s.get(&format!("{CMS}?labelSelector=group%3Deven")).await;
    assert_eq!(names(&even), vec!["s0", "s2", "s4", "s6"]);
    let notin = s
        .get(&format!("{CMS}?labelSelector=n%20notin%20(0,1,2),group"))
        .await;
    assert_eq!(names(&notin), vec!["s3", "s4", "s5", "s6"]);
    let ne = s.get(&format!("{CMS}?labelSelector=group!%3Dodd,n")).await;
    assert_eq!(names(&ne).len(), 4);
    let missing = s.get(&format!("{CMS}?labelSelector=!group")).await;
    assert!(names(&missing).iter().all(|n| !n.starts_with('s')));
    let by_name = s
        .get(&format!("{CMS}?fieldSelector=metadata.name%3Ds3"))
        .await;
    assert_eq!(names(&by_name), vec!["s3"]);
    let bad_field = s
        .get(&format!("{CMS}?fieldSelector=spec.nothing%3Dx"))
        .await;
    assert_eq!(bad_field.status, 400);
    let bad_label = s.get(&format!("{CMS}?labelSelector=a%20in%20(")).await;
    assert_eq!(bad_label.status, 400);

    // Paging: three pages of three, one consistent revision.
    let p1 = s.get(&format!("{CMS}?limit=3&labelSelector=n")).await;
    assert_eq!(names(&p1), vec!["s0", "s1", "s2"]);
    let tok = p1.body["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_string();
    // Changes after the first page do not show in the next ones.
    assert_eq!(s.post(CMS, &cm("s10")).await.status, 201);
    let p2 = s
        .get(&format!("{CMS}?limit=3&labelSelector=n&continue={tok}"))
        .await;
    assert_eq!(names(&p2), vec!["s3", "s4", "s5"]);
    assert_eq!(
        p2.body["metadata"]["resourceVersion"],
        p1.body["metadata"]["resourceVersion"]
    );
    let tok2 = p2.body["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_string();
    let p3 = s
        .get(&format!("{CMS}?limit=3&labelSelector=n&continue={tok2}"))
        .await;
    assert_eq!(names(&p3), vec!["s6"]);
    assert!(p3.body["metadata"].get("continue").is_none());
    let bad = s.get(&format!("{CMS}?limit=3&continue=garbage")).await;
    assert_eq!(bad.status, 400);

    // All namespaces.
    let all = s.get("/api/v1/configmaps").await;
    assert!(names(&all).len() >= 8);
    // Exact reads at an older revision.
    let rev = p1.body["metadata"]["resourceVersion"].as_str().unwrap();
    let exact = s
        .get(&format!(
            "{CMS}?resourceVersion={rev}&resourceVersionMatch=Exact&labelSelector=n"
        ))
        .await;
    assert_eq!(exact.status, 200, "{}", exact.text);
    assert_eq!(names(&exact).len(), 7);
}

/// Reads watch events from a streaming response until `n` arrived or the time is up.
async fn watch_events(url: &str, path: &str, n: usize) -> Vec<Value> {
    common::watch_lines(url, path, n, Duration::from_secs(10)).await
}

async fn watch_resumes_and_filters(s: TestServer) {
    let a = s.post(CMS, &cm("w1")).await;
    let start = rv(&a.body);
    let mut c2 = cm("w2");
    c2["metadata"]["labels"] = json!({"pick": "yes"});
    s.post(CMS, &c2).await;
    let mut upd = s.get(&format!("{CMS}/w1")).await.body;
    upd["data"]["k"] = json!("changed");
    s.put(&format!("{CMS}/w1"), &upd).await;
    s.delete(&format!("{CMS}/w2")).await;

    // Resume from the first object's version: exactly the three later changes, in order.
    let evs = watch_events(
        &s.url,
        &format!("{CMS}?watch=true&resourceVersion={start}"),
        3,
    )
    .await;
    let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["ADDED", "MODIFIED", "DELETED"], "{evs:?}");
    assert_eq!(evs[0]["object"]["metadata"]["name"], "w2");
    assert_eq!(evs[1]["object"]["data"]["k"], "changed");
    let revs: Vec<i64> = evs
        .iter()
        .map(|e| rv(&e["object"]).parse().unwrap())
        .collect();
    assert!(revs.windows(2).all(|w| w[0] < w[1]));

    // From "now" (no resourceVersion): the current objects as ADDED first.
    let initial = watch_events(
        &s.url,
        &format!("{CMS}?watch=true&fieldSelector=metadata.name%3Dw1"),
        1,
    )
    .await;
    assert_eq!(initial[0]["type"], "ADDED");
    assert_eq!(initial[0]["object"]["metadata"]["name"], "w1");

    // A label-filtered watch sees an object leave its selector as DELETED.
    let now = s.get(CMS).await.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut c3 = cm("w3");
    c3["metadata"]["labels"] = json!({"pick": "yes"});
    s.post(CMS, &c3).await;
    let mut c3b = s.get(&format!("{CMS}/w3")).await.body;
    c3b["metadata"]["labels"] = json!({"pick": "no"});
    s.put(&format!("{CMS}/w3"), &c3b).await;
    let evs = watch_events(
        &s.url,
        &format!("{CMS}?watch=true&resourceVersion={now}&labelSelector=pick%3Dyes"),
        2,
    )
    .await;
    let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["ADDED", "DELETED"]);

    // Bookmarks when asked for, and the initial-events-end bookmark.
    let evs = watch_events(
        &s.url,
        &format!("{CMS}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&fieldSelector=metadata.name%3Dw1"),
        2,
    )
    .await;
    assert_eq!(evs[0]["type"], "ADDED");
    assert_eq!(evs[1]["type"], "BOOKMARK");
    assert_eq!(
        evs[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    // A live change reaches a watch started before it.
    let url = s.url.clone();
    let now = s.get(CMS).await.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let watcher = tokio::spawn(async move {
        watch_events(&url, &format!("{CMS}?watch=true&resourceVersion={now}"), 1).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.post(CMS, &cm("live")).await;
    let evs = watcher.await.unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["object"]["metadata"]["name"], "live");
}

async fn deletion_semantics(s: TestServer) {
    // A bound pod is deleted gracefully: it stays with a deletionTimestamp until grace 0.
    s.post(PODS, &pod("g1")).await;
    let binding = json!({"target": {"kind": "Node", "name": "n1"}, "metadata": {"name": "g1"}});
    s.post(&format!("{PODS}/g1/binding"), &binding).await;
    let d = s.delete(&format!("{PODS}/g1")).await;
    assert_eq!(d.status, 200);
    let p = s.get(&format!("{PODS}/g1")).await;
    assert_eq!(p.status, 200);
    assert!(p.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(p.body["metadata"]["deletionGracePeriodSeconds"], 30);
    let d0 = s.delete(&format!("{PODS}/g1?gracePeriodSeconds=0")).await;
    assert_eq!(d0.status, 200);
    assert_eq!(s.get(&format!("{PODS}/g1")).await.status, 404);
    // An unbound pod goes at once.
    s.post(PODS, &pod("u1")).await;
    s.delete(&format!("{PODS}/u1")).await;
    assert_eq!(s.get(&format!("{PODS}/u1")).await.status, 404);

    // Finalizers keep an object until they are removed.
    let mut f = cm("fin");
    f["metadata"]["finalizers"] = json!(["example.com/keep"]);
    s.post(CMS, &f).await;
    let d = s.delete(&format!("{CMS}/fin")).await;
    assert_eq!(d.status, 200, "{}", d.text);
    let kept = s.get(&format!("{CMS}/fin")).await;
    assert!(kept.body["metadata"]["deletionTimestamp"].is_string());
    let rm = s
        .req(
            "PATCH",
            &format!("{CMS}/fin"),
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":null}}"#,
        )
        .await;
    assert_eq!(rm.status, 200, "{}", rm.text);
    assert_eq!(s.get(&format!("{CMS}/fin")).await.status, 404);

    // Propagation policies become finalizers for the garbage collector.
    s.post(DEPLOYS, &deployment("fg", 1)).await;
    let d = s
        .req(
            "DELETE",
            &format!("{DEPLOYS}/fg"),
            "application/json",
            r#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"}"#,
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    let fg = s.get(&format!("{DEPLOYS}/fg")).await;
    assert_eq!(
        fg.body["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    s.post(DEPLOYS, &deployment("or", 1)).await;
    s.delete(&format!("{DEPLOYS}/or?propagationPolicy=Orphan"))
        .await;
    let or = s.get(&format!("{DEPLOYS}/or")).await;
    assert_eq!(or.body["metadata"]["finalizers"], json!(["orphan"]));
    let bad = s
        .delete(&format!("{DEPLOYS}/or?propagationPolicy=Sometimes"))
        .await;
    assert_eq!(bad.status, 400);

    // Preconditions.
    let c = s.post(CMS, &cm("pre")).await;
    let wrong = s
        .req(
            "DELETE",
            &format!("{CMS}/pre"),
            "application/json",
            r#"{"preconditions":{"uid":"00000000-0000-0000-0000-000000000000"}}"#,
        )
        .await;
    assert_eq!(wrong.status, 409);
    assert!(wrong.body["message"]
        .as_str()
        .unwrap()
        .contains("Precondition failed"));
    let body = json!({"preconditions": {"uid": c.body["metadata"]["uid"], "resourceVersion": rv(&c.body)}});
    let right = s
        .req(
            "DELETE",
            &format!("{CMS}/pre"),
            "application/json",
            &body.to_string(),
        )
        .await;
    assert_eq!(right.status, 200, "{}", right.text);

    // deletecollection with a selector.
    for i in 0..3 {
        let mut c = cm(&format!("dc{i}"));
        c["metadata"]["labels"] = json!({"sweep": if i < 2 { "yes" } else { "no" }});
        s.post(CMS, &c).await;
    }
    let dc = s.delete(&format!("{CMS}?labelSelector=sweep%3Dyes")).await;
    assert_eq!(dc.status, 200, "{}", dc.text);
    assert_eq!(s.get(&format!("{CMS}/dc0")).await.status, 404);
    assert_eq!(s.get(&format!("{CMS}/dc2")).await.status, 200);
    // Namespaces cannot be deleted as a collection.
    assert_eq!(s.delete("/api/v1/namespaces").await.status, 405);
}

async fn namespaces_lifecycle(s: TestServer) {
    let ns = s
        .post(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "team-a"}}),
        )
        .await;
    assert_eq!(ns.status, 201, "{}", ns.text);
    assert_eq!(ns.body["status"]["phase"], "Active");
    assert_eq!(ns.body["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(
        ns.body["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team-a"
    );
    let in_ns = s
        .post("/api/v1/namespaces/team-a/configmaps", &cm("x"))
        .await;
    assert_eq!(in_ns.status, 201);
    // A missing namespace is a 404 naming the namespace.
    let missing = s.post("/api/v1/namespaces/nope/configmaps", &cm("x")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["message"], "namespaces \"nope\" not found");
    // Deleting marks it Terminating; new content is refused.
    let d = s.delete("/api/v1/namespaces/team-a").await;
    assert!(d.status == 200 || d.status == 202, "{}", d.text);
    let t = s.get("/api/v1/namespaces/team-a").await;
    assert_eq!(t.body["status"]["phase"], "Terminating");
    let refused = s
        .post("/api/v1/namespaces/team-a/configmaps", &cm("y"))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("being terminated"));
    // The namespace controller finalizes it once empty.
    let mut fin = t.body.clone();
    fin["spec"]["finalizers"] = json!([]);
    let f = s.put("/api/v1/namespaces/team-a/finalize", &fin).await;
    assert_eq!(f.status, 200, "{}", f.text);
    assert_eq!(s.get("/api/v1/namespaces/team-a").await.status, 404);
}

async fn service_allocation(s: TestServer) {
    let svcs = "/api/v1/namespaces/default/services";
    let svc = |name: &str, ty: &str| {
        json!({"metadata": {"name": name}, "spec": {"type": ty, "selector": {"app": name},
            "ports": [{"port": 80, "targetPort": 8080}]}})
    };
    // Concurrent creates never share an IP or a node port.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = s.url.clone();
        let body = svc(&format!("svc{i}"), "NodePort").to_string();
        tasks.push(tokio::spawn(async move {
            common::raw(
                &url,
                "POST",
                svcs,
                &[("content-type", "application/json")],
                body.into_bytes(),
            )
            .await
        }));
    }
    let mut ips = std::collections::BTreeSet::new();
    let mut ports = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 201, "{}", r.text);
        assert!(ips.insert(r.body["spec"]["clusterIP"].as_str().unwrap().to_string()));
        let np = r.body["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
        assert!((30000..=30100).contains(&np));
        assert!(ports.insert(np));
        assert_eq!(r.body["spec"]["ports"][0]["targetPort"], 8080);
        assert_eq!(r.body["spec"]["sessionAffinity"], "None");
    }
    assert!(
        !ips.contains("10.96.0.1"),
        "the kubernetes service's IP is never handed out"
    );
    // A taken node port is refused with Kubernetes' message.
    let taken = *ports.iter().next().unwrap();
    let mut dup = svc("dup", "NodePort");
    dup["spec"]["ports"][0]["nodePort"] = json!(taken);
    let r = s.post(svcs, &dup).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        r.body["details"]["causes"][0]["field"],
        "spec.ports[0].nodePort"
    );
    // Out of range.
    dup["spec"]["ports"][0]["nodePort"] = json!(80);
    let r = s.post(svcs, &dup).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("valid range"), "{}", r.text);
    // Headless.
    let mut headless = svc("hl", "ClusterIP");
    headless["spec"]["clusterIP"] = json!("None");
    let r = s.post(svcs, &headless).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["spec"]["clusterIP"], "None");
    // Released on delete: the same node port can be requested again.
    assert_eq!(s.delete(&format!("{svcs}/svc0")).await.status, 200);
    let freed = s.get(svcs).await;
    let used: Vec<i64> = freed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["spec"]["ports"][0]["nodePort"].as_i64())
        .collect();
    let free_port = (30000..=30100).find(|p| !used.contains(p)).unwrap();
    let mut again = svc("again", "NodePort");
    again["spec"]["ports"][0]["nodePort"] = json!(free_port);
    assert_eq!(s.post(svcs, &again).await.status, 201);
    // The ClusterIP cannot change.
    let mut moved = s.get(&format!("{svcs}/again")).await.body;
    moved["spec"]["clusterIP"] = json!("10.96.5.5");
    moved["spec"]["clusterIPs"] = json!(["10.96.5.5"]);
    let r = s.put(&format!("{svcs}/again"), &moved).await;
    assert_eq!(r.status, 422, "{}", r.text);
}

async fn bad_input_changes_nothing(s: TestServer) {
    let before = s.revision().await;
    let cm_x = format!("{CMS}/x");
    let cases: Vec<(&str, &str, &str, String, u16, &str)> = vec![
        ("POST", CMS, "application/json", "{not json".into(), 400, "BadRequest"),
        ("POST", CMS, "application/yaml", "a: [b".into(), 400, "BadRequest"),
        ("POST", CMS, "application/json", "[1,2]".into(), 400, "BadRequest"),
        ("POST", CMS, "application/json",
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#.into(), 400, "BadRequest"),
        ("POST", CMS, "application/json",
            r#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.into(), 400, "BadRequest"),
        ("POST", CMS, "application/cbor", "x".into(), 415, "UnsupportedMediaType"),
        ("POST", CMS, "application/vnd.kubernetes.protobuf", "x".into(), 400, "BadRequest"),
        ("POST", CMS, "application/json",
            r#"{"metadata":{"name":"Bad_Name"}}"#.into(), 422, "Invalid"),
        ("POST", CMS, "application/json", r#"{"metadata":{}}"#.into(), 422, "Invalid"),
        ("POST", "/api/v1/namespaces/missing/configmaps", "application/json",
            r#"{"metadata":{"name":"x"}}"#.into(), 404, "NotFound"),
        ("POST", &cm_x, "application/json", "{}".into(), 405, "MethodNotAllowed"),
        ("PUT", &cm_x, "application/json",
            r#"{"metadata":{"name":"y"}}"#.into(), 400, "BadRequest"),
        ("PUT", &cm_x, "application/json",
            r#"{"metadata":{"name":"x"}}"#.into(), 404, "NotFound"),
        ("GET", "/api/v1/nothings", "application/json", String::new(), 404, "NotFound"),
        ("POST", DEPLOYS, "application/json", json!({"metadata": {"name": "d"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "c"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}).to_string(),
            422, "Invalid"),
        ("POST", PODS, "application/json", json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "image": "i"}, {"name": "c", "image": "i",
            "ports": [{"containerPort": 70000}]}]}}).to_string(), 422, "Invalid"),
        ("POST", CMS, "application/json",
            json!({"metadata": {"name": "big"}, "data": {"k": "x".repeat(4 * 1024 * 1024)}}).to_string(),
            413, "RequestEntityTooLarge"),
    ];
    for (method, path, ct, body, code, reason) in cases {
        let r = s.req(method, path, ct, &body).await;
        assert_eq!(
            r.status,
            code,
            "{method} {path} {}: {}",
            &body[..body.len().min(80)],
            r.text
        );
        assert_eq!(r.body["kind"], "Status", "{}", r.text);
        assert_eq!(r.body["reason"], reason, "{}", r.text);
        assert_eq!(r.body["code"], code);
    }
    let invalid = s
        .req(
            "POST",
            PODS,
            "application/json",
            &json!({"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c"}]}})
            .to_string(),
        )
        .await;
    assert_eq!(invalid.status, 422);
    assert_eq!(
        invalid.body["details"]["causes"][0]["field"],
        "spec.containers[0].image"
    );
    assert_eq!(
        invalid.body["message"],
        "Pod \"p\" is invalid: spec.containers[0].image: Required value"
    );
    assert_eq!(
        s.revision().await,
        before,
        "a failed request wrote to the store"
    );
}

async fn dry_run_and_field_validation(s: TestServer) {
    let before = s.revision().await;
    let r = s.post(&format!("{CMS}?dryRun=All"), &cm("dry")).await;
    assert_eq!(r.status, 201);
    assert_eq!(s.get(&format!("{CMS}/dry")).await.status, 404);
    assert_eq!(s.revision().await, before);
    let bad = s.post(&format!("{CMS}?dryRun=Some"), &cm("dry")).await;
    assert_eq!(bad.status, 400);

    let mut unknown = cm("uk");
    unknown["spec"] = json!({"foo": 1});
    let strict = s
        .post(&format!("{CMS}?fieldValidation=Strict"), &unknown)
        .await;
    assert_eq!(strict.status, 400, "{}", strict.text);
    assert!(
        strict.body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec\""),
        "{}",
        strict.text
    );
    let warn = s
        .post(&format!("{CMS}?fieldValidation=Warn"), &unknown)
        .await;
    assert_eq!(warn.status, 201);
    let w = warn.headers.get("warning").unwrap().to_str().unwrap();
    assert!(w.contains("unknown field"), "{w}");
    assert!(
        warn.body.get("spec").is_none(),
        "unknown fields are dropped"
    );
}

async fn table_and_metadata_rendering(s: TestServer) {
    s.post(CMS, &cm("t1")).await;
    let table = common::raw(
        &s.url,
        "GET",
        CMS,
        &[(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )],
        vec![],
    )
    .await;
    assert_eq!(table.body["kind"], "Table", "{}", table.text);
    assert_eq!(table.body["columnDefinitions"][0]["name"], "Name");
    let row = &table.body["rows"][0];
    assert_eq!(row["cells"][0], "t1");
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    let meta = common::raw(
        &s.url,
        "GET",
        &format!("{CMS}/t1"),
        &[(
            "accept",
            "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
        )],
        vec![],
    )
    .await;
    assert_eq!(meta.body["kind"], "PartialObjectMetadata");
    assert!(meta.body.get("data").is_none());
    let bad = common::raw(&s.url, "GET", CMS, &[("accept", "application/xml")], vec![]).await;
    assert_eq!(bad.status, 406);
}

async fn priority_admission(s: TestServer) {
    let pcs = "/apis/scheduling.k8s.io/v1/priorityclasses";
    let pods = "/api/v1/namespaces/default/pods";
    // the system classes are there and cannot be deleted
    let r = s.get(&format!("{pcs}/system-node-critical")).await;
    assert_eq!(r.body["value"], 2_000_001_000, "{}", r.text);
    let r = s.delete(&format!("{pcs}/system-cluster-critical")).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "priorityclasses.scheduling.k8s.io \"system-cluster-critical\" is forbidden: this is a system priority class and cannot be deleted"
    );
    // a pod without a class and no global default: priority 0
    let r = s.post(pods, &pod("plain")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["spec"]["priority"], 0);
    assert_eq!(r.body["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    // a class gives its value and policy
    let high = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": "high"}, "value": 1000, "preemptionPolicy": "Never"});
    let r = s.post(pcs, &high).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut p = pod("important");
    p["spec"]["priorityClassName"] = json!("high");
    let r = s.post(pods, &p).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["spec"]["priority"], 1000);
    assert_eq!(r.body["spec"]["preemptionPolicy"], "Never");
    // a missing class, or a priority that disagrees with the class, is forbidden
    let mut p = pod("ghost");
    p["spec"]["priorityClassName"] = json!("nope");
    let r = s.post(pods, &p).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "pods \"ghost\" is forbidden: no PriorityClass with name nope was found"
    );
    let mut p = pod("liar");
    p["spec"]["priorityClassName"] = json!("high");
    p["spec"]["priority"] = json!(7);
    let r = s.post(pods, &p).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains(
        "the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 1000"
    ));
    assert_eq!(s.get(&format!("{pods}/liar")).await.status, 404);
    // one global default at a time; it applies to pods without a class
    let default = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": "normal"}, "value": 100, "globalDefault": true});
    assert_eq!(s.post(pcs, &default).await.status, 201);
    let mut second = default.clone();
    second["metadata"]["name"] = json!("normal2");
    let r = s.post(pcs, &second).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().ends_with(
        "PriorityClass normal is already marked as default. Only one default can exist"
    ));
    // the default is read from the watch cache: give it a moment to arrive there
    let mut defaulted = false;
    for i in 0..50 {
        let r = s.post(pods, &pod(&format!("defaulted{i}"))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        if r.body["spec"]["priorityClassName"] == "normal" {
            assert_eq!(r.body["spec"]["priority"], 100);
            defaulted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(defaulted, "the global default was never applied");
    // value and policy are immutable; user classes stay below the system range
    let mut changed = s.get(&format!("{pcs}/high")).await.body;
    changed["value"] = json!(5);
    let r = s.put(&format!("{pcs}/high"), &changed).await;
    assert_eq!(r.status, 422, "{}", r.text);
    let mut huge = high.clone();
    huge["metadata"]["name"] = json!("huge");
    huge["value"] = json!(1_000_000_001);
    assert_eq!(s.post(pcs, &huge).await.status, 422);
    // kubectl's table
    let r = common::raw(
        &s.url,
        "GET",
        &format!("{pcs}/high"),
        &[("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")],
        Vec::new(),
    )
    .await;
    let names: Vec<&str> = r.body["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
    );
    assert_eq!(r.body["rows"][0]["cells"][1], 1000);
    assert_eq!(r.body["rows"][0]["cells"][4], "Never");
}

async fn bootstrap_objects(s: TestServer) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let r = s.get(&format!("/api/v1/namespaces/{ns}")).await;
        assert_eq!(r.status, 200, "{ns}");
    }
    let k = s
        .get("/api/v1/namespaces/default/services/kubernetes")
        .await;
    assert_eq!(k.body["spec"]["clusterIP"], "10.96.0.1");
    let ep = s
        .get("/api/v1/namespaces/default/endpoints/kubernetes")
        .await;
    assert_eq!(ep.body["subsets"][0]["addresses"][0]["ip"], "127.0.0.1");
    assert_eq!(ep.body["subsets"][0]["ports"][0]["port"], s.addr.port());
}

async fn discovery_documents(s: TestServer) {
    let v = s.get("/version").await;
    assert_eq!(v.body["major"], "1");
    assert_eq!(v.body["minor"], "33");
    let api = s.get("/api").await;
    assert_eq!(api.body["versions"], json!(["v1"]));
    let core = s.get("/api/v1").await;
    let pods = core.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods")
        .unwrap()
        .clone();
    assert_eq!(pods["shortNames"], json!(["po"]));
    assert_eq!(pods["namespaced"], true);
    let apis = s.get("/apis").await;
    let groups: Vec<&str> = apis.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in [
        "apps",
        "batch",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "autoscaling",
        "events.k8s.io",
    ] {
        assert!(groups.contains(&g), "{g} missing from {groups:?}");
    }
    let agg = common::raw(
        &s.url,
        "GET",
        "/apis",
        &[(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )],
        vec![],
    )
    .await;
    assert_eq!(agg.body["kind"], "APIGroupDiscoveryList");
    assert!(agg.headers["content-type"]
        .to_str()
        .unwrap()
        .contains("apidiscovery.k8s.io"));
    assert_eq!(s.get("/healthz").await.text, "ok");
    let metrics = s.get("/metrics").await;
    assert!(
        metrics.text.contains("apiserver_request"),
        "{}",
        metrics.text
    );
    let v3 = s.get("/openapi/v3").await;
    assert!(v3.body["paths"]["apis/apps/v1"]["serverRelativeURL"].is_string());
    let v2 = s.get("/openapi/v2").await;
    assert_eq!(v2.body["swagger"], "2.0");
}
