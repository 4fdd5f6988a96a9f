//! Keeps the proxy's snapshot current from watch events: only the services whose Service or
//! EndpointSlices changed since the last sync are rebuilt (kube-proxy's ServiceChangeTracker and
//! EndpointsChangeTracker play this role), so a sync at 10,000 services does not re-read them all.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::Event;

use crate::model::{
    endpoints_for, service_ports, slice_service, snapshot, ServicePortName, Snapshot,
};

/// A Service's namespace and name.
pub type ServiceKey = (String, String);

/// What must be rebuilt at the next sync.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dirty {
    /// Everything (start, and after a watch restarts: deletions may have been missed).
    All,
    /// These services.
    Services(BTreeSet<ServiceKey>),
}

/// The snapshot of one node, maintained from Service and EndpointSlice events.
#[derive(Debug)]
pub struct ChangeTracker {
    node_name: String,
    snapshot: Arc<Snapshot>,
    /// Slice names per service (slices live in their service's namespace).
    slices_by_service: HashMap<ServiceKey, BTreeSet<String>>,
    /// The service each slice (namespace, slice name) was last seen belonging to.
    slice_owner: HashMap<(String, String), ServiceKey>,
    dirty: Dirty,
}

impl ChangeTracker {
    /// A tracker whose first snapshot is built from scratch.
    pub fn new(node_name: impl Into<String>) -> Self {
        ChangeTracker {
            node_name: node_name.into(),
            snapshot: Arc::new(Snapshot::default()),
            slices_by_service: HashMap::new(),
            slice_owner: HashMap::new(),
            dirty: Dirty::All,
        }
    }

    fn mark(&mut self, key: ServiceKey) {
        if let Dirty::Services(keys) = &mut self.dirty {
            keys.insert(key);
        }
    }

    /// Whether the next snapshot has anything to rebuild.
    pub fn has_changes(&self) -> bool {
        match &self.dirty {
            Dirty::All => true,
            Dirty::Services(keys) => !keys.is_empty(),
        }
    }

    /// Notes a Service event (after the reflector applied it to its store).
    pub fn service_event(&mut self, event: &Event<Service>) {
        match event {
            Event::Apply(service) | Event::Delete(service) => {
                if let (Some(namespace), Some(name)) =
                    (&service.metadata.namespace, &service.metadata.name)
                {
                    self.mark((namespace.clone(), name.clone()));
                }
            }
            Event::Init | Event::InitApply(_) | Event::InitDone => self.dirty = Dirty::All,
        }
    }

    /// Notes an EndpointSlice event (after the reflector applied it to its store).
    pub fn slice_event(&mut self, event: &Event<EndpointSlice>) {
        let (slice, deleted) = match event {
            Event::Apply(slice) => (slice, false),
            Event::Delete(slice) => (slice, true),
            Event::Init | Event::InitApply(_) | Event::InitDone => {
                self.dirty = Dirty::All;
                return;
            }
        };
        let (Some(namespace), Some(name)) = (&slice.metadata.namespace, &slice.metadata.name)
        else {
            return;
        };
        let slice_key = (namespace.clone(), name.clone());
        if let Some(before) = self.slice_owner.remove(&slice_key) {
            if let Some(names) = self.slices_by_service.get_mut(&before) {
                names.remove(name);
                if names.is_empty() {
                    self.slices_by_service.remove(&before);
                }
            }
            self.mark(before);
        }
        if let Some(owner) = slice_service(slice) {
            if !deleted {
                self.slices_by_service
                    .entry(owner.clone())
                    .or_default()
                    .insert(name.clone());
                self.slice_owner.insert(slice_key, owner.clone());
            }
            self.mark(owner);
        }
    }

    /// The snapshot for the current content of the stores, rebuilding only what changed.
    pub fn snapshot(
        &mut self,
        services: &Store<Service>,
        slices: &Store<EndpointSlice>,
    ) -> Arc<Snapshot> {
        let dirty = std::mem::replace(&mut self.dirty, Dirty::Services(BTreeSet::new()));
        match dirty {
            Dirty::All => self.rebuild(services, slices),
            Dirty::Services(keys) if keys.is_empty() => {}
            Dirty::Services(keys) => {
                // Not shared unless a sync still holds the last one: then this copies it once.
                let snap = Arc::make_mut(&mut self.snapshot);
                for key in keys {
                    update_service(
                        snap,
                        &key,
                        &self.slices_by_service,
                        services,
                        slices,
                        &self.node_name,
                    );
                }
            }
        }
        self.snapshot.clone()
    }

    fn rebuild(&mut self, services: &Store<Service>, slices: &Store<EndpointSlice>) {
        let all_slices = slices.state();
        self.slices_by_service.clear();
        self.slice_owner.clear();
        for slice in &all_slices {
            let (Some(owner), Some(namespace), Some(name)) = (
                slice_service(slice),
                &slice.metadata.namespace,
                &slice.metadata.name,
            ) else {
                continue;
            };
            self.slices_by_service
                .entry(owner.clone())
                .or_default()
                .insert(name.clone());
            self.slice_owner
                .insert((namespace.clone(), name.clone()), owner);
        }
        let all_services = services.state();
        self.snapshot = Arc::new(snapshot(
            all_services.iter().map(|s| s.as_ref()),
            all_slices.iter().map(|s| s.as_ref()),
            &self.node_name,
        ));
    }
}

