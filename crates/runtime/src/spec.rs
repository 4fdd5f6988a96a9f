//! Container and sandbox configuration (the JSON the kubelet hands to `minirun`) and its
//! translation into an OCI runtime [`Spec`], the description every container is built from
//! (stored as `config.json`, so it can be exported as an OCI bundle).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cgroup::Resources;
use crate::image::config::ResolvedProcess;

/// containerd's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The OCI default masked paths.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The OCI default read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// DNS settings for a pod's /etc/resolv.conf.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DnsConfig {
    /// Nameservers.
    #[serde(default)]
    pub servers: Vec<String>,
    /// Search domains.
    #[serde(default)]
    pub searches: Vec<String>,
    /// Options (e.g. `ndots:5`).
    #[serde(default)]
    pub options: Vec<String>,
}

/// A pod sandbox, as the kubelet asks for it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SandboxConfig {
    /// Pod name; the hostname unless `hostname` is set.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod uid.
    pub uid: String,
    /// Sandbox id to use (generated when empty).
    pub id: Option<String>,
    /// Hostname override.
    pub hostname: Option<String>,
    /// Use the host's network namespace.
    pub host_network: bool,
    /// Use the host's IPC namespace.
    pub host_ipc: bool,
    /// Use the host's PID namespace.
    pub host_pid: bool,
    /// shareProcessNamespace: containers join the pause process's PID namespace.
    pub share_pid: bool,
    /// DNS for /etc/resolv.conf: exactly these settings (an empty file when they are empty), or a
    /// copy of the host's resolv.conf when None (containerd's rule for CRI's DNSConfig).
    pub dns: Option<DnsConfig>,
    /// Extra /etc/hosts lines (`IP name...`).
    pub extra_hosts: Vec<String>,
    /// Pause image (default `pause:latest`).
    pub pause_image: Option<String>,
    /// cgroup (relative to every hierarchy's root) the pod's cgroup is made under, as CRI's
    /// cgroup_parent (the kubelet's QoS tree); default: the runtime's `--cgroup-root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    /// Pod-level limits on the pod cgroup.
    pub resources: Resources,
    /// A user namespace for the pod (`hostUsers: false`): container ids 0..size are host ids
    /// host_id.. (never host root); None shares the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_namespace: Option<crate::userns::IdMapping>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

/// An environment variable.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EnvVar {
    /// Name.
    pub name: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

/// A bind mount (a volume) into the container.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MountConfig {
    /// Host path.
    pub host_path: PathBuf,
    /// Path in the container.
    pub container_path: PathBuf,
    /// Read-only.
    #[serde(default)]
    pub readonly: bool,
    /// A path below `host_path` to mount instead of it (the volume mount's subPath). The init
    /// resolves it beneath `host_path` and refuses it when it leaves (through a symlink the
    /// pod planted, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<PathBuf>,
}

/// securityContext fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SecurityConfig {
    /// privileged: all capabilities, no masked or read-only paths.
    pub privileged: bool,
    /// capabilities.add (`NET_ADMIN` or `CAP_NET_ADMIN`, `ALL`).
    pub capabilities_add: Vec<String>,
    /// capabilities.drop.
    pub capabilities_drop: Vec<String>,
    /// runAsUser.
    pub run_as_user: Option<u32>,
    /// runAsGroup.
    pub run_as_group: Option<u32>,
    /// supplementalGroups.
    pub supplemental_groups: Vec<u32>,
    /// readOnlyRootFilesystem.
    pub read_only_root_filesystem: bool,
    /// allowPrivilegeEscalation (default true in Kubernetes; no_new_privs when false).
    pub allow_privilege_escalation: Option<bool>,
    /// seccompProfile (privileged containers always run unconfined, as in Kubernetes).
    pub seccomp: SeccompMode,
}

/// A container's seccomp profile, as Kubernetes' seccompProfile.type names them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SeccompMode {
    /// No filter (Kubernetes' default unless the kubelet's --seccomp-default is set).
    #[default]
    Unconfined,
    /// The runtime's default profile (`crate::seccomp::default_profile`).
    RuntimeDefault,
}

