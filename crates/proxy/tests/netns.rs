//! Root integration test: the generated rules programmed with the real `iptables-restore` inside
//! a "node" network namespace, with three backend namespaces running busybox httpd (each answers
//! its own name) and a client namespace outside the cluster network. Checks ClusterIP balancing,
//! partial syncs of endpoint changes, ClientIP affinity, immediate refusal without endpoints,
//! NodePort from outside, and that cleanup leaves no KUBE-* chain.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy::iptables::Exec;
use proxy::model::{snapshot, Snapshot};
use proxy::rules::RuleConfig;
use proxy::syncer::{cleanup, Syncer};
use serde_json::json;
use testkit::netns::NetNs;

const BACKENDS: usize = 3;

/// Kills a spawned server on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the proxy's chains from the node namespace on drop (the namespace goes too).
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = cleanup(&mut Exec::in_netns(&self.0));
    }
}

fn service(name: &str, ip: &str, extra: serde_json::Value) -> Service {
    let mut spec = json!({
        "clusterIP": ip,
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"}],
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(
        json!({"metadata": {"namespace": "default", "name": name}, "spec": spec}),
    )
    .unwrap()
}

fn slice(service: &str, ips: &[String]) -> EndpointSlice {
    let endpoints: Vec<_> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}, "nodeName": "node-b"}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": format!("{service}-x"),
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .unwrap()
}

fn backend_ip(i: usize) -> String {
    format!("10.244.{}.2", i + 1)
}

/// One HTTP GET from the client namespace: Ok(body) or the connect/read error.
fn get(client: &NetNs, target: SocketAddr, count: usize) -> Vec<std::io::Result<String>> {
    client
        .run_in(move || {
            (0..count)
                .map(|_| {
                    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
                    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
                    stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                    let mut response = String::new();
                    stream.read_to_string(&mut response)?;
                    Ok(response
                        .split("\r\n\r\n")
                        .nth(1)
                        .unwrap_or_default()
                        .trim()
                        .to_string())
                })
                .collect()
        })
        .expect("run in client namespace")
}

fn tally(results: &[std::io::Result<String>]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in results {
        match r {
            Ok(body) => *counts.entry(body.clone()).or_default() += 1,
            Err(e) => panic!("request failed: {e}"),
        }
    }
    counts
}

