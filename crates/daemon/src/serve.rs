//! The /healthz, /readyz and Prometheus /metrics endpoint of the daemons: one process-wide
//! registry that each component adds its metrics to, and a health check it can plug in.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

struct Metrics {
    registry: Mutex<Registry>,
    leader: Gauge,
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let mut registry = Registry::default();
        let leader = Gauge::default();
        registry.register(
            "leader_election_master_status",
            "1 while this instance leads",
            leader.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            leader,
        }
    })
}

/// Sets the leader gauge.
pub fn set_leader(leading: bool) {
    metrics().leader.set(leading as i64);
}

/// Registers a component's metric in the process-wide registry.
pub fn register(name: &str, help: &str, metric: impl prometheus_client::registry::Metric) {
    metrics()
        .registry
        .lock()
        .expect("metrics registry lock")
        .register(name, help, metric);
}

/// The registry in Prometheus' text format.
pub fn render() -> String {
    let mut out = String::new();
    let reg = metrics().registry.lock().expect("metrics registry lock");
    let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
    out
}

/// A health check: Ok while healthy, Err(reason) otherwise (answered as 500 with the reason).
pub type HealthCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Binds `addr` and serves /healthz, /readyz and /metrics in the background; always healthy.
pub async fn serve(addr: SocketAddr) -> crate::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with(addr, Arc::new(|| Ok(())), Router::new()).await
}

/// Like [`serve`], with `health` deciding /healthz and /readyz and `extra` routes merged in.
pub async fn serve_with(
    addr: SocketAddr,
    health: HealthCheck,
    extra: Router,
) -> crate::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let _ = metrics();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let check = move || {
        let health = health.clone();
        async move {
            match health() {
                Ok(()) => (StatusCode::OK, "ok".to_string()),
                Err(why) => (StatusCode::INTERNAL_SERVER_ERROR, why),
            }
        }
    };
    let app = Router::new()
        .route("/healthz", get(check.clone()))
        .route("/readyz", get(check))
        .route("/metrics", get(|| async { render() }))
        .merge(extra);
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok((local, handle))
}
