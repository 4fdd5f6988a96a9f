//! pods/log, pods/exec, pods/attach and pods/portforward: the apiserver finds the pod's node and proxies the
//! request to that node's kubelet API (logs stream through; exec and attach are HTTP upgrades
//! whose two halves are spliced together). Kubelets may live in another network namespace (a local lab cluster):
//! then they are dialed from inside it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::error::ApiError;
use crate::handlers::get_object;
use crate::request::Query;
use crate::server::ApiServer;

/// Connects to `addr`, from inside the network namespace at `netns` when given (the socket is
/// made on a short-lived thread that entered it; a socket keeps the namespace it was made in).
pub async fn dial(
    addr: SocketAddr,
    netns: Option<PathBuf>,
) -> std::io::Result<tokio::net::TcpStream> {
    let Some(path) = netns else {
        return tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?;
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let res = (|| {
            let f = std::fs::File::open(&path)?;
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(s)
        })();
        let _ = tx.send(res);
    });
    let std_stream = rx
        .await
        .map_err(|_| std::io::Error::other("dialer thread ended"))??;
    tokio::net::TcpStream::from_std(std_stream)
}

/// A byte stream to a kubelet: TCP, or TLS over it.
pub trait KubeletIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> KubeletIo for T {}

/// Connects to the kubelet at `addr`: TLS with the apiserver's kubelet-client certificate
/// when configured (as upstream always does), plain TCP for a plain test cluster.
async fn connect(srv: &ApiServer, addr: SocketAddr) -> Result<Box<dyn KubeletIo>, ApiError> {
    let tcp = dial(addr, srv.config.kubelet_netns.clone())
        .await
        .map_err(|e| unreachable(addr, e))?;
    let Some(tls) = &srv.config.kubelet_tls else {
        return Ok(Box::new(tcp));
    };
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| unreachable(addr, e))?;
    Ok(Box::new(stream))
}

/// The container a request means: the `container` parameter, or the only container.
fn container_of(pod: &Value, query: &Query) -> Result<String, ApiError> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let names = |key: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
            .collect()
    };
    let containers = names("containers");
    let init = names("initContainers");
    let ephemeral = names("ephemeralContainers");
    match query.get("container").filter(|c| !c.is_empty()) {
        Some(c) => {
            if containers
                .iter()
                .chain(init.iter())
                .chain(ephemeral.iter())
                .any(|n| n == c)
            {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None => {
            if let Some(d) = pod
                .pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container")
                .and_then(Value::as_str)
            {
                return Ok(d.to_string());
            }
            if containers.len() == 1 {
                return Ok(containers[0].clone());
            }
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

/// The kubelet endpoint of the pod's node.
async fn kubelet_of(srv: &Arc<ApiServer>, pod: &Value) -> Result<SocketAddr, ApiError> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("pod {name} does not have a host assigned"))
        })?;
    let nodes = api::registry::find("", "v1", "nodes").expect("nodes registered");
    let node = get_object(srv, nodes, None, node_name).await?;
    let ip = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))
        .and_then(|a| a.get("address").and_then(Value::as_str))
        .and_then(|a| a.parse::<std::net::IpAddr>().ok())
        .ok_or_else(|| {
            ApiError::service_unavailable(format!("node {node_name} reports no InternalIP"))
        })?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0)
        .unwrap_or(10250) as u16;
    Ok(SocketAddr::new(ip, port))
}

