//! Control-plane suite against a real in-process mini-apiserver with hollow nodes:
//! ReplicaSet, Deployment, garbage collector and namespace controllers.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::watcher;

use common::*;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const T: Duration = Duration::from_secs(20);

fn rs_manifest(name: &str, replicas: i32, app: &str) -> ReplicaSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {"metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]}}}
    }))
    .unwrap()
}

fn bare_pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]}
    }))
    .unwrap()
}

fn util_phase(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

async fn owned_by(client: &Client, uid: &str) -> Vec<Pod> {
    active_pods(client, "default")
        .await
        .into_iter()
        .filter(|p| {
            p.owner_references()
                .iter()
                .any(|r| r.uid == uid && r.controller == Some(true))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_scales_adopts_releases_and_reports_status() {
    let srv = TestServer::start().await;
    let client = srv.client();
    add_node(&client, hollow_node("n1", "4", "8Gi", "110")).await;
    add_node(&client, hollow_node("n2", "4", "8Gi", "110")).await;
    let _t = Tasks(vec![
        start_controllers(client.clone()),
        hollow_kubelet(client.clone(), vec!["n1".into(), "n2".into()]),
    ]);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // an orphan that matches before the set exists: adopted instead of a new pod
    pods.create(&PostParams::default(), &bare_pod("orphan", "web"))
        .await
        .unwrap();
    // let the controllers' pod cache see it (the informers of pods and sets are separate watches)
    wait_for("orphan running", T, || {
        let pods = pods.clone();
        async move {
            let p = pods.get("orphan").await.ok()?;
            (util_phase(&p) == "Running").then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rsapi: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs = rsapi
        .create(&PostParams::default(), &rs_manifest("web", 3, "web"))
        .await
        .unwrap();
    let uid = rs.uid().unwrap();
    let c = client.clone();
    let u = uid.clone();
    wait_for("3 owned pods", T, || {
        let (c, u) = (c.clone(), u.clone());
        async move { (owned_by(&c, &u).await.len() == 3).then_some(()) }
    })
    .await;
    let orphan = wait_for("orphan adopted", T, || {
        let pods = pods.clone();
        async move {
            let p = pods.get("orphan").await.ok()?;
            (!p.owner_references().is_empty()).then_some(p)
        }
    })
    .await;
    let r = &orphan.owner_references()[0];
    assert_eq!(r.uid, uid);
    assert_eq!(r.controller, Some(true));
    assert_eq!(r.block_owner_deletion, Some(true));
    // status: 3 ready and available, observedGeneration
    let st = wait_for("status", T, || {
        let rsapi = rsapi.clone();
        async move {
            let rs = rsapi.get("web").await.ok()?;
            let st = rs.status?;
            (st.ready_replicas == Some(3) && st.available_replicas == Some(3)).then_some(st)
        }
    })
    .await;
    assert_eq!(st.replicas, 3);
    assert_eq!(st.fully_labeled_replicas, Some(3));
    assert_eq!(st.observed_generation, Some(1));
    // release: the orphan's labels change → ownerRef removed, a replacement created
    pods.patch(
        "orphan",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .unwrap();
    wait_for("release", T, || {
        let pods = pods.clone();
        async move {
            let p = pods.get("orphan").await.ok()?;
            p.owner_references().is_empty().then_some(())
        }
    })
    .await;
    wait_for("replacement", T, || {
        let (c, u) = (client.clone(), uid.clone());
        async move { (owned_by(&c, &u).await.len() == 3).then_some(()) }
    })
    .await;
    // scale down to 1: exactly one remains, never below (expectations)
    rsapi
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    wait_for("scale down", T, || {
        let (c, u) = (client.clone(), uid.clone());
        async move { (owned_by(&c, &u).await.len() == 1).then_some(()) }
    })
    .await;
    let st = wait_for("status 1", T, || {
        let rsapi = rsapi.clone();
        async move {
            let st = rsapi.get("web").await.ok()?.status?;
            (st.replicas == 1 && st.observed_generation == Some(2)).then_some(st)
        }
    })
    .await;
    assert_eq!(st.ready_replicas, Some(1));
    // the released pod stays
    assert!(pods.get("orphan").await.is_ok());
    // events for kubectl describe
    let evs: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let evs = evs.list(&Default::default()).await.unwrap().items;
    assert!(evs
        .iter()
        .any(|e| e.reason.as_deref() == Some("SuccessfulCreate")
            && e.involved_object.name.as_deref() == Some("web")));
    assert!(evs
        .iter()
        .any(|e| e.reason.as_deref() == Some("SuccessfulDelete")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_does_not_overcreate_with_many_replicas() {
    let srv = TestServer::start().await;
    let client = srv.client();
    let _t = Tasks(vec![start_controllers(client.clone())]);
    let rsapi: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs = rsapi
        .create(&PostParams::default(), &rs_manifest("many", 40, "many"))
        .await
        .unwrap();
    let uid = rs.uid().unwrap();
    wait_for("40 pods", T, || {
        let (c, u) = (client.clone(), uid.clone());
        async move { (owned_by(&c, &u).await.len() == 40).then_some(()) }
    })
    .await;
    // settle: resyncs caused by status updates must not create more
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(owned_by(&client, &uid).await.len(), 40);
}

fn deploy_manifest(
    name: &str,
    replicas: i32,
    image: &str,
    strategy: serde_json::Value,
) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "strategy": strategy, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]}}}
    }))
    .unwrap()
}

/// Counts (active, ready) pods of `app` from a watch, checking `check` after every event.
fn watch_pods(
    client: Client,
    app: &str,
    check: impl Fn(usize, usize) -> Option<String> + Send + 'static,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<Mutex<Vec<String>>>,
    Arc<AtomicBool>,
) {
    let violations = Arc::new(Mutex::new(Vec::new()));
    let armed = Arc::new(AtomicBool::new(false));
    let (v, a) = (violations.clone(), armed.clone());
    let api: Api<Pod> = Api::namespaced(client, "default");
    let cfg = watcher::Config::default().labels(&format!("app={app}"));
    let h = tokio::spawn(async move {
        let mut pods: HashMap<String, Pod> = HashMap::new();
        let stream = watcher::watcher(api, cfg);
        futures::pin_mut!(stream);
        while let Some(Ok(ev)) = stream.next().await {
            match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    pods.insert(p.name_any(), p);
                }
                watcher::Event::Delete(p) => {
                    pods.remove(&p.name_any());
                }
                _ => continue,
            }
            let active: Vec<&Pod> = pods
                .values()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let ready = active
                .iter()
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        })
                })
                .count();
            if a.load(Ordering::SeqCst) {
                if let Some(msg) = check(active.len(), ready) {
                    v.lock().unwrap().push(msg);
                }
            }
        }
    });
    (h, violations, armed)
}