/// Replaces the entries of one service in `snap` by what the stores hold now.
fn update_service(
    snap: &mut Snapshot,
    key: &ServiceKey,
    slices_by_service: &HashMap<ServiceKey, BTreeSet<String>>,
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
    node_name: &str,
) {
    let (namespace, name) = key;
    let first = ServicePortName {
        namespace: namespace.clone(),
        name: name.clone(),
        port: String::new(),
    };
    let stale: Vec<ServicePortName> = snap
        .services
        .range(first..)
        .take_while(|(port, _)| port.namespace == *namespace && port.name == *name)
        .map(|(port, _)| port.clone())
        .collect();
    for port in stale {
        snap.services.remove(&port);
    }
    let Some(service) = services.get(&ObjectRef::new(name).within(namespace)) else {
        return;
    };
    let service_slices: Vec<Arc<EndpointSlice>> = slices_by_service
        .get(key)
        .into_iter()
        .flatten()
        .filter_map(|slice| slices.get(&ObjectRef::new(slice).within(namespace)))
        .collect();
    for port in service_ports(&service) {
        let endpoints = endpoints_for(&port, service_slices.iter().map(|s| s.as_ref()), node_name);
        snap.services.insert(port.name.clone(), (port, endpoints));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store::Writer;
    use serde_json::json;

    fn service(name: &str, ip: &str) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": "1"},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}]}
        }))
        .unwrap()
    }

    fn slice(name: &str, service: &str, ips: &[&str]) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": "1",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": ips.iter().map(|ip| json!({"addresses": [ip]})).collect::<Vec<_>>()
        }))
        .unwrap()
    }

    struct Cluster {
        services: Writer<Service>,
        slices: Writer<EndpointSlice>,
        tracker: ChangeTracker,
    }

    impl Cluster {
        fn new() -> Self {
            Cluster {
                services: Writer::default(),
                slices: Writer::default(),
                tracker: ChangeTracker::new("node-a"),
            }
        }
        fn service(&mut self, event: Event<Service>) {
            self.services.apply_watcher_event(&event);
            self.tracker.service_event(&event);
        }
        fn slice(&mut self, event: Event<EndpointSlice>) {
            self.slices.apply_watcher_event(&event);
            self.tracker.slice_event(&event);
        }
        /// The tracked snapshot, checked against one built from scratch.
        fn check(&mut self) -> Arc<Snapshot> {
            let (services, slices) = (self.services.as_reader(), self.slices.as_reader());
            let tracked = self.tracker.snapshot(&services, &slices);
            let fresh = snapshot(
                services.state().iter().map(|s| s.as_ref()),
                slices.state().iter().map(|s| s.as_ref()),
                "node-a",
            );
            assert_eq!(*tracked, fresh);
            assert!(!self.tracker.has_changes());
            tracked
        }
    }

    fn ips(snap: &Snapshot, service: &str) -> Vec<String> {
        snap.services
            .iter()
            .filter(|(name, _)| name.name == service)
            .flat_map(|(_, (_, eps))| eps.iter().map(|e| e.ip.to_string()))
            .collect()
    }

    #[test]
    fn follows_services_and_slices_through_every_kind_of_change() {
        let mut c = Cluster::new();
        c.service(Event::Apply(service("a", "10.96.0.1")));
        c.service(Event::Apply(service("b", "10.96.0.2")));
        c.slice(Event::Apply(slice("a-1", "a", &["10.244.0.1"])));
        assert_eq!(ips(&c.check(), "a"), ["10.244.0.1"]);

        // A second slice, then an endpoint change in the first.
        c.slice(Event::Apply(slice("a-2", "a", &["10.244.0.2"])));
        c.slice(Event::Apply(slice("a-1", "a", &["10.244.0.3"])));
        assert_eq!(ips(&c.check(), "a"), ["10.244.0.2", "10.244.0.3"]);

        // A slice relabelled to another service leaves the first one.
        c.slice(Event::Apply(slice("a-2", "b", &["10.244.0.2"])));
        let snap = c.check();
        assert_eq!(ips(&snap, "a"), ["10.244.0.3"]);
        assert_eq!(ips(&snap, "b"), ["10.244.0.2"]);

        // Slice and service deletions.
        c.slice(Event::Delete(slice("a-1", "a", &["10.244.0.3"])));
        assert!(ips(&c.check(), "a").is_empty());
        c.service(Event::Delete(service("b", "10.96.0.2")));
        assert!(!c.check().services.keys().any(|k| k.name == "b"));

        // A service changing its cluster IP.
        c.service(Event::Apply(service("a", "10.96.0.9")));
        let snap = c.check();
        assert_eq!(
            snap.services
                .values()
                .next()
                .unwrap()
                .0
                .cluster_ip
                .to_string(),
            "10.96.0.9"
        );

        // A watch restart: the relist replaces everything.
        c.service(Event::Init);
        c.service(Event::InitApply(service("c", "10.96.0.3")));
        c.service(Event::InitDone);
        c.check();
    }

    #[test]
    fn an_unchanged_sync_reuses_the_snapshot() {
        let mut c = Cluster::new();
        c.service(Event::Apply(service("a", "10.96.0.1")));
        let first = c.check();
        drop(first);
        let (services, slices) = (c.services.as_reader(), c.slices.as_reader());
        let again = c.tracker.snapshot(&services, &slices);
        let once_more = c.tracker.snapshot(&services, &slices);
        assert!(Arc::ptr_eq(&again, &once_more));
    }
}
