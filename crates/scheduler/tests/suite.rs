//! Scheduler suite against a real in-process mini-apiserver with hollow nodes: spreading a
//! Deployment, FailedScheduling until a big node joins, preemption by priority, and placement
//! steered by taints, selectors, affinity and host ports.

#[path = "../../controllers/tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const T: Duration = Duration::from_secs(20);

fn start_scheduler(client: Client) -> tokio::task::JoinHandle<()> {
    let s = scheduler::scheduler::Scheduler::new(client, Default::default());
    tokio::spawn(s.run())
}

fn pod(name: &str, spec: serde_json::Value) -> Pod {
    let mut v = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]}});
    for (k, val) in spec.as_object().unwrap() {
        v["spec"][k] = val.clone();
    }
    serde_json::from_value(v).unwrap()
}

async fn node_of(api: &Api<Pod>, name: &str) -> String {
    wait_for("pod bound", T, || {
        let api = api.clone();
        let name = name.to_string();
        async move {
            let p = api.get(&name).await.ok()?;
            p.spec?.node_name
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_spreads_over_three_nodes() {
    let srv = TestServer::start().await;
    let client = srv.client();
    for n in ["n1", "n2", "n3"] {
        add_node(&client, hollow_node(n, "4", "8Gi", "110")).await;
    }
    let _t = Tasks(vec![
        start_controllers(client.clone()),
        start_scheduler(client.clone()),
        hollow_kubelet(client.clone(), vec![]),
    ]);
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 10, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "demo-web:v1",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}
    }))
    .unwrap();
    let dapi: Api<Deployment> = Api::namespaced(client.clone(), "default");
    dapi.create(&PostParams::default(), &d).await.unwrap();
    let per_node = wait_for("10 running pods", T, || {
        let c = client.clone();
        async move {
            let pods = active_pods(&c, "default").await;
            let running: Vec<&Pod> = pods
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .collect();
            if running.len() != 10 {
                return None;
            }
            let mut m: HashMap<String, usize> = HashMap::new();
            for p in running {
                *m.entry(p.spec.as_ref()?.node_name.clone()?).or_default() += 1;
            }
            Some(m)
        }
    })
    .await;
    assert_eq!(per_node.len(), 3, "{per_node:?}");
    assert!(
        per_node.values().all(|n| (3..=4).contains(n)),
        "{per_node:?}"
    );
    // Scheduled events
    let evs: Api<Event> = Api::namespaced(client.clone(), "default");
    let evs = evs.list(&Default::default()).await.unwrap().items;
    assert!(evs.iter().any(|e| e.reason.as_deref() == Some("Scheduled")
        && e.message
            .as_deref()
            .is_some_and(|m| m.starts_with("Successfully assigned default/web-"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_big_pod_waits_with_failed_scheduling_then_lands_on_a_big_node() {
    let srv = TestServer::start().await;
    let client = srv.client();
    add_node(&client, hollow_node("small1", "1", "2Gi", "110")).await;
    let mut tainted = hollow_node("small2", "8", "16Gi", "110");
    tainted.spec.as_mut().unwrap().taints = Some(vec![serde_json::from_value(
        json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}),
    )
    .unwrap()]);
    add_node(&client, tainted).await;
    let _t = Tasks(vec![
        start_scheduler(client.clone()),
        hollow_kubelet(client.clone(), vec![]),
    ]);
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &pod("big", json!({"containers": [{"name": "c", "image": "busybox:latest", "resources": {"requests": {"cpu": "4"}}}]})))
        .await
        .unwrap();
    let msg = failed_scheduling_message(&client, "big").await;
    assert_eq!(
        msg,
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}. \
         preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, \
         1 Preemption is not helpful for scheduling."
    );
    let p = api.get("big").await.unwrap();
    assert!(p.spec.unwrap().node_name.is_none());
    let cond = p
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_deref()),
        ("False", Some("Unschedulable"))
    );
    // a big node joins: the pod is retried and lands there
    add_node(&client, hollow_node("big1", "16", "32Gi", "110")).await;
    assert_eq!(node_of(&api, "big").await, "big1");
}

