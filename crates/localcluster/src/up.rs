//! `cluster up`: checks prerequisites, makes the state directory and the persistent lab, starts
//! etcd (optional), the apiserver, controller-manager and scheduler in the host namespace and a
//! kubelet and a proxy inside every node's namespace, deploys the DNS add-on, waits (bounded)
//! until every node is Ready and DNS answers, and writes the kubeconfig. Any failure, including a
//! component dying meanwhile, is reported with that component's log tail and cleaned up.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::Client;
use network::lab::{Lab, NetNs, LAB_BRIDGE_IP};

use crate::addons;
use crate::credentials::{self, Credentials};
use crate::kubeconfig;
use crate::prereq;
use crate::process::{self, spawn_detached};
use crate::state::{self, ClusterState, Component, KubeconfigEntry, NodeState};
use crate::StoreKind;

/// The pod network of the cluster (one /24 per node, assigned by the controller-manager).
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
/// The default image directory when neither --images nor MINICLUSTER_IMAGES is given.
pub const DEFAULT_IMAGES: &str = "/var/lib/minicluster/images";

/// What `cluster up` was asked for.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub name: String,
    pub nodes: usize,
    pub store: StoreKind,
    pub kubeconfig: Option<PathBuf>,
    pub images: Option<PathBuf>,
    pub bin_dir: Option<PathBuf>,
    pub wait_timeout: Duration,
    pub skip_dns: bool,
    /// Passed to the controller-manager.
    pub node_monitor_grace_period: Duration,
    /// Passed to the apiserver.
    pub default_not_ready_toleration_seconds: u32,
    /// Passed to the apiserver.
    pub default_unreachable_toleration_seconds: u32,
}

/// Errors that stop `cluster up` before anything is made.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("cluster {name} exists ({evidence}); run `cluster down --name {name}` first or pick another --name")]
    Exists { name: String, evidence: String },
    #[error("--nodes must be between 1 and 50, got {0}")]
    NodeCount(usize),
}

/// A started process and its record.
struct Started {
    child: Child,
    component: Component,
}

/// Starts the cluster; on success returns the text telling the user how to use it.
pub async fn up(options: &UpOptions) -> anyhow::Result<String> {
    state::validate_name(&options.name)?;
    if options.nodes == 0 || options.nodes > 50 {
        return Err(UpError::NodeCount(options.nodes).into());
    }
    let bin_dir = match &options.bin_dir {
        Some(dir) => dir.clone(),
        None => process::exe_dir()?,
    };
    let images = options
        .images
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_IMAGES));
    prereq::check_all(options.store, &bin_dir, &images, !options.skip_dns)?;
    let dir = state::cluster_dir(&options.name);
    let prefix = state::lab_prefix(&options.name);
    if dir.exists() {
        return Err(UpError::Exists {
            name: options.name.clone(),
            evidence: format!("state directory {}", dir.display()),
        }
        .into());
    }
    if NetNs::exists(&format!("{prefix}-br")) {
        return Err(UpError::Exists {
            name: options.name.clone(),
            evidence: format!("network namespace {prefix}-br"),
        }
        .into());
    }
    // The state dir (kubeconfigs, logs, the store, node roots) is private, and so is what the
    // components started from here create.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("create {}", dir.display()))?;
    let mut launch = Launch {
        state: ClusterState::new(&options.name, bin_dir, options.store),
        children: Vec::new(),
        images,
    };
    launch.state.save()?;
    let started = Instant::now();
    match launch.start(options).await {
        Ok(mut summary) => {
            let _ = writeln!(
                summary,
                "cluster {} is up ({} nodes Ready{}) in {:.1}s",
                options.name,
                options.nodes,
                if options.skip_dns {
                    ""
                } else {
                    ", DNS answering"
                },
                started.elapsed().as_secs_f64()
            );
            Ok(summary)
        }
        Err(err) => {
            let logs = launch.state.state_dir.join("logs");
            drop(launch);
            let kept = keep_failed_logs(&logs, &options.name);
            let cleanup = crate::down::down(&options.name)
                .map(|_| String::new())
                .unwrap_or_else(|e| format!("\n(cleanup failed too: {e:#})"));
            Err(err.context(format!(
                "cluster up {} failed and was cleaned up{kept}{cleanup}",
                options.name
            )))
        }
    }
}

/// Moves the components' logs of a failed start out of the state directory `down` removes, to
/// `<logs>/../../failed-<name>/` (a previous failure's logs are replaced); says where they went.
fn keep_failed_logs(logs: &std::path::Path, name: &str) -> String {
    let Some(base) = logs.parent().and_then(|d| d.parent()) else {
        return String::new();
    };
    let kept = base.join(format!("failed-{name}"));
    let _ = std::fs::remove_dir_all(&kept);
    match std::fs::rename(logs, &kept) {
        Ok(()) => format!(" (the components' logs are kept in {})", kept.display()),
        Err(_) => String::new(),
    }
}