/// Watches the ReplicaSets labelled app=<app> and records every moment their spec.replicas sum
/// past `max` once armed.
fn watch_replica_sum(
    client: Client,
    app: &str,
    max: i32,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<Mutex<Vec<String>>>,
    Arc<AtomicBool>,
) {
    let violations = Arc::new(Mutex::new(Vec::new()));
    let armed = Arc::new(AtomicBool::new(false));
    let (v, a) = (violations.clone(), armed.clone());
    let api: Api<ReplicaSet> = Api::namespaced(client, "default");
    let cfg = watcher::Config::default().labels(&format!("app={app}"));
    let h = tokio::spawn(async move {
        let mut sets: HashMap<String, i32> = HashMap::new();
        let stream = watcher::watcher(api, cfg);
        futures::pin_mut!(stream);
        while let Some(Ok(ev)) = stream.next().await {
            match ev {
                watcher::Event::Apply(rs) | watcher::Event::InitApply(rs) => {
                    let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    sets.insert(rs.name_any(), replicas);
                }
                watcher::Event::Delete(rs) => {
                    sets.remove(&rs.name_any());
                }
                _ => continue,
            }
            let total: i32 = sets.values().sum();
            if a.load(Ordering::SeqCst) && total > max {
                v.lock()
                    .unwrap()
                    .push(format!("{total} replicas > {max}: {sets:?}"));
            }
        }
    });
    (h, violations, armed)
}

