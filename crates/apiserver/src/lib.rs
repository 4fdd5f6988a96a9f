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
pub mod gate;
pub mod handlers;
pub mod impersonation;
pub mod informer;
pub mod kubeconfig;
pub mod kubelet_proxy;
pub mod metrics;
pub mod node_graph;
pub mod objects;
pub mod protobuf;
pub mod rbac_index;
pub mod render;
pub mod request;
pub mod reviews;
pub mod sa_tokens;
pub mod server;
pub mod strategy;
pub mod token_authn;
pub mod token_request;
/// TLS serving, shared with the other daemons.
pub use daemon::tls;
pub mod watch;

pub use server::{ApiServer, Config, Security};
