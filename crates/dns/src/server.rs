//! The sockets: a UDP loop and a TCP listener on the same address answering from the index, and
//! the forwarder that sends names outside the cluster domain to the upstream resolvers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use nix::sys::socket::{setsockopt, sockopt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::answer::{self, Outcome, Settings, Transport};
use crate::cache::AnswerCache;
use crate::index::Index;
use crate::metrics::{metrics, RequestLabels};
use crate::Error;

/// How the server forwards and protects itself.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Upstream resolvers for names outside the cluster domain (empty: REFUSED).
    pub upstreams: Vec<SocketAddr>,
    /// Time a forwarded request may take over all upstreams before SERVFAIL.
    pub upstream_timeout: Duration,
    /// Forwarded requests in flight at most; more are answered SERVFAIL at once.
    pub max_forwards_in_flight: usize,
    /// TCP connections at most; more wait in the accept queue.
    pub max_tcp_connections: usize,
    /// A TCP connection without a request for this long is closed.
    pub tcp_idle_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            upstreams: Vec::new(),
            upstream_timeout: Duration::from_secs(2),
            max_forwards_in_flight: 1024,
            max_tcp_connections: 256,
            tcp_idle_timeout: Duration::from_secs(10),
        }
    }
}

/// Whether each watch has listed once (the index is complete).
#[derive(Debug, Default)]
pub struct Readiness {
    /// Services listed.
    pub services: AtomicBool,
    /// EndpointSlices listed.
    pub slices: AtomicBool,
}

impl Readiness {
    /// Ready once both watches have listed.
    pub fn is_ready(&self) -> bool {
        self.services.load(Ordering::Relaxed) && self.slices.load(Ordering::Relaxed)
    }
}

/// What the serving tasks share.
pub struct Shared {
    /// The index the answers come from.
    pub index: Arc<RwLock<Index>>,
    /// Answer settings.
    pub settings: Settings,
    /// Forwarding and limits.
    pub config: ServerConfig,
    forward_slots: Arc<Semaphore>,
    /// Encoded UDP replies of the current index serial.
    cache: Mutex<AnswerCache>,
}

/// Replies the answer cache holds at most (about 100–500 bytes each).
pub const CACHE_CAPACITY: usize = 10_000;

impl Shared {
    /// Shared state over an index.
    pub fn new(index: Arc<RwLock<Index>>, settings: Settings, config: ServerConfig) -> Arc<Self> {
        let forward_slots = Arc::new(Semaphore::new(config.max_forwards_in_flight.max(1)));
        Arc::new(Shared {
            index,
            settings,
            config,
            forward_slots,
            cache: Mutex::new(AnswerCache::new(CACHE_CAPACITY)),
        })
    }

    fn answer(&self, packet: &[u8], transport: Transport) -> answer::Handled {
        self.answer_with_serial(packet, transport).0
    }

    /// The answer and the serial of the index it came from (read under the same lock).
    fn answer_with_serial(&self, packet: &[u8], transport: Transport) -> (answer::Handled, u32) {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        (
            answer::handle(&index, &self.settings, packet, transport),
            index.serial(),
        )
    }

    /// A UDP answer: from the cache when the same request was answered under the current index,
    /// else computed and remembered.
    fn answer_udp(&self, packet: &[u8]) -> answer::Handled {
        let serial = self
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .serial();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = cache.get(serial, packet) {
            metrics().cache_hits.inc();
            return answer::Handled {
                outcome: Outcome::Reply(hit.reply),
                qtype: hit.qtype,
                rcode: hit.rcode,
            };
        }
        drop(cache);
        metrics().cache_misses.inc();
        let (handled, serial) = self.answer_with_serial(packet, Transport::Udp);
        if let Outcome::Reply(reply) = &handled.outcome {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.insert(serial, packet, reply, handled.qtype, handled.rcode);
            metrics().cache_entries.set(cache.len() as i64);
        }
        handled
    }
}

