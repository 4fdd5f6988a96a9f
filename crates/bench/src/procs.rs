//! Real apiservers as child processes on free loopback ports, killed when dropped.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tempfile::TempDir;

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a store lives for an apiserver under test.
#[derive(Debug, Clone)]
pub enum StoreArg {
    /// The embedded store in a file of the process's temp dir.
    Embedded,
    /// etcd at these client URLs.
    Etcd(String),
}

/// A running `mini-apiserver`.
pub struct ApiServerProcess {
    child: Child,
    base: String,
    dir: TempDir,
}

impl Drop for ApiServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ApiServerProcess {
    /// Starts `binary` on a free loopback port over `store` and waits until /healthz answers.
    pub fn start(binary: &Path, store: &StoreArg) -> anyhow::Result<ApiServerProcess> {
        let mut last = None;
        // A port picked as free can be taken before the server binds it: try a few times.
        for _ in 0..3 {
            match ApiServerProcess::try_start(binary, store) {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn try_start(binary: &Path, store: &StoreArg) -> anyhow::Result<ApiServerProcess> {
        let dir = tempfile::Builder::new()
            .prefix("bench-apiserver-")
            .tempdir()?;
        let port = testkit::free_port();
        let log_path = dir.path().join("apiserver.log");
        let log = File::create(&log_path)?;
        let mut cmd = Command::new(binary);
        // Plain HTTP and no authorization until this harness carries the cluster PKI (issue 15).
        cmd.args([
            "--insecure-plain-http",
            "--authorization-mode",
            "AlwaysAllow",
        ]);
        cmd.arg(format!("--listen=127.0.0.1:{port}"));
        match store {
            StoreArg::Embedded => {
                cmd.arg(format!(
                    "--store=embedded:{}",
                    dir.path().join("state.db").display()
                ));
            }
            StoreArg::Etcd(url) => {
                cmd.arg(format!("--etcd-servers={url}"));
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut p = ApiServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if healthy(port) {
                return Ok(p);
            }
            let exited = matches!(p.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(10).collect();
                bail!(
                    "mini-apiserver did not become healthy: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The directory holding the log (and the embedded store's file).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200")
}

/// Finds `mini-apiserver`: `explicit` if given, else next to the running executable (the same
/// target dir and profile). When it is missing and we run under cargo, builds it first.
pub fn find_apiserver(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        if !p.exists() {
            bail!("--apiserver {} does not exist", p.display());
        }
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe().context("locating the running executable")?;
    let dir = exe.parent().context("executable has no directory")?;
    // Binaries live in target/<profile>/, tests in target/<profile>/deps/.
    let candidates = [dir.join("mini-apiserver"), dir.join("../mini-apiserver")];
    if let Some(p) = candidates.iter().find(|p| p.exists()) {
        return Ok(p.clone());
    }
    let Ok(cargo) = std::env::var("CARGO") else {
        bail!(
            "mini-apiserver not found next to {} (build it with `cargo build --release -p apiserver`, or pass --apiserver PATH)",
            exe.display()
        );
    };
    let release = dir.file_name().is_some_and(|n| n == "release");
    eprintln!("mini-apiserver not built yet: building it (release={release})");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd.args(["build", "-p", "apiserver", "--bin", "mini-apiserver"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build -p apiserver failed");
    }
    candidates
        .into_iter()
        .find(|p| p.exists())
        .context("mini-apiserver still missing after cargo build")
}
