//! mini-dns: the cluster DNS. An in-memory index of Services and EndpointSlices kept current by
//! watches, answered like CoreDNS' kubernetes plugin; everything else is forwarded upstream.

pub mod answer;
pub mod cache;
pub mod index;
pub mod metrics;
pub mod server;
pub mod upstream;
pub mod watch;

/// Errors of mini-dns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster domain is not a usable DNS name.
    #[error("invalid cluster domain {0:?}")]
    ClusterDomain(String),
    /// A socket could not be bound.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// An upstream resolver address does not parse.
    #[error("invalid upstream resolver {0:?} (use IP or IP:PORT)")]
    Upstream(String),
}
