//! The kubelet's main loops: watch the pods bound to this node and hand each to its worker;
//! relist the runtime every second (the PLEG role) and wake the workers whose containers
//! changed; clean up sandboxes of pods that no longer exist; keep the Node, its Lease and the
//! pod network (bridge once the podCIDR is known, host-gw routes to every other node) current.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, ResourceExt};
use tokio::sync::{watch, Mutex, Notify};

use crate::netplugin::PodNetworkPlugin;
use crate::node::{self, Machine};
use crate::worker::{Shared, Worker, LABEL_POD_UID};

/// A running pod worker.
struct WorkerHandle {
    pods: watch::Sender<Option<Pod>>,
    notify: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

/// The pods this kubelet runs, by uid (read by the kubelet API).
pub type PodTable = Arc<Mutex<BTreeMap<String, Pod>>>;

/// Starts a reflector over `api` and returns its store (ready once listed).
pub fn reflect<K>(api: Api<K>, cfg: watcher::Config) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher::watcher(api, cfg).default_backoff());
    tokio::spawn(async move {
        stream
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "watch error; retrying");
                }
            })
            .await;
    });
    reader
}

/// Informers over everything pods may reference.
pub struct Informers {
    /// Services (all namespaces).
    pub services: Store<Service>,
    /// Nodes (for host-gw routes).
    pub nodes: Store<Node>,
}

impl Informers {
    /// Starts them all; the nodes are read as `routes_client`.
    pub fn start(client: &Client, routes_client: &Client) -> Informers {
        Informers {
            services: reflect(Api::all(client.clone()), watcher::Config::default()),
            nodes: reflect(Api::all(routes_client.clone()), watcher::Config::default()),
        }
    }
}

/// Watches this node's pods and runs one worker per pod until the stream ends.
pub async fn run_pods(shared: Arc<Shared>, table: PodTable) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", shared.cfg.node_name));
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let workers: Arc<Mutex<HashMap<String, WorkerHandle>>> = Arc::default();
    tokio::spawn(pleg(shared.clone(), workers.clone()));
    let mut listing: Option<Vec<String>> = None;
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "pod watch failed; retrying");
                continue;
            }
        };
        match ev {
            Event::Init => listing = Some(Vec::new()),
            Event::InitApply(p) => {
                if let Some(l) = listing.as_mut() {
                    l.push(p.uid().unwrap_or_default());
                }
                dispatch(&shared, &workers, &table, p).await;
            }
            Event::InitDone => {
                let known = listing.take().unwrap_or_default();
                // Pods deleted while we were not watching: their workers finish them.
                let gone: Vec<String> = workers
                    .lock()
                    .await
                    .keys()
                    .filter(|u| !known.contains(u))
                    .cloned()
                    .collect();
                for uid in gone {
                    remove(&workers, &table, &uid).await;
                }
                tokio::spawn(cleanup_orphans(shared.clone(), known));
            }
            Event::Apply(p) => dispatch(&shared, &workers, &table, p).await,
            Event::Delete(p) => remove(&workers, &table, &p.uid().unwrap_or_default()).await,
        }
    }
}

