//! mini-controller-manager: every controller in one process, behind a leader election.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use controllers::leader::{self, LeaderConfig};
use controllers::manager::{self, Config};

#[derive(Parser, Debug)]
#[command(
    name = "mini-controller-manager",
    about = "Runs the mini-cluster controllers"
)]
struct Args {
    /// Kubeconfig of the apiserver (default: in-cluster / $KUBECONFIG / ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
    /// CIDR the nodes' pod CIDRs (/24 each) are allocated from.
    #[arg(long, default_value = "10.244.0.0/16")]
    cluster_cidr: ipnet::Ipv4Net,
    /// A node whose lease is older than this is marked Unknown.
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    node_monitor_grace_period: Duration,
    /// Default toleration of pods for unreachable/not-ready nodes.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pod_eviction_timeout: Duration,
    /// Address of /healthz and /metrics.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: std::net::IpAddr,
    /// Port of /healthz and /metrics (0: any free port).
    #[arg(long, default_value_t = 10257)]
    secure_port: u16,
    /// Run only while holding the kube-system/kube-controller-manager lease.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Identity in the lease (default: hostname_pid).
    #[arg(long)]
    leader_elect_identity: Option<String>,
    /// Lease duration of the election.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    leader_elect_lease_duration: Duration,
    /// Renew deadline of the election.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    leader_elect_renew_deadline: Duration,
    /// Retry period of the election.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    leader_elect_retry_period: Duration,
    /// Log verbosity like the Kubernetes components (0..=10).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    verbosity: u8,
}

/// Parses `40s`, `5m`, `1h`, `500ms` or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    controllers::util::parse_duration(s).ok_or_else(|| format!("invalid duration {s:?}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    controllers::util::init_tracing(args.verbosity);
    let client = controllers::util::client_from(args.kubeconfig.as_deref())
        .await
        .context("building the apiserver client")?;
    let (addr, _srv) =
        controllers::serve::serve(SocketAddr::new(args.bind_address, args.secure_port))
            .await
            .context("serving /healthz and /metrics")?;
    tracing::info!(%addr, "serving /healthz and /metrics");
    let cfg = Config {
        cluster_cidr: args.cluster_cidr,
        node_monitor_grace_period: args.node_monitor_grace_period,
        pod_eviction_timeout: args.pod_eviction_timeout,
        ..Config::default()
    };
    let identity = args
        .leader_elect_identity
        .unwrap_or_else(controllers::util::default_identity);
    let lcfg = LeaderConfig {
        lease_duration: args.leader_elect_lease_duration,
        renew_deadline: args.leader_elect_renew_deadline,
        retry_period: args.leader_elect_retry_period,
        ..LeaderConfig::new("kube-controller-manager", &identity)
    };
    let work = async {
        if args.leader_elect {
            leader::acquire(&client, &lcfg).await;
            tokio::select! {
                _ = manager::run_controllers(client.clone(), cfg) => {}
                _ = leader::keep_renewing(&client, &lcfg) => {
                    anyhow::bail!("leaderelection lost");
                }
            }
        } else {
            manager::run_controllers(client.clone(), cfg).await;
        }
        Ok(())
    };
    tokio::select! {
        r = work => r,
        _ = controllers::util::shutdown_signal() => {
            tracing::info!("terminating");
            Ok(())
        }
    }
}
