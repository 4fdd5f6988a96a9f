//! Scheduler benchmark (issue 3; docs/perf.md "## Scheduler"): the scheduling algorithm alone
//! (in-process cache, no API), the real scheduler's throughput through a real in-process
//! mini-apiserver with NODES hollow nodes and PODS pending pods (default 1,000 and 10,000), and
//! the controller-manager's time from a 1,000-replica Deployment created to all its pods created.
//!
//!     cargo bench -p scheduler --bench scheduler_perf            # NODES=… PODS=… to change sizes

#[path = "../../controllers/tests/common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{add_node, hollow_node, TestServer};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use scheduler::cache::Cache;
use serde_json::json;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small pod as density tests use: 100m CPU, 64Mi.
fn small_pod(ns: &str, name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "density"}},
        "spec": {"containers": [{"name": "c", "image": "pause:latest",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}
    }))
    .expect("pod")
}

fn node_name(i: usize) -> String {
    format!("hollow-{i:05}")
}

/// The algorithm alone: snapshot, filter, score, pick and assume for every pod, in one thread.
fn algorithm_alone(nodes: usize, pods: usize) {
    let mut cache = Cache::default();
    for i in 0..nodes {
        cache.upsert_node(Arc::new(hollow_node(&node_name(i), "8", "16Gi", "110")));
    }
    let all: Vec<Pod> = (0..pods)
        .map(|i| {
            let mut p = small_pod("default", &format!("p-{i}"));
            p.metadata.uid = Some(format!("uid-{i}"));
            p
        })
        .collect();
    let started = Instant::now();
    for p in &all {
        let snapshot = cache.snapshot();
        let host = scheduler::scheduler::select_host(p, &snapshot).expect("a node fits");
        cache.assume(p, &host);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "algorithm alone: {pods} pods on {nodes} nodes in {secs:.2} s = {:.0} pods/s",
        pods as f64 / secs
    );
}

/// Waits until `want` pods in `ns` match `done`, watching; returns when that happened.
async fn watch_until(client: &Client, ns: &str, want: usize, done: fn(&Pod) -> bool) -> Instant {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let stream = watcher::watcher(api, watcher::Config::default().any_semantic());
    futures::pin_mut!(stream);
    let mut seen: HashSet<String> = HashSet::new();
    while let Some(event) = stream.try_next().await.expect("watch") {
        match event {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) if done(&p) => {
                seen.insert(p.name_any());
            }
            _ => {}
        }
        if seen.len() >= want {
            return Instant::now();
        }
    }
    panic!("watch ended");
}

fn bound(p: &Pod) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

async fn end_to_end(srv: &TestServer, nodes: usize, pods: usize) {
    let client = srv.client();
    let started = Instant::now();
    futures::stream::iter(0..nodes)
        .for_each_concurrent(16, |i| {
            let client = client.clone();
            async move { add_node(&client, hollow_node(&node_name(i), "8", "16Gi", "110")).await }
        })
        .await;
    println!(
        "{nodes} hollow nodes created in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    futures::stream::iter(0..pods)
        .for_each_concurrent(16, |i| {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &small_pod("default", &format!("p-{i}")),
                )
                .await
                .expect("create pod");
            }
        })
        .await;
    println!(
        "{pods} pending pods created in {:.1} s ({:.0} creates/s)",
        started.elapsed().as_secs_f64(),
        pods as f64 / started.elapsed().as_secs_f64()
    );
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move { watch_until(&client, "default", pods, bound).await })
    };
    let started = Instant::now();
    let sched = scheduler::scheduler::Scheduler::new(client.clone(), Default::default());
    let task = tokio::spawn(sched.run());
    let finished = tokio::time::timeout(Duration::from_secs(1800), waiter)
        .await
        .expect("all pods bound within 30 minutes")
        .expect("watch task");
    let secs = (finished - started).as_secs_f64();
    println!(
        "end to end: scheduler started → {pods} pods bound on {nodes} nodes in {secs:.1} s = {:.0} pods/s (informer sync included)",
        pods as f64 / secs
    );
    task.abort();
}

async fn controller_manager(srv: &TestServer, replicas: usize) {
    let client = srv.client();
    let cm = tokio::spawn(controllers::manager::run_controllers(
        client.clone(),
        Default::default(),
    ));
    let ns = "cm-bench";
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .expect("namespace");
    // let the controllers' informers list the 10,000 pods first
    tokio::time::sleep(Duration::from_secs(5)).await;
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move { watch_until(&client, ns, replicas, |_| true).await })
    };
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "big", "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "big"}},
            "template": {"metadata": {"labels": {"app": "big"}},
                "spec": {"containers": [{"name": "c", "image": "pause:latest"}]}}}
    }))
    .unwrap();
    let started = Instant::now();
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &d)
        .await
        .expect("deployment");
    let finished = tokio::time::timeout(Duration::from_secs(600), waiter)
        .await
        .expect("all pods created within 10 minutes")
        .expect("watch task");
    let secs = (finished - started).as_secs_f64();
    println!(
        "controller-manager: {replicas}-replica Deployment created → {replicas} pods created in {secs:.2} s = {:.0} pods/s",
        replicas as f64 / secs
    );
    cm.abort();
}

fn main() {
    let nodes = env_or("NODES", 1000);
    let pods = env_or("PODS", 10_000);
    algorithm_alone(nodes, pods);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let srv = TestServer::start().await;
        end_to_end(&srv, nodes, pods).await;
        controller_manager(&srv, env_or("REPLICAS", 1000)).await;
    });
}
