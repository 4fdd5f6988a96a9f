//! mini-apiserver as a library: the Kubernetes REST API over a [`store::Store`], with a watch
//! cache, admission, allocators and discovery. The binary in `main.rs` wires flags to
//! [`server::ApiServer`]; tests start it in-process the same way.

pub mod admission;
pub mod allocator;
pub mod authn;
pub mod authz;
pub mod bootstrap;
pub mod bootstrap_rbac;
pub mod cache;
pub mod componentstatus;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod handlers;
pub mod impersonation;
pub mod kubeconfig;
pub mod kubelet_proxy;
pub mod metrics;
pub mod objects;
pub mod protobuf;
pub mod rbac_index;
pub mod render;
pub mod request;
pub mod sa_tokens;
pub mod server;
pub mod strategy;
/// TLS serving, shared with the other daemons.
pub use daemon::tls;
pub mod watch;

pub use server::{ApiServer, Config, Security};
