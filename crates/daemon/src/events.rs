//! core/v1 Events, written directly so `kubectl describe` shows them.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Writes Events on behalf of one component, a few at a time: a burst of events (10,000 pods
/// scheduled) must not open a connection per event. Like upstream's broadcaster, events beyond
/// [`MAX_PENDING_EVENTS`] waiting are dropped.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    host: Option<String>,
    writers: Arc<tokio::sync::Semaphore>,
    pending: Arc<AtomicUsize>,
}

/// Event writes in flight per recorder.
const EVENT_WRITERS: usize = 4;
/// Events waiting to be written, per recorder, beyond which new ones are dropped.
pub const MAX_PENDING_EVENTS: usize = 1000;

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl Recorder {
    /// A recorder for `component` (e.g. `replicaset-controller`).
    pub fn new(client: Client, component: &str) -> Recorder {
        Recorder {
            client,
            component: component.to_string(),
            host: None,
            writers: Arc::new(tokio::sync::Semaphore::new(EVENT_WRITERS)),
            pending: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The same recorder, naming `host` as the events' source host (the kubelet's node).
    pub fn with_host(mut self, host: &str) -> Recorder {
        self.host = Some(host.to_string());
        self
    }

    /// Records an event about `obj` in the background.
    pub fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        let r = object_reference(obj);
        self.event_ref(r, type_, reason, message);
    }

    /// Records an event about the object `r` in the background.
    pub fn event_ref(&self, r: ObjectReference, type_: EventType, reason: &str, message: &str) {
        let ns = r.namespace.clone().unwrap_or_else(|| "default".to_string());
        let now = jiff::Timestamp::now();
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{:x}",
                    r.name.clone().unwrap_or_default(),
                    now.as_nanosecond() as u64 ^ rand::random::<u32>() as u64
                )),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: r,
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_string(),
            ),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: self.host.clone(),
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone().unwrap_or_else(|| self.component.clone())),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            action: Some(reason.to_string()),
            count: Some(1),
            ..Default::default()
        };
        if self.pending.fetch_add(1, Ordering::SeqCst) >= MAX_PENDING_EVENTS {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            tracing::debug!(%reason, "event dropped: too many waiting");
            return;
        }
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let (writers, pending) = (self.writers.clone(), self.pending.clone());
        tokio::spawn(async move {
            let permit = writers.acquire_owned().await;
            if let Err(e) = api.create(&PostParams::default(), &ev).await {
                tracing::debug!(error = %e, "event not recorded");
            }
            drop(permit);
            pending.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// The reference of `obj` for an event's involvedObject.
pub fn object_reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        name: Some(obj.name_any()),
        namespace: obj.namespace(),
        uid: obj.uid(),
        resource_version: obj.resource_version(),
        field_path: None,
    }
}