/// An rlimit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rlimit {
    /// `RLIMIT_NOFILE` etc.
    #[serde(rename = "type")]
    pub typ: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// A container, as the kubelet asks for it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ContainerConfig {
    /// Container name (unique in its pod).
    pub name: String,
    /// Container id to use (generated when empty).
    pub id: Option<String>,
    /// Image reference (`busybox:latest`) or id.
    pub image: String,
    /// command: replaces the image Entrypoint.
    pub command: Vec<String>,
    /// args: replace the image Cmd.
    pub args: Vec<String>,
    /// Environment, merged over the image's.
    pub env: Vec<EnvVar>,
    /// workingDir.
    pub working_dir: Option<String>,
    /// Volumes.
    pub mounts: Vec<MountConfig>,
    /// Limits and requests.
    pub resources: Resources,
    /// securityContext.
    pub security: SecurityConfig,
    /// rlimits (default: RLIMIT_NOFILE 1048576, capped at minirun's own hard limit).
    pub rlimits: Vec<Rlimit>,
    /// Log file (default: `<container dir>/container.log`).
    pub log_path: Option<PathBuf>,
    /// Log rotation size in bytes (default 10 MiB).
    pub log_max_size: Option<u64>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// The container's stdin stays open (`stdin: true` in the pod spec): it reads a FIFO,
    /// `<container dir>/stdin`, that `attach` writes to. Otherwise stdin is /dev/null.
    pub stdin: bool,
    /// With `stdin`: the container reads end-of-file once the first attach has ended
    /// (`stdinOnce`; [`crate::runtime::Runtime::close_stdin`]).
    pub stdin_once: bool,
    /// The container's stdio is a terminal (`tty: true` in the pod spec): the pod monitor
    /// holds the pty's master, logs what it reads as stdout, feeds it the stdin FIFO, and
    /// resizes it ([`crate::runtime::Runtime::resize`]).
    pub tty: bool,
    /// Join the PID namespace of this running container of the same sandbox instead of a new
    /// one (an ephemeral container's `targetContainerName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace_of: Option<String>,
}

/// How a container gets one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ns {
    /// A new namespace.
    New,
    /// Join the namespace at this path (`/proc/<pid>/ns/<x>`).
    Join(PathBuf),
    /// Stay in the host's.
    Host,
}

/// The namespaces of a container (mount is always new).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces {
    /// Network.
    pub net: Ns,
    /// IPC.
    pub ipc: Ns,
    /// UTS.
    pub uts: Ns,
    /// PID.
    pub pid: Ns,
    /// User: the host's, or the pod's (`hostUsers: false`, joined after every mount).
    #[serde(default = "host_ns")]
    pub user: Ns,
}

fn host_ns() -> Ns {
    Ns::Host
}

/// Normalises a capability name to `CAP_X`.
pub fn cap_name(c: &str) -> String {
    let u = c.to_ascii_uppercase();
    if u.starts_with("CAP_") {
        u
    } else {
        format!("CAP_{u}")
    }
}

