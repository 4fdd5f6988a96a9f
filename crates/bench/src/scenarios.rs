//! The measurements: creates (1 client and N clients), gets, lists (full and with a label
//! selector), watch delivery to many watchers, and raw etcd puts for comparison.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::Value;

use crate::client::ApiClient;
use crate::stats::{Samples, Summary};

/// The annotation carrying the client's wall-clock send time (Unix nanoseconds).
pub const SENT_ANNOTATION: &str = "bench.minicluster.io/sent-unix-nanos";
const NS_SMALL: &str = "bench-small";
const NS_LARGE: &str = "bench-large";
const NS_WATCH: &str = "bench-watch";
const NS_PROBE: &str = "bench-probe";
/// The namespaces the measurements use; [`create_namespaces`] makes them before
/// [`run_backend`].
pub const NAMESPACES: [&str; 4] = [NS_SMALL, NS_LARGE, NS_WATCH, NS_PROBE];
/// Pods carry `group=g0..g9`; the selector picks one group, a tenth of the pods.
const GROUPS: usize = 10;
const SELECTOR: &str = "group%3Dg3";

/// How much work each measurement does.
#[derive(Debug, Clone)]
pub struct Params {
    /// Pods created sequentially by one client (they form the small list).
    pub seq_creates: usize,
    /// Pods created by `concurrency` clients (they form the large list).
    pub conc_creates: usize,
    /// Concurrent clients for the N-client creates and raw etcd puts.
    pub concurrency: usize,
    /// Sequential GETs of existing pods.
    pub gets: usize,
    /// Repetitions of each list of the small namespace.
    pub small_list_reps: usize,
    /// Repetitions of each list of the large namespace.
    pub large_list_reps: usize,
    /// Concurrent watchers of one namespace.
    pub watchers: usize,
    /// Pods created (one at a time) while the watchers watch.
    pub watch_events: usize,
    /// Pause between those creates.
    pub watch_interval: Duration,
}

impl Params {
    /// The full benchmark: 1k and 10k pod lists, 100 watchers.
    pub fn full() -> Params {
        Params {
            seq_creates: 1000,
            conc_creates: 10_000,
            concurrency: 16,
            gets: 2000,
            small_list_reps: 50,
            large_list_reps: 10,
            watchers: 100,
            watch_events: 200,
            watch_interval: Duration::from_millis(20),
        }
    }

    /// Small counts for a smoke test (a few seconds).
    pub fn quick() -> Params {
        Params {
            seq_creates: 30,
            conc_creates: 100,
            concurrency: 4,
            gets: 30,
            small_list_reps: 3,
            large_list_reps: 3,
            watchers: 10,
            watch_events: 10,
            watch_interval: Duration::from_millis(10),
        }
    }
}

/// Operations per second and their latencies.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub ops: usize,
    pub clients: usize,
    pub elapsed: Duration,
    pub latency: Summary,
}

impl Throughput {
    /// Operations per second.
    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

/// One list measurement.
#[derive(Debug, Clone)]
pub struct ListResult {
    /// Pods in the namespace.
    pub pods: usize,
    /// Whether the label selector was used.
    pub selector: bool,
    /// Items returned.
    pub items: usize,
    pub latency: Summary,
}

/// Watch delivery to many watchers.
#[derive(Debug, Clone)]
pub struct WatchResult {
    pub watchers: usize,
    pub events: usize,
    /// ADDED events received over all watchers (expected: watchers × events).
    pub delivered: usize,
    /// From the client's send of the create to the event's arrival at a watcher.
    pub from_send: Summary,
    /// From the create's acknowledgement to the event's arrival (negative: event came first).
    pub from_ack: Summary,
    /// Latency of the creates themselves during the watch phase.
    pub create_latency: Summary,
}

/// Raw etcd puts.
#[derive(Debug, Clone, Copy)]
pub struct RawEtcd {
    pub value_bytes: usize,
    pub sequential: Throughput,
    pub concurrent: Throughput,
}

/// Everything measured on one backend.
#[derive(Debug, Clone)]
pub struct BackendResult {
    pub backend: String,
    /// Size of a stored pod (the value size of the raw etcd puts).
    pub pod_bytes: usize,
    pub create_seq: Throughput,
    pub create_conc: Throughput,
    pub get: Summary,
    pub lists: Vec<ListResult>,
    pub watch: WatchResult,
    pub raw_etcd: Option<RawEtcd>,
}

fn now_unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn pod_body(name: &str, group: usize, sent: Option<i64>) -> Bytes {
    let annotations = match sent {
        Some(t) => format!(r#","annotations":{{"{SENT_ANNOTATION}":"{t}"}}"#),
        None => String::new(),
    };
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","labels":{{"app":"bench","group":"g{g}"}}{annotations}}},"spec":{{"containers":[{{"name":"main","image":"busybox:latest","command":["sleep","3600"],"ports":[{{"name":"http","containerPort":8080}}],"resources":{{"requests":{{"cpu":"10m","memory":"16Mi"}}}}}}]}}}}"#,
        g = group % GROUPS
    ))
}

