//! mini-controller-manager as a library: shared informers, work queues, events, leader election
//! and one module per controller. The binary in `main.rs` wires flags to [`manager::run`].

pub mod clusterroleaggregation;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub use daemon::events;
pub mod gc;
pub mod informer;
pub mod job;
pub mod manager;
pub mod metrics;
pub mod namespace;
pub mod nodelifecycle;
pub mod queue;
pub mod replicaset;
pub mod replication;
pub mod serviceaccounts;
pub mod statefulset;
pub mod util;

/// Errors of the controllers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the apiserver failed.
    #[error("controllers: api request failed: {0}")]
    Kube(#[from] kube::Error),
    /// An object could not be encoded or decoded.
    #[error("controllers: json: {0}")]
    Json(#[from] serde_json::Error),
    /// A reconcile could not proceed yet (retried with backoff).
    #[error("controllers: {0}")]
    Retry(String),
    /// The HTTP endpoint could not be served.
    #[error("controllers: serve: {0}")]
    Io(#[from] std::io::Error),
}

/// The result of the controllers' fallible operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
