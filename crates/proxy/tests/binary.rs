//! Root integration test of the real `mini-proxy` binary inside a network namespace against a
//! real (in-process) apiserver reached through a `testkit::netns::Relay`: it programs a Service
//! from its EndpointSlice, follows endpoint changes, serves /healthz, and `--cleanup` removes
//! every chain.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::{ApiServer, Config};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;
use testkit::netns::{NetNs, Relay};

/// Kills the proxy on drop.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `--cleanup` in the namespace on drop, whatever happened.
struct CleanupOnDrop(String);

impl Drop for CleanupOnDrop {
    fn drop(&mut self) {
        let _ = proxy::syncer::cleanup(&mut proxy::iptables::Exec::in_netns(&self.0));
    }
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

fn slice(ips: &[&str]) -> EndpointSlice {
    let endpoints: Vec<_> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}, "nodeName": "n1"}))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": "default", "name": "web-abc",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_programs_services_from_the_apiserver() {
    if !testkit::is_root() {
        testkit::missing("root", "run the proxy namespace tests as root");
        return;
    }
    if !testkit::have("/usr/sbin/iptables-restore") {
        testkit::missing("iptables-restore", "scripts/setup.sh installs iptables");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn store::Store> =
        Arc::new(store::embedded::EmbeddedStore::open(&dir.path().join("state.db")).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = listener.local_addr().unwrap();
    let cfg = Config {
        advertise: api_addr,
        service_cluster_ip_range: "10.96.0.0/16".parse().unwrap(),
        service_node_port_range: (30000, 30100),
        // no ServiceAccount admission: no controller here makes `default` ServiceAccounts
        admission: apiserver::admission::Plugins::default()
            .without(apiserver::admission::Plugin::ServiceAccount),
        ..Config::default()
    };
    let server = ApiServer::start(store, cfg).await.unwrap();
    let router = server.router();
    let serve = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let client = kube::Client::try_from(kube::Config::new(
        format!("http://{api_addr}").parse().unwrap(),
    ))
    .unwrap();

    let node = NetNs::new("mpx-bin").unwrap();
    let _cleanup = CleanupOnDrop(node.name().to_string());
    let relay = Relay::start(&node.path(), "127.0.0.1:0".parse().unwrap(), api_addr).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: http://{}\nusers:\n- name: t\n  user: {{}}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: t\ncurrent-context: t\n",
            relay.listen_addr()
        ),
    )
    .unwrap();

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"clusterIP": "10.96.0.41", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    slices
        .create(
            &PostParams::default(),
            &slice(&["10.244.1.5", "10.244.1.6"]),
        )
        .await
        .unwrap();

    let metrics_port = testkit::free_port();
    let binary = env!("CARGO_BIN_EXE_mini-proxy");
    let child = node
        .command(binary)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "--node-name",
            "n1",
            "--bind-address",
            "127.0.0.1",
            "--min-sync-period",
            "100ms",
        ])
        .args(["--metrics-port", &metrics_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let proxy_process = Proxy(child);

    let save = |table: &str| {
        node.exec("iptables-save", &["-t", table])
            .unwrap_or_default()
    };
    wait_for("the service's rules", || {
        let nat = save("nat");
        nat.contains("-d 10.96.0.41/32") && nat.contains("--to-destination 10.244.1.6:8080")
    });

    let health: SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    let healthz = || -> String {
        node.run_in(move || -> std::io::Result<String> {
            let mut stream = TcpStream::connect_timeout(&health, Duration::from_secs(3))?;
            stream.set_read_timeout(Some(Duration::from_secs(3)))?;
            stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok(response)
        })
        .unwrap()
        .unwrap_or_default()
    };
    // The first sync's success is recorded right after its batch lands.
    wait_for("/healthz 200", || {
        let answer = healthz();
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
    });

    // Endpoints gone: the service is rejected, its chains removed.
    slices
        .patch(
            "web-abc",
            &PatchParams::default(),
            &Patch::Merge(json!({"endpoints": []})),
        )
        .await
        .unwrap();
    wait_for("the REJECT rule", || {
        save("filter").contains("default/web:http has no endpoints")
            && !save("nat").contains("10.244.1.")
    });

    drop(proxy_process);
    let status = node.command(binary).arg("--cleanup").status().unwrap();
    assert!(status.success());
    let all = node.exec("iptables-save", &[]).unwrap();
    assert!(!all.contains("KUBE-"), "left over:\n{all}");
    assert!(node
        .ip(&["route", "show", "10.96.0.0/12"])
        .unwrap()
        .trim()
        .is_empty());
    drop(relay);
    serve.abort();
}
