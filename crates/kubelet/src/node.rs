//! The Node object of this kubelet: registration (labels, addresses, capacity, nodeInfo), the
//! Lease in kube-node-lease renewed every 10 s, and NodeStatus with its conditions written on
//! change (and at least every minute).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference, Time};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

/// The version the kubelet reports (the API level it implements).
pub const KUBELET_VERSION: &str = "v1.33.0-mini";

/// Facts about this machine reported in the Node.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Node name.
    pub name: String,
    /// Node IP.
    pub ip: Ipv4Addr,
    /// Kubelet API port.
    pub port: u16,
    /// cpu, memory, pods, ephemeral-storage.
    pub capacity: BTreeMap<String, String>,
    /// What pods may use: capacity minus the kube and system reservations.
    pub allocatable: BTreeMap<String, String>,
    /// Kernel release.
    pub kernel: String,
    /// PRETTY_NAME of os-release.
    pub os_image: String,
    /// machine-id.
    pub machine_id: String,
    /// boot_id.
    pub boot_id: String,
    /// `v2`, `hybrid` or `v1`.
    pub cgroup_mode: String,
}

fn read_trim(p: &str) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Reads the machine's facts; `root_dir` is where ephemeral storage is measured.
pub fn machine(name: &str, ip: Ipv4Addr, port: u16, root_dir: &Path, max_pods: u32) -> Machine {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_kib: u64 = read_trim("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let storage = nix::sys::statvfs::statvfs(root_dir)
        .map(|s| s.blocks() * s.fragment_size())
        .unwrap_or(0);
    let os_image = read_trim("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into());
    let cgroup_mode = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2"
    } else if Path::new("/sys/fs/cgroup/unified").exists() {
        "hybrid"
    } else {
        "v1"
    };
    let mut capacity = BTreeMap::new();
    capacity.insert("cpu".to_string(), cpus.to_string());
    capacity.insert("memory".to_string(), format!("{mem_kib}Ki"));
    capacity.insert("pods".to_string(), max_pods.to_string());
    capacity.insert(
        "ephemeral-storage".to_string(),
        format!("{}Ki", storage / 1024),
    );
    Machine {
        name: name.to_string(),
        ip,
        port,
        allocatable: capacity.clone(),
        capacity,
        kernel: read_trim("/proc/sys/kernel/osrelease"),
        os_image,
        machine_id: read_trim("/etc/machine-id"),
        boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
        cgroup_mode: cgroup_mode.to_string(),
    }
}

/// The pressure signals behind the node conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pressure {
    /// MemAvailable below 100Mi (upstream's default hard eviction threshold).
    pub memory: bool,
    /// Less than 10% free on the kubelet's filesystem.
    pub disk: bool,
    /// More than 90% of pid_max in use.
    pub pid: bool,
}

/// Measures the pressure signals.
pub fn pressure(root_dir: &Path) -> Pressure {
    let avail_kib: u64 = read_trim("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    let disk = nix::sys::statvfs::statvfs(root_dir)
        .map(|s| (s.blocks_available() as f64) < 0.10 * s.blocks() as f64)
        .unwrap_or(false);
    let pid_max: f64 = read_trim("/proc/sys/kernel/pid_max")
        .parse()
        .unwrap_or(4194304.0);
    let pids = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .count()
        })
        .unwrap_or(0) as f64;
    Pressure {
        memory: avail_kib < 100 * 1024,
        disk,
        pid: pids > 0.9 * pid_max,
    }
}

fn quantities(m: &BTreeMap<String, String>) -> BTreeMap<String, Quantity> {
    m.iter()
        .map(|(k, v)| (k.clone(), Quantity(v.clone())))
        .collect()
}

/// The Node object registered at start.
pub fn node_object(m: &Machine) -> Node {
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), m.name.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), "amd64".to_string()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), "amd64".to_string()),
    ]);
    Node {
        metadata: ObjectMeta {
            name: Some(m.name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "node.alpha.kubernetes.io/ttl".to_string(),
                "0".to_string(),
            )])),
            ..Default::default()
        },
        spec: None,
        status: None,
    }
}

