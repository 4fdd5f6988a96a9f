//! The proxy's control loop: reflectors over Services and EndpointSlices feeding a change
//! tracker, and a sync loop that
//! coalesces bursts of changes (at most one sync per `min_sync_period`) and resyncs every
//! `sync_period`, like kube-proxy's BoundedFrequencyRunner.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, reflector, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::iptables::{Conntrack, Iptables};
use crate::metrics::{Health, Metrics};
use crate::model::Snapshot;
use crate::syncer::Syncer;
use crate::tracker::ChangeTracker;

/// Runs `sync` when `trigger` fires, at most once per `min_sync_period` (changes arriving in
/// between are folded into one sync), and at least every `sync_period`. A failed sync (false)
/// is retried after `min_sync_period`. Returns when `shutdown` resolves.
pub async fn sync_loop<F, Fut>(
    trigger: Arc<Notify>,
    min_sync_period: Duration,
    sync_period: Duration,
    mut sync: F,
    shutdown: impl Future<Output = ()>,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    tokio::pin!(shutdown);
    let mut last_sync: Option<Instant> = None;
    loop {
        let periodic = last_sync.map_or_else(Instant::now, |t| t + sync_period);
        tokio::select! {
            _ = &mut shutdown => return,
            _ = trigger.notified() => {}
            _ = tokio::time::sleep_until(periodic), if last_sync.is_some() => {}
        }
        if let Some(t) = last_sync {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep_until(t + min_sync_period) => {}
            }
        }
        // Changes that arrived while waiting are part of this sync: drop their wake-up.
        let _ = futures::FutureExt::now_or_never(trigger.notified());
        last_sync = Some(Instant::now());
        if !sync().await {
            trigger.notify_one();
        }
    }
}

/// Caches of the watched objects and the snapshot kept from their events.
#[derive(Clone)]
pub struct Caches {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub tracker: Arc<Mutex<ChangeTracker>>,
}

impl Caches {
    /// The current snapshot (only services changed since the last call are rebuilt).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.tracker
            .lock()
            .expect("tracker lock")
            .snapshot(&self.services, &self.slices)
    }
}

/// Starts the reflectors; every event is noted by the tracker and pokes `trigger`. Returns the
/// caches once both have listed (the proxy must not program a partial view).
pub async fn start_watches(client: kube::Client, node_name: &str, trigger: Arc<Notify>) -> Caches {
    let (services, service_writer) = reflector::store::<Service>();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let tracker = Arc::new(Mutex::new(ChangeTracker::new(node_name)));
    spawn_reflector(
        service_writer,
        Api::all(client.clone()),
        "service watch",
        ChangeTracker::service_event,
        tracker.clone(),
        trigger.clone(),
    );
    spawn_reflector(
        slice_writer,
        Api::all(client),
        "endpointslice watch",
        ChangeTracker::slice_event,
        tracker.clone(),
        trigger,
    );
    let _ = services.wait_until_ready().await;
    let _ = slices.wait_until_ready().await;
    Caches {
        services,
        slices,
        tracker,
    }
}

/// Runs a reflector filling `writer` from a watch of `api`; every event is noted by the
/// tracker (`note`) and pokes `trigger`.
fn spawn_reflector<K>(
    writer: reflector::store::Writer<K>,
    api: Api<K>,
    what: &'static str,
    note: fn(&mut ChangeTracker, &watcher::Event<K>),
    tracker: Arc<Mutex<ChangeTracker>>,
    trigger: Arc<Notify>,
) where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    tokio::spawn(async move {
        reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .for_each(|event| {
                match event {
                    Ok(event) => note(&mut tracker.lock().expect("tracker lock"), &event),
                    Err(e) => tracing::warn!(error = %e, "{what}"),
                }
                trigger.notify_one();
                futures::future::ready(())
            })
            .await;
    });
}

/// How often the proxy syncs.
#[derive(Debug, Clone, Copy)]
pub struct Periods {
    /// At most one sync per this interval (`--min-sync-period`).
    pub min_sync_period: Duration,
    /// At least one sync per this interval (`--sync-period`).
    pub sync_period: Duration,
}

/// Runs the proxy until `shutdown`: watches, coalesced syncs, metrics and health.
pub async fn run<I, C>(
    client: kube::Client,
    node_name: String,
    syncer: Syncer<I, C>,
    periods: Periods,
    metrics: Metrics,
    health: Health,
    shutdown: impl Future<Output = ()>,
) where
    I: Iptables + 'static,
    C: Conntrack + 'static,
{
    let trigger = Arc::new(Notify::new());
    let caches = start_watches(client, &node_name, trigger.clone()).await;
    tracing::info!("caches synced, programming rules");
    trigger.notify_one();
    let syncer = Arc::new(Mutex::new(syncer));
    let sync = || {
        let syncer = syncer.clone();
        let snapshot = caches.snapshot();
        let metrics = metrics.clone();
        let health = health.clone();
        async move {
            let started = std::time::Instant::now();
            let result = tokio::task::spawn_blocking(move || {
                syncer.lock().expect("syncer lock").sync(&snapshot)
            })
            .await;
            let took = started.elapsed();
            match result {
                Ok(Ok(report)) => {
                    tracing::debug!(
                        full = report.full,
                        chains_written = report.batch_stats.chains_written,
                        chains_deleted = report.batch_stats.chains_deleted,
                        took_ms = took.as_millis() as u64,
                        "synced proxy rules"
                    );
                    metrics.record_success(&report, took);
                    health.synced(std::time::Instant::now());
                    true
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "sync of proxy rules failed");
                    metrics.record_failure(took);
                    false
                }
                Err(e) => {
                    tracing::error!(error = %e, "sync task failed");
                    metrics.record_failure(took);
                    false
                }
            }
        }
    };
    sync_loop(
        trigger,
        periods.min_sync_period,
        periods.sync_period,
        sync,
        shutdown,
    )
    .await;
}