/// The effective capability set for a security context.
pub fn capabilities(sec: &SecurityConfig) -> Vec<String> {
    let all: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let mut set: Vec<String> = if sec.privileged {
        all.clone()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    // containerd's order: ALL first (add, then drop), then the individual adds and drops.
    if sec
        .capabilities_add
        .iter()
        .any(|a| a.eq_ignore_ascii_case("ALL"))
    {
        set = all.clone();
    }
    if sec
        .capabilities_drop
        .iter()
        .any(|d| d.eq_ignore_ascii_case("ALL"))
    {
        set.clear();
    }
    for a in sec
        .capabilities_add
        .iter()
        .filter(|a| !a.eq_ignore_ascii_case("ALL"))
    {
        let n = cap_name(a);
        if !set.contains(&n) {
            set.push(n);
        }
    }
    for d in sec
        .capabilities_drop
        .iter()
        .filter(|d| !d.eq_ignore_ascii_case("ALL"))
    {
        let n = cap_name(d);
        set.retain(|c| *c != n);
    }
    // Only names the oci-spec and caps crates both know.
    set.retain(|c| c.parse::<caps::Capability>().is_ok());
    set.sort();
    set
}

/// Everything needed to build one container's spec.
pub struct SpecInput<'a> {
    /// The resolved process.
    pub process: &'a ResolvedProcess,
    /// uid, gid.
    pub user: (u32, u32),
    /// The container config.
    pub config: &'a ContainerConfig,
    /// Where the overlay root is mounted.
    pub rootfs: &'a Path,
    /// Hostname (set when the UTS namespace is new).
    pub hostname: Option<&'a str>,
    /// Namespaces.
    pub namespaces: &'a Namespaces,
    /// Pod files bind-mounted to /etc/hosts, /etc/hostname, /etc/resolv.conf.
    pub etc_files: &'a [(PathBuf, &'a str)],
    /// cgroup path (relative).
    pub cgroup: &'a str,
    /// Mount the container's cgroup2 view at /sys/fs/cgroup (pure cgroup v2 hosts; on hybrid
    /// and v1 hosts containers get no cgroup filesystem).
    pub cgroup2_mount: bool,
}

