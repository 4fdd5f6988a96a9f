//! Harness of the control-plane suites: an in-process mini-apiserver on a free loopback port,
//! hollow nodes (Node objects made by the test) and a hollow kubelet that plays the node agent:
//! it marks pods bound to hollow nodes Running+Ready and finishes their graceful deletion.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use apiserver::{ApiServer, Config};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeSpec, NodeStatus, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};
use serde_json::json;
use tempfile::TempDir;

/// An in-process apiserver.
pub struct TestServer {
    pub url: String,
    pub srv: Arc<ApiServer>,
    pub dir: TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// A server over a fresh embedded store.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn store::Store> = Arc::new(
            store::embedded::EmbeddedStore::open(&dir.path().join("state.db"))
                .expect("open embedded store"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cfg = Config {
            advertise: addr,
            service_cluster_ip_range: "10.96.0.0/16".parse().unwrap(),
            service_node_port_range: (30000, 30100),
            bookmark_interval: Duration::from_secs(1),
            compaction_interval: Duration::from_secs(3600),
            kubelet_netns: None,
            // no ServiceAccount admission: no controller here makes `default` ServiceAccounts
            admission: apiserver::admission::Plugins::default()
                .without(apiserver::admission::Plugin::ServiceAccount),
            ..Config::default()
        };
        let srv = ApiServer::start(store, cfg).await.unwrap();
        let router = srv.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        TestServer {
            url: format!("http://{addr}"),
            srv,
            dir,
            task,
        }
    }

    /// A kube-rs client for this server.
    pub fn client(&self) -> Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        Client::try_from(config).unwrap()
    }

    /// Writes a kubeconfig for kubectl and returns its path.
    pub fn kubeconfig(&self) -> std::path::PathBuf {
        let p = self.dir.path().join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {}\nusers:\n- name: t\n  user: {{}}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: t\n    namespace: default\ncurrent-context: t\n",
            self.url
        );
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// Aborts tasks on drop.
pub struct Tasks(pub Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// A hollow node: Ready, with the given allocatable.
pub fn hollow_node(name: &str, cpu: &str, memory: &str, pods: &str) -> Node {
    let mut alloc = BTreeMap::new();
    alloc.insert("cpu".to_string(), Quantity(cpu.into()));
    alloc.insert("memory".to_string(), Quantity(memory.into()));
    alloc.insert("pods".to_string(), Quantity(pods.into()));
    let mut labels = BTreeMap::new();
    labels.insert("kubernetes.io/hostname".to_string(), name.to_string());
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            allocatable: Some(alloc.clone()),
            capacity: Some(alloc),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

/// Creates a hollow node (and its status).
pub async fn add_node(client: &Client, node: Node) {
    let api: Api<Node> = Api::all(client.clone());
    let created = api.create(&PostParams::default(), &node).await.unwrap();
    // The node lifecycle controller may write the node (its podCIDR) at the same moment:
    // retry the status write on a conflict, as a kubelet would.
    let name = created.name_any();
    for attempt in 0.. {
        let mut n = api.get(&name).await.unwrap();
        n.status = node.status.clone();
        match api.replace_status(&name, &PostParams::default(), &n).await {
            Ok(_) => return,
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < 20 => continue,
            Err(e) => panic!("writing the status of node {name}: {e}"),
        }
    }
}

/// The hollow kubelet: every pod bound to a node becomes Running+Ready (when `ready`), and a
/// bound pod with a deletionTimestamp is deleted for good. With `bind`, unbound pods are bound
/// round-robin to `bind` nodes (playing the scheduler).
pub fn hollow_kubelet(client: Client, bind: Vec<String>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Pod> = Api::all(client.clone());
        let stream = watcher::watcher(api, watcher::Config::default()).applied_objects();
        futures::pin_mut!(stream);
        let mut rr = 0usize;
        while let Some(ev) = stream.next().await {
            let Ok(p) = ev else { continue };
            let ns = p.namespace().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
            if p.metadata.deletion_timestamp.is_some() {
                if node.is_some() {
                    let _ = api
                        .delete(&p.name_any(), &DeleteParams::default().grace_period(0))
                        .await;
                }
                continue;
            }
            match node {
                None => {
                    if !bind.is_empty() {
                        let target = bind[rr % bind.len()].clone();
                        rr += 1;
                        let binding = json!({"apiVersion":"v1","kind":"Binding",
                            "metadata":{"name":p.name_any(),"namespace":ns},
                            "target":{"apiVersion":"v1","kind":"Node","name":target}});
                        let _ = bind_pod(&client, &ns, &p.name_any(), &binding).await;
                    }
                }
                Some(_) => {
                    let phase = p.status.as_ref().and_then(|s| s.phase.clone());
                    if matches!(phase.as_deref(), None | Some("Pending")) {
                        let _ = mark_running(&api, &p.name_any(), true).await;
                    }
                }
            }
        }
    })
}

