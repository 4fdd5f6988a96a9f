//! `cluster status`: every recorded component with its pid, alive or crashed, and its log; the
//! nodes with their Ready condition as the apiserver reports them.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;

use crate::process;
use crate::state::{self, ClusterState};
use crate::up::{admin_client, node_ready};

/// One component's health.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentStatus {
    pub name: String,
    pub pid: i32,
    pub alive: bool,
    pub log: PathBuf,
}

/// One node's Ready condition (None: no condition yet).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeStatus {
    pub name: String,
    pub ready: Option<bool>,
}

/// The cluster as `status` sees it.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub name: String,
    pub components: Vec<ComponentStatus>,
    /// Err(message) when the apiserver could not be asked.
    pub nodes: Result<Vec<NodeStatus>, String>,
}

impl StatusReport {
    /// Components that are not running.
    pub fn crashed(&self) -> Vec<&ComponentStatus> {
        self.components.iter().filter(|c| !c.alive).collect()
    }
}

impl std::fmt::Display for StatusReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "cluster {}", self.name)?;
        writeln!(f, "{:<28} {:>8}  {:<8} LOG", "COMPONENT", "PID", "STATUS")?;
        for c in &self.components {
            let status = if c.alive { "alive" } else { "crashed" };
            writeln!(
                f,
                "{:<28} {:>8}  {:<8} {}",
                c.name,
                c.pid,
                status,
                c.log.display()
            )?;
        }
        match &self.nodes {
            Ok(nodes) => {
                writeln!(f, "{:<28} READY", "NODE")?;
                for n in nodes {
                    let ready = match n.ready {
                        Some(true) => "True",
                        Some(false) => "False",
                        None => "Unknown",
                    };
                    writeln!(f, "{:<28} {ready}", n.name)?;
                }
            }
            Err(message) => writeln!(f, "nodes: unknown ({message})")?,
        }
        Ok(())
    }
}

/// Collects the status of cluster `name`.
pub async fn report(name: &str) -> anyhow::Result<StatusReport> {
    state::validate_name(name)?;
    let state = ClusterState::load(name)?;
    let components = state
        .components
        .iter()
        .map(|c| ComponentStatus {
            name: c.name.clone(),
            pid: c.pid,
            alive: process::is_alive(c.pid, &c.program),
            log: c.log.clone(),
        })
        .collect();
    let nodes = match tokio::time::timeout(Duration::from_secs(5), list_nodes(&state)).await {
        Ok(Ok(nodes)) => Ok(nodes),
        Ok(Err(err)) => Err(format!("{err:#}")),
        Err(_) => Err("the apiserver did not answer within 5s".into()),
    };
    Ok(StatusReport {
        name: name.to_string(),
        components,
        nodes,
    })
}

async fn list_nodes(state: &ClusterState) -> anyhow::Result<Vec<NodeStatus>> {
    let client = admin_client(&state.admin_kubeconfig).await?;
    let nodes: Api<Node> = Api::all(client);
    Ok(nodes
        .list(&Default::default())
        .await?
        .items
        .iter()
        .map(|node| NodeStatus {
            name: node.metadata.name.clone().unwrap_or_default(),
            ready: node_ready(node),
        })
        .collect())
}

/// `cluster status` as text.
pub async fn status(name: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    let _ = write!(text, "{}", report(name).await?);
    Ok(text)
}
