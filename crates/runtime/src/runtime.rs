//! The runtime's operations: sandboxes, containers, exec, state on disk.
//!
//! Everything is on disk under the root dir, so any later `minirun` process finds it again:
//!
//! ```text
//! <root>/images/…                          the image store (see image::store)
//! <root>/pods/<sandbox>/sandbox.json        the sandbox config and record
//! <root>/pods/<sandbox>/{hosts,hostname,resolv.conf}
//! <root>/pods/<sandbox>/monitor.sock        the pod monitor's socket (monitor.pid: its pid)
//! <root>/pods/<sandbox>/containers/<id>/    one dir per container; the pause container's id is
//!     meta.json  config.json (OCI spec)     the sandbox id
//!     state.json (pid, monitor pid)  started  exit.json (code, reason, finish time)
//!     exec.fifo  rootfs/ upper/ work/  container.log
//! ```
//!
//! Process model: `create_sandbox` double-forks the pod monitor (the shim role, see
//! [`crate::monitor`]; setsid, so it outlives its creator). Every container of the pod, the
//! pause container first, is created by asking it over its socket: it forks the init into the
//! container's PID namespace and cgroups, relays stdout/stderr into the CRI log, reaps the init
//! and records the exit. The init joins the pod's namespaces, builds its root, and blocks on
//! `exec.fifo` until `start` opens it. All mounts live in the container's own mount namespace,
//! so they vanish with it.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroup::{Cgroup, CgroupError, Hierarchy, Stats};
use crate::image::{ImageError, ImageStore};
use crate::init;
use crate::monitor;
use crate::mounts::{self, Overlay};
use crate::process::{self, Forked};
use crate::spec::{self, ContainerConfig, Namespaces, Ns, SandboxConfig, SecurityConfig};
use crate::sys::{self, LinuxSyscall, Syscall};
use crate::util::{now_nanos, rfc3339_nanos, write_atomic, write_readable};

/// Errors of runtime operations.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// I/O on a state path.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Image store error.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// cgroup error.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// Container setup failed in the init.
    #[error("container {id}: {msg}")]
    Init {
        /// Container id.
        id: String,
        /// What the init reported.
        msg: String,
    },
    /// A system call failed.
    #[error("{op}: {source}")]
    Nix {
        /// Operation.
        op: String,
        /// Cause.
        #[source]
        source: nix::Error,
    },
    /// JSON state could not be read or built.
    #[error("{what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// No such container or sandbox.
    #[error("{kind} {id} not found")]
    NotFound {
        /// `container` or `sandbox`.
        kind: &'static str,
        /// The id.
        id: String,
    },
    /// The operation does not fit the current state.
    #[error("container {id} is {status}: {what}")]
    State {
        /// Container id.
        id: String,
        /// Its status.
        status: String,
        /// What was attempted.
        what: &'static str,
    },
    /// An id or name is already used.
    #[error("{0} already exists")]
    Exists(String),
}

type Result<T> = std::result::Result<T, RuntimeError>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn nix_err(op: impl Into<String>) -> impl FnOnce(nix::Error) -> RuntimeError {
    let op = op.into();
    move |source| RuntimeError::Nix { op, source }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T> {
    let b = fs::read(p).map_err(io_err(p))?;
    serde_json::from_slice(&b).map_err(|source| RuntimeError::Json {
        what: p.display().to_string(),
        source,
    })
}

pub(crate) fn write_json<T: Serialize>(p: &Path, v: &T) -> Result<()> {
    let b = serde_json::to_vec_pretty(v).map_err(|source| RuntimeError::Json {
        what: p.display().to_string(),
        source,
    })?;
    write_atomic(p, &b).map_err(io_err(p))
}

/// What `create` records about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerMeta {
    /// Container id.
    pub id: String,
    /// Container name.
    pub name: String,
    /// Sandbox id.
    pub sandbox_id: String,
    /// The image reference asked for.
    pub image: String,
    /// The image id.
    pub image_id: String,
    /// cgroup path relative to each hierarchy.
    pub cgroup: String,
    /// Log file.
    pub log_path: PathBuf,
    /// Log rotation size.
    pub log_max_size: u64,
    /// The overlay root.
    pub overlay: Overlay,
    /// PID namespace handling (applied by the monitor).
    pub pid_ns: Ns,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Whether this is the sandbox's pause container.
    pub pause: bool,
    /// The config it was created from.
    pub config: ContainerConfig,
}

/// Written by the monitor once the init is ready.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorState {
    /// Host pid of the container init.
    pub pid: i32,
    /// Its start time (to tell pid reuse apart).
    pub pid_start: Option<u64>,
    /// The monitor's pid.
    pub monitor_pid: i32,
}

/// Written by the monitor when the container exits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exit code (128+signal when killed).
    pub exit_code: i32,
    /// Killing signal.
    pub signal: Option<i32>,
    /// `Completed`, `Error` or `OOMKilled`.
    pub reason: String,
    /// Finish time (RFC 3339).
    pub finished_at: String,
}