async fn wait_deploy_complete(api: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    wait_for("deployment complete", T, || {
        let api = api.clone();
        let name = name.to_string();
        async move {
            let d = api.get(&name).await.ok()?;
            let st = d.status.clone()?;
            let done = st.observed_generation >= d.metadata.generation
                && st.updated_replicas == Some(replicas)
                && st.replicas == Some(replicas)
                && st.available_replicas == Some(replicas)
                && st.conditions.as_ref()?.iter().any(|c| {
                    c.type_ == "Progressing"
                        && c.reason.as_deref() == Some("NewReplicaSetAvailable")
                });
            if !done && std::env::var("DEBUG_DEPLOY").is_ok() {
                eprintln!("{:?} {:?}", d.metadata.generation, d.status);
            }
            done.then_some(d)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rolling_update_stays_within_surge_and_unavailable() {
    let srv = TestServer::start().await;
    let client = srv.client();
    let nodes: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
    for n in &nodes {
        add_node(&client, hollow_node(n, "8", "16Gi", "110")).await;
    }
    let _t = Tasks(vec![
        start_controllers(client.clone()),
        hollow_kubelet(client.clone(), nodes.clone()),
    ]);
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let strategy = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    api.create(
        &PostParams::default(),
        &deploy_manifest("web", 10, "demo-web:v1", strategy),
    )
    .await
    .unwrap();
    let d = wait_deploy_complete(&api, "web", 10).await;
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("1")
    );
    let rsapi: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let sets = rsapi.list(&Default::default()).await.unwrap().items;
    assert_eq!(sets.len(), 1);
    let hash = sets[0].labels()["pod-template-hash"].clone();
    assert_eq!(sets[0].name_any(), format!("web-{hash}"));
    assert_eq!(
        sets[0].annotations()["deployment.kubernetes.io/desired-replicas"],
        "10"
    );
    assert_eq!(
        sets[0].annotations()["deployment.kubernetes.io/max-replicas"],
        "13"
    );
    // every node got pods
    let pods = active_pods(&client, "default").await;
    for n in &nodes {
        assert!(pods
            .iter()
            .any(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some(n.as_str())));
    }
    // Roll out v2 while watches check the bounds at every event, as upstream's e2e
    // checkRollingUpdateStatus does: the ReplicaSets' replicas never sum past 10 + surge 3, and
    // ready pods never drop below 10 - unavailable 2. (The number of live pods may pass 13 for a
    // moment, as on Kubernetes: an old ReplicaSet's scale-down is asynchronous, so the new one can
    // create its pods before the old pods are deleted.)
    let (h, violations, armed) = watch_pods(client.clone(), "web", |_active, ready| {
        (ready < 8).then(|| format!("{ready} ready < 8"))
    });
    let (rs_watch, rs_violations, rs_armed) = watch_replica_sum(client.clone(), "web", 13);
    tokio::time::sleep(Duration::from_millis(500)).await;
    armed.store(true, Ordering::SeqCst);
    rs_armed.store(true, Ordering::SeqCst);
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "demo-web:v2"}]}}}})),
    )
    .await
    .unwrap();
    let d = wait_deploy_complete(&api, "web", 10).await;
    h.abort();
    rs_watch.abort();
    let v = violations.lock().unwrap().clone();
    assert!(v.is_empty(), "bounds violated: {v:?}");
    let v = rs_violations.lock().unwrap().clone();
    assert!(v.is_empty(), "surge violated: {v:?}");
    assert_eq!(d.annotations()["deployment.kubernetes.io/revision"], "2");
    let st = d.status.unwrap();
    // 0 is omitted on the wire (omitempty), as upstream writes it
    assert_eq!(st.unavailable_replicas.unwrap_or(0), 0);
    assert_eq!(st.observed_generation, d.metadata.generation);
    let sets = rsapi.list(&Default::default()).await.unwrap().items;
    assert_eq!(sets.len(), 2);
    let old = sets
        .iter()
        .find(|r| r.annotations()["deployment.kubernetes.io/revision"] == "1")
        .unwrap();
    assert_eq!(old.spec.as_ref().unwrap().replicas, Some(0));
    let pods = active_pods(&client, "default").await;
    assert_eq!(pods.len(), 10);
    assert!(pods
        .iter()
        .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("demo-web:v2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_recreate_never_overlaps() {
    let srv = TestServer::start().await;
    let client = srv.client();
    add_node(&client, hollow_node("n1", "8", "16Gi", "110")).await;
    let _t = Tasks(vec![
        start_controllers(client.clone()),
        hollow_kubelet(client.clone(), vec!["n1".into()]),
    ]);
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &deploy_manifest("rec", 3, "demo-web:v1", json!({"type": "Recreate"})),
    )
    .await
    .unwrap();
    wait_deploy_complete(&api, "rec", 3).await;
    // old and new pods never coexist, terminating ones included
    let violations = Arc::new(Mutex::new(Vec::new()));
    let v = violations.clone();
    let papi: Api<Pod> = Api::namespaced(client.clone(), "default");
    let h = tokio::spawn(async move {
        let mut pods: HashMap<String, Pod> = HashMap::new();
        let stream = watcher::watcher(papi, watcher::Config::default().labels("app=rec"));
        futures::pin_mut!(stream);
        while let Some(Ok(ev)) = stream.next().await {
            match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    pods.insert(p.name_any(), p);
                }
                watcher::Event::Delete(p) => {
                    pods.remove(&p.name_any());
                }
                _ => continue,
            }
            let images: HashSet<String> = pods
                .values()
                .map(|p| {
                    p.spec.as_ref().unwrap().containers[0]
                        .image
                        .clone()
                        .unwrap_or_default()
                })
                .collect();
            if images.len() > 1 {
                v.lock().unwrap().push(format!("{images:?}"));
            }
        }
    });
    api.patch(
        "rec",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "demo-web:v2"}]}}}})),
    )
    .await
    .unwrap();
    let d = wait_deploy_complete(&api, "rec", 3).await;
    h.abort();
    assert_eq!(d.annotations()["deployment.kubernetes.io/revision"], "2");
    let v = violations.lock().unwrap().clone();
    assert!(v.is_empty(), "old and new pods overlapped: {v:?}");
}

