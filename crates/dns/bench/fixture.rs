//! Benchmark fixture for mini-dns (see docs/perf.md, "## mini-dns"): builds the index from a
//! generated service set (ClusterIP services, headless ones with StatefulSet-style endpoints)
//! and either serves it with mini-dns' server, or writes the same records as an NSD zone file
//! plus a dnsperf query file, so both servers answer the same names.
//!
//!   mini-dns-bench-fixture write DIR [SERVICES]   # DIR/cluster.local.zone, DIR/queries.txt
//!   mini-dns-bench-fixture serve ADDR [SERVICES]  # mini-dns on ADDR (UDP+TCP), one worker
//!   mini-dns-bench-fixture compare QUERIES ADDR1 ADDR2  # same rcode and answers from both?
//!
//! Built with `cargo build --release -p dns --features bench-fixture`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use dns::answer::Settings;
use dns::index::Index;
use dns::server::{ServerConfig, Shared};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

/// Every tenth service is headless with this many endpoints.
const HEADLESS_ENDPOINTS: usize = 3;

struct Fixture {
    services: Vec<Service>,
    slices: Vec<EndpointSlice>,
}

fn cluster_ip(i: usize) -> String {
    format!("10.96.{}.{}", 1 + i / 250, 1 + i % 250)
}

fn endpoint_ip(i: usize, e: usize) -> String {
    let n = i * HEADLESS_ENDPOINTS + e;
    format!("10.244.{}.{}", n / 250, 1 + n % 250)
}

fn headless(i: usize) -> bool {
    i % 10 == 9
}

fn fixture(count: usize) -> Fixture {
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for i in 0..count {
        let name = format!("svc-{i}");
        let spec = if headless(i) {
            json!({"clusterIP": "None", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
        } else {
            json!({"clusterIP": cluster_ip(i), "clusterIPs": [cluster_ip(i)],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
        };
        services.push(
            serde_json::from_value(json!({"metadata": {"namespace": "bench", "name": name},
                                          "spec": spec}))
            .expect("service"),
        );
        if headless(i) {
            let endpoints: Vec<_> = (0..HEADLESS_ENDPOINTS)
                .map(|e| {
                    json!({"addresses": [endpoint_ip(i, e)], "conditions": {"ready": true},
                                "hostname": format!("{name}-{e}")})
                })
                .collect();
            slices.push(
                serde_json::from_value(json!({
                    "metadata": {"namespace": "bench", "name": format!("{name}-abcde"),
                                 "labels": {"kubernetes.io/service-name": name}},
                    "addressType": "IPv4", "endpoints": endpoints,
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}))
                .expect("slice"),
            );
        }
    }
    Fixture { services, slices }
}

/// The same records as an NSD zone (what mini-dns answers for these names, TTL 5).
fn zone(count: usize) -> String {
    let mut z = String::new();
    z.push_str("$ORIGIN cluster.local.\n$TTL 5\n");
    z.push_str("@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5\n");
    z.push_str("@ IN NS ns.dns.cluster.local.\nns.dns IN A 10.96.0.10\n");
    for i in 0..count {
        let svc = format!("svc-{i}.bench.svc");
        if headless(i) {
            for e in 0..HEADLESS_ENDPOINTS {
                let ip = endpoint_ip(i, e);
                let _ = writeln!(z, "{svc} IN A {ip}");
                let _ = writeln!(z, "svc-{i}-{e}.{svc} IN A {ip}");
                let _ = writeln!(
                    z,
                    "_http._tcp.{svc} IN SRV 0 33 8080 svc-{i}-{e}.{svc}.cluster.local."
                );
            }
        } else {
            let _ = writeln!(z, "{svc} IN A {}", cluster_ip(i));
            let _ = writeln!(z, "_http._tcp.{svc} IN SRV 0 100 80 {svc}.cluster.local.");
        }
    }
    z
}

/// The query mix: 70% A of services, 10% A of endpoint names, 10% SRV, 5% AAAA (NODATA),
/// 5% unknown names (NXDOMAIN).
fn queries(count: usize) -> String {
    let mut q = String::new();
    for n in 0..20 * count {
        let i = (n * 7919) % count;
        let kind = n % 20;
        let svc = format!("svc-{i}.bench.svc.cluster.local");
        let line = match kind {
            0..=13 => format!("{svc} A"),
            14 | 15 => {
                let h = if headless(i) { i } else { (i / 10) * 10 + 9 };
                if h < count {
                    format!(
                        "svc-{h}-{}.svc-{h}.bench.svc.cluster.local A",
                        n % HEADLESS_ENDPOINTS
                    )
                } else {
                    format!("{svc} A")
                }
            }
            16 | 17 => format!("_http._tcp.{svc} SRV"),
            18 => format!("{svc} AAAA"),
            _ => format!("nope-{i}.bench.svc.cluster.local A"),
        };
        q.push_str(&line);
        q.push('\n');
    }
    q
}

/// rcode and sorted answer records of one UDP query.
fn ask(
    socket: &std::net::UdpSocket,
    server: SocketAddr,
    name: &str,
    qtype: &str,
) -> anyhow::Result<(String, Vec<String>)> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    use std::str::FromStr;
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii(name)?,
        RecordType::from_str(qtype)?,
    ));
    socket.send_to(&m.to_vec()?, server)?;
    let mut buf = vec![0u8; 65_535];
    let (n, _) = socket.recv_from(&mut buf)?;
    let reply = Message::from_vec(&buf[..n])?;
    let mut answers: Vec<String> = reply
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name.to_lowercase(), r.ttl, r.data))
        .collect();
    answers.sort();
    Ok((reply.metadata.response_code.to_string(), answers))
}

