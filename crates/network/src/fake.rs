//! A recording in-memory `NetOps` and the unit tests of `PodNetwork`'s orchestration
//! (idempotent attach, cleanup on failure, route sync, rule application, teardown) without root.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use ipnet::Ipv4Net;

use crate::ops::{CommandOutput, NetOps, PodLinkSpec, PodLinkState};
use crate::{HostPort, NetworkConfig, NetworkError, PodNetwork, Protocol};

#[derive(Debug, Default)]
pub struct FakeState {
    pub links: BTreeSet<String>,
    pub bridge_addresses: Vec<Ipv4Net>,
    /// netns path → pod side state
    pub pods: BTreeMap<PathBuf, PodLinkState>,
    pub routes: BTreeSet<(Ipv4Net, Ipv4Addr)>,
    pub sysctls: BTreeMap<String, String>,
    /// iptables invocations and restore inputs, in order.
    pub iptables_calls: Vec<Vec<String>>,
    pub restores: Vec<String>,
    pub jumps: BTreeSet<Vec<String>>,
    pub calls: Vec<String>,
    pub fail_create: bool,
}

#[derive(Debug, Default)]
pub struct FakeOps {
    pub state: Mutex<FakeState>,
}

impl FakeOps {
    fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

#[async_trait]
impl NetOps for FakeOps {
    async fn ensure_bridge(&self, name: &str, address: Ipv4Net) -> Result<(), NetworkError> {
        self.with(|s| {
            s.calls.push(format!("ensure_bridge {name} {address}"));
            s.links.insert(name.to_string());
            if !s.bridge_addresses.contains(&address) {
                s.bridge_addresses.push(address);
            }
        });
        Ok(())
    }
    async fn delete_link(&self, name: &str) -> Result<bool, NetworkError> {
        Ok(self.with(|s| {
            s.calls.push(format!("delete_link {name}"));
            let existed = s.links.remove(name);
            if existed {
                // Deleting the node side of a veth deletes the pod side too.
                let host = name.to_string();
                s.pods.retain(|_, st| st.mac != format!("mac-of-{host}"));
            }
            existed
        }))
    }
    async fn link_exists(&self, name: &str) -> Result<bool, NetworkError> {
        Ok(self.with(|s| s.links.contains(name)))
    }
    async fn pod_link(&self, netns: &Path) -> Result<Option<PodLinkState>, NetworkError> {
        Ok(self.with(|s| s.pods.get(netns).cloned()))
    }
    async fn create_pod_link(&self, spec: &PodLinkSpec) -> Result<String, NetworkError> {
        self.with(|s| {
            s.calls.push(format!(
                "create_pod_link {} {}",
                spec.host_veth, spec.address
            ));
            s.links.insert(spec.host_veth.clone());
            if s.fail_create {
                return Err(NetworkError::LinkMissing("eth0".into()));
            }
            let mac = format!("mac-of-{}", spec.host_veth);
            s.pods.insert(
                spec.netns.clone(),
                PodLinkState {
                    addresses: vec![spec.address],
                    mac: mac.clone(),
                },
            );
            Ok(mac)
        })
    }
    async fn delete_pod_link(&self, netns: &Path) -> Result<bool, NetworkError> {
        Ok(self.with(|s| {
            s.calls.push(format!("delete_pod_link {}", netns.display()));
            s.pods.remove(netns).is_some()
        }))
    }
    async fn list_routes(&self) -> Result<Vec<(Ipv4Net, Ipv4Addr)>, NetworkError> {
        Ok(self.with(|s| s.routes.iter().copied().collect()))
    }
    async fn add_route(&self, destination: Ipv4Net, via: Ipv4Addr) -> Result<(), NetworkError> {
        self.with(|s| {
            s.calls.push(format!("add_route {destination} {via}"));
            s.routes.insert((destination, via));
        });
        Ok(())
    }
    async fn delete_route(&self, destination: Ipv4Net, via: Ipv4Addr) -> Result<(), NetworkError> {
        self.with(|s| {
            s.calls.push(format!("delete_route {destination} {via}"));
            s.routes.remove(&(destination, via));
        });
        Ok(())
    }
    async fn write_sysctl(&self, key: &str, value: &str) -> Result<(), NetworkError> {
        self.with(|s| s.sysctls.insert(key.to_string(), value.to_string()));
        Ok(())
    }
    async fn iptables(&self, args: &[String]) -> Result<CommandOutput, NetworkError> {
        Ok(self.with(|s| {
            s.iptables_calls.push(args.to_vec());
            // args: -t nat VERB CHAIN rule...
            let verb = args[2].as_str();
            let mut key = vec![args[3].clone()];
            key.extend_from_slice(&args[4..]);
            let success = match verb {
                "-C" => s.jumps.contains(&key),
                "-A" | "-I" => {
                    s.jumps.insert(key);
                    true
                }
                "-D" => s.jumps.remove(&key),
                _ => true,
            };
            CommandOutput {
                success,
                stdout: String::new(),
                stderr: if success {
                    String::new()
                } else {
                    "Bad rule".into()
                },
            }
        }))
    }
    async fn iptables_restore(&self, input: &str) -> Result<(), NetworkError> {
        self.with(|s| s.restores.push(input.to_string()));
        Ok(())
    }
}

macro_rules! net {
    ($s:expr) => {
        $s.parse::<Ipv4Net>().unwrap()
    };
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}
fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn network(dir: &Path) -> PodNetwork<FakeOps> {
    PodNetwork::with_ops(
        NetworkConfig {
            bridge: "mcbr0".into(),
            pod_cidr: net("10.244.1.0/24"),
            cluster_cidr: net("10.244.0.0/16"),
            node_ip: ip("192.168.77.10"),
            state_dir: dir.to_path_buf(),
        },
        FakeOps::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn setup_node_makes_the_bridge_forwarding_chains_and_jumps_once() {
    let dir = tempfile::tempdir().unwrap();
    let net = network(dir.path());
    net.setup_node().await.unwrap();
    net.setup_node().await.unwrap();
    let s = net.ops().state.lock().unwrap();
    assert_eq!(
        s.bridge_addresses,
        vec!["10.244.1.1/24".parse::<Ipv4Net>().unwrap()]
    );
    assert_eq!(
        s.sysctls.get("net.ipv4.ip_forward").map(String::as_str),
        Some("1")
    );
    assert_eq!(s.jumps.len(), 3, "{:?}", s.jumps);
    let jump_targets: BTreeSet<_> = s
        .jumps
        .iter()
        .map(|j| (j[0].clone(), j.last().unwrap().clone()))
        .collect();
    assert!(jump_targets.contains(&("POSTROUTING".into(), "MINI-CNI-POSTROUTING".into())));
    assert!(jump_targets.contains(&("PREROUTING".into(), "MINI-CNI-HOSTPORTS".into())));
    assert!(jump_targets.contains(&("OUTPUT".into(), "MINI-CNI-HOSTPORTS".into())));
    let adds = s
        .iptables_calls
        .iter()
        .filter(|c| c[2] == "-A" || c[2] == "-I")
        .count();
    assert_eq!(adds, 3, "the second setup must not add the jumps again");
    assert!(s
        .restores
        .last()
        .unwrap()
        .contains("-s 10.244.1.0/24 ! -d 224.0.0.0/4"));
}

#[tokio::test]
async fn attach_is_idempotent_and_detach_releases_everything() {
    let dir = tempfile::tempdir().unwrap();
    let net = network(dir.path());
    net.setup_node().await.unwrap();
    let ns = Path::new("/run/netns/pod-a");
    let first = net.attach("a", ns).await.unwrap();
    assert_eq!(first.ip, net!("10.244.1.2/24"));
    assert_eq!(first.gateway, ip("10.244.1.1"));
    let again = net.attach("a", ns).await.unwrap();
    assert_eq!(first, again);
    let creates = net
        .ops()
        .state
        .lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| c.starts_with("create_pod_link"))
        .count();
    assert_eq!(creates, 1, "a second attach must not recreate the veth");

    let b = net
        .attach("b", Path::new("/run/netns/pod-b"))
        .await
        .unwrap();
    assert_ne!(b.ip, first.ip);
    assert_eq!(net.allocations().unwrap().len(), 2);

    net.detach("a", Some(ns)).await.unwrap();
    net.detach("a", Some(ns)).await.unwrap();
    assert_eq!(
        net.allocations().unwrap(),
        vec![("b".to_string(), b.ip.addr())]
    );
    let s = net.ops().state.lock().unwrap();
    assert!(!s.links.contains(&first.host_veth));
    assert!(!s.pods.contains_key(ns));
}

#[tokio::test]
async fn a_half_made_attachment_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let net = network(dir.path());
    let ns = Path::new("/run/netns/pod-a");
    let first = net.attach("a", ns).await.unwrap();
    // The pod side vanished while the node side stayed (a crash mid-way).
    net.ops().state.lock().unwrap().pods.clear();
    let again = net.attach("a", ns).await.unwrap();
    assert_eq!(again.ip, first.ip, "the same sandbox keeps its address");
    let s = net.ops().state.lock().unwrap();
    assert!(s.pods.contains_key(ns));
    assert!(s
        .calls
        .iter()
        .any(|c| c == &format!("delete_link {}", first.host_veth)));
}

#[tokio::test]
async fn a_failed_attach_releases_the_new_address_and_the_veth() {
    let dir = tempfile::tempdir().unwrap();
    let net = network(dir.path());
    net.ops().state.lock().unwrap().fail_create = true;
    let err = net
        .attach("a", Path::new("/run/netns/pod-a"))
        .await
        .unwrap_err();
    assert!(matches!(err, NetworkError::LinkMissing(_)), "{err}");
    assert!(net.allocations().unwrap().is_empty(), "address leaked");
    let s = net.ops().state.lock().unwrap();
    assert!(s.links.is_empty(), "veth leaked: {:?}", s.links);
}

#[tokio::test]
async fn sync_routes_converges_and_removes_stale_routes() {
    let dir = tempfile::tempdir().unwrap();
    let net = network(dir.path());
    net.sync_routes(&[
        (net!("10.244.1.0/24"), ip("192.168.77.10")),
        (net!("10.244.2.0/24"), ip("192.168.77.11")),
        (net!("10.244.3.0/24"), ip("192.168.77.12")),
    ])
    .await
    .unwrap();
    let routes = |n: &PodNetwork<FakeOps>| -> Vec<_> {
        n.ops()
            .state
            .lock()
            .unwrap()
            .routes
            .iter()
            .copied()
            .collect()
    };
    assert_eq!(
        routes(&net),
        vec![
            (net!("10.244.2.0/24"), ip("192.168.77.11")),
            (net!("10.244.3.0/24"), ip("192.168.77.12")),
        ]
    );
    let calls_before = net.ops().state.lock().unwrap().calls.len();
    net.sync_routes(&[
        (net!("10.244.2.0/24"), ip("192.168.77.11")),
        (net!("10.244.3.0/24"), ip("192.168.77.12")),
    ])
    .await
    .unwrap();
    assert_eq!(
        net.ops().state.lock().unwrap().calls.len(),
        calls_before,
        "an unchanged list must not touch routes"
    );
    net.sync_routes(&[(net!("10.244.3.0/24"), ip("192.168.77.13"))])
        .await
        .unwrap();
    assert_eq!(
        routes(&net),
        vec![(net!("10.244.3.0/24"), ip("192.168.77.13"))]
    );
}

#[tokio::test]
async fn host_ports_are_persisted_rendered_and_removed_with_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let net = network(dir.path());
    let port = HostPort {
        protocol: Protocol::Tcp,
        host_port: 8080,
        container_port: 80,
        host_ip: None,
    };
    let err = net
        .set_host_ports("nobody", std::slice::from_ref(&port))
        .await
        .unwrap_err();
    assert!(matches!(err, NetworkError::NotAttached { .. }), "{err}");
    let pod = net
        .attach("a", Path::new("/run/netns/pod-a"))
        .await
        .unwrap();
    net.set_host_ports("a", std::slice::from_ref(&port))
        .await
        .unwrap();
    let dnat = format!(
        "--dport 8080 -m comment --comment \"a\" -j DNAT --to-destination {}:80",
        pod.ip.addr()
    );
    assert!(net
        .ops()
        .state
        .lock()
        .unwrap()
        .restores
        .last()
        .unwrap()
        .contains(&dnat));