async fn kubectl(kc: &std::path::Path, args: &[&str]) -> (bool, String) {
    let bin = testkit::repo_root().join(".tools/kubectl");
    let out = tokio::time::timeout(
        Duration::from_secs(40),
        tokio::process::Command::new(bin)
            .arg("--kubeconfig")
            .arg(kc)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("kubectl timed out")
    .expect("run kubectl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_status_history_undo_pause_resume_restart() {
    if testkit::kubectl().is_none() {
        return;
    }
    let srv = TestServer::start().await;
    let client = srv.client();
    let kc = srv.kubeconfig();
    add_node(&client, hollow_node("n1", "8", "16Gi", "110")).await;
    let _t = Tasks(vec![
        start_controllers(client.clone()),
        hollow_kubelet(client.clone(), vec!["n1".into()]),
    ]);
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
    api.create(
        &PostParams::default(),
        &deploy_manifest("app", 3, "demo-web:v1", strategy),
    )
    .await
    .unwrap();
    let (ok, out) = kubectl(
        &kc,
        &["rollout", "status", "deployment/app", "--timeout=30s"],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("successfully rolled out"), "{out}");
    let (ok, out) = kubectl(&kc, &["set", "image", "deployment/app", "c=demo-web:v2"]).await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        &kc,
        &["rollout", "status", "deployment/app", "--timeout=30s"],
    )
    .await;
    assert!(ok && out.contains("successfully rolled out"), "{out}");
    let (ok, out) = kubectl(&kc, &["rollout", "history", "deployment/app"]).await;
    assert!(ok, "{out}");
    assert!(out.contains('1') && out.contains('2'), "{out}");
    // undo to revision 1: the template of revision 1 comes back as revision 3
    let (ok, out) = kubectl(
        &kc,
        &["rollout", "undo", "deployment/app", "--to-revision=1"],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        &kc,
        &["rollout", "status", "deployment/app", "--timeout=30s"],
    )
    .await;
    assert!(ok && out.contains("successfully rolled out"), "{out}");
    let d = wait_deploy_complete(&api, "app", 3).await;
    assert_eq!(
        d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .as_deref(),
        Some("demo-web:v1")
    );
    assert_eq!(d.annotations()["deployment.kubernetes.io/revision"], "3");
    let rsapi: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let sets = rsapi.list(&Default::default()).await.unwrap().items;
    if sets.len() != 2 {
        for r in &sets {
            eprintln!(
                "{}",
                serde_json::to_string(&r.spec.as_ref().unwrap().template).unwrap()
            );
        }
    }
    assert_eq!(sets.len(), 2);
    // pause: a template change does not roll out; resume: it does
    let (ok, out) = kubectl(&kc, &["rollout", "pause", "deployment/app"]).await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(&kc, &["set", "image", "deployment/app", "c=demo-web:v3"]).await;
    assert!(ok, "{out}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        rsapi.list(&Default::default()).await.unwrap().items.len(),
        2
    );
    let d = api.get("app").await.unwrap();
    let prog = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(prog.reason.as_deref(), Some("DeploymentPaused"));
    let (ok, out) = kubectl(&kc, &["rollout", "resume", "deployment/app"]).await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        &kc,
        &["rollout", "status", "deployment/app", "--timeout=30s"],
    )
    .await;
    assert!(ok && out.contains("successfully rolled out"), "{out}");
    assert_eq!(
        rsapi.list(&Default::default()).await.unwrap().items.len(),
        3
    );
    // restart: a new revision with the restartedAt annotation
    let (ok, out) = kubectl(&kc, &["rollout", "restart", "deployment/app"]).await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        &kc,
        &["rollout", "status", "deployment/app", "--timeout=30s"],
    )
    .await;
    assert!(ok && out.contains("successfully rolled out"), "{out}");
    let d = wait_deploy_complete(&api, "app", 3).await;
    assert_eq!(d.annotations()["deployment.kubernetes.io/revision"], "5");
    // describe shows the controller's events
    let (ok, out) = kubectl(&kc, &["describe", "deployment", "app"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("ScalingReplicaSet"), "{out}");
}

