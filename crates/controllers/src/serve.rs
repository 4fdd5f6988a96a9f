//! The /healthz and Prometheus /metrics endpoint of the control-plane daemons.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    controller: String,
    result: String,
}

struct Metrics {
    registry: Mutex<Registry>,
    syncs: Family<SyncLabels, Counter>,
    leader: Gauge,
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let mut registry = Registry::default();
        let syncs = Family::<SyncLabels, Counter>::default();
        let leader = Gauge::default();
        registry.register(
            "controller_syncs",
            "Syncs per controller and result",
            syncs.clone(),
        );
        registry.register(
            "leader_election_master_status",
            "1 while this instance leads",
            leader.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            syncs,
            leader,
        }
    })
}

/// Counts one sync of `controller`.
pub fn count_sync(controller: &str, ok: bool) {
    metrics()
        .syncs
        .get_or_create(&SyncLabels {
            controller: controller.to_string(),
            result: if ok { "success" } else { "error" }.to_string(),
        })
        .inc();
}

/// Sets the leader gauge.
pub fn set_leader(leading: bool) {
    metrics().leader.set(leading as i64);
}

/// Registers an extra metric (e.g. the scheduler's).
pub fn register(name: &str, help: &str, metric: impl prometheus_client::registry::Metric) {
    metrics()
        .registry
        .lock()
        .unwrap()
        .register(name, help, metric);
}

fn render() -> String {
    let mut out = String::new();
    let reg = metrics().registry.lock().unwrap();
    let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
    out
}

/// Binds `addr` and serves /healthz and /metrics in the background.
pub async fn serve(addr: SocketAddr) -> crate::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let _ = metrics();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/metrics", get(|| async { render() }));
    let app: Router = app;
    let h = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let _keep: Option<Arc<()>> = None;
    Ok((local, h))
}
