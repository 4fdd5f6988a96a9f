//! The store conformance suite: the same cases, run against every backend.
//!
//! Cases never assume absolute revisions (a fresh etcd starts at 1, a fresh embedded store at 0),
//! only their order and the relations between them.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use store::{
    EventKind, KeyValue, ListOptions, Revision, Store, StoreError, WatchEvent, WatchStream,
};

/// Longest wait for one watch event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The next event of a watch; panics on an error, the end of the stream or a timeout.
pub async fn next_event(watch: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(EVENT_TIMEOUT, watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
    }
}

/// Asserts that watching `prefix` after `after` fails with `Compacted`, either at once or as the
/// stream's first item.
pub async fn assert_watch_compacted(store: &dyn Store, prefix: &str, after: Revision) {
    match store.watch(prefix, after).await {
        Err(StoreError::Compacted { .. }) => {}
        Err(e) => panic!("watch after {after}: expected compacted, got {e}"),
        Ok(mut watch) => match tokio::time::timeout(EVENT_TIMEOUT, watch.next()).await {
            Ok(Some(Err(StoreError::Compacted { .. }))) => {}
            Ok(other) => panic!("watch after {after}: expected compacted, got {other:?}"),
            Err(_) => panic!("watch after {after}: no compacted error within {EVENT_TIMEOUT:?}"),
        },
    }
}

fn keys(items: &[KeyValue]) -> Vec<&str> {
    items.iter().map(|kv| kv.key.as_str()).collect()
}

pub async fn create_get_already_exists(store: Arc<dyn Store>) {
    assert_eq!(store.get("/c/a").await.expect("get missing"), None);
    let before = store.current_revision().await.expect("current revision");
    assert!(before >= 1, "a fresh store is at revision 1, never 0");
    let empty = store.list("/", ListOptions::default()).await.expect("list");
    assert!(empty.items.is_empty());
    assert_eq!(empty.revision, before);
    let rev = store.create("/c/a", b"one".to_vec()).await.expect("create");
    assert!(rev > before, "create revision {rev} not after {before}");
    let kv = store.get("/c/a").await.expect("get").expect("created key");
    assert_eq!(kv.key, "/c/a");
    assert_eq!(kv.value, b"one");
    assert_eq!(kv.create_revision, rev);
    assert_eq!(kv.mod_revision, rev);
    match store.create("/c/a", b"two".to_vec()).await {
        Err(StoreError::AlreadyExists { key }) => assert_eq!(key, "/c/a"),
        other => panic!("second create: expected already exists, got {other:?}"),
    }
    assert_eq!(
        store.get("/c/a").await.expect("get").expect("key").value,
        b"one"
    );
    assert_eq!(store.current_revision().await.expect("current"), rev);
}

