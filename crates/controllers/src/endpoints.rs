//! The Endpoints and EndpointSlice controllers (one reconcile writes both): for every Service
//! with a selector, its pods with an IP become addresses (ready) or notReadyAddresses (slices:
//! conditions), named target ports resolved per pod, publishNotReadyAddresses honoured, and
//! hostname/subdomain carried for StatefulSet-style pods.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};

use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::util::{self, key_of, split_key};
use crate::Result;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// A service port resolved for one pod: (name, port, protocol).
type ResolvedPort = (Option<String>, i32, String);
/// Ready addresses, not-ready addresses and slice endpoints of pods sharing resolved ports.
type Group = (Vec<EndpointAddress>, Vec<EndpointAddress>, Vec<Endpoint>);
/// The ports and endpoints of one EndpointSlice.
pub type SliceContent = (Vec<SlicePort>, Vec<Endpoint>);

/// The Endpoints/EndpointSlice controller.
pub struct EndpointsController {
    client: Client,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue>,
}

fn selects(svc: &Service, pod: &Pod) -> bool {
    let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    svc.namespace() == pod.namespace()
        && !sel.is_empty()
        && sel.iter().all(|(k, v)| pod.labels().get(k) == Some(v))
}

/// (name, port, protocol) of each service port resolved for `pod`; None if a named port is
/// missing in the pod.
fn resolve_ports(svc: &Service, pod: &Pod) -> Vec<(Option<String>, i32, String)> {
    let mut out = Vec::new();
    for sp in svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
    {
        let proto = sp.protocol.clone().unwrap_or_else(|| "TCP".into());
        let port = match &sp.target_port {
            None => Some(sp.port),
            Some(IntOrString::Int(i)) => Some(*i),
            Some(IntOrString::String(name)) => pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter())
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.clone().unwrap_or_else(|| "TCP".into()) == proto
                })
                .map(|p| p.container_port),
        };
        if let Some(port) = port {
            out.push((sp.name.clone(), port, proto));
        }
    }
    out
}

/// The desired Endpoints subsets and slice endpoints of `svc` over `pods`.
pub fn compute(svc: &Service, pods: &[Arc<Pod>]) -> (Vec<EndpointSubset>, Vec<SliceContent>) {
    let publish_not_ready = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        == Some(true);
    let svc_name = svc.name_any();
    let mut groups: BTreeMap<Vec<ResolvedPort>, Group> = BTreeMap::new();
    let mut sorted: Vec<&Arc<Pod>> = pods.iter().filter(|p| selects(svc, p)).collect();
    sorted.sort_by_key(|p| p.name_any());
    for p in sorted {
        let Some(ip) = p
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .filter(|ip| !ip.is_empty())
        else {
            continue;
        };
        if matches!(util::pod_phase(p), "Succeeded" | "Failed") {
            continue;
        }
        let terminating = p.metadata.deletion_timestamp.is_some();
        if terminating && !publish_not_ready {
            continue;
        }
        let ready = (util::pod_is_ready(p) && !terminating) || publish_not_ready;
        let spec = p.spec.as_ref();
        let hostname = spec
            .and_then(|s| s.hostname.clone())
            .filter(|_| spec.and_then(|s| s.subdomain.as_deref()) == Some(svc_name.as_str()));
        let node = spec.and_then(|s| s.node_name.clone());
        let target = ObjectReference {
            kind: Some("Pod".into()),
            name: Some(p.name_any()),
            namespace: p.namespace(),
            uid: p.uid(),
            ..Default::default()
        };
        let addr = EndpointAddress {
            ip: ip.clone(),
            hostname: hostname.clone(),
            node_name: node.clone(),
            target_ref: Some(target.clone()),
        };
        let ep = Endpoint {
            addresses: vec![ip],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(util::pod_is_ready(p) || publish_not_ready),
                terminating: Some(terminating),
            }),
            hostname,
            node_name: node,
            target_ref: Some(target),
            ..Default::default()
        };
        let g = groups.entry(resolve_ports(svc, p)).or_default();
        if ready {
            g.0.push(addr);
        } else {
            g.1.push(addr);
        }
        g.2.push(ep);
    }
    let mut subsets = Vec::new();
    let mut slices = Vec::new();
    for (ports, (ready, not_ready, eps)) in groups {
        let eports: Vec<EndpointPort> = ports
            .iter()
            .map(|(n, p, proto)| EndpointPort {
                name: n.clone(),
                port: *p,
                protocol: Some(proto.clone()),
                app_protocol: None,
            })
            .collect();
        let sports: Vec<SlicePort> = ports
            .iter()
            .map(|(n, p, proto)| SlicePort {
                name: n.clone(),
                port: Some(*p),
                protocol: Some(proto.clone()),
                app_protocol: None,
            })
            .collect();
        subsets.push(EndpointSubset {
            addresses: (!ready.is_empty()).then_some(ready),
            not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
            ports: (!eports.is_empty()).then_some(eports),
        });
        slices.push((sports, eps));
    }
    (subsets, slices)
}