fn pods_path(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/pods")
}

/// Makes the namespaces of the measurements (existing ones are fine).
pub async fn create_namespaces(client: &ApiClient) -> anyhow::Result<()> {
    for ns in NAMESPACES {
        create_namespace(client, ns).await?;
    }
    Ok(())
}

async fn create_namespace(client: &ApiClient, ns: &str) -> anyhow::Result<()> {
    let body = format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{ns}"}}}}"#);
    let (status, resp) = client
        .call(Method::POST, "/api/v1/namespaces", Some(Bytes::from(body)))
        .await?;
    if status != StatusCode::CREATED && status != StatusCode::CONFLICT {
        bail!(
            "creating namespace {ns}: {status}: {}",
            String::from_utf8_lossy(&resp)
        );
    }
    Ok(())
}

/// Creates `n` pods named `p-0..` in `ns` from `clients` concurrent clients.
async fn create_pods(
    client: &ApiClient,
    ns: &str,
    n: usize,
    clients: usize,
) -> anyhow::Result<Throughput> {
    let next = Arc::new(AtomicUsize::new(0));
    let path = Arc::new(pods_path(ns));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let client = client.clone();
        let next = next.clone();
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Samples::with_capacity(n / clients.max(1) + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(lat);
                }
                let body = pod_body(&format!("p-{i}"), i, None);
                let t = Instant::now();
                client.create(&path, body).await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Samples::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(Throughput {
        ops: n,
        clients: clients.max(1),
        elapsed: started.elapsed(),
        latency: Summary::of(&mut all),
    })
}

/// The size of a pod as the apiserver stores it (its JSON without resourceVersion).
async fn stored_pod_bytes(client: &ApiClient) -> anyhow::Result<usize> {
    let path = pods_path(NS_PROBE);
    client.create(&path, pod_body("probe", 0, None)).await?;
    let body = client.get_ok(&format!("{path}/probe")).await?;
    let mut v: Value = serde_json::from_slice(&body)?;
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    Ok(serde_json::to_vec(&v)?.len())
}

async fn gets(client: &ApiClient, ns: &str, existing: usize, n: usize) -> anyhow::Result<Summary> {
    let mut lat = Samples::with_capacity(n);
    let path = pods_path(ns);
    for i in 0..n {
        // A fixed stride through the existing pods, not always the same one.
        let k = (i * 7919) % existing.max(1);
        let t = Instant::now();
        client.get_ok(&format!("{path}/p-{k}")).await?;
        lat.push(t.elapsed());
    }
    Ok(Summary::of(&mut lat))
}

