//! One worker per pod: reconciles the pod's spec against what the runtime reports (sandbox,
//! network, volumes, init containers in order, app containers with restart policy and
//! back-off, probes, hooks), writes pods/status when it changed, and on deletion kills the
//! pod within its grace period and deletes the object for good. Idempotent: a new kubelet
//! adopts what the runtime already runs.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use daemon::events::{EventType, Recorder};
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use runtime::runtime::{ContainerState, SandboxState};
use runtime::spec::{ContainerConfig, EnvVar, MountConfig, SandboxConfig, SecurityConfig};
use tokio::sync::{watch, Notify};

use crate::backoff::{self, Backoff};
use crate::cri::{normalize_reference, ContainerRuntime};
use crate::netplugin::PodNetworkPlugin;
use crate::probe::{self, ProbeKind, ProbeStates};
use crate::status::{self, ContainerView, PodView};
use crate::volumes::{self, Mounter, VolumeSources};

/// Label with the pod's uid on sandboxes and containers.
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
/// Label with the pod's name.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
/// Label with the pod's namespace.
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Label with the container's name.
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Label telling init from app containers.
pub const LABEL_CONTAINER_KIND: &str = "minicluster.io/container-kind";
/// Annotation with the container instance's restart count.
pub const ANNOTATION_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
/// Annotation with the hash of the container spec the instance was made from.
pub const ANNOTATION_HASH: &str = "io.kubernetes.container.hash";

/// Kubelet settings the workers need.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// This node.
    pub node_name: String,
    /// This node's IP.
    pub node_ip: Ipv4Addr,
    /// --root-dir.
    pub root_dir: PathBuf,
    /// --cluster-dns.
    pub cluster_dns: Vec<String>,
    /// --cluster-domain.
    pub cluster_domain: String,
    /// --resolv-conf: the basis of dnsPolicy Default pods' resolv.conf (None: an empty one).
    pub resolv_conf: Option<PathBuf>,
    /// The runtime's state root (where it keeps each sandbox's /etc files).
    pub runtime_root: PathBuf,
    /// Period of the full resync of every pod (volumes refreshed, status rewritten).
    pub sync_period: Duration,
    /// Image of the sandboxes.
    pub pause_image: String,
    /// Allocatable resources of the node (for resourceFieldRef defaults).
    pub allocatable: BTreeMap<String, String>,
    /// The node's cgroup subtree; pods go under `<it>/kubepods[/burstable|/besteffort]`.
    pub cgroup_root: String,
}

/// What every worker shares.
pub struct Shared {
    /// Settings.
    pub cfg: KubeletConfig,
    /// The apiserver.
    pub client: Client,
    /// The container runtime.
    pub runtime: Arc<dyn ContainerRuntime>,
    /// The pod network, once the node has a podCIDR.
    pub network: watch::Receiver<Option<Arc<dyn PodNetworkPlugin>>>,
    /// Probe results.
    pub probes: Arc<ProbeStates>,
    /// Services (for the service environment variables).
    pub services: Store<Service>,
    /// The ConfigMaps and Secrets pods use, fetched one by one (env and volumes).
    pub objects: Arc<crate::objects::ObjectCache>,
    /// ServiceAccount tokens of projected volumes.
    pub tokens: Arc<crate::tokens::TokenManager>,
    /// tmpfs mounts.
    pub mounter: Arc<dyn Mounter>,
    /// Events.
    pub recorder: Recorder,
}