/// NodeStatus with `network_ready` deciding Ready (a node without its pod network cannot run
/// pods), keeping condition transition times that did not change.
pub fn node_status(
    m: &Machine,
    network_ready: bool,
    p: Pressure,
    old: &[NodeCondition],
    now: jiff::Timestamp,
) -> NodeStatus {
    let cond = |type_: &str, status: bool, reason: &str, message: &str| {
        let s = if status { "True" } else { "False" };
        let since = old
            .iter()
            .find(|c| c.type_ == type_ && c.status == s)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        NodeCondition {
            type_: type_.into(),
            status: s.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time: Some(since),
        }
    };
    let mut conditions = vec![
        if p.memory {
            cond(
                "MemoryPressure",
                true,
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            )
        } else {
            cond(
                "MemoryPressure",
                false,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            )
        },
        if p.disk {
            cond(
                "DiskPressure",
                true,
                "KubeletHasDiskPressure",
                "kubelet has disk pressure",
            )
        } else {
            cond(
                "DiskPressure",
                false,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            )
        },
        if p.pid {
            cond(
                "PIDPressure",
                true,
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available",
            )
        } else {
            cond(
                "PIDPressure",
                false,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            )
        },
    ];
    conditions.push(if network_ready {
        cond("Ready", true, "KubeletReady", "kubelet is posting ready status")
    } else {
        cond(
            "Ready",
            false,
            "KubeletNotReady",
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:the node has no podCIDR yet",
        )
    });
    NodeStatus {
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: m.ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: m.name.clone(),
            },
        ]),
        capacity: Some(quantities(&m.capacity)),
        allocatable: Some(quantities(&m.allocatable)),
        conditions: Some(conditions),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: m.port as i32,
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            boot_id: m.boot_id.clone(),
            container_runtime_version: format!(
                "minirun://{} (cgroup {})",
                env!("CARGO_PKG_VERSION"),
                m.cgroup_mode
            ),
            kernel_version: m.kernel.clone(),
            kube_proxy_version: KUBELET_VERSION.into(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: m.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: m.os_image.clone(),
            system_uuid: m.machine_id.clone(),
            swap: None,
        }),
        ..Default::default()
    }
}

/// Creates the Node, or takes over an existing one of the same name.
pub async fn register(client: &Client, m: &Machine) -> Result<Node, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let node = node_object(m);
    match api.create(&PostParams::default(), &node).await {
        Ok(n) => Ok(n),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let patch = serde_json::json!({"metadata": {"labels": node.metadata.labels}});
            api.patch(&m.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
        Err(e) => Err(e),
    }
}

/// Writes the status (merge patch of the whole status).
pub async fn update_status(
    client: &Client,
    name: &str,
    status: &NodeStatus,
) -> Result<Node, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
}

/// Renews (or creates) the node's Lease, owned by the Node so it goes with it.
pub async fn renew_lease(
    client: &Client,
    node: &Node,
    duration: Duration,
) -> Result<(), kube::Error> {
    let name = node.name_any();
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let spec = LeaseSpec {
        holder_identity: Some(name.clone()),
        lease_duration_seconds: Some(duration.as_secs() as i32),
        renew_time: Some(MicroTime(jiff::Timestamp::now())),
        ..Default::default()
    };
    match api.get_opt(&name).await? {
        Some(mut lease) => {
            let mut s = lease.spec.take().unwrap_or_default();
            s.holder_identity = spec.holder_identity;
            s.lease_duration_seconds = spec.lease_duration_seconds;
            s.renew_time = spec.renew_time;
            lease.spec = Some(s);
            api.replace(&name, &PostParams::default(), &lease).await?;
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some("kube-node-lease".into()),
                    owner_references: Some(vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Node".into(),
                        name: name.clone(),
                        uid: node.uid().unwrap_or_default(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                spec: Some(spec),
            };
            api.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> Machine {
        Machine {
            name: "n1".into(),
            ip: "192.168.77.10".parse().unwrap(),
            port: 10250,
            capacity: BTreeMap::from([
                ("cpu".to_string(), "2".to_string()),
                ("pods".to_string(), "110".to_string()),
            ]),
            allocatable: BTreeMap::from([
                ("cpu".to_string(), "1900m".to_string()),
                ("pods".to_string(), "110".to_string()),
            ]),
            kernel: "6.1".into(),
            os_image: "Debian".into(),
            machine_id: "m".into(),
            boot_id: "b".into(),
            cgroup_mode: "hybrid".into(),
        }
    }

    #[test]
    fn status_reports_readiness_and_endpoints() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let s = node_status(&m(), false, Pressure::default(), &[], now);
        let ready = s
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "False");
        let s2 = node_status(
            &m(),
            true,
            Pressure::default(),
            s.conditions.as_ref().unwrap(),
            now,
        );
        let ready = s2
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(
            s2.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port,
            10250
        );
        assert_eq!(s2.addresses.unwrap()[0].address, "192.168.77.10");
        assert_eq!(s2.capacity.unwrap()["pods"].0, "110");
        assert_eq!(s2.allocatable.unwrap()["cpu"].0, "1900m");
        // MemoryPressure stayed False: its transition time is kept.
        let later = now + jiff::SignedDuration::from_secs(60);
        let s3 = node_status(
            &m(),
            true,
            Pressure::default(),
            &s.conditions.clone().unwrap(),
            later,
        );
        let mp = |s: &NodeStatus| {
            s.conditions.as_ref().unwrap()[0]
                .last_transition_time
                .clone()
        };
        assert_eq!(mp(&s3), mp(&s));
    }

    #[test]
    fn node_labels() {
        let n = node_object(&m());
        let l = n.metadata.labels.unwrap();
        assert_eq!(l["kubernetes.io/hostname"], "n1");
        assert_eq!(l["kubernetes.io/os"], "linux");
    }
}
