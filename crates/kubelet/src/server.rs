//! The kubelet API on port 10250: /healthz, /pods, container logs (follow, tailLines,
//! sinceSeconds, timestamps, previous, limitBytes), exec and attach over WebSocket with
//! Kubernetes' channel protocols (v5.channel.k8s.io, v4.channel.k8s.io), and port-forward
//! over SPDY ([`crate::portforward`]). The apiserver's pods/log, pods/exec, pods/attach and
//! pods/portforward proxy here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use runtime::runtime::ContainerState;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::cri::ContainerRuntime;
use crate::manager::PodTable;
use crate::worker::{LABEL_CONTAINER_KIND, LABEL_CONTAINER_NAME, LABEL_POD_UID};

/// What the handlers need.
#[derive(Clone)]
pub struct ApiState {
    /// The pods this kubelet runs.
    pub pods: PodTable,
    /// The runtime.
    pub runtime: Arc<dyn ContainerRuntime>,
}

fn status_error(code: StatusCode, reason: &str, message: String) -> Response {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
    });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

/// Parses a query string into name → values.
pub fn parse_query(q: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        m.entry(percent_decode(k))
            .or_default()
            .push(percent_decode(v));
    }
    m
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(v) => {
                    out.push(v);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// A boolean query parameter as Go's strconv.ParseBool reads it (the Python client sends
/// `stdin=True`); present without a value counts as true.
fn flag(q: &HashMap<String, Vec<String>>, k: &str) -> bool {
    q.get(k)
        .and_then(|v| v.first())
        .is_some_and(|v| matches!(v.as_str(), "" | "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

fn int(q: &HashMap<String, Vec<String>>, k: &str) -> Option<i64> {
    q.get(k)
        .and_then(|v| v.first())
        .and_then(|v| v.parse().ok())
}

/// The router of the kubelet API.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/pods", get(pods))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .route("/exec/{namespace}/{pod}/{container}", get(exec).post(exec))
        .route(
            "/attach/{namespace}/{pod}/{container}",
            get(attach).post(attach),
        )
        .route(
            "/portForward/{namespace}/{pod}",
            get(port_forward).post(port_forward),
        )
        .with_state(state)
}

/// How the kubelet API is served: TLS (with the client certificates it asks for) and who may
/// call it; both None serves plain and open (tests of the handlers).
#[derive(Default)]
pub struct Serving {
    /// The TLS configuration.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Authentication and authorization of every request.
    pub auth: Option<std::sync::Arc<crate::auth::KubeletAuth>>,
}

/// Serves the kubelet API on `addr` in the background.
pub async fn serve(
    addr: SocketAddr,
    state: ApiState,
    serving: Serving,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let mut app = router(state);
    if let Some(auth) = serving.auth {
        app = app.layer(axum::middleware::from_fn_with_state(
            auth,
            crate::auth::guard,
        ));
    }
    let h = match serving.tls {
        Some(tls) => tokio::spawn(daemon::tls::serve(
            listener,
            app,
            tls,
            std::future::pending(),
        )),
        None => tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "kubelet API stopped");
            }
        }),
    };
    Ok((local, h))
}

async fn pods(State(st): State<ApiState>) -> Response {
    let items: Vec<Pod> = st.pods.lock().await.values().cloned().collect();
    let list =
        serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items});
    (
        [(header::CONTENT_TYPE, "application/json")],
        list.to_string(),
    )
        .into_response()
}

async fn find_pod(st: &ApiState, ns: &str, name: &str) -> Option<Pod> {
    st.pods
        .lock()
        .await
        .values()
        .find(|p| {
            p.metadata.namespace.as_deref() == Some(ns) && p.metadata.name.as_deref() == Some(name)
        })
        .cloned()
}

/// The pod `ns/name` of this node, or the NotFound answer.
async fn pod_on_node(st: &ApiState, ns: &str, name: &str) -> Result<Pod, Response> {
    find_pod(st, ns, name).await.ok_or_else(|| {
        status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("pod {ns}/{name} is not running on this node"),
        )
    })
}