/// The state of a container as `minirun state` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    /// Container id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Sandbox id.
    pub sandbox_id: String,
    /// `created`, `running`, `exited` or `unknown`.
    pub status: String,
    /// Host pid of the init (0 when not running).
    pub pid: i32,
    /// Exit code when exited.
    pub exit_code: Option<i32>,
    /// Exit reason when exited.
    pub reason: Option<String>,
    /// Created.
    pub created_at: String,
    /// Started.
    pub started_at: Option<String>,
    /// Finished.
    pub finished_at: Option<String>,
    /// Image reference.
    pub image: String,
    /// Image id.
    pub image_id: String,
    /// Log file.
    pub log_path: PathBuf,
    /// The FIFO the container reads as stdin, when it keeps stdin open (attach writes here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_path: Option<PathBuf>,
    /// Stdin ends after the first attach (`close_stdin`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin_once: bool,
    /// Its stdio is a terminal (resizable with `resize`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// A sandbox record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    /// Sandbox id (= the pause container's id).
    pub id: String,
    /// The config.
    pub config: SandboxConfig,
    /// Created.
    pub created_at: String,
    /// cgroup of the pod.
    pub cgroup: String,
}

/// A sandbox as `minirun pods` / `sandbox state` print it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxState {
    /// Sandbox id.
    pub id: String,
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod uid.
    pub uid: String,
    /// `ready` while the pause process runs, else `notready`.
    pub status: String,
    /// Host pid of the pause process.
    pub pid: i32,
    /// Network namespace path (`/proc/<pid>/ns/net`), for the network plugin.
    pub netns: Option<String>,
    /// Created.
    pub created_at: String,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// The runtime rooted at a state directory.
pub struct Runtime {
    root: PathBuf,
    /// The image store (`<root>/images`).
    pub images: ImageStore,
    cgroups: Hierarchy,
    cgroup_root: String,
    sys: LinuxSyscall,
}

/// Default state root.
pub const DEFAULT_ROOT: &str = "/var/lib/minicluster/runtime";

/// The pod dir of a container dir (`<pod>/containers/<id>`).
fn pod_of(container_dir: &Path) -> &Path {
    container_dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(container_dir)
}

/// The FIFO in a container's directory that an open stdin reads.
pub const STDIN_FIFO: &str = "stdin";

impl Runtime {
    /// Opens the runtime at `root`; cgroups go under `cgroup_root` (e.g. `minicluster`) in
    /// every hierarchy.
    pub fn open(root: impl Into<PathBuf>, cgroup_root: &str) -> Result<Self> {
        let root = root.into();
        let pods = root.join("pods");
        fs::create_dir_all(&pods).map_err(io_err(&pods))?;
        // The runtime's state (records, layers, FIFOs, logs) is root's alone.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).map_err(io_err(&root))?;
        Ok(Self {
            images: ImageStore::open(root.join("images"), Box::new(LinuxSyscall))?,
            cgroups: Hierarchy::detect()?,
            cgroup_root: cgroup_root.trim_matches('/').to_string(),
            root,
            sys: LinuxSyscall,
        })
    }

    /// The detected cgroup layout.
    pub fn cgroups(&self) -> &Hierarchy {
        &self.cgroups
    }

    fn pod_dir(&self, sid: &str) -> PathBuf {
        self.root.join("pods").join(sid)
    }

    /// The syscalls (the pod monitor forks and enters namespaces through them).
    pub(crate) fn sys(&self) -> &LinuxSyscall {
        &self.sys
    }

    fn find_container_dir(&self, id: &str) -> Result<PathBuf> {
        let pods = self.root.join("pods");
        let mut found = Vec::new();
        for p in fs::read_dir(&pods).map_err(io_err(&pods))?.flatten() {
            let cdir = p.path().join("containers");
            let exact = cdir.join(id);
            if exact.join("meta.json").exists() {
                return Ok(exact);
            }
            if id.len() >= 4 {
                for c in fs::read_dir(&cdir).into_iter().flatten().flatten() {
                    if c.file_name().to_string_lossy().starts_with(id) {
                        found.push(c.path());
                    }
                }
            }
        }
        if found.len() == 1 {
            return Ok(found.remove(0));
        }
        Err(RuntimeError::NotFound {
            kind: "container",
            id: id.to_string(),
        })
    }

    /// A container's recorded metadata.
    pub fn meta(&self, id: &str) -> Result<ContainerMeta> {
        read_json(&self.find_container_dir(id)?.join("meta.json"))
    }

    pub(crate) fn cgroup(&self, rel: &str) -> Cgroup {
        self.cgroups.cgroup(rel)
    }

    // ---------------------------------------------------------------- sandboxes

    /// Creates and starts a sandbox: pod dir, /etc files, pod cgroup, the pause container.
    pub fn create_sandbox(&self, cfg: &SandboxConfig) -> Result<SandboxState> {
        let id = cfg.id.clone().unwrap_or_else(crate::util::random_id);
        let dir = self.pod_dir(&id);
        if dir.exists() {
            return Err(RuntimeError::Exists(format!("sandbox {id}")));
        }
        fs::create_dir_all(dir.join("containers")).map_err(io_err(&dir))?;
        let res = self.create_sandbox_in(&id, &dir, cfg);
        if res.is_err() {
            let _ = self.remove_sandbox(&id);
            let _ = fs::remove_dir_all(&dir);
        }
        res
    }

