//! A whole small cluster for the kubelet's root integration tests: a lab of network-namespace
//! nodes (testkit::netns), the real mini-apiserver in the test's namespace serving the nodes
//! inside the lab (--kubelet-netns / --node-listen), the controller-manager and scheduler, and
//! one mini-kubelet per node run inside its node's namespace. Drop removes every sandbox,
//! mount, cgroup, process and namespace, also when a test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::Client;
use testkit::netns::Lab;

/// Root and every prerequisite, or a loud skip (a failure in CI).
pub fn prerequisites(test: &str) -> bool {
    if !testkit::is_root() {
        testkit::missing(
            &format!("{test}: root (namespaces, mounts, cgroups)"),
            "run the suite as root; CI does",
        );
        return false;
    }
    for tool in ["ip", "nsenter", "iptables"] {
        if Command::new(tool).arg("--version").output().is_err() {
            testkit::missing(
                &format!("{test}: {tool}"),
                "apt-get install iproute2 util-linux iptables",
            );
            return false;
        }
    }
    true
}

/// The component binaries, built once per test binary (cheap when up to date).
pub fn bins() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        testkit::build::binaries(&[
            "apiserver",
            "controllers",
            "scheduler",
            "runtime",
            "kubelet",
        ])
        .unwrap_or_else(|e| panic!("building the component binaries failed: {e}"))
    })
}

/// The image tarballs the kubelet tests use (pause, busybox, demo-web v1), linked from the
/// shared test images into their own directory.
pub fn images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(d) = std::env::var("MINIRUN_TEST_IMAGES") {
            return PathBuf::from(d);
        }
        let out = testkit::build::test_images();
        let kube_images = out.join("node");
        std::fs::create_dir_all(&kube_images).unwrap();
        for img in ["pause_latest.tar", "busybox_latest.tar", "demo-web_v1.tar"] {
            let dst = kube_images.join(img);
            let _ = std::fs::remove_file(&dst);
            std::fs::hard_link(out.join(img), &dst)
                .or_else(|_| std::fs::copy(out.join(img), &dst).map(|_| ()))
                .expect("link image");
        }
        kube_images
    })
}

/// One kubelet of the cluster.
pub struct NodeAgent {
    pub name: String,
    pub root: PathBuf,
    pub cgroup_root: String,
    pub child: Option<Child>,
}

/// A running cluster.
pub struct Cluster {
    pub prefix: String,
    pub client: Client,
    pub kubeconfig: PathBuf,
    pub node_kubeconfig: PathBuf,
    pub port: u16,
    pub nodes: Vec<NodeAgent>,
    control: Vec<Child>,
    // Dropped last (after the explicit cleanup in Drop).
    pub lab: Lab,
    pub tmp: tempfile::TempDir,
}

