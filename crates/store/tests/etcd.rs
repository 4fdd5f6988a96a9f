//! The conformance suite against the etcd backend, on a real etcd started per test on loopback.
//!
//! Needs /usr/bin/etcd (Debian's etcd-server; `STORE_TEST_ETCD` may name another binary);
//! without it every test prints a loud SKIPPED message and passes.

mod common;

use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Fixture;
use store::etcd::EtcdStore;
use store::{ListOptions, Store};
use tempfile::TempDir;

const ETCD: &str = "/usr/bin/etcd";
/// Longest wait for a started etcd to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running etcd, killed and its data removed when dropped (also on panic).
struct Etcd {
    child: Child,
    endpoint: String,
    dir: TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn etcd_binary() -> String {
    std::env::var("STORE_TEST_ETCD").unwrap_or_else(|_| ETCD.to_string())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

impl Etcd {
    /// Starts etcd on free loopback ports, or `None` (after a loud message) when not installed.
    async fn start() -> Option<Etcd> {
        let binary = etcd_binary();
        if !Path::new(&binary).exists() {
            eprintln!(
                "SKIPPED: etcd not installed ({binary} missing; apt-get install etcd-server)"
            );
            return None;
        }
        // A port picked as free can be taken before etcd binds it: try a few times.
        for attempt in 1..=3 {
            match Etcd::try_start().await {
                Ok(etcd) => return Some(etcd),
                Err(log) if attempt < 3 => eprintln!("etcd did not start, retrying: {log}"),
                Err(log) => panic!("etcd did not start: {log}"),
            }
        }
        None
    }

    async fn try_start() -> Result<Etcd, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let client = format!("http://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{}", free_port());
        let log_path = dir.path().join("etcd.log");
        let log = File::create(&log_path).expect("etcd log file");
        let child = Command::new(etcd_binary())
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .arg("--initial-cluster-state=new")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        let mut etcd = Etcd {
            child,
            endpoint: client,
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let connect = EtcdStore::connect(std::slice::from_ref(&etcd.endpoint), None);
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), connect).await {
                return Ok(etcd);
            }
            let exited = matches!(etcd.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(etcd.dir.path().join("etcd.log")).unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                return Err(tail);
            }
            // A bounded wait for a real external process to come up.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn store(&self, prefix: Option<&str>) -> EtcdStore {
        EtcdStore::connect(
            std::slice::from_ref(&self.endpoint),
            prefix.map(str::to_string),
        )
        .await
        .expect("connect to etcd")
    }
}

async fn setup() -> Option<Fixture> {
    let etcd = Etcd::start().await?;
    let store = etcd.store(None).await;
    Some(Fixture {
        store: Arc::new(store),
        guard: Box::new(etcd),
    })
}

conformance_tests!(setup);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_isolates_stores_sharing_one_etcd() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let run = async {
        let one = etcd.store(Some("/one")).await;
        let two = etcd.store(Some("/two")).await;
        let rev = one
            .create("/a", b"1".to_vec())
            .await
            .expect("create in one");
        assert_eq!(two.get("/a").await.expect("get in two"), None);
        two.create("/a", b"2".to_vec())
            .await
            .expect("create in two");
        let listed = one
            .list("/", ListOptions::default())
            .await
            .expect("list one");
        assert_eq!(listed.items.len(), 1);
        assert_eq!(listed.items[0].key, "/a");
        assert_eq!(listed.items[0].value, b"1");
        assert_eq!(listed.items[0].mod_revision, rev);
        let all = one
            .list("", ListOptions::default())
            .await
            .expect("list all of one");
        assert_eq!(all.items.len(), 1);
        let mut watch = two.watch("/", rev).await.expect("watch two");
        let event = common::conformance::next_event(&mut watch).await;
        assert_eq!(event.kv.key, "/a");
        assert_eq!(event.kv.value, b"2");
    };
    tokio::time::timeout(common::CASE_TIMEOUT, run)
        .await
        .expect("test timed out");
}