/// POSTs a pods/binding.
pub async fn bind_pod(
    client: &Client,
    ns: &str,
    name: &str,
    binding: &serde_json::Value,
) -> Result<(), kube::Error> {
    let req = http::Request::post(format!("/api/v1/namespaces/{ns}/pods/{name}/binding"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(binding).unwrap())
        .unwrap();
    client.request_text(req).await.map(|_| ())
}

/// Sets a pod Running with Ready=`ready`.
pub async fn mark_running(api: &Api<Pod>, name: &str, ready: bool) -> Result<Pod, kube::Error> {
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap()
        .to_string();
    let st = if ready { "True" } else { "False" };
    let patch = json!({"status": {"phase": "Running", "podIP": "10.244.0.10",
        "startTime": now,
        "conditions": [
            {"type": "Ready", "status": st, "lastTransitionTime": now},
            {"type": "ContainersReady", "status": st, "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

/// Polls `f` every 50ms until it returns Some or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pods of a namespace that are active (not terminating).
pub async fn active_pods(client: &Client, ns: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

/// Starts the controllers with `cfg`.
pub fn start_controllers_with(
    client: Client,
    cfg: controllers::manager::Config,
) -> tokio::task::JoinHandle<()> {
    if std::env::var("RUST_LOG").is_ok() {
        daemon::init_tracing(0);
    }
    tokio::spawn(controllers::manager::run_controllers(client, cfg))
}

/// Keeps the Lease of each of `nodes` (and their Ready heartbeat) fresh, like a kubelet, while
/// the returned flag for that node stays true.
pub fn node_heartbeats(
    client: Client,
    nodes: Vec<(String, Arc<std::sync::atomic::AtomicBool>)>,
) -> tokio::task::JoinHandle<()> {
    use k8s_openapi::api::coordination::v1::Lease;
    tokio::spawn(async move {
        let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
        let napi: Api<Node> = Api::all(client.clone());
        loop {
            for (n, alive) in &nodes {
                if !alive.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let now = jiff::Timestamp::now();
                let lease: Lease = serde_json::from_value(json!({"metadata": {"name": n, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": n, "leaseDurationSeconds": 40, "renewTime": now.to_string()}})).unwrap();
                match leases.get_opt(n).await {
                    Ok(Some(mut l)) => {
                        l.spec = lease.spec.clone();
                        let _ = leases.replace(n, &PostParams::default(), &l).await;
                    }
                    _ => {
                        let _ = leases.create(&PostParams::default(), &lease).await;
                    }
                }
                let st = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "lastHeartbeatTime": now.round(jiff::Unit::Second).unwrap().to_string()}]}});
                let _ = napi
                    .patch_status(n, &PatchParams::default(), &Patch::Merge(&st))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// Starts the controller-manager's controllers in-process (no leader election).
pub fn start_controllers(client: Client) -> tokio::task::JoinHandle<()> {
    if std::env::var("RUST_LOG").is_ok() {
        daemon::init_tracing(0);
    }
    let cfg = controllers::manager::Config {
        node_monitor_period: Duration::from_millis(500),
        ..Default::default()
    };
    tokio::spawn(controllers::manager::run_controllers(client, cfg))
}
