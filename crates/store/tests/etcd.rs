//! The conformance suite against the etcd backend, on a real etcd started per test on loopback.
//!
//! Needs /usr/bin/etcd (Debian's etcd-server);
//! without it every test prints a loud SKIPPED message, and fails in CI (testkit::missing).

mod common;

use std::sync::Arc;

use common::Fixture;
use store::etcd::EtcdStore;
use store::{ListOptions, Store};
use testkit::etcd::EtcdServer;

/// The etcd of one test: the shared launcher from testkit plus a way to open stores on it.
struct Etcd(EtcdServer);

impl Etcd {
    /// Starts etcd, or `None` after reporting it missing (a failure in CI).
    async fn start() -> Option<Etcd> {
        tokio::task::spawn_blocking(EtcdServer::start)
            .await
            .expect("start etcd")
            .map(Etcd)
    }

    async fn store(&self, prefix: Option<&str>) -> EtcdStore {
        EtcdStore::connect(&[self.0.endpoint().to_string()], prefix.map(str::to_string))
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
