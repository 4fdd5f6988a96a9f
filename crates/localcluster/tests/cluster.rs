//! Root integration tests of the launcher through the real `mini-cluster` binary and the real
//! components: up (2 nodes, embedded store) → nodes Ready (and DNS when mini-proxy exists) →
//! status → a killed component shows as crashed → up again with the same name is refused → down
//! leaves nothing behind; a component dying during up fails it with its log and cleans up; a
//! missing prerequisite is named with how to install it. State and kubeconfig live in temp dirs
//! and cluster names are unique, so the machine's ~/.kube/config and /var/lib/minicluster are
//! never touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// Clusters are started one at a time (they would race for port 6443).
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The component binaries (built once per test run) and whether the real mini-proxy exists.
fn bins() -> &'static (PathBuf, bool) {
    static BINS: OnceLock<(PathBuf, bool)> = OnceLock::new();
    BINS.get_or_init(|| {
        let dir = testkit::build::binaries(&[
            "apiserver",
            "controllers",
            "scheduler",
            "runtime",
            "kubelet",
        ])
        .unwrap_or_else(|e| panic!("building the component binaries failed: {e}"));
        let proxy = testkit::build::binaries(&["proxy"]).is_ok() && dir.join("mini-proxy").exists();
        (dir, proxy)
    })
}

fn images() -> &'static Path {
    testkit::build::test_images()
}

fn root_and_tools(test: &str) -> bool {
    if !testkit::is_root() {
        testkit::missing(&format!("{test}: root"), "run the suite as root; CI does");
        return false;
    }
    for (tool, install) in [
        ("ip", "apt-get install iproute2"),
        ("nsenter", "apt-get install util-linux"),
        ("iptables", "apt-get install iptables"),
    ] {
        if Command::new(tool).arg("--version").output().is_err() {
            testkit::missing(&format!("{test}: {tool}"), install);
            return false;
        }
    }
    true
}

/// One test cluster's environment: a temp state base, a temp kubeconfig, a bin dir. Drop runs
/// `down`, so a failing test leaves nothing behind.
struct TestCluster {
    name: String,
    tmp: tempfile::TempDir,
    bin_dir: PathBuf,
}

