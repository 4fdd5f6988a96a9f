//! `minirun`: mini-cluster's container runtime CLI, both the helper the kubelet spawns and a
//! crictl-like debug tool. It is a fresh single-threaded process that forks; the pod monitor
//! each `sandbox create` leaves behind (one process per pod) owns the pod's running containers.
//!
//! # Contract for the kubelet
//!
//! Global flags: `--root DIR` (env `MINIRUN_ROOT`, default `/var/lib/minicluster/runtime`),
//! `--cgroup-root NAME` (default `minicluster`: cgroups are `<NAME>/<sandbox>/<container>` in
//! every hierarchy), `--max-image-bytes N` / `--max-image-entries N` (env
//! `MINIRUN_MAX_IMAGE_BYTES` / `_ENTRIES`: caps on what one image unpacks to). Every command exits 0 on success and non-zero with one `minirun: <error>`
//! line on stderr otherwise. JSON goes to stdout.
//!
//! | command | stdout |
//! |---|---|
//! | `load TAR... [--name REF]` | one line per image: `<name> <id>`; `--json` for a report |
//! | `pull REF [--policy always\|if-not-present\|never] [--insecure]` | `<name> <id>` |
//! | `images [--json] [-q]` | table (or JSON list of image records) |
//! | `rmi REF...` / `gc` | removed ids / count |
//! | `sandbox create --config FILE` (`-` = stdin; JSON `SandboxConfig`) | `SandboxState` JSON |
//! | `sandbox state ID` / `sandbox stop ID [-t SECS]` / `sandbox rm ID` / `pods [--json]` | JSON / nothing / nothing / table |
//! | `create --sandbox ID --config FILE` (JSON `ContainerConfig`) | `ContainerState` JSON (status `created`) |
//! | `start ID` | nothing |
//! | `state ID` | `ContainerState` JSON: `status` created/running/exited/unknown, `pid`, `exit_code`, `reason` (Completed/Error/OOMKilled), `created_at`, `started_at`, `finished_at`, `log_path` |
//! | `stop ID [-t SECS]` | SIGTERM, then SIGKILL to the cgroup after SECS (default 10) |
//! | `rm ID...` | stops immediately, removes cgroup and state |
//! | `exec ID [-t [--resize-fifo F]] [-e K=V] -- CMD...` | the process's stdio (a pty with `-t`); exit code = the process's |
//! | `logs ID [--raw]` | the container's output (or the CRI log lines) |
//! | `stats ID` | `{cpu_usage_ns, cpu_throttled_periods, memory_usage, oom_kills, pids}` |
//! | `inspect ID` | state, metadata and the OCI runtime spec |
//! | `resize ID COLS ROWS` | nothing; sets a terminal container's window size |
//! | `export ID DIR` | nothing; DIR becomes an OCI bundle of the container (`config.json`, `rootfs` mounted: `umount DIR/rootfs` when done) |
//! | `ps [-a] [--json] [-q]` / `run [...] IMAGE [CMD...]` | debug table / convenience create+start |
//! | `info` | detected cgroup layout (`v2`, `hybrid`, `v1`) |
//!
//! `SandboxConfig`: `{name, namespace, uid, id?, hostname?, host_network, host_ipc, host_pid,
//! share_pid, dns?: {servers, searches, options} (absent: a copy of the host's resolv.conf;
//! present: exactly these, empty included), extra_hosts: ["IP name"], pause_image?,
//! resources, labels, annotations}`. The sandbox's network namespace is
//! `SandboxState.netns` (`/proc/<pause pid>/ns/net`), alive as long as the sandbox.
//!
//! `ContainerConfig`: `{name, id?, image, command, args, env: [{name, value}], working_dir?,
//! mounts: [{host_path, container_path, readonly, sub_path?}], resources: {memory_limit, cpu_limit_millis,
//! cpu_request_millis, pids_limit}, security: {privileged, capabilities_add,
//! capabilities_drop, run_as_user, run_as_group, supplemental_groups,
//! read_only_root_filesystem, allow_privilege_escalation}, rlimits: [{type, soft, hard}],
//! log_path?, log_max_size?, labels, annotations, stdin, stdin_once, tty}`.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use runtime::cgroup::Resources;
use runtime::runtime::{Runtime, DEFAULT_ROOT};
use runtime::spec::{ContainerConfig, EnvVar, SandboxConfig};