/// The running server: its address and tasks (aborted on drop).
pub struct RunningServer {
    /// The UDP and TCP address.
    pub addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl RunningServer {
    /// Waits until a serving task ends (it only does on a fatal socket error).
    pub async fn wait(&mut self) {
        if let Some(t) = self.tasks.first_mut() {
            let _ = t.await;
        }
    }
}

/// Binds `listen` for UDP and TCP and serves in the background.
pub async fn serve(listen: SocketAddr, shared: Arc<Shared>) -> Result<RunningServer, Error> {
    let bind_err = |source| Error::Bind {
        addr: listen,
        source,
    };
    let udp = UdpSocket::bind(listen).await.map_err(bind_err)?;
    let addr = udp.local_addr().map_err(bind_err)?;
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let udp = Arc::new(udp);
    let tasks = vec![
        tokio::spawn(udp_loop(udp, shared.clone())),
        tokio::spawn(tcp_loop(tcp, shared)),
    ];
    Ok(RunningServer { addr, tasks })
}

fn record(
    proto: &'static str,
    qtype: Option<hickory_proto::rr::RecordType>,
    rcode: ResponseCode,
    start: Instant,
) {
    let m = metrics();
    m.requests
        .get_or_create(&RequestLabels {
            proto,
            r#type: qtype.map(<&'static str>::from).unwrap_or("none"),
            rcode: rcode_name(rcode),
        })
        .inc();
    m.duration.observe(start.elapsed().as_secs_f64());
}

/// The response code as dig prints it.
fn rcode_name(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        _ => "OTHER",
    }
}

/// The response code of a forwarded answer.
fn rcode_of(packet: &[u8]) -> ResponseCode {
    packet
        .get(3)
        .map(|b| ResponseCode::from(0, b & 0x0f))
        .unwrap_or(ResponseCode::ServFail)
}

async fn udp_loop(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors of earlier sends surface here on Linux; keep serving.
                tracing::debug!(error = %e, "udp receive");
                continue;
            }
        };
        let start = Instant::now();
        let handled = shared.answer_udp(&buf[..len]);
        match handled.outcome {
            Outcome::Reply(bytes) => {
                if let Err(e) = socket.send_to(&bytes, peer).await {
                    tracing::debug!(error = %e, %peer, "udp send");
                }
                record("udp", handled.qtype, handled.rcode, start);
            }
            Outcome::Drop => {
                metrics().dropped.inc();
            }
            Outcome::Forward(request) => {
                if shared.config.upstreams.is_empty() {
                    let bytes = answer::error_reply(&request, ResponseCode::Refused);
                    let _ = socket.send_to(&bytes, peer).await;
                    record("udp", handled.qtype, ResponseCode::Refused, start);
                    continue;
                }
                let Ok(permit) = shared.forward_slots.clone().try_acquire_owned() else {
                    let bytes = answer::error_reply(&request, ResponseCode::ServFail);
                    let _ = socket.send_to(&bytes, peer).await;
                    record("udp", handled.qtype, ResponseCode::ServFail, start);
                    continue;
                };
                let packet = buf[..len].to_vec();
                let socket = socket.clone();
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let reply = forward(&shared.config, &packet, Transport::Udp).await;
                    let (bytes, rcode) = match reply {
                        Some(bytes) => {
                            let rcode = rcode_of(&bytes);
                            (bytes, rcode)
                        }
                        None => (
                            answer::error_reply(&request, ResponseCode::ServFail),
                            ResponseCode::ServFail,
                        ),
                    };
                    let _ = socket.send_to(&bytes, peer).await;
                    record("udp", handled.qtype, rcode, start);
                });
            }
        }
    }
}

async fn tcp_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(shared.config.max_tcp_connections.max(1)));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "tcp accept");
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = tcp_connection(stream, &shared).await {
                tracing::trace!(error = %e, %peer, "tcp connection ended");
            }
        });
    }
}

