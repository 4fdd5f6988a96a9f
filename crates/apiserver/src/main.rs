//! mini-apiserver: serves the Kubernetes REST API over the cluster store.
fn main() {}
