//! A real etcd (Debian's etcd-server) on free loopback ports with its data in a temp dir,
//! killed and removed when dropped, also when the test panics. [`EtcdServer::start_tls`] runs
//! it as `cluster up` does: https client URL, client certificates required and signed by etcd's
//! own CA (kubeadm's layout, made by the pki crate in the temp dir), health on a plain metrics
//! URL.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Where Debian installs etcd.
pub const ETCD: &str = "/usr/bin/etcd";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running etcd.
pub struct EtcdServer {
    child: Child,
    endpoint: String,
    /// The port /health is served on over plain HTTP (the client port, or the metrics port
    /// in TLS mode).
    health_port: u16,
    /// The PKI directory in TLS mode.
    pki: Option<PathBuf>,
    dir: TempDir,
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl EtcdServer {
    /// Starts etcd, or returns None after reporting it missing (see [`crate::missing`]).
    pub fn start() -> Option<EtcdServer> {
        EtcdServer::start_mode(false)
    }

    /// Starts etcd serving clients over TLS only, requiring a client certificate signed by its
    /// CA (`--client-cert-auth`); the certificates are in [`Self::pki_dir`]. Peer URLs stay
    /// plain on loopback (one member: no peer traffic).
    pub fn start_tls() -> Option<EtcdServer> {
        EtcdServer::start_mode(true)
    }

    fn start_mode(tls: bool) -> Option<EtcdServer> {
        if !crate::have(ETCD) {
            crate::missing("etcd", "apt-get install etcd-server");
            return None;
        }
        let mut last = String::new();
        // A port picked as free can be taken before etcd binds it: try a few times.
        for _ in 0..3 {
            match EtcdServer::try_start(tls) {
                Ok(e) => return Some(e),
                Err(log) => last = log,
            }
        }
        panic!("etcd did not start: {last}");
    }

    fn try_start(tls: bool) -> Result<EtcdServer, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = crate::free_port();
        let scheme = if tls { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{port}");
        let peer = format!("http://127.0.0.1:{}", crate::free_port());
        let log = File::create(dir.path().join("etcd.log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(ETCD);
        let mut health_port = port;
        let mut pki_files = None;
        if tls {
            let pki_dir = dir.path().join("pki");
            make_pki(&pki_dir)?;
            health_port = crate::free_port();
            cmd.arg(format!(
                "--cert-file={}",
                pki_dir.join(pki::ETCD_SERVER_CERT).display()
            ))
            .arg(format!(
                "--key-file={}",
                pki_dir.join(pki::ETCD_SERVER_KEY).display()
            ))
            .arg(format!(
                "--trusted-ca-file={}",
                pki_dir.join(pki::ETCD_CA_CERT).display()
            ))
            .arg("--client-cert-auth=true")
            .arg(format!(
                "--listen-metrics-urls=http://127.0.0.1:{health_port}"
            ));
            pki_files = Some(pki_dir);
        }
        let child = cmd
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .arg("--initial-cluster-state=new")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning {ETCD}: {e}"))?;
        let mut etcd = EtcdServer {
            child,
            endpoint: client,
            health_port,
            pki: pki_files,
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if etcd.healthy() {
                return Ok(etcd);
            }
            let exited = matches!(etcd.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(etcd.dir.path().join("etcd.log")).unwrap_or_default();
                return Err(log.lines().rev().take(5).collect::<Vec<_>>().join(" | "));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn healthy(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.health_port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.contains("\"health\":\"true\"")
    }

    /// The client URL (`http://127.0.0.1:PORT`, `https://` in TLS mode).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// In TLS mode, the PKI directory: etcd's CA and serving certificate
    /// ([`pki::ETCD_CA_CERT`], ...), the apiserver's etcd client certificate
    /// ([`pki::APISERVER_ETCD_CLIENT_CERT`], signed by etcd's CA) and a cluster CA
    /// whose certificates (`admin.crt`, ...) etcd does not trust.
    pub fn pki_dir(&self) -> Option<&Path> {
        self.pki.as_deref()
    }
}

/// The cluster PKI and etcd's certificates in `dir`, as `cluster up` makes them.
fn make_pki(dir: &Path) -> Result<(), String> {
    let opts = pki::PkiOptions {
        cluster_domain: "cluster.local".into(),
        service_ip: std::net::IpAddr::from([10, 96, 0, 1]),
        apiserver_ips: vec![std::net::IpAddr::from([127, 0, 0, 1])],
        apiserver_names: vec![],
    };
    let cluster = pki::ClusterPki::ensure(dir, &opts).map_err(|e| e.to_string())?;
    cluster.ensure_etcd(&[]).map_err(|e| e.to_string())?;
    Ok(())
}
