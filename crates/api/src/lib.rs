//! The API layer shared by the apiserver and the clients: which resources exist (registry),
//! how objects are defaulted and validated as Kubernetes does it, label and field selectors,
//! and the three PATCH flavours (JSON merge, JSON patch, strategic merge).
//!
//! Objects travel as `serde_json::Value` in Kubernetes' own JSON shape; the typed structs of
//! k8s-openapi are used inside to prune unknown fields and to default and validate.

pub mod defaults;
pub mod openapi;
pub mod patch;
pub mod priority;
pub mod rbac;
pub mod registry;
pub mod selectors;
pub mod table;
pub mod validation;
pub mod wire;

pub use registry::{ResourceInfo, Scope, Storage, Subresource, RESOURCES};