fn unreachable(addr: SocketAddr, e: impl std::fmt::Display) -> ApiError {
    ApiError::service_unavailable(format!("the kubelet at {addr} cannot be reached: {e}"))
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The kubelet path for `what` (containerLogs, exec, attach: with the container; portForward:
/// without) with the request's other parameters. PodPortForwardOptions' `ports` reach the
/// kubelet as `port`, as upstream passes them (no other subresource has a `ports`).
fn kubelet_path(what: &str, pod: &Value, container: Option<&str>, query: &Query) -> String {
    let ns = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let q: Vec<String> = query
        .pairs()
        .iter()
        .filter(|(k, _)| k != "container")
        .map(|(k, v)| {
            let k = if k == "ports" { "port" } else { k.as_str() };
            format!("{}={}", encode(k), encode(v))
        })
        .collect();
    match container {
        Some(c) => format!("/{what}/{ns}/{name}/{c}?{}", q.join("&")),
        None => format!("/{what}/{ns}/{name}?{}", q.join("&")),
    }
}

/// GET pods/log: streams the kubelet's containerLogs answer through.
pub async fn logs(srv: &Arc<ApiServer>, pod: &Value, query: &Query) -> Result<Response, ApiError> {
    let container = container_of(pod, query)?;
    let addr = kubelet_of(srv, pod).await?;
    let stream = connect(srv, addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(addr, e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::get(kubelet_path("containerLogs", pod, Some(&container), query))
        .header(http::header::HOST, addr.to_string())
        .body(Body::empty())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| unreachable(addr, e))?;
    let (parts, body) = resp.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// GET/POST pods/exec: upgrades the client's connection and splices it to the kubelet's.
pub async fn exec(
    srv: &Arc<ApiServer>,
    pod: &Value,
    query: &Query,
    headers: &HeaderMap,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response, ApiError> {
    if query.all("command").is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let path = kubelet_path("exec", pod, Some(&container_of(pod, query)?), query);
    splice_upgrade(srv, "exec", path, &CHANNELS, pod, headers, upgrade).await
}

/// GET/POST pods/attach: as exec, to the container's own process.
pub async fn attach(
    srv: &Arc<ApiServer>,
    pod: &Value,
    query: &Query,
    headers: &HeaderMap,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response, ApiError> {
    let wanted = ["stdin", "stdout", "stderr"].iter().any(|k| query.flag(k));
    if !wanted {
        return Err(ApiError::bad_request(
            "you must specify at least one of stdin, stdout, stderr",
        ));
    }
    let path = kubelet_path("attach", pod, Some(&container_of(pod, query)?), query);
    splice_upgrade(srv, "attach", path, &CHANNELS, pod, headers, upgrade).await
}

/// GET/POST pods/portforward: upgrades (to SPDY/3.1, directly or in a WebSocket) and splices
/// the connection to the kubelet, which speaks the port-forward protocol.
pub async fn port_forward(
    srv: &Arc<ApiServer>,
    pod: &Value,
    query: &Query,
    headers: &HeaderMap,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response, ApiError> {
    let path = kubelet_path("portForward", pod, None, query);
    splice_upgrade(
        srv,
        "portforward",
        path,
        &PORT_FORWARD,
        pod,
        headers,
        upgrade,
    )
    .await
}

/// The HTTP upgrades a streaming subresource takes, and how a request without one is told.
struct Upgrades {
    /// Upgrade header values, lowercase.
    accepted: &'static [&'static str],
    /// Follows the subresource's name in the refusal.
    refusal: &'static str,
}

/// exec and attach: Kubernetes' WebSocket channel protocols.
const CHANNELS: Upgrades = Upgrades {
    accepted: &["websocket"],
    refusal: "needs a WebSocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io)",
};

/// portforward: SPDY/3.1, directly or tunnelled in a WebSocket, or the channel protocol.
const PORT_FORWARD: Upgrades = Upgrades {
    accepted: &["websocket", "spdy/3.1"],
    refusal: "needs an upgrade to SPDY/3.1 or a WebSocket (SPDY/3.1+portforward.k8s.io or v4.channel.k8s.io)",
};

/// Upgrades the client's connection and splices it to the kubelet's `path`.
async fn splice_upgrade(
    srv: &Arc<ApiServer>,
    what: &str,
    path: String,
    upgrades: &Upgrades,
    pod: &Value,
    headers: &HeaderMap,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response, ApiError> {
    let wants_upgrade = headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| upgrades.accepted.contains(&v.to_ascii_lowercase().as_str()));
    let Some(client_upgrade) = upgrade.filter(|_| wants_upgrade) else {
        return Err(ApiError::bad_request(format!(
            "{what} {}",
            upgrades.refusal
        )));
    };
    let addr = kubelet_of(srv, pod).await?;
    let stream = connect(srv, addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(addr, e))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut req = Request::get(path).header(http::header::HOST, addr.to_string());
    for h in [
        http::header::CONNECTION,
        http::header::UPGRADE,
        http::header::SEC_WEBSOCKET_KEY,
        http::header::SEC_WEBSOCKET_VERSION,
        http::header::SEC_WEBSOCKET_PROTOCOL,
        http::header::SEC_WEBSOCKET_EXTENSIONS,
        http::header::HeaderName::from_static("x-stream-protocol-version"),
    ] {
        for v in headers.get_all(&h) {
            req = req.header(&h, v);
        }
    }
    let req = req
        .body(Body::empty())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut resp = sender
        .send_request(req)
        .await
        .map_err(|e| unreachable(addr, e))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (parts, body) = resp.into_parts();
        return Ok(Response::from_parts(parts, Body::new(body)));
    }
    let kubelet_upgrade = hyper::upgrade::on(&mut resp);
    let mut out = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    tokio::spawn(async move {
        let (Ok(client), Ok(kubelet)) = (client_upgrade.await, kubelet_upgrade.await) else {
            return;
        };
        let mut client = TokioIo::new(client);
        let mut kubelet = TokioIo::new(kubelet);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut kubelet).await;
    });
    out.body(Body::empty())
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "web", "namespace": "shop"},
               "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}],
                        "initContainers": [{"name": "setup"}]}})
    }

    #[test]
    fn container_defaulting_matches_upstream_messages() {
        let err = container_of(&pod(), &Query::parse(None)).unwrap_err();
        assert_eq!(
            err.message,
            "a container name must be specified for pod web, choose one of: [a b] or one of the init containers: [setup]"
        );
        let err = container_of(&pod(), &Query::parse(Some("container=zz"))).unwrap_err();
        assert_eq!(err.message, "container zz is not valid for pod web");
        assert_eq!(
            container_of(&pod(), &Query::parse(Some("container=b"))).unwrap(),
            "b"
        );
        let single = json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "only"}]}});
        assert_eq!(container_of(&single, &Query::parse(None)).unwrap(), "only");
    }

    #[test]
    fn kubelet_paths_keep_repeated_commands() {
        let q = Query::parse(Some(
            "container=a&command=sh&command=-c&command=echo%20hi&stdout=true",
        ));
        assert_eq!(
            kubelet_path("exec", &pod(), Some("a"), &q),
            "/exec/shop/web/a?command=sh&command=-c&command=echo%20hi&stdout=true"
        );
    }

    #[test]
    fn port_forward_ports_become_the_kubelets_port() {
        let q = Query::parse(Some("ports=8080&ports=9090"));
        assert_eq!(
            kubelet_path("portForward", &pod(), None, &q),
            "/portForward/shop/web?port=8080&port=9090"
        );
    }
}
