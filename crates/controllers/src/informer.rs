//! One shared informer per resource type: a kube-rs watcher feeding a reflector store, with
//! event handlers (old, new) that controllers register to enqueue keys.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{store::Writer, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use serde::de::DeserializeOwned;

/// A handler of changes: `(old, new)`; `new` is None on deletion, `old` None on addition.
pub type Handler<K> = Box<dyn Fn(Option<&K>, Option<&K>) + Send + Sync>;

/// A shared informer: one watch, one cache, many handlers.
pub struct Informer<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    api: Api<K>,
    config: watcher::Config,
    store: Store<K>,
    writer: Mutex<Option<Writer<K>>>,
    handlers: Arc<Mutex<Vec<Handler<K>>>>,
    // kube's Store::wait_until_ready wakes only its last waiter: keep our own signal
    synced: tokio::sync::watch::Sender<bool>,
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Default + Send + Sync,
{
    /// An informer over `api` (all namespaces or one).
    pub fn new(api: Api<K>) -> Arc<Self> {
        Informer::with_config(api, watcher::Config::default())
    }

    /// An informer over the objects of `api` that `config` selects (labels, fields).
    pub fn with_config(api: Api<K>, config: watcher::Config) -> Arc<Self> {
        let writer = Writer::default();
        let store = writer.as_reader();
        Arc::new(Informer {
            api,
            config,
            store,
            writer: Mutex::new(Some(writer)),
            handlers: Arc::new(Mutex::new(Vec::new())),
            synced: tokio::sync::watch::channel(false).0,
        })
    }

    /// The cache (read-only).
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// Registers a handler; call before [`Informer::start`].
    pub fn on_change(&self, h: impl Fn(Option<&K>, Option<&K>) + Send + Sync + 'static) {
        self.handlers.lock().unwrap().push(Box::new(h));
    }

    /// Waits until the first list arrived.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Starts watching (once).
    pub fn start(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let mut writer = self.writer.lock().unwrap().take()?;
        let api = self.api.clone();
        let config = self.config.clone();
        let store = self.store.clone();
        let handlers = Arc::clone(&self.handlers);
        let synced = self.synced.clone();
        Some(tokio::spawn(async move {
            let stream = watcher(api, config).default_backoff();
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(e) => {
                        tracing::warn!(kind = %K::kind(&Default::default()), error = %e, "watch failed");
                        continue;
                    }
                };
                tracing::trace!(kind = %K::kind(&Default::default()), event = ?std::mem::discriminant(&ev), "informer event");
                let hs = handlers.lock().unwrap();
                match &ev {
                    Event::Apply(o) => {
                        let old = store.get(&ObjectRef::from_obj(o));
                        writer.apply_watcher_event(&ev);
                        for h in hs.iter() {
                            h(old.as_deref(), Some(o));
                        }
                    }
                    Event::Delete(o) => {
                        writer.apply_watcher_event(&ev);
                        for h in hs.iter() {
                            h(Some(o), None);
                        }
                    }
                    Event::InitDone => {
                        let before = store.state();
                        writer.apply_watcher_event(&ev);
                        let after = store.state();
                        // one map, not a scan of `before` per object: a relist of 10,000 objects
                        // must not cost 10,000² comparisons
                        let before_by_ref: std::collections::HashMap<ObjectRef<K>, &Arc<K>> =
                            before
                                .iter()
                                .map(|b| (ObjectRef::from_obj(b.as_ref()), b))
                                .collect();
                        for o in &after {
                            let old = before_by_ref.get(&ObjectRef::from_obj(o.as_ref()));
                            for h in hs.iter() {
                                h(old.map(|a| a.as_ref()), Some(o));
                            }
                        }
                        synced.send_replace(true);
                        for b in &before {
                            if store.get(&ObjectRef::from_obj(b.as_ref())).is_none() {
                                for h in hs.iter() {
                                    h(Some(b), None);
                                }
                            }
                        }
                    }
                    _ => writer.apply_watcher_event(&ev),
                }
            }
        }))
    }
}

fn watcher<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<Event<K>, watcher::Error>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, config.any_semantic())
}
