//! Harness of minictl's suites: a real mini-apiserver process on a free loopback port over a
//! fresh embedded store (optionally with mini-controller-manager and a hollow node agent that
//! binds pods and marks them Running+Ready), and runners for minictl and upstream kubectl
//! against it whose outputs are compared with ages masked.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;

/// A running apiserver (and maybe controllers), killed on drop.
pub struct TestServer {
    pub url: String,
    pub dir: TempDir,
    pub kubeconfig: PathBuf,
    children: Vec<Child>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The output of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// A binary of the workspace next to minictl's own (`cargo build -p X --bin NAME` makes it).
pub fn sibling_binary(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_minictl")).with_file_name(name);
    p.exists().then_some(p)
}

/// True when the apiserver (and, with `controllers`, the controller manager) binary is built;
/// otherwise reports what is missing.
pub fn have_binaries(controllers: bool) -> bool {
    if sibling_binary("mini-apiserver").is_none() {
        testkit::missing(
            "the mini-apiserver binary",
            "cargo build -p apiserver --bin mini-apiserver",
        );
        return false;
    }
    if controllers && sibling_binary("mini-controller-manager").is_none() {
        testkit::missing(
            "the mini-controller-manager binary",
            "cargo build -p controllers --bin mini-controller-manager",
        );
        return false;
    }
    true
}

impl TestServer {
    /// A mini-apiserver over a fresh embedded store.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let port = testkit::free_port();
        let kubeconfig = dir.path().join("kubeconfig");
        // Plain HTTP and no authorization until this harness carries the cluster PKI (issue 15).
        let child = Command::new(sibling_binary("mini-apiserver").expect("mini-apiserver"))
            .args([
                "--insecure-plain-http",
                "--authorization-mode",
                "AlwaysAllow",
                // no ServiceAccount controller or TokenRequest API in this harness
                "--disable-admission-plugins",
                "ServiceAccount",
            ])
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--store")
            .arg(format!(
                "embedded:{}",
                dir.path().join("state.db").display()
            ))
            .arg("--write-kubeconfig")
            .arg(&kubeconfig)
            .arg("--service-cluster-ip-range")
            .arg("10.96.0.0/16")
            .arg("--service-node-port-range")
            .arg("30000-30100")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("apiserver.log")).unwrap())
            .spawn()
            .expect("start mini-apiserver");
        let url = format!("http://127.0.0.1:{port}");
        let mut server = TestServer {
            url,
            dir,
            kubeconfig,
            children: vec![child],
            tasks: vec![],
        };
        let client = server.client();
        wait_for("the apiserver to answer", Duration::from_secs(30), || {
            let client = client.clone();
            async move {
                let req = http::Request::get("/api/v1/namespaces/default")
                    .body(Vec::new())
                    .unwrap();
                client.request_text(req).await.ok().map(|_| ())
            }
        })
        .await;
        // kubectl and minictl read the same kubeconfig, with the default namespace.
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {}\nusers:\n- name: t\n  user: {{}}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: t\n    namespace: default\ncurrent-context: t\n",
            server.url
        );
        std::fs::write(&server.kubeconfig, text).unwrap();
        server.tasks.shrink_to_fit();
        server
    }

    /// A server with mini-controller-manager and a hollow node agent running.
    pub async fn start_with_controllers() -> TestServer {
        let mut s = TestServer::start().await;
        let child = Command::new(
            sibling_binary("mini-controller-manager").expect("mini-controller-manager"),
        )
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .arg("--leader-elect=false")
        .arg("--secure-port=0")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.dir.path().join("controllers.log")).unwrap())
        .spawn()
        .expect("start mini-controller-manager");
        s.children.push(child);
        s.tasks.push(tokio::spawn(hollow_node_agent(s.client())));
        s
    }

    /// A kube-rs client for this server.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(kube::Config::new(self.url.parse().unwrap())).unwrap()
    }

    /// Runs minictl with this server's kubeconfig.
    pub async fn minictl(&self, args: &[&str]) -> Output {
        run(
            PathBuf::from(env!("CARGO_BIN_EXE_minictl")),
            &self.kubeconfig,
            args,
            None,
        )
        .await
    }

    /// Runs minictl with stdin.
    pub async fn minictl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run(
            PathBuf::from(env!("CARGO_BIN_EXE_minictl")),
            &self.kubeconfig,
            args,
            Some(stdin),
        )
        .await
    }

    /// Runs upstream kubectl with this server's kubeconfig.
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        run(
            testkit::kubectl().expect("kubectl"),
            &self.kubeconfig,
            args,
            None,
        )
        .await
    }

    /// GET as JSON through the API.
    pub async fn get_json(&self, path: &str) -> Result<Value, kube::Error> {
        let req = http::Request::get(path).body(Vec::new()).unwrap();
        self.client().request::<Value>(req).await
    }
}

async fn run(
    bin: PathBuf,
    kubeconfig: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let kubeconfig = kubeconfig.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.map(String::from);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(bin)
            .args(&args)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", kubeconfig.parent().unwrap())
            .env_remove("KUBE_EDITOR")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Output {
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
            code: out.status.code().unwrap_or(-1),
        }
    })
    .await
    .unwrap()
}