/// Why a sync could not finish (retried on the next tick; shown as an event).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The runtime failed.
    #[error("{0}")]
    Runtime(#[from] crate::cri::CriError),
    /// The network failed.
    #[error("{0}")]
    Network(#[from] crate::netplugin::NetworkError),
    /// A volume could not be set up.
    #[error("{0}")]
    Volume(#[from] volumes::VolumeError),
    /// The apiserver failed.
    #[error("api: {0}")]
    Api(#[from] kube::Error),
    /// A file the kubelet manages could not be written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The node's network is not ready yet (no podCIDR).
    #[error("network is not ready: the node has no podCIDR yet")]
    NetworkNotReady,
}

/// What the worker does after a sync.
#[derive(Debug, PartialEq)]
enum Next {
    /// Keep going; sync again after this long (or sooner on an event).
    After(Duration),
    /// The pod is gone and cleaned up: the worker ends.
    Finished,
}

/// The instances of one container name, newest first.
fn instances<'a>(all: &'a [ContainerState], name: &str, kind: &str) -> Vec<&'a ContainerState> {
    let mut v: Vec<&ContainerState> = all
        .iter()
        .filter(|c| {
            c.labels.get(LABEL_CONTAINER_NAME).map(String::as_str) == Some(name)
                && c.labels.get(LABEL_CONTAINER_KIND).map(String::as_str) == Some(kind)
        })
        .collect();
    v.sort_by_key(|c| std::cmp::Reverse(restart_count(c)));
    v
}

fn restart_count(c: &ContainerState) -> i32 {
    c.annotations
        .get(ANNOTATION_RESTART_COUNT)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn finished_at(c: &ContainerState) -> jiff::Timestamp {
    c.finished_at
        .as_deref()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(jiff::Timestamp::now)
}

/// The spec hash an instance must carry (the image: the one field of a container that may
/// change on a running pod).
fn spec_hash(c: &Container) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(c.image.clone().unwrap_or_default().as_bytes());
    hex::encode(&h[..8])
}

/// Whether an image reference names a registry (`host.domain/...`, `host:port/...`,
/// `localhost/...`). Names without one refer to the node's image store: mini-cluster has no
/// default registry, so they are never pulled.
pub fn names_registry(reference: &str) -> bool {
    match reference.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// The effective pull policy as the apiserver defaults it.
fn pull_policy(c: &Container) -> String {
    c.image_pull_policy.clone().unwrap_or_else(|| {
        let image = c.image.clone().unwrap_or_default();
        let last = image.rsplit('/').next().unwrap_or("");
        if !last.contains(':') || last.ends_with(":latest") {
            "Always".into()
        } else {
            "IfNotPresent".into()
        }
    })
}

/// The log file of container `name`'s instance number `restart` (upstream's /var/log/pods
/// layout: `<ns>_<pod>_<uid>/<container>/<n>.log`).
pub fn log_path(root: &std::path::Path, pod: &Pod, name: &str, restart: i32) -> PathBuf {
    root.join("logs")
        .join(format!(
            "{}_{}_{}",
            pod.namespace().unwrap_or_default(),
            pod.name_any(),
            pod.uid().unwrap_or_default()
        ))
        .join(name)
        .join(format!("{restart}.log"))
}

/// One pod's worker.
pub struct Worker {
    shared: Arc<Shared>,
    uid: String,
    backoff: Backoff,
    probers: HashMap<String, Vec<tokio::task::JoinHandle<()>>>,
    notify: Arc<Notify>,
    start_time: jiff::Timestamp,
    pod_ip: String,
    /// Waiting reasons decided during this sync, per container name.
    waiting: HashMap<String, (String, String)>,
    /// Set once the pod reached Succeeded/Failed.
    terminal: Option<String>,
    last_status: Option<serde_json::Value>,
    last_full_sync: tokio::time::Instant,
    reported_errors: HashMap<String, String>,
}

impl Worker {
    /// A worker for the pod with `uid`, woken by `notify` (runtime or probe changes).
    pub fn new(shared: Arc<Shared>, uid: String, notify: Arc<Notify>) -> Self {
        Worker {
            shared,
            uid,
            backoff: Backoff::default(),
            probers: HashMap::new(),
            notify,
            start_time: jiff::Timestamp::now(),
            pod_ip: String::new(),
            waiting: HashMap::new(),
            terminal: None,
            last_status: None,
            last_full_sync: tokio::time::Instant::now(),
            reported_errors: HashMap::new(),
        }
    }

    /// Runs until the pod is gone and cleaned up. `pods` carries the latest object (None once
    /// it was deleted from the API).
    pub async fn run(mut self, mut pods: watch::Receiver<Option<Pod>>) {
        loop {
            let pod = pods.borrow_and_update().clone();
            let next = match pod {
                Some(p) => self.sync(&p).await,
                None => self.finish(None).await,
            };
            let wait = match next {
                Ok(Next::Finished) => break,
                Ok(Next::After(d)) => d,
                Err(e) => {
                    tracing::warn!(pod = %self.uid, error = %e, "sync failed");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                r = pods.changed() => {
                    if r.is_err() {
                        // The manager dropped us: the kubelet is shutting down.
                        break;
                    }
                }
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        self.stop_all_probers();
    }

    fn stop_all_probers(&mut self) {
        for (_, hs) in self.probers.drain() {
            hs.into_iter().for_each(|h| h.abort());
        }
    }

    fn event(&self, pod: &Pod, t: EventType, reason: &str, msg: &str) {
        self.shared.recorder.event(pod, t, reason, msg);
    }

    fn sandbox_config(&self, pod: &Pod) -> SandboxConfig {
        let spec = pod.spec.clone().unwrap_or_default();
        let (host, _) = crate::podfiles::hostname_and_fqdn(pod, &self.shared.cfg.cluster_domain);
        let host_resolv = self
            .shared
            .cfg
            .resolv_conf
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default();
        let dns = crate::podfiles::dns_config(
            pod,
            &self.shared.cfg.cluster_dns,
            &self.shared.cfg.cluster_domain,
            &host_resolv,
        );
        let mut labels = BTreeMap::new();
        labels.insert(LABEL_POD_UID.to_string(), self.uid.clone());
        labels.insert(LABEL_POD_NAME.to_string(), pod.name_any());
        labels.insert(
            LABEL_POD_NAMESPACE.to_string(),
            pod.namespace().unwrap_or_default(),
        );
        SandboxConfig {
            name: pod.name_any(),
            namespace: pod.namespace().unwrap_or_default(),
            uid: self.uid.clone(),
            id: None,
            hostname: Some(host),
            host_network: spec.host_network == Some(true),
            host_ipc: spec.host_ipc == Some(true),
            host_pid: spec.host_pid == Some(true),
            share_pid: spec.share_process_namespace == Some(true),
            dns: Some(dns),
            extra_hosts: Vec::new(),
            pause_image: Some(self.shared.cfg.pause_image.clone()),
            cgroup_parent: Some(crate::resources::qos_cgroup(
                &self.shared.cfg.cgroup_root,
                crate::resources::qos_class(pod),
            )),
            resources: crate::resources::pod_resources(pod),
            user_namespace: None,
            labels,
            annotations: BTreeMap::new(),
        }
    }

    async fn network(&self) -> Result<Arc<dyn PodNetworkPlugin>, SyncError> {
        self.shared
            .network
            .borrow()
            .clone()
            .ok_or(SyncError::NetworkNotReady)
    }

    /// Finds this pod's running sandbox, or makes a new one (network included).
    async fn ensure_sandbox(
        &mut self,
        pod: &Pod,
        sandboxes: &[SandboxState],
        containers: &[ContainerState],
    ) -> Result<(SandboxState, bool), SyncError> {
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
        let mine: Vec<&SandboxState> = sandboxes
            .iter()
            .filter(|s| s.labels.get(LABEL_POD_UID) == Some(&self.uid))
            .collect();
        if let Some(sb) = mine.iter().find(|s| s.status == "ready") {
            if self.pod_ip.is_empty() {
                self.pod_ip = if host_network {
                    self.shared.cfg.node_ip.to_string()
                } else {
                    let net = self.network().await?;
                    let ns = PathBuf::from(sb.netns.clone().unwrap_or_default());
                    net.attach(&sb.id, &ns).await?.to_string()
                };
                self.write_hosts(pod, &sb.id)?;
            }
            return Ok(((*sb).clone(), false));
        }
        // Dead sandboxes (pause gone): kill their containers and remove them.
        for sb in &mine {
            tracing::info!(pod = %pod.name_any(), sandbox = %sb.id, "sandbox is not ready; recreating");
            if let Ok(net) = self.network().await {
                let _ = net.detach(&sb.id, None).await;
            }
            for c in containers.iter().filter(|c| c.sandbox_id == sb.id) {
                self.probers
                    .remove(&c.id)
                    .into_iter()
                    .flatten()
                    .for_each(|h| h.abort());
            }
            self.shared
                .runtime
                .stop_sandbox(&sb.id, Duration::ZERO)
                .await
                .ok();
        }
        let net = if host_network {
            None
        } else {
            Some(self.network().await?)
        };
        let mut cfg = self.sandbox_config(pod);
        if pod.spec.as_ref().and_then(|s| s.host_users) == Some(false) {
            let pods = self.shared.cfg.root_dir.join("pods");
            let map =
                crate::userns::mapping_for(&pods, &self.uid).map_err(|source| SyncError::Io {
                    path: pods.display().to_string(),
                    source,
                })?;
            cfg.user_namespace = Some(map);
        }
        let sb = self.shared.runtime.create_sandbox(&cfg).await?;
        self.pod_ip = match &net {
            None => self.shared.cfg.node_ip.to_string(),
            Some(net) => {
                let ns = PathBuf::from(sb.netns.clone().unwrap_or_default());
                match net.attach(&sb.id, &ns).await {
                    Ok(ip) => ip.to_string(),
                    Err(e) => {
                        let _ = self.shared.runtime.remove_sandbox(&sb.id).await;
                        return Err(e.into());
                    }
                }
            }
        };
        if let Some(net) = &net {
            let ports: Vec<_> = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter())
                .flat_map(|c| c.ports.iter().flatten())
                .filter(|p| p.host_port.unwrap_or(0) > 0)
                .cloned()
                .collect();
            if !ports.is_empty() {
                let ip: Ipv4Addr = self.pod_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
                net.set_host_ports(&sb.id, ip, &ports).await?;
            }
        }
        self.write_hosts(pod, &sb.id)?;
        // Old dead sandboxes go once the new one runs.
        for old in mine {
            let _ = self.shared.runtime.remove_sandbox(&old.id).await;
        }
        Ok((sb, true))
    }

    fn write_hosts(&self, pod: &Pod, sandbox: &str) -> Result<(), SyncError> {
        if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
            return Ok(());
        }
        let path = self
            .shared
            .cfg
            .runtime_root
            .join("pods")
            .join(sandbox)
            .join("hosts");
        let text = crate::podfiles::hosts_file(pod, &self.pod_ip, &self.shared.cfg.cluster_domain);
        runtime::util::write_readable(&path, text.as_bytes()).map_err(|source| SyncError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    fn pod_dir(&self) -> PathBuf {
        self.shared.cfg.root_dir.join("pods").join(&self.uid)
    }

    async fn volume_sources(&self, pod: &Pod) -> Result<VolumeSources, SyncError> {
        let ns = pod.namespace().unwrap_or_default();
        let (cms, secrets, claims) = volumes::referenced_objects(pod);
        let mut src = VolumeSources {
            host_ip: self.shared.cfg.node_ip.to_string(),
            pod_ip: self.pod_ip.clone(),
            ..Default::default()
        };
        for n in cms {
            if let Some(cm) = self.shared.objects.config_map(&ns, &n).await {
                src.config_maps.insert(n, cm);
            }
        }
        for n in secrets {
            if let Some(s) = self.shared.objects.secret(&ns, &n).await {
                src.secrets.insert(n, s);
            }
        }
        for (audience, expiration) in volumes::token_requests(pod) {
            let token = self
                .shared
                .tokens
                .token(pod, audience.as_deref(), expiration)
                .await?;
            src.tokens
                .insert(volumes::token_key(audience.as_deref(), expiration), token);
        }
        for claim in claims {
            let dir = crate::claims::resolve(
                &self.shared.client,
                &ns,
                &claim,
                &self.shared.cfg.node_name,
                &self.shared.cfg.root_dir,
            )
            .await?;
            src.claims.insert(claim, dir);
        }
        Ok(src)
    }

    async fn env_sources(&self, pod: &Pod) -> crate::env::EnvSources {
        let ns = pod.namespace().unwrap_or_default();
        let mut src = crate::env::EnvSources {
            host_ip: self.shared.cfg.node_ip.to_string(),
            pod_ip: self.pod_ip.clone(),
            ..Default::default()
        };
        let (mut cms, mut secrets) = (Vec::new(), Vec::new());
        for c in pod.spec.iter().flat_map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .chain(s.containers.iter())
        }) {
            let (c_cms, c_secrets) = crate::env::referenced_objects(c);
            cms.extend(c_cms);
            secrets.extend(c_secrets);
        }
        for n in cms {
            if let Some(cm) = self.shared.objects.config_map(&ns, &n).await {
                src.config_maps.insert(n, cm);
            }
        }
        for n in secrets {
            if let Some(s) = self.shared.objects.secret(&ns, &n).await {
                src.secrets.insert(n, s);
            }
        }
        src.services = self
            .shared
            .services
            .state()
            .iter()
            .filter(|s| {
                let sns = s.namespace().unwrap_or_default();
                sns == ns || (sns == "default" && s.name_any() == "kubernetes")
            })
            .map(|s| (**s).clone())
            .collect();
        src
    }

    /// Makes sure the image is there per imagePullPolicy; Err((reason, message)) otherwise.
    async fn ensure_image(&self, c: &Container) -> Result<(), (String, String)> {
        let image = c.image.clone().unwrap_or_default();
        let policy = pull_policy(c);
        let present = self
            .shared
            .runtime
            .image_id(&image)
            .await
            .map_err(|e| ("ErrImagePull".to_string(), e.to_string()))?;
        if !names_registry(&image) {
            return match present {
                Some(_) => Ok(()),
                None if policy == "Never" => Err((
                    "ErrImageNeverPull".into(),
                    format!("Container image \"{image}\" is not present with pull policy of Never"),
                )),
                None => Err((
                    "ErrImagePull".into(),
                    format!(
                        "image \"{}\" is not in the node's image store and names no registry",
                        normalize_reference(&image)
                    ),
                )),
            };
        }
        match (policy.as_str(), present) {
            ("Never", None) => Err((
                "ErrImageNeverPull".into(),
                format!("Container image \"{image}\" is not present with pull policy of Never"),
            )),
            ("Never", Some(_)) | ("IfNotPresent", Some(_)) => Ok(()),
            (p, _) => {
                let policy = if p == "Always" {
                    "always"
                } else {
                    "if-not-present"
                };
                self.shared
                    .runtime
                    .pull(&image, policy)
                    .await
                    .map(|_| ())
                    .map_err(|e| ("ErrImagePull".to_string(), e.to_string()))
            }
        }
    }

    /// The runtime config of container `c`, with its environment from `src`.
    #[allow(clippy::too_many_arguments)]
    fn container_config(
        &self,
        pod: &Pod,
        c: &Container,
        kind: &str,
        restart: i32,
        mounts: &BTreeMap<String, PathBuf>,
        src: &crate::env::EnvSources,
    ) -> Result<ContainerConfig, (String, String)> {
        let env = crate::env::build(pod, c, src, &self.shared.cfg.allocatable)
            .map_err(|e| ("CreateContainerConfigError".to_string(), e.to_string()))?;
        let vars: BTreeMap<String, String> = env.iter().cloned().collect();
        let mut mount_cfgs = Vec::new();
        for m in c.volume_mounts.iter().flatten() {
            let Some(base) = mounts.get(&m.name) else {
                return Err((
                    "CreateContainerConfigError".into(),
                    format!("volume \"{}\" not found", m.name),
                ));
            };
            let sub = m
                .sub_path
                .clone()
                .or_else(|| {
                    m.sub_path_expr
                        .as_ref()
                        .map(|e| crate::env::expand(e, &vars))
                })
                .unwrap_or_default();
            let mut sub_path = None;
            if !sub.is_empty() {
                if sub.starts_with('/') || sub.split('/').any(|p| p == "..") {
                    return Err((
                        "CreateContainerConfigError".into(),
                        format!("invalid subPath {sub:?}"),
                    ));
                }
                // Refused when it leads out of the volume; made when missing. The init checks
                // again and mounts what it resolved.
                crate::subpath::prepare(base, Path::new(&sub), &m.name, &c.name).map_err(|e| {
                    tracing::warn!(pod = %pod.name_any(), error = ?e, "subPath refused");
                    ("CreateContainerConfigError".to_string(), e.to_string())
                })?;
                sub_path = Some(PathBuf::from(&sub));
            }
            mount_cfgs.push(MountConfig {
                host_path: base.clone(),
                container_path: PathBuf::from(&m.mount_path),
                // Payload volumes are read-only whatever the pod asks (CVE-2017-1002102).
                readonly: m.read_only == Some(true) || crate::volumes::is_read_only(pod, &m.name),
                sub_path,
            });
        }
        let psc = pod
            .spec
            .as_ref()
            .and_then(|s| s.security_context.clone())
            .unwrap_or_default();
        let sc = c.security_context.clone().unwrap_or_default();
        let caps = sc.capabilities.clone().unwrap_or_default();
        let seccomp = seccomp_mode(&c.name, &sc, &psc)?;
        let security = SecurityConfig {
            privileged: sc.privileged == Some(true),
            capabilities_add: caps.add.unwrap_or_default(),
            capabilities_drop: caps.drop.unwrap_or_default(),
            run_as_user: sc.run_as_user.or(psc.run_as_user).map(|u| u as u32),
            run_as_group: sc.run_as_group.or(psc.run_as_group).map(|g| g as u32),
            supplemental_groups: psc
                .supplemental_groups
                .unwrap_or_default()
                .into_iter()
                .map(|g| g as u32)
                .collect(),
            read_only_root_filesystem: sc.read_only_root_filesystem == Some(true),
            allow_privilege_escalation: sc.allow_privilege_escalation,
            seccomp,
        };
        let expand_all = |v: &Option<Vec<String>>| -> Vec<String> {
            v.iter()
                .flatten()
                .map(|a| crate::env::expand(a, &vars))
                .collect()
        };
        let mut labels = BTreeMap::new();
        labels.insert(LABEL_POD_UID.to_string(), self.uid.clone());
        labels.insert(LABEL_POD_NAME.to_string(), pod.name_any());
        labels.insert(
            LABEL_POD_NAMESPACE.to_string(),
            pod.namespace().unwrap_or_default(),
        );
        labels.insert(LABEL_CONTAINER_NAME.to_string(), c.name.clone());
        labels.insert(LABEL_CONTAINER_KIND.to_string(), kind.to_string());
        let mut annotations = BTreeMap::new();
        annotations.insert(ANNOTATION_RESTART_COUNT.to_string(), restart.to_string());
        annotations.insert(ANNOTATION_HASH.to_string(), spec_hash(c));
        Ok(ContainerConfig {
            // The runtime wants names unique in a sandbox: one per attempt, as CRI names do.
            name: format!("{}-{restart}", c.name),
            id: None,
            image: c.image.clone().unwrap_or_default(),
            command: expand_all(&c.command),
            args: expand_all(&c.args),
            env: env
                .into_iter()
                .map(|(name, value)| EnvVar { name, value })
                .collect(),
            working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
            mounts: mount_cfgs,
            resources: crate::resources::container_resources(c),
            security,
            rlimits: Vec::new(),
            log_path: Some(log_path(&self.shared.cfg.root_dir, pod, &c.name, restart)),
            log_max_size: None,
            labels,
            annotations,
            stdin: c.stdin == Some(true),
            stdin_once: c.stdin_once == Some(true),
            tty: c.tty == Some(true),
            pid_namespace_of: None,
        })
    }

    /// Creates and starts instance `restart` of container `c`, with its probes and postStart.
    #[allow(clippy::too_many_arguments)]
    async fn start_container(
        &mut self,
        pod: &Pod,
        sandbox: &str,
        c: &Container,
        kind: &str,
        restart: i32,
        mounts: &BTreeMap<String, PathBuf>,
    ) -> Result<(), SyncError> {
        if let Err((reason, msg)) = self.ensure_image(c).await {
            self.fail_start(pod, c, &reason, &msg);
            return Ok(());
        }
        let src = self.env_sources(pod).await;
        let mut cfg = match self.container_config(pod, c, kind, restart, mounts, &src) {
            Ok(cfg) => cfg,
            Err((reason, msg)) => {
                self.fail_start(pod, c, &reason, &msg);
                return Ok(());
            }
        };
        if kind == crate::ephemeral::KIND {
            let spec = pod.spec.clone().unwrap_or_default();
            let all = self.shared.runtime.list_containers().await?;
            cfg.pid_namespace_of = crate::ephemeral::target_id(&spec, &c.name, &all);
        }
        if let Some(parent) = cfg.log_path.as_ref().and_then(|p| p.parent()) {
            std::fs::create_dir_all(parent).map_err(|source| SyncError::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let st = match self.shared.runtime.create_container(sandbox, &cfg).await {
            Ok(st) => st,
            Err(e) => {
                let (reason, msg) = crate::subpath::create_failure(c, &cfg, &e.to_string());
                self.fail_start(pod, c, reason, &msg);
                return Ok(());
            }
        };
        self.event(
            pod,
            EventType::Normal,
            "Created",
            &format!("Created container: {}", c.name),
        );
        if let Err(e) = self.shared.runtime.start_container(&st.id).await {
            self.fail_start(pod, c, "RunContainerError", &e.to_string());
            return Ok(());
        }
        self.event(
            pod,
            EventType::Normal,
            "Started",
            &format!("Started container {}", c.name),
        );
        self.reported_errors.remove(&c.name);
        if kind == "app" {
            self.start_probers(c, &st.id);
            if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.clone()) {
                if let Err(msg) = self.run_hook(&h, c, &st.id).await {
                    self.event(
                        pod,
                        EventType::Warning,
                        "FailedPostStartHook",
                        &format!("PostStartHook failed: {msg}"),
                    );
                    let _ = self
                        .shared
                        .runtime
                        .stop_container(&st.id, Duration::from_secs(2))
                        .await;
                }
            }
        }
        Ok(())
    }

    fn fail_start(&mut self, pod: &Pod, c: &Container, reason: &str, msg: &str) {
        if self.reported_errors.get(&c.name).map(String::as_str) != Some(msg) {
            self.event(pod, EventType::Warning, "Failed", &format!("Error: {msg}"));
            self.reported_errors.insert(c.name.clone(), msg.to_string());
            self.waiting
                .insert(c.name.clone(), (reason.to_string(), msg.to_string()));
        } else {
            // Second failure in a row for pulls shows as ImagePullBackOff, as upstream.
            let r = if reason == "ErrImagePull" {
                "ImagePullBackOff"
            } else {
                reason
            };
            self.waiting
                .insert(c.name.clone(), (r.to_string(), msg.to_string()));
        }
    }

    fn start_probers(&mut self, c: &Container, id: &str) {
        let mut handles = Vec::new();
        for (kind, p) in [
            (ProbeKind::Startup, c.startup_probe.clone()),
            (ProbeKind::Liveness, c.liveness_probe.clone()),
            (ProbeKind::Readiness, c.readiness_probe.clone()),
        ] {
            if let Some(p) = p {
                handles.push(tokio::spawn(probe::prober_loop(
                    kind,
                    p,
                    c.clone(),
                    id.to_string(),
                    self.pod_ip.clone(),
                    self.shared.runtime.clone(),
                    self.shared.probes.clone(),
                    self.notify.clone(),
                )));
            }
        }
        if !handles.is_empty() {
            self.probers.insert(id.to_string(), handles);
        }
    }

    async fn run_hook(&self, h: &LifecycleHandler, c: &Container, id: &str) -> Result<(), String> {
        run_hook(self.shared.runtime.as_ref(), &self.pod_ip, h, c, id).await
    }

    /// Kills one container: preStop within the grace period, then SIGTERM, then SIGKILL.
    async fn kill_container(
        &mut self,
        pod: &Pod,
        c: Option<&Container>,
        st: &ContainerState,
        grace: Duration,
        why: &str,
    ) {
        if st.status != "running" {
            return;
        }
        let name = st
            .labels
            .get(LABEL_CONTAINER_NAME)
            .cloned()
            .unwrap_or_default();
        self.event(
            pod,
            EventType::Normal,
            "Killing",
            &format!(
                "{why}{}Stopping container {name}",
                if why.is_empty() { "" } else { ", " }
            ),
        );
        let started = tokio::time::Instant::now();
        if let Some(c) = c {
            if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.clone()) {
                if !grace.is_zero() {
                    let _ = tokio::time::timeout(grace, self.run_hook(&h, c, &st.id)).await;
                }
            }
        }
        let left = grace.saturating_sub(started.elapsed());
        // minirun counts whole seconds; round up so a short grace is not cut to zero.
        let left = if left.is_zero() && !grace.is_zero() {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(left.as_secs_f64().ceil() as u64)
        };
        if let Err(e) = self.shared.runtime.stop_container(&st.id, left).await {
            tracing::warn!(container = %st.id, error = %e, "stop failed");
        }
        if let Some(hs) = self.probers.remove(&st.id) {
            hs.into_iter().for_each(|h| h.abort());
        }
    }

    fn grace_of(pod: &Pod) -> Duration {
        let g = pod
            .metadata
            .deletion_grace_period_seconds
            .or(pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30)
            .max(0);
        Duration::from_secs(g as u64)
    }

    /// Kills everything of the pod, releases its network and volumes and removes its
    /// sandboxes; with `pod` still in the API, deletes it for good (grace 0, uid precondition).
    async fn finish(&mut self, pod: Option<&Pod>) -> Result<Next, SyncError> {
        let containers = self.shared.runtime.list_containers().await?;
        let mine: Vec<ContainerState> = containers
            .into_iter()
            .filter(|c| c.labels.get(LABEL_POD_UID) == Some(&self.uid))
            .collect();
        let grace = pod.map(Self::grace_of).unwrap_or(Duration::ZERO);
        if let Some(pod) = pod {
            let specs: Vec<Container> = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter().cloned())
                .collect();
            // Containers stop in parallel, each with the whole grace period.
            let mut kills = Vec::new();
            for st in mine.iter().filter(|c| c.status == "running") {
                let name = st
                    .labels
                    .get(LABEL_CONTAINER_NAME)
                    .cloned()
                    .unwrap_or_default();
                let spec = specs.iter().find(|c| c.name == name).cloned();
                let shared = self.shared.clone();
                let st = st.clone();
                let pod = pod.clone();
                let ip = self.pod_ip.clone();
                self.event(
                    &pod,
                    EventType::Normal,
                    "Killing",
                    &format!("Stopping container {name}"),
                );
                kills.push(tokio::spawn(async move {
                    let started = tokio::time::Instant::now();
                    if let Some(c) = &spec {
                        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.clone()) {
                            let hook = run_hook(shared.runtime.as_ref(), &ip, &h, c, &st.id);
                            let _ = tokio::time::timeout(grace, hook).await;
                        }
                    }
                    let left = grace.saturating_sub(started.elapsed());
                    let secs = if grace.is_zero() {
                        0
                    } else {
                        left.as_secs_f64().ceil().max(1.0) as u64
                    };
                    let _ = shared
                        .runtime
                        .stop_container(&st.id, Duration::from_secs(secs))
                        .await;
                    drop(pod);
                }));
            }
            for k in kills {
                let _ = k.await;
            }
        }
        self.stop_all_probers();
        let sandboxes = self.shared.runtime.list_sandboxes().await?;
        let net = self.shared.network.borrow().clone();
        for sb in sandboxes
            .iter()
            .filter(|s| s.labels.get(LABEL_POD_UID) == Some(&self.uid))
        {
            if let Some(net) = &net {
                let ns = sb.netns.as_ref().map(PathBuf::from);
                net.detach(&sb.id, ns.as_deref()).await?;
            }
            self.shared.runtime.remove_sandbox(&sb.id).await?;
        }
        for c in &mine {
            self.shared.probes.forget(&c.id);
        }
        let dir = self.pod_dir();
        volumes::teardown(&dir, self.shared.mounter.as_ref()).map_err(|source| SyncError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(pod) = pod {
            let logs = log_path(&self.shared.cfg.root_dir, pod, "x", 0);
            if let Some(d) = logs.parent().and_then(|p| p.parent()) {
                let _ = std::fs::remove_dir_all(d);
            }
            let api: Api<Pod> = Api::namespaced(
                self.shared.client.clone(),
                &pod.namespace().unwrap_or_default(),
            );
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(self.uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&pod.name_any(), &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            // Deleted from the API: remove whatever log directory carries the uid.
            if let Ok(rd) = std::fs::read_dir(self.shared.cfg.root_dir.join("logs")) {
                for e in rd.flatten() {
                    if e.file_name().to_string_lossy().ends_with(&self.uid) {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        Ok(Next::Finished)
    }

    /// Stops a finished pod's containers and sandbox but keeps them (logs stay readable) until
    /// the pod is deleted.
    async fn settle_terminal(&mut self, pod: &Pod) -> Result<(), SyncError> {
        self.stop_all_probers();
        let sandboxes = self.shared.runtime.list_sandboxes().await?;
        let net = self.shared.network.borrow().clone();
        for sb in sandboxes
            .iter()
            .filter(|s| s.labels.get(LABEL_POD_UID) == Some(&self.uid) && s.status == "ready")
        {
            self.shared
                .runtime
                .stop_sandbox(&sb.id, Self::grace_of(pod))
                .await?;
            if let Some(net) = &net {
                net.detach(&sb.id, None).await?;
            }
        }
        Ok(())
    }

    async fn sync(&mut self, pod: &Pod) -> Result<Next, SyncError> {
        if pod.metadata.deletion_timestamp.is_some() {
            return self.finish(Some(pod)).await;
        }
        self.waiting.clear();
        let spec = pod.spec.clone().unwrap_or_default();
        let restart_policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        // A pod that already ended stays ended.
        let api_phase = pod.status.as_ref().and_then(|s| s.phase.clone());
        if self.terminal.is_none()
            && matches!(api_phase.as_deref(), Some("Succeeded") | Some("Failed"))
        {
            self.terminal = api_phase.clone();
        }
        let sandboxes = self.shared.runtime.list_sandboxes().await?;
        let mut containers = self.shared.runtime.list_containers().await?;
        if self.terminal.is_some() {
            self.settle_terminal(pod).await?;
            let containers = self.shared.runtime.list_containers().await?;
            self.report(pod, &containers, false).await?;
            return Ok(Next::After(self.shared.cfg.sync_period));
        }
        let (sandbox, fresh) = match self.ensure_sandbox(pod, &sandboxes, &containers).await {
            Ok(s) => s,
            Err(e) => {
                self.event(
                    pod,
                    EventType::Warning,
                    "FailedCreatePodSandBox",
                    &format!("Failed to create pod sandbox: {e}"),
                );
                self.report(pod, &containers, false).await?;
                return Err(e);
            }
        };
        if fresh {
            containers = self.shared.runtime.list_containers().await?;
        }
        let mine: Vec<ContainerState> = containers
            .iter()
            .filter(|c| c.sandbox_id == sandbox.id)
            .cloned()
            .collect();
        let full = self.last_full_sync.elapsed() >= self.shared.cfg.sync_period || fresh;
        let src = match self.volume_sources(pod).await {
            Ok(s) => s,
            Err(e) => {
                self.event(pod, EventType::Warning, "FailedMount", &e.to_string());
                self.report(pod, &mine, true).await?;
                return Ok(Next::After(Duration::from_secs(2)));
            }
        };
        let mounts = match volumes::setup(pod, &self.pod_dir(), &src, self.shared.mounter.as_ref())
        {
            Ok(m) => m,
            Err(e) => {
                self.event(pod, EventType::Warning, "FailedMount", &e.to_string());
                self.report(pod, &mine, true).await?;
                return Ok(Next::After(Duration::from_secs(2)));
            }
        };
        if full {
            self.last_full_sync = tokio::time::Instant::now();
        }
        let now = jiff::Timestamp::now();
        let mut next = self.shared.cfg.sync_period;
        let key_prefix = format!("{}/", self.uid);
        // Init containers, one at a time, in order.
        let mut init_done = true;
        for c in spec.init_containers.iter().flatten() {
            let inst = instances(&mine, &c.name, "init");
            match inst.first() {
                Some(st) if st.status == "exited" && st.exit_code == Some(0) => continue,
                Some(st) if st.status == "running" || st.status == "created" => {
                    init_done = false;
                    break;
                }
                Some(st) => {
                    init_done = false;
                    if restart_policy == "Never" {
                        self.terminal = Some("Failed".into());
                        break;
                    }
                    let key = format!("{key_prefix}init/{}", c.name);
                    if let Some(d) = self.backoff.in_backoff(&key, finished_at(st), now) {
                        self.waiting.insert(
                            c.name.clone(),
                            (
                                "CrashLoopBackOff".into(),
                                backoff::message(
                                    d,
                                    &c.name,
                                    &pod.name_any(),
                                    &pod.namespace().unwrap_or_default(),
                                    &self.uid,
                                ),
                            ),
                        );
                        next = next.min(Duration::from_secs(1));
                        break;
                    }
                    self.backoff.next(&key, now);
                    let restart = restart_count(st) + 1;
                    self.prune_old(&inst).await;
                    self.start_container(pod, &sandbox.id, c, "init", restart, &mounts)
                        .await?;
                    next = next.min(Duration::from_secs(1));
                    break;
                }
                None => {
                    init_done = false;
                    self.start_container(pod, &sandbox.id, c, "init", 0, &mounts)
                        .await?;
                    next = next.min(Duration::from_secs(1));
                    break;
                }
            }
        }
        if init_done && self.terminal.is_none() {
            for c in &spec.containers {
                let inst = instances(&mine, &c.name, "app");
                let Some(st) = inst.first().copied() else {
                    self.start_container(pod, &sandbox.id, c, "app", 0, &mounts)
                        .await?;
                    next = next.min(Duration::from_secs(1));
                    continue;
                };
                let key = format!("{key_prefix}{}", c.name);
                if st.status == "created" {
                    // A crash between create and start: start it now.
                    self.shared.runtime.start_container(&st.id).await?;
                    continue;
                }
                if st.status == "running" {
                    if !self.probers.contains_key(&st.id)
                        && (c.liveness_probe.is_some()
                            || c.readiness_probe.is_some()
                            || c.startup_probe.is_some())
                    {
                        // Adopted after a kubelet restart: probes start again.
                        self.start_probers(c, &st.id);
                    }
                    let changed = st.annotations.get(ANNOTATION_HASH) != Some(&spec_hash(c));
                    let live = self
                        .shared
                        .probes
                        .get(&st.id, ProbeKind::Liveness)
                        .map(|s| s.0)
                        .unwrap_or(true);
                    let startup_failed = c.startup_probe.as_ref().is_some_and(|p| {
                        matches!(
                            self.shared.probes.get(&st.id, ProbeKind::Startup),
                            Some((false, _))
                        ) && started_for(st) > startup_budget(p)
                    });
                    if changed {
                        self.kill_container(
                            pod,
                            Some(c),
                            st,
                            Self::grace_of(pod),
                            &format!("Container {} definition changed, will be restarted", c.name),
                        )
                        .await;
                        next = Duration::ZERO;
                    } else if !live || startup_failed {
                        let (_, msg) = self
                            .shared
                            .probes
                            .get(&st.id, ProbeKind::Liveness)
                            .unwrap_or_default();
                        let which = if live { "startup" } else { "liveness" };
                        self.event(
                            pod,
                            EventType::Warning,
                            "Unhealthy",
                            &format!("{} probe failed: {msg}", capitalize(which)),
                        );
                        self.kill_container(
                            pod,
                            Some(c),
                            st,
                            Self::grace_of(pod),
                            &format!(
                                "Container {} failed {which} probe, will be restarted",
                                c.name
                            ),
                        )
                        .await;
                        next = Duration::ZERO;
                    }
                    continue;
                }
                // Exited.
                let code = st.exit_code.unwrap_or(-1);
                let restart = match restart_policy.as_str() {
                    "Never" => false,
                    "OnFailure" => code != 0,
                    _ => true,
                };
                if !restart {
                    continue;
                }
                if let Some(d) = self.backoff.in_backoff(&key, finished_at(st), now) {
                    self.waiting.insert(
                        c.name.clone(),
                        (
                            "CrashLoopBackOff".into(),
                            backoff::message(
                                d,
                                &c.name,
                                &pod.name_any(),
                                &pod.namespace().unwrap_or_default(),
                                &self.uid,
                            ),
                        ),
                    );
                    if self.reported_errors.get(&c.name).map(String::as_str) != Some("backoff") {
                        self.event(
                            pod,
                            EventType::Warning,
                            "BackOff",
                            "Back-off restarting failed container",
                        );
                        self.reported_errors
                            .insert(c.name.clone(), "backoff".into());
                    }
                    let left = (finished_at(st)
                        + jiff::SignedDuration::try_from(d).unwrap_or_default())
                    .duration_since(now);
                    next = next.min(left.unsigned_abs().max(Duration::from_millis(200)));
                    continue;
                }
                self.backoff.next(&key, now);
                self.probers
                    .remove(&st.id)
                    .into_iter()
                    .flatten()
                    .for_each(|h| h.abort());
                self.shared.probes.forget(&st.id);
                self.prune_old(&inst).await;
                self.start_container(pod, &sandbox.id, c, "app", restart_count(st) + 1, &mounts)
                    .await?;
                next = next.min(Duration::from_secs(1));
            }
        }
        // Ephemeral containers (kubectl debug): started once, whatever the others do.
        for c in crate::ephemeral::to_start(&spec, &mine) {
            self.start_container(pod, &sandbox.id, &c, crate::ephemeral::KIND, 0, &mounts)
                .await?;
        }
        let containers = self.shared.runtime.list_containers().await?;
        let mine: Vec<ContainerState> = containers
            .into_iter()
            .filter(|c| c.sandbox_id == sandbox.id)
            .collect();
        let phase = self.report(pod, &mine, true).await?;
        if phase == "Succeeded" || phase == "Failed" {
            self.terminal = Some(phase);
            self.settle_terminal(pod).await?;
        }
        Ok(Next::After(next))
    }

    /// Removes instances older than the newest (which becomes the previous one).
    async fn prune_old(&mut self, inst: &[&ContainerState]) {
        for old in inst.iter().skip(1) {
            let _ = self.shared.runtime.remove_container(&old.id).await;
            let _ = std::fs::remove_file(&old.log_path);
            self.shared.probes.forget(&old.id);
        }
    }

    /// Computes the status from the runtime's containers and writes it when it changed.
    async fn report(
        &mut self,
        pod: &Pod,
        containers: &[ContainerState],
        sandbox_ready: bool,
    ) -> Result<String, SyncError> {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut view = PodView {
            pod_ip: self.pod_ip.clone(),
            host_ip: self.shared.cfg.node_ip.to_string(),
            start_time: Some(self.start_time),
            sandbox_ready: sandbox_ready && self.terminal.is_none(),
            terminal_phase: self.terminal.clone(),
            ..Default::default()
        };
        if self.terminal.is_some() {
            view.pod_ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or(self.pod_ip.clone());
        }
        let mine: Vec<ContainerState> = containers
            .iter()
            .filter(|c| c.labels.get(LABEL_POD_UID) == Some(&self.uid))
            .cloned()
            .collect();
        for (kind, list, target) in [
            (
                "init",
                spec.init_containers.clone().unwrap_or_default(),
                &mut view.init,
            ),
            ("app", spec.containers.clone(), &mut view.containers),
            (
                crate::ephemeral::KIND,
                crate::ephemeral::containers(&spec),
                &mut view.ephemeral,
            ),
        ] {
            for c in list {
                let inst = instances(&mine, &c.name, kind);
                let current = inst.first().map(|s| (*s).clone());
                let previous = inst.get(1).map(|s| (*s).clone());
                let id = current.as_ref().map(|s| s.id.clone()).unwrap_or_default();
                let running = current.as_ref().is_some_and(|s| s.status == "running");
                let started = running
                    && (c.startup_probe.is_none()
                        || self
                            .shared
                            .probes
                            .get(&id, ProbeKind::Startup)
                            .is_some_and(|s| s.0));
                let ready = started
                    && (c.readiness_probe.is_none()
                        || self
                            .shared
                            .probes
                            .get(&id, ProbeKind::Readiness)
                            .is_some_and(|s| s.0));
                target.insert(
                    c.name.clone(),
                    ContainerView {
                        restart_count: current.as_ref().map(restart_count).unwrap_or(0),
                        current,
                        previous,
                        waiting: self.waiting.get(&c.name).cloned(),
                        ready,
                        started,
                    },
                );
            }
        }
        let st = status::pod_status(pod, &view, jiff::Timestamp::now());
        let phase = st.phase.clone().unwrap_or_default();
        let value = serde_json::to_value(&st).unwrap_or_default();
        let api_status = pod
            .status
            .as_ref()
            .map(|s| serde_json::to_value(s).unwrap_or_default());
        if self.last_status.as_ref() == Some(&value) && api_status.as_ref() == Some(&value) {
            return Ok(phase);
        }
        if api_status.as_ref() != Some(&value) {
            let api: Api<Pod> = Api::namespaced(
                self.shared.client.clone(),
                &pod.namespace().unwrap_or_default(),
            );
            let patch = serde_json::json!({ "status": value });
            match api
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.last_status = Some(value);
        Ok(phase)
    }
}

/// The container's seccomp profile: its own securityContext.seccompProfile, else the pod's;
/// RuntimeDefault is the runtime's default profile, Unconfined or none is no filter (Kubernetes'
/// default), Localhost profiles are refused as a CreateContainerConfigError.
fn seccomp_mode(
    container: &str,
    sc: &k8s_openapi::api::core::v1::SecurityContext,
    psc: &k8s_openapi::api::core::v1::PodSecurityContext,
) -> Result<runtime::spec::SeccompMode, (String, String)> {
    let profile = sc.seccomp_profile.as_ref().or(psc.seccomp_profile.as_ref());
    match profile.map(|p| p.type_.as_str()) {
        None | Some("Unconfined") => Ok(runtime::spec::SeccompMode::Unconfined),
        Some("RuntimeDefault") => Ok(runtime::spec::SeccompMode::RuntimeDefault),
        Some(other) => Err((
            "CreateContainerConfigError".to_string(),
            format!("container {container}: seccomp profile type {other} is not supported (RuntimeDefault and Unconfined are)"),
        )),
    }
}

/// Runs a lifecycle hook (exec, httpGet against the pod IP, or sleep) in container `id`.
async fn run_hook(
    runtime: &dyn ContainerRuntime,
    pod_ip: &str,
    h: &LifecycleHandler,
    c: &Container,
    id: &str,
) -> Result<(), String> {
    if let Some(e) = &h.exec {
        let cmd = e.command.clone().unwrap_or_default();
        return match runtime.exec_sync(id, &cmd, Duration::from_secs(30)).await {
            Ok((0, _)) => Ok(()),
            Ok((code, out)) => Err(format!(
                "command '{}' exited with {code}: {}",
                cmd.join(" "),
                out.trim()
            )),
            Err(e) => Err(e.to_string()),
        };
    }
    if let Some(g) = &h.http_get {
        return match probe::http_get(g, pod_ip, c, Duration::from_secs(30)).await {
            probe::Outcome::Success => Ok(()),
            probe::Outcome::Failure(m) => Err(m),
        };
    }
    if let Some(s) = &h.sleep {
        tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64)).await;
    }
    Ok(())
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn started_for(st: &ContainerState) -> Duration {
    st.started_at
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| jiff::Timestamp::now().duration_since(t).unsigned_abs())
        .unwrap_or_default()
}

fn startup_budget(p: &k8s_openapi::api::core::v1::Probe) -> Duration {
    let delay = p.initial_delay_seconds.unwrap_or(0).max(0) as u64;
    let period = p.period_seconds.unwrap_or(10).max(1) as u64;
    let failures = p.failure_threshold.unwrap_or(3).max(1) as u64;
    Duration::from_secs(delay + period * failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_profile_comes_from_the_container_else_the_pod() {
        use k8s_openapi::api::core::v1::{PodSecurityContext, SeccompProfile, SecurityContext};
        use runtime::spec::SeccompMode;
        let profile = |t: &str| {
            Some(SeccompProfile {
                type_: t.into(),
                ..Default::default()
            })
        };
        let pod_default = PodSecurityContext {
            seccomp_profile: profile("RuntimeDefault"),
            ..Default::default()
        };
        let none = SecurityContext::default();
        assert_eq!(
            seccomp_mode("c", &none, &pod_default),
            Ok(SeccompMode::RuntimeDefault)
        );
        let unconfined = SecurityContext {
            seccomp_profile: profile("Unconfined"),
            ..Default::default()
        };
        assert_eq!(
            seccomp_mode("c", &unconfined, &pod_default),
            Ok(SeccompMode::Unconfined)
        );
        assert_eq!(
            seccomp_mode("c", &none, &PodSecurityContext::default()),
            Ok(SeccompMode::Unconfined)
        );
        let local = SecurityContext {
            seccomp_profile: profile("Localhost"),
            ..Default::default()
        };
        let (reason, msg) = seccomp_mode("c", &local, &pod_default).unwrap_err();
        assert_eq!(reason, "CreateContainerConfigError");
        assert!(msg.contains("Localhost is not supported"), "{msg}");
    }

    #[test]
    fn registry_names() {
        assert!(!names_registry("busybox:latest"));
        assert!(!names_registry("library/busybox"));
        assert!(names_registry("localhost:5000/demo:v1"));
        assert!(names_registry("registry.example.org/x/y:1"));
        assert!(names_registry("localhost/demo"));
    }

    #[test]
    fn pull_policy_defaults_like_the_apiserver() {
        let c = |image: &str| Container {
            image: Some(image.into()),
            ..Default::default()
        };
        assert_eq!(pull_policy(&c("busybox")), "Always");
        assert_eq!(pull_policy(&c("busybox:latest")), "Always");
        assert_eq!(pull_policy(&c("demo-web:v1")), "IfNotPresent");
        assert_eq!(pull_policy(&c("localhost:5000/demo")), "Always");
    }

    #[test]
    fn log_paths_follow_var_log_pods() {
        let pod = Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            log_path(std::path::Path::new("/k"), &pod, "app", 2),
            PathBuf::from("/k/logs/default_web_u1/app/2.log")
        );
    }
}