impl TestCluster {
    fn new(tag: &str, bin_dir: PathBuf) -> TestCluster {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("localcluster-{tag}-"))
            .tempdir()
            .expect("tempdir");
        TestCluster {
            name: format!("{tag}{}", std::process::id() % 100_000),
            tmp,
            bin_dir,
        }
    }

    fn state_base(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    fn state_dir(&self) -> PathBuf {
        self.state_base().join(&self.name)
    }

    fn kubeconfig(&self) -> PathBuf {
        self.tmp.path().join("kube/config")
    }

    fn cluster(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mini-cluster"))
            .args(args)
            .args(["--name", &self.name])
            .env("MINICLUSTER_STATE_DIR", self.state_base())
            .output()
            .expect("run mini-cluster")
    }

    fn up(&self, extra: &[&str]) -> Output {
        let kubeconfig = self.kubeconfig().to_string_lossy().to_string();
        let bin_dir = self.bin_dir.to_string_lossy().to_string();
        let images = images().to_string_lossy().to_string();
        let mut args = vec![
            "up",
            "--nodes",
            "2",
            "--kubeconfig",
            &kubeconfig,
            "--bin-dir",
            &bin_dir,
            "--images",
            &images,
            "--wait-timeout",
            "120",
        ];
        args.extend_from_slice(extra);
        self.cluster(&args)
    }

    /// Everything of this cluster still on the machine.
    fn leftovers(&self) -> Vec<String> {
        testkit::leftovers::cluster(&self.name, &self.state_dir())
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let out = self.cluster(&["down"]);
        if !out.status.success() {
            eprintln!(
                "cleanup: down failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The logs of every component of `cluster` (for failure messages).
fn logs(cluster: &TestCluster) -> String {
    testkit::log_tails(&cluster.state_dir().join("logs"), 15)
}

/// The status lines of `component` (its columns: name, pid, status, log).
fn component_line(status: &str, component: &str) -> Option<Vec<String>> {
    status
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(component))
}

#[test]
fn up_status_crash_refusal_and_down_leave_nothing_behind() {
    if !root_and_tools("localcluster up/down") {
        return;
    }
    let (bin_dir, have_proxy) = bins().clone();
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let stub_bins;
    let (bin_dir, extra): (PathBuf, Vec<&str>) = if have_proxy {
        (bin_dir, vec![])
    } else {
        testkit::missing(
            "mini-proxy (cargo build -p proxy failed or has no binary yet)",
            "finish crates/proxy; until then this test runs with a stand-in proxy and --skip-dns",
        );
        stub_bins = stub_bin_dir(&bin_dir, "while :; do sleep 1; done");
        (stub_bins.path().to_path_buf(), vec!["--skip-dns"])
    };
    let cluster = TestCluster::new("lct", bin_dir);
    let context = format!("minicluster-{}", cluster.name);

    let up = cluster.up(&extra);
    assert!(
        up.status.success(),
        "up failed: {}\n{}",
        text(&up),
        logs(&cluster)
    );
    let stdout = String::from_utf8_lossy(&up.stdout);
    assert!(
        stdout.contains(&format!("--context {context} get nodes")),
        "{stdout}"
    );
    let kubeconfig = std::fs::read_to_string(cluster.kubeconfig()).expect("kubeconfig written");
    assert!(kubeconfig.contains(&context), "{kubeconfig}");

    // Every node Ready as kubectl sees it through the written context.
    if let Some(kubectl) = testkit::kubectl() {
        let nodes = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(["--context", &context, "get", "nodes", "--no-headers"])
            .output()
            .expect("kubectl");
        let nodes = String::from_utf8_lossy(&nodes.stdout).to_string();
        for i in 0..2 {
            let line = nodes
                .lines()
                .find(|l| l.starts_with(&format!("{}-n{i} ", cluster.name)))
                .unwrap_or_else(|| panic!("node {i} missing: {nodes}"));
            assert!(line.contains(" Ready "), "{line}");
        }
    }

    // status: every component alive, both nodes Ready.
    let status = cluster.cluster(&["status"]);
    assert!(status.status.success(), "{}", text(&status));
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    let mut components = vec![
        "apiserver".to_string(),
        "controller-manager".to_string(),
        "scheduler".to_string(),
    ];
    for i in 0..2 {
        components.push(format!("kubelet-{}-n{i}", cluster.name));
        components.push(format!("proxy-{}-n{i}", cluster.name));
    }
    for component in &components {
        let cols = component_line(&status, component)
            .unwrap_or_else(|| panic!("{component} missing from status:\n{status}"));
        assert_eq!(cols[2], "alive", "{status}");
    }
    for i in 0..2 {
        let cols = component_line(&status, &format!("{}-n{i}", cluster.name))
            .unwrap_or_else(|| panic!("node {i} missing from status:\n{status}"));
        assert_eq!(cols[1], "True", "{status}");
    }

    // The same name again is refused, and the running cluster is untouched.
    let again = cluster.up(&extra);
    assert!(
        !again.status.success(),
        "second up succeeded: {}",
        text(&again)
    );
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains(&format!("cluster {} exists", cluster.name)),
        "{stderr}"
    );
    assert!(cluster.state_dir().join("state.json").exists());

    // A killed component is reported as crashed.
    let scheduler = component_line(&status, "scheduler").unwrap();
    let pid: i32 = scheduler[1].parse().expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill scheduler");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut crashed = String::new();
    while std::time::Instant::now() < deadline {
        crashed = String::from_utf8_lossy(&cluster.cluster(&["status"]).stdout).to_string();
        if component_line(&crashed, "scheduler").is_some_and(|c| c[2] == "crashed") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        component_line(&crashed, "scheduler").unwrap()[2],
        "crashed",
        "{crashed}"
    );
    assert_eq!(
        component_line(&crashed, "apiserver").unwrap()[2],
        "alive",
        "{crashed}"
    );

    // down removes everything, kubeconfig entries included, and is idempotent.
    let down = cluster.cluster(&["down"]);
    assert!(down.status.success(), "{}", text(&down));
    let left = cluster.leftovers();
    assert!(left.is_empty(), "left behind: {left:#?}");
    let kubeconfig = std::fs::read_to_string(cluster.kubeconfig()).unwrap_or_default();
    assert!(!kubeconfig.contains(&context), "{kubeconfig}");
    let again = cluster.cluster(&["down"]);
    assert!(again.status.success(), "{}", text(&again));
}

/// A bin dir with links to the real components and a shell stand-in for mini-proxy.
fn stub_bin_dir(real: &Path, proxy_script: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("localcluster-bins-")
        .tempdir()
        .expect("tempdir");
    for binary in [
        "mini-apiserver",
        "mini-controller-manager",
        "mini-scheduler",
        "mini-kubelet",
        "minirun",
    ] {
        std::os::unix::fs::symlink(real.join(binary), dir.path().join(binary)).expect("symlink");
    }
    let proxy = dir.path().join("mini-proxy");
    std::fs::write(&proxy, format!("#!/bin/sh\n{proxy_script}\n")).unwrap();
    std::fs::set_permissions(&proxy, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn a_component_dying_during_up_fails_it_with_its_log_and_cleans_up() {
    if !root_and_tools("localcluster crash during up") {
        return;
    }
    let (bin_dir, _) = bins().clone();
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let bins = stub_bin_dir(
        &bin_dir,
        "echo 'proxy stand-in: cannot program iptables' >&2; exit 3",
    );
    let cluster = TestCluster::new("lcd", bins.path().to_path_buf());
    let up = cluster.up(&["--skip-dns"]);
    assert!(!up.status.success(), "up succeeded: {}", text(&up));
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(
        stderr.contains(&format!("proxy-{}-n0 exited", cluster.name))
            || stderr.contains(&format!("proxy-{}-n1 exited", cluster.name)),
        "{stderr}"
    );
    assert!(stderr.contains("cannot program iptables"), "{stderr}");
    assert!(stderr.contains("cleaned up"), "{stderr}");
    let left = cluster.leftovers();
    assert!(left.is_empty(), "left behind: {left:#?}");
}

#[test]
fn a_missing_prerequisite_is_named_with_how_to_install_it() {
    // A PATH with every tool but `ip`.
    let path = tempfile::tempdir().unwrap();
    for tool in ["nsenter", "iptables", "iptables-restore"] {
        if let Some(real) = std::env::var("PATH")
            .unwrap_or_default()
            .split(':')
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
        {
            std::os::unix::fs::symlink(real, path.path().join(tool)).unwrap();
        }
    }
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mini-cluster"))
        .args(["up", "--name", "lcp"])
        .env("PATH", path.path())
        .env("MINICLUSTER_STATE_DIR", state.path())
        .output()
        .expect("run mini-cluster");
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ip not found on PATH"), "{stderr}");
    assert!(stderr.contains("apt-get install iproute2"), "{stderr}");
    assert!(
        !state.path().join("lcp").exists(),
        "a refused up made a state dir"
    );
}
