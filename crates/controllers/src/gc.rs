//! The garbage collector: a graph of ownerReferences built from the shared informers, and a work
//! queue of object UIDs. Background: dependents whose owners are all gone are deleted. Foreground:
//! an owner with the foregroundDeletion finalizer has its dependents deleted first and loses the
//! finalizer once no dependent with blockOwnerDeletion remains. Orphan: the owner's dependents
//! lose their reference to it, then the owner loses the orphan finalizer.

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::Result;

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// What the collector knows of one object.
#[derive(Debug, Clone)]
pub struct GraphNode {
    pub uid: String,
    pub kind_key: String,
    pub namespace: Option<String>,
    pub name: String,
    pub owners: Vec<OwnerReference>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, GraphNode>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    fn upsert(&mut self, n: GraphNode) {
        self.remove(&n.uid);
        for o in &n.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(n.uid.clone());
        }
        self.nodes.insert(n.uid.clone(), n);
    }
    fn remove(&mut self, uid: &str) -> Option<GraphNode> {
        let old = self.nodes.remove(uid)?;
        for o in &old.owners {
            if let Some(s) = self.dependents.get_mut(&o.uid) {
                s.remove(uid);
                if s.is_empty() {
                    self.dependents.remove(&o.uid);
                }
            }
        }
        Some(old)
    }
    fn dependents_of(&self, uid: &str) -> Vec<GraphNode> {
        self.dependents
            .get(uid)
            .map(|s| {
                s.iter()
                    .filter_map(|d| self.nodes.get(d).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Waits until one watched informer has synced.
type SyncWait = Arc<dyn Fn() -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

#[derive(Clone)]
struct Kind {
    ar: ApiResource,
    namespaced: bool,
}

/// The garbage collector.
pub struct GarbageCollector {
    client: Client,
    graph: Arc<Mutex<Graph>>,
    kinds: Mutex<HashMap<String, Kind>>,
    queue: Arc<WorkQueue>,
    synced: Mutex<Vec<SyncWait>>,
}

fn kind_key(api_version: &str, kind: &str) -> String {
    format!("{api_version}/{kind}")
}

impl GarbageCollector {
    /// A collector with no watched types yet.
    pub fn new(client: Client) -> Arc<Self> {
        Arc::new(GarbageCollector {
            client,
            graph: Arc::new(Mutex::new(Graph::default())),
            kinds: Mutex::new(HashMap::new()),
            queue: WorkQueue::new("garbagecollector"),
            synced: Mutex::new(Vec::new()),
        })
    }

    /// Adds a resource type to the graph through its shared informer.
    pub fn watch<K>(&self, informer: &Arc<Informer<K>>)
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::Scope: 'static,
    {
        let ar = ApiResource::erase::<K>(&());
        let key = kind_key(&ar.api_version, &ar.kind);
        let namespaced = TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>();
        self.kinds
            .lock()
            .unwrap()
            .insert(key.clone(), Kind { ar, namespaced });
        let graph = self.graph.clone();
        let q = self.queue.clone();
        informer.on_change(move |old, new| {
            let mut g = graph.lock().unwrap();
            match new {
                Some(o) => {
                    let node = GraphNode {
                        uid: o.uid().unwrap_or_default(),
                        kind_key: key.clone(),
                        namespace: o.namespace(),
                        name: o.name_any(),
                        owners: o.owner_references().to_vec(),
                        deleting: o.meta().deletion_timestamp.is_some(),
                        finalizers: o.finalizers().to_vec(),
                    };
                    let prev = g.nodes.get(&node.uid).cloned();
                    let uid = node.uid.clone();
                    let starts_deleting =
                        node.deleting && prev.as_ref().is_none_or(|p| !p.deleting);
                    let owners_changed = prev.as_ref().map(|p| &p.owners) != Some(&node.owners);
                    let mut affected: Vec<String> = Vec::new();
                    if owners_changed {
                        affected.extend(
                            prev.iter()
                                .flat_map(|p| p.owners.iter().map(|o| o.uid.clone())),
                        );
                    }
                    g.upsert(node.clone());
                    if node.deleting || starts_deleting {
                        affected.extend(g.dependents_of(&uid).into_iter().map(|d| d.uid));
                    }
                    // an owner waiting in foreground is re-checked when its dependents change
                    affected.extend(node.owners.iter().map(|o| o.uid.clone()));
                    drop(g);
                    if !node.owners.is_empty() || node.deleting {
                        q.add(uid);
                    }
                    for a in affected {
                        q.add(a);
                    }
                }
                None => {
                    let Some(o) = old else { return };
                    let uid = o.uid().unwrap_or_default();
                    g.remove(&uid);
                    let deps: Vec<String> =
                        g.dependents_of(&uid).into_iter().map(|d| d.uid).collect();
                    drop(g);
                    for d in deps {
                        q.add(d);
                    }
                    for ow in o.owner_references() {
                        q.add(ow.uid.clone());
                    }
                }
            }
        });
        let inf = informer.clone();
        self.synced.lock().unwrap().push(Arc::new(move || {
            let inf = inf.clone();
            Box::pin(async move { inf.wait_synced().await })
        }));
    }

    /// Runs `workers` workers.
    pub async fn run(self: Arc<Self>, workers: usize) {
        let waits: Vec<_> = self.synced.lock().unwrap().clone();
        for w in waits {
            w().await;
        }
        let c = self.clone();
        crate::queue::run_workers(self.queue.clone(), workers, move |uid| {
            let c = c.clone();
            async move { c.process(&uid).await }
        })
        .await;
    }

    fn api_for(&self, kind_key: &str, ns: Option<&str>) -> Option<Api<DynamicObject>> {
        let k = self.kinds.lock().unwrap().get(kind_key).cloned()?;
        Some(match (k.namespaced, ns) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &k.ar),
            _ => Api::all_with(self.client.clone(), &k.ar),
        })
    }

    fn node_api(&self, n: &GraphNode) -> Option<Api<DynamicObject>> {
        self.api_for(&n.kind_key, n.namespace.as_deref())
    }

    async fn delete(&self, n: &GraphNode, policy: PropagationPolicy) -> Result<()> {
        let Some(api) = self.node_api(n) else {
            return Ok(());
        };
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(n.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        tracing::debug!(kind = %n.kind_key, name = %n.name, "garbage collector deletes");
        match api.delete(&n.name, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove_finalizer(&self, n: &GraphNode, fin: &str) -> Result<()> {
        let Some(api) = self.node_api(n) else {
            return Ok(());
        };
        let Some(obj) = api.get_opt(&n.name).await? else {
            return Ok(());
        };
        if obj.uid().as_deref() != Some(n.uid.as_str()) {
            return Ok(());
        }
        let fins: Vec<String> = obj
            .finalizers()
            .iter()
            .filter(|f| *f != fin)
            .cloned()
            .collect();
        let patch =
            json!({"metadata": {"finalizers": fins, "resourceVersion": obj.resource_version()}});
        match api
            .patch(&n.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove_owner_refs(&self, n: &GraphNode, uids: &[String]) -> Result<()> {
        let Some(api) = self.node_api(n) else {
            return Ok(());
        };
        let Some(obj) = api.get_opt(&n.name).await? else {
            return Ok(());
        };
        if obj.uid().as_deref() != Some(n.uid.as_str()) {
            return Ok(());
        }
        let refs: Vec<OwnerReference> = obj
            .owner_references()
            .iter()
            .filter(|r| !uids.contains(&r.uid))
            .cloned()
            .collect();
        if refs.len() == obj.owner_references().len() {
            return Ok(());
        }
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": obj.resource_version()}});
        match api
            .patch(&n.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The state of one owner reference of `n`.
    async fn owner_state(&self, n: &GraphNode, r: &OwnerReference) -> Result<OwnerState> {
        let key = kind_key(&r.api_version, &r.kind);
        if let Some(o) = self.graph.lock().unwrap().nodes.get(&r.uid) {
            return Ok(
                if o.deleting && o.finalizers.iter().any(|f| f == FOREGROUND) {
                    OwnerState::WaitingForDependents
                } else {
                    OwnerState::Solid
                },
            );
        }
        // not in the cache: ask the apiserver (the cache may lag)
        let Some(api) = self.api_for(&key, n.namespace.as_deref()) else {
            return Ok(OwnerState::Solid); // a kind we do not know: never collect
        };
        match api.get_opt(&r.name).await? {
            Some(o) if o.uid().as_deref() == Some(r.uid.as_str()) => Ok(
                if o.metadata.deletion_timestamp.is_some()
                    && o.finalizers().iter().any(|f| f == FOREGROUND)
                {
                    OwnerState::WaitingForDependents
                } else {
                    OwnerState::Solid
                },
            ),
            _ => Ok(OwnerState::Dangling),
        }
    }

    /// Processes one object (upstream's attemptToDeleteItem / orphan / foreground handling).
    pub async fn process(&self, uid: &str) -> Result<Option<Duration>> {
        let Some(n) = self.graph.lock().unwrap().nodes.get(uid).cloned() else {
            return Ok(None);
        };
        if n.deleting {
            let deps = self.graph.lock().unwrap().dependents_of(uid);
            if n.finalizers.iter().any(|f| f == ORPHAN) {
                for d in &deps {
                    self.remove_owner_refs(d, std::slice::from_ref(&n.uid))
                        .await?;
                }
                self.remove_finalizer(&n, ORPHAN).await?;
                return Ok(None);
            }
            if n.finalizers.iter().any(|f| f == FOREGROUND) {
                let mut blocking = 0;
                for d in &deps {
                    let blocks = d
                        .owners
                        .iter()
                        .any(|r| r.uid == n.uid && r.block_owner_deletion == Some(true));
                    if blocks {
                        blocking += 1;
                    }
                    if !d.deleting {
                        let has_deps = !self.graph.lock().unwrap().dependents_of(&d.uid).is_empty();
                        let policy = if has_deps && blocks {
                            PropagationPolicy::Foreground
                        } else {
                            PropagationPolicy::Background
                        };
                        self.delete(d, policy).await?;
                    }
                }
                if blocking == 0 {
                    self.remove_finalizer(&n, FOREGROUND).await?;
                    return Ok(None);
                }
                // dependents' deletions requeue us; poll as a safety net
                return Ok(Some(Duration::from_secs(5)));
            }
            return Ok(None);
        }
        if n.owners.is_empty() {
            return Ok(None);
        }
        let mut solid = Vec::new();
        let mut dangling = Vec::new();
        let mut waiting = Vec::new();
        for r in &n.owners {
            match self.owner_state(&n, r).await? {
                OwnerState::Solid => solid.push(r.uid.clone()),
                OwnerState::Dangling => dangling.push(r.uid.clone()),
                OwnerState::WaitingForDependents => waiting.push(r.uid.clone()),
            }
        }
        if !solid.is_empty() {
            if !dangling.is_empty() || !waiting.is_empty() {
                let mut gone = dangling;
                gone.extend(waiting);
                self.remove_owner_refs(&n, &gone).await?;
            }
            return Ok(None);
        }
        if !waiting.is_empty() {
            let has_deps = !self.graph.lock().unwrap().dependents_of(&n.uid).is_empty();
            let policy = if has_deps {
                PropagationPolicy::Foreground
            } else {
                PropagationPolicy::Background
            };
            self.delete(&n, policy).await?;
            return Ok(None);
        }
        // every owner is gone
        let policy = if n.finalizers.iter().any(|f| f == ORPHAN) {
            PropagationPolicy::Orphan
        } else if n.finalizers.iter().any(|f| f == FOREGROUND) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        self.delete(&n, policy).await?;
        Ok(None)
    }
}

enum OwnerState {
    Solid,
    Dangling,
    WaitingForDependents,
}
