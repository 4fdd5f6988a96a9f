//! The DNS metrics on /metrics: requests by type and rcode, latency, and the index size.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

/// Labels of a request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// udp or tcp.
    pub proto: &'static str,
    /// The query type (A, AAAA, SRV, PTR, ...).
    pub r#type: &'static str,
    /// The response code (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR, ...).
    pub rcode: &'static str,
}

/// The metric handles.
pub struct DnsMetrics {
    /// Requests answered, by protocol, type and rcode.
    pub requests: Family<RequestLabels, Counter>,
    /// Time from receiving a request to sending its answer.
    pub duration: Histogram,
    /// Requests forwarded upstream.
    pub forwarded: Counter,
    /// Forwarded requests that got no answer in time (SERVFAIL).
    pub forward_timeouts: Counter,
    /// Requests dropped without an answer (responses, garbage, overload).
    pub dropped: Counter,
    /// Services in the index.
    pub services: Gauge,
    /// Endpoints in the index.
    pub endpoints: Gauge,
    /// Reverse (PTR) names in the index.
    pub ptr_names: Gauge,
    /// Replies in the answer cache.
    pub cache_entries: Gauge,
    /// UDP requests answered from the cache.
    pub cache_hits: Counter,
    /// UDP requests answered from the index.
    pub cache_misses: Counter,
}

/// The process-wide metrics, registered in the daemon registry on first use.
pub fn metrics() -> &'static DnsMetrics {
    static METRICS: OnceLock<DnsMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let m = DnsMetrics {
            requests: Family::default(),
            duration: Histogram::new(exponential_buckets(0.000_025, 2.0, 18)),
            forwarded: Counter::default(),
            forward_timeouts: Counter::default(),
            dropped: Counter::default(),
            services: Gauge::default(),
            endpoints: Gauge::default(),
            ptr_names: Gauge::default(),
            cache_entries: Gauge::default(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
        };
        daemon::serve::register(
            "dns_cache_entries",
            "Encoded replies in the answer cache (emptied whenever the index changes)",
            m.cache_entries.clone(),
        );
        daemon::serve::register(
            "dns_cache_hits",
            "UDP requests answered from the answer cache",
            m.cache_hits.clone(),
        );
        daemon::serve::register(
            "dns_cache_misses",
            "UDP requests answered from the index",
            m.cache_misses.clone(),
        );
        daemon::serve::register(
            "dns_requests",
            "DNS requests answered, by protocol, query type and response code",
            m.requests.clone(),
        );
        daemon::serve::register(
            "dns_request_duration_seconds",
            "Time to answer a DNS request (forwarded ones included)",
            m.duration.clone(),
        );
        daemon::serve::register(
            "dns_forward_requests",
            "DNS requests forwarded to the upstream resolvers",
            m.forwarded.clone(),
        );
        daemon::serve::register(
            "dns_forward_timeouts",
            "Forwarded DNS requests that timed out (answered SERVFAIL)",
            m.forward_timeouts.clone(),
        );
        daemon::serve::register(
            "dns_dropped_requests",
            "Packets dropped without an answer (not queries, unparseable, or overload)",
            m.dropped.clone(),
        );
        daemon::serve::register(
            "dns_index_services",
            "Services in the DNS index",
            m.services.clone(),
        );
        daemon::serve::register(
            "dns_index_endpoints",
            "Endpoints in the DNS index",
            m.endpoints.clone(),
        );
        daemon::serve::register(
            "dns_index_ptr_names",
            "Reverse (PTR) names in the DNS index",
            m.ptr_names.clone(),
        );
        m
    })
}
