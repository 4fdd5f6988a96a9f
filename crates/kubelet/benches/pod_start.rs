//! Pod start latency (create → Running seen by a watch) for one pod at a time and for a burst
//! of 50 pods on one node, plus the kubelet's resident memory idle and with 50 pods; run as
//! root with `cargo bench -p kubelet --bench pod_start`. Results go to docs/perf.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams, WatchEvent, WatchParams};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn rss_kib(pid: u32) -> u64 {
    // The kubelet runs under nsenter, which execs it: same pid.
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn pod(name: &str) -> Pod {
    common::pod(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{bench: start}}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: app, image: "busybox:latest", imagePullPolicy: IfNotPresent, command: ["sleep", "100000"]}}
"#
    ))
}

/// Creates `names` at once and returns each one's create→Running latency in ms.
async fn start_batch(c: &common::Cluster, names: &[String]) -> Vec<f64> {
    let api = c.pods("default");
    let wp = WatchParams::default().labels("bench=start");
    let mut stream = api.watch(&wp, "0").await.unwrap().boxed();
    let mut started: HashMap<String, Instant> = HashMap::new();
    for n in names {
        started.insert(n.clone(), Instant::now());
        api.create(&PostParams::default(), &pod(n)).await.unwrap();
    }
    let mut done: HashMap<String, f64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while done.len() < names.len() && Instant::now() < deadline {
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(30), stream.next()).await
        else {
            break;
        };
        if let Ok(WatchEvent::Modified(p)) = ev {
            let name = p.metadata.name.clone().unwrap_or_default();
            let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            if running && !done.contains_key(&name) {
                if let Some(t) = started.get(&name) {
                    done.insert(name, t.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }
    }
    assert_eq!(done.len(), names.len(), "not every pod started");
    done.into_values().collect()
}

async fn delete_all(c: &common::Cluster) {
    let api = c.pods("default");
    let dp = DeleteParams::default();
    let _ = api
        .delete_collection(&dp, &kube::api::ListParams::default().labels("bench=start"))
        .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let l = api
            .list(&kube::api::ListParams::default().labels("bench=start"))
            .await
            .unwrap();
        if l.items.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !common::prerequisites("pod_start bench") {
        return;
    }
    let c = common::Cluster::start(&format!("kb{}", std::process::id() % 10000), 1).await;
    c.wait_for(Duration::from_secs(60), "the node to be Ready", || async {
        let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(c.client.clone());
        nodes.get(&c.nodes[0].name).await.ok().is_some_and(|n| {
            n.status
                .and_then(|s| s.conditions)
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = c.nodes[0].child.as_ref().unwrap().id();
    let idle = rss_kib(pid);
    let mut single = Vec::new();
    for i in 0..10 {
        let names = vec![format!("single-{i}")];
        single.extend(start_batch(&c, &names).await);
        delete_all(&c).await;
    }
    let names: Vec<String> = (0..50).map(|i| format!("burst-{i}")).collect();
    let mut burst = start_batch(&c, &names).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let with_50 = rss_kib(pid);
    println!(
        "one pod at a time (10 runs): p50 {:.0} ms, p99 {:.0} ms",
        pct(&mut single, 0.5),
        pct(&mut single, 0.99)
    );
    println!(
        "burst of 50 pods: p50 {:.0} ms, p99 {:.0} ms",
        pct(&mut burst, 0.5),
        pct(&mut burst, 0.99)
    );
    println!(
        "kubelet RSS: idle {:.1} MiB, with 50 pods {:.1} MiB",
        idle as f64 / 1024.0,
        with_50 as f64 / 1024.0
    );
    delete_all(&c).await;
    let left = c.shutdown();
    assert!(left.is_empty(), "left behind: {left:#?}");
}
