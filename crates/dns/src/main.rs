//! `mini-dns`: the cluster DNS daemon (the CoreDNS role). Watches Services and EndpointSlices,
//! answers the cluster domain on UDP and TCP, forwards the rest to the upstream resolvers.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Parser;

use dns::answer::Settings;
use dns::index::Index;
use dns::server::{Readiness, ServerConfig, Shared};

/// The service-account CA an in-cluster client trusts (present once the cluster has TLS).
const SERVICE_ACCOUNT_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// Command-line flags.
#[derive(Parser, Debug)]
#[command(name = "mini-dns", version, about = "Cluster DNS for mini-cluster")]
struct Args {
    #[command(flatten)]
    common: daemon::CommonArgs,
    /// Address to serve DNS on (UDP and TCP).
    #[arg(long, default_value = "0.0.0.0:53")]
    listen: SocketAddr,
    /// The cluster domain answered from the index.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// TTL of answers and of negative answers, in seconds.
    #[arg(long, default_value_t = 5)]
    ttl: u32,
    /// Upstream resolvers (IP or IP:PORT, comma separated or repeated; `none` for none).
    /// Default: the nameservers of /etc/resolv.conf that are not this server.
    #[arg(long, value_delimiter = ',')]
    upstream: Vec<String>,
    /// Time a forwarded query may take over all upstreams before SERVFAIL.
    #[arg(long, default_value = "2s", value_parser = daemon::duration_arg)]
    upstream_timeout: Duration,
    /// Address of /healthz, /ready and /metrics.
    #[arg(long, default_value = "127.0.0.1:9153")]
    metrics_address: SocketAddr,
}

/// The apiserver client: `--kubeconfig`; else, in a pod of this (plain HTTP) cluster, the
/// `kubernetes` Service from KUBERNETES_SERVICE_HOST/PORT; else kube's own inference
/// (in-cluster with a service-account CA, $KUBECONFIG, ~/.kube/config).
async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    if kubeconfig.is_none() && !Path::new(SERVICE_ACCOUNT_CA).exists() {
        if let (Ok(host), Ok(port)) = (
            std::env::var("KUBERNETES_SERVICE_HOST"),
            std::env::var("KUBERNETES_SERVICE_PORT"),
        ) {
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            let url = format!("http://{host}:{port}");
            tracing::info!(%url, "using the kubernetes service over plain HTTP");
            let mut config = kube::Config::new(url.parse().context("apiserver url")?);
            // Plain HTTP needs no roots; without this the TLS connector kube builds anyway
            // looks for the system's, which the image does not carry.
            config.root_cert = Some(Vec::new());
            return Ok(kube::Client::try_from(config)?);
        }
    }
    Ok(daemon::client_from(kubeconfig).await?)
}

fn upstreams(args: &Args) -> anyhow::Result<Vec<SocketAddr>> {
    if args.upstream.iter().any(|u| u == "none") {
        return Ok(Vec::new());
    }
    if !args.upstream.is_empty() {
        return args
            .upstream
            .iter()
            .map(|u| dns::upstream::parse_upstream(u).map_err(Into::into))
            .collect();
    }
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    Ok(dns::upstream::default_upstreams(&text, args.listen))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    daemon::init_tracing(args.common.verbosity);
    let settings = Settings::new(&args.cluster_domain, args.ttl)?;
    let config = ServerConfig {
        upstreams: upstreams(&args)?,
        upstream_timeout: args.upstream_timeout,
        ..ServerConfig::default()
    };
    tracing::info!(upstreams = ?config.upstreams, domain = %args.cluster_domain, "starting");
    let client = client(args.common.kubeconfig.as_deref()).await?;

    let index = Arc::new(RwLock::new(Index::new()));
    let readiness = Arc::new(Readiness::default());
    let _ = dns::metrics::metrics();
    let ready = readiness.clone();
    let extra = axum::Router::new().route(
        "/ready",
        get(move || {
            let ready = ready.clone();
            async move {
                if ready.is_ready() {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "index not synced yet")
                }
            }
        }),
    );
    let (metrics_addr, _metrics_task) =
        daemon::serve::serve_with(args.metrics_address, Arc::new(|| Ok(())), extra)
            .await
            .context("metrics endpoint")?;
    let shared = Shared::new(index.clone(), settings, config);
    let mut server = dns::server::serve(args.listen, shared).await?;
    tracing::info!(dns = %server.addr, metrics = %metrics_addr, "serving");

    let watches = tokio::spawn(dns::watch::run(client, index, readiness));
    tokio::select! {
        _ = daemon::shutdown_signal() => tracing::info!("terminating"),
        _ = server.wait() => anyhow::bail!("dns server stopped"),
    }
    watches.abort();
    Ok(())
}
