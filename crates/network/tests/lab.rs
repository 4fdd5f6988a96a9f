//! Root integration tests of the pod network on a testkit lab: two node namespaces on a lab
//! bridge, each running a `PodNetwork` for its own podCIDR, with pod namespaces attached on each.
//! Checks pod↔pod on one node and across nodes (no masquerade), pod→node, masquerade when
//! leaving the cluster network, hostPorts (TCP and UDP) from the other node, IPAM persistence
//! and exhaustion on real namespaces, and that teardown leaves nothing behind.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::Ipv4Net;
use network::{HostPort, NetworkConfig, NetworkError, PodNetwork, Protocol};
use testkit::netns::{Lab, NetNs};

/// Name prefixes of the two tests (neither a prefix of the other, so leak checks stay apart).
const PREFIX: &str = "mcnta";
const IPAM_PREFIX: &str = "mcntb";

fn prerequisites() -> bool {
    if !testkit::is_root() {
        testkit::missing("root", "run the network tests as root");
        return false;
    }
    for tool in [
        "/usr/sbin/ip",
        "/usr/sbin/iptables",
        "/usr/sbin/iptables-restore",
    ] {
        if !testkit::have(tool) {
            testkit::missing(tool, "apt-get install iproute2 iptables");
            return false;
        }
    }
    true
}

/// Runs an async block on a fresh thread inside `ns` (the node): the network library then acts
/// on that namespace exactly as it does inside a kubelet running there.
fn on<T, F, Fut>(ns: &NetNs, work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    ns.run_in(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(work())
    })
    .expect("thread in the node namespace")
}

fn config(pod_cidr: &str, node_ip: Ipv4Addr, state_dir: PathBuf) -> NetworkConfig {
    NetworkConfig {
        bridge: "mcbr0".into(),
        pod_cidr: pod_cidr.parse().unwrap(),
        cluster_cidr: "10.244.0.0/16".parse().unwrap(),
        node_ip,
        state_dir,
    }
}

/// A TCP listener inside `ns` on `port` that accepts one connection, writes a greeting and
/// returns the peer address it saw.
fn serve_once(ns: &NetNs, port: u16) -> std::thread::JoinHandle<SocketAddr> {
    let listener = ns
        .run_in(move || TcpListener::bind(("0.0.0.0", port)))
        .unwrap()
        .expect("bind listener");
    std::thread::spawn(move || {
        let (mut stream, peer) = listener.accept().expect("accept");
        stream.write_all(b"hello").unwrap();
        peer
    })
}

/// Connects from inside `ns` to `to` and reads the greeting.
fn connect_from(ns: &NetNs, to: SocketAddr) -> std::io::Result<String> {
    ns.run_in(move || {
        let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    })
    .unwrap()
}

