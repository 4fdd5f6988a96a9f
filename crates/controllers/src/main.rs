//! mini-controller-manager: every controller in one process, behind a leader election.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use controllers::manager::{self, Config};
use daemon::{duration_arg, CommonArgs, LeaderArgs};

#[derive(Parser, Debug)]
#[command(
    name = "mini-controller-manager",
    about = "Runs the mini-cluster controllers"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    leader: LeaderArgs,
    /// CIDR the nodes' pod CIDRs (/24 each) are allocated from.
    #[arg(long, default_value = "10.244.0.0/16")]
    cluster_cidr: ipnet::Ipv4Net,
    /// A node whose lease is older than this is marked Unknown.
    #[arg(long, default_value = "40s", value_parser = duration_arg)]
    node_monitor_grace_period: Duration,
    /// Default toleration of pods for unreachable/not-ready nodes.
    #[arg(long, default_value = "5m", value_parser = duration_arg)]
    pod_eviction_timeout: Duration,
    /// Address of /healthz and /metrics.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: std::net::IpAddr,
    /// Port of /healthz and /metrics (0: any free port).
    #[arg(long, default_value_t = 10257)]
    secure_port: u16,
    /// The cluster CA (PEM) published in every namespace as the ConfigMap kube-root-ca.crt
    /// (default: the CA of --kubeconfig).
    #[arg(long)]
    root_ca_file: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    daemon::init_tracing(args.common.verbosity);
    let client_config = daemon::config_from(args.common.kubeconfig.as_deref())
        .await
        .context("reading the kubeconfig")?;
    let root_ca = match &args.root_ca_file {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => client_config
            .root_cert
            .as_ref()
            .map(|ders| pki::der_to_pem(ders)),
    };
    let client = kube::Client::try_from(client_config).context("building the apiserver client")?;
    let (addr, _srv) = daemon::serve::serve(SocketAddr::new(args.bind_address, args.secure_port))
        .await
        .context("serving /healthz and /metrics")?;
    tracing::info!(%addr, "serving /healthz and /metrics");
    let cfg = Config {
        cluster_cidr: args.cluster_cidr,
        node_monitor_grace_period: args.node_monitor_grace_period,
        pod_eviction_timeout: args.pod_eviction_timeout,
        root_ca,
        ..Config::default()
    };
    daemon::run_elected(
        &client,
        &args.leader,
        "kube-controller-manager",
        manager::run_controllers(client.clone(), cfg),
    )
    .await
    .map_err(anyhow::Error::msg)
}