/// Sends every query of the file to both servers; fails on the first difference.
fn compare(queries: &str, a: SocketAddr, b: SocketAddr) -> anyhow::Result<()> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    let mut checked = 0;
    for line in std::fs::read_to_string(queries)?.lines().take(5000) {
        let Some((name, qtype)) = line.split_once(' ') else {
            continue;
        };
        let left = ask(&socket, a, name, qtype)?;
        let right = ask(&socket, b, name, qtype)?;
        anyhow::ensure!(left == right, "{line}: {a} {left:?} but {b} {right:?}");
        checked += 1;
    }
    println!("{checked} queries: identical rcode and answers");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: mini-dns-bench-fixture write DIR [SERVICES] | serve ADDR [SERVICES] | compare QUERIES ADDR1 ADDR2";
    let count = || -> anyhow::Result<usize> {
        Ok(args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1000))
    };
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("write"), Some(dir)) => {
            let dir = std::path::Path::new(dir);
            std::fs::create_dir_all(dir)?;
            let count = count()?;
            std::fs::write(dir.join("cluster.local.zone"), zone(count))?;
            std::fs::write(dir.join("queries.txt"), queries(count))?;
            Ok(())
        }
        (Some("serve"), Some(addr)) => {
            let addr: SocketAddr = addr.parse()?;
            let f = fixture(count()?);
            let mut index = Index::new();
            index.replace_services(&f.services);
            index.replace_slices(&f.slices);
            eprintln!(
                "mini-dns-bench-fixture: {} services, {} endpoints on {addr}",
                index.service_count(),
                index.endpoint_count()
            );
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let shared = Shared::new(
                    Arc::new(RwLock::new(index)),
                    Settings::new("cluster.local", 5)?,
                    ServerConfig::default(),
                );
                let mut server = dns::server::serve(addr, shared).await?;
                tokio::select! {
                    _ = server.wait() => {}
                    _ = daemon::shutdown_signal() => {}
                }
                anyhow::Ok(())
            })
        }
        (Some("compare"), Some(queries)) => {
            let a: SocketAddr = args.get(3).ok_or(anyhow::anyhow!("{usage}"))?.parse()?;
            let b: SocketAddr = args.get(4).ok_or(anyhow::anyhow!("{usage}"))?.parse()?;
            compare(queries, a, b)
        }
        _ => anyhow::bail!("{usage}"),
    }
}