async fn dispatch(
    shared: &Arc<Shared>,
    workers: &Arc<Mutex<HashMap<String, WorkerHandle>>>,
    table: &PodTable,
    pod: Pod,
) {
    let uid = pod.uid().unwrap_or_default();
    let mut ws = workers.lock().await;
    if let Some(w) = ws.get(&uid) {
        table.lock().await.insert(uid.clone(), pod.clone());
        if !w.task.is_finished() {
            let _ = w.pods.send(Some(pod));
            return;
        }
        // A finished worker whose pod is still listed (deleted with a finalizer): nothing runs.
        return;
    }
    if crate::admission::was_rejected(&pod) {
        // turned away by admission (here or before a restart): nothing ever runs
        return;
    }
    if let Err(rejection) = admit(shared, table, &pod).await {
        reject(shared, &pod, rejection).await;
        return;
    }
    table.lock().await.insert(uid.clone(), pod.clone());
    let (tx, rx) = watch::channel(Some(pod));
    let notify = Arc::new(Notify::new());
    let worker = Worker::new(shared.clone(), uid.clone(), notify.clone());
    let table2 = table.clone();
    let uid2 = uid.clone();
    let task = tokio::spawn(async move {
        worker.run(rx).await;
        table2.lock().await.remove(&uid2);
    });
    ws.insert(
        uid,
        WorkerHandle {
            pods: tx,
            notify,
            task,
        },
    );
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Admission of a pod new to this kubelet: a pending pod must fit the node's allocatable
/// beside the active pods already admitted (pods that already ran, after a kubelet restart,
/// are taken back as they are).
async fn admit(
    shared: &Arc<Shared>,
    table: &PodTable,
    pod: &Pod,
) -> Result<(), crate::admission::Rejection> {
    if phase(pod) != "Pending" || pod.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let uid = pod.uid().unwrap_or_default();
    let pods = table.lock().await;
    let admitted: Vec<&Pod> = pods
        .iter()
        .filter(|(u, p)| **u != uid && !matches!(phase(p), "Succeeded" | "Failed"))
        .map(|(_, p)| p)
        .collect();
    crate::admission::admit(pod, &admitted, &shared.cfg.allocatable)
}

/// Marks a pod the node cannot take Failed with the rejection's reason, as upstream does.
async fn reject(shared: &Arc<Shared>, pod: &Pod, rejection: crate::admission::Rejection) {
    tracing::info!(pod = %pod.name_any(), reason = %rejection.reason, "pod rejected");
    shared.recorder.event(
        pod,
        daemon::events::EventType::Warning,
        &rejection.reason,
        &rejection.message,
    );
    let api: Api<Pod> =
        Api::namespaced(shared.client.clone(), &pod.namespace().unwrap_or_default());
    let patch = serde_json::json!({"status": {"phase": "Failed", "reason": rejection.reason,
        "message": rejection.message}});
    if let Err(e) = api
        .patch_status(
            &pod.name_any(),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
    {
        tracing::warn!(pod = %pod.name_any(), error = %e, "rejection not written");
    }
}

async fn remove(workers: &Arc<Mutex<HashMap<String, WorkerHandle>>>, table: &PodTable, uid: &str) {
    if let Some(w) = workers.lock().await.get(uid) {
        let _ = w.pods.send(None);
    }
    table.lock().await.remove(uid);
    // The entry stays until the worker finished; the PLEG loop reaps finished ones.
}

/// Relists the runtime every second and wakes the workers whose pods changed.
async fn pleg(shared: Arc<Shared>, workers: Arc<Mutex<HashMap<String, WorkerHandle>>>) {
    let mut last: HashMap<String, Vec<(String, String)>> = HashMap::new();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut now: HashMap<String, Vec<(String, String)>> = HashMap::new();
        match shared.runtime.list_containers().await {
            Ok(list) => {
                for c in list {
                    if let Some(uid) = c.labels.get(LABEL_POD_UID) {
                        now.entry(uid.clone())
                            .or_default()
                            .push((c.id.clone(), c.status.clone()));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "runtime relist failed");
                continue;
            }
        }
        for v in now.values_mut() {
            v.sort();
        }
        let mut ws = workers.lock().await;
        ws.retain(|_, w| !w.task.is_finished());
        for (uid, w) in ws.iter() {
            if now.get(uid) != last.get(uid) {
                w.notify.notify_one();
            }
        }
        last = now;
    }
}

/// Removes sandboxes (and network allocations) whose pod is not bound here any more.
async fn cleanup_orphans(shared: Arc<Shared>, known: Vec<String>) {
    let Ok(sandboxes) = shared.runtime.list_sandboxes().await else {
        return;
    };
    let net = shared.network.borrow().clone();
    for sb in sandboxes {
        let uid = sb.labels.get(LABEL_POD_UID).cloned().unwrap_or_default();
        if known.contains(&uid) {
            continue;
        }
        tracing::info!(sandbox = %sb.id, pod = %sb.name, "removing sandbox of a pod that is gone");
        if let Some(net) = &net {
            let ns = sb.netns.as_ref().map(std::path::PathBuf::from);
            let _ = net.detach(&sb.id, ns.as_deref()).await;
        }
        if let Err(e) = shared.runtime.remove_sandbox(&sb.id).await {
            tracing::warn!(sandbox = %sb.id, error = %e, "orphan removal failed");
        }
        let dir = shared.cfg.root_dir.join("pods").join(&uid);
        let _ = crate::volumes::teardown(&dir, shared.mounter.as_ref());
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Some(net) = &net {
        let live: Vec<String> = shared
            .runtime
            .list_sandboxes()
            .await
            .map(|l| l.into_iter().map(|s| s.id).collect())
            .unwrap_or_default();
        for id in net.allocated().await {
            if !live.contains(&id) {
                let _ = net.detach(&id, None).await;
            }
        }
    }
}

/// How the node loop builds the network once the podCIDR is known.
pub type NetworkFactory = Box<
    dyn Fn(
            ipnet::Ipv4Net,
        ) -> futures::future::BoxFuture<
            'static,
            Result<(Arc<dyn PodNetworkPlugin>, Arc<dyn RouteSync>), String>,
        > + Send
        + Sync,
>;

/// Keeps routes to the other nodes' pod CIDRs.
#[async_trait::async_trait]
pub trait RouteSync: Send + Sync {
    /// Replaces the routes with `peers` (podCIDR via node IP).
    async fn sync(&self, peers: &[(ipnet::Ipv4Net, Ipv4Addr)]) -> Result<(), String>;
}

/// Registers the node, then keeps its Lease and status current, sets the network up when the
/// podCIDR appears and keeps the host-gw routes in sync with the other nodes.
pub async fn run_node(
    client: Client,
    machine: Machine,
    nodes: Store<Node>,
    network: watch::Sender<Option<Arc<dyn PodNetworkPlugin>>>,
    factory: NetworkFactory,
    root_dir: std::path::PathBuf,
) {
    let mut node = loop {
        match node::register(&client, &machine).await {
            Ok(n) => break n,
            Err(e) => {
                tracing::warn!(error = %e, "node registration failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    tracing::info!(node = %machine.name, "registered node");
    let mut routes: Option<Arc<dyn RouteSync>> = None;
    let mut last_peers: Vec<(ipnet::Ipv4Net, Ipv4Addr)> = Vec::new();
    let mut last_status: Option<serde_json::Value> = None;
    let mut last_status_write = tokio::time::Instant::now() - Duration::from_secs(3600);
    let mut last_lease = tokio::time::Instant::now() - Duration::from_secs(3600);
    loop {
        if let Some(n) = nodes.get(&reflector::ObjectRef::new(&machine.name)) {
            let rv = |n: &Node| {
                n.resource_version()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if rv(&n) >= rv(&node) {
                node = (*n).clone();
            }
        }
        // Network: set up once the controller assigned our podCIDR.
        if network.borrow().is_none() {
            let cidr = node
                .spec
                .as_ref()
                .and_then(|s| s.pod_cidr.clone())
                .and_then(|c| c.parse::<ipnet::Ipv4Net>().ok());
            if let Some(cidr) = cidr {
                match factory(cidr).await {
                    Ok((net, r)) => {
                        tracing::info!(%cidr, "pod network ready");
                        let _ = network.send(Some(net));
                        routes = Some(r);
                    }
                    Err(e) => tracing::warn!(error = %e, "pod network setup failed"),
                }
            }
        }
        if let Some(r) = &routes {
            let mut peers: Vec<(ipnet::Ipv4Net, Ipv4Addr)> = nodes
                .state()
                .iter()
                .filter(|n| n.name_any() != machine.name)
                .filter_map(|n| {
                    let cidr = n.spec.as_ref()?.pod_cidr.as_ref()?.parse().ok()?;
                    let ip = n
                        .status
                        .as_ref()?
                        .addresses
                        .as_ref()?
                        .iter()
                        .find(|a| a.type_ == "InternalIP")?
                        .address
                        .parse()
                        .ok()?;
                    Some((cidr, ip))
                })
                .collect();
            peers.sort();
            if peers != last_peers {
                match r.sync(&peers).await {
                    Ok(()) => last_peers = peers,
                    Err(e) => tracing::warn!(error = %e, "route sync failed"),
                }
            }
        }
        if last_lease.elapsed() >= Duration::from_secs(10) {
            match node::renew_lease(&client, &node, Duration::from_secs(40)).await {
                Ok(()) => last_lease = tokio::time::Instant::now(),
                Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
            }
        }
        let old = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let now = jiff::Timestamp::now();
        let status = node::node_status(
            &machine,
            network.borrow().is_some(),
            node::pressure(&root_dir),
            &old,
            now,
        );
        // Compare without heartbeat times: write on change, else every minute.
        let mut cmp = serde_json::to_value(&status).unwrap_or_default();
        if let Some(conds) = cmp.get_mut("conditions").and_then(|c| c.as_array_mut()) {
            for c in conds {
                if let Some(o) = c.as_object_mut() {
                    o.remove("lastHeartbeatTime");
                }
            }
        }
        let ready_in_api = old.iter().any(|c| c.type_ == "Ready");
        if last_status.as_ref() != Some(&cmp)
            || !ready_in_api
            || last_status_write.elapsed() >= Duration::from_secs(60)
        {
            match node::update_status(&client, &machine.name, &status).await {
                Ok(n) => {
                    node = n;
                    last_status = Some(cmp);
                    last_status_write = tokio::time::Instant::now();
                }
                Err(e) => tracing::warn!(error = %e, "node status update failed"),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