impl EndpointsController {
    /// Wires the controller to the shared informers.
    pub fn new(
        client: Client,
        services: Arc<Informer<Service>>,
        pods: Arc<Informer<Pod>>,
    ) -> Arc<Self> {
        let queue = WorkQueue::new("endpoints");
        {
            let q = queue.clone();
            services.on_change(move |old, new| {
                if let Some(s) = new.or(old) {
                    q.add(key_of(s));
                }
            });
        }
        {
            let q = queue.clone();
            let svcs = services.store().clone();
            pods.on_change(move |old, new| {
                for s in svcs.state() {
                    if old.is_some_and(|p| selects(&s, p)) || new.is_some_and(|p| selects(&s, p)) {
                        q.add(key_of(s.as_ref()));
                    }
                }
            });
        }
        Arc::new(EndpointsController {
            client,
            services,
            pods,
            queue,
        })
    }

    /// Runs `workers` workers.
    pub async fn run(self: Arc<Self>, workers: usize) {
        self.services.wait_synced().await;
        self.pods.wait_synced().await;
        let c = self.clone();
        crate::queue::run_workers(self.queue.clone(), workers, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    /// Writes the Endpoints and EndpointSlices of the Service `key`.
    pub async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (ns, name) = split_key(key);
        let ns = ns.unwrap_or("default");
        let eapi: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let sapi: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        let Some(svc) = self
            .services
            .store()
            .find(|s| s.name_any() == name && s.namespace().as_deref() == Some(ns))
        else {
            match eapi.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
            return Ok(None);
        };
        if svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .is_none_or(|s| s.is_empty())
        {
            return Ok(None);
        }
        let pods: Vec<Arc<Pod>> = self
            .pods
            .store()
            .state()
            .into_iter()
            .filter(|p| p.namespace().as_deref() == Some(ns))
            .collect();
        let (subsets, slices) = compute(&svc, &pods);
        // Endpoints
        let mut labels = svc.labels().clone();
        labels.insert(
            "endpoints.kubernetes.io/managed-by".into(),
            "endpoint-controller".into(),
        );
        let desired = Endpoints {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(ns.to_string()),
                labels: Some(labels.clone()),
                ..Default::default()
            },
            subsets: (!subsets.is_empty()).then_some(subsets),
        };
        match eapi.get_opt(name).await? {
            None => {
                eapi.create(&PostParams::default(), &desired).await?;
            }
            Some(mut cur) => {
                if cur.subsets != desired.subsets || cur.labels() != &labels {
                    cur.subsets = desired.subsets.clone();
                    cur.metadata.labels = Some(labels.clone());
                    eapi.replace(name, &PostParams::default(), &cur).await?;
                }
            }
        }
        // EndpointSlices: one per distinct port list
        let lp = ListParams::default().labels(&format!(
            "{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}"
        ));
        let mut existing = sapi.list(&lp).await?.items;
        existing.sort_by_key(|s| s.name_any());
        let mut slabels = svc.labels().clone();
        slabels.insert(SERVICE_NAME_LABEL.into(), name.to_string());
        slabels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        let slices = if slices.is_empty() {
            vec![(Vec::new(), Vec::new())]
        } else {
            slices
        };
        let wanted = slices.len();
        for (i, (ports, eps)) in slices.into_iter().enumerate() {
            let ports = (!ports.is_empty()).then_some(ports);
            match existing.get(i) {
                Some(cur) => {
                    if cur.endpoints != eps || cur.ports != ports || cur.labels() != &slabels {
                        let mut s = cur.clone();
                        s.endpoints = eps;
                        s.ports = ports;
                        s.metadata.labels = Some(slabels.clone());
                        sapi.replace(&cur.name_any(), &PostParams::default(), &s)
                            .await?;
                    }
                }
                None => {
                    let s = EndpointSlice {
                        metadata: ObjectMeta {
                            generate_name: Some(format!("{name}-")),
                            namespace: Some(ns.to_string()),
                            labels: Some(slabels.clone()),
                            owner_references: Some(vec![util::new_controller_ref(svc.as_ref())]),
                            ..Default::default()
                        },
                        address_type: "IPv4".into(),
                        endpoints: eps,
                        ports,
                    };
                    sapi.create(&PostParams::default(), &s).await?;
                }
            }
        }
        for extra in existing.iter().skip(wanted) {
            match sapi
                .delete(&extra.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}
