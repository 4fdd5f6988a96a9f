//! The add-on manifest deploy/dns.yaml against the real apiserver: applied with upstream
//! kubectl, every object is created as written (each field of the manifest is stored with the
//! same value), with the names, address and ports the kubelet and clients rely on.

mod common;

use common::TestServer;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Api;
use serde_json::Value;

/// Whether every field of `want` is in `got` with the same value (lists element by element).
fn contains(want: &Value, got: &Value, path: &str) -> Result<(), String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, v) in w {
                let field = format!("{path}.{k}");
                contains(v, g.get(k).ok_or(format!("{field} missing"))?, &field)?;
            }
            Ok(())
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                return Err(format!("{path}: {} items, stored {}", w.len(), g.len()));
            }
            for (i, (a, b)) in w.iter().zip(g).enumerate() {
                contains(a, b, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (w, g) if w == g => Ok(()),
        (w, g) => Err(format!("{path}: manifest {w}, stored {g}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dns_addon_manifest_is_created_as_written() {
    let Some(kubectl) = testkit::kubectl() else {
        return;
    };
    let manifest = testkit::repo_root().join("deploy/dns.yaml");
    let api = TestServer::start().await;
    let kubeconfig = api.kubeconfig();
    let out = tokio::process::Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["apply", "-f"])
        .arg(&manifest)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl apply: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let text = std::fs::read_to_string(&manifest).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    assert_eq!(docs.len(), 5);
    let client = api.client();
    for doc in &docs {
        let kind = doc["kind"].as_str().unwrap();
        let name = doc["metadata"]["name"].as_str().unwrap();
        let stored: Value = match kind {
            "ServiceAccount" => serde_json::to_value(
                Api::<ServiceAccount>::namespaced(client.clone(), "kube-system")
                    .get(name)
                    .await
                    .unwrap(),
            ),
            "Deployment" => serde_json::to_value(
                Api::<Deployment>::namespaced(client.clone(), "kube-system")
                    .get(name)
                    .await
                    .unwrap(),
            ),
            "Service" => serde_json::to_value(
                Api::<Service>::namespaced(client.clone(), "kube-system")
                    .get(name)
                    .await
                    .unwrap(),
            ),
            "ClusterRole" => serde_json::to_value(
                Api::<ClusterRole>::all(client.clone())
                    .get(name)
                    .await
                    .unwrap(),
            ),
            "ClusterRoleBinding" => serde_json::to_value(
                Api::<ClusterRoleBinding>::all(client.clone())
                    .get(name)
                    .await
                    .unwrap(),
            ),
            other => panic!("unexpected kind {other}"),
        }
        .unwrap();
        contains(doc, &stored, kind).unwrap_or_else(|e| panic!("{kind}/{name}: {e}"));
    }

    // What the cluster relies on, spelled out.
    let svc = Api::<Service>::namespaced(client.clone(), "kube-system")
        .get("kube-dns")
        .await
        .unwrap();
    let spec = svc.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.10"));
    let ports: Vec<(String, i32, String)> = spec
        .ports
        .unwrap()
        .into_iter()
        .map(|p| (p.name.unwrap(), p.port, p.protocol.unwrap()))
        .collect();
    assert_eq!(
        ports,
        vec![
            ("dns".to_string(), 53, "UDP".to_string()),
            ("dns-tcp".to_string(), 53, "TCP".to_string()),
            ("metrics".to_string(), 9153, "TCP".to_string())
        ]
    );
    let deploy = Api::<Deployment>::namespaced(client, "kube-system")
        .get("coredns")
        .await
        .unwrap();
    let spec = deploy.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.dns_policy.as_deref(), Some("Default"));
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("mini-dns:latest"));
    assert_eq!(c.image_pull_policy.as_deref(), Some("Never"));
    let args = c.args.clone().unwrap();
    assert!(
        args.contains(&"--metrics-address=0.0.0.0:9153".to_string()),
        "probes reach the pod IP"
    );
}
