//! Real apiservers as child processes on free loopback ports, killed when dropped: plain HTTP
//! with everything allowed, or the default way (TLS with its own PKI, authentication, Node and
//! RBAC authorization).

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

/// How a `mini-apiserver` under test is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `--insecure-plain-http --authorization-mode AlwaysAllow`: no TLS, no authentication.
    Plain,
    /// The default: TLS with the cluster PKI it makes in `<temp dir>/pki`, client certificates
    /// and tokens authenticated, `--authorization-mode Node,RBAC`.
    Tls,
}

impl Security {
    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Security::Plain => "plain",
            Security::Tls => "tls+rbac",
        }
    }
}

/// A running `mini-apiserver`.
pub struct ApiServerProcess {
    child: Child,
    base: String,
    dir: TempDir,
    security: Security,
}

impl Drop for ApiServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ApiServerProcess {
    /// Starts `binary` on a free loopback port over `store`, plain, and waits until /healthz
    /// answers.
    pub fn start(binary: &Path, store: &StoreArg) -> anyhow::Result<ApiServerProcess> {
        ApiServerProcess::start_with(binary, store, Security::Plain)
    }

    /// Starts `binary` on a free loopback port over `store`, secured as `security`, and waits
    /// until /healthz answers.
    pub fn start_with(
        binary: &Path,
        store: &StoreArg,
        security: Security,
    ) -> anyhow::Result<ApiServerProcess> {
        let mut last = None;
        // A port picked as free can be taken before the server binds it: try a few times.
        for _ in 0..3 {
            match ApiServerProcess::try_start(binary, store, security) {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn try_start(
        binary: &Path,
        store: &StoreArg,
        security: Security,
    ) -> anyhow::Result<ApiServerProcess> {
        let dir = tempfile::Builder::new()
            .prefix("bench-apiserver-")
            .tempdir()?;
        let port = testkit::free_port();
        let log_path = dir.path().join("apiserver.log");
        let log = File::create(&log_path)?;
        let mut cmd = Command::new(binary);
        match security {
            Security::Plain => {
                cmd.args([
                    "--insecure-plain-http",
                    "--authorization-mode",
                    "AlwaysAllow",
                ]);
            }
            Security::Tls => {
                cmd.arg(format!("--cert-dir={}", dir.path().join("pki").display()));
            }
        }
        // No ServiceAccount controller makes the `default` ServiceAccounts pods need (as the
        // other binary-spawning harnesses); the same admission chain in both modes.
        cmd.args(["--disable-admission-plugins", "ServiceAccount"]);
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
        let scheme = match security {
            Security::Plain => "http",
            Security::Tls => "https",
        };
        let mut p = ApiServerProcess {
            child,
            base: format!("{scheme}://127.0.0.1:{port}"),
            dir,
            security,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if healthy(port, security) {
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

    /// How it is secured.
    pub fn security(&self) -> Security {
        self.security
    }

    /// The cluster PKI it made (secured servers only).
    pub fn pki(&self) -> Option<pki::ClusterPki> {
        match self.security {
            Security::Plain => None,
            Security::Tls => pki::ClusterPki::open(&self.dir.path().join("pki")).ok(),
        }
    }
}

/// Whether `GET /healthz` answers 200 (anonymously: over TLS without a client certificate,
/// trusting any server certificate, since the PKI may not exist yet when this is first asked).
fn healthy(port: u16, security: Security) -> bool {
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
    let req = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    let mut out = String::new();
    match security {
        Security::Plain => {
            let mut s = tcp;
            if s.write_all(req.as_bytes()).is_err() {
                return false;
            }
            let _ = s.read_to_string(&mut out);
        }
        Security::Tls => {
            let Ok(config) = daemon::tls::client_config(None, None) else {
                return false;
            };
            let name = rustls::pki_types::ServerName::from(std::net::Ipv4Addr::LOCALHOST);
            let Ok(conn) = rustls::ClientConnection::new(config, name) else {
                return false;
            };
            let mut s = rustls::StreamOwned::new(conn, tcp);
            if s.write_all(req.as_bytes()).is_err() {
                return false;
            }
            // The server may close without close_notify: keep what was read.
            let _ = s.read_to_string(&mut out);
        }
    }
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
