//! Each component's identity: `cluster up` lets the apiserver make the cluster PKI in the state
//! directory, then writes one kubeconfig per component from it (the controller-manager,
//! scheduler and proxies with their own client certificates, each kubelet as
//! `system:node:<name>` with a serving certificate signed by the cluster CA), so every
//! component reaches the apiserver over TLS as itself and is allowed what RBAC and the Node
//! authorizer give it. The controller-manager runs its controllers under its own identity, so
//! `cluster up` binds it to each controller's bootstrap role (upstream gives each controller a
//! ServiceAccount instead, with `--use-service-account-credentials`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{json, Value};

/// The cluster PKI the apiserver made, and the apiserver's port.
pub struct Credentials {
    pki: pki::ClusterPki,
    port: u16,
}

/// A node's files: its kubelet's kubeconfig and serving certificate.
pub struct NodeFiles {
    /// Kubeconfig as `system:node:<name>`.
    pub kubeconfig: PathBuf,
    /// The kubelet API's certificate, signed by the cluster CA.
    pub serving_cert: PathBuf,
    /// Its key.
    pub serving_key: PathBuf,
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    pki::write_private(path, text.as_bytes()).with_context(|| format!("write {}", path.display()))
}

impl Credentials {
    /// Opens the PKI in `dir` (made by the apiserver started with `--cert-dir dir`).
    pub fn open(dir: &Path, port: u16) -> anyhow::Result<Credentials> {
        let pki = pki::ClusterPki::open(dir)
            .with_context(|| format!("the cluster PKI in {}", dir.display()))?;
        Ok(Credentials { pki, port })
    }

    /// The cluster CA certificate's path.
    pub fn ca_file(&self) -> PathBuf {
        self.pki.path("ca.crt")
    }

    fn kubeconfig(&self, host: IpAddr, kc: &pki::KeyCert) -> String {
        pki::kubeconfig(
            "minicluster",
            &format!("https://{host}:{}", self.port),
            &self.pki.ca_pem,
            pki::Credential::Cert {
                cert_pem: &kc.cert_pem,
                key_pem: &kc.key_pem,
            },
        )
    }

    /// Writes `component`'s kubeconfig for the apiserver at `host` to `path`.
    pub fn component(
        &self,
        component: pki::Component,
        host: IpAddr,
        path: &Path,
    ) -> anyhow::Result<()> {
        let kc = self.pki.component(component)?;
        write_private(path, &self.kubeconfig(host, &kc))
    }

    /// Makes node `name`'s client and serving certificates and writes its files into `dir`.
    pub fn node(
        &self,
        name: &str,
        ip: IpAddr,
        host: IpAddr,
        dir: &Path,
    ) -> anyhow::Result<NodeFiles> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let (client, serving) = self.pki.ensure_node(name, &[ip])?;
        let files = NodeFiles {
            kubeconfig: dir.join("kubelet.kubeconfig"),
            serving_cert: dir.join("kubelet.crt"),
            serving_key: dir.join("kubelet.key"),
        };
        write_private(&files.kubeconfig, &self.kubeconfig(host, &client))?;
        write_private(&files.serving_cert, &serving.cert_pem)?;
        write_private(&files.serving_key, &serving.key_pem)?;
        Ok(files)
    }
}

/// The host-gw routes' role: read every Node (flannel's ClusterRole has the same).
pub fn host_gateway_rbac() -> Vec<Value> {
    let labels = json!({"app.kubernetes.io/managed-by": "mini-cluster"});
    vec![
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "minicluster:host-gw", "labels": labels},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "minicluster:host-gw", "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                "name": "minicluster:host-gw"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                "name": "system:minicluster:host-gw"}],
        }),
    ]
}

/// ClusterRoleBindings of the controller-manager's user to every controller's bootstrap
/// ClusterRole (`system:controller:*`).
pub fn controller_manager_bindings() -> Vec<Value> {
    auth::policy::controller_roles()
        .into_iter()
        .filter_map(|role| role.metadata.name)
        .map(|role| {
            let suffix = role.trim_start_matches("system:controller:");
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {
                    "name": format!("minicluster:kube-controller-manager:{suffix}"),
                    "labels": {"app.kubernetes.io/managed-by": "mini-cluster"},
                },
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                    "name": "system:kube-controller-manager"}],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_manager_is_bound_to_every_controller_role() {
        let bindings = controller_manager_bindings();
        let roles = auth::policy::controller_roles();
        assert_eq!(bindings.len(), roles.len());
        assert!(bindings.iter().any(|b| b["roleRef"]["name"]
            == "system:controller:deployment-controller"
            && b["metadata"]["name"]
                == "minicluster:kube-controller-manager:deployment-controller"));
    }
}
