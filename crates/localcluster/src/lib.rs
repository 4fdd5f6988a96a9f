//! The local-cluster launcher (`cluster up / down / status`): a whole mini-cluster on this
//! machine, the kind model with network namespaces instead of containers. The control plane
//! (mini-apiserver on the embedded store or a local etcd, controller-manager, scheduler) runs in
//! the host namespace on 127.0.0.1; every node is a network namespace on a persistent lab bridge
//! (`network::lab`) running mini-kubelet and mini-proxy; the DNS add-on is deployed and checked.
//! Every process is detached and recorded in a state file, so `down` works after the launcher
//! or a component crashed. minictl embeds [`ClusterCommand`] and [`run`]. See
//! docs/localcluster.md.

pub mod addons;
pub mod credentials;
pub mod down;
pub mod kubeconfig;
pub mod prereq;
pub mod process;
pub mod state;
pub mod status;
pub mod up;

use std::path::PathBuf;

/// The cluster's datastore.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The apiserver's durable embedded file store.
    Embedded,
    /// A local etcd started by the launcher.
    Etcd,
}

/// `cluster up | down | status`.
#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Start a local multi-node cluster and wait until every node is Ready and DNS answers.
    Up {
        /// Number of worker nodes.
        #[arg(long, default_value_t = 2)]
        nodes: usize,
        /// Datastore: the apiserver's embedded store or a local etcd.
        #[arg(long, value_enum, default_value = "embedded")]
        store: StoreKind,
        /// Cluster name (several clusters with different names can coexist).
        #[arg(long, default_value = state::DEFAULT_NAME)]
        name: String,
        /// Write the kubeconfig entries here instead of $KUBECONFIG or ~/.kube/config.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Directory of image tarballs preloaded on every node (scripts/build-images.sh --out).
        #[arg(long, env = "MINICLUSTER_IMAGES")]
        images: Option<PathBuf>,
        /// Directory holding the component binaries (default: next to this executable).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Seconds to wait for nodes Ready and DNS before giving up (and cleaning up).
        #[arg(long, default_value_t = 180)]
        wait_timeout: u64,
        /// Do not deploy the DNS add-on nor wait for DNS.
        #[arg(long)]
        skip_dns: bool,
        /// The controller-manager's --node-monitor-grace-period: how long a node may stay silent
        /// before it is marked NotReady (Ready=Unknown) and tainted unreachable.
        #[arg(long, default_value = "40s", value_parser = daemon::duration_arg)]
        node_monitor_grace_period: std::time::Duration,
        /// The apiserver's --default-not-ready-toleration-seconds: how long pods (without their
        /// own toleration) stay on a node that reports NotReady before they are evicted.
        #[arg(long, default_value_t = 300)]
        default_not_ready_toleration_seconds: u32,
        /// The apiserver's --default-unreachable-toleration-seconds: how long pods (without their
        /// own toleration) stay on a node that stopped reporting before they are evicted.
        #[arg(long, default_value_t = 300)]
        default_unreachable_toleration_seconds: u32,
    },
    /// Stop every process of a cluster and remove everything it made.
    Down {
        /// Cluster name.
        #[arg(long, default_value = state::DEFAULT_NAME)]
        name: String,
    },
    /// Show every component (pid, alive or crashed, log) and the nodes' Ready condition.
    Status {
        /// Cluster name.
        #[arg(long, default_value = state::DEFAULT_NAME)]
        name: String,
    },
}

/// Runs one `cluster` command.
pub async fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Up {
            nodes,
            store,
            name,
            kubeconfig,
            images,
            bin_dir,
            wait_timeout,
            skip_dns,
            node_monitor_grace_period,
            default_not_ready_toleration_seconds,
            default_unreachable_toleration_seconds,
        } => {
            let options = up::UpOptions {
                name,
                nodes,
                store,
                kubeconfig,
                images,
                bin_dir,
                wait_timeout: std::time::Duration::from_secs(wait_timeout),
                skip_dns,
                node_monitor_grace_period,
                default_not_ready_toleration_seconds,
                default_unreachable_toleration_seconds,
            };
            let summary = up::up(&options).await?;
            print!("{summary}");
            Ok(())
        }
        ClusterCommand::Down { name } => {
            let report = down::down(&name)?;
            print!("{report}");
            Ok(())
        }
        ClusterCommand::Status { name } => {
            let report = status::status(&name).await?;
            print!("{report}");
            Ok(())
        }
    }
}
