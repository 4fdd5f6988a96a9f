//! Harness of the end-to-end suite (tests/e2e.rs): one real local cluster brought up with the
//! `mini-cluster` binary in temp state and kubeconfig, driven through the `minictl` and upstream
//! `kubectl` command lines like a user would, with every command bounded by a timeout, and torn
//! down by `cluster down` on drop (also when a test fails), after which nothing may be left.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use network::lab::NetNs;
use serde_json::Value;

/// A finished command: its exit, output, and how long it took.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// Panics with the command's output unless it succeeded; returns stdout.
    pub fn ok(self, what: &str) -> String {
        assert!(self.success, "{what} failed: {self}");
        self.stdout
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "success={} after {:?}\nstdout:\n{}\nstderr:\n{}",
            self.success, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` (stdin from `input` when given) and kills it after `timeout`.
pub fn run(mut cmd: Command, input: Option<&str>, timeout: Duration) -> Run {
    let started = Instant::now();
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let Some(text) = input {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write stdin");
    }
    // Read both pipes on threads so a chatty command cannot block on a full pipe.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let mut stderr = err_reader.join().unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {timeout:?})"));
    }
    Run {
        success: status.is_some_and(|s| s.success()),
        stdout,
        stderr,
        elapsed: started.elapsed(),
    }
}

/// Polls `check` every 100 ms until it returns Some, or panics with `what` and the last
/// observation after `timeout`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// What the machine's own network namespace looks like (interfaces, addresses, routes, rules,
/// iptables rules), minus what changes on its own (lifetimes, counters), to prove the cluster
/// never touched it.
pub fn host_network_snapshot() -> String {
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().expect("run ip");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let mut all = Vec::new();
    // "2: eth0: <FLAGS> ..." → "link eth0"
    for line in ip(&["-o", "link"]).lines() {
        if let Some(name) = line.split(": ").nth(1) {
            all.push(format!("link {name}"));
        }
    }
    // "2: eth0    inet 10.0.2.15/24 brd ... valid_lft ..." → "addr eth0 inet 10.0.2.15/24"
    for line in ip(&["-o", "addr"]).lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() >= 4 {
            all.push(format!("addr {} {} {}", words[1], words[2], words[3]));
        }
    }
    for line in ip(&["route", "show", "table", "all"]).lines() {
        let kept: Vec<&str> = line
            .split_whitespace()
            .take_while(|w| *w != "expires")
            .collect();
        all.push(format!("route {}", kept.join(" ")));
    }
    for line in ip(&["rule"]).lines() {
        all.push(format!("rule {line}"));
    }
    if let Ok(out) = Command::new("iptables-save").output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if line.starts_with('#') {
                continue;
            }
            // ":CHAIN POLICY [packets:bytes]" → ":CHAIN POLICY"
            let line = match line.split_once(" [") {
                Some((chain, _)) if line.starts_with(':') => chain,
                _ => line,
            };
            all.push(format!("iptables {line}"));
        }
    }
    all.join("\n")
}

/// One local cluster made by `mini-cluster up` in temp state, removed on drop.
pub struct Cluster {
    pub name: String,
    tmp: tempfile::TempDir,
    bin_dir: PathBuf,
}

impl Cluster {
    /// `cluster up --nodes N --store S` plus `extra`; panics with the components' logs when it
    /// fails (the launcher has cleaned up then).
    pub fn up(tag: &str, store: &str, nodes: usize, extra: &[&str]) -> Cluster {
        let bin_dir = testkit::build::cluster_binaries().to_path_buf();
        let images = testkit::build::test_images().to_string_lossy().to_string();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("e2e-{tag}-"))
            .tempdir()
            .expect("tempdir");
        let cluster = Cluster {
            name: format!("{tag}{}", std::process::id() % 10_000),
            tmp,
            bin_dir,
        };
        let kubeconfig = cluster.kubeconfig().to_string_lossy().to_string();
        let bin = cluster.bin_dir.to_string_lossy().to_string();
        let nodes = nodes.to_string();
        let mut args = vec![
            "up",
            "--nodes",
            &nodes,
            "--store",
            store,
            "--kubeconfig",
            &kubeconfig,
            "--bin-dir",
            &bin,
            "--images",
            &images,
            "--wait-timeout",
            "180",
        ];
        args.extend_from_slice(extra);
        let up = cluster.launcher(&args, Duration::from_secs(240));
        assert!(up.success, "cluster up failed: {up}\n{}", cluster.logs());
        eprintln!(
            "e2e: cluster {} up ({store} store) in {:?}",
            cluster.name, up.elapsed
        );
        cluster
    }

    /// Runs `mini-cluster ARGS --name <name>` with this cluster's state dir.
    pub fn launcher(&self, args: &[&str], timeout: Duration) -> Run {
        let mut cmd = Command::new(self.bin_dir.join("mini-cluster"));
        cmd.args(args)
            .args(["--name", &self.name])
            .env("MINICLUSTER_STATE_DIR", self.state_base());
        run(cmd, None, timeout)
    }

    pub fn state_base(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state_base().join(&self.name)
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.tmp.path().join("kubeconfig")
    }

    pub fn context(&self) -> String {
        format!("minicluster-{}", self.name)
    }

    /// The network namespace of node `i`.
    pub fn node_netns(&self, i: usize) -> String {
        format!("mc-{}-n{i}", self.name)
    }

    /// The namespace holding the lab bridge.
    pub fn bridge_netns(&self) -> String {
        format!("mc-{}-br", self.name)
    }

    /// The name of node `i`.
    pub fn node_name(&self, i: usize) -> String {
        format!("{}-n{i}", self.name)
    }

    /// `minictl --kubeconfig K --context C ARGS`.
    pub fn minictl(&self, args: &[&str]) -> Run {
        self.minictl_input(args, None)
    }

    /// `minictl ...` with `input` on stdin.
    pub fn minictl_input(&self, args: &[&str], input: Option<&str>) -> Run {
        run(self.minictl_command(args), input, Duration::from_secs(180))
    }

    /// The `minictl ...` command, not started (for commands run on another thread).
    pub fn minictl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("minictl"));
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(["--context", &self.context()])
            .args(args);
        cmd
    }

    /// Upstream `kubectl --kubeconfig K --context C ARGS`.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_input(args, None)
    }

    /// Upstream kubectl with `input` on stdin.
    pub fn kubectl_input(&self, args: &[&str], input: Option<&str>) -> Run {
        run(self.kubectl_command(args), input, Duration::from_secs(180))
    }

    /// The upstream `kubectl ...` command, not started.
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let kubectl = testkit::kubectl().expect("upstream kubectl (scripts/fetch-kubectl.sh)");
        let mut cmd = Command::new(kubectl);
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(["--context", &self.context()])
            .args(args);
        cmd
    }

    /// `kubectl get ARGS -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let out = self.kubectl(&all).ok("kubectl get");
        serde_json::from_str(&out).expect("kubectl get -o json")
    }

    /// `minictl exec POD -- sh -c SCRIPT`.
    pub fn sh(&self, pod: &str, script: &str) -> Run {
        self.minictl(&["exec", pod, "--", "sh", "-c", script])
    }

    /// Runs `program ARGS` inside network namespace `netns` (a node or an outsider).
    pub fn in_netns(&self, netns: &str, program: &str, args: &[&str]) -> Run {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns, program]).args(args);
        run(cmd, None, Duration::from_secs(60))
    }

    /// The pid of a component as `cluster status` lists it.
    pub fn component_pid(&self, component: &str) -> Option<i32> {
        let status = self.launcher(&["status"], Duration::from_secs(30));
        status
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cols| cols.first() == Some(&component))
            .and_then(|cols| cols.get(1).and_then(|p| p.parse().ok()))
    }

    /// A namespace outside the cluster network, plugged into the lab bridge with address
    /// 192.168.77.250/24 (no route anywhere else); removed on drop.
    pub fn outsider(&self) -> NetNs {
        let ns = NetNs::new("e2e-out").expect("create outsider netns");
        let bridge = NetNs::open(&self.bridge_netns()).expect("open the lab bridge namespace");
        let port = format!("eo{}", std::process::id() % 10_000);
        network::lab::plug_into_bridge(
            &bridge,
            &port,
            &ns,
            std::net::Ipv4Addr::new(192, 168, 77, 250),
        )
        .expect("plug the outsider into the lab bridge");
        ns.ip(&["link", "set", "lo", "up"]).expect("lo up");
        ns
    }

    /// The last lines of every component log (for failure messages).
    pub fn logs(&self) -> String {
        testkit::log_tails(&self.state_dir().join("logs"), 20)
    }

    /// `cluster down`.
    pub fn down(&self) -> Run {
        self.launcher(&["down"], Duration::from_secs(120))
    }

    /// Everything of this cluster still on the machine after `down`: namespaces, mounts,
    /// processes, cgroups, state.
    pub fn leftovers(&self) -> Vec<String> {
        testkit::leftovers::cluster(&self.name, &self.state_dir())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let down = self.down();
        if !down.success {
            eprintln!("cleanup: cluster down failed: {down}");
        }
    }
}

/// The `hostname=` of each line of demo-web answers, counted.
pub fn backends(answers: &str) -> std::collections::BTreeMap<String, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for line in answers.lines() {
        if let Some(host) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("hostname="))
        {
            *seen.entry(host.to_string()).or_insert(0) += 1;
        }
    }
    seen
}
