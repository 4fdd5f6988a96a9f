//! mini-kubelet as a library: the node agent that registers its Node, runs the pods bound to
//! it through the `minirun` runtime and the pod network, and reports their status. The
//! binary in `main.rs` wires flags to [`manager`], [`node`] and [`server`].
//!
//! Layers: [`cri`] (runtime calls) and [`netplugin`] (network calls) are the kubelet's only
//! ways to touch the machine besides [`volumes`]' files and tmpfs mounts; [`worker`] holds the
//! per-pod reconcile logic on top of the pure [`status`], [`env`], [`podfiles`], [`backoff`]
//! and [`resources`] modules.

pub mod admission;
pub mod auth;
pub mod backoff;
pub mod claims;
pub mod cri;
pub mod env;
pub mod ephemeral;
pub mod manager;
pub mod netplugin;
pub mod node;
pub mod objects;
pub mod podfiles;
pub mod portforward;
pub mod probe;
pub mod resources;
pub mod server;
pub mod spdy;
pub mod status;
pub mod subpath;
pub mod tokens;
pub mod userns;
pub mod volumes;
pub mod worker;
