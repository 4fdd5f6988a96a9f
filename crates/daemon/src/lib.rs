//! Plumbing every mini-cluster daemon shares: the common flags, `-v` logging, the apiserver
//! client, /healthz and /metrics, SIGTERM handling and leader election on a Lease.

pub mod events;
pub mod leader;
pub mod serve;
pub mod tls;

use std::time::Duration;

/// Errors of the daemon plumbing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig could not be read or understood.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    /// A request to the apiserver failed.
    #[error("api request failed: {0}")]
    Kube(#[from] kube::Error),
    /// The HTTP endpoint could not be bound or served.
    #[error("serve: {0}")]
    Io(#[from] std::io::Error),
}

/// The result of the daemon plumbing's fallible operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses `40s`, `5m`, `1h`, `500ms` or plain seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// [`parse_duration`] as a clap value parser.
pub fn duration_arg(s: &str) -> std::result::Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("invalid duration {s:?} (use e.g. 500ms, 40s, 5m, 1h)"))
}

/// Sets up tracing with the Kubernetes-style `-v` level (RUST_LOG overrides).
pub fn init_tracing(v: u8) {
    let level = match v {
        0..=1 => "info",
        2..=4 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},hyper=info,tower=info,kube_client=info"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A client from `--kubeconfig` or, without one, the default configuration (in-cluster,
/// $KUBECONFIG, ~/.kube/config).
pub async fn client_from(path: Option<&std::path::Path>) -> Result<kube::Client> {
    Ok(kube::Client::try_from(config_from(path).await?)?)
}

/// The client configuration [`client_from`] builds (its CA, for one, is the cluster's).
pub async fn config_from(path: Option<&std::path::Path>) -> Result<kube::Config> {
    let bad = |message: String| Error::Kubeconfig {
        path: path.map(|p| p.display().to_string()).unwrap_or_default(),
        message,
    };
    let cfg = match path {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(p).map_err(|e| bad(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| bad(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| bad(e.to_string()))?,
    };
    Ok(cfg)
}

/// hostname_pid, the default leader-election identity.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}_{}", std::process::id())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The flags of every control-plane style daemon: apiserver access, the /healthz and /metrics
/// endpoint and the log level. Flatten it into a binary's own clap struct.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Kubeconfig of the apiserver (default: in-cluster / $KUBECONFIG / ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Log verbosity like the Kubernetes components (0..=10).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

/// The leader-election flags of kube-controller-manager and kube-scheduler.
#[derive(clap::Args, Debug, Clone)]
pub struct LeaderArgs {
    /// Run only while holding the lease in kube-system.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Identity in the lease (default: hostname_pid).
    #[arg(long)]
    pub leader_elect_identity: Option<String>,
    /// Lease duration of the election.
    #[arg(long, default_value = "15s", value_parser = duration_arg)]
    pub leader_elect_lease_duration: Duration,
    /// Renew deadline of the election.
    #[arg(long, default_value = "10s", value_parser = duration_arg)]
    pub leader_elect_renew_deadline: Duration,
    /// Retry period of the election.
    #[arg(long, default_value = "2s", value_parser = duration_arg)]
    pub leader_elect_retry_period: Duration,
}

impl LeaderArgs {
    /// The election configuration for the lease `name`.
    pub fn config(&self, name: &str) -> leader::LeaderConfig {
        let identity = self
            .leader_elect_identity
            .clone()
            .unwrap_or_else(default_identity);
        leader::LeaderConfig {
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
            ..leader::LeaderConfig::new(name, &identity)
        }
    }
}

/// Runs `work` until SIGTERM/SIGINT; with leader election on, only while holding the lease
/// (losing it ends the process with an error, as upstream components exit to restart clean).
pub async fn run_elected<F>(
    client: &kube::Client,
    leader: &LeaderArgs,
    lease: &str,
    work: F,
) -> std::result::Result<(), String>
where
    F: std::future::Future<Output = ()>,
{
    let cfg = leader.config(lease);
    let elected = async {
        if leader.leader_elect {
            leader::acquire(client, &cfg).await;
            tokio::select! {
                _ = work => Ok(()),
                _ = leader::keep_renewing(client, &cfg) => Err("leaderelection lost".to_string()),
            }
        } else {
            work.await;
            Ok(())
        }
    };
    tokio::select! {
        r = elected => r,
        _ = shutdown_signal() => {
            tracing::info!("terminating");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_kubernetes_flags() {
        assert_eq!(parse_duration("40s"), Some(Duration::from_secs(40)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("5x"), None);
        assert!(duration_arg("soon").is_err());
    }
}