fn spawn_logged(mut cmd: Command, log: &Path) -> Child {
    let f = std::fs::File::create(log).expect("log file");
    let f2 = f.try_clone().expect("log file");
    cmd.stdout(Stdio::from(f))
        .stderr(Stdio::from(f2))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

impl Cluster {
    /// Starts a cluster of `n` nodes whose names and namespaces start with `prefix`.
    pub async fn start(prefix: &str, n: usize) -> Cluster {
        let bins = bins().to_path_buf();
        let images = images().to_path_buf();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("kubelet-{prefix}-"))
            .tempdir()
            .expect("tempdir");
        let lab = Lab::new(prefix, n).expect("lab");
        let port = testkit::free_port();
        let kubeconfig = tmp.path().join("admin.kubeconfig");
        let node_kubeconfig = tmp.path().join("node.kubeconfig");
        let mut api = Command::new(bins.join("mini-apiserver"));
        // Plain HTTP and no authorization until this harness carries the cluster PKI (issue 15).
        api.args([
            "--insecure-plain-http",
            "--authorization-mode",
            "AlwaysAllow",
            // no ServiceAccount controller or TokenRequest API in this harness
            "--disable-admission-plugins",
            "ServiceAccount",
        ]);
        api.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--store")
            .arg(format!(
                "embedded:{}",
                tmp.path().join("state.db").display()
            ))
            .arg("--kubelet-netns")
            .arg(lab.bridge_ns().path())
            .arg("--node-listen")
            .arg(format!("192.168.77.1:{port}"))
            .arg("--advertise-address")
            .arg("192.168.77.1")
            .arg("--write-kubeconfig")
            .arg(&kubeconfig);
        let mut control = vec![spawn_logged(api, &tmp.path().join("apiserver.log"))];
        let deadline = Instant::now() + Duration::from_secs(60);
        while !kubeconfig.exists() {
            assert!(Instant::now() < deadline, "apiserver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::write(
            &node_kubeconfig,
            std::fs::read_to_string(&kubeconfig).unwrap().replace(
                &format!("127.0.0.1:{port}"),
                &format!("192.168.77.1:{port}"),
            ),
        )
        .unwrap();
        for (bin, extra) in [
            (
                "mini-controller-manager",
                vec!["--node-monitor-grace-period", "40s"],
            ),
            ("mini-scheduler", vec![]),
        ] {
            let mut c = Command::new(bins.join(bin));
            c.arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["--leader-elect=false", "--secure-port", "0"])
                .args(extra);
            control.push(spawn_logged(c, &tmp.path().join(format!("{bin}.log"))));
        }
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = Client::try_from(cfg).unwrap();
        let mut cluster = Cluster {
            prefix: prefix.to_string(),
            client,
            kubeconfig,
            node_kubeconfig,
            port,
            nodes: Vec::new(),
            control,
            lab,
            tmp,
        };
        for i in 0..n {
            let name = format!("{prefix}-n{i}");
            let root = cluster.tmp.path().join(&name);
            std::fs::create_dir_all(&root).unwrap();
            cluster.nodes.push(NodeAgent {
                cgroup_root: format!("minicluster-{name}"),
                name,
                root,
                child: None,
            });
            cluster.start_kubelet(i, &images);
        }
        cluster
    }

    /// (Re)starts the kubelet of node `i` inside its namespace.
    pub fn start_kubelet(&mut self, i: usize, images: &Path) {
        let bins = bins();
        let node = &self.nodes[i];
        let lab_node = self.lab.node(i);
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", lab_node.ns.path().display()))
            .arg("--")
            .arg(bins.join("mini-kubelet"))
            .arg("--insecure-plain-http")
            .arg("--kubeconfig")
            .arg(&self.node_kubeconfig)
            .arg("--node-name")
            .arg(&node.name)
            .arg("--node-ip")
            .arg(lab_node.ip.to_string())
            .arg("--root-dir")
            .arg(&node.root)
            .arg("--image-dir")
            .arg(images)
            .arg("--runtime-path")
            .arg(bins.join("minirun"))
            .arg("--healthz-port")
            .arg("0")
            .arg("--sync-frequency")
            .arg("2s")
            .arg("--system-reserved")
            .arg("cpu=100m,memory=100Mi")
            .arg("-v")
            .arg("2");
        let log = self.tmp.path().join(format!("{}.kubelet.log", node.name));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let f2 = f.try_clone().unwrap();
        let child = c
            .stdout(Stdio::from(f))
            .stderr(Stdio::from(f2))
            .spawn()
            .expect("spawn kubelet");
        self.nodes[i].child = Some(child);
    }

    /// SIGKILLs the kubelet of node `i` (its pods keep running).
    pub fn kill_kubelet(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The admin kubeconfig's kubectl, or None (loud skip) when it is not installed.
    pub fn kubectl(&self, args: &[&str]) -> Option<Output> {
        let k = testkit::kubectl()?;
        Some(
            Command::new(k)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args)
                .output()
                .expect("run kubectl"),
        )
    }

    /// kubectl with stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Option<Output> {
        use std::io::Write;
        let k = testkit::kubectl()?;
        let mut child = Command::new(k)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        Some(child.wait_with_output().expect("kubectl output"))
    }

    /// `minirun` against node `i`'s runtime.
    pub fn minirun(&self, i: usize, args: &[&str]) -> Output {
        let node = &self.nodes[i];
        Command::new(bins().join("minirun"))
            .arg("--root")
            .arg(node.root.join("runtime"))
            .arg("--cgroup-root")
            .arg(&node.cgroup_root)
            .args(args)
            .output()
            .expect("run minirun")
    }

    /// The sandboxes of node `i` as JSON.
    pub fn sandboxes(&self, i: usize) -> Vec<serde_json::Value> {
        let o = self.minirun(i, &["pods", "--json"]);
        serde_json::from_slice(&o.stdout).unwrap_or_default()
    }

    /// Pods API of a namespace.
    pub fn pods(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Waits (bounded) until pod `ns/name` satisfies `pred`; panics with the pod and the
    /// kubelet logs' tail otherwise.
    pub async fn wait_pod(
        &self,
        ns: &str,
        name: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Pod) -> bool,
    ) -> Pod {
        let api = self.pods(ns);
        let deadline = Instant::now() + timeout;
        loop {
            let p = api.get_opt(name).await.ok().flatten();
            if let Some(p) = &p {
                if pred(p) {
                    return p.clone();
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for pod {ns}/{name}: {what}\npod: {}\n{}",
                    serde_json::to_string_pretty(&p).unwrap_or_default(),
                    self.logs_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `cond` holds (bounded).
    pub async fn wait_for<F, Fut>(&self, timeout: Duration, what: &str, cond: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        while !cond().await {
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}\n{}", self.logs_tail());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last lines of every component log (for failure messages).
    pub fn logs_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(rd) = std::fs::read_dir(self.tmp.path()) {
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    let start = lines.len().saturating_sub(25);
                    s.push_str(&format!(
                        "--- {}\n{}\n",
                        e.path().display(),
                        lines[start..].join("\n")
                    ));
                }
            }
        }
        s
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for n in &self.nodes {
            for h in ["unified", "memory", "cpu", "cpuacct", "pids", "freezer", ""] {
                let p = Path::new("/sys/fs/cgroup").join(h).join(&n.cgroup_root);
                if p.exists() {
                    v.push(p);
                }
            }
        }
        v
    }

    /// Everything left behind: mounts under the test dir, cgroups, processes of our roots,
    /// network namespaces with our prefix.
    pub fn leftovers(&self) -> Vec<String> {
        let mut v = Vec::new();
        let needle = self.tmp.path().to_string_lossy().to_string();
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        v.extend(
            mi.lines()
                .filter(|l| l.contains(&needle))
                .map(|l| format!("mount: {l}")),
        );
        v.extend(
            self.cgroup_dirs()
                .iter()
                .map(|d| format!("cgroup: {}", d.display())),
        );
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
            if !zombie && cmdline.contains(&needle) {
                v.push(format!("process {name}: {cmdline}"));
            }
        }
        v
    }

    fn cleanup(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_kubelet(i);
        }
        for i in 0..self.nodes.len() {
            for sb in self.sandboxes(i) {
                if let Some(id) = sb["id"].as_str() {
                    let _ = self.minirun(i, &["sandbox", "rm", id]);
                }
            }
        }
        for c in &mut self.control {
            let _ = c.kill();
            let _ = c.wait();
        }
        // tmpfs volumes the kubelets mounted.
        let needle = self.tmp.path().to_string_lossy().to_string();
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<String> = mi
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&needle))
            .map(str::to_string)
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            for d in self.cgroup_dirs() {
                // Children first.
                let mut dirs: Vec<PathBuf> = walk_dirs(&d);
                dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
                for x in dirs {
                    let _ = std::fs::remove_dir(&x);
                }
            }
            if self.leftovers().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Cleans up now and returns what could not be removed (the suite's leak check).
    pub fn shutdown(mut self) -> Vec<String> {
        self.cleanup();
        let left = self.leftovers();
        let prefix = self.prefix.clone();
        drop(self);
        let mut left = left;
        left.extend(testkit::netns::leftovers(&prefix));
        left
    }
}

