//! Liveness, readiness and startup probes (exec, tcpSocket, httpGet) and the per-container
//! prober loops that turn single results into a state with upstream's thresholds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cri::ContainerRuntime;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// livenessProbe.
    Liveness,
    /// readinessProbe.
    Readiness,
    /// startupProbe.
    Startup,
}

/// One probe run's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Passed.
    Success,
    /// Failed, with why.
    Failure(String),
}

/// Resolves a port that may be a container port name.
pub fn resolve_port(port: &IntOrString, c: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).ok(),
        IntOrString::String(s) => s.parse().ok().or_else(|| {
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(s.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
        }),
    }
}

/// An HTTP GET as the kubelet's prober sends it; success is a status in 200..400.
pub async fn http_get(
    action: &HTTPGetAction,
    default_host: &str,
    c: &Container,
    timeout: Duration,
) -> Outcome {
    let host = action
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| default_host.to_string());
    let Some(port) = resolve_port(&action.port, c) else {
        return Outcome::Failure(format!("invalid port {:?}", action.port));
    };
    let https = match action.scheme.as_deref().unwrap_or("HTTP") {
        "HTTP" => false,
        "HTTPS" => true,
        other => return Outcome::Failure(format!("unsupported scheme {other:?}")),
    };
    let scheme = if https { "https" } else { "http" };
    let path = action.path.clone().unwrap_or_else(|| "/".into());
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for h in action.http_headers.iter().flatten() {
        req.push_str(&format!("{}: {}\r\n", h.name, h.value));
    }
    req.push_str("\r\n");
    let url = format!("{scheme}://{host}:{port}{path}");
    let run = async {
        let addr: SocketAddr = format!("{host}:{port}")
            .parse()
            .map_err(|e| format!("bad address {host}:{port}: {e}"))?;
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("Get \"{url}\": {e}"))?;
        if !https {
            return status_code(tcp, &req).await;
        }
        // Upstream's prober does not verify the certificate (InsecureSkipVerify).
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let tls = tokio_rustls::TlsConnector::from(insecure_tls())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("Get \"{url}\": {e}"))?;
        status_code(tls, &req).await
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(code)) if (200..400).contains(&code) => Outcome::Success,
        Ok(Ok(code)) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
        Ok(Err(e)) => Outcome::Failure(e),
        Err(_) => Outcome::Failure(format!("Get \"{url}\": context deadline exceeded")),
    }
}

/// Sends `req` and reads the status code of the answer.
async fn status_code<S>(mut s: S, req: &str) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1024];
    let mut got = 0;
    while got < 16 {
        let n = s.read(&mut buf[got..]).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let head = String::from_utf8_lossy(&buf[..got]).to_string();
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("malformed HTTP response {head:?}"))
}

/// A TLS client that accepts any server certificate, as upstream's HTTPS prober does: a probe
/// checks that the container answers, not who it is.
fn insecure_tls() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| daemon::tls::client_config(None, None).expect("no certificate to load"))
        .clone()
}

/// A TCP connect.
pub async fn tcp(host: &str, port: u16, timeout: Duration) -> Outcome {
    let addr = format!("{host}:{port}");
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Outcome::Success,
        Ok(Err(e)) => Outcome::Failure(format!("dial tcp {addr}: {e}")),
        Err(_) => Outcome::Failure(format!("dial tcp {addr}: i/o timeout")),
    }
}

/// Runs one probe against container `id` (pod IP `host`).
pub async fn run_once(
    probe: &Probe,
    c: &Container,
    id: &str,
    host: &str,
    runtime: &dyn ContainerRuntime,
) -> Outcome {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(e) = &probe.exec {
        let cmd = e.command.clone().unwrap_or_default();
        return match runtime.exec_sync(id, &cmd, timeout).await {
            Ok((0, _)) => Outcome::Success,
            Ok((code, out)) => Outcome::Failure(format!(
                "command {cmd:?} exited with {code}: {}",
                out.trim()
            )),
            Err(e) => Outcome::Failure(e.to_string()),
        };
    }
    if let Some(t) = &probe.tcp_socket {
        let h = t.host.clone().filter(|h| !h.is_empty());
        return match resolve_port(&t.port, c) {
            Some(p) => tcp(h.as_deref().unwrap_or(host), p, timeout).await,
            None => Outcome::Failure(format!("invalid port {:?}", t.port)),
        };
    }
    if let Some(h) = &probe.http_get {
        return http_get(h, host, c, timeout).await;
    }
    Outcome::Failure("probe has no handler this kubelet supports".into())
}

/// Applies thresholds: returns the new state given consecutive counts.
#[derive(Debug, Clone)]
pub struct Thresholds {
    success: i32,
    failure: i32,
    successes: i32,
    failures: i32,
    /// The current state.
    pub state: bool,
}

impl Thresholds {
    /// From the probe's successThreshold/failureThreshold, starting in `initial`.
    pub fn new(probe: &Probe, initial: bool) -> Self {
        Thresholds {
            success: probe.success_threshold.unwrap_or(1).max(1),
            failure: probe.failure_threshold.unwrap_or(3).max(1),
            successes: 0,
            failures: 0,
            state: initial,
        }
    }

