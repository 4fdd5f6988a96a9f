//! Harness of the apiserver suites: an apiserver on a free loopback port over either backend
//! (in-process, or as the real binary for kill -9 tests), and a raw HTTP helper.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::{ApiServer, Config};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use store::Store;
use tempfile::TempDir;
use testkit::etcd::EtcdServer;

/// Which store the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Etcd,
}

/// An in-process apiserver.
pub struct TestServer {
    pub url: String,
    pub addr: SocketAddr,
    pub srv: Arc<ApiServer>,
    pub dir: TempDir,
    pub etcd: Option<EtcdServer>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fresh store of the backend in `dir` (or on `etcd`).
pub async fn open_store(
    backend: Backend,
    dir: &TempDir,
    etcd: Option<&EtcdServer>,
) -> Arc<dyn Store> {
    match backend {
        Backend::Embedded => Arc::new(
            store::embedded::EmbeddedStore::open(&dir.path().join("state.db"))
                .expect("open embedded store"),
        ),
        Backend::Etcd => Arc::new(
            store::etcd::EtcdStore::connect(
                &[etcd.expect("etcd running").endpoint().to_string()],
                Some("/test".into()),
            )
            .await
            .expect("connect to etcd"),
        ),
    }
}

/// A small config for tests: fast bookmarks, a small node port range, and no ServiceAccount
/// admission (nothing here runs the controller that creates each namespace's `default`
/// ServiceAccount; the admission suite turns it on).
pub fn test_config(addr: SocketAddr) -> Config {
    Config {
        admission: apiserver::admission::Plugins::default()
            .without(apiserver::admission::Plugin::ServiceAccount),
        advertise: addr,
        service_cluster_ip_range: "10.96.0.0/16".parse().unwrap(),
        service_node_port_range: (30000, 30100),
        bookmark_interval: Duration::from_secs(1),
        compaction_interval: Duration::from_secs(3600),
        kubelet_netns: None,
        ..Config::default()
    }
}

impl TestServer {
    /// Starts a server; None when the backend's prerequisites are missing (reported).
    pub async fn start(backend: Backend) -> Option<TestServer> {
        let dir = tempfile::tempdir().unwrap();
        let etcd = match backend {
            Backend::Etcd => Some(EtcdServer::start()?),
            Backend::Embedded => None,
        };
        let store = open_store(backend, &dir, etcd.as_ref()).await;
        Some(TestServer::start_on(store, dir, etcd).await)
    }

    /// Starts a server over an existing store.
    pub async fn start_on(
        store: Arc<dyn Store>,
        dir: TempDir,
        etcd: Option<EtcdServer>,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let srv = ApiServer::start(store, test_config(addr)).await.unwrap();
        let router = srv.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        TestServer {
            url: format!("http://{addr}"),
            addr,
            srv,
            dir,
            etcd,
            task,
        }
    }

    /// A kube-rs client for this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    pub async fn req(&self, method: &str, path: &str, content_type: &str, body: &str) -> Resp {
        raw(
            &self.url,
            method,
            path,
            &[("content-type", content_type)],
            body.as_bytes().to_vec(),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        raw(&self.url, "GET", path, &[], Vec::new()).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.req("POST", path, "application/json", &body.to_string())
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.req("PUT", path, "application/json", &body.to_string())
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        raw(&self.url, "DELETE", path, &[], Vec::new()).await
    }

    /// The store's current revision (to prove a failed request wrote nothing).
    pub async fn revision(&self) -> i64 {
        self.srv.store.current_revision().await.unwrap()
    }
}

/// A decoded response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub text: String,
}

/// One raw HTTP request.
pub async fn raw(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Resp {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("{url}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .expect("request timed out")
        .expect("request failed");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

/// The mini-apiserver binary as a child process (for kill -9 tests).
pub struct ServerProcess {
    pub child: Child,
    pub url: String,
    pub port: u16,
    pub args: Vec<String>,
    pub log: PathBuf,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Starts the binary with a store flag (`--store embedded:PATH` or `--etcd-servers URL`).
    pub fn spawn(store_args: &[String], port: u16, log: PathBuf) -> ServerProcess {
        let mut args = vec![
            format!("--listen=127.0.0.1:{port}"),
            "--service-node-port-range=30000-30100".to_string(),
            "--bookmark-interval-seconds=1".to_string(),
        ];
        args.extend(store_args.iter().cloned());
        let child = Self::launch(&args, &log);
        let p = ServerProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            args,
            log,
        };
        p.wait_ready();
        p
    }

    fn launch(args: &[String], log: &PathBuf) -> Child {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        // Plain HTTP and no authorization until this harness carries the cluster PKI (issue 15).
        Command::new(env!("CARGO_BIN_EXE_mini-apiserver"))
            .args([
                "--insecure-plain-http",
                "--authorization-mode",
                "AlwaysAllow",
                // no ServiceAccount controller or TokenRequest API in this harness
                "--disable-admission-plugins",
                "ServiceAccount",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("spawn mini-apiserver")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                if out.contains("200 OK") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "mini-apiserver did not become ready: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, then start again with the same flags.
    pub fn kill9_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::launch(&self.args, &self.log);
        self.wait_ready();
    }

    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }
}

/// Reads newline-framed watch events from `path` until `n` arrived or `timeout` passed.
pub async fn watch_lines(url: &str, path: &str, n: usize, timeout: Duration) -> Vec<Value> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::get(format!("{url}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut out = Vec::new();
    let Ok(Ok(resp)) = tokio::time::timeout_at(deadline, client.request(req)).await else {
        return out;
    };
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    while out.len() < n {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    buf.extend_from_slice(data);
                }
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                        out.push(v);
                    }
                }
            }
            _ => break,
        }
    }
    out
}