pub async fn update_compare_and_swap(store: Arc<dyn Store>) {
    let r1 = store.create("/u/a", b"v1".to_vec()).await.expect("create");
    let r2 = store
        .update("/u/a", b"v2".to_vec(), r1)
        .await
        .expect("update");
    assert!(r2 > r1);
    let kv = store.get("/u/a").await.expect("get").expect("key");
    assert_eq!(
        (kv.value.as_slice(), kv.create_revision, kv.mod_revision),
        (&b"v2"[..], r1, r2)
    );
    match store.update("/u/a", b"v3".to_vec(), r1).await {
        Err(StoreError::Conflict {
            key,
            expected,
            current,
        }) => {
            assert_eq!((key.as_str(), expected), ("/u/a", r1));
            let current = current.expect("conflict carries the current value");
            assert_eq!(current.value, b"v2");
            assert_eq!(current.mod_revision, r2);
        }
        other => panic!("stale update: expected conflict, got {other:?}"),
    }
    match store.update("/u/missing", b"x".to_vec(), r2).await {
        Err(StoreError::NotFound { key }) => assert_eq!(key, "/u/missing"),
        other => panic!("update of a missing key: expected not found, got {other:?}"),
    }
    // An expected revision of 0 must not create the key.
    assert!(matches!(
        store.update("/u/missing", b"x".to_vec(), 0).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.get("/u/missing").await.expect("get"), None);
    assert_eq!(store.current_revision().await.expect("current"), r2);
}

pub async fn delete_with_and_without_precondition(store: Arc<dyn Store>) {
    let r1 = store.create("/d/a", b"a".to_vec()).await.expect("create a");
    let rb = store.create("/d/b", b"b".to_vec()).await.expect("create b");
    let deleted = store.delete("/d/a", None).await.expect("delete a");
    assert_eq!(deleted.key, "/d/a");
    assert_eq!(deleted.value, b"a");
    assert_eq!(deleted.create_revision, r1);
    assert!(
        deleted.mod_revision > rb,
        "delete revision is a new revision"
    );
    assert_eq!(
        store.current_revision().await.expect("current"),
        deleted.mod_revision
    );
    assert_eq!(store.get("/d/a").await.expect("get"), None);
    match store.delete("/d/a", None).await {
        Err(StoreError::NotFound { key }) => assert_eq!(key, "/d/a"),
        other => panic!("delete of a missing key: expected not found, got {other:?}"),
    }
    match store.delete("/d/b", Some(rb + 100)).await {
        Err(StoreError::Conflict {
            expected, current, ..
        }) => {
            assert_eq!(expected, rb + 100);
            assert_eq!(current.expect("current value").mod_revision, rb);
        }
        other => panic!("delete with a stale precondition: expected conflict, got {other:?}"),
    }
    assert!(store.get("/d/b").await.expect("get").is_some());
    let deleted = store.delete("/d/b", Some(rb)).await.expect("delete b");
    assert_eq!(deleted.value, b"b");
    assert!(matches!(
        store.delete("/d/b", Some(rb)).await,
        Err(StoreError::NotFound { .. })
    ));
    // A deleted key can be created again, with a new create revision.
    let again = store
        .create("/d/a", b"again".to_vec())
        .await
        .expect("re-create");
    let kv = store.get("/d/a").await.expect("get").expect("key");
    assert_eq!((kv.create_revision, kv.mod_revision), (again, again));
}

pub async fn list_prefix_is_exact(store: Arc<dyn Store>) {
    for key in [
        "/a/b",
        "/a/b/1",
        "/a/b/2",
        "/a/bc/1",
        "/a/c/1",
        "/p%/x",
        "/p_/y",
        "/pa/z",
        "/q/\u{e9}",
    ] {
        store
            .create(key, key.as_bytes().to_vec())
            .await
            .expect("create");
    }
    let list = |prefix: &'static str| {
        let store = store.clone();
        async move {
            let result = store
                .list(prefix, ListOptions::default())
                .await
                .expect("list");
            result
                .items
                .into_iter()
                .map(|kv| kv.key)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("/a/b/").await, ["/a/b/1", "/a/b/2"]);
    assert_eq!(list("/a/b").await, ["/a/b", "/a/b/1", "/a/b/2", "/a/bc/1"]);
    assert_eq!(list("/p%/").await, ["/p%/x"]);
    assert_eq!(list("/p_").await, ["/p_/y"]);
    assert_eq!(list("/p").await, ["/p%/x", "/p_/y", "/pa/z"]);
    assert_eq!(list("/q/").await, ["/q/\u{e9}"]);
    assert!(list("/nothing/").await.is_empty());
    assert_eq!(list("").await.len(), 9);
    let all = store.list("/", ListOptions::default()).await.expect("list");
    assert_eq!(all.items.len(), 9);
    assert!(!all.more);
    assert_eq!(
        all.revision,
        store.current_revision().await.expect("current")
    );
    let values_match = all.items.iter().all(|kv| kv.value == kv.key.as_bytes());
    assert!(values_match, "values come with their keys");
}

pub async fn list_pages_with_limit_and_start_after(store: Arc<dyn Store>) {
    let mut expected = Vec::new();
    for i in 0..10 {
        let key = format!("/page/{i:02}");
        store.create(&key, vec![i]).await.expect("create");
        expected.push(key);
    }
    store
        .create("/pagex/1", vec![])
        .await
        .expect("create outside");
    store
        .create("/pag/1", vec![])
        .await
        .expect("create outside");

    let first = store
        .list(
            "/page/",
            ListOptions {
                limit: Some(3),
                ..Default::default()
            },
        )
        .await
        .expect("first page");
    assert_eq!(keys(&first.items), ["/page/00", "/page/01", "/page/02"]);
    assert!(first.more);
    let pinned = first.revision;
    // A write between pages is not seen by pages read at the first page's revision.
    store
        .create("/page/05a", vec![])
        .await
        .expect("create between pages");
    let mut seen: Vec<String> = first.items.into_iter().map(|kv| kv.key).collect();
    let mut pages = 1;
    loop {
        let page = store
            .list(
                "/page/",
                ListOptions {
                    revision: Some(pinned),
                    limit: Some(3),
                    start_after: seen.last().cloned(),
                },
            )
            .await
            .expect("next page");
        assert_eq!(page.revision, pinned);
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|kv| kv.key));
        if !page.more {
            break;
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, 4);

    let exact = store
        .list(
            "/page/",
            ListOptions {
                limit: Some(11),
                ..Default::default()
            },
        )
        .await
        .expect("list with an exact limit");
    assert_eq!(exact.items.len(), 11);
    assert!(
        !exact.more,
        "a limit equal to the count leaves nothing more"
    );
    let short = store
        .list(
            "/page/",
            ListOptions {
                limit: Some(10),
                ..Default::default()
            },
        )
        .await
        .expect("list with a short limit");
    assert!(short.more);
    let tail = store
        .list(
            "/page/",
            ListOptions {
                start_after: Some("/page/08".to_string()),
                ..Default::default()
            },
        )
        .await
        .expect("list after a key");
    assert_eq!(keys(&tail.items), ["/page/09"]);
    let beyond = store
        .list(
            "/page/",
            ListOptions {
                start_after: Some("/page/99".to_string()),
                ..Default::default()
            },
        )
        .await
        .expect("list after the last key");
    assert!(beyond.items.is_empty() && !beyond.more);
    let past = store
        .list(
            "/page/",
            ListOptions {
                start_after: Some("/zzz".to_string()),
                revision: Some(pinned),
                ..Default::default()
            },
        )
        .await
        .expect("list after a key past the prefix");
    assert!(past.items.is_empty() && !past.more);
    assert_eq!(past.revision, pinned);
    let before = store
        .list(
            "/page/",
            ListOptions {
                start_after: Some("/a".to_string()),
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .expect("list after a key before the prefix");
    assert_eq!(keys(&before.items), ["/page/00"]);
}

pub async fn list_at_an_older_revision(store: Arc<dyn Store>) {
    let ra = store
        .create("/o/a", b"a1".to_vec())
        .await
        .expect("create a");
    let rb = store
        .create("/o/b", b"b1".to_vec())
        .await
        .expect("create b");
    let ra2 = store
        .update("/o/a", b"a2".to_vec(), ra)
        .await
        .expect("update a");
    store.delete("/o/b", None).await.expect("delete b");
    let rc = store
        .create("/o/c", b"c1".to_vec())
        .await
        .expect("create c");

    let old = store
        .list(
            "/o/",
            ListOptions {
                revision: Some(rb),
                ..Default::default()
            },
        )
        .await
        .expect("list at an older revision");
    assert_eq!(old.revision, rb);
    assert_eq!(keys(&old.items), ["/o/a", "/o/b"]);
    assert_eq!(old.items[0].value, b"a1");
    assert_eq!(old.items[0].mod_revision, ra);
    assert_eq!(old.items[1].create_revision, rb);

    let at_update = store
        .list(
            "/o/",
            ListOptions {
                revision: Some(ra2),
                ..Default::default()
            },
        )
        .await
        .expect("list at the update");
    assert_eq!(keys(&at_update.items), ["/o/a", "/o/b"]);
    assert_eq!(at_update.items[0].value, b"a2");

    let paged = store
        .list(
            "/o/",
            ListOptions {
                revision: Some(rb),
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .expect("paged list at an older revision");
    assert_eq!(keys(&paged.items), ["/o/a"]);
    assert!(paged.more);

    let now = store
        .list("/o/", ListOptions::default())
        .await
        .expect("list");
    assert_eq!(now.revision, rc);
    assert_eq!(keys(&now.items), ["/o/a", "/o/c"]);
    assert_eq!(now.items[0].value, b"a2");

    let at_current = store
        .list(
            "/o/",
            ListOptions {
                revision: Some(rc),
                ..Default::default()
            },
        )
        .await
        .expect("list at the current revision");
    assert_eq!(at_current, now);

    match store
        .list(
            "/o/",
            ListOptions {
                revision: Some(rc + 1000),
                ..Default::default()
            },
        )
        .await
    {
        Err(StoreError::FutureRevision { requested, .. }) => assert_eq!(requested, rc + 1000),
        other => panic!("list in the future: expected future revision, got {other:?}"),
    }
}

pub async fn list_and_watch_at_a_compacted_revision(store: Arc<dyn Store>) {
    assert_eq!(store.compacted_revision().await.expect("compacted"), 0);
    let r1 = store
        .create("/k/a", b"a1".to_vec())
        .await
        .expect("create a");
    let r2 = store
        .update("/k/a", b"a2".to_vec(), r1)
        .await
        .expect("update a");
    let r3 = store
        .create("/k/b", b"b1".to_vec())
        .await
        .expect("create b");
    let rx = store.create("/k/x", b"x".to_vec()).await.expect("create x");
    let rdx = store
        .delete("/k/x", None)
        .await
        .expect("delete x")
        .mod_revision;
    let r4 = store
        .update("/k/a", b"a3".to_vec(), r2)
        .await
        .expect("update a");
    assert!(rx < rdx && rdx < r4);

    store.compact(rdx).await.expect("compact");
    assert_eq!(store.compacted_revision().await.expect("compacted"), rdx);

    match store
        .list(
            "/k/",
            ListOptions {
                revision: Some(r3),
                ..Default::default()
            },
        )
        .await
    {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (r3, rdx)),
        other => panic!("list below the compacted revision: expected compacted, got {other:?}"),
    }
    let at = store
        .list(
            "/k/",
            ListOptions {
                revision: Some(rdx),
                ..Default::default()
            },
        )
        .await
        .expect("list at the compacted revision");
    assert_eq!(keys(&at.items), ["/k/a", "/k/b"]);
    assert_eq!(at.items[0].value, b"a2");
    assert_eq!(at.items[0].mod_revision, r2);
    let now = store
        .list("/k/", ListOptions::default())
        .await
        .expect("list");
    assert_eq!(keys(&now.items), ["/k/a", "/k/b"]);
    assert_eq!(now.items[0].value, b"a3");

    assert_watch_compacted(store.as_ref(), "/k/", r3).await;
    assert_watch_compacted(store.as_ref(), "/k/", r1).await;
    // A revision is available (to list at, or to watch after) exactly when it is not below the
    // compacted revision.
    assert_watch_compacted(store.as_ref(), "/k/", rdx - 1).await;
    let mut watch = store.watch("/k/", rdx).await.expect("watch");
    let event = next_event(&mut watch).await;
    assert_eq!((event.kind, event.revision), (EventKind::Put, r4));
    let prev = event.prev.expect("update carries prev");
    assert_eq!((prev.value.as_slice(), prev.mod_revision), (&b"a2"[..], r2));

    // Compacting at or below the compacted revision does nothing; beyond current fails.
    store.compact(r2).await.expect("compact below");
    store.compact(rdx).await.expect("compact again");
    assert_eq!(store.compacted_revision().await.expect("compacted"), rdx);
    match store.compact(r4 + 100).await {
        Err(StoreError::FutureRevision { requested, .. }) => assert_eq!(requested, r4 + 100),
        other => panic!("compact in the future: expected future revision, got {other:?}"),
    }
    // Compacting at the current revision keeps the current state.
    store.compact(r4).await.expect("compact at current");
    assert_eq!(store.compacted_revision().await.expect("compacted"), r4);
    let now = store
        .list("/k/", ListOptions::default())
        .await
        .expect("list");
    assert_eq!(keys(&now.items), ["/k/a", "/k/b"]);
    let r5 = store
        .create("/k/c", vec![])
        .await
        .expect("create after compaction");
    assert!(r5 > r4);
}

pub async fn watch_from_zero_sees_only_new_events(store: Arc<dyn Store>) {
    store.create("/w/a/old", vec![1]).await.expect("create old");
    let mut watch = store.watch("/w/a/", 0).await.expect("watch");
    store
        .create("/w/ab/1", vec![])
        .await
        .expect("create outside");
    store
        .create("/w/b/1", vec![])
        .await
        .expect("create outside");
    let rev = store.create("/w/a/new", vec![2]).await.expect("create new");
    let event = next_event(&mut watch).await;
    assert_eq!(event.kind, EventKind::Put);
    assert_eq!(event.revision, rev);
    assert_eq!(event.kv.key, "/w/a/new");
    assert_eq!(event.kv.value, vec![2]);
    assert_eq!(event.kv.mod_revision, rev);
    assert_eq!(event.prev, None);
}

pub async fn watch_replays_then_continues_live(store: Arc<dyn Store>) {
    let prefix = "/r/";
    let mut revisions = Vec::new();
    for i in 0..20 {
        let rev = store
            .create(&format!("{prefix}{i:03}"), vec![i as u8])
            .await
            .expect("create");
        revisions.push(rev);
    }
    let after = revisions[9];
    // Writes keep coming while the watch starts.
    let writer = tokio::spawn({
        let store = store.clone();
        async move {
            let mut revisions = Vec::new();
            for i in 20..80 {
                let key = format!("{prefix}{i:03}");
                revisions.push(store.create(&key, vec![i as u8]).await.expect("create"));
                if i % 3 == 0 {
                    let rev = *revisions.last().expect("a revision");
                    revisions.push(store.update(&key, vec![0], rev).await.expect("update"));
                }
                tokio::task::yield_now().await;
            }
            revisions
        }
    });
    let mut watch = store.watch(prefix, after).await.expect("watch");
    revisions.extend(writer.await.expect("writer task"));
    let expected: Vec<Revision> = revisions.into_iter().filter(|&r| r > after).collect();
    let mut got = Vec::with_capacity(expected.len());
    while got.len() < expected.len() {
        let event = next_event(&mut watch).await;
        assert!(event.kv.key.starts_with(prefix));
        assert_eq!(event.kv.mod_revision, event.revision);
        got.push(event.revision);
    }
    assert_eq!(got, expected, "events in order, no gap, no duplicate");
    let last = store
        .create(&format!("{prefix}zzz"), vec![])
        .await
        .expect("create last");
    assert_eq!(next_event(&mut watch).await.revision, last);
}

pub async fn watch_delete_carries_last_value(store: Arc<dyn Store>) {
    let r1 = store
        .create("/del/a", b"v1".to_vec())
        .await
        .expect("create");
    let r2 = store
        .update("/del/a", b"v2".to_vec(), r1)
        .await
        .expect("update");
    let mut live = store.watch("/del/", 0).await.expect("watch live");
    let deleted = store.delete("/del/a", Some(r2)).await.expect("delete");
    let r3 = deleted.mod_revision;
    let mut replay = store.watch("/del/", r2).await.expect("watch replay");
    for watch in [&mut live, &mut replay] {
        let event = next_event(watch).await;
        assert_eq!(event.kind, EventKind::Delete);
        assert_eq!(event.revision, r3);
        assert_eq!(event.kv.key, "/del/a");
        assert_eq!(event.kv.value, b"v2");
        assert_eq!(event.kv.mod_revision, r3);
        assert_eq!(event.kv.create_revision, r1);
        let prev = event.prev.expect("delete carries prev");
        assert_eq!((prev.value.as_slice(), prev.mod_revision), (&b"v2"[..], r2));
    }
}

pub async fn watch_update_carries_prev(store: Arc<dyn Store>) {
    // Watching after revision 0 means "from now on": make sure `before` is a real revision.
    let before = store
        .create("/unrelated", vec![])
        .await
        .expect("create unrelated");
    let r1 = store
        .create("/prev/a", b"v1".to_vec())
        .await
        .expect("create");
    let r2 = store
        .update("/prev/a", b"v2".to_vec(), r1)
        .await
        .expect("update");
    store.delete("/prev/a", None).await.expect("delete");
    let r4 = store
        .create("/prev/a", b"v3".to_vec())
        .await
        .expect("re-create");
    let mut watch = store.watch("/prev/", before).await.expect("watch");
    let created = next_event(&mut watch).await;
    assert_eq!(
        (created.kind, created.revision, created.prev),
        (EventKind::Put, r1, None)
    );
    let updated = next_event(&mut watch).await;
    assert_eq!((updated.kind, updated.revision), (EventKind::Put, r2));
    assert_eq!(updated.kv.create_revision, r1);
    assert_eq!(updated.kv.value, b"v2");
    let prev = updated.prev.expect("update carries prev");
    assert_eq!(prev.value, b"v1");
    assert_eq!(prev.mod_revision, r1);
    let deleted = next_event(&mut watch).await;
    assert_eq!(deleted.kind, EventKind::Delete);
    let recreated = next_event(&mut watch).await;
    assert_eq!((recreated.kind, recreated.revision), (EventKind::Put, r4));
    assert_eq!(recreated.kv.create_revision, r4);
    assert_eq!(recreated.prev, None, "a re-create has no prev");
}

pub async fn revisions_strictly_increase_across_keys(store: Arc<dyn Store>) {
    let mut last = store.current_revision().await.expect("current");
    for i in 0..30 {
        let key = format!("/inc/{}", i % 4);
        let rev = match store.get(&key).await.expect("get") {
            None => store.create(&key, vec![i]).await.expect("create"),
            Some(_) if i % 3 == 0 => store.delete(&key, None).await.expect("delete").mod_revision,
            Some(kv) => store
                .update(&key, vec![i], kv.mod_revision)
                .await
                .expect("update"),
        };
        assert!(rev > last, "revision {rev} after {last}");
        last = rev;
    }
    assert_eq!(store.current_revision().await.expect("current"), last);
}

pub async fn concurrent_creates_one_wins(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.create("/race/key", vec![i]).await
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("create task") {
            Ok(rev) => winners.push(rev),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => panic!("concurrent create: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one create wins");
    let kv = store.get("/race/key").await.expect("get").expect("key");
    assert_eq!(kv.mod_revision, winners[0]);
}

pub async fn concurrent_compare_and_swap_loses_nothing(store: Arc<dyn Store>) {
    store
        .create("/cas/counter", b"0".to_vec())
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..10 {
                let mut kv = store.get("/cas/counter").await.expect("get").expect("key");
                loop {
                    let n: u64 = String::from_utf8_lossy(&kv.value).parse().expect("number");
                    let value = (n + 1).to_string().into_bytes();
                    match store.update("/cas/counter", value, kv.mod_revision).await {
                        Ok(_) => break,
                        Err(StoreError::Conflict { current, .. }) => {
                            conflicts += 1;
                            assert!(conflicts < 1000, "too many conflicts");
                            kv = *current.expect("conflict carries the current value");
                        }
                        Err(e) => panic!("update: {e}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("increment task");
    }
    let kv = store.get("/cas/counter").await.expect("get").expect("key");
    assert_eq!(kv.value, b"40");
}
