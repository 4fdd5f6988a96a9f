//! The watch cache: one store watch over the whole registry feeds an in-memory copy of every
//! resource type (current objects plus a window of recent events), from which lists and
//! watches are served. A thousand watchers cost one store watch.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use store::{EventKind, ListOptions, Revision, Store, StoreError};
use tokio::sync::{broadcast, watch, RwLock};

use api::ResourceInfo;

/// How many recent events each resource keeps for watches that resume from an older version.
const EVENT_WINDOW: usize = 20_000;
/// Capacity of the live fan-out channel of each resource; a watcher lagging more is closed.
const FANOUT_CAPACITY: usize = 4096;

/// Type of a watch event, as Kubernetes names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change of one object.
#[derive(Debug, Clone)]
pub struct CacheEvent {
    pub kind: EventType,
    pub key: String,
    pub revision: Revision,
    /// The object after the change (for deletes: its last state, with the delete's version).
    pub object: Arc<Value>,
    /// The object before the change (updates and deletes).
    pub previous: Option<Arc<Value>>,
}

/// The cached state of one resource type.
pub struct ResourceCache {
    state: RwLock<CacheState>,
    fanout: broadcast::Sender<Arc<CacheEvent>>,
}

struct CacheState {
    objects: BTreeMap<String, Arc<Value>>,
    events: VecDeque<Arc<CacheEvent>>,
    /// Every event with a revision greater than this one is in `events`.
    complete_after: Revision,
}

/// A consistent snapshot of one resource's objects.
pub struct Snapshot {
    pub revision: Revision,
    pub objects: Vec<Arc<Value>>,
}

/// What a watcher gets from the cache: the events it missed, then a live receiver.
pub struct Subscription {
    pub backlog: Vec<Arc<CacheEvent>>,
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
}

/// The watch cache of every resource type, kept current by one store watch.
pub struct WatchCache {
    resources: HashMap<String, Arc<ResourceCache>>,
    revision: watch::Sender<Revision>,
}

impl WatchCache {
    /// Builds the cache from the store, replaying the history the store still keeps so that
    /// watches resuming from an older version (after an apiserver restart) miss nothing.
    pub async fn start(store: Arc<dyn Store>) -> Result<Arc<WatchCache>, StoreError> {
        let mut states: HashMap<String, CacheState> = HashMap::new();
        for r in api::RESOURCES {
            states.insert(
                r.key_prefix(),
                CacheState {
                    objects: BTreeMap::new(),
                    events: VecDeque::new(),
                    complete_after: 0,
                },
            );
        }
        // Start from the oldest revision the store still has, then replay forward.
        let start = store.compacted_revision().await?;
        let listed = match store
            .list(
                "/registry/",
                ListOptions {
                    // A store that was never compacted keeps its history from revision 1.
                    revision: Some(start.max(1)),
                    ..Default::default()
                },
            )
            .await
        {
            Ok(l) => l,
            Err(StoreError::Compacted { .. }) | Err(StoreError::FutureRevision { .. }) => {
                store.list("/registry/", ListOptions::default()).await?
            }
            Err(e) => return Err(e),
        };
        let base = listed.revision;
        for kv in listed.items {
            let Some(prefix) = resource_prefix(&kv.key) else {
                continue;
            };
            let Some(state) = states.get_mut(prefix) else {
                continue;
            };
            if let Ok(obj) = decode(&kv.value, kv.mod_revision) {
                state.objects.insert(kv.key, Arc::new(obj));
            }
        }
        let resources = states
            .into_iter()
            .map(|(prefix, mut state)| {
                state.complete_after = base;
                let rc = Arc::new(ResourceCache {
                    state: RwLock::new(state),
                    fanout: broadcast::channel(FANOUT_CAPACITY).0,
                });
                (prefix, rc)
            })
            .collect();
        let cache = Arc::new(WatchCache {
            resources,
            revision: watch::channel(base).0,
        });
        // Replay what happened after `base` before serving, then keep following.
        let current = store.current_revision().await?;
        let stream = store.watch("/registry/", base).await?;
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(follow(
            cache.clone(),
            store.clone(),
            stream,
            current,
            Some(ready_tx),
        ));
        let _ = tokio::time::timeout(Duration::from_secs(60), ready_rx).await;
        Ok(cache)
    }

