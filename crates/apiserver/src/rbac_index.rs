//! The RBAC objects the authorizer reads, kept in memory from the watch cache (upstream's
//! informer-backed listers): every Role, ClusterRole, RoleBinding and ClusterRoleBinding,
//! updated by one subscription per resource and read synchronously on every request through
//! [`auth::rbac::RuleSource`]. Like upstream's, it is eventually consistent: a binding created a
//! moment ago may take a few milliseconds to count. The bindings, which every request walks,
//! are handed out as shared snapshots (remade on each change), not copied per request.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use auth::rbac::RuleSource;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde_json::Value;

use crate::cache::{CacheEvent, EventType, WatchCache};
use crate::informer::{self, Follower};

#[derive(Default)]
struct Maps {
    cluster_roles: HashMap<String, ClusterRole>,
    roles: HashMap<(String, String), Role>,
    cluster_role_bindings: BTreeMap<String, ClusterRoleBinding>,
    role_bindings: HashMap<String, BTreeMap<String, RoleBinding>>,
    /// `cluster_role_bindings` in name order, remade when it changes.
    crb_snapshot: Arc<[ClusterRoleBinding]>,
    /// `role_bindings` of each namespace in name order, remade when they change.
    rb_snapshots: HashMap<String, Arc<[RoleBinding]>>,
}

impl Maps {
    fn snapshot_cluster_role_bindings(&mut self) {
        self.crb_snapshot = self.cluster_role_bindings.values().cloned().collect();
    }

    fn snapshot_role_bindings(&mut self, ns: &str) {
        match self.role_bindings.get(ns).filter(|b| !b.is_empty()) {
            Some(b) => {
                let snap = b.values().cloned().collect();
                self.rb_snapshots.insert(ns.to_string(), snap);
            }
            None => {
                self.rb_snapshots.remove(ns);
            }
        }
    }
}

/// The in-memory RBAC objects.
#[derive(Default)]
pub struct RbacIndex {
    maps: RwLock<Maps>,
}

fn ns_name(v: &Value) -> (String, String) {
    let get = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (get("/metadata/namespace"), get("/metadata/name"))
}

impl RbacIndex {
    /// An index fed by `cache` from now on (its current objects first).
    pub fn start(cache: &Arc<WatchCache>) -> Arc<RbacIndex> {
        let index = Arc::new(RbacIndex::default());
        for plural in [
            "roles",
            "clusterroles",
            "rolebindings",
            "clusterrolebindings",
        ] {
            informer::follow(cache, "rbac.authorization.k8s.io", plural, index.clone());
        }
        index
    }
}

impl Follower for RbacIndex {
    fn reset(&self, plural: &str) {
        let Ok(mut m) = self.maps.write() else { return };
        match plural {
            "roles" => m.roles.clear(),
            "clusterroles" => m.cluster_roles.clear(),
            "rolebindings" => {
                m.role_bindings.clear();
                m.rb_snapshots.clear();
            }
            _ => {
                m.cluster_role_bindings.clear();
                m.snapshot_cluster_role_bindings();
            }
        }
    }

    fn apply(&self, plural: &str, ev: &CacheEvent) {
        let deleted = ev.kind == EventType::Deleted;
        let obj: &Value = &ev.object;
        let (ns, name) = ns_name(obj);
        let Ok(mut m) = self.maps.write() else { return };
        macro_rules! put {
            ($map:expr, $key:expr, $ty:ty) => {
                if deleted {
                    $map.remove(&$key);
                } else if let Ok(o) = serde_json::from_value::<$ty>(obj.clone()) {
                    $map.insert($key, o);
                }
            };
        }
        match plural {
            "roles" => put!(m.roles, (ns, name), Role),
            "clusterroles" => put!(m.cluster_roles, name, ClusterRole),
            "clusterrolebindings" => {
                put!(m.cluster_role_bindings, name, ClusterRoleBinding);
                m.snapshot_cluster_role_bindings();
            }
            _ => {
                let per_ns = m.role_bindings.entry(ns.clone()).or_default();
                put!(per_ns, name, RoleBinding);
                m.snapshot_role_bindings(&ns);
            }
        }
    }
}

impl RuleSource for RbacIndex {
    fn cluster_role(&self, name: &str) -> Option<ClusterRole> {
        self.maps.read().ok()?.cluster_roles.get(name).cloned()
    }
    fn role(&self, namespace: &str, name: &str) -> Option<Role> {
        self.maps
            .read()
            .ok()?
            .roles
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
    fn cluster_role_bindings(&self) -> Arc<[ClusterRoleBinding]> {
        self.maps
            .read()
            .map(|m| m.crb_snapshot.clone())
            .unwrap_or_else(|_| Arc::new([]))
    }
    fn role_bindings(&self, namespace: &str) -> Arc<[RoleBinding]> {
        self.maps
            .read()
            .ok()
            .and_then(|m| m.rb_snapshots.get(namespace).cloned())
            .unwrap_or_else(|| Arc::new([]))
    }
}