async fn count_rs_and_pods(client: &Client, ns: &str) -> (usize, usize) {
    let rsapi: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let n_rs = rsapi
        .list(&Default::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(99);
    let papi: Api<Pod> = Api::namespaced(client.clone(), ns);
    let n_pods = papi
        .list(&Default::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(99);
    (n_rs, n_pods)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascading_deletion_background_foreground_orphan() {
    use kube::api::DeleteParams;
    let srv = TestServer::start().await;
    let client = srv.client();
    add_node(&client, hollow_node("n1", "8", "16Gi", "110")).await;
    let _t = Tasks(vec![
        start_controllers(client.clone()),
        hollow_kubelet(client.clone(), vec!["n1".into()]),
    ]);
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let strategy = json!({"type": "RollingUpdate"});
    for (name, dp) in [
        ("bg", DeleteParams::background()),
        ("fg", DeleteParams::foreground()),
    ] {
        api.create(
            &PostParams::default(),
            &deploy_manifest(name, 2, "demo-web:v1", strategy.clone()),
        )
        .await
        .unwrap();
        wait_deploy_complete(&api, name, 2).await;
        assert_eq!(count_rs_and_pods(&client, "default").await, (1, 2));
        api.delete(name, &dp).await.unwrap();
        wait_for("cascade", T, || {
            let (c, api) = (client.clone(), api.clone());
            async move {
                let gone = api.get_opt(name).await.ok()?.is_none();
                (gone && count_rs_and_pods(&c, "default").await == (0, 0)).then_some(())
            }
        })
        .await;
    }
    // orphan: the set and pods stay, without owner references to the deleted owner
    api.create(
        &PostParams::default(),
        &deploy_manifest("or", 2, "demo-web:v1", strategy.clone()),
    )
    .await
    .unwrap();
    wait_deploy_complete(&api, "or", 2).await;
    api.delete("or", &DeleteParams::orphan()).await.unwrap();
    wait_for("orphaned", T, || {
        let (c, api) = (client.clone(), api.clone());
        async move {
            let gone = api.get_opt("or").await.ok()?.is_none();
            let rsapi: Api<ReplicaSet> = Api::namespaced(c.clone(), "default");
            let sets = rsapi.list(&Default::default()).await.ok()?.items;
            (gone && sets.len() == 1 && sets[0].owner_references().is_empty()).then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count_rs_and_pods(&client, "default").await, (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_deletion_removes_contents_then_namespace() {
    use k8s_openapi::api::core::v1::Namespace;
    let srv = TestServer::start().await;
    let client = srv.client();
    add_node(&client, hollow_node("n1", "8", "16Gi", "110")).await;
    let _t = Tasks(vec![
        start_controllers(client.clone()),
        hollow_kubelet(client.clone(), vec!["n1".into()]),
    ]);
    let nsapi: Api<Namespace> = Api::all(client.clone());
    nsapi
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap(),
        )
        .await
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "doomed");
    let mut d = deploy_manifest("x", 2, "demo-web:v1", json!({"type": "RollingUpdate"}));
    d.metadata.namespace = Some("doomed".into());
    api.create(&PostParams::default(), &d).await.unwrap();
    wait_deploy_complete(&api, "x", 2).await;
    nsapi.delete("doomed", &Default::default()).await.unwrap();
    wait_for("namespace gone", T, || {
        let nsapi = nsapi.clone();
        async move { nsapi.get_opt("doomed").await.ok()?.is_none().then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_slices_follow_pod_readiness() {
    use k8s_openapi::api::core::v1::{Endpoints, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let srv = TestServer::start().await;
    let client = srv.client();
    add_node(&client, hollow_node("n1", "8", "16Gi", "110")).await;
    let _t = Tasks(vec![start_controllers(client.clone())]);
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    svcs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}}))
        .unwrap(),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (name, port) in [("a", 8080), ("b", 9090)] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i", "ports": [{"name": "web", "containerPort": port}]}]}}))
        .unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    mark_running(&pods, "a", true).await.unwrap();
    mark_running(&pods, "b", false).await.unwrap();
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    // a ready on 8080, b not ready on 9090 (named port resolved per pod)
    wait_for("endpoints", T, || {
        let eps = eps.clone();
        async move {
            let e = eps.get("web").await.ok()?;
            let subsets = e.subsets?;
            let ready: Vec<(String, i32)> = subsets
                .iter()
                .flat_map(|s| {
                    let port = s.ports.as_ref().map(|p| p[0].port).unwrap_or(0);
                    s.addresses
                        .iter()
                        .flatten()
                        .map(move |a| (a.target_ref.as_ref().unwrap().name.clone().unwrap(), port))
                })
                .collect();
            let not_ready: Vec<(String, i32)> = subsets
                .iter()
                .flat_map(|s| {
                    let port = s.ports.as_ref().map(|p| p[0].port).unwrap_or(0);
                    s.not_ready_addresses
                        .iter()
                        .flatten()
                        .map(move |a| (a.target_ref.as_ref().unwrap().name.clone().unwrap(), port))
                })
                .collect();
            (ready == [("a".to_string(), 8080)] && not_ready == [("b".to_string(), 9090)])
                .then_some(())
        }
    })
    .await;
    let lp = kube::api::ListParams::default().labels("kubernetes.io/service-name=web");
    let ready_in_slices = |slices: Api<EndpointSlice>, lp: kube::api::ListParams| async move {
        let items = slices.list(&lp).await.ok()?.items;
        let mut v: Vec<(String, bool)> = items
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .map(|e| {
                (
                    e.target_ref.as_ref().unwrap().name.clone().unwrap(),
                    e.conditions.as_ref().unwrap().ready.unwrap(),
                )
            })
            .collect();
        v.sort();
        Some(v)
    };
    wait_for("slices", T, || {
        let (s, lp) = (slices.clone(), lp.clone());
        async move {
            let v = ready_in_slices(s, lp).await?;
            (v == [("a".to_string(), true), ("b".to_string(), false)]).then_some(())
        }
    })
    .await;
    // b becomes ready, a not ready: both follow
    mark_running(&pods, "b", true).await.unwrap();
    mark_running(&pods, "a", false).await.unwrap();
    wait_for("slices flipped", T, || {
        let (s, lp) = (slices.clone(), lp.clone());
        async move {
            let v = ready_in_slices(s, lp).await?;
            (v == [("a".to_string(), false), ("b".to_string(), true)]).then_some(())
        }
    })
    .await;
    wait_for("endpoints flipped", T, || {
        let eps = eps.clone();
        async move {
            let e = eps.get("web").await.ok()?;
            let ready: Vec<String> = e
                .subsets?
                .iter()
                .flat_map(|s| s.addresses.iter().flatten())
                .map(|a| a.target_ref.as_ref().unwrap().name.clone().unwrap())
                .collect();
            (ready == ["b"]).then_some(())
        }
    })
    .await;
    // the service goes: its slices follow (garbage collector), its Endpoints too
    svcs.delete("web", &Default::default()).await.unwrap();
    wait_for("cleanup", T, || {
        let (s, e, lp) = (slices.clone(), eps.clone(), lp.clone());
        async move {
            let n = s.list(&lp).await.ok()?.items.len();
            let gone = e.get_opt("web").await.ok()?.is_none();
            (n == 0 && gone).then_some(())
        }
    })
    .await;
}

struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_manager(kc: &std::path::Path, id: &str, log: &std::path::Path) -> Proc {
    let logf = std::fs::File::create(log).unwrap();
    Proc(
        std::process::Command::new(env!("CARGO_BIN_EXE_mini-controller-manager"))
            .arg(format!("--kubeconfig={}", kc.display()))
            .args([
                "--secure-port=0",
                "--leader-elect-lease-duration=2s",
                "--leader-elect-renew-deadline=1500ms",
                "--leader-elect-retry-period=300ms",
            ])
            .arg(format!("--leader-elect-identity={id}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("spawn mini-controller-manager"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_one_leads_the_other_takes_over_and_sigterm_exits_cleanly() {
    use k8s_openapi::api::coordination::v1::Lease;
    let srv = TestServer::start().await;
    let client = srv.client();
    let kc = srv.kubeconfig();
    let dir = srv.dir.path().to_path_buf();
    let mut procs = [
        Some(spawn_manager(&kc, "cm-1", &dir.join("cm-1.log"))),
        Some(spawn_manager(&kc, "cm-2", &dir.join("cm-2.log"))),
    ];
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let holder = |leases: Api<Lease>| async move {
        leases
            .get_opt("kube-controller-manager")
            .await
            .ok()??
            .spec?
            .holder_identity
    };
    let first = wait_for("a leader", T, || holder(leases.clone())).await;
    // the leader works: a ReplicaSet gets its pods
    let rsapi: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    rsapi
        .create(&PostParams::default(), &rs_manifest("one", 2, "one"))
        .await
        .unwrap();
    wait_for("pods of one", T, || {
        let c = client.clone();
        async move { (active_pods(&c, "default").await.len() == 2).then_some(()) }
    })
    .await;
    // kill -9 the leader: the other takes the lease and carries on
    let idx = if first == "cm-1" { 0 } else { 1 };
    let mut leader = procs[idx].take().unwrap();
    leader.0.kill().unwrap();
    let _ = leader.0.wait();
    let killed_at = tokio::time::Instant::now();
    let second = wait_for("takeover", T, || {
        let l = leases.clone();
        let first = first.clone();
        async move { holder(l).await.filter(|h| *h != first) }
    })
    .await;
    assert!(
        killed_at.elapsed() < Duration::from_secs(6),
        "takeover took {:?}",
        killed_at.elapsed()
    );
    assert_ne!(second, first);
    rsapi
        .create(&PostParams::default(), &rs_manifest("two", 2, "two"))
        .await
        .unwrap();
    wait_for("pods of two", T, || {
        let c = client.clone();
        async move { (active_pods(&c, "default").await.len() == 4).then_some(()) }
    })
    .await;
    // exactly 2 per set: the two instances never both acted
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(active_pods(&client, "default").await.len(), 4);
    // SIGTERM: a clean exit
    let mut other = procs[1 - idx].take().unwrap();
    let pid = other.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = other.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_ordered_start_stable_names_pvcs_kept_reverse_update() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let srv = TestServer::start().await;
    let client = srv.client();
    add_node(&client, hollow_node("n1", "8", "16Gi", "110")).await;
    let _t = Tasks(vec![
        start_controllers(client.clone()),
        hollow_kubelet(client.clone(), vec!["n1".into()]),
    ]);
    // record, from a watch, creation and deletion order and readiness at creation time
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = log.clone();
    let papi: Api<Pod> = Api::namespaced(client.clone(), "default");
    let w = tokio::spawn(async move {
        let mut pods: HashMap<String, Pod> = HashMap::new();
        let stream = watcher::watcher(papi, watcher::Config::default().labels("app=db"));
        futures::pin_mut!(stream);
        while let Some(Ok(ev)) = stream.next().await {
            if let watcher::Event::Apply(p) = ev {
                let name = p.name_any();
                let prev = pods.insert(name.clone(), p.clone());
                if prev.is_none() {
                    let ready: Vec<String> = pods
                        .values()
                        .filter(|x| {
                            x.name_any() != name
                                && x.status
                                    .as_ref()
                                    .and_then(|s| s.conditions.as_ref())
                                    .is_some_and(|cs| {
                                        cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                                    })
                        })
                        .map(|x| x.name_any())
                        .collect();
                    let mut ready = ready;
                    ready.sort();
                    l.lock()
                        .unwrap()
                        .push(format!("add {name} ready={}", ready.join(",")));
                }
                if p.metadata.deletion_timestamp.is_some()
                    && prev.is_some_and(|x| x.metadata.deletion_timestamp.is_none())
                {
                    l.lock().unwrap().push(format!("del {name}"));
                }
            } else if let watcher::Event::Delete(p) = ev {
                pods.remove(&p.name_any());
            }
        }
    });
    let sapi: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let set: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "v1"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}
    }))
    .unwrap();
    sapi.create(&PostParams::default(), &set).await.unwrap();
    let ready_count = |n: i32| {
        let sapi = sapi.clone();
        move || {
            let sapi = sapi.clone();
            async move {
                let st = sapi.get("db").await.ok()?.status?;
                (st.ready_replicas == Some(n) && st.replicas == n && st.updated_replicas == Some(n))
                    .then_some(st)
            }
        }
    };
    wait_for("3 ready", T, ready_count(3)).await;
    let adds: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("add"))
        .cloned()
        .collect();
    assert_eq!(
        adds,
        [
            "add db-0 ready=",
            "add db-1 ready=db-0",
            "add db-2 ready=db-0,db-1"
        ]
    );
    let p1 = Api::<Pod>::namespaced(client.clone(), "default")
        .get("db-1")
        .await
        .unwrap();
    let spec = p1.spec.unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("db-1"));
    assert_eq!(spec.subdomain.as_deref(), Some("db"));
    assert!(spec.volumes.unwrap().iter().any(|v| v
        .persistent_volume_claim
        .as_ref()
        .is_some_and(|c| c.claim_name == "data-db-1")));
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let names = |pvcs: Api<PersistentVolumeClaim>| async move {
        let mut v: Vec<String> = pvcs
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| p.name_any())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(pvcs.clone()).await,
        ["data-db-0", "data-db-1", "data-db-2"]
    );
    // scale down to 1: db-2 then db-1, PVCs stay
    log.lock().unwrap().clear();
    sapi.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    wait_for("1 ready", T, ready_count(1)).await;
    let dels: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("del"))
        .cloned()
        .collect();
    assert_eq!(dels, ["del db-2", "del db-1"]);
    assert_eq!(
        names(pvcs.clone()).await,
        ["data-db-0", "data-db-1", "data-db-2"]
    );
    // back to 3, then a template change rolls out from the highest ordinal down
    sapi.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    wait_for("3 ready again", T, ready_count(3)).await;
    log.lock().unwrap().clear();
    sapi.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "v2"}]}}}}),
        ),
    )
    .await
    .unwrap();
    let st = wait_for("updated", T, || {
        let sapi = sapi.clone();
        async move {
            let set = sapi.get("db").await.ok()?;
            let st = set.status?;
            (st.observed_generation == set.metadata.generation
                && st.updated_replicas == Some(3)
                && st.ready_replicas == Some(3)
                && st.current_revision == st.update_revision)
                .then_some(st)
        }
    })
    .await;
    w.abort();
    let dels: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("del"))
        .cloned()
        .collect();
    assert_eq!(dels, ["del db-2", "del db-1", "del db-0"]);
    assert!(st.update_revision.unwrap().starts_with("db-"));
}

