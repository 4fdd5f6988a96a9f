//! WATCH: streams ADDED/MODIFIED/DELETED/BOOKMARK/ERROR events as Kubernetes frames them
//! (one JSON object per line over a chunked response), served from the watch cache.

use std::sync::Arc;
use std::time::Duration;

use api::ResourceInfo;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use crate::cache::{CacheEvent, EventType};
use crate::error::ApiError;
use crate::filter::Filter;
use crate::render;
use crate::request::{Query, Rendering};
use crate::server::ApiServer;

/// Where a watch starts.
enum Start {
    /// Current state as ADDED events first (RV unset or "0"), optionally closed by an
    /// initial-events-end bookmark (sendInitialEvents).
    Initial { end_bookmark: bool },
    /// Events after this version.
    After(i64),
}

/// Serves one watch request.
pub async fn serve(
    srv: Arc<ApiServer>,
    r: &'static ResourceInfo,
    namespace: Option<String>,
    query: &Query,
    rendering: Rendering,
) -> Result<Response, ApiError> {
    let filter = Filter::from_query(r, query)?;
    let rv = query.get("resourceVersion").filter(|v| !v.is_empty());
    let send_initial = query
        .get("sendInitialEvents")
        .map(|_| query.flag("sendInitialEvents"));
    let allow_bookmarks = query.flag("allowWatchBookmarks");
    let start = match (send_initial, rv) {
        (Some(true), _) => {
            if !allow_bookmarks {
                return Err(ApiError::bad_request(
                    "sendInitialEvents requires allowWatchBookmarks=true",
                ));
            }
            Start::Initial { end_bookmark: true }
        }
        (_, None) | (_, Some("0")) if send_initial != Some(false) => Start::Initial {
            end_bookmark: false,
        },
        (_, None) => Start::After(srv.cache.revision()),
        (_, Some(v)) => Start::After(
            v.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v:?}")))?,
        ),
    };
    let timeout = match query.int("timeoutSeconds")? {
        Some(t) if t > 0 => Duration::from_secs(t as u64),
        _ => Duration::from_secs(rand::rng().random_range(1800..3600)),
    };
    if matches!(start, Start::Initial { .. }) && rv.is_none() {
        // A consistent initial state: wait for the cache to reach the store's revision.
        let current = srv.store.current_revision().await?;
        srv.cache.wait_for(current, Duration::from_secs(5)).await;
    }
    let rc = srv.cache.resource(r);
    let (after, initial, end_bookmark) = match start {
        Start::Initial { end_bookmark } => (0, true, end_bookmark),
        Start::After(a) => (a, false, false),
    };
    let snapshot_rev = srv.cache.revision();
    let subscription = rc.subscribe(after, initial).await;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let prefix = match &namespace {
        Some(ns) if r.namespaced() => Some(r.namespace_prefix(ns)),
        _ => None,
    };
    let Some(sub) = subscription else {
        let oldest = rc.oldest().await;
        let status =
            ApiError::gone(format!("too old resource version: {after} ({oldest})")).to_status();
        let line = event_line("ERROR", &status);
        let _ = tx.send(Ok(line)).await;
        drop(tx);
        return Ok(stream_response(rx));
    };
    let watcher = Watcher {
        srv: srv.clone(),
        r,
        prefix,
        filter,
        rendering,
        allow_bookmarks,
        tx,
        last_sent: if initial { 0 } else { after },
    };
    srv.metrics.watchers.inc();
    tokio::spawn(async move {
        let srv = watcher.srv.clone();
        watcher
            .run(sub.backlog, sub.live, end_bookmark, snapshot_rev, timeout)
            .await;
        srv.metrics.watchers.dec();
    });
    Ok(stream_response(rx))
}

