//! minictl's library: kubeconfig and discovery, kubectl's output formats, manifest reading,
//! client-side apply and every API verb, kept apart from the command line so they can be
//! unit-tested.

pub mod apply;
pub mod cluster;
pub mod describe;
pub mod error;
pub mod get;
pub mod manifest;
pub mod output;
pub mod rollout;
pub mod verbs;

pub use cluster::{Cluster, ConnectOptions};
pub use error::{Error, Result};
