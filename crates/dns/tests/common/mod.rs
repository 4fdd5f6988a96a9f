//! Harness of the mini-dns suites: an in-process apiserver on loopback, mini-dns in-process or
//! as the binary, a fake upstream (hickory-server with an in-memory zone), and DNS queries over
//! UDP and TCP built with hickory-proto.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use apiserver::{ApiServer, Config};
use dns::answer::Settings;
use dns::index::Index;
use dns::server::{Readiness, RunningServer, ServerConfig, Shared};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An in-process apiserver on a free loopback port.
pub struct TestServer {
    pub url: String,
    pub srv: Arc<ApiServer>,
    pub dir: TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// A server over a fresh embedded store.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn store::Store> = Arc::new(
            store::embedded::EmbeddedStore::open(&dir.path().join("state.db"))
                .expect("open embedded store"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cfg = Config {
            advertise: addr,
            service_cluster_ip_range: "10.96.0.0/16".parse().unwrap(),
            service_node_port_range: (30000, 30100),
            bookmark_interval: Duration::from_secs(1),
            compaction_interval: Duration::from_secs(3600),
            // no ServiceAccount admission: no controller here makes `default` ServiceAccounts
            admission: apiserver::admission::Plugins::default()
                .without(apiserver::admission::Plugin::ServiceAccount),
            ..Config::default()
        };
        let srv = ApiServer::start(store, cfg).await.unwrap();
        let router = srv.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        TestServer {
            url: format!("http://{addr}"),
            srv,
            dir,
            task,
        }
    }

    /// A kube-rs client for this server.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(kube::Config::new(self.url.parse().unwrap())).unwrap()
    }

    /// Writes a kubeconfig for kubectl and the binary and returns its path.
    pub fn kubeconfig(&self) -> std::path::PathBuf {
        let p = self.dir.path().join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {}\nusers:\n- name: t\n  user: {{}}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: t\n    namespace: default\ncurrent-context: t\n",
            self.url
        );
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// mini-dns running in-process: its server, its watches (aborted on drop) and its index.
pub struct TestDns {
    pub server: RunningServer,
    pub index: Arc<RwLock<Index>>,
    pub readiness: Arc<Readiness>,
    watches: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TestDns {
    fn drop(&mut self) {
        if let Some(w) = &self.watches {
            w.abort();
        }
    }
}

impl TestDns {
    /// Serves on a free loopback port; watches `client` when given.
    pub async fn start(client: Option<kube::Client>, config: ServerConfig) -> TestDns {
        let index = Arc::new(RwLock::new(Index::new()));
        let readiness = Arc::new(Readiness::default());
        let shared = Shared::new(
            index.clone(),
            Settings::new("cluster.local", 5).unwrap(),
            config,
        );
        let mut last = None;
        for _ in 0..20 {
            let addr: SocketAddr = format!("127.0.0.1:{}", testkit::free_port())
                .parse()
                .unwrap();
            match dns::server::serve(addr, shared.clone()).await {
                Ok(server) => {
                    let watches = client.map(|c| {
                        tokio::spawn(dns::watch::run(c, index.clone(), readiness.clone()))
                    });
                    return TestDns {
                        server,
                        index,
                        readiness,
                        watches,
                    };
                }
                Err(e) => last = Some(e),
            }
        }
        panic!("no free port for mini-dns: {last:?}");
    }

    /// Waits (bounded) until both watches have listed.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.readiness.is_ready() {
            assert!(
                Instant::now() < deadline,
                "mini-dns watches did not list in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A query packet (RD set, optional EDNS payload size).
pub fn query_packet(id: u16, name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.edns = Some(e);
    }
    m.to_vec().unwrap()
}

/// One query over UDP (2 s timeout).
pub async fn udp_query(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let id = rand::random::<u16>();
    let bytes = udp_exchange(server, &query_packet(id, name, qtype, None))
        .await
        .unwrap_or_else(|| panic!("no UDP answer for {name} {qtype}"));
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.metadata.id, id);
    m
}

/// Sends raw bytes over UDP; the answer, if one comes within 2 s.
pub async fn udp_exchange(server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server).await.unwrap();
    socket.send(packet).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    match tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// One query over TCP (2 s timeout).
pub async fn tcp_query(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let id = rand::random::<u16>();
    let packet = query_packet(id, name, qtype, None);
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
        s.write_all(&(packet.len() as u16).to_be_bytes())
            .await
            .unwrap();
        s.write_all(&packet).await.unwrap();
        let len = s.read_u16().await.unwrap() as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await.unwrap();
        buf
    };
    let bytes = tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .unwrap_or_else(|_| panic!("no TCP answer for {name} {qtype}"));
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.metadata.id, id);
    m
}

/// The A/AAAA addresses of an answer, sorted, as strings.
pub fn addresses(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// Polls `check` (bounded: 10 s) until it returns Some.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A fake upstream: hickory-server with an in-memory zone `example.org` holding
/// `www.example.org A 192.0.2.10`, on UDP and TCP of a free loopback port.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    server: hickory_server::Server<hickory_server::zone_handler::Catalog>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.server.shutdown_token().cancel();
    }
}

impl FakeUpstream {
    pub async fn start() -> FakeUpstream {
        use hickory_proto::rr::rdata::{A, SOA};
        use hickory_server::store::in_memory::InMemoryZoneHandler;
        use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

        let origin = Name::from_ascii("example.org.").unwrap();
        let mut zone: InMemoryZoneHandler =
            InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        let soa = SOA::new(
            Name::from_ascii("ns.example.org.").unwrap(),
            Name::from_ascii("hostmaster.example.org.").unwrap(),
            1,
            3600,
            600,
            86400,
            60,
        );
        zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
        zone.upsert_mut(
            Record::from_rdata(
                Name::from_ascii("www.example.org.").unwrap(),
                60,
                RData::A(A("192.0.2.10".parse().unwrap())),
            ),
            1,
        );
        let mut catalog = Catalog::new();
        catalog.upsert(origin.into(), vec![Arc::new(zone)]);
        let mut server = hickory_server::Server::new(catalog);
        for _ in 0..20 {
            let port = testkit::free_port();
            let Ok(udp) = tokio::net::UdpSocket::bind(("127.0.0.1", port)).await else {
                continue;
            };
            let Ok(tcp) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await else {
                continue;
            };
            let addr = udp.local_addr().unwrap();
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5), 64);
            return FakeUpstream { addr, server };
        }
        panic!("no free port for the fake upstream");
    }
}
