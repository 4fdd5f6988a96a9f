//! Wires the shared informers and the controllers together and runs them (after winning the
//! leader election when enabled).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, Node, Pod, ReplicationController, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::Api;
use kube::Client;

use crate::informer::Informer;

/// Settings of the controller-manager.
#[derive(Debug, Clone)]
pub struct Config {
    pub cluster_cidr: ipnet::Ipv4Net,
    pub node_monitor_grace_period: Duration,
    pub pod_eviction_timeout: Duration,
    pub node_monitor_period: Duration,
    pub workers: usize,
    /// The cluster CA (PEM) published as `kube-root-ca.crt` in every namespace.
    pub root_ca: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cluster_cidr: "10.244.0.0/16".parse().unwrap(),
            node_monitor_grace_period: Duration::from_secs(40),
            pod_eviction_timeout: Duration::from_secs(300),
            node_monitor_period: Duration::from_secs(5),
            workers: 4,
            root_ca: None,
        }
    }
}

/// The shared informers, one per resource type.
pub struct Informers {
    pub pods: Arc<Informer<Pod>>,
    pub replicasets: Arc<Informer<ReplicaSet>>,
    pub deployments: Arc<Informer<Deployment>>,
    pub nodes: Arc<Informer<Node>>,
    pub namespaces: Arc<Informer<Namespace>>,
    pub node_leases: Arc<Informer<Lease>>,
    pub services: Arc<Informer<Service>>,
    pub endpointslices: Arc<Informer<EndpointSlice>>,
    pub statefulsets: Arc<Informer<StatefulSet>>,
    pub jobs: Arc<Informer<Job>>,
    pub daemonsets: Arc<Informer<DaemonSet>>,
    pub serviceaccounts: Arc<Informer<ServiceAccount>>,
    /// Only the `kube-root-ca.crt` ConfigMaps.
    pub root_ca_configmaps: Arc<Informer<ConfigMap>>,
    pub clusterroles: Arc<Informer<ClusterRole>>,
    pub replicationcontrollers: Arc<Informer<ReplicationController>>,
}

impl Informers {
    /// Informers over all namespaces.
    pub fn new(client: &Client) -> Informers {
        Informers {
            pods: Informer::new(Api::all(client.clone())),
            replicasets: Informer::new(Api::all(client.clone())),
            deployments: Informer::new(Api::all(client.clone())),
            nodes: Informer::new(Api::all(client.clone())),
            namespaces: Informer::new(Api::all(client.clone())),
            node_leases: Informer::new(Api::namespaced(client.clone(), "kube-node-lease")),
            services: Informer::new(Api::all(client.clone())),
            endpointslices: Informer::new(Api::all(client.clone())),
            statefulsets: Informer::new(Api::all(client.clone())),
            jobs: Informer::new(Api::all(client.clone())),
            daemonsets: Informer::new(Api::all(client.clone())),
            serviceaccounts: Informer::new(Api::all(client.clone())),
            root_ca_configmaps: Informer::with_config(
                Api::all(client.clone()),
                kube::runtime::watcher::Config::default().fields(&format!(
                    "metadata.name={}",
                    crate::serviceaccounts::ROOT_CA_CONFIGMAP
                )),
            ),
            clusterroles: Informer::new(Api::all(client.clone())),
            replicationcontrollers: Informer::new(Api::all(client.clone())),
        }
    }

    fn start(&self) -> Vec<tokio::task::JoinHandle<()>> {
        [
            self.pods.start(),
            self.replicasets.start(),
            self.deployments.start(),
            self.nodes.start(),
            self.namespaces.start(),
            self.node_leases.start(),
            self.services.start(),
            self.endpointslices.start(),
            self.statefulsets.start(),
            self.jobs.start(),
            self.daemonsets.start(),
            self.serviceaccounts.start(),
            self.root_ca_configmaps.start(),
            self.clusterroles.start(),
            self.replicationcontrollers.start(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Runs every controller until the returned future is dropped.
pub async fn run_controllers(client: Client, cfg: Config) {
    let inf = Informers::new(&client);
    let rs = crate::replicaset::ReplicaSetController::new(
        client.clone(),
        inf.replicasets.clone(),
        inf.pods.clone(),
    );
    let dc = crate::deployment::DeploymentController::new(
        client.clone(),
        inf.deployments.clone(),
        inf.replicasets.clone(),
        inf.pods.clone(),
    );
    let gc = crate::gc::GarbageCollector::new(client.clone());
    gc.watch(&inf.pods);
    gc.watch(&inf.replicasets);
    gc.watch(&inf.deployments);
    gc.watch(&inf.services);
    gc.watch(&inf.endpointslices);
    gc.watch(&inf.statefulsets);
    gc.watch(&inf.jobs);
    gc.watch(&inf.daemonsets);
    gc.watch(&inf.replicationcontrollers);
    let rm = crate::replicaset::ReplicaSetController::over(
        client.clone(),
        crate::replication::Replicated::ReplicationControllers(inf.replicationcontrollers.clone()),
        inf.pods.clone(),
    );
    let dsc = crate::daemonset::DaemonSetController::new(
        client.clone(),
        inf.daemonsets.clone(),
        inf.pods.clone(),
        inf.nodes.clone(),
    );
    let jc = crate::job::JobController::new(client.clone(), inf.jobs.clone(), inf.pods.clone());
    let ss = crate::statefulset::StatefulSetController::new(
        client.clone(),
        inf.statefulsets.clone(),
        inf.pods.clone(),
    );
    let ep = crate::endpoints::EndpointsController::new(
        client.clone(),
        inf.services.clone(),
        inf.pods.clone(),
    );
    let ns = crate::namespace::NamespaceController::new(client.clone(), inf.namespaces.clone());
    let nl = crate::nodelifecycle::NodeLifecycleController::new(
        client.clone(),
        &cfg,
        inf.nodes.clone(),
        inf.pods.clone(),
        inf.node_leases.clone(),
    );
    let nsd = crate::serviceaccounts::NamespaceDefaults::new(
        client.clone(),
        inf.namespaces.clone(),
        &inf.serviceaccounts,
        &inf.root_ca_configmaps,
        cfg.root_ca.clone(),
    );
    let cra = crate::clusterroleaggregation::ClusterRoleAggregation::new(
        client.clone(),
        inf.clusterroles.clone(),
    );
    let mut tasks = inf.start();
    tasks.push(tokio::spawn(nsd.run(2)));
    tasks.push(tokio::spawn(cra.run(1)));
    let w = cfg.workers;
    tasks.push(tokio::spawn(rs.run(w)));
    tasks.push(tokio::spawn(rm.run(w)));
    tasks.push(tokio::spawn(dc.run(w)));
    tasks.push(tokio::spawn(gc.run(w)));
    tasks.push(tokio::spawn(ns.run(2)));
    tasks.push(tokio::spawn(nl.run()));
    tasks.push(tokio::spawn(ep.run(w)));
    tasks.push(tokio::spawn(ss.run(w)));
    tasks.push(tokio::spawn(jc.run(w)));
    tasks.push(tokio::spawn(dsc.run(w)));
    let _guard = AbortOnDrop(tasks);
    futures::future::pending::<()>().await;
}

/// Aborts the tasks when dropped.
pub struct AbortOnDrop(pub Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