#[test]
fn rules_work_through_real_iptables_in_namespaces() {
    if !testkit::is_root() {
        testkit::missing("root", "run the proxy namespace tests as root");
        return;
    }
    for tool in ["/usr/sbin/iptables-restore", "/usr/bin/busybox"] {
        if !testkit::have(tool) {
            testkit::missing(
                tool,
                "scripts/setup.sh installs iptables and busybox-static",
            );
            return;
        }
    }
    let node = NetNs::new("mpx-node").unwrap();
    let client = NetNs::new("mpx-cli").unwrap();
    let _cleanup = Cleanup(node.name().to_string());
    node.exec("sysctl", &["-qw", "net.ipv4.ip_forward=1"])
        .unwrap();

    // Client: 192.168.77.2 behind the node's 192.168.77.1 (outside the pod network).
    node.ip(&[
        "link",
        "add",
        "vcli",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        client.name(),
    ])
    .unwrap();
    node.ip(&["addr", "add", "192.168.77.1/24", "dev", "vcli"])
        .unwrap();
    node.ip(&["link", "set", "vcli", "up"]).unwrap();
    client
        .ip(&["addr", "add", "192.168.77.2/24", "dev", "eth0"])
        .unwrap();
    client.ip(&["link", "set", "eth0", "up"]).unwrap();
    client
        .ip(&["route", "add", "default", "via", "192.168.77.1"])
        .unwrap();

    // Backends: 10.244.<i+1>.2 behind the node's 10.244.<i+1>.1, httpd answering its name.
    let dir = tempfile::tempdir().unwrap();
    let mut backends = Vec::new();
    let mut servers = Vec::new();
    for i in 0..BACKENDS {
        let ns = NetNs::new("mpx-be").unwrap();
        let host_if = format!("vbe{i}");
        node.ip(&[
            "link",
            "add",
            &host_if,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns.name(),
        ])
        .unwrap();
        node.ip(&[
            "addr",
            "add",
            &format!("10.244.{}.1/24", i + 1),
            "dev",
            &host_if,
        ])
        .unwrap();
        node.ip(&["link", "set", &host_if, "up"]).unwrap();
        ns.ip(&[
            "addr",
            "add",
            &format!("{}/24", backend_ip(i)),
            "dev",
            "eth0",
        ])
        .unwrap();
        ns.ip(&["link", "set", "eth0", "up"]).unwrap();
        ns.ip(&[
            "route",
            "add",
            "default",
            "via",
            &format!("10.244.{}.1", i + 1),
        ])
        .unwrap();
        let root = dir.path().join(format!("b{i}"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("index.html"), format!("b{i}\n")).unwrap();
        let child = ns
            .command("busybox")
            .args(["httpd", "-f", "-p", "8080", "-h"])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        servers.push(Server(child));
        backends.push(ns);
    }
    // Wait (bounded) until every server answers directly.
    for i in 0..BACKENDS {
        let target: SocketAddr = format!("{}:8080", backend_ip(i)).parse().unwrap();
        let up = (0..100).any(|_| {
            let ok = get(&client, target, 1)[0].is_ok();
            if !ok {
                std::thread::sleep(Duration::from_millis(50));
            }
            ok
        });
        assert!(up, "backend {i} never answered");
    }

    let all: Vec<String> = (0..BACKENDS).map(backend_ip).collect();
    let build = |web_extra: serde_json::Value, endpoints: &[String]| -> Snapshot {
        snapshot(
            &[
                service("web", "10.96.0.41", web_extra),
                service("empty", "10.96.0.42", json!({})),
            ],
            &[slice("web", endpoints), slice("empty", &[])],
            "node-a",
        )
    };
    let node_port = json!({"type": "NodePort", "ports": [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web", "nodePort": 30080}
    ]});
    let config = RuleConfig {
        cluster_cidr: Some("10.244.0.0/16".parse().unwrap()),
        node_port_addresses: Vec::new(),
    };
    let mut syncer = Syncer::new(
        Exec::in_netns(node.name()),
        Exec::in_netns(node.name()),
        config,
    );
    let report = syncer.sync(&build(node_port.clone(), &all)).unwrap();
    assert!(report.full);
    // The node has no default route: the service network needs its route (rejections of
    // unmatched service IPs happen in FORWARD, after routing). Its interface is the one holding
    // the node IP (here a backend link; see docs/proxy.md for why not the client's link).
    let service_cidr = "10.96.0.0/12".parse().unwrap();
    let node_exec = Exec::in_netns(node.name());
    let dev = proxy::route::ensure_service_route(
        &node_exec,
        service_cidr,
        &["10.244.1.1".parse().unwrap()],
    )
    .unwrap();
    assert!(dev.is_some(), "route not added");
    assert!(node
        .ip(&["route", "show", "10.96.0.0/12"])
        .unwrap()
        .contains("proto 199"));

    // ClusterIP: every backend, roughly evenly.
    let cluster_ip: SocketAddr = "10.96.0.41:80".parse().unwrap();
    let counts = tally(&get(&client, cluster_ip, 60));
    assert_eq!(counts.len(), BACKENDS, "{counts:?}");
    assert!(counts.values().all(|n| *n >= 5), "uneven: {counts:?}");

    // NodePort on the node's address, from the client outside the cluster network.
    let node_port_addr: SocketAddr = "192.168.77.1:30080".parse().unwrap();
    let counts = tally(&get(&client, node_port_addr, 30));
    assert!(counts.len() >= 2, "{counts:?}");

    // A partial sync removing one endpoint: it gets no more traffic.
    let report = syncer.sync(&build(node_port.clone(), &all[..2])).unwrap();
    assert!(!report.full);
    assert_eq!(report.batch_stats.chains_deleted, 1);
    let counts = tally(&get(&client, cluster_ip, 30));
    assert!(!counts.contains_key("b2"), "{counts:?}");
    assert_eq!(counts.len(), 2, "{counts:?}");

    // ClientIP affinity pins the client to one backend.
    let mut affinity = node_port.clone();
    affinity["sessionAffinity"] = json!("ClientIP");
    syncer.sync(&build(affinity, &all)).unwrap();
    let counts = tally(&get(&client, cluster_ip, 20));
    assert_eq!(counts.len(), 1, "not pinned: {counts:?}");

    // No endpoints: refused at once (REJECT), not a timeout.
    let results = get(&client, "10.96.0.42:80".parse().unwrap(), 1);
    let err = results[0]
        .as_ref()
        .expect_err("service without endpoints answered");
    if err.kind() != std::io::ErrorKind::ConnectionRefused {
        eprintln!("{}", node.exec("iptables-save", &["-c"]).unwrap());
        eprintln!("{}", node.ip(&["route"]).unwrap());
    }
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");

    // Cleanup leaves no KUBE-* chain or jump.
    cleanup(&mut Exec::in_netns(node.name())).unwrap();
    let saved = node.exec("iptables-save", &[]).unwrap();
    assert!(!saved.contains("KUBE-"), "left over:\n{saved}");
    assert!(proxy::route::remove_service_route(&node_exec, service_cidr).unwrap());
    assert!(node
        .ip(&["route", "show", "10.96.0.0/12"])
        .unwrap()
        .trim()
        .is_empty());
    drop(servers);
}