    /// The cache of one resource type.
    pub fn resource(&self, resource: &ResourceInfo) -> Arc<ResourceCache> {
        self.resources
            .get(&resource.key_prefix())
            .cloned()
            .expect("every registered resource has a cache")
    }

    /// The newest revision the cache has applied.
    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// Waits until the cache has applied `revision` (for consistent reads).
    pub async fn wait_for(&self, revision: Revision, timeout: Duration) -> bool {
        let mut rx = self.revision.subscribe();
        let result = tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision)).await;
        matches!(result, Ok(Ok(_)))
    }

    /// A receiver of the cache's revision.
    pub fn revision_watch(&self) -> watch::Receiver<Revision> {
        self.revision.subscribe()
    }

    async fn apply(&self, event: store::WatchEvent) {
        let revision = event.revision;
        if let Some(prefix) = resource_prefix(&event.kv.key) {
            if let Some(rc) = self.resources.get(prefix) {
                rc.apply(event).await;
            }
        }
        self.revision.send_if_modified(|r| {
            if revision > *r {
                *r = revision;
                true
            } else {
                false
            }
        });
    }

    /// Re-reads the whole store after the store watch was lost beyond recovery, turning the
    /// differences into events so that watchers stay exact.
    async fn resync(&self, store: &Arc<dyn Store>) -> Result<Revision, StoreError> {
        let listed = store.list("/registry/", ListOptions::default()).await?;
        let mut by_prefix: HashMap<&str, BTreeMap<String, store::KeyValue>> = HashMap::new();
        for kv in listed.items {
            if let Some(prefix) = resource_prefix(&kv.key) {
                if let Some((p, _)) = self.resources.get_key_value(prefix) {
                    by_prefix
                        .entry(p.as_str())
                        .or_default()
                        .insert(kv.key.clone(), kv);
                }
            }
        }
        for (prefix, rc) in &self.resources {
            let fresh = by_prefix.remove(prefix.as_str()).unwrap_or_default();
            rc.resync(fresh, listed.revision).await;
        }
        self.revision.send_replace(listed.revision);
        Ok(listed.revision)
    }
}

impl ResourceCache {
    async fn apply(&self, event: store::WatchEvent) {
        let mut state = self.state.write().await;
        let previous = state.objects.get(&event.kv.key).cloned();
        let Ok(object) = decode(&event.kv.value, event.kv.mod_revision) else {
            tracing::warn!(key = %event.kv.key, "undecodable object in store");
            return;
        };
        let object = Arc::new(object);
        let kind = match event.kind {
            EventKind::Put if previous.is_some() => EventType::Modified,
            EventKind::Put => EventType::Added,
            EventKind::Delete => EventType::Deleted,
        };
        match kind {
            EventType::Deleted => {
                state.objects.remove(&event.kv.key);
            }
            _ => {
                state.objects.insert(event.kv.key.clone(), object.clone());
            }
        }
        let ev = Arc::new(CacheEvent {
            kind,
            key: event.kv.key,
            revision: event.revision,
            object,
            previous,
        });
        state.push(ev.clone());
        let _ = self.fanout.send(ev);
    }