    // A restarted kubelet (new PodNetwork, same state dir) re-renders the same mapping.
    let restarted = network(dir.path());
    restarted.setup_node().await.unwrap();
    assert!(restarted
        .ops()
        .state
        .lock()
        .unwrap()
        .restores
        .last()
        .unwrap()
        .contains(&dnat));

    restarted.detach("a", None).await.unwrap();
    assert!(!restarted
        .ops()
        .state
        .lock()
        .unwrap()
        .restores
        .last()
        .unwrap()
        .contains("DNAT"));
}

#[tokio::test]
async fn teardown_removes_what_the_node_made() {
    let dir = tempfile::tempdir().unwrap();
    let net = network(dir.path());
    net.setup_node().await.unwrap();
    net.attach("a", Path::new("/run/netns/pod-a"))
        .await
        .unwrap();
    net.set_host_ports(
        "a",
        &[HostPort {
            protocol: Protocol::Udp,
            host_port: 53,
            container_port: 53,
            host_ip: None,
        }],
    )
    .await
    .unwrap();
    net.sync_routes(&[(net!("10.244.2.0/24"), ip("192.168.77.11"))])
        .await
        .unwrap();
    net.teardown_node().await.unwrap();
    let s = net.ops().state.lock().unwrap();
    assert!(s.links.is_empty(), "{:?}", s.links);
    assert!(s.routes.is_empty(), "{:?}", s.routes);
    assert!(s.jumps.is_empty(), "{:?}", s.jumps);
    for chain in ["MINI-CNI-HOSTPORTS", "MINI-CNI-POSTROUTING"] {
        assert!(s
            .iptables_calls
            .iter()
            .any(|c| c[2] == "-X" && c[3] == chain));
    }
    assert!(!dir.path().join("ipam").exists());
    assert!(!dir.path().join("hostports").exists());
}

#[test]
fn config_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let bad = PodNetwork::with_ops(
        NetworkConfig {
            bridge: "mcbr0".into(),
            pod_cidr: net("10.245.1.0/24"),
            cluster_cidr: net("10.244.0.0/16"),
            node_ip: ip("192.168.77.10"),
            state_dir: dir.path().to_path_buf(),
        },
        FakeOps::default(),
    );
    assert!(matches!(bad, Err(NetworkError::Config(_))));
}

/// The kubelet awaits these futures on a multi-threaded runtime: they must be Send.
#[allow(dead_code)]
fn real_network_futures_are_send(net: &PodNetwork, netns: &Path) {
    fn is_send<T: Send>(_: T) {}
    is_send(net.setup_node());
    is_send(net.attach("x", netns));
    is_send(net.detach("x", Some(netns)));
    is_send(net.sync_routes(&[]));
    is_send(net.set_host_ports("x", &[]));
    is_send(net.teardown_node());
}