async fn list(
    client: &ApiClient,
    ns: &str,
    pods: usize,
    selector: bool,
    reps: usize,
) -> anyhow::Result<ListResult> {
    let mut path = pods_path(ns);
    if selector {
        path.push_str(&format!("?labelSelector={SELECTOR}"));
    }
    // One untimed call to check the answer.
    let body = client.get_ok(&path).await?;
    let v: Value = serde_json::from_slice(&body).context("decoding a pod list")?;
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    let expected = if selector {
        (0..pods).filter(|i| i % GROUPS == 3).count()
    } else {
        pods
    };
    if items != expected {
        bail!("list {path} returned {items} items, expected {expected}");
    }
    let mut lat = Samples::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        client.get_ok(&path).await?;
        lat.push(t.elapsed());
    }
    Ok(ListResult {
        pods,
        selector,
        items,
        latency: Summary::of(&mut lat),
    })
}

#[derive(Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    object: EventObject,
}

#[derive(Deserialize)]
struct EventObject {
    metadata: EventMeta,
}

#[derive(Deserialize)]
struct EventMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

/// One watcher: (pod index, arrival time in Unix nanos, send time in Unix nanos) per ADDED.
async fn watcher(
    client: ApiClient,
    path: String,
    expect: usize,
    ready: tokio::sync::mpsc::Sender<()>,
    deadline: Instant,
) -> anyhow::Result<Vec<(usize, i64, i64)>> {
    let resp = client.send(Method::GET, &path, None).await?;
    if resp.status() != StatusCode::OK {
        bail!("watch {path}: {}", resp.status());
    }
    let _ = ready.send(()).await;
    drop(ready);
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut seen = Vec::with_capacity(expect);
    while seen.len() < expect {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = match tokio::time::timeout(left, body.frame()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(f)) => f.context("reading the watch stream")?,
        };
        let arrived = now_unix_nanos();
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = &line[..line.len() - 1];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let ev: WatchEvent = serde_json::from_slice(line).with_context(|| {
                format!(
                    "decoding a watch event: {}",
                    String::from_utf8_lossy(&line[..line.len().min(300)])
                )
            })?;
            if ev.kind != "ADDED" {
                continue;
            }
            let meta = ev.object.metadata;
            let (Some(idx), Some(sent)) = (
                meta.name
                    .strip_prefix("w-")
                    .and_then(|s| s.parse::<usize>().ok()),
                meta.annotations
                    .get(SENT_ANNOTATION)
                    .and_then(|s| s.parse::<i64>().ok()),
            ) else {
                continue;
            };
            seen.push((idx, arrived, sent));
        }
    }
    Ok(seen)
}

