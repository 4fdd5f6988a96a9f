//! A real etcd (Debian's etcd-server) on free loopback ports with its data in a temp dir,
//! killed and removed when dropped, also when the test panics.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
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
    port: u16,
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
        if !crate::have(ETCD) {
            crate::missing("etcd", "apt-get install etcd-server");
            return None;
        }
        let mut last = String::new();
        // A port picked as free can be taken before etcd binds it: try a few times.
        for _ in 0..3 {
            match EtcdServer::try_start() {
                Ok(e) => return Some(e),
                Err(log) => last = log,
            }
        }
        panic!("etcd did not start: {last}");
    }

    fn try_start() -> Result<EtcdServer, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = crate::free_port();
        let client = format!("http://127.0.0.1:{port}");
        let peer = format!("http://127.0.0.1:{}", crate::free_port());
        let log = File::create(dir.path().join("etcd.log")).map_err(|e| e.to_string())?;
        let child = Command::new(ETCD)
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
            port,
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
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
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

    /// The client URL (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}
