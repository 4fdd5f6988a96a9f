//! mini-proxy: the kube-proxy (iptables mode) of mini-cluster, one per node.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ipnet::Ipv4Net;
use proxy::iptables::Exec;
use proxy::metrics::{Health, Metrics};
use proxy::rules::RuleConfig;
use proxy::syncer::{cleanup, Syncer};

/// Programs the node's iptables for Services (ClusterIP, NodePort, session affinity).
#[derive(Parser, Debug)]
#[command(name = "mini-proxy", version)]
struct Args {
    #[command(flatten)]
    common: daemon::CommonArgs,
    /// This node's name (endpoints with this nodeName are local); default: the hostname.
    #[arg(long)]
    node_name: Option<String>,
    /// The pod network; ClusterIP traffic from outside it is masqueraded ("" disables the
    /// check and masquerades all ClusterIP traffic).
    #[arg(long, default_value = "10.244.0.0/16")]
    cluster_cidr: String,
    /// The service network (routed through the node interface when it is not routable).
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: Ipv4Net,
    /// Address of the /healthz and /metrics endpoint: loopback unless told otherwise, as
    /// upstream's --metrics-bind-address.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: IpAddr,
    /// Port of the /healthz and /metrics endpoint (0 disables it).
    #[arg(long, default_value_t = 10249)]
    metrics_port: u16,
    /// Minimum interval between syncs; changes inside it are applied together.
    #[arg(long, default_value = "1s", value_parser = daemon::duration_arg)]
    min_sync_period: Duration,
    /// Maximum interval between syncs.
    #[arg(long, default_value = "30s", value_parser = daemon::duration_arg)]
    sync_period: Duration,
    /// Addresses NodePorts answer on (repeatable or comma-separated); default: every local
    /// address except loopback.
    #[arg(long, value_delimiter = ',')]
    node_ip: Vec<Ipv4Addr>,
    /// Do not add the service-network route.
    #[arg(long)]
    no_service_route: bool,
    /// Remove every chain, jump rule and the route of the proxy, then exit.
    #[arg(long)]
    cleanup: bool,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    daemon::init_tracing(args.common.verbosity);
    let exec = Exec::new();
    if args.cleanup {
        let mut iptables = exec.clone();
        let deleted = cleanup(&mut iptables).context("cleanup of iptables chains")?;
        let route = proxy::route::remove_service_route(&exec, args.service_cluster_ip_range)
            .context("cleanup of the service route")?;
        tracing::info!(chains = deleted.len(), route, "cleaned up");
        return Ok(());
    }
    let cluster_cidr = if args.cluster_cidr.is_empty() {
        None
    } else {
        Some(
            args.cluster_cidr
                .parse::<Ipv4Net>()
                .with_context(|| format!("--cluster-cidr {}", args.cluster_cidr))?,
        )
    };
    let node_name = args.node_name.clone().unwrap_or_else(hostname);
    if !args.no_service_route {
        match proxy::route::ensure_service_route(
            &exec,
            args.service_cluster_ip_range,
            &args.node_ip,
        ) {
            Ok(Some(dev)) => {
                tracing::info!(%dev, cidr = %args.service_cluster_ip_range, "service route added")
            }
            Ok(None) => tracing::debug!("service network already routable"),
            Err(e) => tracing::warn!(error = %e, "cannot add the service route"),
        }
    }
    let client = daemon::client_from(args.common.kubeconfig.as_deref()).await?;
    let metrics = Metrics::default();
    metrics.register();
    let health = Health::new(2 * args.sync_period);
    if args.metrics_port != 0 {
        let check = health.clone();
        let (addr, _) = daemon::serve::serve_with(
            SocketAddr::new(args.bind_address, args.metrics_port),
            Arc::new(move || check.check()),
            axum::Router::new(),
        )
        .await
        .context("serve /healthz and /metrics")?;
        tracing::info!(%addr, "serving /healthz and /metrics");
    }
    let config = RuleConfig {
        cluster_cidr,
        node_port_addresses: args.node_ip.clone(),
    };
    let syncer = Syncer::new(exec.clone(), exec, config);
    tracing::info!(%node_name, "mini-proxy starting");
    proxy::controller::run(
        client,
        node_name,
        syncer,
        proxy::controller::Periods {
            min_sync_period: args.min_sync_period,
            sync_period: args.sync_period,
        },
        metrics,
        health,
        daemon::shutdown_signal(),
    )
    .await;
    tracing::info!("mini-proxy stopped");
    Ok(())
}