async fn watch_delivery(client: &ApiClient, p: &Params) -> anyhow::Result<WatchResult> {
    let path = pods_path(NS_WATCH);
    let listed: Value = serde_json::from_slice(&client.get_ok(&path).await?)?;
    let rv = listed["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let watch_path = format!("{path}?watch=true&resourceVersion={rv}");
    let deadline = Instant::now()
        + Duration::from_secs(30)
        + p.watch_interval * u32::try_from(p.watch_events).unwrap_or(u32::MAX);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(p.watchers.max(1));
    let mut tasks = Vec::new();
    for _ in 0..p.watchers {
        tasks.push(tokio::spawn(watcher(
            client.clone(),
            watch_path.clone(),
            p.watch_events,
            ready_tx.clone(),
            deadline,
        )));
    }
    drop(ready_tx);
    let mut ready = 0;
    while ready < p.watchers {
        match tokio::time::timeout(Duration::from_secs(30), ready_rx.recv()).await {
            Ok(Some(())) => ready += 1,
            _ => break,
        }
    }
    if ready < p.watchers {
        bail!("only {ready} of {} watches started", p.watchers);
    }
    // Let every watch register with the watch cache before the first create.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut acks = vec![0i64; p.watch_events];
    let mut create_lat = Samples::with_capacity(p.watch_events);
    let mut tick = tokio::time::interval(p.watch_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for (i, ack) in acks.iter_mut().enumerate() {
        tick.tick().await;
        let t = Instant::now();
        let sent = now_unix_nanos();
        client
            .create(&path, pod_body(&format!("w-{i}"), i, Some(sent)))
            .await?;
        *ack = now_unix_nanos();
        create_lat.push(t.elapsed());
    }
    let mut from_send = Samples::with_capacity(p.watchers * p.watch_events);
    let mut from_ack = Samples::with_capacity(p.watchers * p.watch_events);
    for t in tasks {
        for (idx, arrived, sent) in t.await?? {
            from_send.push_nanos(arrived - sent);
            if let Some(ack) = acks.get(idx) {
                from_ack.push_nanos(arrived - ack);
            }
        }
    }
    Ok(WatchResult {
        watchers: p.watchers,
        events: p.watch_events,
        delivered: from_send.len(),
        from_send: Summary::of(&mut from_send),
        from_ack: Summary::of(&mut from_ack),
        create_latency: Summary::of(&mut create_lat),
    })
}

/// Puts `n` values of `value_bytes` into etcd from `clients` concurrent clients (each its own
/// connection), under `/bench-raw/<tag>/`.
pub async fn raw_etcd_puts(
    endpoint: &str,
    tag: &str,
    n: usize,
    clients: usize,
    value_bytes: usize,
) -> anyhow::Result<Throughput> {
    let value = vec![b'x'; value_bytes];
    let next = Arc::new(AtomicUsize::new(0));
    let mut conns = Vec::new();
    for _ in 0..clients.max(1) {
        conns.push(
            etcd_client::Client::connect([endpoint], None)
                .await
                .with_context(|| format!("connecting to etcd at {endpoint}"))?,
        );
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut conn in conns {
        let next = next.clone();
        let value = value.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Samples::with_capacity(n / clients.max(1) + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(lat);
                }
                let t = Instant::now();
                conn.put(format!("/bench-raw/{tag}/{i}"), value.clone(), None)
                    .await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Samples::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(Throughput {
        ops: n,
        clients: clients.max(1),
        elapsed: started.elapsed(),
        latency: Summary::of(&mut all),
    })
}

/// Runs every measurement against the apiserver `client` talks to, in the [`NAMESPACES`]
/// already made. With `raw_etcd` (the etcd the apiserver uses), raw puts of the stored pod size
/// are measured first.
pub async fn run_backend(
    backend: &str,
    client: &ApiClient,
    p: &Params,
    raw_etcd: Option<&str>,
) -> anyhow::Result<BackendResult> {
    let pod_bytes = stored_pod_bytes(client).await?;
    let raw_etcd = match raw_etcd {
        Some(endpoint) => {
            eprintln!("[{backend}] raw etcd puts ({pod_bytes} B values)");
            let sequential = raw_etcd_puts(endpoint, "seq", p.seq_creates, 1, pod_bytes).await?;
            let concurrent =
                raw_etcd_puts(endpoint, "conc", p.conc_creates, p.concurrency, pod_bytes).await?;
            Some(RawEtcd {
                value_bytes: pod_bytes,
                sequential,
                concurrent,
            })
        }
        None => None,
    };
    eprintln!("[{backend}] {} creates from 1 client", p.seq_creates);
    let create_seq = create_pods(client, NS_SMALL, p.seq_creates, 1).await?;
    eprintln!(
        "[{backend}] {} creates from {} clients",
        p.conc_creates, p.concurrency
    );
    let create_conc = create_pods(client, NS_LARGE, p.conc_creates, p.concurrency).await?;
    eprintln!("[{backend}] {} gets", p.gets);
    let get = gets(client, NS_SMALL, p.seq_creates, p.gets).await?;
    eprintln!("[{backend}] lists");
    let mut lists = Vec::new();
    for selector in [false, true] {
        lists.push(list(client, NS_SMALL, p.seq_creates, selector, p.small_list_reps).await?);
    }
    for selector in [false, true] {
        lists.push(
            list(
                client,
                NS_LARGE,
                p.conc_creates,
                selector,
                p.large_list_reps,
            )
            .await?,
        );
    }
    eprintln!(
        "[{backend}] watch delivery: {} watchers, {} events",
        p.watchers, p.watch_events
    );
    let watch = watch_delivery(client, p).await?;
    Ok(BackendResult {
        backend: backend.to_string(),
        pod_bytes,
        create_seq,
        create_conc,
        get,
        lists,
        watch,
        raw_etcd,
    })
}