async fn failed_scheduling_message(client: &Client, pod: &str) -> String {
    let evs: Api<Event> = Api::namespaced(client.clone(), "default");
    wait_for("FailedScheduling", T, || {
        let evs = evs.clone();
        async move {
            evs.list(&Default::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find_map(|e| {
                    (e.reason.as_deref() == Some("FailedScheduling")
                        && e.involved_object.name.as_deref() == Some(pod))
                    .then(|| e.message.unwrap_or_default())
                })
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_pod_preempts_the_least_important_pods() {
    let srv = TestServer::start().await;
    let client = srv.client();
    add_node(&client, hollow_node("n1", "2", "4Gi", "110")).await;
    let _t = Tasks(vec![
        start_scheduler(client.clone()),
        hollow_kubelet(client.clone(), vec![]),
    ]);
    let classes: Api<PriorityClass> = Api::all(client.clone());
    for (name, value, policy) in [
        ("low", 10, "PreemptLowerPriority"),
        ("high", 1000, "PreemptLowerPriority"),
        ("high-polite", 1000, "Never"),
    ] {
        let pc = serde_json::from_value(json!({"apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass", "metadata": {"name": name}, "value": value,
            "preemptionPolicy": policy}))
        .unwrap();
        classes.create(&PostParams::default(), &pc).await.unwrap();
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let one_cpu = |class: &str| {
        json!({"priorityClassName": class, "containers": [{"name": "c", "image": "busybox:latest",
            "resources": {"requests": {"cpu": "1"}}}]})
    };
    // the node is full: a priority-0 pod and a priority-10 pod, one cpu each
    let mut zero = one_cpu("");
    zero.as_object_mut().unwrap().remove("priorityClassName");
    api.create(&PostParams::default(), &pod("zero", zero))
        .await
        .unwrap();
    api.create(&PostParams::default(), &pod("ten", one_cpu("low")))
        .await
        .unwrap();
    assert_eq!(node_of(&api, "zero").await, "n1");
    assert_eq!(node_of(&api, "ten").await, "n1");
    // preemptionPolicy Never: it waits, nobody is evicted
    api.create(
        &PostParams::default(),
        &pod("polite", one_cpu("high-polite")),
    )
    .await
    .unwrap();
    assert_eq!(
        failed_scheduling_message(&client, "polite").await,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    );
    // priority 1000 from its class (Priority admission), may preempt
    let vip = api
        .create(&PostParams::default(), &pod("vip", one_cpu("high")))
        .await
        .unwrap();
    assert_eq!(vip.spec.as_ref().unwrap().priority, Some(1000));
    // the least important pod (priority 0) is evicted, the priority-10 pod stays
    assert_eq!(node_of(&api, "vip").await, "n1");
    let left: Vec<String> = active_pods(&client, "default")
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert!(!left.contains(&"zero".to_string()), "{left:?}");
    assert!(left.contains(&"ten".to_string()), "{left:?}");
    // the polite pod did not take the room made for vip
    let polite = api.get("polite").await.unwrap();
    assert!(polite.spec.unwrap().node_name.is_none());
    let evs: Api<Event> = Api::namespaced(client.clone(), "default");
    let preempted = evs
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("Preempted"))
        .expect("a Preempted event");
    assert_eq!(preempted.involved_object.name.as_deref(), Some("zero"));
    assert_eq!(
        preempted.message.as_deref(),
        Some(format!("Preempted by pod {} on node n1", vip.uid().unwrap()).as_str())
    );
    // a priority-10 pod finds nothing below it to evict
    api.create(&PostParams::default(), &pod("meek", one_cpu("low")))
        .await
        .unwrap();
    assert_eq!(
        failed_scheduling_message(&client, "meek").await,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: \
         1 No preemption victims found for incoming pod."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taints_selectors_affinity_and_host_ports_steer_placement() {
    let srv = TestServer::start().await;
    let client = srv.client();
    let mut a = hollow_node("a", "8", "16Gi", "110");
    a.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("disk".into(), "ssd".into());
    add_node(&client, a).await;
    let mut b = hollow_node("b", "8", "16Gi", "110");
    b.spec.as_mut().unwrap().taints = Some(vec![serde_json::from_value(
        json!({"key": "team", "value": "x", "effect": "NoSchedule"}),
    )
    .unwrap()]);
    add_node(&client, b).await;
    add_node(&client, hollow_node("c", "8", "16Gi", "110")).await;
    let _t = Tasks(vec![
        start_scheduler(client.clone()),
        hollow_kubelet(client.clone(), vec![]),
    ]);
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    // nodeSelector → a
    api.create(&pp, &pod("sel", json!({"nodeSelector": {"disk": "ssd"}})))
        .await
        .unwrap();
    assert_eq!(node_of(&api, "sel").await, "a");
    // toleration + required affinity to b → b (only b tolerated for it)
    api.create(&pp, &pod("tol", json!({
        "tolerations": [{"key": "team", "operator": "Equal", "value": "x", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["b"]}]}]}}}})))
        .await
        .unwrap();
    assert_eq!(node_of(&api, "tol").await, "b");
    // untolerating pods never land on b; preferred affinity picks c
    api.create(&pp, &pod("pref", json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["c"]}]}}]}}})))
        .await
        .unwrap();
    assert_eq!(node_of(&api, "pref").await, "c");
    // host ports: two pods wanting 8080 on nodes a/c (b tainted) get different nodes
    let hp = json!({"containers": [{"name": "c", "image": "busybox:latest", "ports": [{"containerPort": 80, "hostPort": 8080}]}]});
    api.create(&pp, &pod("hp1", hp.clone())).await.unwrap();
    let n1 = node_of(&api, "hp1").await;
    api.create(&pp, &pod("hp2", hp.clone())).await.unwrap();
    let n2 = node_of(&api, "hp2").await;
    assert_ne!(n1, n2);
    assert!(n1 != "b" && n2 != "b");
    // a third one does not fit anywhere
    api.create(&pp, &pod("hp3", hp)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(api
        .get("hp3")
        .await
        .unwrap()
        .spec
        .unwrap()
        .node_name
        .is_none());
    // anti-affinity on hostname: two db pods on different nodes
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"role": "db"}}}]}}});
    let mut db1 = pod("db1", anti.clone());
    db1.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("role".into(), "db".into());
    let mut db2 = pod("db2", anti);
    db2.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("role".into(), "db".into());
    api.create(&pp, &db1).await.unwrap();
    let d1 = node_of(&api, "db1").await;
    api.create(&pp, &db2).await.unwrap();
    let d2 = node_of(&api, "db2").await;
    assert_ne!(d1, d2);
    let all = api.list(&Default::default()).await.unwrap().items;
    assert!(all.iter().filter(|p| p.name_any() != "tol").all(|p| p
        .spec
        .as_ref()
        .unwrap()
        .node_name
        .as_deref()
        != Some("b")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_node_is_tainted_its_pods_evicted_and_recreated_elsewhere_then_healed() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let srv = TestServer::start().await;
    let client = srv.client();
    let mut beats = Vec::new();
    for n in ["n1", "n2", "n3"] {
        add_node(&client, hollow_node(n, "4", "8Gi", "110")).await;
        beats.push((n.to_string(), Arc::new(AtomicBool::new(true))));
    }
    let n3_alive = beats[2].1.clone();
    let cfg = controllers::manager::Config {
        node_monitor_grace_period: Duration::from_secs(2),
        pod_eviction_timeout: Duration::from_secs(1),
        node_monitor_period: Duration::from_millis(200),
        ..Default::default()
    };
    let _t = Tasks(vec![
        start_controllers_with(client.clone(), cfg),
        start_scheduler(client.clone()),
        hollow_kubelet(client.clone(), vec![]),
        node_heartbeats(client.clone(), beats),
    ]);
    // pod CIDRs: one distinct /24 each
    let napi: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let cidrs = wait_for("podCIDRs", T, || {
        let napi = napi.clone();
        async move {
            let ns = napi.list(&Default::default()).await.ok()?.items;
            let c: Vec<String> = ns
                .iter()
                .filter_map(|n| n.spec.as_ref()?.pod_cidr.clone())
                .collect();
            (c.len() == 3).then_some(c)
        }
    })
    .await;
    let distinct: std::collections::HashSet<&String> = cidrs.iter().collect();
    assert_eq!(distinct.len(), 3, "{cidrs:?}");
    assert!(cidrs
        .iter()
        .all(|c| c.starts_with("10.244.") && c.ends_with(".0/24")));
    // 6 replicas spread over the 3 nodes
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "demo-web:v1"}],
                    "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                        "effect": "NoExecute", "tolerationSeconds": 1}]}}}
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let running_on = |node: &'static str| {
        let c = client.clone();
        async move {
            active_pods(&c, "default")
                .await
                .into_iter()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
                .count()
        }
    };
    wait_for("pods on n3", T, || async {
        (running_on("n3").await > 0).then_some(())
    })
    .await;
    // n3 goes silent
    n3_alive.store(false, Ordering::SeqCst);
    let n3 =
        wait_for("n3 unknown and tainted", T, || {
            let napi = napi.clone();
            async move {
                let n = napi.get("n3").await.ok()?;
                let ready = n
                    .status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .iter()
                    .find(|c| c.type_ == "Ready")?
                    .status
                    .clone();
                let tainted =
                    n.spec.as_ref()?.taints.as_ref()?.iter().any(|t| {
                        t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute"
                    });
                (ready == "Unknown" && tainted).then_some(n)
            }
        })
        .await;
    assert!(n3
        .status
        .unwrap()
        .conditions
        .unwrap()
        .iter()
        .any(|c| c.reason.as_deref() == Some("NodeStatusUnknown")));
    // its pods are evicted and the 6 replicas run on n1/n2
    wait_for("recreated elsewhere", T, || {
        let c = client.clone();
        async move {
            let pods = active_pods(&c, "default").await;
            if std::env::var("DEBUG_NL").is_ok() {
                let v: Vec<_> = pods
                    .iter()
                    .map(|p| {
                        (
                            p.name_any(),
                            p.spec.as_ref().and_then(|s| s.node_name.clone()),
                            p.status.as_ref().and_then(|s| s.phase.clone()),
                        )
                    })
                    .collect();
                eprintln!("{v:?}");
            }
            let ok = pods.len() == 6
                && pods.iter().all(|p| {
                    matches!(
                        p.spec.as_ref().and_then(|s| s.node_name.as_deref()),
                        Some("n1") | Some("n2")
                    ) && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                });
            ok.then_some(())
        }
    })
    .await;
    // n3 comes back: Ready and untainted
    n3_alive.store(true, Ordering::SeqCst);
    wait_for("n3 healed", T, || {
        let napi = napi.clone();
        async move {
            let n = napi.get("n3").await.ok()?;
            let ready = n
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "Ready")?
                .status
                .clone();
            let tainted = n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|ts| !ts.is_empty());
            (ready == "True" && !tainted).then_some(())
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

fn spawn_scheduler(kc: &std::path::Path, id: &str, log: &std::path::Path) -> Proc {
    let logf = std::fs::File::create(log).unwrap();
    Proc(
        std::process::Command::new(env!("CARGO_BIN_EXE_mini-scheduler"))
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
            .expect("spawn mini-scheduler"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_one_leads_the_other_takes_over() {
    use k8s_openapi::api::coordination::v1::Lease;
    let srv = TestServer::start().await;
    let client = srv.client();
    let kc = srv.kubeconfig();
    add_node(&client, hollow_node("n1", "8", "16Gi", "110")).await;
    let dir = srv.dir.path().to_path_buf();
    let mut procs = [
        Some(spawn_scheduler(&kc, "s-1", &dir.join("s-1.log"))),
        Some(spawn_scheduler(&kc, "s-2", &dir.join("s-2.log"))),
    ];
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let holder = |leases: Api<Lease>| async move {
        leases
            .get_opt("kube-scheduler")
            .await
            .ok()??
            .spec?
            .holder_identity
    };
    let first = wait_for("a leader", T, || holder(leases.clone())).await;
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &pod("p1", json!({})))
        .await
        .unwrap();
    assert_eq!(node_of(&api, "p1").await, "n1");
    let idx = if first == "s-1" { 0 } else { 1 };
    drop(procs[idx].take());
    wait_for("takeover", T, || {
        let l = leases.clone();
        let first = first.clone();
        async move { holder(l).await.filter(|h| *h != first) }
    })
    .await;
    api.create(&PostParams::default(), &pod("p2", json!({})))
        .await
        .unwrap();
    assert_eq!(node_of(&api, "p2").await, "n1");
    // one Scheduled event per pod: nobody bound a pod twice
    tokio::time::sleep(Duration::from_millis(300)).await;
    let evs: Api<Event> = Api::namespaced(client.clone(), "default");
    let evs = evs.list(&Default::default()).await.unwrap().items;
    for p in ["p1", "p2"] {
        let n = evs
            .iter()
            .filter(|e| {
                e.reason.as_deref() == Some("Scheduled")
                    && e.involved_object.name.as_deref() == Some(p)
            })
            .count();
        assert_eq!(n, 1, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_runs_one_pod_per_eligible_node_and_rolls_out() {
    use k8s_openapi::api::apps::v1::DaemonSet;
    use kube::api::{Patch, PatchParams};
    let srv = TestServer::start().await;
    let client = srv.client();
    add_node(&client, hollow_node("n1", "4", "8Gi", "110")).await;
    add_node(&client, hollow_node("n2", "4", "8Gi", "110")).await;
    let mut t = hollow_node("n3", "4", "8Gi", "110");
    t.spec.as_mut().unwrap().taints = Some(vec![serde_json::from_value(
        json!({"key": "dedicated", "value": "x", "effect": "NoSchedule"}),
    )
    .unwrap()]);
    add_node(&client, t).await;
    let _t = Tasks(vec![
        start_controllers(client.clone()),
        start_scheduler(client.clone()),
        hollow_kubelet(client.clone(), vec![]),
    ]);
    let dapi: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let ds: DaemonSet = serde_json::from_value(json!({"metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "v1"}]}}}}))
    .unwrap();
    dapi.create(&PostParams::default(), &ds).await.unwrap();
    let placed = |want: usize, image: &'static str| {
        let c = client.clone();
        move || {
            let c = c.clone();
            async move {
                let pods = active_pods(&c, "default").await;
                let ok: Vec<String> = pods
                    .iter()
                    .filter(|p| {
                        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    })
                    .filter(|p| {
                        p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some(image)
                    })
                    .filter_map(|p| p.spec.as_ref()?.node_name.clone())
                    .collect();
                let mut nodes = ok.clone();
                nodes.sort();
                nodes.dedup();
                (pods.len() == want && ok.len() == want && nodes.len() == want).then_some(nodes)
            }
        }
    };
    let nodes = wait_for("2 daemon pods", T, placed(2, "v1")).await;
    assert_eq!(nodes, ["n1", "n2"]);
    add_node(&client, hollow_node("n4", "4", "8Gi", "110")).await;
    let nodes = wait_for("3 daemon pods", T, placed(3, "v1")).await;
    assert_eq!(nodes, ["n1", "n2", "n4"]);
    dapi.patch(
        "agent",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "v2"}]}}}}),
        ),
    )
    .await
    .unwrap();
    wait_for("rolled out", T, placed(3, "v2")).await;
    let st = wait_for("status", T, || {
        let dapi = dapi.clone();
        async move {
            let st = dapi.get("agent").await.ok()?.status?;
            (st.updated_number_scheduled == Some(3) && st.number_ready == 3).then_some(st)
        }
    })
    .await;
    assert_eq!(st.desired_number_scheduled, 3);
}
