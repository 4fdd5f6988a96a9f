//! Benchmark of pod attach and detach on a lab node (root): 50 pod namespaces attached one after
//! the other, then detached; prints p50/p99/max per operation. Run with
//! `cargo bench -p network --bench attach`; results go to docs/perf.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use network::{NetworkConfig, PodNetwork};
use testkit::netns::{Lab, NetNs};

const PODS: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what:<8} n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        percentile(&samples, 50.0).as_secs_f64() * 1e3,
        percentile(&samples, 99.0).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3,
    );
}

fn main() {
    if !testkit::is_root() {
        testkit::missing("root", "run the network benchmark as root");
        return;
    }
    let lab = Lab::new("mcnbench", 1).expect("lab");
    let node = lab.node(0);
    let state = tempfile::tempdir().expect("state dir");
    let net = Arc::new(
        PodNetwork::new(NetworkConfig {
            bridge: "mcbr0".into(),
            pod_cidr: "10.244.1.0/24".parse().unwrap(),
            cluster_cidr: "10.244.0.0/16".parse().unwrap(),
            node_ip: node.ip,
            state_dir: state.path().to_path_buf(),
        })
        .expect("network"),
    );
    let pods: Vec<NetNs> = (0..PODS)
        .map(|i| NetNs::new(&format!("mcnbench-p{i}")).expect("pod netns"))
        .collect();
    let paths: Vec<_> = pods.iter().map(|p| p.path()).collect();
    let (attach, detach) = node
        .ns
        .run_in(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async move {
                    net.setup_node().await.expect("setup");
                    let mut attach = Vec::new();
                    for (i, path) in paths.iter().enumerate() {
                        let start = Instant::now();
                        net.attach(&format!("bench-{i}"), path)
                            .await
                            .expect("attach");
                        attach.push(start.elapsed());
                    }
                    let mut detach = Vec::new();
                    for (i, path) in paths.iter().enumerate() {
                        let start = Instant::now();
                        net.detach(&format!("bench-{i}"), Some(path))
                            .await
                            .expect("detach");
                        detach.push(start.elapsed());
                    }
                    net.teardown_node().await.expect("teardown");
                    (attach, detach)
                })
        })
        .expect("thread in the node namespace");
    report("attach", attach);
    report("detach", detach);
}
