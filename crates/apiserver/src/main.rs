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
    /// The CA etcd's serving certificate is verified with (PEM); needed for https:// etcd
    /// servers, and the only root trusted for them.
    #[arg(long)]
    etcd_cafile: Option<PathBuf>,
    /// The client certificate presented to etcd (PEM; etcd's --client-cert-auth).
    #[arg(long, requires = "etcd_keyfile")]
    etcd_certfile: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, requires = "etcd_certfile")]
    etcd_keyfile: Option<PathBuf>,
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
    /// The serving certificate (PEM). Without it (and its key) the server makes and keeps a
    /// whole cluster PKI in --cert-dir and serves with its certificate.
    #[arg(long, requires = "tls_private_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// The serving certificate's key (PEM).
    #[arg(long, requires = "tls_cert_file")]
    tls_private_key_file: Option<PathBuf>,
    /// Where the server keeps its own PKI when no --tls-cert-file is given: the cluster CA, the
    /// ServiceAccount key pair, its serving and kubelet-client certificates, an admin
    /// certificate for --write-kubeconfig (kubeadm's layout).
    #[arg(long, default_value = "/var/lib/minicluster/apiserver/pki")]
    cert_dir: PathBuf,
    /// Extra names or IPs for the serving certificate made in --cert-dir (repeatable).
    #[arg(long)]
    tls_san: Vec<String>,
    /// Clients presenting a certificate signed by this CA are its CN, in its O groups
    /// (default with --cert-dir: the cluster CA).
    #[arg(long)]
    client_ca_file: Option<PathBuf>,
    /// Static bearer tokens: `token,user,uid[,"group1,group2"]` per line.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Requests without credentials are the user system:anonymous (what RBAC grants it:
    /// discovery, /version, /healthz); false makes them 401.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    anonymous_auth: bool,
    /// Authorizers, in order: Node, RBAC, AlwaysAllow, AlwaysDeny.
    #[arg(long, value_delimiter = ',', default_value = "Node,RBAC")]
    authorization_mode: Vec<apiserver::authz::Mode>,
    /// Admission plugins to enable besides the default ones (NamespaceLifecycle,
    /// ServiceAccount, PodSecurity, Priority, DefaultTolerationSeconds), e.g. NodeRestriction.
    #[arg(long, value_delimiter = ',')]
    enable_admission_plugins: Vec<String>,
    /// Admission plugins to disable, default ones included.
    #[arg(long, value_delimiter = ',')]
    disable_admission_plugins: Vec<String>,
    /// The apiserver's client certificate towards kubelets (default with --cert-dir: its
    /// apiserver-kubelet-client certificate).
    #[arg(long, requires = "kubelet_client_key")]
    kubelet_client_certificate: Option<PathBuf>,
    /// Its key.
    #[arg(long, requires = "kubelet_client_certificate")]
    kubelet_client_key: Option<PathBuf>,
    /// The CA of kubelets' serving certificates; without it they are not verified (upstream's
    /// default too: kubelets often serve self-signed certificates).
    #[arg(long)]
    kubelet_certificate_authority: Option<PathBuf>,
    /// The public key ServiceAccount tokens are checked with (PEM; default with --cert-dir: its
    /// sa.pub).
    #[arg(long)]
    service_account_key_file: Option<PathBuf>,
    /// The private key ServiceAccount tokens are signed with (PEM; default with --cert-dir: its
    /// sa.key).
    #[arg(long)]
    service_account_signing_key_file: Option<PathBuf>,
    /// The `iss` of issued tokens, and the only issuer accepted.
    #[arg(long, default_value = "https://kubernetes.default.svc.cluster.local")]
    service_account_issuer: String,
    /// Audiences tokens must name one of (default: the issuer).
    #[arg(long, value_delimiter = ',')]
    api_audiences: Vec<String>,
    /// Serve plain HTTP, without TLS (only on a loopback --listen address), and dial kubelets
    /// over plain HTTP: a test cluster whose kubelets run with --insecure-plain-http.
    #[arg(long)]
    insecure_plain_http: bool,
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

/// TLS towards etcd from --etcd-cafile/--etcd-certfile/--etcd-keyfile (read now), when given.
fn etcd_tls(flags: &Flags) -> anyhow::Result<Option<store::etcd::EtcdTls>> {
    let read_flag = |flag: &str, p: &PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("reading {flag} {}", p.display()))
    };
    let Some(ca) = &flags.etcd_cafile else {
        if flags.etcd_certfile.is_some() {
            bail!("--etcd-certfile needs --etcd-cafile (the CA of etcd's serving certificate)");
        }
        return Ok(None);
    };
    Ok(Some(store::etcd::EtcdTls {
        ca_pem: read_flag("--etcd-cafile", ca)?,
        cert_pem: flags
            .etcd_certfile
            .as_ref()
            .map(|p| read_flag("--etcd-certfile", p))
            .transpose()?,
        key_pem: flags
            .etcd_keyfile
            .as_ref()
            .map(|p| read_flag("--etcd-keyfile", p))
            .transpose()?,
    }))
}