async fn set_phase(api: &Api<Pod>, name: &str, phase: &str) {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": phase}})),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_runs_completions_with_parallelism_and_honours_backoff_limit() {
    use k8s_openapi::api::batch::v1::Job;
    let srv = TestServer::start().await;
    let client = srv.client();
    add_node(&client, hollow_node("n1", "8", "16Gi", "110")).await;
    let _t = Tasks(vec![
        start_controllers(client.clone()),
        hollow_kubelet(client.clone(), vec!["n1".into()]),
    ]);
    let japi: Api<Job> = Api::namespaced(client.clone(), "default");
    let job = |name: &str, extra: serde_json::Value| -> Job {
        let mut v = json!({"metadata": {"name": name},
            "spec": {"template": {"metadata": {"labels": {"app": name}}, "spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox:latest"}]}}}});
        for (k, val) in extra.as_object().unwrap() {
            v["spec"][k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    };
    japi.create(
        &PostParams::default(),
        &job("work", json!({"completions": 3, "parallelism": 2})),
    )
    .await
    .unwrap();
    let papi: Api<Pod> = Api::namespaced(client.clone(), "default");
    let running = |app: &'static str| {
        let papi = papi.clone();
        async move {
            let lp = kube::api::ListParams::default().labels(&format!("app={app}"));
            let pods = papi.list(&lp).await.unwrap().items;
            let active: Vec<String> = pods
                .iter()
                .filter(|p| {
                    matches!(
                        p.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Running")
                    )
                })
                .map(|p| p.name_any())
                .collect();
            active
        }
    };
    for done in 0..3 {
        let active = wait_for("a running pod", T, || {
            let r = running("work");
            async move {
                let a = r.await;
                (!a.is_empty()).then_some(a)
            }
        })
        .await;
        assert!(active.len() <= 2, "parallelism exceeded: {active:?}");
        assert!(
            active.len() <= 3 - done,
            "{done}: {active:?} {:?}",
            papi.list(&Default::default())
                .await
                .unwrap()
                .items
                .iter()
                .map(|p| (
                    p.name_any(),
                    p.status.as_ref().and_then(|s| s.phase.clone())
                ))
                .collect::<Vec<_>>()
        );
        set_phase(&papi, &active[0], "Succeeded").await;
    }
    let st = wait_for("complete", T, || {
        let japi = japi.clone();
        async move {
            let st = japi.get("work").await.ok()?.status?;
            st.conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
                .then_some(st)
        }
    })
    .await;
    assert_eq!(st.succeeded, Some(3));
    assert!(st.completion_time.is_some());
    // backoffLimit 1: the second failure fails the job
    japi.create(
        &PostParams::default(),
        &job("flaky", json!({"backoffLimit": 1})),
    )
    .await
    .unwrap();
    for _ in 0..2 {
        let active = wait_for("flaky pod", T, || {
            let r = running("flaky");
            async move {
                let a = r.await;
                (!a.is_empty()).then_some(a)
            }
        })
        .await;
        set_phase(&papi, &active[0], "Failed").await;
    }
    let st = wait_for("failed", T, || {
        let japi = japi.clone();
        async move {
            let st = japi.get("flaky").await.ok()?.status?;
            st.conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Failed" && c.reason.as_deref() == Some("BackoffLimitExceeded"))
                .then_some(st)
        }
    })
    .await;
    assert_eq!(st.failed, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_deadline_exceeded_ends_kubectl_rollout_status() {
    if testkit::kubectl().is_none() {
        return;
    }
    let srv = TestServer::start().await;
    let client = srv.client();
    let kc = srv.kubeconfig();
    // no kubelet: pods never become ready
    let _t = Tasks(vec![start_controllers(client.clone())]);
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut d = deploy_manifest("stuck", 2, "demo-web:v1", json!({"type": "RollingUpdate"}));
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(2);
    api.create(&PostParams::default(), &d).await.unwrap();
    let (ok, out) = kubectl(
        &kc,
        &["rollout", "status", "deployment/stuck", "--timeout=30s"],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(out.contains("exceeded its progress deadline"), "{out}");
    let d = api.get("stuck").await.unwrap();
    let c = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some("ProgressDeadlineExceeded"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_gets_its_default_serviceaccount_and_the_root_ca() {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
    let srv = TestServer::start().await;
    let client = srv.client();
    let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let _t = Tasks(vec![start_controllers_with(
        client.clone(),
        controllers::manager::Config {
            root_ca: Some(ca.into()),
            ..Default::default()
        },
    )]);
    let nsapi: Api<Namespace> = Api::all(client.clone());
    nsapi
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
        )
        .await
        .unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "team");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let ca_in = |cms: Api<ConfigMap>| async move {
        let cm = cms.get_opt("kube-root-ca.crt").await.ok()??;
        (cm.data?.get("ca.crt")? == ca).then_some(())
    };
    wait_for("the default ServiceAccount", T, || {
        let accounts = accounts.clone();
        async move { accounts.get_opt("default").await.ok()?.map(|_| ()) }
    })
    .await;
    wait_for("kube-root-ca.crt", T, || ca_in(cms.clone())).await;
    // Also in the namespaces that existed before.
    let sys: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    wait_for("kube-root-ca.crt in kube-system", T, || ca_in(sys.clone())).await;
    // Deleted or changed, both come back.
    accounts
        .delete("default", &Default::default())
        .await
        .unwrap();
    cms.delete("kube-root-ca.crt", &Default::default())
        .await
        .unwrap();
    wait_for("the default ServiceAccount again", T, || {
        let accounts = accounts.clone();
        async move { accounts.get_opt("default").await.ok()?.map(|_| ()) }
    })
    .await;
    wait_for("kube-root-ca.crt again", T, || ca_in(cms.clone())).await;
    let mut cm = cms.get("kube-root-ca.crt").await.unwrap();
    cm.data = Some([("ca.crt".to_string(), "tampered".to_string())].into());
    cms.replace("kube-root-ca.crt", &PostParams::default(), &cm)
        .await
        .unwrap();
    wait_for("kube-root-ca.crt restored", T, || ca_in(cms.clone())).await;
}