    async fn resync(&self, fresh: BTreeMap<String, store::KeyValue>, revision: Revision) {
        let mut state = self.state.write().await;
        let gone: Vec<String> = state
            .objects
            .keys()
            .filter(|k| !fresh.contains_key(*k))
            .cloned()
            .collect();
        let mut events = Vec::new();
        for key in gone {
            if let Some(prev) = state.objects.remove(&key) {
                let mut last = (*prev).clone();
                set_resource_version(&mut last, revision);
                events.push(Arc::new(CacheEvent {
                    kind: EventType::Deleted,
                    key,
                    revision,
                    object: Arc::new(last),
                    previous: Some(prev),
                }));
            }
        }
        for (key, kv) in fresh {
            let Ok(obj) = decode(&kv.value, kv.mod_revision) else {
                continue;
            };
            let prev = state.objects.get(&key).cloned();
            if prev.as_deref() == Some(&obj) {
                continue;
            }
            let obj = Arc::new(obj);
            state.objects.insert(key.clone(), obj.clone());
            events.push(Arc::new(CacheEvent {
                kind: if prev.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                },
                key,
                revision,
                object: obj,
                previous: prev,
            }));
        }
        for ev in events {
            state.push(ev.clone());
            let _ = self.fanout.send(ev);
        }
    }

    /// The cached object at `key`, if any.
    pub async fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.state.read().await.objects.get(key).cloned()
    }

    /// A snapshot of the objects under `prefix` (a namespace prefix or the resource prefix).
    pub async fn snapshot(&self, prefix: &str, revision: Revision) -> Snapshot {
        let state = self.state.read().await;
        let objects = state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        Snapshot { revision, objects }
    }

    /// Subscribes to the events after `after`; `None` when that version is no longer in the
    /// window (the watcher must relist: 410 Gone). With `initial` the current objects come
    /// first as ADDED events (`after` is then ignored).
    pub async fn subscribe(&self, after: Revision, initial: bool) -> Option<Subscription> {
        let state = self.state.read().await;
        let live = self.fanout.subscribe();
        if initial {
            let backlog = state
                .objects
                .iter()
                .map(|(k, v)| {
                    Arc::new(CacheEvent {
                        kind: EventType::Added,
                        key: k.clone(),
                        revision: object_revision(v),
                        object: v.clone(),
                        previous: None,
                    })
                })
                .collect();
            return Some(Subscription { backlog, live });
        }
        if after < state.complete_after {
            return None;
        }
        let start = state.events.partition_point(|e| e.revision <= after);
        let backlog = state.events.range(start..).cloned().collect();
        Some(Subscription { backlog, live })
    }

    /// The oldest version a watch can resume from.
    pub async fn oldest(&self) -> Revision {
        self.state.read().await.complete_after
    }
}

impl CacheState {
    fn push(&mut self, ev: Arc<CacheEvent>) {
        self.events.push_back(ev);
        while self.events.len() > EVENT_WINDOW {
            if let Some(old) = self.events.pop_front() {
                self.complete_after = old.revision;
            }
        }
    }
}

/// Follows the store watch forever, re-watching on errors and resyncing when the store has
/// compacted past the cache.
async fn follow(
    cache: Arc<WatchCache>,
    store: Arc<dyn Store>,
    mut stream: store::WatchStream,
    catch_up_to: Revision,
    mut ready: Option<tokio::sync::oneshot::Sender<()>>,
) {
    if cache.revision() >= catch_up_to {
        if let Some(tx) = ready.take() {
            let _ = tx.send(());
        }
    }
    loop {
        while let Some(item) = stream.next().await {
            match item {
                Ok(ev) => {
                    cache.apply(ev).await;
                    if cache.revision() >= catch_up_to {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "store watch failed; re-watching");
                    break;
                }
            }
        }
        // Re-watch from where we are; resync if that is gone.
        loop {
            let from = cache.revision();
            match store.watch("/registry/", from).await {
                Ok(s) => {
                    stream = s;
                    break;
                }
                Err(StoreError::Compacted { .. }) => {
                    if let Err(e) = cache.resync(&store).await {
                        tracing::warn!(error = %e, "resync of the watch cache failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "store watch could not be re-established");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// `/registry/<group>/<plural>/` of a key.
fn resource_prefix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("/registry/")?;
    let mut idx = "/registry/".len();
    let mut parts = rest.splitn(3, '/');
    let group = parts.next()?;
    let plural = parts.next()?;
    parts.next()?;
    idx += group.len() + 1 + plural.len() + 1;
    Some(&key[..idx])
}

/// Decodes a stored object and stamps its resourceVersion.
pub fn decode(bytes: &[u8], revision: Revision) -> Result<Value, serde_json::Error> {
    let mut v: Value = serde_json::from_slice(bytes)?;
    set_resource_version(&mut v, revision);
    Ok(v)
}

/// Sets `metadata.resourceVersion`, at its place in upstream's field order.
pub fn set_resource_version(v: &mut Value, revision: Revision) {
    api::wire::set_resource_version(v, &revision.to_string());
}

/// `metadata.resourceVersion` as a number (0 when absent).
pub fn object_revision(v: &Value) -> Revision {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_cut_at_the_plural() {
        assert_eq!(
            resource_prefix("/registry/core/pods/default/a"),
            Some("/registry/core/pods/")
        );
        assert_eq!(
            resource_prefix("/registry/core/nodes/n1"),
            Some("/registry/core/nodes/")
        );
        assert_eq!(resource_prefix("/registry/core"), None);
        assert_eq!(resource_prefix("/other/x/y/z"), None);
    }
}