/// The container's instances, newest first.
async fn instances(st: &ApiState, uid: &str, container: &str) -> Vec<ContainerState> {
    let mut v: Vec<ContainerState> = st
        .runtime
        .list_containers()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            c.labels.get(LABEL_POD_UID).map(String::as_str) == Some(uid)
                && c.labels.get(LABEL_CONTAINER_NAME).map(String::as_str) == Some(container)
        })
        .collect();
    v.sort_by_key(|c| {
        std::cmp::Reverse(
            c.annotations
                .get(crate::worker::ANNOTATION_RESTART_COUNT)
                .and_then(|s| s.parse::<i32>().ok())
                .unwrap_or(0),
        )
    });
    v
}

/// One CRI log record: (timestamp, partial, content).
pub fn parse_cri_line(line: &str) -> Option<(&str, bool, &str)> {
    let mut it = line.splitn(4, ' ');
    let ts = it.next()?;
    let _stream = it.next()?;
    let tag = it.next()?;
    let content = it.next().unwrap_or("");
    Some((ts, tag == "P", content))
}

/// Renders CRI log text as the user sees it, applying sinceTime, timestamps and tailLines.
pub fn render_logs(
    text: &str,
    since: Option<jiff::Timestamp>,
    timestamps: bool,
    tail: Option<i64>,
) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut partial = String::new();
    for raw in text.lines() {
        let Some((ts, is_partial, content)) = parse_cri_line(raw) else {
            continue;
        };
        if let Some(s) = since {
            if ts.parse::<jiff::Timestamp>().is_ok_and(|t| t < s) {
                continue;
            }
        }
        if partial.is_empty() && timestamps {
            partial.push_str(ts);
            partial.push(' ');
        }
        partial.push_str(content);
        if !is_partial {
            partial.push('\n');
            lines.push(std::mem::take(&mut partial));
        }
    }
    if !partial.is_empty() {
        lines.push(partial);
    }
    let start = match tail {
        Some(n) if n >= 0 => lines.len().saturating_sub(n as usize),
        _ => 0,
    };
    lines[start..].concat()
}

