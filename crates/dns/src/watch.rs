//! The watches that keep the index current: Services and discovery.k8s.io/v1 EndpointSlices in
//! every namespace, through kube-rs watchers (relists replace the index's view atomically).

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};

use crate::index::Index;
use crate::metrics::metrics;
use crate::server::Readiness;

/// Watches Services and EndpointSlices until the client's streams end (they retry forever).
pub async fn run(client: Client, index: Arc<RwLock<Index>>, readiness: Arc<Readiness>) {
    let services: Api<Service> = Api::all(client.clone());
    let slices: Api<EndpointSlice> = Api::all(client);
    let services = apply_events(
        watcher::watcher(services, watcher::Config::default()).default_backoff(),
        index.clone(),
        move |i, e: Event<Service>, buffer: &mut Vec<Service>| match e {
            Event::Init => buffer.clear(),
            Event::InitApply(s) => buffer.push(s),
            Event::InitDone => i.replace_services(&std::mem::take(buffer)),
            Event::Apply(s) => i.apply_service(&s),
            Event::Delete(s) => i.delete_service(&s),
        },
        {
            let r = readiness.clone();
            move || r.services.store(true, Ordering::Relaxed)
        },
    );
    let slices = apply_events(
        watcher::watcher(slices, watcher::Config::default()).default_backoff(),
        index,
        move |i, e: Event<EndpointSlice>, buffer: &mut Vec<EndpointSlice>| match e {
            Event::Init => buffer.clear(),
            Event::InitApply(s) => buffer.push(s),
            Event::InitDone => i.replace_slices(&std::mem::take(buffer)),
            Event::Apply(s) => i.apply_slice(&s),
            Event::Delete(s) => i.delete_slice(&s),
        },
        move || readiness.slices.store(true, Ordering::Relaxed),
    );
    futures::join!(services, slices);
}

/// Feeds one watch stream into the index and marks the watch listed after its first InitDone.
async fn apply_events<K, S, F, R>(stream: S, index: Arc<RwLock<Index>>, apply: F, listed: R)
where
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
    F: Fn(&mut Index, Event<K>, &mut Vec<K>),
    R: Fn(),
{
    futures::pin_mut!(stream);
    let mut buffer = Vec::new();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "watch failed; retrying");
                continue;
            }
        };
        let init_done = matches!(event, Event::InitDone);
        let buffered = matches!(event, Event::Init | Event::InitApply(_));
        if buffered {
            let mut i = index.write().unwrap_or_else(|e| e.into_inner());
            apply(&mut i, event, &mut buffer);
        } else {
            let mut i = index.write().unwrap_or_else(|e| e.into_inner());
            apply(&mut i, event, &mut buffer);
            let m = metrics();
            m.services.set(i.service_count() as i64);
            m.endpoints.set(i.endpoint_count() as i64);
            m.ptr_names.set(i.ptr_count() as i64);
        }
        if init_done {
            listed();
        }
    }
}
