//! mini-apiserver: serves the Kubernetes REST API over the embedded store or etcd.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use apiserver::{ApiServer, Config};
use clap::Parser;
use store::Store;

/// The Kubernetes API server of mini-cluster.
#[derive(Debug, Parser)]
#[command(name = "mini-apiserver", version, about)]
struct Flags {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Store: `embedded:PATH` (a durable SQLite file). Ignored when --etcd-servers is given.
    #[arg(
        long,
        default_value = "embedded:/var/lib/minicluster/apiserver/state.db"
    )]
    store: String,
    /// etcd endpoints (comma separated URLs); when set, etcd is the store.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// Key prefix in etcd.
    #[arg(long, default_value = "/minicluster")]
    etcd_prefix: String,
    /// The range ClusterIPs are allocated from.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: ipnet::Ipv4Net,
    /// The range NodePorts are allocated from (`LOW-HIGH`).
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: String,
    /// The IP published in the `kubernetes` Endpoints (defaults to the listen address).
    #[arg(long)]
    advertise_address: Option<IpAddr>,
    /// Write an admin kubeconfig pointing at this server to this path.
    #[arg(long)]
    write_kubeconfig: Option<PathBuf>,
    /// Seconds between BOOKMARK events on watches that allow them.
    #[arg(long, default_value_t = 60)]
    bookmark_interval_seconds: u64,
    /// Seconds between compactions of old store revisions.
    #[arg(long, default_value_t = 300)]
    compaction_interval_seconds: u64,
    /// tolerationSeconds of the node.kubernetes.io/not-ready:NoExecute toleration added to every
    /// pod that has none (the DefaultTolerationSeconds admission plugin).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(i64).range(0..))]
    default_not_ready_toleration_seconds: i64,
    /// tolerationSeconds of the node.kubernetes.io/unreachable:NoExecute toleration added to
    /// every pod that has none.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(i64).range(0..))]
    default_unreachable_toleration_seconds: i64,
    /// Network namespace (a path such as /run/netns/NAME) the nodes live in: kubelets are
    /// dialed from inside it, for a local cluster whose nodes are network namespaces.
    #[arg(long)]
    kubelet_netns: Option<PathBuf>,
    /// A second address to serve on, bound inside --kubelet-netns (where the nodes reach the
    /// apiserver); the same port as --listen is fine, the namespaces differ.
    #[arg(long, requires = "kubelet_netns")]
    node_listen: Option<SocketAddr>,
    /// Log verbosity as the Kubernetes components: 0-1 info, 2-4 debug (every request), 5+ trace.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    verbosity: u8,
}

fn parse_port_range(s: &str) -> anyhow::Result<(u16, u16)> {
    let (lo, hi) = s
        .split_once('-')
        .with_context(|| format!("invalid --service-node-port-range {s:?}: want LOW-HIGH"))?;
    let lo: u16 = lo
        .trim()
        .parse()
        .with_context(|| format!("invalid port {lo:?}"))?;
    let hi: u16 = hi
        .trim()
        .parse()
        .with_context(|| format!("invalid port {hi:?}"))?;
    if lo == 0 || lo > hi {
        bail!("invalid --service-node-port-range {s:?}: low must be at least 1 and not above high");
    }
    Ok((lo, hi))
}

fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 | 1 => "info",
        2..=4 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

async fn open_store(flags: &Flags) -> anyhow::Result<Arc<dyn Store>> {
    if !flags.etcd_servers.is_empty() {
        let s =
            store::etcd::EtcdStore::connect(&flags.etcd_servers, Some(flags.etcd_prefix.clone()))
                .await
                .with_context(|| {
                    format!("connecting to etcd at {}", flags.etcd_servers.join(","))
                })?;
        return Ok(Arc::new(s));
    }
    let Some(path) = flags.store.strip_prefix("embedded:") else {
        bail!(
            "invalid --store {:?}: want embedded:PATH (or use --etcd-servers)",
            flags.store
        );
    };
    let path = PathBuf::from(path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let s = store::embedded::EmbeddedStore::open(&path)
        .with_context(|| format!("opening the embedded store at {}", path.display()))?;
    Ok(Arc::new(s))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Binds `addr` inside the network namespace at `netns` (on a short-lived thread that entered
/// it; the socket keeps that namespace).
fn bind_in_netns(addr: SocketAddr, netns: PathBuf) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = std::thread::spawn(move || -> anyhow::Result<std::net::TcpListener> {
        let f = std::fs::File::open(&netns)?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let l = std::net::TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        Ok(l)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("bind thread panicked"))??;
    Ok(tokio::net::TcpListener::from_std(listener)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The store file, its journal and the kubeconfig it writes are private.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let flags = Flags::parse();
    init_logging(flags.verbosity);
    let ports = parse_port_range(&flags.service_node_port_range)?;
    let store = open_store(&flags).await?;
    let advertise = SocketAddr::new(
        flags.advertise_address.unwrap_or(flags.listen.ip()),
        flags.listen.port(),
    );
    let config = Config {
        advertise,
        service_cluster_ip_range: flags.service_cluster_ip_range,
        service_node_port_range: ports,
        bookmark_interval: Duration::from_secs(flags.bookmark_interval_seconds.max(1)),
        compaction_interval: Duration::from_secs(flags.compaction_interval_seconds.max(1)),
        kubelet_netns: flags.kubelet_netns.clone(),
        default_not_ready_toleration_seconds: flags.default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds: flags.default_unreachable_toleration_seconds,
    };
    let listener = tokio::net::TcpListener::bind(flags.listen)
        .await
        .with_context(|| format!("listening on {}", flags.listen))?;
    let srv = ApiServer::start(store, config).await?;
    if let Some(path) = &flags.write_kubeconfig {
        let url = format!("http://{}", listener.local_addr()?);
        apiserver::kubeconfig::write(path, &url, "minicluster")
            .with_context(|| format!("writing kubeconfig {}", path.display()))?;
    }
    tracing::info!(listen = %listener.local_addr()?, "mini-apiserver serving");
    let router = srv.router();
    if let (Some(addr), Some(netns)) = (flags.node_listen, flags.kubelet_netns.clone()) {
        let node_listener = bind_in_netns(addr, netns.clone())
            .with_context(|| format!("listening on {addr} in {}", netns.display()))?;
        tracing::info!(listen = %addr, netns = %netns.display(), "serving the nodes too");
        let r = router.clone();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(node_listener, r).await {
                tracing::error!(error = %e, "node listener stopped");
            }
        });
    }
    let server = axum::serve(listener, router).with_graceful_shutdown(shutdown_signal());
    // Open watches would hold a graceful shutdown forever: give them a moment, then exit.
    tokio::select! {
        r = server => r.context("serving")?,
        _ = async { shutdown_signal().await; tokio::time::sleep(Duration::from_secs(3)).await } => {}
    }
    tracing::info!("mini-apiserver stopped");
    Ok(())
}
