//! mini-scheduler: places unscheduled pods on nodes, behind a leader election.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use controllers::leader::{self, LeaderConfig};
use scheduler::scheduler::{Config, Scheduler};

#[derive(Parser, Debug)]
#[command(name = "mini-scheduler", about = "Schedules pods onto nodes")]
struct Args {
    /// Kubeconfig of the apiserver (default: in-cluster / $KUBECONFIG / ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
    /// Address of /healthz and /metrics.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: std::net::IpAddr,
    /// Port of /healthz and /metrics (0: any free port).
    #[arg(long, default_value_t = 10259)]
    secure_port: u16,
    /// Run only while holding the kube-system/kube-scheduler lease.
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
    let identity = args
        .leader_elect_identity
        .unwrap_or_else(controllers::util::default_identity);
    let lcfg = LeaderConfig {
        lease_duration: args.leader_elect_lease_duration,
        renew_deadline: args.leader_elect_renew_deadline,
        retry_period: args.leader_elect_retry_period,
        ..LeaderConfig::new("kube-scheduler", &identity)
    };
    let work = async {
        if args.leader_elect {
            leader::acquire(&client, &lcfg).await;
            let s = Scheduler::new(client.clone(), Config::default());
            tokio::select! {
                _ = s.run() => {}
                _ = leader::keep_renewing(&client, &lcfg) => anyhow::bail!("leaderelection lost"),
            }
        } else {
            Scheduler::new(client.clone(), Config::default())
                .run()
                .await;
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
