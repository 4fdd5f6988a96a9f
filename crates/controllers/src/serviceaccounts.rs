//! Two per-namespace controllers of upstream's controller-manager: `serviceaccount`, which
//! gives every active namespace the ServiceAccount `default` (pkg/controller/serviceaccount),
//! and `root-ca-cert-publisher`, which gives every active namespace the ConfigMap
//! `kube-root-ca.crt` holding the cluster CA, so pods can verify the apiserver
//! (pkg/controller/certificates/rootcacertpublisher). Both put back what is deleted or changed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};

use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::Result;

/// The ConfigMap every namespace gets.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// The two controllers: one queue of namespace names.
pub struct NamespaceDefaults {
    client: Client,
    namespaces: Arc<Informer<Namespace>>,
    /// The cluster CA (PEM) to publish; None: no publishing (no --root-ca-file).
    root_ca: Option<String>,
    queue: Arc<WorkQueue>,
}

impl NamespaceDefaults {
    /// Wires the controllers: namespaces, the `default` ServiceAccounts and the
    /// `kube-root-ca.crt` ConfigMaps all enqueue their namespace.
    pub fn new(
        client: Client,
        namespaces: Arc<Informer<Namespace>>,
        accounts: &Informer<ServiceAccount>,
        configmaps: &Informer<ConfigMap>,
        root_ca: Option<String>,
    ) -> Arc<Self> {
        let queue = WorkQueue::new("namespace-defaults");
        let q = queue.clone();
        namespaces.on_change(move |_, new| {
            if let Some(ns) = new {
                q.add(ns.name_any());
            }
        });
        let q = queue.clone();
        accounts.on_change(move |old, new| {
            for sa in [old, new].into_iter().flatten() {
                if sa.name_any() == "default" {
                    q.add(sa.namespace().unwrap_or_default());
                }
            }
        });
        let q = queue.clone();
        configmaps.on_change(move |old, new| {
            for cm in [old, new].into_iter().flatten() {
                if cm.name_any() == ROOT_CA_CONFIGMAP {
                    q.add(cm.namespace().unwrap_or_default());
                }
            }
        });
        Arc::new(NamespaceDefaults {
            client,
            namespaces,
            root_ca,
            queue,
        })
    }

    /// Runs `workers` workers.
    pub async fn run(self: Arc<Self>, workers: usize) {
        self.namespaces.wait_synced().await;
        let c = self.clone();
        crate::queue::run_workers(self.queue.clone(), workers, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    /// Makes sure namespace `ns` (if active) has its ServiceAccount and its CA ConfigMap.
    pub async fn sync(&self, ns: &str) -> Result<Option<Duration>> {
        let active = self
            .namespaces
            .store()
            .get(&kube::runtime::reflector::ObjectRef::new(ns))
            .is_some_and(|n| {
                n.metadata.deletion_timestamp.is_none()
                    && n.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
            });
        if !active {
            return Ok(None);
        }
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), ns);
        if accounts.get_opt("default").await?.is_none() {
            let sa = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some("default".into()),
                    ..Default::default()
                },
                ..Default::default()
            };
            match accounts.create(&PostParams::default(), &sa).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 || e.code == 403 => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(ca) = &self.root_ca {
            self.publish_ca(ns, ca).await?;
        }
        Ok(None)
    }

    async fn publish_ca(&self, ns: &str, ca: &str) -> Result<()> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let data = BTreeMap::from([("ca.crt".to_string(), ca.to_string())]);
        let annotations = BTreeMap::from([(
            "kubernetes.io/description".to_string(),
            DESCRIPTION.to_string(),
        )]);
        match api.get_opt(ROOT_CA_CONFIGMAP).await? {
            None => {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(ROOT_CA_CONFIGMAP.into()),
                        annotations: Some(annotations),
                        ..Default::default()
                    },
                    data: Some(data),
                    ..Default::default()
                };
                match api.create(&PostParams::default(), &cm).await {
                    Ok(_) => Ok(()),
                    // Raced with another create, or the namespace is terminating.
                    Err(kube::Error::Api(e)) if e.code == 409 || e.code == 403 => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Some(mut cm) if cm.data.as_ref() != Some(&data) => {
                cm.data = Some(data);
                cm.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .extend(annotations);
                api.replace(ROOT_CA_CONFIGMAP, &PostParams::default(), &cm)
                    .await?;
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }
}
