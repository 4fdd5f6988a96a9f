//! Where a cluster lives and what it made: the state directory
//! (`/var/lib/minicluster/clusters/<name>/`, base overridable with `MINICLUSTER_STATE_DIR`) and
//! the state file recording every process, port, namespace and path, written as each thing is
//! made so that `cluster down` can undo a half-finished `up`.

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::StoreKind;

/// The cluster name used when none is given.
pub const DEFAULT_NAME: &str = "minicluster";
/// The default base directory of every cluster's state directory.
pub const DEFAULT_BASE: &str = "/var/lib/minicluster/clusters";
/// Environment variable overriding [`DEFAULT_BASE`] (tests use a temp dir).
pub const STATE_DIR_ENV: &str = "MINICLUSTER_STATE_DIR";
/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "state.json";

/// Errors reading or writing a cluster's state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid cluster name {0:?}: use 1-20 lowercase letters, digits and '-', starting with a letter")]
    InvalidName(String),
    #[error("no cluster named {name} (no state file {path})")]
    NotFound { name: String, path: PathBuf },
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("parse {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Checks a cluster name: it becomes part of namespace, node, cgroup and context names.
pub fn validate_name(name: &str) -> Result<(), StateError> {
    let ok = !name.is_empty()
        && name.len() <= 20
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidName(name.to_string()))
    }
}

/// The base directory holding every cluster's state directory.
pub fn base_dir() -> PathBuf {
    std::env::var_os(STATE_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BASE))
}

/// The state directory of cluster `name`.
pub fn cluster_dir(name: &str) -> PathBuf {
    base_dir().join(name)
}

/// The prefix of the cluster's lab namespaces (`<prefix>-br`, `<prefix>-n<i>`).
pub fn lab_prefix(name: &str) -> String {
    format!("mc-{name}")
}

/// The kubeconfig context, cluster and user name of cluster `name` (like kind's `kind-<name>`).
pub fn context_name(name: &str) -> String {
    format!("minicluster-{name}")
}

/// The node name of node `i` of cluster `name`.
pub fn node_name(name: &str, i: usize) -> String {
    format!("{name}-n{i}")
}

/// One process the launcher started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Component {
    /// `etcd`, `apiserver`, `controller-manager`, `scheduler`, `kubelet-<node>`, `proxy-<node>`.
    pub name: String,
    /// The binary's file name, checked against /proc/<pid>/cmdline (guards against pid reuse).
    pub program: String,
    pub pid: i32,
    pub log: PathBuf,
    /// The network namespace it runs in (None: the host's).
    pub netns: Option<String>,
}

/// One node of the cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeState {
    pub name: String,
    pub ip: Ipv4Addr,
    pub netns: String,
    /// The kubelet's --root-dir (the runtime's root is `<root>/runtime`).
    pub root: PathBuf,
    /// The runtime's cgroup root (`minicluster-<node>`).
    pub cgroup_root: String,
}

/// The kubeconfig file the launcher added entries to, and their name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KubeconfigEntry {
    pub path: PathBuf,
    pub context: String,
}

/// Everything a cluster is made of.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterState {
    pub name: String,
    pub state_dir: PathBuf,
    pub bin_dir: PathBuf,
    pub store: StoreKind,
    pub lab_prefix: String,
    pub apiserver_port: Option<u16>,
    pub etcd_client_url: Option<String>,
    /// The admin kubeconfig the apiserver wrote (server on 127.0.0.1).
    pub admin_kubeconfig: PathBuf,
    /// The same with the server on the lab bridge address, for the node agents.
    pub node_kubeconfig: PathBuf,
    pub user_kubeconfig: Option<KubeconfigEntry>,
    pub components: Vec<Component>,
    pub nodes: Vec<NodeState>,
}

impl ClusterState {
    /// A fresh state for cluster `name` in its state directory.
    pub fn new(name: &str, bin_dir: PathBuf, store: StoreKind) -> ClusterState {
        let state_dir = cluster_dir(name);
        ClusterState {
            name: name.to_string(),
            admin_kubeconfig: state_dir.join("admin.kubeconfig"),
            node_kubeconfig: state_dir.join("node.kubeconfig"),
            state_dir,
            bin_dir,
            store,
            lab_prefix: lab_prefix(name),
            apiserver_port: None,
            etcd_client_url: None,
            user_kubeconfig: None,
            components: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// The log file of component `component`.
    pub fn log_path(&self, component: &str) -> PathBuf {
        self.state_dir.join("logs").join(format!("{component}.log"))
    }

    /// Writes the state file (atomically: a temp file renamed over the old one).
    pub fn save(&self) -> Result<(), StateError> {
        let path = self.state_dir.join(STATE_FILE);
        let tmp = self.state_dir.join(format!("{STATE_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(self).map_err(|source| StateError::Parse {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| StateError::Write { path, source })
    }

    /// Reads cluster `name`'s state file.
    pub fn load(name: &str) -> Result<ClusterState, StateError> {
        load_file(&cluster_dir(name).join(STATE_FILE), name)
    }
}

fn load_file(path: &Path, name: &str) -> Result<ClusterState, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(StateError::NotFound {
                name: name.to_string(),
                path: path.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_slice(&bytes).map_err(|source| StateError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_fit_every_derived_name_are_accepted() {
        assert!(validate_name("minicluster").is_ok());
        assert!(validate_name("a-1").is_ok());
        for bad in [
            "",
            "1abc",
            "Abc",
            "a_b",
            "a.b",
            "a/b",
            "abcdefghijklmnopqrstu",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn state_round_trips_through_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = ClusterState::new("rt", PathBuf::from("/bin"), StoreKind::Etcd);
        state.state_dir = dir.path().to_path_buf();
        state.apiserver_port = Some(6443);
        state.components.push(Component {
            name: "kubelet-rt-n0".into(),
            program: "mini-kubelet".into(),
            pid: 42,
            log: state.log_path("kubelet-rt-n0"),
            netns: Some("mc-rt-n0".into()),
        });
        state.save().unwrap();
        let loaded = load_file(&dir.path().join(STATE_FILE), "rt").unwrap();
        assert_eq!(loaded, state);
        assert!(matches!(
            load_file(&dir.path().join("missing.json"), "rt"),
            Err(StateError::NotFound { .. })
        ));
    }

    #[test]
    fn derived_names_follow_the_cluster_name() {
        assert_eq!(lab_prefix("c1"), "mc-c1");
        assert_eq!(context_name("c1"), "minicluster-c1");
        assert_eq!(node_name("c1", 2), "c1-n2");
    }
}
