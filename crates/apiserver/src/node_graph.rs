//! Which objects each node's pods use, for the Node authorizer (upstream's node graph,
//! plugin/pkg/auth/authorizer/node/graph_populator.go): every pod bound to a node relates the
//! node to the pod itself, its ServiceAccount, and the secrets, configmaps and claims its spec
//! names (volumes, projected sources, env, envFrom, imagePullSecrets, generic ephemeral
//! volumes); a claim bound to a PersistentVolume relates the volume too. Kept in memory from the
//! watch cache and read synchronously on every request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use auth::node::Relations;
use serde_json::Value;

use crate::cache::{CacheEvent, EventType, WatchCache};
use crate::informer::{self, Follower};

/// One related object: kind (`secret`, `configmap`, `persistentvolumeclaim`, `serviceaccount`,
/// `pod`), namespace, name.
type Edge = (&'static str, String, String);

#[derive(Default)]
struct Graph {
    /// Pod `ns/name` → its node and the objects it uses.
    pods: HashMap<String, (String, Vec<Edge>)>,
    /// (node, edge) → how many of the node's pods use it.
    counts: HashMap<(String, Edge), usize>,
    /// Claim `ns/name` → the PersistentVolume it is bound to.
    claims: HashMap<(String, String), String>,
}

/// The node graph.
#[derive(Default)]
pub struct NodeGraph {
    graph: RwLock<Graph>,
}

impl NodeGraph {
    /// A graph fed by `cache` from now on.
    pub fn start(cache: &Arc<WatchCache>) -> Arc<NodeGraph> {
        let g = Arc::new(NodeGraph::default());
        informer::follow(cache, "", "pods", g.clone());
        informer::follow(cache, "", "persistentvolumeclaims", g.clone());
        g
    }
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn items<'a>(v: &'a Value, p: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(p).and_then(Value::as_array).into_iter().flatten()
}

/// The objects a pod's spec uses (upstream's podutil.VisitPodSecretNames / ConfigMapNames and
/// the graph's claim edges).
pub fn pod_edges(pod: &Value) -> Vec<Edge> {
    let ns = s(pod, "/metadata/namespace").to_string();
    let pod_name = s(pod, "/metadata/name");
    let mut out: Vec<Edge> = vec![("pod", ns.clone(), pod_name.to_string())];
    let mut add = |kind: &'static str, name: &str| {
        if !name.is_empty() {
            out.push((kind, ns.clone(), name.to_string()));
        }
    };
    let sa = s(pod, "/spec/serviceAccountName");
    add("serviceaccount", if sa.is_empty() { "default" } else { sa });
    for p in items(pod, "/spec/imagePullSecrets") {
        add("secret", s(p, "/name"));
    }
    for vol in items(pod, "/spec/volumes") {
        add("secret", s(vol, "/secret/secretName"));
        add("configmap", s(vol, "/configMap/name"));
        add(
            "persistentvolumeclaim",
            s(vol, "/persistentVolumeClaim/claimName"),
        );
        if vol.pointer("/ephemeral").is_some() {
            add(
                "persistentvolumeclaim",
                &format!("{pod_name}-{}", s(vol, "/name")),
            );
        }
        for src in items(vol, "/projected/sources") {
            add("secret", s(src, "/secret/name"));
            add("configmap", s(src, "/configMap/name"));
        }
        for p in [
            "/azureFile/secretName",
            "/cephfs/secretRef/name",
            "/cinder/secretRef/name",
            "/flexVolume/secretRef/name",
            "/iscsi/secretRef/name",
            "/rbd/secretRef/name",
            "/scaleIO/secretRef/name",
            "/storageos/secretRef/name",
            "/csi/nodePublishSecretRef/name",
        ] {
            add("secret", s(vol, p));
        }
    }
    for list in [
        "/spec/initContainers",
        "/spec/containers",
        "/spec/ephemeralContainers",
    ] {
        for c in items(pod, list) {
            for e in items(c, "/envFrom") {
                add("secret", s(e, "/secretRef/name"));
                add("configmap", s(e, "/configMapRef/name"));
            }
            for e in items(c, "/env") {
                add("secret", s(e, "/valueFrom/secretKeyRef/name"));
                add("configmap", s(e, "/valueFrom/configMapKeyRef/name"));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

impl Graph {
    fn remove_pod(&mut self, key: &str) {
        let Some((node, edges)) = self.pods.remove(key) else {
            return;
        };
        for e in edges {
            let k = (node.clone(), e);
            if let Some(n) = self.counts.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(&k);
                }
            }
        }
    }

    fn put_pod(&mut self, key: String, pod: &Value) {
        self.remove_pod(&key);
        let node = s(pod, "/spec/nodeName");
        if node.is_empty() {
            return;
        }
        let edges = pod_edges(pod);
        for e in &edges {
            *self
                .counts
                .entry((node.to_string(), e.clone()))
                .or_default() += 1;
        }
        self.pods.insert(key, (node.to_string(), edges));
    }

    fn has(&self, node: &str, kind: &'static str, ns: &str, name: &str) -> bool {
        self.counts
            .contains_key(&(node.to_string(), (kind, ns.to_string(), name.to_string())))
    }
}

impl Follower for NodeGraph {
    fn reset(&self, plural: &str) {
        let Ok(mut g) = self.graph.write() else {
            return;
        };
        if plural == "pods" {
            g.pods.clear();
            g.counts.clear();
        } else {
            g.claims.clear();
        }
    }

    fn apply(&self, plural: &str, ev: &CacheEvent) {
        let obj: &Value = &ev.object;
        let (ns, name) = (s(obj, "/metadata/namespace"), s(obj, "/metadata/name"));
        let Ok(mut g) = self.graph.write() else {
            return;
        };
        let deleted = ev.kind == EventType::Deleted;
        if plural == "pods" {
            let key = format!("{ns}/{name}");
            if deleted {
                g.remove_pod(&key);
            } else {
                g.put_pod(key, obj);
            }
        } else {
            let key = (ns.to_string(), name.to_string());
            let volume = s(obj, "/spec/volumeName");
            if deleted || volume.is_empty() {
                g.claims.remove(&key);
            } else {
                g.claims.insert(key, volume.to_string());
            }
        }
    }
}

impl Relations for NodeGraph {
    fn related(&self, node: &str, kind: &str, ns: &str, name: &str) -> bool {
        let Ok(g) = self.graph.read() else {
            return false;
        };
        let kind: &'static str = match kind {
            "secret" => "secret",
            "configmap" => "configmap",
            "persistentvolumeclaim" => "persistentvolumeclaim",
            "serviceaccount" => "serviceaccount",
            "pod" => "pod",
            "persistentvolume" => {
                let claims: HashSet<&(String, String)> = g
                    .claims
                    .iter()
                    .filter(|(_, pv)| pv.as_str() == name)
                    .map(|(k, _)| k)
                    .collect();
                return claims
                    .iter()
                    .any(|(cns, cname)| g.has(node, "persistentvolumeclaim", cns, cname));
            }
            _ => return false,
        };
        g.has(node, kind, ns, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: EventType, object: Value) -> CacheEvent {
        CacheEvent {
            kind,
            key: String::new(),
            revision: 1,
            object: Arc::new(object),
            previous: None,
        }
    }

    fn pod(name: &str, node: &str) -> Value {
        json!({
            "metadata": {"namespace": "ns", "name": name},
            "spec": {
                "nodeName": node,
                "serviceAccountName": "robot",
                "imagePullSecrets": [{"name": "pull"}],
                "volumes": [
                    {"name": "a", "secret": {"secretName": "vol-secret"}},
                    {"name": "b", "projected": {"sources": [{"configMap": {"name": "proj-cm"}}]}},
                    {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "d", "ephemeral": {"volumeClaimTemplate": {}}}
                ],
                "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "init-env"}}]}],
                "containers": [{"name": "c", "env": [
                    {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}}
                ]}]
            }
        })
    }

    #[test]
    fn a_node_is_related_to_exactly_what_its_pods_use() {
        let g = NodeGraph::default();
        g.apply("pods", &event(EventType::Added, pod("web", "n1")));
        g.apply(
            "persistentvolumeclaims",
            &event(
                EventType::Added,
                json!({"metadata": {"namespace": "ns", "name": "data"}, "spec": {"volumeName": "pv-1"}}),
            ),
        );
        for (kind, name) in [
            ("pod", "web"),
            ("serviceaccount", "robot"),
            ("secret", "pull"),
            ("secret", "vol-secret"),
            ("secret", "init-env"),
            ("configmap", "proj-cm"),
            ("configmap", "env-cm"),
            ("persistentvolumeclaim", "data"),
            ("persistentvolumeclaim", "web-d"),
        ] {
            assert!(g.related("n1", kind, "ns", name), "{kind} {name}");
            assert!(!g.related("n2", kind, "ns", name), "n2 {kind} {name}");
            assert!(
                !g.related("n1", kind, "other", name),
                "other ns {kind} {name}"
            );
        }
        assert!(g.related("n1", "persistentvolume", "", "pv-1"));
        assert!(!g.related("n2", "persistentvolume", "", "pv-1"));
        assert!(!g.related("n1", "secret", "ns", "unused"));
        // A second pod sharing a secret: deleting one keeps the edge, deleting both drops it.
        g.apply("pods", &event(EventType::Added, pod("api", "n1")));
        g.apply("pods", &event(EventType::Deleted, pod("web", "n1")));
        assert!(g.related("n1", "secret", "ns", "vol-secret"));
        assert!(!g.related("n1", "pod", "ns", "web"));
        g.apply("pods", &event(EventType::Deleted, pod("api", "n1")));
        assert!(!g.related("n1", "secret", "ns", "vol-secret"));
        // A pod moving nodes (or unbound) moves its edges.
        g.apply("pods", &event(EventType::Added, pod("web", "")));
        assert!(!g.related("n1", "pod", "ns", "web"));
        g.apply("pods", &event(EventType::Modified, pod("web", "n2")));
        assert!(g.related("n2", "secret", "ns", "pull"));
        assert!(!g.related("n1", "secret", "ns", "pull"));
    }
}
