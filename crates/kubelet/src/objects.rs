//! The ConfigMaps and Secrets the node's pods use, fetched one by one with a short cache, as
//! upstream's kubelet does with its "Cache" change-detection strategy: a kubelet may read only
//! the objects of pods bound to it (the Node authorizer), so it never lists or watches every
//! Secret of the cluster, and holds none it does not need.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::Client;

/// How long a fetched object (or its absence) is used before it is fetched again: short
/// against the pod resync, so an update reaches the pod's volumes at its next sync.
pub const TTL: Duration = Duration::from_secs(3);

type Entry<K> = (Option<K>, Instant);

/// Per-object GETs with a TTL.
pub struct ObjectCache {
    client: Client,
    config_maps: Mutex<HashMap<(String, String), Entry<ConfigMap>>>,
    secrets: Mutex<HashMap<(String, String), Entry<Secret>>>,
}

impl ObjectCache {
    /// A cache over `client`.
    pub fn new(client: Client) -> ObjectCache {
        ObjectCache {
            client,
            config_maps: Mutex::default(),
            secrets: Mutex::default(),
        }
    }

    /// ConfigMap `ns/name`, None when it does not exist or this node may not read it (yet:
    /// the apiserver learns of a new pod's objects an instant after the pod).
    pub async fn config_map(&self, ns: &str, name: &str) -> Option<ConfigMap> {
        get(&self.client, &self.config_maps, ns, name).await
    }

    /// Secret `ns/name`, as [`Self::config_map`].
    pub async fn secret(&self, ns: &str, name: &str) -> Option<Secret> {
        get(&self.client, &self.secrets, ns, name).await
    }
}

async fn get<K>(
    client: &Client,
    cache: &Mutex<HashMap<(String, String), Entry<K>>>,
    ns: &str,
    name: &str,
) -> Option<K>
where
    K: Clone
        + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let key = (ns.to_string(), name.to_string());
    if let Some((obj, at)) = cache.lock().ok()?.get(&key).cloned() {
        if at.elapsed() < TTL {
            return obj;
        }
    }
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let obj = match api.get_opt(name).await {
        Ok(o) => o,
        Err(e) => {
            tracing::debug!(ns, name, error = %e, "fetching a pod's object");
            None
        }
    };
    if let Ok(mut c) = cache.lock() {
        if c.len() > 10_000 {
            c.retain(|_, (_, at)| at.elapsed() < TTL);
        }
        c.insert(key, (obj.clone(), Instant::now()));
    }
    obj
}