fn addr(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

#[test]
fn pods_on_two_nodes_reach_each_other_and_teardown_leaves_nothing() {
    if !prerequisites() {
        return;
    }
    let lab = Lab::new(PREFIX, 2).expect("lab");
    let state = tempfile::tempdir().unwrap();
    let (node_a, node_b) = (lab.node(0), lab.node(1));
    let net_a = Arc::new(
        PodNetwork::new(config("10.244.1.0/24", node_a.ip, state.path().join("a"))).unwrap(),
    );
    let net_b = Arc::new(
        PodNetwork::new(config("10.244.2.0/24", node_b.ip, state.path().join("b"))).unwrap(),
    );
    let peers: Vec<(Ipv4Net, Ipv4Addr)> = vec![
        ("10.244.1.0/24".parse().unwrap(), node_a.ip),
        ("10.244.2.0/24".parse().unwrap(), node_b.ip),
    ];
    for (node, net) in [(node_a, &net_a), (node_b, &net_b)] {
        let net = net.clone();
        let peers = peers.clone();
        on(&node.ns, move || async move {
            net.setup_node().await?;
            net.sync_routes(&peers).await
        })
        .expect("setup node");
    }

    let pod_a1 = NetNs::new(&format!("{PREFIX}-pa1")).unwrap();
    let pod_a2 = NetNs::new(&format!("{PREFIX}-pa2")).unwrap();
    let pod_b1 = NetNs::new(&format!("{PREFIX}-pb1")).unwrap();
    let attach = |node: &NetNs, net: &Arc<PodNetwork>, id: &str, pod: &NetNs| {
        let (net, id, path) = (net.clone(), id.to_string(), pod.path());
        on(node, move || async move { net.attach(&id, &path).await }).expect("attach")
    };
    let a1 = attach(&node_a.ns, &net_a, "sandbox-a1", &pod_a1);
    let a2 = attach(&node_a.ns, &net_a, "sandbox-a2", &pod_a2);
    let b1 = attach(&node_b.ns, &net_b, "sandbox-b1", &pod_b1);
    assert!(Ipv4Net::new(a1.ip.addr(), 24).unwrap().trunc() == "10.244.1.0/24".parse().unwrap());
    assert_eq!(a1.gateway, Ipv4Addr::new(10, 244, 1, 1));
    assert_eq!(b1.gateway, Ipv4Addr::new(10, 244, 2, 1));
    assert_ne!(a1.ip, a2.ip);

    // Idempotent: attaching again returns the same interface.
    assert_eq!(attach(&node_a.ns, &net_a, "sandbox-a1", &pod_a1), a1);

    // Inside the pod: eth0 with the address, lo up, default route via the bridge.
    let inside = pod_a1.ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap();
    assert!(inside.contains(&a1.ip.to_string()), "{inside}");
    let routes = pod_a1.ip(&["route", "show", "default"]).unwrap();
    assert!(routes.contains("via 10.244.1.1"), "{routes}");
    let lo = pod_a1.ip(&["-o", "link", "show", "lo"]).unwrap();
    assert!(lo.contains("UP"), "{lo}");
    let mac = pod_a1.ip(&["-o", "link", "show", "eth0"]).unwrap();
    assert!(mac.contains(&a1.mac), "{mac} should show {}", a1.mac);

    let port = node_a
        .ns
        .ip(&["-d", "link", "show", "dev", &a1.host_veth])
        .unwrap();
    assert!(
        port.contains("master mcbr0") && port.contains("hairpin on"),
        "{port}"
    );

    // pod → pod on the same node.
    let server = serve_once(&pod_a2, 7001);
    assert_eq!(
        connect_from(&pod_a1, addr(a2.ip.addr(), 7001)).unwrap(),
        "hello"
    );
    assert_eq!(server.join().unwrap().ip(), a1.ip.addr());

    // pod → pod across nodes (host-gw), not masqueraded.
    let server = serve_once(&pod_b1, 7002);
    assert_eq!(
        connect_from(&pod_a1, addr(b1.ip.addr(), 7002)).unwrap(),
        "hello"
    );
    assert_eq!(
        server.join().unwrap().ip(),
        a1.ip.addr(),
        "pod-to-pod must keep the pod IP"
    );
    let server = serve_once(&pod_a2, 7003);
    assert_eq!(
        connect_from(&pod_b1, addr(a2.ip.addr(), 7003)).unwrap(),
        "hello"
    );
    assert_eq!(server.join().unwrap().ip(), b1.ip.addr());

    // pod → its own node.
    let server = serve_once(&node_a.ns, 7004);
    assert_eq!(
        connect_from(&pod_a1, addr(node_a.ip, 7004)).unwrap(),
        "hello"
    );
    server.join().unwrap();

    // pod → an address outside the cluster network (the other node's lab IP): masqueraded.
    let server = serve_once(&node_b.ns, 7005);
    assert_eq!(
        connect_from(&pod_a1, addr(node_b.ip, 7005)).unwrap(),
        "hello"
    );
    assert_eq!(
        server.join().unwrap().ip(),
        node_a.ip,
        "leaving traffic must be masqueraded"
    );

    // hostPort on node B, reached from node A through node B's address: TCP and UDP.
    {
        let net = net_b.clone();
        on(&node_b.ns, move || async move {
            net.set_host_ports(
                "sandbox-b1",
                &[
                    HostPort {
                        protocol: Protocol::Tcp,
                        host_port: 18080,
                        container_port: 8080,
                        host_ip: None,
                    },
                    HostPort {
                        protocol: Protocol::Udp,
                        host_port: 15353,
                        container_port: 5353,
                        host_ip: None,
                    },
                ],
            )
            .await
        })
        .expect("host ports");
    }
    let server = serve_once(&pod_b1, 8080);
    assert_eq!(
        connect_from(&node_a.ns, addr(node_b.ip, 18080)).unwrap(),
        "hello"
    );
    server.join().unwrap();
    // Hairpin: the pod reaches itself through its own hostPort on the node address.
    let server = serve_once(&pod_b1, 8080);
    assert_eq!(
        connect_from(&pod_b1, addr(node_b.ip, 18080)).unwrap(),
        "hello"
    );
    server.join().unwrap();
    let udp = pod_b1
        .run_in(|| UdpSocket::bind("0.0.0.0:5353"))
        .unwrap()
        .expect("udp bind");
    let echo = std::thread::spawn(move || {
        udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        let (n, peer) = udp.recv_from(&mut buf).expect("udp datagram");
        udp.send_to(&buf[..n], peer).unwrap();
    });
    let target = addr(node_b.ip, 15353);
    let reply = node_a
        .ns
        .run_in(move || -> std::io::Result<Vec<u8>> {
            let socket = UdpSocket::bind("0.0.0.0:0")?;
            socket.set_read_timeout(Some(Duration::from_secs(5)))?;
            socket.send_to(b"ping", target)?;
            let mut buf = [0u8; 64];
            let (n, _) = socket.recv_from(&mut buf)?;
            Ok(buf[..n].to_vec())
        })
        .unwrap()
        .expect("udp hostPort reply");
    assert_eq!(reply, b"ping");
    echo.join().unwrap();

    // A stale peer route disappears when the list no longer holds it.
    {
        let net = net_a.clone();
        on(&node_a.ns, move || async move {
            net.sync_routes(&[
                (
                    "10.244.2.0/24".parse().unwrap(),
                    Ipv4Addr::new(192, 168, 77, 11),
                ),
                (
                    "10.244.7.0/24".parse().unwrap(),
                    Ipv4Addr::new(192, 168, 77, 17),
                ),
            ])
            .await?;
            net.sync_routes(&[(
                "10.244.2.0/24".parse().unwrap(),
                Ipv4Addr::new(192, 168, 77, 11),
            )])
            .await
        })
        .expect("sync routes");
    }
    let node_routes = node_a.ns.ip(&["route", "show"]).unwrap();
    assert!(
        node_routes.contains("10.244.2.0/24 via 192.168.77.11"),
        "{node_routes}"
    );
    assert!(!node_routes.contains("10.244.7.0"), "{node_routes}");

    // Detach releases the address and removes the veth.
    {
        let net = net_a.clone();
        let path = pod_a2.path();
        on(&node_a.ns, move || async move {
            net.detach("sandbox-a2", Some(&path)).await
        })
        .expect("detach");
    }
    assert!(
        pod_a2.ip(&["link", "show", "eth0"]).is_err(),
        "eth0 left in the pod"
    );
    let allocated: Vec<String> = net_a
        .allocations()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(allocated, vec!["sandbox-a1".to_string()]);

    // Teardown of both nodes leaves no veth, bridge, route, chain or IPAM file.
    for (node, net) in [(node_a, &net_a), (node_b, &net_b)] {
        let net = net.clone();
        on(&node.ns, move || async move { net.teardown_node().await }).expect("teardown");
        let links = node.ns.ip(&["-o", "link", "show"]).unwrap();
        assert!(
            !links.contains("mcbr0") && !links.contains("mcv"),
            "{links}"
        );
        let routes = node.ns.ip(&["route", "show", "proto", "77"]).unwrap();
        assert!(routes.trim().is_empty(), "routes left: {routes}");
        let nat = node.ns.exec("iptables-save", &["-t", "nat"]).unwrap();
        assert!(!nat.contains("MINI-CNI"), "chains left: {nat}");
    }
    for dir in ["a", "b"] {
        let path = state.path().join(dir);
        let left: Vec<_> = std::fs::read_dir(&path)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "state left in {}: {left:?}",
            path.display()
        );
    }
    assert!(
        pod_b1.ip(&["link", "show", "eth0"]).is_err(),
        "teardown left eth0 in a pod"
    );

    drop((pod_a1, pod_a2, pod_b1));
    drop(lab);
    let mine = format!("-{}-", std::process::id());
    let left: Vec<String> = testkit::netns::leftovers(PREFIX)
        .into_iter()
        .filter(|l| l.contains(&mine))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn ipam_on_a_real_node_persists_exhausts_and_never_double_assigns() {
    if !prerequisites() {
        return;
    }
    let lab = Lab::new(IPAM_PREFIX, 1).expect("lab");
    let node = lab.node(0);
    let state = tempfile::tempdir().unwrap();
    // A /29 has 6 host addresses; the bridge takes the first, so 5 pods fit.
    let cfg = config("10.244.9.0/29", node.ip, state.path().to_path_buf());
    let net = Arc::new(PodNetwork::new(cfg.clone()).unwrap());
    {
        let net = net.clone();
        on(&node.ns, move || async move { net.setup_node().await }).expect("setup");
    }
    let pods: Vec<NetNs> = (0..6)
        .map(|i| NetNs::new(&format!("{IPAM_PREFIX}-p{i}")).unwrap())
        .collect();
    let attach = |net: &Arc<PodNetwork>, i: usize| {
        let (net, path) = (net.clone(), pods[i].path());
        on(&node.ns, move || async move {
            net.attach(&format!("sb{i}"), &path).await
        })
    };
    // A sandbox whose namespace does not exist gets an error and keeps no address.
    {
        let net = net.clone();
        let missing = PathBuf::from(format!("/run/netns/{IPAM_PREFIX}-does-not-exist"));
        let err = on(&node.ns, move || async move {
            net.attach("ghost", &missing).await
        })
        .unwrap_err();
        assert!(matches!(err, NetworkError::Netns { .. }), "{err}");
    }
    assert!(
        net.allocations().unwrap().is_empty(),
        "the failed attach kept its address"
    );

    let mut ips = Vec::new();
    for i in 0..5 {
        ips.push(attach(&net, i).expect("attach").ip.addr());
    }
    let mut unique = ips.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "{ips:?}");
    assert!(
        !ips.contains(&Ipv4Addr::new(10, 244, 9, 1)),
        "the gateway was handed out"
    );

    let err = attach(&net, 5).unwrap_err();
    assert!(matches!(err, NetworkError::Exhausted { .. }), "{err}");
    assert!(
        pods[5].ip(&["link", "show", "eth0"]).is_err(),
        "a failed attach left eth0"
    );

    // A new PodNetwork on the same state dir (a restarted kubelet) sees every allocation and
    // returns the same address for an attached sandbox.
    let restarted = Arc::new(PodNetwork::new(cfg).unwrap());
    assert_eq!(restarted.allocations().unwrap().len(), 5);
    assert_eq!(attach(&restarted, 2).expect("re-attach").ip.addr(), ips[2]);
    {
        let (net, path) = (restarted.clone(), pods[0].path());
        on(&node.ns, move || async move {
            net.detach("sb0", Some(&path)).await
        })
        .expect("detach");
    }
    let sixth = attach(&restarted, 5)
        .expect("attach after a release")
        .ip
        .addr();
    assert_eq!(sixth, ips[0], "the only free address is the released one");
    {
        let net = restarted.clone();
        on(&node.ns, move || async move { net.teardown_node().await }).expect("teardown");
    }
    assert!(!state.path().join("ipam").exists());
}
