//! mini-kubelet: registers this node, runs the pods bound to it through `minirun` and the pod
//! network, reports their status, and serves the kubelet API (logs, exec) on port 10250.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use daemon::{duration_arg, CommonArgs};
use kubelet::cri::{ContainerRuntime, Minirun};
use kubelet::manager::{self, Informers, NetworkFactory, RouteSync};
use kubelet::netplugin::{BridgeNetwork, PodNetworkPlugin};
use kubelet::probe::ProbeStates;
use kubelet::volumes::SystemMounter;
use kubelet::worker::{KubeletConfig, Shared};

#[derive(Parser, Debug)]
#[command(name = "mini-kubelet", about = "The mini-cluster node agent")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Name of this node (default: the hostname).
    #[arg(long)]
    node_name: Option<String>,
    /// IP of this node, reported as its InternalIP and used for hostNetwork pods.
    #[arg(long)]
    node_ip: Ipv4Addr,
    /// State directory (pod volumes, logs, network state, runtime state).
    #[arg(long, default_value = "/var/lib/minicluster/kubelet")]
    root_dir: PathBuf,
    /// DNS server(s) of ClusterFirst pods (comma-separated).
    #[arg(long, default_value = "10.96.0.10", value_delimiter = ',')]
    cluster_dns: Vec<String>,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// Resolver configuration that dnsPolicy Default pods (and ClusterFirst search domains)
    /// start from; "" gives them an empty one (for nodes without a route out).
    #[arg(long, default_value = "/etc/resolv.conf")]
    resolv_conf: String,
    /// Image tarballs (*.tar) loaded into the runtime at start.
    #[arg(long)]
    image_dir: Option<PathBuf>,
    /// The cluster's pod network (traffic leaving it is masqueraded).
    #[arg(long, default_value = "10.244.0.0/16")]
    cluster_cidr: ipnet::Ipv4Net,
    /// Port of the kubelet API.
    #[arg(long, default_value_t = 10250)]
    port: u16,
    /// Address the kubelet API listens on (default: the node IP).
    #[arg(long)]
    address: Option<std::net::IpAddr>,
    /// The kubelet API's serving certificate (PEM); without it (and its key) the kubelet makes
    /// a self-signed one in <root-dir>/pki, as upstream's kubelet does.
    #[arg(long, requires = "tls_private_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// The serving certificate's key (PEM).
    #[arg(long, requires = "tls_cert_file")]
    tls_private_key_file: Option<PathBuf>,
    /// Callers presenting a certificate signed by this CA are its CN (the apiserver's
    /// kubelet-client certificate); default: the CA of --kubeconfig.
    #[arg(long)]
    client_ca_file: Option<PathBuf>,
    /// Requests without credentials are system:anonymous (then authorized like anyone);
    /// false makes them 401.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    anonymous_auth: bool,
    /// Bearer tokens are checked with the apiserver (TokenReview).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    authentication_token_webhook: bool,
    /// Webhook asks the apiserver (SubjectAccessReview on nodes/proxy, nodes/log, ...);
    /// AlwaysAllow lets every authenticated caller in.
    #[arg(long, value_enum, default_value = "webhook")]
    authorization_mode: kubelet::auth::AuthzMode,
    /// Kubeconfig of the identity the host-gw routes read every Node with (the Node
    /// authorizer lets a kubelet read only its own Node, so this is the network plugin's
    /// identity, as flannel has its own); default: --kubeconfig.
    #[arg(long)]
    routes_kubeconfig: Option<PathBuf>,
    /// Serve the kubelet API as plain, unauthenticated HTTP (tests of a cluster without TLS).
    #[arg(long)]
    insecure_plain_http: bool,
    /// Port of /healthz and /metrics (0: any free port).
    #[arg(long, default_value_t = 10248)]
    healthz_port: u16,
    /// The runtime helper (default: `minirun` next to this binary, else on PATH).
    #[arg(long)]
    runtime_path: Option<PathBuf>,
    /// The runtime's state root (default: <root-dir>/runtime).
    #[arg(long)]
    runtime_root: Option<PathBuf>,
    /// cgroup subtree of this node's pods (default: minicluster-<node-name>).
    #[arg(long)]
    cgroup_root: Option<String>,
    /// Name of the pod bridge.
    #[arg(long, default_value = "mcbr0")]
    bridge: String,
    /// The sandbox image.
    #[arg(long, default_value = "pause:latest")]
    pause_image: String,
    /// Maximum number of pods.
    #[arg(long, default_value_t = 110)]
    max_pods: u32,
    /// Resources kept for Kubernetes' own daemons (`cpu=100m,memory=256Mi`): they come off
    /// the node's allocatable, which caps the kubepods cgroup and pod admission.
    #[arg(long, default_value = "", value_parser = kubelet::admission::parse_reserved)]
    kube_reserved: BTreeMap<String, String>,
    /// Resources kept for the operating system, as --kube-reserved.
    #[arg(long, default_value = "", value_parser = kubelet::admission::parse_reserved)]
    system_reserved: BTreeMap<String, String>,
    /// Full resync period of every pod (ConfigMap/Secret volumes are refreshed this often).
    #[arg(long, default_value = "10s", value_parser = duration_arg)]
    sync_frequency: Duration,
}