#[derive(Parser)]
#[command(name = "minirun", version, about = "mini-cluster container runtime")]
struct Cli {
    /// State root.
    #[arg(long, env = "MINIRUN_ROOT", default_value = DEFAULT_ROOT, global = true)]
    root: PathBuf,
    /// cgroup subtree used in every hierarchy.
    #[arg(long, default_value = "minicluster", global = true)]
    cgroup_root: String,
    /// Most bytes one image may unpack to, all layers together (a decompression bomb stops
    /// there; default 32 GiB).
    #[arg(long, env = "MINIRUN_MAX_IMAGE_BYTES", global = true)]
    max_image_bytes: Option<u64>,
    /// Most tar entries one image may hold (default 2,000,000).
    #[arg(long, env = "MINIRUN_MAX_IMAGE_ENTRIES", global = true)]
    max_image_entries: Option<u64>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum SandboxCmd {
    /// Create and start a sandbox (pause process in new namespaces).
    Create {
        /// JSON SandboxConfig file, `-` for stdin.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print a sandbox's state as JSON.
    State { id: String },
    /// Stop a sandbox's containers and its pause process.
    Stop {
        id: String,
        #[arg(short = 't', long, default_value_t = 10)]
        timeout: u64,
    },
    /// Remove a sandbox and everything in it.
    Rm { id: String },
}

#[derive(Subcommand)]
enum Cmd {
    /// Load OCI-layout or docker-save tarballs.
    Load {
        tarballs: Vec<PathBuf>,
        /// Name for images whose archive has none.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Pull an image from a registry (imagePullPolicy semantics).
    Pull {
        reference: String,
        #[arg(long, value_enum, default_value = "always")]
        policy: runtime::image::pull::PullPolicy,
        /// Plain HTTP (a loopback test registry).
        #[arg(long)]
        insecure: bool,
    },
    /// List images.
    Images {
        #[arg(long)]
        json: bool,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove images (names, or ids with all their names).
    Rmi { refs: Vec<String> },
    /// Remove unreferenced snapshots and blobs.
    Gc,
    /// Sandbox operations.
    #[command(subcommand)]
    Sandbox(SandboxCmd),
    /// List sandboxes.
    Pods {
        #[arg(long)]
        json: bool,
    },
    /// Create a container in a sandbox.
    Create {
        #[arg(long)]
        sandbox: String,
        /// JSON ContainerConfig file, `-` for stdin.
        #[arg(long)]
        config: PathBuf,
    },
    /// Start a created container.
    Start { id: String },
    /// Let a stdinOnce container's stdin end (after its first attach).
    CloseStdin { id: String },
    /// Print a container's state as JSON.
    State { id: String },
    /// Stop a container: SIGTERM, then SIGKILL after the timeout.
    Stop {
        ids: Vec<String>,
        #[arg(short = 't', long, default_value_t = 10)]
        timeout: u64,
    },
    /// Remove containers.
    Rm { ids: Vec<String> },
    /// List containers.
    Ps {
        #[arg(short, long)]
        all: bool,
        #[arg(long)]
        json: bool,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run a command in a running container.
    Exec {
        id: String,
        /// Allocate a pseudo-terminal.
        #[arg(short, long)]
        tty: bool,
        /// With --tty: a FIFO whose `COLS ROWS` lines set the terminal's size.
        #[arg(long, requires = "tty")]
        resize_fifo: Option<PathBuf>,
        #[arg(short, long = "env")]
        env: Vec<String>,
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<String>,
    },
    /// Print a container's logs.
    Logs {
        id: String,
        /// Print the CRI-format lines.
        #[arg(long)]
        raw: bool,
    },
    /// Resource usage of a container.
    Stats { id: String },
    /// State, metadata and OCI spec of a container.
    Inspect { id: String },
    /// Writes the container as an OCI runtime bundle (config.json and an overlay rootfs mount)
    /// that runc or crun can run; unmount DIR/rootfs when done.
    Export { id: String, dir: PathBuf },
    /// Sets a terminal container's window size.
    Resize { id: String, cols: u16, rows: u16 },
    /// Detected cgroup layout.
    Info,
    /// Create a sandbox (unless --pod) and a container in it, and start it.
    Run {
        /// Container (and pod) name.
        #[arg(long)]
        name: Option<String>,
        /// Existing sandbox id.
        #[arg(long)]
        pod: Option<String>,
        #[arg(short, long = "env")]
        env: Vec<String>,
        /// Memory limit in bytes.
        #[arg(long)]
        memory: Option<u64>,
        /// CPU limit in cores (e.g. 0.2).
        #[arg(long)]
        cpus: Option<f64>,
        /// pids limit.
        #[arg(long)]
        pids: Option<u64>,
        /// Wait for the container to exit and exit with its code.
        #[arg(long)]
        wait: bool,
        /// With --wait: remove the container (and the pod it created) afterwards.
        #[arg(long)]
        rm: bool,
        image: String,
        #[arg(trailing_var_arg = true)]
        cmd: Vec<String>,
    },
}

fn read_config<T: serde::de::DeserializeOwned>(p: &PathBuf) -> Result<T> {
    let mut s = String::new();
    if p.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut s)?;
    } else {
        s = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    }
    serde_json::from_str(&s).with_context(|| format!("parsing {}", p.display()))
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    use std::io::Write;
    // A closed stdout (e.g. `| head`) is not an error worth a panic.
    let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(13)]
}

fn main() {
    // State files are private unless made otherwise on purpose (container content and the
    // files bind-mounted into containers set their modes explicitly; containers get 022).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("minirun: {e:#}");
            std::process::exit(1)
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let mut rt = Runtime::open(&cli.root, &cli.cgroup_root)?;
    let mut limits = rt.images.limits();
    limits.max_bytes = cli.max_image_bytes.unwrap_or(limits.max_bytes);
    limits.max_entries = cli.max_image_entries.unwrap_or(limits.max_entries);
    rt.images.set_limits(limits);
    match cli.cmd {
        Cmd::Load {
            tarballs,
            name,
            json,
        } => {
            for t in tarballs {
                let r = rt.images.load(&t, name.as_deref())?;
                if json {
                    print_json(&r)?;
                } else {
                    for i in &r.images {
                        println!("{} {}", i.names.join(","), i.id);
                    }
                }
            }
        }
        Cmd::Pull {
            reference,
            policy,
            insecure,
        } => {
            let img = runtime::image::pull::pull(&rt.images, &reference, policy, insecure)?;
            println!("{} {}", img.names.join(","), img.id);
        }
        Cmd::Images { json, quiet } => {
            let list = rt.images.list()?;
            if json {
                print_json(&list)?;
            } else if quiet {
                list.iter().for_each(|i| println!("{}", i.id));
            } else {
                println!("{:<40} {:<14} {:>10}", "IMAGE", "ID", "SIZE");
                for i in list {
                    let n = if i.names.is_empty() {
                        "<none>".into()
                    } else {
                        i.names.join(",")
                    };
                    println!("{n:<40} {:<14} {:>10}", short(&i.id), i.size);
                }
            }
        }
        Cmd::Rmi { refs } => {
            let used = rt.images_in_use();
            for r in refs {
                let img = rt.images.remove(&r, &used)?;
                println!("{}", img.id);
            }
        }
        Cmd::Gc => println!("{}", rt.images.gc(&rt.images_in_use())?),
        Cmd::Sandbox(SandboxCmd::Create { config }) => {
            let cfg: SandboxConfig = read_config(&config)?;
            print_json(&rt.create_sandbox(&cfg)?)?;
        }
        Cmd::Sandbox(SandboxCmd::State { id }) => print_json(&rt.sandbox_state(&id)?)?,
        Cmd::Sandbox(SandboxCmd::Stop { id, timeout }) => {
            rt.stop_sandbox(&id, Duration::from_secs(timeout))?
        }
        Cmd::Sandbox(SandboxCmd::Rm { id }) => rt.remove_sandbox(&id)?,
        Cmd::Pods { json } => {
            let list = rt.list_sandboxes()?;
            if json {
                print_json(&list)?;
            } else {
                println!(
                    "{:<18} {:<24} {:<10} {:>8}",
                    "POD ID", "NAME", "STATUS", "PID"
                );
                for s in list {
                    println!("{:<18} {:<24} {:<10} {:>8}", s.id, s.name, s.status, s.pid);
                }
            }
        }
        Cmd::Create { sandbox, config } => {
            let cfg: ContainerConfig = read_config(&config)?;
            print_json(&rt.create_container(&sandbox, &cfg)?)?;
        }
        Cmd::Start { id } => rt.start(&id)?,
        Cmd::CloseStdin { id } => rt.close_stdin(&id)?,
        Cmd::State { id } => print_json(&rt.state(&id)?)?,
        Cmd::Stop { ids, timeout } => {
            for id in ids {
                rt.stop(&id, Duration::from_secs(timeout))?;
            }
        }
        Cmd::Rm { ids } => {
            for id in ids {
                rt.remove(&id)?;
            }
        }
        Cmd::Ps { all, json, quiet } => {
            let list: Vec<_> = rt
                .list()?
                .into_iter()
                .filter(|c| all || c.status == "running" || c.status == "created")
                .collect();
            if json {
                print_json(&list)?;
            } else if quiet {
                list.iter().for_each(|c| println!("{}", c.id));
            } else {
                println!(
                    "{:<18} {:<20} {:<20} {:<8} {:>8} {:<18}",
                    "CONTAINER", "NAME", "IMAGE", "STATE", "PID", "POD ID"
                );
                for c in list {
                    let state = match (c.status.as_str(), c.exit_code) {
                        ("exited", Some(code)) => format!("exited({code})"),
                        (s, _) => s.to_string(),
                    };
                    println!(
                        "{:<18} {:<20} {:<20} {:<8} {:>8} {:<18}",
                        c.id, c.name, c.image, state, c.pid, c.sandbox_id
                    );
                }
            }
        }
        Cmd::Exec {
            id,
            tty,
            resize_fifo,
            env,
            cmd,
        } => return Ok(rt.exec(&id, &cmd, &env, tty, resize_fifo.as_deref())?),
        Cmd::Logs { id, raw } => {
            let st = rt.state(&id)?;
            if raw {
                print!(
                    "{}",
                    std::fs::read_to_string(&st.log_path).unwrap_or_default()
                );
            } else {
                for (stream, line) in runtime::logs::read_plain(&st.log_path)? {
                    if stream == "stderr" {
                        eprintln!("{line}");
                    } else {
                        println!("{line}");
                    }
                }
            }
        }
        Cmd::Stats { id } => print_json(&rt.stats(&id)?)?,
        Cmd::Inspect { id } => {
            let st = rt.state(&id)?;
            let meta = rt.meta(&id)?;
            let dir = meta.overlay.upper.parent().map(|p| p.join("config.json"));
            let spec: serde_json::Value = dir
                .and_then(|p| std::fs::read(p).ok())
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            print_json(&serde_json::json!({"state": st, "meta": meta, "spec": spec}))?;
        }
        Cmd::Export { id, dir } => rt.export_bundle(&id, &dir)?,
        Cmd::Resize { id, cols, rows } => rt.resize(&id, cols, rows)?,
        Cmd::Info => print_json(rt.cgroups())?,
        Cmd::Run {
            name,
            pod,
            env,
            memory,
            cpus,
            pids,
            wait,
            rm,
            image,
            cmd,
        } => {
            let name = name.unwrap_or_else(|| format!("run-{}", runtime::util::random_id()));
            let (sid, own_pod) = match pod {
                Some(p) => (p, false),
                None => {
                    let s = rt.create_sandbox(&SandboxConfig {
                        name: name.clone(),
                        namespace: "default".into(),
                        ..Default::default()
                    })?;
                    (s.id, true)
                }
            };
            let mut envs = Vec::new();
            for e in env {
                let Some((k, v)) = e.split_once('=') else {
                    bail!("bad env {e}, want K=V")
                };
                envs.push(EnvVar {
                    name: k.into(),
                    value: v.into(),
                });
            }
            let cfg = ContainerConfig {
                name: name.clone(),
                image,
                command: cmd,
                env: envs,
                resources: Resources {
                    memory_limit: memory,
                    cpu_limit_millis: cpus.map(|c| (c * 1000.0).round() as u64),
                    pids_limit: pids,
                    ..Default::default()
                },
                ..Default::default()
            };
            let c = match rt.create_container(&sid, &cfg) {
                Ok(c) => c,
                Err(e) => {
                    if own_pod {
                        let _ = rt.remove_sandbox(&sid);
                    }
                    return Err(e.into());
                }
            };
            rt.start(&c.id)?;
            if !wait {
                println!("{}", c.id);
                return Ok(0);
            }
            let st = rt.wait(&c.id, Duration::from_secs(24 * 3600))?;
            for (stream, line) in runtime::logs::read_plain(&st.log_path)? {
                if stream == "stderr" {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
            }
            if rm {
                if own_pod {
                    rt.remove_sandbox(&sid)?;
                } else {
                    rt.remove(&c.id)?;
                }
            }
            return Ok(st.exit_code.unwrap_or(255));
        }
    }
    Ok(0)
}
