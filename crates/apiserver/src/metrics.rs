//! Prometheus metrics of the apiserver: request counts and latencies by verb, resource and code,
//! open watches, and the store revision.

use std::sync::Mutex;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::cache::WatchCache;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: &'static str,
    resource: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    verb: &'static str,
    resource: &'static str,
}

/// The apiserver's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    pub watchers: Gauge,
    revision: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let watchers = Gauge::default();
        let revision = Gauge::default();
        registry.register(
            "apiserver_request",
            "Requests by verb, resource and HTTP code",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Request latency by verb and resource",
            latency.clone(),
        );
        registry.register(
            "apiserver_registered_watchers",
            "Open watch streams",
            watchers.clone(),
        );
        registry.register(
            "apiserver_watch_cache_resource_version",
            "Newest store revision applied to the watch cache",
            revision.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            watchers,
            revision,
        }
    }

    /// Records one finished request.
    pub fn observe(&self, verb: &'static str, resource: &'static str, code: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                verb,
                resource,
                code,
            })
            .inc();
        if verb != "watch" {
            self.latency
                .get_or_create(&LatencyLabels { verb, resource })
                .observe(took.as_secs_f64());
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self, cache: &WatchCache) -> Response {
        self.revision.set(cache.revision());
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if encode(&mut out, &registry).is_err() {
            return (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response();
        }
        (
            StatusCode::OK,
            [(
                http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            out,
        )
            .into_response()
    }
}
