//! Root integration tests of the kubelet on a lab cluster: the seed flow (two containers on
//! localhost), probes, restart policies and phases, logs and exec through the apiserver,
//! ConfigMaps/Secrets/emptyDir, graceful deletion, adoption after a kubelet SIGKILL, and
//! pod-to-pod traffic across two nodes; after each, nothing is left behind.

mod common;

use std::time::Duration;

use common::{phase, ready, Cluster};

const T: Duration = Duration::from_secs(90);

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_flow_two_containers_share_localhost() {
    if !common::prerequisites("seed_flow_two_containers_share_localhost") {
        return;
    }
    let c = Cluster::start(&format!("ks{}", std::process::id() % 10000), 1).await;
    let manifest = r#"
apiVersion: v1
kind: Pod
metadata:
  name: seed
spec:
  containers:
  - name: web
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www"]
  - name: client
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "while true; do wget -q -O - http://127.0.0.1:8080/ 2>&1; sleep 1; done"]
"#;
    let path = c.tmp.path().join("seed.yaml");
    std::fs::write(&path, manifest).unwrap();
    let Some(o) = c.kubectl(&["apply", "-f", path.to_str().unwrap()]) else {
        return;
    };
    assert!(o.status.success(), "kubectl apply: {}", err(&o));
    let p = c
        .wait_pod(
            "default",
            "seed",
            T,
            "Running with both containers ready",
            |p| phase(p) == "Running" && ready(p),
        )
        .await;
    let ip = p
        .status
        .as_ref()
        .unwrap()
        .pod_ip
        .clone()
        .unwrap_or_default();
    assert!(
        ip.starts_with("10.244."),
        "pod IP {ip} from the node's podCIDR"
    );
    assert_eq!(
        p.status.as_ref().unwrap().host_ip.as_deref(),
        Some("192.168.77.10")
    );
    // The client reaches the web container over the shared localhost.
    c.wait_for(T, "the client's logs to show the page", || async {
        c.kubectl(&["logs", "seed", "-c", "client"])
            .is_some_and(|o| text(&o).contains("hello-from-web"))
    })
    .await;
    let o = c.kubectl(&["get", "pod", "seed", "--no-headers"]).unwrap();
    let cols: Vec<String> = text(&o).split_whitespace().map(str::to_string).collect();
    assert_eq!(cols[..4], ["seed", "2/2", "Running", "0"], "{}", text(&o));
    let node = c.client.clone();
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(node);
    let n = nodes.get(&c.nodes[0].name).await.unwrap();
    let ready_cond = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone());
    assert_eq!(ready_cond.as_deref(), Some("True"));
    let left = c.shutdown();
    assert!(left.is_empty(), "left behind: {left:#?}");
}
