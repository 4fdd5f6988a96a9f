//! `cluster down`: stops every process of a cluster (node agents first, then what they talk
//! to, then anything else still naming the state directory), removes every node's sandboxes
//! through minirun, the tmpfs mounts under the state directory, the nodes' cgroups, the lab's
//! namespaces (their veths, bridge, routes and iptables rules go with them), the kubeconfig
//! entries and the state directory. Idempotent, and works from what is on disk, so it also
//! cleans up after a crashed launcher or component.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use network::lab::Lab;

use crate::kubeconfig;
use crate::process;
use crate::state::{self, ClusterState, StateError};

/// How long a component gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// Removes cluster `name`; returns what it did, line by line.
pub fn down(name: &str) -> anyhow::Result<String> {
    state::validate_name(name)?;
    let dir = state::cluster_dir(name);
    let prefix = state::lab_prefix(name);
    let state = match ClusterState::load(name) {
        Ok(state) => Some(state),
        Err(StateError::NotFound { .. }) => None,
        Err(err) => {
            eprintln!("warning: {err}; cleaning up from what is on disk");
            None
        }
    };
    let mut report = String::new();
    if state.is_none() && !dir.exists() && Lab::named_namespaces(&prefix).is_empty() {
        let _ = writeln!(report, "cluster {name} not found; nothing to do");
        return Ok(report);
    }

    // 1. Node agents and controllers, so nothing recreates what is removed next.
    let components = state
        .as_ref()
        .map(|s| s.components.clone())
        .unwrap_or_default();
    let (backends, agents): (Vec<_>, Vec<_>) = components
        .iter()
        .partition(|c| c.name == "apiserver" || c.name == "etcd");
    let live = |list: &[&state::Component]| -> Vec<i32> {
        list.iter()
            .filter(|c| process::is_alive(c.pid, &c.program))
            .map(|c| c.pid)
            .collect()
    };
    process::stop(&live(&agents), GRACE);
    let _ = writeln!(
        report,
        "stopped {} node agents and controllers",
        agents.len()
    );

    // 2. Every sandbox of every node.
    let minirun = state
        .as_ref()
        .map(|s| s.bin_dir.join("minirun"))
        .or_else(|| process::exe_dir().ok().map(|d| d.join("minirun")));
    let nodes = node_roots(state.as_ref(), &dir);
    if let Some(minirun) = minirun.filter(|m| m.exists()) {
        for (root, cgroup_root) in &nodes {
            let removed = remove_sandboxes(&minirun, root, cgroup_root);
            if removed > 0 {
                let _ = writeln!(report, "removed {removed} sandboxes of {}", root.display());
            }
        }
    }

    // 3. The apiserver and etcd, then anything still naming the state directory.
    process::stop(&live(&backends), GRACE);
    let needle = dir.to_string_lossy().to_string();
    let strays = process::pids_mentioning(&needle);
    if !strays.is_empty() {
        let _ = writeln!(
            report,
            "stopped {} more processes under {needle}",
            strays.len()
        );
        process::stop(&strays, GRACE);
    }

    // 4. Mounts, cgroups, namespaces.
    let unmounted = unmount_under(&dir);
    if unmounted > 0 {
        let _ = writeln!(report, "unmounted {unmounted} mounts under {needle}");
    }
    for (_, cgroup_root) in &nodes {
        remove_cgroup(cgroup_root);
    }
    Lab::destroy_named(&prefix).with_context(|| format!("remove the lab {prefix}"))?;
    let _ = writeln!(report, "removed the network namespaces {prefix}-*");

    // 5. Kubeconfig entries and the state directory.
    if let Some(entry) = state.as_ref().and_then(|s| s.user_kubeconfig.clone()) {
        kubeconfig::remove(&entry.path, &entry.context)?;
        let _ = writeln!(
            report,
            "removed context {} from {}",
            entry.context,
            entry.path.display()
        );
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    let _ = writeln!(report, "cluster {name} deleted");
    Ok(report)
}

/// (kubelet root dir, cgroup root) of every node, from the state file or the state directory.
fn node_roots(state: Option<&ClusterState>, dir: &Path) -> Vec<(PathBuf, String)> {
    if let Some(state) = state.filter(|s| !s.nodes.is_empty()) {
        return state
            .nodes
            .iter()
            .map(|n| (n.root.clone(), n.cgroup_root.clone()))
            .collect();
    }
    std::fs::read_dir(dir.join("nodes"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let node = entry.file_name().to_string_lossy().to_string();
            (entry.path(), format!("minicluster-{node}"))
        })
        .collect()
}

fn minirun(minirun: &Path, root: &Path, cgroup_root: &str) -> Command {
    let mut cmd = Command::new(minirun);
    cmd.arg("--root")
        .arg(root.join("runtime"))
        .arg("--cgroup-root")
        .arg(cgroup_root);
    cmd
}

/// Removes every sandbox minirun knows on one node; returns how many it removed.
fn remove_sandboxes(minirun_path: &Path, root: &Path, cgroup_root: &str) -> usize {
    let Ok(output) = minirun(minirun_path, root, cgroup_root)
        .args(["pods", "--json"])
        .output()
    else {
        return 0;
    };
    let sandboxes: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).unwrap_or_default();
    sandboxes
        .iter()
        .filter_map(|sandbox| sandbox["id"].as_str())
        .filter(|id| {
            minirun(minirun_path, root, cgroup_root)
                .args(["sandbox", "rm", id])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .count()
}

/// Mount points under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|m| m.starts_with(&needle))
        .map(str::to_string)
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    mounts.dedup();
    mounts
}

fn unmount_under(dir: &Path) -> usize {
    let mut count = 0;
    for _ in 0..5 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            break;
        }
        for mount in mounts {
            if nix::mount::umount2(mount.as_str(), nix::mount::MntFlags::MNT_DETACH).is_ok() {
                count += 1;
            }
        }
    }
    count
}

/// The directories of cgroup `name` in every hierarchy (v2 root and every v1 controller).
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut candidates = vec![base.join(name)];
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        candidates.push(entry.path().join(name));
    }
    candidates.into_iter().filter(|p| p.is_dir()).collect()
}

fn remove_cgroup(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let dirs = cgroup_dirs(name);
        if dirs.is_empty() || Instant::now() > deadline {
            return;
        }
        for dir in dirs {
            let mut tree = walk_dirs(&dir);
            tree.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for sub in tree {
                let _ = std::fs::remove_dir(&sub);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn walk_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(walk_dirs(&entry.path()));
        }
    }
    found
}
