//! mini-proxy, the kube-proxy iptables mode: watches Services and EndpointSlices and programs
//! the node's iptables in Kubernetes' chain layout with `iptables-restore --noflush` batches that
//! rewrite only the chains that changed.

pub mod controller;
pub mod iptables;
pub mod metrics;
pub mod model;
pub mod route;
pub mod rules;
pub mod syncer;
pub mod tracker;

#[cfg(test)]
mod tests;

/// Errors of the proxy's node-side work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool could not be started or fed.
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// A tool ran and failed.
    #[error("{command} failed: {message}")]
    Command { command: String, message: String },
    /// The node has no interface to route the service network through.
    #[error("no interface with a global ipv4 address for the route to {cidr}")]
    NoInterface { cidr: String },
}