    /// Feeds one result; true when the state changed.
    pub fn observe(&mut self, ok: bool) -> bool {
        if ok {
            self.successes += 1;
            self.failures = 0;
            if !self.state && self.successes >= self.success {
                self.state = true;
                return true;
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.state && self.failures >= self.failure {
                self.state = false;
                return true;
            }
        }
        false
    }
}

/// Shared probe states, written by prober loops, read by the pod worker.
#[derive(Debug, Default)]
pub struct ProbeStates {
    states: std::sync::Mutex<std::collections::HashMap<(String, ProbeKind), (bool, String)>>,
}

impl ProbeStates {
    /// The state of a container's probe, if its loop has decided one.
    pub fn get(&self, container_id: &str, kind: ProbeKind) -> Option<(bool, String)> {
        self.states
            .lock()
            .expect("probe states lock")
            .get(&(container_id.to_string(), kind))
            .cloned()
    }

    fn set(&self, container_id: &str, kind: ProbeKind, ok: bool, msg: String) {
        self.states
            .lock()
            .expect("probe states lock")
            .insert((container_id.to_string(), kind), (ok, msg));
    }

    /// Drops a container's states.
    pub fn forget(&self, container_id: &str) {
        self.states
            .lock()
            .expect("probe states lock")
            .retain(|(id, _), _| id != container_id);
    }
}

/// Runs the probe loop of one container instance until `stop` fires; calls `changed` whenever
/// the state flips. Liveness and readiness wait for the startup probe when there is one.
#[allow(clippy::too_many_arguments)]
pub async fn prober_loop(
    kind: ProbeKind,
    probe: Probe,
    c: Container,
    id: String,
    host: String,
    runtime: Arc<dyn ContainerRuntime>,
    states: Arc<ProbeStates>,
    changed: Arc<tokio::sync::Notify>,
) {
    let initial = kind == ProbeKind::Liveness;
    let mut th = Thresholds::new(&probe, initial);
    states.set(&id, kind, initial, String::new());
    let delay = Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0).max(0) as u64);
    let period = Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64);
    tokio::time::sleep(delay).await;
    let has_startup = c.startup_probe.is_some();
    loop {
        let gated = kind != ProbeKind::Startup
            && has_startup
            && !states
                .get(&id, ProbeKind::Startup)
                .map(|s| s.0)
                .unwrap_or(false);
        if !gated {
            let out = run_once(&probe, &c, &id, &host, runtime.as_ref()).await;
            let (ok, msg) = match out {
                Outcome::Success => (true, String::new()),
                Outcome::Failure(m) => (false, m),
            };
            let flipped = th.observe(ok);
            states.set(&id, kind, th.state, msg);
            if flipped {
                changed.notify_one();
            }
            // A startup probe stops once it succeeded.
            if kind == ProbeKind::Startup && th.state {
                return;
            }
        }
        tokio::time::sleep(period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLS server on loopback with a fresh self-signed certificate, answering `status` to
    /// one request.
    async fn self_signed_server(status: u16) -> u16 {
        let key = rcgen::generate_simple_self_signed(vec!["nobody.invalid".into()]).unwrap();
        let cert = key.cert.der().clone();
        let pkey =
            rustls::pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], pkey)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = tls.read(&mut buf).await;
            let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            let _ = tls.write_all(answer.as_bytes()).await;
            let _ = tls.shutdown().await;
        });
        port
    }

    fn https_get(port: u16) -> HTTPGetAction {
        HTTPGetAction {
            scheme: Some("HTTPS".into()),
            port: IntOrString::Int(port.into()),
            path: Some("/healthz".into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn https_probes_do_not_verify_the_certificate_as_upstream() {
        let c = Container::default();
        let t = Duration::from_secs(5);
        let port = self_signed_server(200).await;
        assert_eq!(
            http_get(&https_get(port), "127.0.0.1", &c, t).await,
            Outcome::Success
        );
        let port = self_signed_server(503).await;
        assert_eq!(
            http_get(&https_get(port), "127.0.0.1", &c, t).await,
            Outcome::Failure("HTTP probe failed with statuscode: 503".into())
        );
        // A plain HTTP server does not pass an HTTPS probe.
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = plain.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = plain.accept().await.unwrap();
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
        });
        assert!(matches!(
            http_get(&https_get(port), "127.0.0.1", &c, t).await,
            Outcome::Failure(_)
        ));
    }

    #[test]
    fn thresholds_flip_after_consecutive_results() {
        let p = Probe {
            failure_threshold: Some(2),
            success_threshold: Some(2),
            ..Default::default()
        };
        let mut t = Thresholds::new(&p, true);
        assert!(!t.observe(false));
        assert!(t.observe(false));
        assert!(!t.state);
        assert!(!t.observe(true));
        assert!(!t.observe(false));
        assert!(!t.observe(true));
        assert!(t.observe(true));
        assert!(t.state);
    }

    #[test]
    fn named_ports_resolve_through_the_container() {
        let c = Container {
            name: "web".into(),
            ports: Some(vec![k8s_openapi::api::core::v1::ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Some(8080)
        );
        assert_eq!(resolve_port(&IntOrString::Int(81), &c), Some(81));
        assert_eq!(resolve_port(&IntOrString::String("nope".into()), &c), None);
    }

    #[tokio::test]
    async fn http_and_tcp_probes_against_a_local_server() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let code = if n == 0 { 200 } else { 503 };
                n += 1;
                let _ = s
                    .write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let c = Container::default();
        let a = HTTPGetAction {
            path: Some("/healthz".into()),
            port: IntOrString::Int(port as i32),
            ..Default::default()
        };
        let t = Duration::from_secs(2);
        assert_eq!(http_get(&a, "127.0.0.1", &c, t).await, Outcome::Success);
        assert_eq!(
            http_get(&a, "127.0.0.1", &c, t).await,
            Outcome::Failure("HTTP probe failed with statuscode: 503".into())
        );
        assert_eq!(tcp("127.0.0.1", port, t).await, Outcome::Success);
    }
}