/// True when upstream kubectl is available; otherwise reports it as missing.
pub fn have_kubectl() -> bool {
    if testkit::kubectl().is_some() {
        return true;
    }
    testkit::missing(
        "kubectl v1.33 at .tools/kubectl",
        "run scripts/fetch-kubectl.sh",
    );
    false
}

/// Replaces volatile tokens (ages like `5s`, `3m2s`, `<invalid>`, describe timestamps) with
/// same-length placeholders so column alignment is still compared.
pub fn mask(text: &str) -> String {
    let age = regex_like_age;
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let mut masked = String::new();
        let mut token = String::new();
        for c in line.chars() {
            if c == ' ' || c == '\n' || c == '\t' {
                masked.push_str(&mask_token(&token, age));
                token.clear();
                masked.push(c);
            } else {
                token.push(c);
            }
        }
        masked.push_str(&mask_token(&token, age));
        out.push_str(&masked);
    }
    out
}

fn mask_token(token: &str, is_age: fn(&str) -> bool) -> String {
    if is_age(token) {
        "#".repeat(token.len())
    } else {
        token.to_string()
    }
}

/// `5s`, `12m`, `3m2s`, `4h5m`, `2d`, `<invalid>`, also inside `(x2 over 5s)`.
fn regex_like_age(token: &str) -> bool {
    let t = token.trim_end_matches(')');
    if t == "<invalid>" {
        return true;
    }
    let mut digits = false;
    let mut units = 0;
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits = true;
        } else if "smhdy".contains(c) && digits {
            units += 1;
            digits = false;
        } else {
            return false;
        }
    }
    units > 0 && !digits
}

/// Asserts that minictl and kubectl print the same (ages masked), retrying once when an age
/// ticks between the two runs.
pub async fn same(server: &TestServer, args: &[&str]) -> Output {
    eprintln!("side by side: {args:?}");
    let mut last = None;
    for _ in 0..2 {
        let ours = server.minictl(args).await;
        let theirs = server.kubectl(args).await;
        let a = (mask(&ours.stdout), mask(&ours.stderr), ours.code);
        let b = (mask(&theirs.stdout), mask(&theirs.stderr), theirs.code);
        if a == b {
            return ours;
        }
        last = Some((a, b));
    }
    let (a, b) = last.unwrap();
    panic!(
        "minictl and kubectl differ for {args:?}\n--- minictl (exit {}):\n{}\n{}\n--- kubectl (exit {}):\n{}\n{}",
        a.2, a.0, a.1, b.2, b.0, b.1
    );
}

/// Runs the same command on two servers, minictl on `ours` and kubectl on `theirs`, and asserts
/// the outputs match (for mutating verbs, where both servers start in the same state).
pub async fn same_on_twins(ours: &TestServer, theirs: &TestServer, args: &[&str]) -> Output {
    let a = ours.minictl(args).await;
    let b = theirs.kubectl(args).await;
    assert_eq!(
        (mask(&a.stdout), mask(&a.stderr), a.code),
        (mask(&b.stdout), mask(&b.stderr), b.code),
        "minictl (left) and kubectl (right) differ for {args:?}"
    );
    a
}

/// Polls `f` every 50ms until it returns Some or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Plays scheduler and kubelet for one hollow node "node-1": binds pending pods, marks bound
/// pods Running+Ready and finishes graceful deletions.
async fn hollow_node_agent(client: kube::Client) {
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}}});
    let post = |path: &str, body: &Value| {
        http::Request::post(path.to_string())
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .unwrap()
    };
    let _ = client.request_text(post("/api/v1/nodes", &node)).await;
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"}, "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"}}});
    let patch = |path: &str, body: &Value| {
        http::Request::patch(path.to_string())
            .header("content-type", "application/merge-patch+json")
            .body(serde_json::to_vec(body).unwrap())
            .unwrap()
    };
    let _ = client
        .request_text(patch("/api/v1/nodes/node-1/status", &status))
        .await;
    loop {
        let list: Value = match client
            .request(http::Request::get("/api/v1/pods").body(Vec::new()).unwrap())
            .await
        {
            Ok(v) => v,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        for pod in list["items"].as_array().cloned().unwrap_or_default() {
            let ns = pod["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let name = pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let base = format!("/api/v1/namespaces/{ns}/pods/{name}");
            if pod["metadata"]["deletionTimestamp"].is_string() {
                let req = http::Request::delete(base.clone())
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&json!({"gracePeriodSeconds": 0})).unwrap())
                    .unwrap();
                let _ = client.request_text(req).await;
            } else if !pod["spec"]["nodeName"].is_string() {
                let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": ns},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}});
                let _ = client
                    .request_text(post(&format!("{base}/binding"), &binding))
                    .await;
            } else if pod["status"]["phase"] != "Running" {
                let now = jiff::Timestamp::now()
                    .round(jiff::Unit::Second)
                    .unwrap()
                    .to_string();
                let status = json!({"status": {"phase": "Running", "podIP": "10.244.0.10", "hostIP": "10.0.0.1", "startTime": now,
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now},
                                   {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                                   {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}]}});
                let _ = client
                    .request_text(patch(&format!("{base}/status"), &status))
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
