//! Integration tests of mini-dns: a real apiserver in-process, mini-dns serving UDP and TCP on
//! loopback, Services and EndpointSlices created through the API, forwarding to a fake
//! hickory upstream, the timeout path, REFUSED without upstreams, bad input, and the binary.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use dns::server::ServerConfig;

fn no_upstream() -> ServerConfig {
    ServerConfig::default()
}

fn slice_json(name: &str, svc: &str, endpoints: &[(&str, bool, &str)]) -> EndpointSlice {
    let eps: Vec<_> = endpoints
        .iter()
        .map(|(ip, ready, host)| {
            json!({"addresses": [ip], "conditions": {"ready": ready}, "hostname": host,
                   "targetRef": {"kind": "Pod", "name": host, "namespace": "default"}})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": eps,
        "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}],
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_follow_services_and_endpointslices() {
    let api = TestServer::start().await;
    let client = api.client();
    let dns = TestDns::start(Some(client.clone()), no_upstream()).await;
    dns.wait_ready().await;
    let addr = dns.server.addr;

    // The bootstrap `kubernetes` service is there from the start.
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let kubernetes_ip = services
        .get("kubernetes")
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip
        .unwrap();
    let m = udp_query(addr, "kubernetes.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(addresses(&m), vec![kubernetes_ip]);

    // A ClusterIP service appears, over UDP and TCP, with SRV for its named port.
    let web: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    let web = services.create(&PostParams::default(), &web).await.unwrap();
    let web_ip = web.spec.unwrap().cluster_ip.unwrap();
    let name = "web.default.svc.cluster.local";
    eventually("web to resolve", || async {
        let m = udp_query(addr, name, RecordType::A).await;
        (addresses(&m) == vec![web_ip.clone()]).then_some(())
    })
    .await;
    let m = tcp_query(addr, name, RecordType::A).await;
    assert_eq!(addresses(&m), vec![web_ip.clone()]);
    // The same question spelled differently (served from the answer cache the second time)
    // echoes its own spelling, in the question and in the answer.
    for spelling in [
        "WEB.Default.svc.cluster.local.",
        "wEb.default.SVC.cluster.local.",
    ] {
        for _ in 0..2 {
            let m = udp_query(addr, spelling, RecordType::A).await;
            assert_eq!(addresses(&m), vec![web_ip.clone()]);
            assert_eq!(m.queries[0].name().to_string(), spelling);
            assert_eq!(m.answers[0].name.to_string(), spelling);
        }
    }
    let m = udp_query(
        addr,
        "_http._tcp.web.default.svc.cluster.local",
        RecordType::SRV,
    )
    .await;
    assert!(matches!(&m.answers[0].data, RData::SRV(s) if s.port == 80));
    let m = udp_query(addr, name, RecordType::AAAA).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty(), "AAAA of an IPv4 service is NODATA");
    // Reverse of the ClusterIP.
    let octets: Vec<&str> = web_ip.split('.').rev().collect();
    let rev = format!("{}.in-addr.arpa", octets.join("."));
    let m = udp_query(addr, &rev, RecordType::PTR).await;
    assert!(matches!(&m.answers[0].data, RData::PTR(p) if p.0.to_string() == format!("{name}.")));

    // A headless service with an EndpointSlice: ready endpoints and hostnames.
    let db: Service = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "web", "port": 8080}]}
    }))
    .unwrap();
    services.create(&PostParams::default(), &db).await.unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let slice = slice_json(
        "db-1",
        "db",
        &[
            ("10.244.1.5", true, "db-0"),
            ("10.244.2.6", true, "db-1"),
            ("10.244.3.7", false, "db-2"),
        ],
    );
    slices.create(&PostParams::default(), &slice).await.unwrap();
    let db_name = "db.default.svc.cluster.local";
    eventually("headless db to resolve", || async {
        let m = udp_query(addr, db_name, RecordType::A).await;
        (addresses(&m) == vec!["10.244.1.5", "10.244.2.6"]).then_some(())
    })
    .await;
    let m = udp_query(addr, "db-1.db.default.svc.cluster.local", RecordType::A).await;
    assert_eq!(addresses(&m), vec!["10.244.2.6"]);
    let m = udp_query(
        addr,
        "_web._tcp.db.default.svc.cluster.local",
        RecordType::SRV,
    )
    .await;
    assert_eq!(m.answers.len(), 2);

    // The slice changes: db-0 goes not ready, db-2 ready.
    let mut current = slices.get("db-1").await.unwrap();
    current.endpoints[0].conditions.as_mut().unwrap().ready = Some(false);
    current.endpoints[2].conditions.as_mut().unwrap().ready = Some(true);
    slices
        .replace("db-1", &PostParams::default(), &current)
        .await
        .unwrap();
    eventually("db endpoints to change", || async {
        let m = udp_query(addr, db_name, RecordType::A).await;
        (addresses(&m) == vec!["10.244.2.6", "10.244.3.7"]).then_some(())
    })
    .await;

    // Deletion: the names disappear (NXDOMAIN with SOA).
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let m = eventually("web to disappear", || async {
        let m = udp_query(addr, name, RecordType::A).await;
        (m.metadata.response_code == ResponseCode::NXDomain).then_some(m)
    })
    .await;
    assert!(matches!(m.authorities[0].data, RData::SOA(_)));
    slices
        .delete("db-1", &DeleteParams::default())
        .await
        .unwrap();
    eventually("db endpoints to disappear", || async {
        let m = udp_query(addr, db_name, RecordType::A).await;
        (m.metadata.response_code == ResponseCode::NoError && m.answers.is_empty()).then_some(())
    })
    .await;

    // Without upstreams, outside names are refused.
    let m = udp_query(addr, "www.example.org", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let m = tcp_query(addr, "www.example.org", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);

    // The metrics saw the queries and the index.
    let text = daemon::serve::render();
    assert!(
        text.contains("dns_requests_total{proto=\"udp\",type=\"A\",rcode=\"NOERROR\"}"),
        "{text}"
    );
    assert!(text.contains("rcode=\"REFUSED\""), "{text}");
    assert!(
        text.contains("dns_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("dns_index_services"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_outside_names_and_times_out_to_servfail() {
    let upstream = FakeUpstream::start().await;
    let config = ServerConfig {
        upstreams: vec![upstream.addr],
        ..ServerConfig::default()
    };
    let dns = TestDns::start(None, config).await;
    let addr = dns.server.addr;
    for m in [
        udp_query(addr, "www.example.org", RecordType::A).await,
        tcp_query(addr, "www.example.org", RecordType::A).await,
    ] {
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addresses(&m), vec!["192.0.2.10"]);
    }
    let m = udp_query(addr, "nope.example.org", RecordType::A).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "upstream's answer passed on"
    );
    // Cluster names are still answered locally.
    let m = udp_query(addr, "nope.default.svc.cluster.local", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);

    // An upstream that never answers: SERVFAIL after the timeout.
    // A UDP port whose TCP twin is free too (another test may hold it): retry until both bind.
    let mut bound = None;
    for _ in 0..50 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if let Ok(tcp) = tokio::net::TcpListener::bind(udp.local_addr().unwrap()).await {
            bound = Some((udp, tcp));
            break;
        }
    }
    let (silent, silent_tcp) = bound.expect("a UDP and TCP port pair on 127.0.0.1");
    let config = ServerConfig {
        upstreams: vec![silent.local_addr().unwrap()],
        upstream_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let dns = TestDns::start(None, config).await;
    let m = udp_query(dns.server.addr, "www.example.org", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    let m = tcp_query(dns.server.addr, "www.example.org", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    drop(silent_tcp);
}

/// An upstream that a router reports unreachable fails the forward at once: the client gets
/// SERVFAIL within its 2 s wait although the forward timeout is 30 s. The test's own two
/// namespaces: the server's, whose default route points at a router namespace, and the router,
/// which forwards but has no route to the upstream and so answers ICMP net unreachable (which a
/// plain connected UDP socket ignores, so without IP_RECVERR the client would get nothing).
#[test]
fn unreachable_upstream_fails_at_once_instead_of_timing_out() {
    if !testkit::is_root() {
        testkit::missing(
            "unreachable_upstream_fails_at_once_instead_of_timing_out: root (network namespaces)",
            "run the suite as root; CI does",
        );
        return;
    }
    let server_ns = testkit::netns::NetNs::new("dnsus").expect("server namespace");
    let router = testkit::netns::NetNs::new("dnsur").expect("router namespace");
    server_ns
        .ip(&[
            "link", "add", "urs0", "type", "veth", "peer", "name", "urr0",
        ])
        .expect("veth pair");
    server_ns
        .ip(&["link", "set", "urr0", "netns", router.name()])
        .expect("veth into the router");
    for args in [
        &["addr", "add", "10.99.0.1/30", "dev", "urs0"][..],
        &["link", "set", "urs0", "up"],
        &["route", "add", "default", "via", "10.99.0.2"],
    ] {
        server_ns.ip(args).expect("server side");
    }
    for args in [
        &["addr", "add", "10.99.0.2/30", "dev", "urr0"][..],
        &["link", "set", "urr0", "up"],
    ] {
        router.ip(args).expect("router side");
    }
    let forwarding = router
        .command("sysctl")
        .args(["-q", "-w", "net.ipv4.ip_forward=1"])
        .status()
        .expect("run sysctl");
    assert!(forwarding.success(), "forwarding in the router namespace");
    let upstream: SocketAddr = "203.0.113.53:53".parse().unwrap();
    let path = server_ns.path();
    let code = std::thread::spawn(move || {
        testkit::netns::enter_netns(&path).expect("enter the server namespace");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let config = ServerConfig {
                upstreams: vec![upstream],
                upstream_timeout: Duration::from_secs(30),
                ..ServerConfig::default()
            };
            let dns = TestDns::start(None, config).await;
            udp_query(dns.server.addr, "www.example.org", RecordType::A)
                .await
                .metadata
                .response_code
        })
    })
    .join()
    .expect("the query thread");
    assert_eq!(code, ResponseCode::ServFail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_floods_get_answers_or_errors() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        upstreams: vec![silent.local_addr().unwrap()],
        upstream_timeout: Duration::from_millis(200),
        max_forwards_in_flight: 16,
        ..ServerConfig::default()
    };
    let dns = TestDns::start(None, config).await;
    let addr = dns.server.addr;

    // Garbage: short, random, a response, a 64 KiB datagram.
    for packet in [
        vec![0u8; 3],
        (0..200).map(|i| (i * 7 + 3) as u8).collect::<Vec<u8>>(),
        {
            let mut p = query_packet(1, "web.default.svc.cluster.local", RecordType::A, None);
            p[2] |= 0x80;
            p
        },
    ] {
        if let Some(reply) = udp_exchange(addr, &packet).await {
            let m = Message::from_vec(&reply).expect("a reply parses");
            assert_ne!(m.metadata.response_code, ResponseCode::NoError);
        }
    }
    let mut big = query_packet(2, "web.default.svc.cluster.local", RecordType::A, None);
    big.resize(65_000, 0);
    let reply = udp_exchange(addr, &big)
        .await
        .expect("oversized query answered");
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(m.metadata.id, 2);

    // A TCP frame that promises more than it sends, then hangs up: the server survives.
    {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(&[0xff, 0xff, 1, 2, 3]).await.unwrap();
    }

    // A flood of unknown outside names against an upstream that never answers: at most 16
    // are in flight, the rest get SERVFAIL at once instead of piling up. Sent in bursts of 100
    // so that the loopback socket buffers do not drop datagrams.
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let forwarded_before = dns::metrics::metrics().forwarded.get();
    for burst in 0..10u16 {
        for i in 0..100u16 {
            let id = burst * 100 + i;
            let p = query_packet(id, &format!("x{id}.flood.example"), RecordType::A, None);
            socket.send(&p).await.unwrap();
        }
        let mut answered = 0;
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await
        {
            let m = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
            answered += 1;
            if answered == 100 {
                break;
            }
        }
        assert_eq!(answered, 100, "burst {burst}: every flooded query answered");
    }
    // Each burst forwarded at most 16 (the other tests of this process forward a handful).
    let forwarded = dns::metrics::metrics().forwarded.get() - forwarded_before;
    assert!(
        forwarded <= 10 * 16 + 20,
        "{forwarded} of 1000 flooded queries were forwarded"
    );

    // A flood of unknown cluster names: all NXDOMAIN.
    for burst in 0..10u16 {
        for i in 0..100u16 {
            let id = burst * 100 + i;
            let p = query_packet(
                id,
                &format!("svc{id}.default.svc.cluster.local"),
                RecordType::A,
                None,
            );
            socket.send(&p).await.unwrap();
        }
        let mut nxdomain = 0;
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await
        {
            let m = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
            nxdomain += 1;
            if nxdomain == 100 {
                break;
            }
        }
        assert_eq!(nxdomain, 100, "burst {burst}");
    }

    // Still serving normally.
    let m = udp_query(addr, "10-1-2-3.default.pod.cluster.local", RecordType::A).await;
    assert_eq!(addresses(&m), vec!["10.1.2.3"]);
    let m = tcp_query(addr, "10-1-2-3.default.pod.cluster.local", RecordType::A).await;
    assert_eq!(addresses(&m), vec!["10.1.2.3"]);
}