fn walk_dirs(d: &Path) -> Vec<PathBuf> {
    let mut v = vec![d.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                v.extend(walk_dirs(&e.path()));
            }
        }
    }
    v
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// How long a test waits for one pod state.
pub const T: Duration = Duration::from_secs(90);

/// A command's stdout as text.
pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A command's stderr as text.
pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// `kubectl apply` of `manifest` (saved as `<name>.yaml` in the test dir); false when upstream
/// kubectl is not available (a loud skip).
pub fn apply(c: &Cluster, name: &str, manifest: &str) -> bool {
    let path = c.tmp.path().join(format!("{name}.yaml"));
    std::fs::write(&path, manifest).unwrap();
    let Some(o) = c.kubectl(&["apply", "-f", path.to_str().unwrap()]) else {
        return false;
    };
    assert!(o.status.success(), "kubectl apply {name}: {}", err(&o));
    true
}

/// A pod from YAML.
pub fn pod(yaml: &str) -> Pod {
    serde_saphyr::from_str(yaml).expect("pod yaml")
}

/// The pod's phase.
pub fn phase(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

/// Whether the pod's Ready condition is True.
pub fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A container status by name.
pub fn container<'a>(
    p: &'a Pod,
    name: &str,
) -> Option<&'a k8s_openapi::api::core::v1::ContainerStatus> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
}

/// Runs `kubectl ARGS` on a pseudo-terminal of 111 columns and 33 rows, types `input` (if any)
/// once kubectl says it is attached, and returns what the terminal showed until kubectl ended
/// (bounded).
pub fn in_a_terminal(c: &Cluster, args: &[&str], input: &[u8]) -> String {
    let script = r#"
import fcntl, os, select, struct, subprocess, sys, termios, time
kubectl, kubeconfig, line = sys.argv[1:4]
args = sys.argv[4:]
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
p = subprocess.Popen([kubectl, "--kubeconfig", kubeconfig] + args,
                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
os.close(slave)
out, sent, end = b"", False, time.time() + 30
while time.time() < end:
    if line and not sent and b"pressing enter" in out:
        time.sleep(0.5)
        os.write(master, line.encode())
        sent = True
    r, _, _ = select.select([master], [], [], 0.2)
    if r:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    elif p.poll() is not None:
        break
p.kill()
sys.stdout.write(out.decode(errors="replace"))
"#;
    let kubectl = testkit::kubectl().expect("kubectl");
    let o = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(kubectl)
        .arg(&c.kubeconfig)
        .arg(String::from_utf8_lossy(input).to_string())
        .args(args)
        .output()
        .expect("python3");
    String::from_utf8_lossy(&o.stdout).to_string()
}
