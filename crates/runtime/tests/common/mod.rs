//! Shared support for the root integration tests: root check, test images, a per-test runtime
//! root with a cleanup guard that removes sandboxes, cgroups and processes even on failure and
//! checks that nothing leaked.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// True when running as root; otherwise prints a loud skip message.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    if std::env::var("MINI_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{test} needs root and MINI_REQUIRE_ALL=1 forbids skipping");
    }
    eprintln!("SKIPPED {test}: needs root (namespaces, mounts, cgroups); CI runs it as root");
    false
}

/// The directory holding the test image tarballs: `MINIRUN_TEST_IMAGES` if set, else built
/// once per test binary by scripts/build-images.sh into `<target>/test-images`.
pub fn images_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(d) = std::env::var("MINIRUN_TEST_IMAGES") {
            return PathBuf::from(d);
        }
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let ws = manifest.join("../..");
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| ws.join("target"));
        let out = target.join("test-images");
        // Build under a lock file so parallel test binaries do not race.
        std::fs::create_dir_all(&out).expect("mkdir test-images");
        let lock = std::fs::File::create(out.join(".lock")).expect("lock file");
        let _guard =
            nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).expect("flock");
        // Always (re)run the script: it is reproducible and cheap when nothing changed, and a
        // reused target dir must not serve images of older sources.
        {
            let st = Command::new("bash")
                .arg(ws.join("scripts/build-images.sh"))
                .arg("--out")
                .arg(&out)
                .status()
                .expect("run scripts/build-images.sh");
            assert!(st.success(), "scripts/build-images.sh failed");
        }
        out
    })
}

/// Path of one test image tarball.
pub fn image(name: &str) -> PathBuf {
    images_dir().join(name)
}

/// A runtime root for one test, with its own cgroup subtree; cleans up on drop.
pub struct TestRuntime {
    pub dir: tempfile::TempDir,
    pub cgroup_root: String,
}

pub fn minirun() -> &'static str {
    env!("CARGO_BIN_EXE_minirun")
}

impl TestRuntime {
    /// A fresh root with pause and busybox loaded.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("minirun-test-")
            .tempdir()
            .expect("tempdir");
        let cgroup_root = format!(
            "minicluster-test-{}",
            dir.path().file_name().unwrap().to_string_lossy()
        );
        let rt = Self { dir, cgroup_root };
        rt.ok(&["load", image("pause_latest.tar").to_str().unwrap()]);
        rt.ok(&["load", image("busybox_latest.tar").to_str().unwrap()]);
        rt
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Runs minirun with this root.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(minirun());
        c.arg("--root")
            .arg(self.root())
            .arg("--cgroup-root")
            .arg(&self.cgroup_root)
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("spawn minirun")
    }

    pub fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut c = self
            .cmd(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn minirun");
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        c.wait_with_output().expect("wait minirun")
    }

    /// Runs minirun and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "minirun {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("json output")
    }

    /// Creates a sandbox from a JSON config; returns its id.
    pub fn sandbox(&self, cfg: serde_json::Value) -> String {
        let o = self.run_stdin(&["sandbox", "create", "--config", "-"], &cfg.to_string());
        assert!(
            o.status.success(),
            "sandbox create: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// Creates (not starts) a container; returns its id.
    pub fn create(&self, sandbox: &str, cfg: serde_json::Value) -> String {
        let o = self.run_stdin(
            &["create", "--sandbox", sandbox, "--config", "-"],
            &cfg.to_string(),
        );
        assert!(
            o.status.success(),
            "create: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// Creates and starts a container.
    pub fn start(&self, sandbox: &str, cfg: serde_json::Value) -> String {
        let id = self.create(sandbox, cfg);
        self.ok(&["start", &id]);
        id
    }

    pub fn state(&self, id: &str) -> serde_json::Value {
        self.json(&["state", id])
    }

    /// Waits (bounded) until the container has exited; returns its state.
    pub fn wait_exit(&self, id: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.state(id);
            if st["status"] == "exited" || Instant::now() > deadline {
                return st;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// exec; returns (exit code, stdout).
    pub fn exec(&self, id: &str, cmd: &[&str]) -> (i32, String) {
        let mut args = vec!["exec", id, "--"];
        args.extend_from_slice(cmd);
        let o = self.run(&args);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    }

    /// stdout and stderr lines of a container, from its CRI log.
    pub fn logs(&self, id: &str) -> String {
        self.ok(&["logs", "--raw", id])
            .lines()
            .map(|l| l.splitn(4, ' ').nth(3).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for h in ["unified", "memory", "cpu", "cpuacct", "pids", "freezer", ""] {
            let p = Path::new("/sys/fs/cgroup").join(h).join(&self.cgroup_root);
            if p.exists() {
                v.push(p);
            }
        }
        v
    }

    /// Processes whose command line mentions this root (the monitors) or that live in its cgroups.
    fn our_processes(&self) -> Vec<String> {
        let needle = self.root().to_string_lossy().to_string();
        let mut v = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
            if !zombie && (cmdline.contains(&needle) || cg.contains(&self.cgroup_root)) {
                v.push(format!("{name}: {cmdline}"));
            }
        }
        v
    }

    /// Everything this test's runtime left behind: mounts, cgroups, processes.
    pub fn leftovers(&self) -> Vec<String> {
        let mut v = Vec::new();
        let needle = self.root().to_string_lossy().to_string();
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        v.extend(
            mi.lines()
                .filter(|l| l.contains(&needle))
                .map(|l| format!("mount: {l}")),
        );
        for d in self.cgroup_dirs() {
            v.push(format!("cgroup: {}", d.display()));
        }
        v.extend(
            self.our_processes()
                .into_iter()
                .map(|p| format!("process: {p}")),
        );
        v
    }

    /// Removes every sandbox, then the cgroup root; returns what is still left.
    pub fn cleanup(&self) -> Vec<String> {
        if let Ok(o) = self.cmd(&["pods", "--json"]).output() {
            if let Ok(list) = serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout) {
                for p in list {
                    if let Some(id) = p["id"].as_str() {
                        let _ = self.cmd(&["sandbox", "rm", id]).output();
                    }
                }
            }
        }
        for d in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(&d);
        }
        // Monitors finish writing their records right after the container dies.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = self.leftovers();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestRuntime {
    fn drop(&mut self) {
        let left = self.cleanup();
        if !left.is_empty() {
            // Last resort so one failure does not poison the machine.
            for p in self.our_processes() {
                if let Some(pid) = p.split(':').next().and_then(|s| s.parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            if !std::thread::panicking() {
                panic!("runtime leaked: {left:#?}");
            }
        }
    }
}
