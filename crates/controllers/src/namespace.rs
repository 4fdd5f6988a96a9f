//! The Namespace controller: a Terminating namespace has everything in it deleted (every
//! namespaced resource the apiserver's discovery lists), then its `kubernetes` finalizer removed
//! through the finalize subresource, after which the apiserver deletes it.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{verbs, Discovery, Scope};
use kube::{Client, ResourceExt};

use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::Result;

/// The Namespace controller.
pub struct NamespaceController {
    client: Client,
    namespaces: Arc<Informer<Namespace>>,
    queue: Arc<WorkQueue>,
}

impl NamespaceController {
    /// Wires the controller to the namespace informer.
    pub fn new(client: Client, namespaces: Arc<Informer<Namespace>>) -> Arc<Self> {
        let queue = WorkQueue::new("namespace");
        let q = queue.clone();
        namespaces.on_change(move |_, new| {
            if let Some(ns) = new {
                if ns.metadata.deletion_timestamp.is_some() {
                    q.add(ns.name_any());
                }
            }
        });
        Arc::new(NamespaceController {
            client,
            namespaces,
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

    /// Deletes the contents of a Terminating namespace; finalizes it once empty.
    pub async fn sync(&self, name: &str) -> Result<Option<Duration>> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let Some(ns) = api.get_opt(name).await? else {
            return Ok(None);
        };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(None);
        }
        let discovery = Discovery::new(self.client.clone()).run().await?;
        let mut remaining = 0usize;
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                if caps.scope != Scope::Namespaced
                    || !caps.supports_operation(verbs::LIST)
                    || !caps.supports_operation(verbs::DELETE)
                {
                    continue;
                }
                let rapi: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), name, &ar);
                let items = match rapi.list(&ListParams::default()).await {
                    Ok(l) => l.items,
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => continue,
                    Err(e) => return Err(e.into()),
                };
                for o in items {
                    remaining += 1;
                    if o.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    match rapi
                        .delete(&o.name_any(), &DeleteParams::background())
                        .await
                    {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        if remaining > 0 {
            return Ok(Some(Duration::from_millis(500)));
        }
        // finalize: drop the `kubernetes` finalizer from spec.finalizers
        let mut fin = ns.clone();
        if let Some(spec) = fin.spec.as_mut() {
            spec.finalizers = Some(Vec::new());
        }
        match api
            .replace_subresource("finalize", name, &PostParams::default(), &fin)
            .await
        {
            Ok(_) => Ok(None),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
