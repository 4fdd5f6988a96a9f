//! mini-scheduler as a library: the node cache with assumed pods, the scheduling queue with
//! backoff, filter and score plugins, preemption, and the binder. The binary in `main.rs`
//! wires flags to [`scheduler::run`].

pub mod cache;
pub mod plugins;
pub mod preemption;
pub mod resources;
pub mod scheduler;

/// Errors of the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the apiserver failed.
    #[error("scheduler: api request failed: {0}")]
    Kube(#[from] kube::Error),
    /// An object could not be encoded.
    #[error("scheduler: json: {0}")]
    Json(#[from] serde_json::Error),
}

/// The result of the scheduler's fallible operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
