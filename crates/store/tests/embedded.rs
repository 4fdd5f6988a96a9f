//! The conformance suite and durability tests against the embedded SQLite backend.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::conformance::{assert_watch_compacted, next_event};
use common::Fixture;
use futures::StreamExt;
use store::embedded::{EmbeddedOptions, EmbeddedStore};
use store::{EventKind, ListOptions, Store, StoreError};

async fn setup() -> Option<Fixture> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(&dir.path().join("store.db")).expect("open store");
    Some(Fixture {
        store: Arc::new(store),
        guard: Box::new(dir),
    })
}

conformance_tests!(setup);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_data_revisions_and_compaction() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/dir/store.db");
    let (before, compacted, old_revision, old_list) = {
        let store = EmbeddedStore::open(&path).expect("open");
        let ra = store
            .create("/x/a", b"a1".to_vec())
            .await
            .expect("create a");
        let rb = store
            .create("/x/b", b"b1".to_vec())
            .await
            .expect("create b");
        store
            .update("/x/a", b"a2".to_vec(), ra)
            .await
            .expect("update a");
        store.delete("/x/b", Some(rb)).await.expect("delete b");
        store
            .create("/x/c", b"c1".to_vec())
            .await
            .expect("create c");
        store.compact(ra + 1).await.expect("compact");
        let old = store
            .list(
                "/x/",
                ListOptions {
                    revision: Some(rb),
                    ..Default::default()
                },
            )
            .await
            .expect("old list");
        let now = store
            .list("/x/", ListOptions::default())
            .await
            .expect("list");
        (now, ra + 1, rb, old)
    };
    let store = EmbeddedStore::open(&path).expect("reopen");
    let after = store
        .list("/x/", ListOptions::default())
        .await
        .expect("list");
    assert_eq!(after, before);
    assert_eq!(
        store.current_revision().await.expect("current"),
        before.revision
    );
    assert_eq!(
        store.compacted_revision().await.expect("compacted"),
        compacted
    );
    let old = store
        .list(
            "/x/",
            ListOptions {
                revision: Some(old_revision),
                ..Default::default()
            },
        )
        .await
        .expect("old list after reopen");
    assert_eq!(old, old_list);
    assert!(matches!(
        store
            .list(
                "/x/",
                ListOptions {
                    revision: Some(compacted - 1),
                    ..Default::default()
                },
            )
            .await,
        Err(StoreError::Compacted { .. })
    ));
    // The log survives too: a watch replays history written before the restart.
    let mut watch = store.watch("/x/", old_revision).await.expect("watch");
    let event = next_event(&mut watch).await;
    assert_eq!(
        (event.kind, event.revision),
        (EventKind::Put, old_revision + 1)
    );
    let rev = store
        .create("/x/d", vec![])
        .await
        .expect("create after reopen");
    assert_eq!(rev, before.revision + 1, "the revision counter continues");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_catches_up_from_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = EmbeddedOptions { watch_buffer: 4 };
    let store = EmbeddedStore::open_with_options(&dir.path().join("s.db"), options).expect("open");
    let mut watch = store.watch("/lag/", 0).await.expect("watch");
    let mut revisions = Vec::new();
    // Far more writes than the buffer holds, while the watcher does not read.
    for i in 0..50u8 {
        revisions.push(
            store
                .create(&format!("/lag/{i:02}"), vec![i])
                .await
                .expect("create"),
        );
        store
            .create(&format!("/other/{i:02}"), vec![i])
            .await
            .expect("create other");
    }
    let mut got = Vec::new();
    while got.len() < revisions.len() {
        let event = next_event(&mut watch).await;
        got.push(event.revision);
    }
    assert_eq!(got, revisions);
    let live = store
        .create("/lag/live", vec![])
        .await
        .expect("create live");
    assert_eq!(next_event(&mut watch).await.revision, live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_past_compaction_gets_compacted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = EmbeddedOptions { watch_buffer: 2 };
    let store = EmbeddedStore::open_with_options(&dir.path().join("s.db"), options).expect("open");
    let mut watch = store.watch("/lag/", 0).await.expect("watch");
    for i in 0..10u8 {
        store
            .create(&format!("/lag/{i}"), vec![i])
            .await
            .expect("create");
    }
    let kept = store.compact_keeping(2).await.expect("compact");
    assert_eq!(kept, store.current_revision().await.expect("current") - 2);
    match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
        Ok(Some(Err(StoreError::Compacted { compacted, .. }))) => assert_eq!(compacted, kept),
        other => panic!("expected compacted, got {other:?}"),
    }
    assert_watch_compacted(&store, "/lag/", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_ends_its_watches() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(&dir.path().join("s.db")).expect("open");
    let mut watch = store.watch("/", 0).await.expect("watch");
    drop(store);
    match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
        Ok(Some(Err(StoreError::Closed))) | Ok(None) => {}
        other => panic!("expected the watch to end, got {other:?}"),
    }
}

/// Environment variable that turns [`kill9_child_writer`] into the writer of the kill -9 test.
const KILL9_CHILD_ENV: &str = "STORE_KILL9_CHILD_PATH";
/// Acknowledged writes the parent waits for before killing the child.
const KILL9_ACKS: usize = 300;

/// The child side of [`kill9_keeps_every_acknowledged_write`]; does nothing in a normal run.
#[test]
fn kill9_child_writer() {
    let Ok(path) = std::env::var(KILL9_CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = Arc::new(EmbeddedStore::open(Path::new(&path)).expect("open"));
        let mut writers = Vec::new();
        for writer in 0..4 {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                // Bounded: the parent kills this process long before the end.
                for i in 0..20_000 {
                    let key = format!("/kill/{writer}/{i:05}");
                    let rev = store
                        .create(&key, key.as_bytes().to_vec())
                        .await
                        .expect("create");
                    println!("ACK {key} {rev}");
                }
            }));
        }
        for writer in writers {
            writer.await.expect("writer");
        }
    });
}

#[test]
fn kill9_keeps_every_acknowledged_write() {
    if std::env::var(KILL9_CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kill.db");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "kill9_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL9_CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child writer");
    let stdout = child.stdout.take().expect("child stdout");
    let (lines, acks) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(ack) = line.strip_prefix("ACK ") {
                let (key, rev) = ack.split_once(' ').expect("ack line");
                let rev: i64 = rev.parse().expect("ack revision");
                if lines.send((key.to_string(), rev)).is_err() {
                    break;
                }
            }
        }
    });
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < KILL9_ACKS {
        let left = deadline.saturating_duration_since(Instant::now());
        match acks.recv_timeout(left) {
            Ok(ack) => acked.push(ack),
            Err(_) => break,
        }
    }
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    reader.join().expect("reader thread");
    acked.extend(acks.try_iter());
    assert!(
        acked.len() >= KILL9_ACKS,
        "the child acknowledged only {} writes",
        acked.len()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = EmbeddedStore::open(&path).expect("reopen after kill -9");
        let current = store.current_revision().await.expect("current");
        for (key, rev) in &acked {
            let kv = store
                .get(key)
                .await
                .expect("get")
                .unwrap_or_else(|| panic!("acknowledged key {key} lost"));
            assert_eq!(kv.mod_revision, *rev, "revision of {key}");
            assert!(current >= *rev);
        }
        let all = store
            .list("/kill/", ListOptions::default())
            .await
            .expect("list");
        assert!(all.items.len() >= acked.len());
        let rev = store
            .create("/after", vec![])
            .await
            .expect("write after reopen");
        assert_eq!(rev, current + 1);
    });
}