/// Builds the OCI runtime spec.
pub fn build_spec(i: &SpecInput<'_>) -> Result<Spec, serde_json::Error> {
    let sec = &i.config.security;
    let caps = capabilities(sec);
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if sec.privileged { "rw" } else { "ro" }]}),
    ];
    for (src, dst) in i.etc_files {
        mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rprivate", "rw"]}));
    }
    for m in &i.config.mounts {
        let mut options = vec![
            "rbind".to_string(),
            "rprivate".to_string(),
            if m.readonly { "ro" } else { "rw" }.to_string(),
        ];
        if let Some(sub) = &m.sub_path {
            options.push(format!(
                "{}{}",
                crate::mounts::SUBPATH_OPTION,
                sub.display()
            ));
        }
        mounts.push(json!({
            "destination": m.container_path,
            "type": "bind",
            "source": m.host_path,
            "options": options,
        }));
    }
    if i.cgroup2_mount {
        mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if sec.privileged { "rw" } else { "ro" }]}));
    }
    // A cgroup namespace of its own, always (containerd's default on cgroup v2).
    let mut namespaces = vec![json!({"type": "mount"}), json!({"type": "cgroup"})];
    for (name, ns) in [
        ("network", &i.namespaces.net),
        ("ipc", &i.namespaces.ipc),
        ("uts", &i.namespaces.uts),
        ("pid", &i.namespaces.pid),
    ] {
        match ns {
            Ns::New => namespaces.push(json!({"type": name})),
            Ns::Join(p) => namespaces.push(json!({"type": name, "path": p})),
            Ns::Host => {}
        }
    }
    // A pod user namespace is always joined (the pause process holds it).
    if let Ns::Join(p) = &i.namespaces.user {
        namespaces.push(json!({"type": "user", "path": p}));
    }
    let mut rlimits: Vec<serde_json::Value> = i
        .config
        .rlimits
        .iter()
        .map(|r| json!({"type": r.typ, "soft": r.soft, "hard": r.hard}))
        .collect();
    if rlimits.is_empty() {
        // 1048576 like containerd, but never above what this process may set.
        let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(_, h)| h)
            .unwrap_or(1048576)
            .min(1048576);
        rlimits.push(json!({"type": "RLIMIT_NOFILE", "soft": hard, "hard": hard}));
    }
    let mut resources = json!({});
    let r = &i.config.resources;
    if let Some(m) = r.memory_limit {
        resources["memory"] = json!({"limit": m});
    }
    if let Some(c) = r.cpu_limit_millis {
        resources["cpu"] = json!({"quota": c * crate::cgroup::CPU_PERIOD_US / 1000, "period": crate::cgroup::CPU_PERIOD_US});
    }
    if let Some(c) = r.cpu_request_millis {
        resources["cpu"]["shares"] = json!(crate::cgroup::millis_to_shares(c));
    }
    if let Some(p) = r.pids_limit {
        resources["pids"] = json!({"limit": p});
    }
    let no_new_privs = sec.allow_privilege_escalation == Some(false);
    let mut gids = sec.supplemental_groups.clone();
    gids.sort();
    gids.dedup();
    let v = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": i.config.tty,
            "user": {"uid": i.user.0, "gid": i.user.1, "additionalGids": gids},
            "args": i.process.args,
            "env": i.process.env,
            "cwd": i.process.cwd,
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []
            },
            "rlimits": rlimits,
            "noNewPrivileges": no_new_privs,
        },
        "root": {"path": i.rootfs, "readonly": sec.read_only_root_filesystem},
        "hostname": i.hostname,
        "mounts": mounts,
        "annotations": i.config.annotations,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": i.cgroup,
            "resources": resources,
            "maskedPaths": if sec.privileged { vec![] } else { MASKED_PATHS.to_vec() },
            "readonlyPaths": if sec.privileged { vec![] } else { READONLY_PATHS.to_vec() },
        },
    });
    let mut spec: Spec = serde_json::from_value(v)?;
    if sec.seccomp == SeccompMode::RuntimeDefault && !sec.privileged {
        if let Some(linux) = spec.linux_mut() {
            linux.set_seccomp(Some(crate::seccomp::default_profile(&caps)));
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_add_drop_privileged() {
        let mut s = SecurityConfig::default();
        assert_eq!(capabilities(&s).len(), DEFAULT_CAPS.len());
        s.capabilities_add = vec!["NET_ADMIN".into()];
        s.capabilities_drop = vec!["cap_kill".into()];
        let c = capabilities(&s);
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_KILL".to_string()));
        s.capabilities_drop = vec!["ALL".into()];
        assert_eq!(capabilities(&s), vec!["CAP_NET_ADMIN".to_string()]);
        let p = SecurityConfig {
            privileged: true,
            ..Default::default()
        };
        assert!(capabilities(&p).contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn spec_round_trips() {
        let proc_ = ResolvedProcess {
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: None,
        };
        let cfg = ContainerConfig {
            name: "c".into(),
            resources: Resources {
                memory_limit: Some(1 << 20),
                cpu_limit_millis: Some(200),
                ..Default::default()
            },
            mounts: vec![MountConfig {
                host_path: "/h".into(),
                container_path: "/data".into(),
                readonly: true,
                sub_path: None,
            }],
            ..Default::default()
        };
        let ns = Namespaces {
            net: Ns::Join("/proc/1/ns/net".into()),
            ipc: Ns::New,
            uts: Ns::Host,
            pid: Ns::New,
            user: Ns::Host,
        };
        let spec = build_spec(&SpecInput {
            process: &proc_,
            user: (0, 0),
            config: &cfg,
            rootfs: Path::new("/r"),
            hostname: Some("pod"),
            namespaces: &ns,
            etc_files: &[],
            cgroup: "minicluster/p/c",
            cgroup2_mount: true,
        })
        .unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 20000);
        assert_eq!(v["linux"]["namespaces"][1]["type"], "cgroup");
        assert_eq!(v["linux"]["namespaces"][2]["path"], "/proc/1/ns/net");
        assert_eq!(v["linux"]["namespaces"].as_array().unwrap().len(), 5);
        let mounts = v["mounts"].as_array().unwrap();
        let data = mounts.iter().find(|m| m["destination"] == "/data").unwrap();
        assert_eq!(data["options"][2], "ro");
        let cg = mounts.iter().find(|m| m["type"] == "cgroup2").unwrap();
        assert_eq!(cg["destination"], "/sys/fs/cgroup");
        assert_eq!(cg["options"][4], "ro");
        assert_eq!(
            v["linux"]["maskedPaths"].as_array().unwrap().len(),
            MASKED_PATHS.len()
        );
    }
}