/// Serves one TCP connection: length-prefixed requests until EOF or idle timeout.
async fn tcp_connection(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let idle = shared.config.tcp_idle_timeout;
    loop {
        let len = match tokio::time::timeout(idle, stream.read_u16()).await {
            Ok(Ok(len)) => len as usize,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        };
        let mut packet = vec![0u8; len];
        match tokio::time::timeout(idle, stream.read_exact(&mut packet)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let start = Instant::now();
        let handled = shared.answer(&packet, Transport::Tcp);
        let (bytes, rcode) = match handled.outcome {
            Outcome::Reply(bytes) => (bytes, handled.rcode),
            Outcome::Drop => {
                metrics().dropped.inc();
                continue;
            }
            Outcome::Forward(request) => {
                if shared.config.upstreams.is_empty() {
                    (
                        answer::error_reply(&request, ResponseCode::Refused),
                        ResponseCode::Refused,
                    )
                } else {
                    match forward(&shared.config, &packet, Transport::Tcp).await {
                        Some(bytes) => {
                            let rcode = rcode_of(&bytes);
                            (bytes, rcode)
                        }
                        None => (
                            answer::error_reply(&request, ResponseCode::ServFail),
                            ResponseCode::ServFail,
                        ),
                    }
                }
            }
        };
        let Ok(len) = u16::try_from(bytes.len()) else {
            continue;
        };
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).await?;
        record("tcp", handled.qtype, rcode, start);
    }
}

/// Sends `packet` to the upstreams in turn (each gets an equal share of the timeout) and returns
/// the first answer with the request's id; None when none answered in time.
pub async fn forward(
    config: &ServerConfig,
    packet: &[u8],
    transport: Transport,
) -> Option<Vec<u8>> {
    if packet.len() < 12 || config.upstreams.is_empty() {
        return None;
    }
    metrics().forwarded.inc();
    let share = config.upstream_timeout / config.upstreams.len() as u32;
    let id = [packet[0], packet[1]];
    for upstream in &config.upstreams {
        let attempt = async {
            match transport {
                Transport::Udp => forward_udp(*upstream, packet, id).await,
                Transport::Tcp => forward_tcp(*upstream, packet, id).await,
            }
        };
        match tokio::time::timeout(share, attempt).await {
            Ok(Ok(bytes)) => return Some(bytes),
            Ok(Err(e)) => tracing::debug!(error = %e, %upstream, "forward"),
            Err(_) => tracing::debug!(%upstream, "forward timed out"),
        }
    }
    metrics().forward_timeouts.inc();
    None
}

fn unspecified_for(addr: &SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

async fn forward_udp(upstream: SocketAddr, packet: &[u8], id: [u8; 2]) -> std::io::Result<Vec<u8>> {
    // A fresh socket (random source port) per request: only the upstream can answer it.
    let socket = UdpSocket::bind(unspecified_for(&upstream)).await?;
    // Without IP_RECVERR a connected UDP socket hears only of "port unreachable"; with it, a
    // router's "host/net unreachable" fails the receive at once instead of after the timeout.
    match upstream {
        SocketAddr::V4(_) => setsockopt(&socket, sockopt::Ipv4RecvErr, &true)?,
        SocketAddr::V6(_) => setsockopt(&socket, sockopt::Ipv6RecvErr, &true)?,
    }
    socket.connect(upstream).await?;
    socket.send(packet).await?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = socket.recv(&mut buf).await?;
        if n >= 12 && buf[..2] == id && buf[2] & 0x80 != 0 {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn forward_tcp(upstream: SocketAddr, packet: &[u8], id: [u8; 2]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(packet.len()).map_err(std::io::Error::other)?;
    let mut framed = Vec::with_capacity(packet.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(packet);
    stream.write_all(&framed).await?;
    loop {
        let len = stream.read_u16().await? as usize;
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await?;
        if len >= 12 && buf[..2] == id {
            return Ok(buf);
        }
    }
}