/// GET over plain HTTP/1.0; (status, body).
async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).await.ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Kills the child on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_with_a_kubeconfig() {
    let api = TestServer::start().await;
    let kubeconfig = api.kubeconfig();
    let dns_port = testkit::free_port();
    let metrics_port = testkit::free_port();
    let dns_addr: SocketAddr = format!("127.0.0.1:{dns_port}").parse().unwrap();
    let metrics_addr: SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_mini-dns"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--listen", &dns_addr.to_string()])
            .args(["--metrics-address", &metrics_addr.to_string()])
            .args(["--upstream", "none", "--ttl", "7"])
            .spawn()
            .unwrap(),
    );
    eventually("/ready", || async {
        matches!(http_get(metrics_addr, "/ready").await, Some((200, _))).then_some(())
    })
    .await;
    let m = udp_query(
        dns_addr,
        "kubernetes.default.svc.cluster.local",
        RecordType::A,
    )
    .await;
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].ttl, 7);
    let (status, body) = http_get(metrics_addr, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("dns_index_services 1"), "{body}");
    assert!(body.contains("dns_requests_total"), "{body}");
    let (status, _) = http_get(metrics_addr, "/healthz").await.unwrap();
    assert_eq!(status, 200);
    // SIGTERM: a clean exit.
    let pid = child.0.id();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = child.0.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(exited.expect("mini-dns exits on SIGTERM").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_in_a_pod_reaches_the_kubernetes_service_over_http() {
    // In a pod: no kubeconfig, no service-account CA, KUBERNETES_SERVICE_HOST/PORT set.
    let api = TestServer::start().await;
    let url: url_parts::Parts = url_parts::parse(&api.url);
    let dns_addr: SocketAddr = format!("127.0.0.1:{}", testkit::free_port())
        .parse()
        .unwrap();
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", testkit::free_port())
        .parse()
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let _child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_mini-dns"))
            .env_remove("KUBECONFIG")
            .env("HOME", home.path())
            .env("KUBERNETES_SERVICE_HOST", &url.host)
            .env("KUBERNETES_SERVICE_PORT", &url.port)
            .args(["--listen", &dns_addr.to_string()])
            .args(["--metrics-address", &metrics_addr.to_string()])
            .args(["--upstream", "none"])
            .spawn()
            .unwrap(),
    );
    eventually("/ready", || async {
        matches!(http_get(metrics_addr, "/ready").await, Some((200, _))).then_some(())
    })
    .await;
    let m = udp_query(
        dns_addr,
        "kubernetes.default.svc.cluster.local",
        RecordType::A,
    )
    .await;
    assert_eq!(m.answers.len(), 1);
}

mod url_parts {
    //! Host and port of the test apiserver's http://HOST:PORT.
    pub struct Parts {
        pub host: String,
        pub port: String,
    }

    pub fn parse(url: &str) -> Parts {
        let rest = url.trim_start_matches("http://");
        let (host, port) = rest.rsplit_once(':').unwrap();
        Parts {
            host: host.to_string(),
            port: port.to_string(),
        }
    }
}
