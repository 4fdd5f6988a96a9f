//! Port-forward (`kubectl port-forward`): the `portforward.k8s.io` protocol over SPDY/3.1,
//! reached either through a WebSocket whose binary messages carry the SPDY byte stream
//! (`SPDY/3.1+portforward.k8s.io`, what kubectl uses since 1.31) or through a plain
//! `Upgrade: SPDY/3.1` (kubectl's fallback).
//!
//! The older WebSocket channel protocol (`v4.channel.k8s.io`, or no sub-protocol; what the
//! official Python client's `portforward` speaks) is [`serve_channels`]: the ports come in the
//! query (`port=8080&port=9090`), one connection each for the session's life, port `i` on
//! channels `2i` (data) and `2i+1` (errors), each channel opened with the port number as two
//! little-endian bytes.
//!
//! Per forwarded connection the client opens two streams sharing a `requestid`: an error stream
//! (which only the server writes, a message when the port cannot be reached) and a data stream.
//! The server dials the port inside the pod's network namespace once both are there, copies
//! bytes both ways, half-closes on FIN, and ends the error stream when the connection is done.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::spdy::{self, Frame, HeaderCodec};

/// The sub-protocol of port-forward.
pub const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket sub-protocol that tunnels SPDY (client-go's WebsocketsSPDYTunnelingPrefix).
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// Opens a TCP connection to a port of the pod.
pub type Dialer = Arc<
    dyn Fn(u16) -> Pin<Box<dyn Future<Output = std::io::Result<TcpStream>> + Send>> + Send + Sync,
>;

/// Words the failure to reach a port for the error stream.
pub type Describer = Arc<dyn Fn(u16, &std::io::Error) -> String + Send + Sync>;

/// How upstream's kubelet words a port that cannot be reached.
pub fn forward_error(port: u16, pod: &str, uid: &str, err: &std::io::Error) -> String {
    format!("error forwarding port {port} to pod {pod}, uid {uid}: {err}")
}

/// The ports of a channel-protocol session from the query's `port` values (each may be a
/// comma-separated list), with upstream's messages for what is wrong.
pub fn channel_ports(values: &[String]) -> Result<Vec<u16>, String> {
    if values.is_empty() {
        return Err("query parameter \"port\" is required".into());
    }
    let mut ports = Vec::new();
    for value in values {
        if value.is_empty() {
            return Err("query parameter \"port\" cannot be empty".into());
        }
        for p in value.split(',') {
            let port: u16 = p
                .parse()
                .map_err(|e| format!("unable to parse \"{p}\" as a port: {e}"))?;
            if port == 0 {
                return Err(format!("port \"{p}\" must be > 0"));
            }
            ports.push(port);
        }
    }
    Ok(ports)
}

/// One WebSocket message of the channel protocol: the channel byte, then the payload.
fn channel_message(channel: usize, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(1 + payload.len());
    m.push(channel as u8);
    m.extend_from_slice(payload);
    m
}

/// Serves a channel-protocol session: `incoming` yields the payloads of the client's binary
/// messages (`None` when it goes away), `outgoing` takes the messages to send.
pub async fn serve_channels(
    ports: Vec<u16>,
    mut incoming: mpsc::Receiver<Vec<u8>>,
    outgoing: mpsc::Sender<Vec<u8>>,
    dial: Dialer,
    describe: Describer,
) {
    let mut writers = Vec::new();
    let mut readers = tokio::task::JoinSet::new();
    for (i, &port) in ports.iter().enumerate() {
        for channel in [2 * i, 2 * i + 1] {
            if outgoing
                .send(channel_message(channel, &port.to_le_bytes()))
                .await
                .is_err()
            {
                return;
            }
        }
        match dial(port).await {
            Ok(tcp) => {
                let (mut pod_read, pod_write) = tcp.into_split();
                writers.push(Some(pod_write));
                let out = outgoing.clone();
                readers.spawn(async move {
                    let mut buf = vec![0u8; 32 << 10];
                    while let Ok(n) = pod_read.read(&mut buf).await {
                        if n == 0 || out.send(channel_message(2 * i, &buf[..n])).await.is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => {
                writers.push(None);
                let msg = describe(port, &e);
                let _ = outgoing
                    .send(channel_message(2 * i + 1, msg.as_bytes()))
                    .await;
            }
        }
    }
    drop(outgoing);
    while let Some(message) = incoming.recv().await {
        let Some((&channel, payload)) = message.split_first() else {
            continue;
        };
        let channel = channel as usize;
        // the client writes data channels only; what it sends on an error channel is ignored
        if !channel.is_multiple_of(2) {
            continue;
        }
        if let Some(slot) = writers.get_mut(channel / 2) {
            if let Some(w) = slot.as_mut() {
                if w.write_all(payload).await.is_err() {
                    *slot = None;
                }
            }
        }
    }
    readers.abort_all();
}

/// What the reader hands a connection's forwarder.
enum Inbound {
    Data(Vec<u8>),
    Fin,
    Reset,
}

/// The two streams of one forwarded connection, as they arrive.
#[derive(Default)]
struct Pair {
    port: Option<u16>,
    error: Option<u32>,
    data: Option<(u32, mpsc::UnboundedReceiver<Inbound>)>,
}

/// Serves one port-forward session on `io` until the client goes away. `describe` turns a
/// dial failure into the message written on the error stream.
pub async fn serve<S>(io: S, dial: Dialer, describe: Describer)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(io);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Frame>();
    let write_task = tokio::spawn(async move {
        let mut codec = HeaderCodec::new();
        while let Some(frame) = out_rx.recv().await {
            let bytes = spdy::encode_frame(&frame, &mut codec);
            if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut codec = HeaderCodec::new();
    let mut inbound: HashMap<u32, mpsc::UnboundedSender<Inbound>> = HashMap::new();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut forwarders = tokio::task::JoinSet::new();
    let mut last_stream = 0;
    loop {
        let frame = match spdy::read_frame(&mut reader, &mut codec).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "port-forward session ends");
                let _ = out_tx.send(Frame::GoAway {
                    last_good_stream_id: last_stream,
                    status: 1,
                });
                break;
            }
        };
        match frame {
            Frame::SynStream {
                stream_id, headers, ..
            } => {
                last_stream = stream_id;
                let kind = spdy::header(&headers, "streamtype").unwrap_or("");
                let request = spdy::header(&headers, "requestid")
                    .unwrap_or("")
                    .to_string();
                let port = spdy::header(&headers, "port").and_then(|p| p.parse::<u16>().ok());
                if !(kind == "error" || kind == "data") || port.is_none_or(|p| p == 0) {
                    let _ = out_tx.send(Frame::RstStream {
                        stream_id,
                        status: spdy::RST_REFUSED_STREAM,
                    });
                    continue;
                }
                let _ = out_tx.send(Frame::SynReply {
                    stream_id,
                    fin: false,
                    headers: vec![],
                });
                let pair = pairs.entry(request.clone()).or_default();
                pair.port = port;
                if kind == "error" {
                    pair.error = Some(stream_id);
                } else {
                    let (tx, rx) = mpsc::unbounded_channel();
                    inbound.insert(stream_id, tx);
                    pair.data = Some((stream_id, rx));
                }
                if pair.error.is_some() && pair.data.is_some() {
                    let pair = pairs.remove(&request).expect("just seen");
                    let (data_id, rx) = pair.data.expect("checked");
                    forwarders.spawn(forward(
                        pair.port.expect("checked"),
                        pair.error.expect("checked"),
                        data_id,
                        rx,
                        out_tx.clone(),
                        dial.clone(),
                        describe.clone(),
                    ));
                }
            }
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                if let Some(tx) = inbound.get(&stream_id) {
                    if !data.is_empty() {
                        let _ = tx.send(Inbound::Data(data));
                    }
                    if fin {
                        let _ = tx.send(Inbound::Fin);
                        inbound.remove(&stream_id);
                    }
                }
            }
            Frame::RstStream { stream_id, .. } => {
                if let Some(tx) = inbound.remove(&stream_id) {
                    let _ = tx.send(Inbound::Reset);
                }
            }
            Frame::Ping { id } => {
                let _ = out_tx.send(Frame::Ping { id });
            }
            Frame::GoAway { .. } => break,
            _ => {}
        }
        // finished forwarders are collected as we go
        while forwarders.try_join_next().is_some() {}
    }
    forwarders.abort_all();
    drop(out_tx);
    let _ = write_task.await;
}

/// Forwards one connection: dials the port, copies both ways, then ends both streams.
async fn forward(
    port: u16,
    error_id: u32,
    data_id: u32,
    mut from_client: mpsc::UnboundedReceiver<Inbound>,
    out: mpsc::UnboundedSender<Frame>,
    dial: Dialer,
    describe: Describer,
) {
    let end = |stream_id: u32, data: Vec<u8>| Frame::Data {
        stream_id,
        fin: true,
        data,
    };
    let tcp = match dial(port).await {
        Ok(tcp) => tcp,
        Err(e) => {
            let _ = out.send(end(error_id, describe(port, &e).into_bytes()));
            let _ = out.send(end(data_id, vec![]));
            return;
        }
    };
    let (mut pod_read, mut pod_write) = tcp.into_split();
    let to_client = out.clone();
    let mut downstream = AbortOnDrop(tokio::spawn(async move {
        let mut buf = vec![0u8; 32 << 10];
        loop {
            match pod_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let frame = Frame::Data {
                        stream_id: data_id,
                        fin: false,
                        data: buf[..n].to_vec(),
                    };
                    if to_client.send(frame).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = to_client.send(end(data_id, vec![]));
    }));
    let mut reset = false;
    let mut pod_closed = false;
    loop {
        tokio::select! {
            msg = from_client.recv() => match msg {
                Some(Inbound::Data(bytes)) => {
                    if pod_write.write_all(&bytes).await.is_err() && pod_closed {
                        break;
                    }
                }
                Some(Inbound::Fin) => {
                    let _ = pod_write.shutdown().await;
                    if !pod_closed {
                        let _ = (&mut downstream.0).await;
                    }
                    break;
                }
                Some(Inbound::Reset) | None => {
                    reset = true;
                    break;
                }
            },
            // the pod closed its side; the client half-closes or resets in turn
            _ = &mut downstream.0, if !pod_closed => pod_closed = true,
        }
    }
    if reset {
        downstream.0.abort();
    }
    let _ = out.send(end(error_id, vec![]));
}

/// A task that ends with its owner (a forwarder aborted with its session stops its copy too).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn h(pairs: &[(&str, &str)]) -> spdy::Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    async fn send(w: &mut (impl AsyncWrite + Unpin), codec: &mut HeaderCodec, f: Frame) {
        w.write_all(&spdy::encode_frame(&f, codec)).await.unwrap();
    }

    async fn next(r: &mut (impl AsyncRead + Unpin), codec: &mut HeaderCodec) -> Frame {
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            spdy::read_frame(r, codec),
        )
        .await
        .expect("a frame in time")
        .unwrap()
        .expect("not the end")
    }

    fn streams(port: u16, request: &str) -> [Frame; 2] {
        let port = port.to_string();
        [
            Frame::SynStream {
                stream_id: 1,
                fin: false,
                headers: h(&[
                    ("streamtype", "error"),
                    ("port", &port),
                    ("requestid", request),
                ]),
            },
            Frame::SynStream {
                stream_id: 3,
                fin: false,
                headers: h(&[
                    ("streamtype", "data"),
                    ("port", &port),
                    ("requestid", request),
                ]),
            },
        ]
    }

    fn loopback_dialer() -> Dialer {
        Arc::new(|port| Box::pin(TcpStream::connect(("127.0.0.1", port))))
    }

    /// A loopback port nothing listens on (bound once, then released).
    async fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    }

    type ClientRead = tokio::io::ReadHalf<tokio::io::DuplexStream>;
    type ClientWrite = tokio::io::WriteHalf<tokio::io::DuplexStream>;

    /// A session served over an in-memory pipe to loopback ports, as the client sees it: its
    /// two halves and its sending and receiving header codecs.
    fn session() -> (ClientRead, ClientWrite, HeaderCodec, HeaderCodec) {
        let (client, server) = tokio::io::duplex(1 << 16);
        tokio::spawn(serve(
            server,
            loopback_dialer(),
            Arc::new(|p, e| forward_error(p, "web", "u1", e)),
        ));
        let (r, w) = tokio::io::split(client);
        (r, w, HeaderCodec::new(), HeaderCodec::new())
    }

    #[tokio::test]
    async fn a_connection_is_forwarded_both_ways_and_both_streams_end() {
        // an echo server that upper-cases one request and closes
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(&got.to_ascii_uppercase()).await.unwrap();
        });
        let (mut r, mut w, mut tx, mut rx) = session();
        for f in streams(port, "0") {
            send(&mut w, &mut tx, f).await;
        }
        for id in [1, 3] {
            assert!(
                matches!(next(&mut r, &mut rx).await, Frame::SynReply { stream_id, .. } if stream_id == id)
            );
        }
        send(&mut w, &mut tx, Frame::Ping { id: 1 }).await;
        assert_eq!(next(&mut r, &mut rx).await, Frame::Ping { id: 1 });
        send(
            &mut w,
            &mut tx,
            Frame::Data {
                stream_id: 3,
                fin: false,
                data: b"hello ".to_vec(),
            },
        )
        .await;
        send(
            &mut w,
            &mut tx,
            Frame::Data {
                stream_id: 3,
                fin: true,
                data: b"pod".to_vec(),
            },
        )
        .await;
        let mut echoed = Vec::new();
        let mut ends = Vec::new();
        while ends.len() < 2 {
            match next(&mut r, &mut rx).await {
                Frame::Data {
                    stream_id: 3,
                    fin,
                    data,
                } => {
                    echoed.extend(data);
                    if fin {
                        ends.push(3);
                    }
                }
                Frame::Data {
                    stream_id: 1,
                    fin: true,
                    data,
                } => {
                    assert!(data.is_empty(), "no error expected");
                    ends.push(1);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(echoed, b"HELLO POD");
        assert_eq!(ends, vec![3, 1], "the error stream ends after the data");
    }

    #[tokio::test]
    async fn an_unreachable_port_is_reported_on_the_error_stream() {
        let port = closed_port().await;
        let (mut r, mut w, mut tx, mut rx) = session();
        for f in streams(port, "7") {
            send(&mut w, &mut tx, f).await;
        }
        let mut message = None;
        for _ in 0..4 {
            if let Frame::Data {
                stream_id: 1,
                fin: true,
                data,
            } = next(&mut r, &mut rx).await
            {
                message = Some(String::from_utf8(data).unwrap());
            }
        }
        let message = message.expect("an error message");
        assert!(
            message.starts_with(&format!(
                "error forwarding port {port} to pod web, uid u1: "
            )),
            "{message}"
        );
    }

    async fn recv(rx: &mut mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
        tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("a message in time")
            .expect("the session is open")
    }

    #[test]
    fn channel_ports_follow_upstreams_rules() {
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            channel_ports(&v(&["80", "81,82"])).unwrap(),
            vec![80, 81, 82]
        );
        assert_eq!(
            channel_ports(&[]).unwrap_err(),
            "query parameter \"port\" is required"
        );
        assert!(channel_ports(&v(&[""])).is_err());
        assert!(channel_ports(&v(&["0"]))
            .unwrap_err()
            .contains("must be > 0"));
        assert!(channel_ports(&v(&["http"])).is_err());
        assert!(channel_ports(&v(&["70000"])).is_err());
    }

    #[tokio::test]
    async fn the_channel_protocol_announces_ports_and_carries_data() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf.to_ascii_uppercase()).await.unwrap();
        });
        let closed = closed_port().await;
        let (in_tx, in_rx) = mpsc::channel(8);
        let (out_tx, mut out_rx) = mpsc::channel(8);
        tokio::spawn(serve_channels(
            vec![port, closed],
            in_rx,
            out_tx,
            loopback_dialer(),
            Arc::new(|p, e| forward_error(p, "web", "u1", e)),
        ));
        let [lo, hi] = port.to_le_bytes();
        assert_eq!(recv(&mut out_rx).await, vec![0, lo, hi]);
        assert_eq!(recv(&mut out_rx).await, vec![1, lo, hi]);
        let [lo, hi] = closed.to_le_bytes();
        assert_eq!(recv(&mut out_rx).await, vec![2, lo, hi]);
        assert_eq!(recv(&mut out_rx).await, vec![3, lo, hi]);
        let refused = recv(&mut out_rx).await;
        assert_eq!(refused[0], 3);
        assert!(String::from_utf8_lossy(&refused[1..])
            .starts_with(&format!("error forwarding port {closed} to pod web")));
        in_tx.send(b"\x00hello".to_vec()).await.unwrap();
        assert_eq!(recv(&mut out_rx).await, b"\x00HELLO".to_vec());
    }

    #[tokio::test]
    async fn streams_without_a_valid_port_or_type_are_refused() {
        let (mut r, mut w, mut tx, mut rx) = session();
        let bad = [
            h(&[("streamtype", "data"), ("port", "http"), ("requestid", "0")]),
            h(&[
                ("streamtype", "data"),
                ("port", "70000"),
                ("requestid", "0"),
            ]),
            h(&[("streamtype", "other"), ("port", "80"), ("requestid", "0")]),
        ];
        for (i, headers) in bad.into_iter().enumerate() {
            let stream_id = 2 * i as u32 + 1;
            send(
                &mut w,
                &mut tx,
                Frame::SynStream {
                    stream_id,
                    fin: false,
                    headers,
                },
            )
            .await;
            assert_eq!(
                next(&mut r, &mut rx).await,
                Frame::RstStream {
                    stream_id,
                    status: spdy::RST_REFUSED_STREAM
                }
            );
        }
    }
}