async fn open_store(flags: &Flags) -> anyhow::Result<Arc<dyn Store>> {
    if !flags.etcd_servers.is_empty() {
        let tls = etcd_tls(flags)?;
        let s = store::etcd::EtcdStore::connect_with(
            &flags.etcd_servers,
            Some(flags.etcd_prefix.clone()),
            tls,
        )
        .await
        .with_context(|| format!("connecting to etcd at {}", flags.etcd_servers.join(",")))?;
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

/// The certificates the server serves and trusts.
struct TlsMaterial {
    serving: pki::KeyCert,
    /// The CA client certificates must chain to (PEM).
    client_ca: String,
    /// The server's own PKI (--cert-dir), when it made one: the admin kubeconfig's
    /// credentials come from it.
    own: Option<pki::ClusterPki>,
}

impl TlsMaterial {
    /// An admin kubeconfig for `url` (O=system:masters), from the server's own PKI.
    fn admin_kubeconfig(&self, url: &str) -> anyhow::Result<String> {
        let own = self.own.as_ref().context(
            "--write-kubeconfig needs the server's own PKI (--cert-dir) for admin credentials",
        )?;
        let admin = own.component(pki::Component::Admin)?;
        Ok(pki::kubeconfig(
            "minicluster",
            url,
            &own.ca_pem,
            pki::Credential::Cert {
                cert_pem: &admin.cert_pem,
                key_pem: &admin.key_pem,
            },
        ))
    }
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The serving certificate and client CA: the files given, or the server's own PKI made (or
/// renewed) in --cert-dir with every address the server answers on in its certificate.
fn tls_material(flags: &Flags, config: &Config) -> anyhow::Result<TlsMaterial> {
    if let (Some(cert), Some(key)) = (&flags.tls_cert_file, &flags.tls_private_key_file) {
        let client_ca = match &flags.client_ca_file {
            Some(p) => read(p)?,
            None => bail!("--tls-cert-file needs --client-ca-file (the CA of client certificates)"),
        };
        let own = pki::ClusterPki::open(&flags.cert_dir).ok();
        return Ok(TlsMaterial {
            serving: pki::KeyCert {
                cert_pem: read(cert)?,
                key_pem: read(key)?,
            },
            client_ca,
            own,
        });
    }
    let mut ips = vec![flags.listen.ip(), config.advertise.ip()];
    if let Some(a) = flags.node_listen {
        ips.push(a.ip());
    }
    let mut names = Vec::new();
    for s in &flags.tls_san {
        match s.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => names.push(s.clone()),
        }
    }
    ips.retain(|ip| !ip.is_unspecified());
    let service_ip = flags
        .service_cluster_ip_range
        .hosts()
        .next()
        .map(IpAddr::V4)
        .context("the service range has no address")?;
    let own = pki::ClusterPki::ensure(
        &flags.cert_dir,
        &pki::PkiOptions {
            cluster_domain: "cluster.local".into(),
            service_ip,
            apiserver_ips: ips,
            apiserver_names: names,
        },
    )
    .with_context(|| format!("the PKI in {}", flags.cert_dir.display()))?;
    let client_ca = match &flags.client_ca_file {
        Some(p) => read(p)?,
        None => own.ca_pem.clone(),
    };
    Ok(TlsMaterial {
        serving: own.key_cert("apiserver")?,
        client_ca,
        own: Some(own),
    })
}

/// TLS towards kubelets: the kubelet-client certificate given, or the server's own; their
/// serving certificates verified against --kubelet-certificate-authority when given.
fn kubelet_tls(flags: &Flags, tls: &TlsMaterial) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let client = match (&flags.kubelet_client_certificate, &flags.kubelet_client_key) {
        (Some(c), Some(k)) => Some(pki::KeyCert {
            cert_pem: read(c)?,
            key_pem: read(k)?,
        }),
        _ => tls
            .own
            .as_ref()
            .map(|own| own.component(pki::Component::ApiserverKubeletClient))
            .transpose()?,
    };
    let roots = flags
        .kubelet_certificate_authority
        .as_deref()
        .map(read)
        .transpose()?;
    Ok(apiserver::tls::client_config(
        roots.as_deref(),
        client
            .as_ref()
            .map(|k| (k.cert_pem.as_str(), k.key_pem.as_str())),
    )?)
}

/// The authenticator and authorizers of the flags.
fn security(flags: &Flags, tls: Option<&TlsMaterial>) -> anyhow::Result<apiserver::Security> {
    let mut authn = apiserver::authn::Authenticator::default();
    authn.anonymous = flags.anonymous_auth;
    if let Some(t) = tls {
        authn = authn.with_client_ca(&t.client_ca)?;
    }
    if let Some(p) = &flags.token_auth_file {
        authn = authn.with_token_file(p)?;
    }
    let own_dir = tls
        .and_then(|t| t.own.as_ref())
        .map(|o| o.dir().to_path_buf());
    let own_or = |given: &Option<PathBuf>, name: &str| -> Option<PathBuf> {
        given
            .clone()
            .or_else(|| own_dir.as_ref().map(|d| d.join(name)))
            .or_else(|| Some(flags.cert_dir.join(name)).filter(|p| p.exists()))
    };
    let sa_tokens = match own_or(&flags.service_account_key_file, "sa.pub") {
        Some(public) => {
            let private = own_or(&flags.service_account_signing_key_file, "sa.key")
                .map(|p| read(&p))
                .transpose()?;
            Some(Arc::new(apiserver::sa_tokens::Tokens::new(
                &read(&public)?,
                private.as_deref(),
                &flags.service_account_issuer,
                flags.api_audiences.clone(),
            )?))
        }
        None => None,
    };
    Ok(apiserver::Security {
        authn,
        authz: apiserver::authz::Authorizer::new(flags.authorization_mode.clone()),
        sa_tokens,
    })
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
    let mut config = Config {
        advertise,
        service_cluster_ip_range: flags.service_cluster_ip_range,
        service_node_port_range: ports,
        bookmark_interval: Duration::from_secs(flags.bookmark_interval_seconds.max(1)),
        compaction_interval: Duration::from_secs(flags.compaction_interval_seconds.max(1)),
        kubelet_netns: flags.kubelet_netns.clone(),
        kubelet_tls: None,
        default_not_ready_toleration_seconds: flags.default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds: flags.default_unreachable_toleration_seconds,
        etcd_servers: flags.etcd_servers.clone(),
        admission: apiserver::admission::Plugins::from_flags(
            &flags.enable_admission_plugins,
            &flags.disable_admission_plugins,
        )?,
        pod_security: Default::default(),
    };
    if flags.insecure_plain_http && !flags.listen.ip().is_loopback() {
        bail!(
            "--insecure-plain-http serves without TLS or client certificates: only on a loopback \
             --listen address, not {}",
            flags.listen
        );
    }
    let tls = if flags.insecure_plain_http {
        None
    } else {
        Some(tls_material(&flags, &config)?)
    };
    let security = security(&flags, tls.as_ref())?;
    if let Some(t) = &tls {
        config.kubelet_tls = Some(kubelet_tls(&flags, t)?);
    }
    let listener = tokio::net::TcpListener::bind(flags.listen)
        .await
        .with_context(|| format!("listening on {}", flags.listen))?;
    let srv = ApiServer::start_secured(store, config, security).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(path) = &flags.write_kubeconfig {
        let url = format!("{scheme}://{}", listener.local_addr()?);
        let text = match &tls {
            Some(t) => t.admin_kubeconfig(&url)?,
            None => apiserver::kubeconfig::render(&url, "minicluster"),
        };
        pki::write_private(path, text.as_bytes())
            .with_context(|| format!("writing kubeconfig {}", path.display()))?;
    }
    tracing::info!(listen = %listener.local_addr()?, %scheme, modes = ?flags.authorization_mode, "mini-apiserver serving");
    let router = srv.router();
    let server_config = match &tls {
        Some(t) => {
            let ca = apiserver::tls::ClientCa::from_pem(&t.client_ca).context("client CA")?;
            Some(
                apiserver::tls::server_config(&t.serving.cert_pem, &t.serving.key_pem, Some(&ca))
                    .context("TLS configuration")?,
            )
        }
        None => None,
    };
    if let (Some(addr), Some(netns)) = (flags.node_listen, flags.kubelet_netns.clone()) {
        let node_listener = bind_in_netns(addr, netns.clone())
            .with_context(|| format!("listening on {addr} in {}", netns.display()))?;
        tracing::info!(listen = %addr, netns = %netns.display(), "serving the nodes too");
        let r = router.clone();
        let cfg = server_config.clone();
        tokio::spawn(async move {
            match cfg {
                Some(c) => apiserver::tls::serve(node_listener, r, c, std::future::pending()).await,
                None => {
                    if let Err(e) = axum::serve(node_listener, r).await {
                        tracing::error!(error = %e, "node listener stopped");
                    }
                }
            }
        });
    }
    // Open watches would hold a graceful shutdown forever: give them a moment, then exit.
    let grace = async {
        shutdown_signal().await;
        tokio::time::sleep(Duration::from_secs(3)).await
    };
    match server_config {
        Some(c) => {
            tokio::select! {
                _ = apiserver::tls::serve(listener, router, c, shutdown_signal()) => {}
                _ = grace => {}
            }
        }
        None => {
            let server = axum::serve(listener, router).with_graceful_shutdown(shutdown_signal());
            tokio::select! {
                r = server => r.context("serving")?,
                _ = grace => {}
            }
        }
    }
    tracing::info!("mini-apiserver stopped");
    Ok(())
}