struct Launch {
    state: ClusterState,
    children: Vec<Started>,
    images: PathBuf,
}

impl Launch {
    async fn start(&mut self, options: &UpOptions) -> anyhow::Result<String> {
        let name = options.name.clone();
        let mut lab = Lab::create_named(&self.state.lab_prefix, options.nodes)
            .with_context(|| format!("create the lab {}", self.state.lab_prefix))?;
        lab.persist();
        for (i, lab_node) in lab.nodes().iter().enumerate() {
            let node_name = state::node_name(&name, i);
            self.state.nodes.push(NodeState {
                root: self.state.state_dir.join("nodes").join(&node_name),
                cgroup_root: format!("minicluster-{node_name}"),
                name: node_name,
                ip: lab_node.ip,
                netns: lab_node.ns.name().to_string(),
            });
        }
        let bridge_ns = lab.bridge_ns().path();
        drop(lab);
        self.state.save()?;

        let store_arg = match options.store {
            StoreKind::Embedded => vec![
                "--store".to_string(),
                format!(
                    "embedded:{}",
                    self.state.state_dir.join("store.db").display()
                ),
            ],
            StoreKind::Etcd => {
                let (url, port) = self.start_etcd()?;
                self.wait_until(Duration::from_secs(30), "etcd to listen", || {
                    TcpStream::connect(("127.0.0.1", port)).is_ok()
                })
                .await?;
                let pki = self.state.state_dir.join("pki");
                vec![
                    "--etcd-servers".to_string(),
                    url,
                    format!("--etcd-cafile={}", pki.join(pki::ETCD_CA_CERT).display()),
                    format!(
                        "--etcd-certfile={}",
                        pki.join(pki::APISERVER_ETCD_CLIENT_CERT).display()
                    ),
                    format!(
                        "--etcd-keyfile={}",
                        pki.join(pki::APISERVER_ETCD_CLIENT_KEY).display()
                    ),
                ]
            }
        };

        let port = if port_is_free(6443) {
            6443
        } else {
            free_port()?
        };
        self.state.apiserver_port = Some(port);
        let mut api = Command::new(self.state.bin_dir.join("mini-apiserver"));
        // TLS, every client authenticated, Node and RBAC authorization: the apiserver makes
        // the cluster PKI in the state directory, and each component gets its own identity.
        let pki_dir = self.state.state_dir.join("pki");
        api.arg("--cert-dir")
            .arg(&pki_dir)
            .arg("--kubelet-certificate-authority")
            .arg(pki_dir.join("ca.crt"))
            // As kubeadm: kubelets may write only their own Node and their pods.
            .args(["--enable-admission-plugins", "NodeRestriction"]);
        api.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(&store_arg)
            .arg("--kubelet-netns")
            .arg(&bridge_ns)
            .arg("--node-listen")
            .arg(format!("{LAB_BRIDGE_IP}:{port}"))
            .arg("--advertise-address")
            .arg(LAB_BRIDGE_IP.to_string())
            .arg("--write-kubeconfig")
            .arg(&self.state.admin_kubeconfig)
            .arg(format!(
                "--default-not-ready-toleration-seconds={}",
                options.default_not_ready_toleration_seconds
            ))
            .arg(format!(
                "--default-unreachable-toleration-seconds={}",
                options.default_unreachable_toleration_seconds
            ));
        self.spawn("apiserver", "mini-apiserver", api, None)?;
        let admin = self.state.admin_kubeconfig.clone();
        self.wait_until(
            Duration::from_secs(60),
            "the apiserver's kubeconfig",
            || admin.exists() && TcpStream::connect(("127.0.0.1", port)).is_ok(),
        )
        .await?;
        let creds = Credentials::open(&pki_dir, port)?;
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let bridge = IpAddr::V4(LAB_BRIDGE_IP);
        // The proxies' identity (system:kube-proxy), reached from the nodes.
        creds.component(pki::Component::Proxy, bridge, &self.state.node_kubeconfig)?;
        let client = admin_client(&admin).await?;
        let mut rbac = credentials::controller_manager_bindings();
        rbac.extend(credentials::host_gateway_rbac());
        addons::apply_objects(&client, rbac)
            .await
            .context("bind the controller-manager and the host-gw routes to their roles")?;
        let routes_kubeconfig = self.state.state_dir.join("host-gw.kubeconfig");
        creds.component(pki::Component::HostGateway, bridge, &routes_kubeconfig)?;

        for (component, program, identity) in [
            (
                "controller-manager",
                "mini-controller-manager",
                pki::Component::ControllerManager,
            ),
            ("scheduler", "mini-scheduler", pki::Component::Scheduler),
        ] {
            let kubeconfig = self.state.state_dir.join(format!("{component}.kubeconfig"));
            creds.component(identity, loopback, &kubeconfig)?;
            let mut cmd = Command::new(self.state.bin_dir.join(program));
            cmd.arg("--kubeconfig").arg(&kubeconfig).args([
                "--leader-elect=false",
                "--secure-port",
                "0",
            ]);
            if component == "controller-manager" {
                cmd.args(["--cluster-cidr", CLUSTER_CIDR])
                    .arg("--node-monitor-grace-period")
                    .arg(format!(
                        "{}ms",
                        options.node_monitor_grace_period.as_millis()
                    ));
            }
            self.spawn(component, program, cmd, None)?;
        }

        for node in self.state.nodes.clone() {
            std::fs::create_dir_all(&node.root)
                .with_context(|| format!("create {}", node.root.display()))?;
            let netns_path = PathBuf::from("/run/netns").join(&node.netns);
            let files = creds.node(
                &node.name,
                IpAddr::V4(node.ip),
                bridge,
                &self.state.state_dir.join("pki-nodes").join(&node.name),
            )?;
            let mut kubelet = nsenter(&netns_path, &self.state.bin_dir.join("mini-kubelet"));
            kubelet
                .arg("--kubeconfig")
                .arg(&files.kubeconfig)
                .arg("--routes-kubeconfig")
                .arg(&routes_kubeconfig)
                .arg("--tls-cert-file")
                .arg(&files.serving_cert)
                .arg("--tls-private-key-file")
                .arg(&files.serving_key)
                .arg("--node-name")
                .arg(&node.name)
                .arg("--node-ip")
                .arg(node.ip.to_string())
                .arg("--root-dir")
                .arg(&node.root)
                .arg("--image-dir")
                .arg(&self.images)
                .arg("--runtime-path")
                .arg(self.state.bin_dir.join("minirun"))
                // The node has no route out: pods with dnsPolicy Default (the DNS add-on) get
                // no upstream resolvers, so names outside the cluster are refused at once.
                .arg("--resolv-conf=")
                .args(["--healthz-port", "0", "--cluster-dns"])
                .arg(addons::DNS_SERVICE_IP.to_string());
            self.spawn(
                &format!("kubelet-{}", node.name),
                "mini-kubelet",
                kubelet,
                Some(node.netns.clone()),
            )?;
            let mut proxy = nsenter(&netns_path, &self.state.bin_dir.join("mini-proxy"));
            proxy
                .arg("--kubeconfig")
                .arg(&self.state.node_kubeconfig)
                .arg("--node-name")
                .arg(&node.name)
                .args(["--cluster-cidr", CLUSTER_CIDR]);
            self.spawn(
                &format!("proxy-{}", node.name),
                "mini-proxy",
                proxy,
                Some(node.netns.clone()),
            )?;
        }

        if !options.skip_dns {
            addons::apply_manifest(&client, addons::DNS_MANIFEST)
                .await
                .context("deploy the DNS add-on")?;
        }
        let deadline = Instant::now() + options.wait_timeout;
        let want = self.state.nodes.len();
        loop {
            self.check_children()?;
            let ready = ready_nodes(&client).await.unwrap_or_default();
            if ready.len() >= want {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out after {:?} waiting for {want} nodes Ready (Ready: {ready:?}); logs in {}",
                    options.wait_timeout,
                    self.state.state_dir.join("logs").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if !options.skip_dns {
            let netns = PathBuf::from("/run/netns").join(&self.state.nodes[0].netns);
            loop {
                self.check_children()?;
                let probe = netns.clone();
                let last_error = match tokio::task::spawn_blocking(move || {
                    addons::query_dns(probe, addons::DNS_SERVICE_IP)
                })
                .await?
                {
                    Ok(_) => break,
                    Err(err) => err.to_string(),
                };
                if Instant::now() > deadline {
                    bail!(
                        "timed out after {:?} waiting for DNS at {} to answer {} (last error: {last_error}); logs in {}",
                        options.wait_timeout,
                        addons::DNS_SERVICE_IP,
                        addons::PROBE_NAME,
                        self.state.state_dir.join("logs").display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }

        let target = match &options.kubeconfig {
            Some(path) => path.clone(),
            None => kubeconfig::default_path()?,
        };
        let context = state::context_name(&name);
        kubeconfig::merge(&admin, &target, &context)?;
        self.state.user_kubeconfig = Some(KubeconfigEntry {
            path: target.clone(),
            context: context.clone(),
        });
        self.state.save()?;
        let mut summary = String::new();
        let _ = writeln!(
            summary,
            "kubeconfig: context {context} in {}\nTry:\n  kubectl --kubeconfig {} --context {context} get nodes\n  minictl --kubeconfig {} --context {context} get nodes\nStop it with: cluster down --name {name}",
            target.display(),
            target.display(),
            target.display()
        );
        Ok(summary)
    }

    /// Starts a local etcd with its data in the state directory, serving clients over TLS
    /// with client certificates required (kubeadm's etcd certificates, made first in
    /// `<state>/pki` with the cluster PKI: see [`ensure_cluster_pki`]); returns its client URL
    /// and port. Peers stay plain on loopback (one member, no peer traffic).
    fn start_etcd(&mut self) -> anyhow::Result<(String, u16)> {
        let pki_dir = self.state.state_dir.join("pki");
        ensure_cluster_pki(&pki_dir)?
            .ensure_etcd(&[])
            .with_context(|| format!("etcd's certificates in {}", pki_dir.display()))?;
        let client_port = free_port()?;
        let client_url = format!("https://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{}", free_port()?);
        let file = |name: &str| pki_dir.join(name).display().to_string();
        let mut etcd = Command::new("etcd");
        etcd.arg(format!("--name={}", self.state.name))
            .arg(format!(
                "--data-dir={}",
                self.state.state_dir.join("etcd").display()
            ))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--cert-file={}", file(pki::ETCD_SERVER_CERT)))
            .arg(format!("--key-file={}", file(pki::ETCD_SERVER_KEY)))
            .arg(format!("--trusted-ca-file={}", file(pki::ETCD_CA_CERT)))
            .arg("--client-cert-auth=true")
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster={}={peer_url}", self.state.name))
            .arg("--initial-cluster-state=new")
            .arg("--log-level=warn");
        self.spawn("etcd", "etcd", etcd, None)?;
        self.state.etcd_client_url = Some(client_url.clone());
        self.state.save()?;
        Ok((client_url, client_port))
    }

    /// Starts `cmd` detached, logging to logs/<component>.log, and records it.
    fn spawn(
        &mut self,
        component: &str,
        program: &str,
        cmd: Command,
        netns: Option<String>,
    ) -> anyhow::Result<()> {
        let log = self.state.log_path(component);
        let child = spawn_detached(cmd, &log).with_context(|| format!("start {component}"))?;
        let record = Component {
            name: component.to_string(),
            program: program.to_string(),
            pid: child.id() as i32,
            log,
            netns,
        };
        self.state.components.push(record.clone());
        self.state.save()?;
        self.children.push(Started {
            child,
            component: record,
        });
        Ok(())
    }

    /// Fails with the log tail of the first component that exited.
    fn check_children(&mut self) -> anyhow::Result<()> {
        for started in &mut self.children {
            if let Some(status) = started.child.try_wait()? {
                return Err(anyhow!(
                    "{} exited ({status}); last lines of {}:\n{}",
                    started.component.name,
                    started.component.log.display(),
                    process::log_tail(&started.component.log, 20)
                ));
            }
        }
        Ok(())
    }

    async fn wait_until(
        &mut self,
        timeout: Duration,
        what: &str,
        condition: impl Fn() -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !condition() {
            self.check_children()?;
            if Instant::now() > deadline {
                bail!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

/// The cluster PKI in `dir`, made (or kept) with the options mini-apiserver derives from the
/// flags `cluster up` gives it (service IP 10.96.0.1 of 10.96.0.0/12; reached at 127.0.0.1
/// and the lab bridge), so the apiserver started with `--cert-dir` on it keeps every
/// certificate, the CA first.
pub fn ensure_cluster_pki(dir: &Path) -> anyhow::Result<pki::ClusterPki> {
    let options = pki::PkiOptions {
        cluster_domain: "cluster.local".into(),
        service_ip: IpAddr::from([10, 96, 0, 1]),
        apiserver_ips: vec![IpAddr::from([127, 0, 0, 1]), IpAddr::V4(LAB_BRIDGE_IP)],
        apiserver_names: vec![],
    };
    pki::ClusterPki::ensure(dir, &options)
        .with_context(|| format!("the cluster PKI in {}", dir.display()))
}

fn nsenter(netns: &Path, program: &Path) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", netns.display()))
        .arg("--")
        .arg(program);
    cmd
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// A client from the admin kubeconfig at `path`.
pub async fn admin_client(path: &Path) -> anyhow::Result<Client> {
    let config = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("read {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await?;
    Ok(Client::try_from(config)?)
}

/// The names of the nodes whose Ready condition is True.
pub async fn ready_nodes(client: &Client) -> anyhow::Result<Vec<String>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes.list(&Default::default()).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|node| node_ready(node) == Some(true))
        .filter_map(|node| node.metadata.name)
        .collect())
}

/// The node's Ready condition: Some(true/false), None when it has none yet.
pub fn node_ready(node: &Node) -> Option<bool> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status == "True")
}