fn default_runtime_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("minirun")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("minirun"))
}

/// TLS and the guard of the kubelet API.
fn api_security(
    args: &Args,
    node_name: &str,
    cluster_ca: Option<&[Vec<u8>]>,
    client: kube::Client,
) -> anyhow::Result<kubelet::server::Serving> {
    let serving = match (&args.tls_cert_file, &args.tls_private_key_file) {
        (Some(c), Some(k)) => pki::KeyCert {
            cert_pem: std::fs::read_to_string(c)
                .with_context(|| format!("reading {}", c.display()))?,
            key_pem: std::fs::read_to_string(k)
                .with_context(|| format!("reading {}", k.display()))?,
        },
        _ => pki::self_signed_serving(
            &args.root_dir.join("pki"),
            node_name,
            &[std::net::IpAddr::V4(args.node_ip)],
        )
        .context("the kubelet's self-signed serving certificate")?,
    };
    let client_ca = match (&args.client_ca_file, cluster_ca) {
        (Some(p), _) => Some(daemon::tls::ClientCa::from_pem(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?),
        (None, Some(ders)) => Some(daemon::tls::ClientCa::from_der(ders)?),
        (None, None) => None,
    };
    let tls = daemon::tls::server_config(&serving.cert_pem, &serving.key_pem, client_ca.as_ref())?;
    let auth = kubelet::auth::KubeletAuth::new(
        node_name,
        client_ca,
        args.anonymous_auth,
        args.authentication_token_webhook,
        args.authorization_mode,
        client,
    );
    Ok(kubelet::server::Serving {
        tls: Some(tls),
        auth: Some(Arc::new(auth)),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // State files are private; what containers read (volumes, pod files) gets its mode
    // explicitly.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let args = Args::parse();
    daemon::init_tracing(args.common.verbosity);
    let node_name = args.node_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .to_string()
    });
    anyhow::ensure!(
        !node_name.is_empty(),
        "--node-name is empty and the hostname is unknown"
    );
    // The kubelet's state (pod volumes, secrets, logs, network state) is root's alone.
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(&args.root_dir)
        .and_then(|()| {
            std::fs::set_permissions(&args.root_dir, std::fs::Permissions::from_mode(0o700))
        })
        .with_context(|| format!("creating {}", args.root_dir.display()))?;
    let client_config = daemon::config_from(args.common.kubeconfig.as_deref())
        .await
        .context("reading the kubeconfig")?;
    let cluster_ca = client_config.root_cert.clone();
    let client = kube::Client::try_from(client_config).context("building the apiserver client")?;
    let runtime_root = args
        .runtime_root
        .clone()
        .unwrap_or_else(|| args.root_dir.join("runtime"));
    let cgroup_root = args
        .cgroup_root
        .clone()
        .unwrap_or_else(|| format!("minicluster-{node_name}"));
    let runtime_bin = args
        .runtime_path
        .clone()
        .unwrap_or_else(default_runtime_path);
    let runtime: Arc<dyn ContainerRuntime> =
        Arc::new(Minirun::new(&runtime_bin, &runtime_root, &cgroup_root));
    if let Some(dir) = &args.image_dir {
        let mut tars: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading --image-dir {}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "tar"))
            .collect();
        tars.sort();
        if !tars.is_empty() {
            runtime
                .load(&tars)
                .await
                .with_context(|| format!("loading images from {}", dir.display()))?;
            tracing::info!(count = tars.len(), dir = %dir.display(), "loaded images");
        }
    }
    let mut machine = kubelet::node::machine(
        &node_name,
        args.node_ip,
        args.port,
        &args.root_dir,
        args.max_pods,
    );
    machine.allocatable = kubelet::admission::allocatable(
        &machine.capacity,
        &[&args.kube_reserved, &args.system_reserved],
    );
    let routes_client = match &args.routes_kubeconfig {
        Some(p) => daemon::client_from(Some(p))
            .await
            .with_context(|| format!("reading {}", p.display()))?,
        None => client.clone(),
    };
    let informers = Informers::start(&client, &routes_client);
    let (net_tx, net_rx) = tokio::sync::watch::channel::<Option<Arc<dyn PodNetworkPlugin>>>(None);
    let cfg = KubeletConfig {
        node_name: node_name.clone(),
        node_ip: args.node_ip,
        root_dir: args.root_dir.clone(),
        cluster_dns: args
            .cluster_dns
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect(),
        cluster_domain: args.cluster_domain.clone(),
        resolv_conf: (!args.resolv_conf.is_empty()).then(|| PathBuf::from(&args.resolv_conf)),
        runtime_root,
        sync_period: args.sync_frequency,
        pause_image: args.pause_image.clone(),
        allocatable: machine.allocatable.clone(),
        cgroup_root: cgroup_root.clone(),
    };
    kubelet::resources::enforce_allocatable(&cgroup_root, &machine.allocatable)
        .context("creating the kubepods cgroup tree")?;
    let shared = Arc::new(Shared {
        cfg,
        client: client.clone(),
        runtime: runtime.clone(),
        network: net_rx,
        probes: Arc::new(ProbeStates::default()),
        services: informers.services.clone(),
        objects: Arc::new(kubelet::objects::ObjectCache::new(client.clone())),
        tokens: Arc::new(kubelet::tokens::TokenManager::new(client.clone())),
        mounter: Arc::new(SystemMounter),
        recorder: daemon::events::Recorder::new(client.clone(), "kubelet").with_host(&node_name),
    });
    let table = manager::PodTable::default();
    let api_addr = SocketAddr::new(
        args.address.unwrap_or(std::net::IpAddr::V4(args.node_ip)),
        args.port,
    );
    let serving = if args.insecure_plain_http {
        kubelet::server::Serving::default()
    } else {
        api_security(&args, &node_name, cluster_ca.as_deref(), client.clone())?
    };
    let (addr, _api) = kubelet::server::serve(
        api_addr,
        kubelet::server::ApiState {
            pods: table.clone(),
            runtime: runtime.clone(),
        },
        serving,
    )
    .await
    .with_context(|| format!("serving the kubelet API on {api_addr}"))?;
    tracing::info!(%addr, "kubelet API listening");
    let (haddr, _h) = daemon::serve::serve(SocketAddr::new(
        std::net::IpAddr::V4(Ipv4Addr::LOCALHOST),
        args.healthz_port,
    ))
    .await
    .context("serving /healthz and /metrics")?;
    tracing::info!(addr = %haddr, "serving /healthz and /metrics");
    let (bridge, cluster_cidr, node_ip) = (args.bridge.clone(), args.cluster_cidr, args.node_ip);
    let state_dir = args.root_dir.join("network");
    let factory: NetworkFactory = Box::new(move |pod_cidr| {
        let cfg = network::NetworkConfig {
            bridge: bridge.clone(),
            pod_cidr,
            cluster_cidr,
            node_ip,
            state_dir: state_dir.clone(),
        };
        Box::pin(async move {
            let net = Arc::new(BridgeNetwork::start(cfg).await.map_err(|e| e.to_string())?);
            let plugin: Arc<dyn PodNetworkPlugin> = net.clone();
            let routes: Arc<dyn RouteSync> = net;
            Ok((plugin, routes))
        })
    });
    let node_loop = manager::run_node(
        client.clone(),
        machine,
        informers.nodes.clone(),
        net_tx,
        factory,
        args.root_dir.clone(),
    );
    tokio::select! {
        _ = node_loop => anyhow::bail!("node loop ended"),
        _ = manager::run_pods(shared, table) => anyhow::bail!("pod watch ended"),
        _ = daemon::shutdown_signal() => {
            // Containers keep running: a restarted kubelet adopts them.
            tracing::info!("terminating; pods keep running");
            Ok(())
        }
    }
}