async fn container_logs(
    State(st): State<ApiState>,
    Path((ns, name, container)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = parse_query(q.as_deref());
    let pod = match pod_on_node(&st, &ns, &name).await {
        Ok(pod) => pod,
        Err(answer) => return answer,
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let inst = instances(&st, &uid, &container).await;
    let previous = flag(&q, "previous");
    let target = if previous { inst.get(1) } else { inst.first() };
    let Some(target) = target.cloned() else {
        let msg = if previous {
            format!("previous terminated container \"{container}\" in pod \"{name}\" not found")
        } else {
            format!("container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating")
        };
        return status_error(StatusCode::BAD_REQUEST, "BadRequest", msg);
    };
    let since = int(&q, "sinceSeconds")
        .map(|s| jiff::Timestamp::now() - jiff::SignedDuration::from_secs(s))
        .or_else(|| {
            q.get("sinceTime")
                .and_then(|v| v.first())
                .and_then(|v| v.parse().ok())
        });
    let timestamps = flag(&q, "timestamps");
    let tail = int(&q, "tailLines");
    let limit = int(&q, "limitBytes").filter(|l| *l > 0).map(|l| l as usize);
    let follow = flag(&q, "follow") && !previous;
    let path = target.log_path.clone();
    let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
    let mut first = render_logs(&text, since, timestamps, tail);
    if let Some(l) = limit {
        first.truncate(l);
    }
    if !follow {
        return ([(header::CONTENT_TYPE, "text/plain")], first).into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let offset = text.len() as u64;
    let id = target.id.clone();
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(first))).await.is_err() {
            return;
        }
        let (records_tx, mut records) = tokio::sync::mpsc::channel::<String>(16);
        tokio::spawn(follow_records(st, path, offset, id, records_tx));
        while let Some(complete) = records.recv().await {
            let out = render_logs(&complete, None, timestamps, None);
            if tx.send(Ok(Bytes::from(out))).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream_from(rx));
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Follows container `id`'s CRI log file from `offset`: sends each batch of complete records
/// (raw CRI lines) until the container has stopped and the file is drained, or the receiver
/// goes away. A file shorter than `offset` was rotated and is read from its start.
async fn follow_records(
    st: ApiState,
    path: PathBuf,
    mut offset: u64,
    id: String,
    tx: tokio::sync::mpsc::Sender<String>,
) {
    let mut pending = String::new();
    let mut last_check = tokio::time::Instant::now();
    let mut running = true;
    loop {
        let mut chunk = Vec::new();
        if let Ok(mut f) = tokio::fs::File::open(&path).await {
            let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
            if len < offset {
                offset = 0; // rotated
            }
            if f.seek(std::io::SeekFrom::Start(offset)).await.is_ok() {
                let _ = f.read_to_end(&mut chunk).await;
            }
        }
        if !chunk.is_empty() {
            offset += chunk.len() as u64;
            pending.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(cut) = pending.rfind('\n') {
                let complete: String = pending.drain(..=cut).collect();
                if tx.send(complete).await.is_err() {
                    return;
                }
            }
        } else if !running {
            return;
        }
        if tx.is_closed() {
            return;
        }
        if last_check.elapsed() >= Duration::from_millis(500) {
            last_check = tokio::time::Instant::now();
            running = st
                .runtime
                .list_containers()
                .await
                .map(|l| l.iter().any(|c| c.id == id && c.status == "running"))
                .unwrap_or(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Status an exec ends with on the error channel.
pub fn exec_status(code: i32, cmd: &[String]) -> serde_json::Value {
    if code == 0 {
        serde_json::json!({"metadata": {}, "status": "Success"})
    } else {
        serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                cmd.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        })
    }
}

/// The running instance of `container` in pod `ns/name` on this node, or the error answer.
async fn running_container(
    st: &ApiState,
    ns: &str,
    name: &str,
    container: &str,
) -> Result<ContainerState, Response> {
    let pod = pod_on_node(st, ns, name).await?;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let inst = instances(st, &uid, container).await;
    inst.first()
        .filter(|c| c.status == "running" && c.labels.contains_key(LABEL_CONTAINER_KIND))
        .cloned()
        .ok_or_else(|| {
            status_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("container {container} is not valid for pod {name}"),
            )
        })
}

type Upgrade = Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>;

fn needs_websocket(what: &str) -> Response {
    status_error(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("{what} needs a WebSocket upgrade with the v5.channel.k8s.io or v4.channel.k8s.io protocol"),
    )
}

async fn exec(
    State(st): State<ApiState>,
    Path((ns, name, container)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    ws: Upgrade,
) -> Response {
    let q = parse_query(q.as_deref());
    let cmd: Vec<String> = q.get("command").cloned().unwrap_or_default();
    if cmd.is_empty() {
        return status_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "you must specify at least 1 command".into(),
        );
    }
    let Ok(ws) = ws else {
        return needs_websocket("exec");
    };
    let target = match running_container(&st, &ns, &name, &container).await {
        Ok(t) => t,
        Err(answer) => return answer,
    };
    let tty = flag(&q, "tty");
    let stdin = flag(&q, "stdin");
    let ws = ws.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    ws.on_upgrade(move |socket| run_exec(socket, st, target.id, cmd, tty, stdin))
}

async fn attach(
    State(st): State<ApiState>,
    Path((ns, name, container)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    ws: Upgrade,
) -> Response {
    let q = parse_query(q.as_deref());
    let streams = AttachStreams {
        stdin: flag(&q, "stdin"),
        stdout: flag(&q, "stdout"),
        stderr: flag(&q, "stderr"),
    };
    if !(streams.stdin || streams.stdout || streams.stderr) {
        return status_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "you must specify at least one of stdin, stdout, stderr".into(),
        );
    }
    let Ok(ws) = ws else {
        return needs_websocket("attach");
    };
    let target = match running_container(&st, &ns, &name, &container).await {
        Ok(t) => t,
        Err(answer) => return answer,
    };
    let ws = ws.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    ws.on_upgrade(move |socket| run_attach(socket, st, target, streams))
}

/// How long a port-forward waits for a pod's port to accept.
const FORWARD_DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// GET/POST /portForward/{namespace}/{pod}: upgrades to SPDY/3.1, directly or tunnelled in a
/// WebSocket, and forwards the connections the client opens to ports of the pod.
async fn port_forward(
    State(st): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    mut req: axum::extract::Request,
) -> Response {
    let pod = match pod_on_node(&st, &ns, &name).await {
        Ok(pod) => pod,
        Err(answer) => return answer,
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let sandbox = st.runtime.list_sandboxes().await.ok().and_then(|all| {
        all.into_iter().find(|sb| {
            sb.status == "ready" && sb.labels.get(LABEL_POD_UID).map(String::as_str) == Some(&uid)
        })
    });
    let Some(sandbox) = sandbox else {
        return status_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("pod {name} has no running sandbox"),
        );
    };
    // no namespace path on a ready sandbox: the pod shares the node's network
    let netns = sandbox.netns.map(PathBuf::from);
    let dial: crate::portforward::Dialer = Arc::new(move |port| {
        let netns = netns.clone();
        Box::pin(async move {
            match netns {
                Some(path) => {
                    network::ops::connect_in_netns(&path, port, FORWARD_DIAL_TIMEOUT).await
                }
                None => {
                    let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
                    tokio::time::timeout(FORWARD_DIAL_TIMEOUT, connect)
                        .await
                        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
                }
            }
        })
    });
    let describe = Arc::new(move |port: u16, e: &std::io::Error| {
        crate::portforward::forward_error(port, &name, &uid, e)
    });
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if upgrade == "websocket" {
        let offered = req
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == crate::portforward::TUNNEL_PROTOCOL);
        let channel_ports = if offered {
            None
        } else {
            let q = parse_query(req.uri().query());
            let values = q.get("port").cloned().unwrap_or_default();
            match crate::portforward::channel_ports(&values) {
                Ok(ports) => Some(ports),
                Err(msg) => return status_error(StatusCode::BAD_REQUEST, "BadRequest", msg),
            }
        };
        use axum::extract::FromRequestParts;
        let (mut parts, _) = req.into_parts();
        let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &st).await {
            Ok(ws) => ws,
            Err(e) => return e.into_response(),
        };
        if let Some(ports) = channel_ports {
            return ws
                .protocols(["v4.channel.k8s.io"])
                .on_upgrade(move |socket| async move {
                    let (incoming, outgoing) = websocket_messages(socket);
                    crate::portforward::serve_channels(ports, incoming, outgoing, dial, describe)
                        .await;
                });
        }
        return ws
            .protocols([crate::portforward::TUNNEL_PROTOCOL])
            .on_upgrade(move |socket| async move {
                let io = websocket_byte_stream(socket);
                crate::portforward::serve(io, dial, describe).await;
            });
    }
    if upgrade != "spdy/3.1" {
        return status_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "port-forward needs an upgrade to SPDY/3.1 (directly or in a WebSocket)".into(),
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let io = hyper_util::rt::TokioIo::new(upgraded);
            crate::portforward::serve(io, dial, describe).await;
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header("X-Stream-Protocol-Version", crate::portforward::PROTOCOL)
        .body(Body::empty())
        .expect("a static response")
}

/// A WebSocket's binary messages as channels: what the client sends (closed when it goes
/// away) and what to send it (the socket closes once every sender is dropped).
fn websocket_messages(
    socket: WebSocket,
) -> (
    tokio::sync::mpsc::Receiver<Vec<u8>>,
    tokio::sync::mpsc::Sender<Vec<u8>>,
) {
    let (in_tx, in_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let (mut ws_tx, mut ws_rx) = socket.split();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = ws_rx.next().await {
            match msg {
                Message::Close(_) => break,
                other => {
                    if let Some(bytes) = channel_message(other) {
                        if in_tx.send(bytes).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
    });
    tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            if ws_tx.send(Message::Binary(message.into())).await.is_err() {
                break;
            }
        }
        let _ = ws_tx.close().await;
    });
    (in_rx, out_tx)
}

/// The byte stream carried in a WebSocket's binary messages, as one end of an in-memory pipe.
fn websocket_byte_stream(socket: WebSocket) -> tokio::io::DuplexStream {
    let (mut incoming, outgoing) = websocket_messages(socket);
    let (ours, theirs) = tokio::io::duplex(256 << 10);
    let (mut from_pipe, mut to_pipe) = tokio::io::split(theirs);
    tokio::spawn(async move {
        while let Some(bytes) = incoming.recv().await {
            if to_pipe.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to_pipe.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(n) = from_pipe.read(&mut buf).await {
            if n == 0 || outgoing.send(buf[..n].to_vec()).await.is_err() {
                break;
            }
        }
    });
    ours
}

/// The streams an attach asked for.
#[derive(Debug, Clone, Copy)]
struct AttachStreams {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

/// The channel messages for a batch of CRI log records: stdout on channel 1, stderr on 2 (each
/// only when asked for), a record's line end restored unless it was a partial line.
pub fn attach_frames(records: &str, stdout: bool, stderr: bool) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for raw in records.lines() {
        let Some((_, partial, content)) = parse_cri_line(raw) else {
            continue;
        };
        let chan = match raw.split(' ').nth(1) {
            Some("stdout") if stdout => 1u8,
            Some("stderr") if stderr => 2u8,
            _ => continue,
        };
        let mut frame = Vec::with_capacity(content.len() + 2);
        frame.push(chan);
        frame.extend_from_slice(content.as_bytes());
        if !partial {
            frame.push(b'\n');
        }
        frames.push(frame);
    }
    frames
}

/// Attach: the container's output as its monitor logs it from now on, and the client's stdin
/// into the container's stdin FIFO (when the container keeps stdin open). Ends with a Success
/// status when the container stops, or when the client goes away.
async fn run_attach(socket: WebSocket, st: ApiState, target: ContainerState, want: AttachStreams) {
    let (mut sink, mut stream) = socket.split();
    let offset = tokio::fs::metadata(&target.log_path)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let (records_tx, mut records) = tokio::sync::mpsc::channel::<String>(16);
    let runtime = st.runtime.clone();
    let runtime_for_resize = st.runtime.clone();
    tokio::spawn(follow_records(
        st,
        target.log_path.clone(),
        offset,
        target.id.clone(),
        records_tx,
    ));
    // The container holds its FIFO open for reading, so this open does not block; it fails
    // (ENXIO) only when the container is gone.
    let fifo = match (want.stdin, &target.stdin_path) {
        (true, Some(path)) => tokio::net::unix::pipe::OpenOptions::new()
            .open_sender(path)
            .ok(),
        _ => None,
    };
    // stdinOnce: the container's stdin ends with the first attach's.
    let stdin_ended = if fifo.is_some() && target.stdin_once {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let id = target.id.clone();
        tokio::spawn(async move {
            if rx.await.is_ok() {
                if let Err(e) = runtime.close_stdin(&id).await {
                    tracing::warn!(container = %id, error = %e, "closing stdin after attach");
                }
            }
        });
        Some(tx)
    } else {
        None
    };
    // A terminal container: the client's window size (channel 4) becomes the pty's.
    let resizes = if target.tty {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u16, u16)>();
        let (runtime, id) = (runtime_for_resize, target.id.clone());
        tokio::spawn(async move {
            while let Some((cols, rows)) = rx.recv().await {
                if let Err(e) = runtime.resize(&id, cols, rows).await {
                    tracing::warn!(container = %id, error = %e, "resizing the terminal");
                }
            }
        });
        Some(tx)
    } else {
        None
    };
    let input = forward_stdin(&mut stream, fifo, stdin_ended, resizes);
    let output = async {
        while let Some(batch) = records.recv().await {
            for frame in attach_frames(&batch, want.stdout, want.stderr) {
                if sink.send(Message::Binary(frame.into())).await.is_err() {
                    return;
                }
            }
        }
        finish_stream(
            &mut sink,
            &serde_json::json!({"metadata": {}, "status": "Success"}),
        )
        .await;
    };
    tokio::select! {
        _ = input => {}
        _ = output => {}
    }
}

/// Ends an exec or attach stream: `status` on the error channel (3), then a normal closure
/// (1000): clients treat a close without a status as an error.
async fn finish_stream(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    status: &serde_json::Value,
) {
    let mut m = vec![3u8];
    m.extend(status.to_string().into_bytes());
    let _ = sink.send(Message::Binary(m.into())).await;
    let _ = sink
        .send(Message::Close(Some(axum::extract::ws::CloseFrame {
            code: axum::extract::ws::close_code::NORMAL,
            reason: "".into(),
        })))
        .await;
}

/// The bytes of a channel-protocol message. Like upstream's stream server (wsstream), text
/// frames count as binary ones: the official Python client sends `str` data as text frames,
/// channel byte first.
fn channel_message(msg: Message) -> Option<Vec<u8>> {
    match msg {
        Message::Binary(b) => Some(b.to_vec()),
        Message::Text(t) => Some(t.as_bytes().to_vec()),
        _ => None,
    }
}

/// Feeds the client's channel 0 into `stdin` until the client closes stdin (v5's close
/// signal), a write fails or the client goes away; then stays pending, so that the output side
/// decides when the stream ends.
async fn forward_stdin<W: tokio::io::AsyncWrite + Unpin>(
    stream: &mut futures::stream::SplitStream<WebSocket>,
    mut stdin: Option<W>,
    mut ended: Option<tokio::sync::oneshot::Sender<()>>,
    resizes: Option<tokio::sync::mpsc::UnboundedSender<(u16, u16)>>,
) {
    let mut end = |stdin: &mut Option<W>| {
        *stdin = None;
        if let Some(tx) = ended.take() {
            let _ = tx.send(());
        }
    };
    while let Some(Ok(msg)) = stream.next().await {
        if matches!(msg, Message::Close(_)) {
            break;
        }
        let Some(data) = channel_message(msg) else {
            continue;
        };
        let Some((&chan, rest)) = data.split_first() else {
            continue;
        };
        match chan {
            0 => {
                if let Some(p) = stdin.as_mut() {
                    if p.write_all(rest).await.is_err() {
                        end(&mut stdin);
                    }
                }
            }
            // The resize channel: {"Width": cols, "Height": rows}.
            4 => {
                if let (Some(tx), Some(size)) = (&resizes, terminal_size(rest)) {
                    let _ = tx.send(size);
                }
            }
            // v5: close signal for a stream; stdin is the only one a client closes.
            255 if rest.first() == Some(&0) => end(&mut stdin),
            _ => {}
        }
    }
    // The client went away: stop feeding stdin.
    end(&mut stdin);
    std::future::pending::<()>().await
}

/// A file removed when this value is dropped.
struct RemovedOnDrop(std::path::PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A resize message (`{"Width": 80, "Height": 24}`) as (columns, rows).
fn terminal_size(message: &[u8]) -> Option<(u16, u16)> {
    let v: serde_json::Value = serde_json::from_slice(message).ok()?;
    let dim = |k: &str| v.get(k)?.as_u64().and_then(|n| u16::try_from(n).ok());
    Some((dim("Width")?, dim("Height")?))
}

async fn run_exec(
    socket: WebSocket,
    st: ApiState,
    id: String,
    cmd: Vec<String>,
    tty: bool,
    stdin: bool,
) {
    // With a terminal, resize messages reach `minirun exec` through a FIFO of its own,
    // removed when the exec ends.
    let resize_fifo = tty
        .then(|| {
            let path = std::env::temp_dir().join(format!(
                "mini-kubelet-exec-resize-{:016x}",
                rand::random::<u64>()
            ));
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .ok()
                .map(|()| RemovedOnDrop(path))
        })
        .flatten();
    let resize_fifo = resize_fifo.as_ref().map(|f| f.0.as_path());
    let mut command = st.runtime.exec_command(&id, &cmd, tty, resize_fifo);
    command
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (mut sink, mut stream) = socket.split();
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            let st =
                serde_json::json!({"metadata": {}, "status": "Failure", "message": e.to_string()});
            let mut m = vec![3u8];
            m.extend(st.to_string().into_bytes());
            let _ = sink.send(Message::Binary(m.into())).await;
            return;
        }
    };
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(32);
    for (chan, pipe) in [
        (
            1u8,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ),
        (
            2u8,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ),
    ] {
        if let Some(mut p) = pipe {
            let tx = out_tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match p.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.send((chan, buf[..n].to_vec())).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    }
    drop(out_tx);
    let resizes = resize_fifo.and_then(|path| {
        // Read-write, so the open does not wait for minirun to open its end.
        let mut fifo = tokio::net::unix::pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(path)
            .ok()?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u16, u16)>();
        tokio::spawn(async move {
            while let Some((cols, rows)) = rx.recv().await {
                if fifo
                    .write_all(format!("{cols} {rows}\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        Some(tx)
    });
    let input = forward_stdin(&mut stream, child.stdin.take(), None, resizes);
    let output = async {
        while let Some((chan, data)) = out_rx.recv().await {
            let mut m = Vec::with_capacity(data.len() + 1);
            m.push(chan);
            m.extend(data);
            if sink.send(Message::Binary(m.into())).await.is_err() {
                break;
            }
        }
        let code = match child.wait().await {
            Ok(s) => s.code().unwrap_or(137),
            Err(_) => 1,
        };
        finish_stream(&mut sink, &exec_status(code, &cmd)).await;
    };
    tokio::select! {
        _ = input => {}
        _ = output => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_logs_render_with_tail_since_and_timestamps() {
        let text = "2026-11-23T10:00:00.000000001Z stdout F one\n\
2026-11-23T10:00:01.000000000Z stderr P tw\n\
2026-11-23T10:00:01.000000001Z stderr F o\n\
2026-11-23T10:00:02.000000000Z stdout F three\n";
        assert_eq!(render_logs(text, None, false, None), "one\ntwo\nthree\n");
        assert_eq!(render_logs(text, None, false, Some(1)), "three\n");
        assert_eq!(render_logs(text, None, false, Some(0)), "");
        let since: jiff::Timestamp = "2026-11-23T10:00:01Z".parse().unwrap();
        assert_eq!(render_logs(text, Some(since), false, None), "two\nthree\n");
        assert_eq!(
            render_logs(text, None, true, Some(1)),
            "2026-11-23T10:00:02.000000000Z three\n"
        );
    }

    #[test]
    fn flags_parse_like_go() {
        let q = parse_query(Some("stdin=True&stdout=1&stderr=false&tty=FALSE&x"));
        assert!(flag(&q, "stdin") && flag(&q, "stdout") && flag(&q, "x"));
        assert!(!flag(&q, "stderr") && !flag(&q, "tty") && !flag(&q, "missing"));
    }

    #[test]
    fn queries_decode_repeated_commands() {
        let q = parse_query(Some(
            "command=sh&command=-c&command=echo%20hi+there&tty=true",
        ));
        assert_eq!(q["command"], vec!["sh", "-c", "echo hi there"]);
        assert!(flag(&q, "tty"));
        assert!(!flag(&q, "stdin"));
    }

    #[test]
    fn attach_frames_split_streams_and_join_partial_lines() {
        let records = "2026-01-01T00:00:00Z stdout F hello\n\
                       2026-01-01T00:00:00Z stderr F oops\n\
                       2026-01-01T00:00:00Z stdout P par\n\
                       2026-01-01T00:00:00Z stdout F tial\n";
        let frames = attach_frames(records, true, true);
        assert_eq!(
            frames,
            vec![
                b"\x01hello\n".to_vec(),
                b"\x02oops\n".to_vec(),
                b"\x01par".to_vec(),
                b"\x01tial\n".to_vec()
            ]
        );
        let only_err = attach_frames(records, false, true);
        assert_eq!(only_err, vec![b"\x02oops\n".to_vec()]);
    }

    #[test]
    fn resize_messages_give_columns_and_rows() {
        assert_eq!(
            terminal_size(br#"{"Width":111,"Height":33}"#),
            Some((111, 33))
        );
        assert_eq!(terminal_size(br#"{"Width":70000,"Height":33}"#), None);
        assert_eq!(terminal_size(b"{}"), None);
        assert_eq!(terminal_size(b"not json"), None);
    }

    #[test]
    fn exec_status_carries_the_exit_code() {
        let s = exec_status(3, &["sh".into(), "-c".into(), "exit 3".into()]);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert_eq!(exec_status(0, &[])["status"], "Success");
    }
}