fn stream_response(rx: mpsc::Receiver<Result<Bytes, std::io::Error>>) -> Response {
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    api::wire::write_value(&mut out, object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

struct Watcher {
    srv: Arc<ApiServer>,
    r: &'static ResourceInfo,
    prefix: Option<String>,
    filter: Filter,
    rendering: Rendering,
    allow_bookmarks: bool,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    last_sent: i64,
}

impl Watcher {
    async fn run(
        mut self,
        backlog: Vec<Arc<CacheEvent>>,
        mut live: broadcast::Receiver<Arc<CacheEvent>>,
        end_bookmark: bool,
        snapshot_rev: i64,
        timeout: Duration,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        let initial_mode = self.last_sent == 0;
        let mut max_initial = 0;
        for ev in backlog {
            max_initial = max_initial.max(ev.revision);
            if !self.deliver(&ev, initial_mode).await {
                return;
            }
        }
        if initial_mode {
            // Live events at or below what the snapshot already showed are skipped.
            self.last_sent = snapshot_rev.max(max_initial);
        }
        if end_bookmark {
            let bm = self.bookmark_object(
                self.last_sent,
                Some(json!({"k8s.io/initial-events-end": "true"})),
            );
            if self.tx.send(Ok(event_line("BOOKMARK", &bm))).await.is_err() {
                return;
            }
        }
        let mut ticker = tokio::time::interval(self.srv.config.bookmark_interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = self.tx.closed() => return,
                _ = ticker.tick(), if self.allow_bookmarks => {
                    // Only when nothing is pending, so the bookmark never skips an event.
                    let rev = self.srv.cache.revision();
                    if live.is_empty() && rev > self.last_sent {
                        self.last_sent = rev;
                        let bm = self.bookmark_object(rev, None);
                        if self.tx.send(Ok(event_line("BOOKMARK", &bm))).await.is_err() {
                            return;
                        }
                    }
                }
                ev = live.recv() => match ev {
                    Ok(ev) => {
                        if ev.revision <= self.last_sent {
                            continue;
                        }
                        if !self.deliver(&ev, false).await {
                            return;
                        }
                        self.last_sent = ev.revision;
                    }
                    // Too slow: close; the client resumes from the last version it saw.
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    /// A BOOKMARK's object: an empty object of the watched kind with only a resourceVersion
    /// (upstream's `{"metadata":{"resourceVersion":..,"creationTimestamp":null},...}`).
    fn bookmark_object(&self, rev: i64, annotations: Option<Value>) -> Value {
        let mut bm = json!({
            "kind": self.r.kind,
            "apiVersion": self.r.api_version(),
            "metadata": {"resourceVersion": rev.to_string()},
        });
        if let Some(a) = annotations {
            bm["metadata"]["annotations"] = a;
        }
        api::wire::canonicalize(self.r, &mut bm);
        bm
    }

    /// Sends one event if it concerns this watcher; false when the client is gone.
    async fn deliver(&mut self, ev: &CacheEvent, initial: bool) -> bool {
        if let Some(p) = &self.prefix {
            if !ev.key.starts_with(p.as_str()) {
                return true;
            }
        }
        let now_matches = self.filter.matches(&ev.object);
        let kind = if self.filter.is_everything() || initial {
            if !now_matches {
                return true;
            }
            ev.kind
        } else {
            let was = ev.previous.as_ref().is_some_and(|p| self.filter.matches(p));
            match (ev.kind, was, now_matches) {
                (EventType::Deleted, true, _) => EventType::Deleted,
                (EventType::Deleted, false, _) => return true,
                (_, false, true) => EventType::Added,
                (_, true, true) => EventType::Modified,
                (_, true, false) => EventType::Deleted,
                (_, false, false) => return true,
            }
        };
        let line = match self.rendering {
            Rendering::Object => event_line(kind.as_str(), &ev.object),
            Rendering::Metadata => event_line(kind.as_str(), &render::partial_metadata(&ev.object)),
            Rendering::Table(include) => {
                let t = render::table(self.r, &[(*ev.object).clone()], include, json!({}));
                event_line(kind.as_str(), &t)
            }
        };
        self.tx.send(Ok(line)).await.is_ok()
    }
}