    fn create_sandbox_in(&self, id: &str, dir: &Path, cfg: &SandboxConfig) -> Result<SandboxState> {
        let hostname = cfg
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| cfg.name.clone());
        let hostname: String = hostname.chars().take(63).collect();
        // Bind-mounted into every container, read by whatever user it runs as.
        let w = |name: &str, text: String| -> Result<()> {
            let p = dir.join(name);
            write_readable(&p, text.as_bytes()).map_err(io_err(&p))
        };
        w("hostname", format!("{hostname}\n"))?;
        let mut hosts = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        );
        for l in &cfg.extra_hosts {
            hosts.push_str(l);
            hosts.push('\n');
        }
        w("hosts", hosts)?;
        let resolv = match &cfg.dns {
            None => fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            Some(dns) => {
                let mut s = String::new();
                if !dns.searches.is_empty() {
                    s += &format!("search {}\n", dns.searches.join(" "));
                }
                for n in &dns.servers {
                    s += &format!("nameserver {n}\n");
                }
                if !dns.options.is_empty() {
                    s += &format!("options {}\n", dns.options.join(" "));
                }
                s
            }
        };
        w("resolv.conf", resolv)?;
        let parent = cfg
            .cgroup_parent
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty() && !p.split('/').any(|c| c == ".." || c == "."))
            .unwrap_or(&self.cgroup_root);
        let pod_cg = format!("{parent}/{id}");
        let cg = self.cgroup(&pod_cg);
        cg.create()?;
        cg.apply(&cfg.resources)?;
        let rec = SandboxRecord {
            id: id.to_string(),
            config: cfg.clone(),
            created_at: rfc3339_nanos(now_nanos()),
            cgroup: pod_cg,
        };
        write_json(&dir.join("sandbox.json"), &rec)?;
        monitor::spawn(self, dir)?;
        let pause = ContainerConfig {
            name: "POD".into(),
            id: Some(id.to_string()),
            image: cfg
                .pause_image
                .clone()
                .unwrap_or_else(|| "pause:latest".into()),
            security: SecurityConfig {
                read_only_root_filesystem: true,
                capabilities_drop: vec!["ALL".into()],
                ..Default::default()
            },
            labels: cfg.labels.clone(),
            annotations: cfg.annotations.clone(),
            ..Default::default()
        };
        let Some(map) = cfg.user_namespace else {
            let ns = Namespaces {
                net: if cfg.host_network { Ns::Host } else { Ns::New },
                ipc: if cfg.host_ipc { Ns::Host } else { Ns::New },
                uts: if cfg.host_network { Ns::Host } else { Ns::New },
                pid: if cfg.host_pid { Ns::Host } else { Ns::New },
                user: Ns::Host,
            };
            self.create_container_with(id, &pause, ns, Some(&hostname), true)?;
            self.start(id)?;
            return self.sandbox_state(id);
        };
        // hostUsers: false. The pod's namespaces are made inside its user namespace by a
        // holder process and kept by the pause process once it has joined them.
        if cfg.host_network || cfg.host_ipc || cfg.host_pid {
            return Err(RuntimeError::Init {
                id: id.to_string(),
                msg: "a pod user namespace needs the pod's own network, IPC and PID namespaces"
                    .into(),
            });
        }
        let holder =
            crate::userns::NamespaceHolder::create(&self.sys, map, &hostname).map_err(|e| {
                RuntimeError::Init {
                    id: id.to_string(),
                    msg: e.to_string(),
                }
            })?;
        let ns = Namespaces {
            net: Ns::Join(holder.ns_path("net")),
            ipc: Ns::Join(holder.ns_path("ipc")),
            uts: Ns::Join(holder.ns_path("uts")),
            pid: Ns::New,
            user: Ns::Join(holder.ns_path("user")),
        };
        self.create_container_with(id, &pause, ns, None, true)?;
        self.start(id)?;
        drop(holder);
        self.sandbox_state(id)
    }

    /// The pod cgroup of sandbox `sid` (its record's, or the default place).
    fn pod_cgroup(&self, sid: &str) -> String {
        self.sandbox(sid)
            .map(|r| r.cgroup)
            .unwrap_or_else(|_| format!("{}/{sid}", self.cgroup_root))
    }

    /// A sandbox's record.
    pub fn sandbox(&self, sid: &str) -> Result<SandboxRecord> {
        let p = self.pod_dir(sid).join("sandbox.json");
        if !p.exists() {
            return Err(RuntimeError::NotFound {
                kind: "sandbox",
                id: sid.to_string(),
            });
        }
        read_json(&p)
    }

    /// A sandbox's state.
    pub fn sandbox_state(&self, sid: &str) -> Result<SandboxState> {
        let rec = self.sandbox(sid)?;
        let pause = self.state(sid).ok();
        let running = pause.as_ref().is_some_and(|p| p.status == "running");
        let pid = pause.as_ref().map(|p| p.pid).unwrap_or(0);
        Ok(SandboxState {
            id: rec.id,
            name: rec.config.name.clone(),
            namespace: rec.config.namespace.clone(),
            uid: rec.config.uid.clone(),
            status: if running { "ready" } else { "notready" }.into(),
            pid,
            netns: (running && !rec.config.host_network).then(|| format!("/proc/{pid}/ns/net")),
            created_at: rec.created_at,
            labels: rec.config.labels,
            annotations: rec.config.annotations,
        })
    }

    /// All sandboxes.
    pub fn list_sandboxes(&self) -> Result<Vec<SandboxState>> {
        let pods = self.root.join("pods");
        let mut out = Vec::new();
        for p in fs::read_dir(&pods).map_err(io_err(&pods))?.flatten() {
            if let Ok(s) = self.sandbox_state(&p.file_name().to_string_lossy()) {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(out)
    }

    fn sandbox_containers(&self, sid: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.pod_dir(sid).join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n != sid)
            .collect();
        v.sort();
        v
    }

    /// Stops every container of the sandbox (with `grace`), then the pause process.
    pub fn stop_sandbox(&self, sid: &str, grace: Duration) -> Result<()> {
        self.sandbox(sid)?;
        for c in self.sandbox_containers(sid) {
            self.stop(&c, grace)?;
        }
        if self.find_container_dir(sid).is_ok() {
            self.stop(sid, Duration::from_secs(2))?;
        }
        Ok(())
    }

    /// Stops and removes a sandbox and all its containers, its cgroups and its directory.
    pub fn remove_sandbox(&self, sid: &str) -> Result<()> {
        let dir = self.pod_dir(sid);
        if !dir.exists() {
            return Err(RuntimeError::NotFound {
                kind: "sandbox",
                id: sid.to_string(),
            });
        }
        for c in self.sandbox_containers(sid) {
            self.remove(&c)?;
        }
        if self.find_container_dir(sid).is_ok() {
            self.remove(sid)?;
        }
        // The monitor exits by itself once the pause container is gone; tell it in case the
        // pause container never ran, and wait for it.
        monitor::ask_exit(&dir);
        if let Some(pid) = fs::read_to_string(dir.join(monitor::PID_FILE))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            let deadline = Instant::now() + Duration::from_secs(5);
            while process::alive(pid) && Instant::now() < deadline {
                sys::wait_gone(pid, Duration::from_millis(50));
            }
        }
        let pod_cg = self
            .sandbox(sid)
            .map(|r| r.cgroup)
            .unwrap_or_else(|_| format!("{}/{sid}", self.cgroup_root));
        let cg = self.cgroup(&pod_cg);
        cg.kill_all(&self.sys, Duration::from_secs(5))?;
        cg.remove()?;
        fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(())
    }

    // ---------------------------------------------------------------- containers

    /// Creates a container in a running sandbox (it waits in `created` until [`Self::start`]).
    pub fn create_container(&self, sid: &str, cfg: &ContainerConfig) -> Result<ContainerState> {
        let sb = self.sandbox(sid)?;
        let pause = self.state(sid)?;
        if pause.status != "running" {
            return Err(RuntimeError::State {
                id: sid.to_string(),
                status: pause.status,
                what: "sandbox not ready",
            });
        }
        let nsp = |n: &str| Ns::Join(PathBuf::from(format!("/proc/{}/ns/{n}", pause.pid)));
        let c = &sb.config;
        let ns = Namespaces {
            net: if c.host_network { Ns::Host } else { nsp("net") },
            ipc: if c.host_ipc { Ns::Host } else { nsp("ipc") },
            uts: if c.host_network { Ns::Host } else { nsp("uts") },
            pid: if c.host_pid {
                Ns::Host
            } else if c.share_pid {
                nsp("pid")
            } else if let Some(target) = &cfg.pid_namespace_of {
                // An ephemeral container aimed at another one (`kubectl debug --target`).
                let t = self.state(target)?;
                if t.status != "running" {
                    return Err(RuntimeError::State {
                        id: target.clone(),
                        status: t.status,
                        what: "target container not running",
                    });
                }
                Ns::Join(PathBuf::from(format!("/proc/{}/ns/pid", t.pid)))
            } else {
                Ns::New
            },
            user: if c.user_namespace.is_some() {
                nsp("user")
            } else {
                Ns::Host
            },
        };
        let id = self.create_container_with(sid, cfg, ns, None, false)?;
        self.state(&id)
    }

    fn create_container_with(
        &self,
        sid: &str,
        cfg: &ContainerConfig,
        ns: Namespaces,
        hostname: Option<&str>,
        pause: bool,
    ) -> Result<String> {
        let id = cfg.id.clone().unwrap_or_else(crate::util::random_id);
        if !pause {
            if self.find_container_dir(&id).is_ok() {
                return Err(RuntimeError::Exists(format!("container {id}")));
            }
            for other in self.sandbox_containers(sid) {
                if let Ok(m) = self.meta(&other) {
                    if m.name == cfg.name {
                        return Err(RuntimeError::Exists(format!(
                            "container name {} in sandbox {sid}",
                            cfg.name
                        )));
                    }
                }
            }
        }
        let dir = self.pod_dir(sid).join("containers").join(&id);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let res = self.create_in(sid, &id, &dir, cfg, ns, hostname, pause);
        if res.is_err() {
            let _ = self
                .cgroup(&format!("{}/{id}", self.pod_cgroup(sid)))
                .remove();
            let _ = fs::remove_dir_all(&dir);
        }
        res.map(|_| id)
    }

    #[allow(clippy::too_many_arguments)]
    fn create_in(
        &self,
        sid: &str,
        id: &str,
        dir: &Path,
        cfg: &ContainerConfig,
        ns: Namespaces,
        hostname: Option<&str>,
        pause: bool,
    ) -> Result<()> {
        let img = self.images.resolve(&cfg.image)?;
        let lowers: Vec<PathBuf> = self.images.snapshot_dirs(&img).into_iter().rev().collect();
        let env: Vec<(String, String)> = cfg
            .env
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect();
        let proc_ = crate::image::config::resolve(
            &img.config,
            &cfg.command,
            &cfg.args,
            &env,
            cfg.working_dir.as_deref(),
        );
        let lower_refs: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
        let (mut uid, mut gid) = proc_
            .user
            .as_deref()
            .and_then(|u| crate::image::config::resolve_user(u, &lower_refs))
            .unwrap_or((0, 0));
        if let Some(u) = cfg.security.run_as_user {
            uid = u;
            gid = crate::image::config::resolve_user(&u.to_string(), &lower_refs)
                .map(|x| x.1)
                .unwrap_or(0);
        }
        if let Some(g) = cfg.security.run_as_group {
            gid = g;
        }
        let rootfs = dir.join("rootfs");
        let upper = dir.join("upper");
        let work = dir.join("work");
        for d in [&rootfs, &upper, &work] {
            fs::create_dir_all(d).map_err(io_err(d))?;
        }
        // The upper dir's root is the container's "/": 0755 whatever this process's umask.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&upper, fs::Permissions::from_mode(0o755)).map_err(io_err(&upper))?;
        // A pod user namespace's root owns its upper layer.
        let shift = self.sandbox(sid).ok().and_then(|r| r.config.user_namespace);
        if let Some(m) = shift {
            for d in [&upper, &work] {
                nix::unistd::chown(
                    d,
                    Some(nix::unistd::Uid::from_raw(m.host_id)),
                    Some(nix::unistd::Gid::from_raw(m.host_id)),
                )
                .map_err(nix_err(format!("chown {}", d.display())))?;
            }
        }
        let pod = self.pod_dir(sid);
        let etc_files: Vec<(PathBuf, &str)> = if pause {
            vec![]
        } else {
            vec![
                (pod.join("hosts"), "/etc/hosts"),
                (pod.join("hostname"), "/etc/hostname"),
                (pod.join("resolv.conf"), "/etc/resolv.conf"),
            ]
        };
        let cg_rel = format!("{}/{id}", self.pod_cgroup(sid));
        let spec = spec::build_spec(&spec::SpecInput {
            process: &proc_,
            user: (uid, gid),
            config: cfg,
            rootfs: &rootfs,
            hostname,
            namespaces: &ns,
            etc_files: &etc_files,
            cgroup: &cg_rel,
            cgroup2_mount: self.cgroups.mode == "v2",
        })
        .map_err(|source| RuntimeError::Json {
            what: "runtime spec".into(),
            source,
        })?;
        write_json(&dir.join("config.json"), &spec)?;
        let cg = self.cgroup(&cg_rel);
        cg.create()?;
        cg.apply(&cfg.resources)?;
        let meta = ContainerMeta {
            id: id.to_string(),
            name: cfg.name.clone(),
            sandbox_id: sid.to_string(),
            image: cfg.image.clone(),
            image_id: img.id.clone(),
            cgroup: cg_rel,
            log_path: cfg
                .log_path
                .clone()
                .unwrap_or_else(|| dir.join("container.log")),
            log_max_size: cfg.log_max_size.unwrap_or(10 << 20),
            overlay: Overlay {
                lower: lowers,
                upper,
                work,
            },
            pid_ns: ns.pid.clone(),
            created_at: rfc3339_nanos(now_nanos()),
            pause,
            config: cfg.clone(),
        };
        write_json(&dir.join("meta.json"), &meta)?;
        let fifo = dir.join("exec.fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600))
            .map_err(nix_err(format!("mkfifo {}", fifo.display())))?;
        // Private, and writable by exactly the container's process (the init writes it after
        // switching to the container's user: host ids shifted by a pod user namespace).
        let host = |id: u32| shift.map_or(id, |m| m.host_id + id);
        nix::unistd::chown(
            &fifo,
            Some(nix::unistd::Uid::from_raw(host(uid))),
            Some(nix::unistd::Gid::from_raw(host(gid))),
        )
        .map_err(nix_err(format!("chown {}", fifo.display())))?;
        fs::set_permissions(&fifo, fs::Permissions::from_mode(0o600)).map_err(io_err(&fifo))?;
        monitor::create(&pod, id).map(|_| ())
    }

    /// Lets a `stdin_once` container's stdin end: its monitor closes the FIFO end it keeps, so
    /// the container reads end-of-file once no attach is writing. Refused for other containers.
    pub fn close_stdin(&self, id: &str) -> Result<()> {
        let dir = self.find_container_dir(id)?;
        let meta: ContainerMeta = read_json(&dir.join("meta.json"))?;
        if !(meta.config.stdin && meta.config.stdin_once) {
            return Err(RuntimeError::State {
                id: id.to_string(),
                status: "without stdinOnce".into(),
                what: "close its stdin",
            });
        }
        monitor::close_stdin(pod_of(&dir), &meta.id)
    }

    /// Sets a terminal container's window size (its processes get SIGWINCH).
    pub fn resize(&self, id: &str, cols: u16, rows: u16) -> Result<()> {
        let dir = self.find_container_dir(id)?;
        let meta: ContainerMeta = read_json(&dir.join("meta.json"))?;
        if !meta.config.tty {
            return Err(RuntimeError::State {
                id: id.to_string(),
                status: "without a terminal".into(),
                what: "resize",
            });
        }
        monitor::resize(pod_of(&dir), &meta.id, cols, rows)
    }

    /// Starts a created container: releases its init blocked on `exec.fifo`.
    pub fn start(&self, id: &str) -> Result<()> {
        let dir = self.find_container_dir(id)?;
        let st = self.state_in(&dir)?;
        if st.status != "created" {
            return Err(RuntimeError::State {
                id: id.to_string(),
                status: st.status,
                what: "cannot start",
            });
        }
        let fifo = dir.join("exec.fifo");
        let fd = nix::fcntl::open(
            &fifo,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(nix_err(format!("open {}", fifo.display())))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut pfd = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut pfd, PollTimeout::from(100u16));
            let mut b = [0u8; 1];
            match nix::unistd::read(&fd, &mut b) {
                Ok(1) => break,
                _ if Instant::now() > deadline => {
                    return Err(RuntimeError::Init {
                        id: id.to_string(),
                        msg: "init did not take the start signal".into(),
                    })
                }
                _ if !process::alive(st.pid) => {
                    return Err(RuntimeError::Init {
                        id: id.to_string(),
                        msg: "init exited before start".into(),
                    })
                }
                _ => {}
            }
        }
        let _ = fs::write(dir.join("started"), rfc3339_nanos(now_nanos()));
        let _ = fs::remove_file(&fifo);
        Ok(())
    }

    /// The state of a container.
    pub fn state(&self, id: &str) -> Result<ContainerState> {
        self.state_in(&self.find_container_dir(id)?)
    }

    /// The state of the container whose dir is `dir`.
    fn state_in(&self, dir: &Path) -> Result<ContainerState> {
        let meta: ContainerMeta = read_json(&dir.join("meta.json"))?;
        let ms: Option<MonitorState> = read_json(&dir.join("state.json")).ok();
        let exit: Option<ExitRecord> = read_json(&dir.join("exit.json")).ok();
        let started = fs::read_to_string(dir.join("started")).ok();
        let pid = ms.as_ref().map(|m| m.pid).unwrap_or(0);
        let same_proc = ms
            .as_ref()
            .is_some_and(|m| process::alive(m.pid) && process::start_time(m.pid) == m.pid_start);
        let status = if exit.is_some() {
            "exited"
        } else if same_proc {
            if started.is_some() {
                "running"
            } else {
                "created"
            }
        } else if ms.as_ref().is_some_and(|m| process::alive(m.monitor_pid)) {
            // The init is gone and its monitor is writing the exit record.
            "running"
        } else {
            "unknown"
        };
        Ok(ContainerState {
            id: meta.id.clone(),
            name: meta.name.clone(),
            sandbox_id: meta.sandbox_id.clone(),
            status: status.into(),
            pid: if status == "running" || status == "created" {
                pid
            } else {
                0
            },
            exit_code: exit.as_ref().map(|e| e.exit_code),
            reason: exit.as_ref().map(|e| e.reason.clone()),
            created_at: meta.created_at.clone(),
            started_at: started,
            finished_at: exit.as_ref().map(|e| e.finished_at.clone()),
            image: meta.image.clone(),
            image_id: meta.image_id.clone(),
            log_path: meta.log_path.clone(),
            stdin_path: meta.config.stdin.then(|| dir.join(STDIN_FIFO)),
            stdin_once: meta.config.stdin && meta.config.stdin_once,
            tty: meta.config.tty,
            labels: meta.config.labels.clone(),
            annotations: meta.config.annotations.clone(),
        })
    }

    /// All containers (not the pause containers), oldest first.
    pub fn list(&self) -> Result<Vec<ContainerState>> {
        let pods = self.root.join("pods");
        let mut out = Vec::new();
        for p in fs::read_dir(&pods).map_err(io_err(&pods))?.flatten() {
            let sid = p.file_name().to_string_lossy().to_string();
            for c in self.sandbox_containers(&sid) {
                if let Ok(s) = self.state(&c) {
                    out.push(s);
                }
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(out)
    }

    /// Waits until the container is no longer running (bounded).
    pub fn wait(&self, id: &str, timeout: Duration) -> Result<ContainerState> {
        self.wait_in(&self.find_container_dir(id)?, timeout)
    }

    fn wait_in(&self, dir: &Path, timeout: Duration) -> Result<ContainerState> {
        let deadline = Instant::now() + timeout;
        // The pod monitor answers once the exit record is written (or is gone).
        let mut watch = None;
        loop {
            let st = self.state_in(dir)?;
            let now = Instant::now();
            if st.status == "exited" || st.status == "unknown" || now > deadline {
                return Ok(st);
            }
            let watch = watch.get_or_insert_with(|| monitor::ExitWatch::new(pod_of(dir), &st.id));
            if watch.wait(deadline - now) {
                // Answered or gone: the state is final or about to be; a short pause keeps a
                // racing reader from spinning.
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    /// SIGTERM to the init, then SIGKILL to the whole cgroup after `grace`.
    pub fn stop(&self, id: &str, grace: Duration) -> Result<ContainerState> {
        self.stop_in(&self.find_container_dir(id)?, grace)
    }

    fn stop_in(&self, dir: &Path, grace: Duration) -> Result<ContainerState> {
        let st = self.state_in(dir)?;
        let meta: ContainerMeta = read_json(&dir.join("meta.json"))?;
        let cg = self.cgroup(&meta.cgroup);
        if st.status == "running" && st.pid > 0 && !grace.is_zero() {
            let _ = self.sys.kill(st.pid, Signal::SIGTERM);
            let st = self.wait_in(dir, grace)?;
            if st.status != "running" {
                cg.kill_all(&self.sys, Duration::from_secs(5))?;
                return Ok(st);
            }
        }
        if st.status == "running" || st.status == "created" || !cg.pids().is_empty() {
            cg.kill_all(&self.sys, Duration::from_secs(5))?;
        }
        self.wait_in(dir, Duration::from_secs(5))
    }

    /// Stops (immediately) and removes a container: cgroup, state dir, upper dir. The pod
    /// monitor is done with it once its exit record is written, which `stop` waits for.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.find_container_dir(id)?;
        let meta: ContainerMeta = read_json(&dir.join("meta.json"))?;
        self.stop_in(&dir, Duration::ZERO)?;
        self.cgroup(&meta.cgroup).remove()?;
        // A log file outside the container dir belongs to the caller (the kubelet's pod logs).
        fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(())
    }

    /// Writes container `id` as an OCI runtime bundle into `dir` (created here; it must not
    /// exist yet), so that runc or crun can run the same container: `config.json` is the
    /// container's runtime spec with `root.path` = `rootfs` and a cgroup of its own (the
    /// container's path with `-bundle` appended), and `rootfs` is an overlay mount of the
    /// image's layers with a fresh writable layer in `dir/upper` (the container's own changes
    /// are not in it). The caller unmounts `dir/rootfs` when done with the bundle.
    pub fn export_bundle(&self, id: &str, dir: &Path) -> Result<()> {
        let cdir = self.find_container_dir(id)?;
        let meta: ContainerMeta = read_json(&cdir.join("meta.json"))?;
        let mut spec: Spec = read_json(&cdir.join("config.json"))?;
        if dir.exists() {
            return Err(RuntimeError::Exists(dir.display().to_string()));
        }
        let overlay = Overlay {
            lower: meta.overlay.lower.clone(),
            upper: dir.join("upper"),
            work: dir.join("work"),
        };
        let rootfs = dir.join("rootfs");
        for d in [&rootfs, &overlay.upper, &overlay.work] {
            fs::create_dir_all(d).map_err(io_err(d))?;
        }
        let mut root = spec.root().clone().unwrap_or_default();
        root.set_path(PathBuf::from("rootfs"));
        spec.set_root(Some(root));
        if let Some(mut linux) = spec.linux().clone() {
            linux.set_cgroups_path(Some(PathBuf::from(format!("{}-bundle", meta.cgroup))));
            spec.set_linux(Some(linux));
        }
        // A subPath is minirun's own mount option: the bundle names the directory it resolves
        // to now (resolved beneath its volume as the init does; a snapshot, not re-checked).
        if let Some(mounts) = spec.mounts().clone() {
            let mut out = Vec::new();
            for mut m in mounts {
                let mut opts = m.options().clone().unwrap_or_default();
                if let Some(sub) = opts
                    .iter()
                    .find_map(|o| o.strip_prefix(mounts::SUBPATH_OPTION).map(PathBuf::from))
                {
                    let src = m.source().clone().unwrap_or_default();
                    let fd = mounts::open_bind_source(&src, Some(&sub)).map_err(|e| {
                        RuntimeError::Init {
                            id: meta.id.clone(),
                            msg: e.to_string(),
                        }
                    })?;
                    m.set_source(Some(crate::sys::fd_path(fd.as_fd())));
                    opts.retain(|o| !o.starts_with(mounts::SUBPATH_OPTION));
                    m.set_options(Some(opts));
                }
                out.push(m);
            }
            spec.set_mounts(Some(out));
        }
        write_json(&dir.join("config.json"), &spec)?;
        mounts::mount_overlay(&self.sys, &overlay, &rootfs, None).map_err(|e| RuntimeError::Init {
            id: meta.id.clone(),
            msg: format!("{}: {e}", rootfs.display()),
        })
    }

    /// CPU, memory and pids usage of a container.
    pub fn stats(&self, id: &str) -> Result<Stats> {
        Ok(self.cgroup(&self.meta(id)?.cgroup).stats())
    }

    /// Image ids used by containers (kept by GC and `rmi`).
    pub fn images_in_use(&self) -> BTreeSet<String> {
        let pods = self.root.join("pods");
        let mut s = BTreeSet::new();
        for p in fs::read_dir(pods).into_iter().flatten().flatten() {
            for c in fs::read_dir(p.path().join("containers"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Ok(m) = read_json::<ContainerMeta>(&c.path().join("meta.json")) {
                    s.insert(m.image_id);
                }
            }
        }
        s
    }

    /// Runs a process inside a running container (its namespaces, cgroup, root, user and
    /// capabilities), with this process's stdio; returns its exit code. With `tty` it runs on a
    /// pty from the container's devpts; lines `COLS ROWS` written to the FIFO `resize` (when
    /// given) set that pty's size.
    pub fn exec(
        &self,
        id: &str,
        args: &[String],
        extra_env: &[String],
        tty: bool,
        resize: Option<&Path>,
    ) -> Result<i32> {
        let st = self.state(id)?;
        if st.status != "running" {
            return Err(RuntimeError::State {
                id: id.to_string(),
                status: st.status,
                what: "cannot exec",
            });
        }
        let dir = self.find_container_dir(id)?;
        let meta = self.meta(id)?;
        let mut spec: Spec = read_json(&dir.join("config.json"))?;
        let mut nsfiles = Vec::new();
        for (n, flag) in [
            ("ipc", CloneFlags::CLONE_NEWIPC),
            ("uts", CloneFlags::CLONE_NEWUTS),
            ("net", CloneFlags::CLONE_NEWNET),
            ("pid", CloneFlags::CLONE_NEWPID),
            ("cgroup", CloneFlags::CLONE_NEWCGROUP),
            ("mnt", CloneFlags::CLONE_NEWNS),
        ] {
            let p = PathBuf::from(format!("/proc/{}/ns/{n}", st.pid));
            nsfiles.push((fs::File::open(&p).map_err(io_err(&p))?, flag));
        }
        // The pod's user namespace is joined last, as by the init.
        let p = PathBuf::from(format!("/proc/{}/ns/user", st.pid));
        if let Some(fd) = crate::userns::open(&p).map_err(io_err(&p))? {
            nsfiles.push((fs::File::from(fd), CloneFlags::CLONE_NEWUSER));
        }
        let mut proc_ = spec.process().clone().unwrap_or_default();
        let mut env = proc_.env().clone().unwrap_or_default();
        env.extend(extra_env.iter().cloned());
        proc_.set_env(Some(env.clone()));
        proc_.set_args(Some(args.to_vec()));
        spec.set_process(Some(proc_.clone()));
        let cg = self.cgroup(&meta.cgroup);
        let mut pty = if tty {
            let ws = crate::sys::terminal_size(std::io::stdin().as_fd());
            let ptmx = PathBuf::from(format!("/proc/{}/root/dev/pts/ptmx", st.pid));
            let (master, slave) =
                crate::sys::open_pty(&ptmx, ws.as_ref()).map_err(|e| RuntimeError::Init {
                    id: id.to_string(),
                    msg: e.to_string(),
                })?;
            Some(nix::pty::OpenptyResult { master, slave })
        } else {
            None
        };
        match process::fork().map_err(nix_err("fork"))? {
            Forked::Child => {
                let _ = cg.add_pid(std::process::id() as i32);
                for (f, flag) in &nsfiles {
                    if let Err(e) = self.sys.setns(f.as_fd(), *flag) {
                        eprintln!("minirun exec: {e}");
                        process::exit_now(126);
                    }
                }
                drop(nsfiles);
                match process::fork() {
                    Ok(Forked::Child) => {
                        if let Some(p) = &pty {
                            let _ = nix::unistd::setsid();
                            if let Err(e) = self.sys.set_controlling_tty(p.slave.as_fd()) {
                                eprintln!("minirun exec: {e}");
                            }
                            process::set_stdio(Some(&p.slave), Some(&p.slave), Some(&p.slave));
                        }
                        if let Err(e) = init::setup_process(&self.sys, &spec) {
                            eprintln!("minirun exec: {e}");
                            process::exit_now(126);
                        }
                        let argv0 = args.first().map(String::as_str).unwrap_or("");
                        match init::find_executable(argv0, &env) {
                            Ok(exe) => {
                                let e = process::exec(&exe, args, &env);
                                eprintln!("minirun exec: {}: {e}", exe.display());
                            }
                            Err(e) => eprintln!("minirun exec: {e}"),
                        }
                        process::exit_now(127)
                    }
                    Ok(Forked::Parent(p)) => {
                        drop(pty.take());
                        process::exit_now(process::wait_exit(p).0)
                    }
                    Err(e) => {
                        eprintln!("minirun exec: fork: {e}");
                        process::exit_now(126)
                    }
                }
            }
            Forked::Parent(child) => match pty.take() {
                None => Ok(process::wait_exit(child).0),
                Some(p) => {
                    drop(p.slave);
                    let resize = resize.and_then(|path| {
                        nix::fcntl::open(
                            path,
                            OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                            Mode::empty(),
                        )
                        .ok()
                    });
                    Ok(relay_tty(child, p.master, resize.map(fs::File::from)))
                }
            },
        }
    }
}

/// Copies this process's stdin to the pty master and the master to stdout (stdin in raw mode
/// when it is a terminal) until the exec'd process ends, and applies the `COLS ROWS` lines
/// read from `resize` to the pty; returns the process's exit code.
fn relay_tty(child: Pid, master: OwnedFd, mut resize: Option<fs::File>) -> i32 {
    use nix::sys::termios;
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(stdin.as_fd()).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
    }
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    let mut code = None;
    let mut out = std::io::stdout();
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if let Some(r) = &resize {
            fds.push(PollFd::new(r.as_fd(), PollFlags::POLLIN));
        }
        let _ = nix::poll::poll(&mut fds, PollTimeout::from(100u16));
        let m_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let i_ready = stdin_open
            && fds
                .get(1)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty());
        drop(fds);
        let mut master_done = false;
        if m_ready {
            match nix::unistd::read(&master, &mut buf) {
                Ok(0) | Err(_) => master_done = true,
                Ok(n) => {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
        if let Some(r) = &mut resize {
            // Whole lines arrive in one read (each write is far below PIPE_BUF).
            if let Ok(n) = std::io::Read::read(r, &mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                for line in text.lines() {
                    let mut dims = line.split_whitespace().map(str::parse::<u16>);
                    if let (Some(Ok(cols)), Some(Ok(rows))) = (dims.next(), dims.next()) {
                        let _ = sys::set_terminal_size(master.as_fd(), cols, rows);
                    }
                }
            }
        }
        if i_ready {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = nix::unistd::write(&master, &buf[..n]);
                }
            }
        }
        if code.is_none() {
            if let Ok(ws) = waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                code = process::exit_code(ws).map(|c| c.0);
            }
        }
        if master_done || (code.is_some() && !m_ready) {
            break;
        }
    }
    if let Some(t) = &saved {
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, t);
    }
    code.unwrap_or_else(|| process::wait_exit(child).0)
}
