//! The proxy's /metrics (upstream kube-proxy's metric names) and its /healthz state: healthy
//! while the last successful sync is recent (within twice the sync period, as upstream).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use crate::rules::Table;
use crate::syncer::SyncReport;

/// The proxy's Prometheus metrics.
#[derive(Clone)]
pub struct Metrics {
    pub sync_duration: Histogram,
    pub last_sync_timestamp: Gauge<f64, AtomicU64>,
    pub rules: Family<Vec<(String, String)>, Gauge>,
    pub chains: Family<Vec<(String, String)>, Gauge>,
    pub restore_failures: Counter,
    pub partial_syncs: Counter,
    pub full_syncs: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            sync_duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            last_sync_timestamp: Gauge::default(),
            rules: Family::default(),
            chains: Family::default(),
            restore_failures: Counter::default(),
            partial_syncs: Counter::default(),
            full_syncs: Counter::default(),
        }
    }
}

impl Metrics {
    /// Adds the metrics to the process-wide registry served on /metrics (once per process).
    pub fn register(&self) {
        use daemon::serve::register;
        register(
            "kubeproxy_sync_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds",
            self.sync_duration.clone(),
        );
        register(
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
            "The last time proxy rules were successfully synced",
            self.last_sync_timestamp.clone(),
        );
        register(
            "kubeproxy_sync_proxy_rules_iptables",
            "Number of iptables rules written by the proxy, by table",
            self.rules.clone(),
        );
        register(
            "kubeproxy_sync_proxy_rules_iptables_chains",
            "Number of iptables chains owned by the proxy, by table",
            self.chains.clone(),
        );
        register(
            "kubeproxy_sync_proxy_rules_iptables_restore_failures",
            "Failed iptables-restore batches",
            self.restore_failures.clone(),
        );
        register(
            "kubeproxy_sync_partial_proxy_rules",
            "Syncs that rewrote only the changed chains",
            self.partial_syncs.clone(),
        );
        register(
            "kubeproxy_sync_full_proxy_rules",
            "Syncs that rewrote every chain",
            self.full_syncs.clone(),
        );
    }

    /// Records a successful sync.
    pub fn record_success(&self, report: &SyncReport, took: Duration) {
        self.sync_duration.observe(took.as_secs_f64());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        self.last_sync_timestamp.set(now);
        for table in Table::ALL {
            let label = vec![("table".to_string(), table.as_str().to_string())];
            self.rules
                .get_or_create(&label)
                .set(report.rules.get(&table).copied().unwrap_or(0) as i64);
            self.chains
                .get_or_create(&label)
                .set(report.chains.get(&table).copied().unwrap_or(0) as i64);
        }
        if report.full {
            self.full_syncs.inc();
        } else {
            self.partial_syncs.inc();
        }
    }

    /// Records a failed sync.
    pub fn record_failure(&self, took: Duration) {
        self.sync_duration.observe(took.as_secs_f64());
        self.restore_failures.inc();
    }
}

/// Whether the proxy is healthy: a sync succeeded within `timeout`.
#[derive(Debug, Clone)]
pub struct Health {
    timeout: Duration,
    last_success: Arc<Mutex<Option<Instant>>>,
}

impl Health {
    /// Health with upstream's timeout (twice the sync period).
    pub fn new(timeout: Duration) -> Health {
        Health {
            timeout,
            last_success: Arc::new(Mutex::new(None)),
        }
    }

    /// Notes a successful sync at `at`.
    pub fn synced(&self, at: Instant) {
        *self.last_success.lock().expect("health lock") = Some(at);
    }

    /// Ok while the last successful sync is at most `timeout` before `now`.
    pub fn check_at(&self, now: Instant) -> Result<(), String> {
        match *self.last_success.lock().expect("health lock") {
            None => Err("no successful sync yet".into()),
            Some(t) if now.saturating_duration_since(t) > self.timeout => Err(format!(
                "last successful sync {:.1}s ago (limit {:.0}s)",
                now.saturating_duration_since(t).as_secs_f64(),
                self.timeout.as_secs_f64()
            )),
            Some(_) => Ok(()),
        }
    }

    /// [`Health::check_at`] now.
    pub fn check(&self) -> Result<(), String> {
        self.check_at(Instant::now())
    }
}
