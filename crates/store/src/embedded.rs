//! The embedded backend: one durable SQLite file with a change log that watches tail.
//!
//! Layout (like k3s' kine): a `log` table holds one row per revision (key, put or delete, value,
//! create revision, revision of the key's previous version); a `kv` table holds the current value
//! of every live key for fast current reads; a `meta` table holds the compacted revision. A write
//! inserts its log row and updates `kv` in one SQLite transaction, so the current revision
//! (`MAX(log.revision)`) and the data always agree, and survive restarts.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a write is acknowledged only after its
//! commit is fsynced; every acknowledged write survives `kill -9` and power loss.
//!
//! Concurrency: one writer thread owns the write connection and serializes all writes. It takes
//! every request queued at that moment into one transaction (group commit: one fsync for many
//! writes), then publishes the resulting events in revision order on an in-process broadcast
//! channel, then answers the callers. Reads run on a small pool of read connections inside
//! `spawn_blocking`, each in one read transaction (a consistent snapshot).
//!
//! Watches subscribe to the broadcast first, then read the log for revisions after the requested
//! one (catch-up), then take live events, skipping revisions already delivered: no gap and no
//! duplicate. A watcher that falls behind the broadcast buffer (it lagged) does not slow writers:
//! it re-reads the missed revisions from the log and carries on. Only if the log was compacted
//! past the watcher's position meanwhile does the stream yield [`StoreError::Compacted`] and end.
//!
//! Open a store file once, in one process: revisions stay correct if it is opened twice (each
//! write transaction reads the counter), but watches only see writes made through their own
//! handle. Share one `EmbeddedStore` (in an `Arc`) instead.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, oneshot};

use crate::{
    EventKind, KeyValue, ListOptions, ListResult, Revision, Store, StoreError, WatchEvent,
    WatchStream,
};

/// Default number of events the in-process watch broadcast buffers per watcher.
pub const DEFAULT_WATCH_BUFFER: usize = 4096;
/// Most write requests committed together in one transaction.
const MAX_BATCH: usize = 256;
/// Log rows read per catch-up query of a watch.
const CATCH_UP_BATCH: usize = 512;
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;
/// How long SQLite waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    revision        INTEGER PRIMARY KEY,
    key             BLOB NOT NULL,
    deleted         INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER NOT NULL,
    value           BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_revision ON log (key, revision);
CREATE TABLE IF NOT EXISTS kv (
    key             BLOB NOT NULL PRIMARY KEY,
    value           BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', 1);
INSERT OR IGNORE INTO meta (name, value) VALUES ('compacted', 0);
";

/// Tuning of an [`EmbeddedStore`].
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Events buffered per watcher before it counts as lagging and re-reads the log.
    pub watch_buffer: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            watch_buffer: DEFAULT_WATCH_BUFFER,
        }
    }
}

/// The embedded store: a durable SQLite file. See the module documentation.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    writer: mpsc::Sender<Request>,
    events: broadcast::Sender<Arc<WatchEvent>>,
}

/// State shared by the store handle, the writer thread and the watch streams.
struct Shared {
    /// The file, for error messages.
    path: String,
    file: PathBuf,
    readers: Mutex<Vec<Connection>>,
    /// Revision of the last committed write (updated after commit, before its event is sent).
    current: AtomicI64,
    /// The compacted revision: revisions below it are gone.
    compacted: AtomicI64,
}

/// A write for the writer thread.
enum Op {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
}

/// What a successful write returns.
enum Done {
    Revision(Revision),
    Deleted(KeyValue),
    Compacted,
}

struct Request {
    op: Op,
    reply: oneshot::Sender<Result<Done, StoreError>>,
}

/// An internal failure: a SQLite error (needs the path to become a [`StoreError`]) or a store
/// error as it is.
enum Fail {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Fail {
    fn into_store(self, path: &str) -> StoreError {
        match self {
            Fail::Sql(source) => sqlite_error(path, source),
            Fail::Store(e) => e,
        }
    }
}

fn sqlite_error(path: &str, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_string(),
        source,
    }
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store file at `path` with default options.
    ///
    /// This is a blocking call (it opens and prepares the file and starts the writer thread):
    /// call it at startup, or inside `spawn_blocking`. It needs no tokio runtime; the store's
    /// async methods do (they use `spawn_blocking`). The parent directory is created if missing.
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        Self::open_with_options(path, EmbeddedOptions::default())
    }

    /// Like [`EmbeddedStore::open`] with explicit options.
    pub fn open_with_options(
        path: &Path,
        options: EmbeddedOptions,
    ) -> Result<EmbeddedStore, StoreError> {
        let display = path.display().to_string();
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Other(format!(
                        "embedded store at {display}: create directory {}: {e}",
                        parent.display()
                    ))
                })?;
            }
        }
        let conn = open_writer(path, &display)?;
        let (current, compacted) = read_revisions(&conn).map_err(|e| sqlite_error(&display, e))?;
        let shared = Arc::new(Shared {
            path: display.clone(),
            file: path.to_path_buf(),
            readers: Mutex::new(Vec::new()),
            current: AtomicI64::new(current),
            compacted: AtomicI64::new(compacted),
        });
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let (writer, requests) = mpsc::channel();
        let thread_shared = shared.clone();
        let thread_events = events.clone();
        std::thread::Builder::new()
            .name("store-writer".to_string())
            .spawn(move || writer_loop(conn, thread_shared, thread_events, requests))
            .map_err(|e| {
                StoreError::Other(format!(
                    "embedded store at {display}: start writer thread: {e}"
                ))
            })?;
        Ok(EmbeddedStore {
            shared,
            writer,
            events,
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.shared.file
    }

    /// Compacts away all history older than the last `keep` revisions (a no-op while the store
    /// has fewer). Returns the compacted revision afterwards.
    pub async fn compact_keeping(&self, keep: Revision) -> Result<Revision, StoreError> {
        let target = self.shared.current.load(Ordering::SeqCst) - keep.max(0);
        if target > self.shared.compacted.load(Ordering::SeqCst) {
            self.compact(target).await?;
        }
        Ok(self.shared.compacted.load(Ordering::SeqCst))
    }

    async fn write(&self, op: Op) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Request { op, reply })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
    {
        read_blocking(self.shared.clone(), f).await
    }
}

fn open_writer(path: &Path, display: &str) -> Result<Connection, StoreError> {
    let sql = |e| sqlite_error(display, e);
    let conn = Connection::open(path).map_err(sql)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Other(format!(
            "embedded store at {display}: journal mode is {mode}, not wal"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql)?;
    conn.execute_batch(SCHEMA).map_err(sql)?;
    Ok(conn)
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

fn read_revisions(conn: &Connection) -> rusqlite::Result<(Revision, Revision)> {
    Ok((current_revision(conn)?, compacted_revision(conn)?))
}

/// The revision of the last write. Like etcd, an empty store is at revision 1 (the first write
/// gets 2), so that no list ever reports revision 0, which `watch` reads as "from now on".
fn current_revision(conn: &Connection) -> rusqlite::Result<Revision> {
    conn.query_row("SELECT COALESCE(MAX(revision), 1) FROM log", [], |r| {
        r.get(0)
    })
}

fn compacted_revision(conn: &Connection) -> rusqlite::Result<Revision> {
    conn.query_row("SELECT value FROM meta WHERE name = 'compacted'", [], |r| {
        r.get(0)
    })
}

impl Shared {
    /// Runs `f` in one read transaction on a pooled read connection (blocking).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, Fail>) -> Result<T, StoreError> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.file).map_err(|e| sqlite_error(&self.path, e))?,
        };
        let result = match conn.transaction() {
            Ok(tx) => f(&tx),
            Err(e) => Err(Fail::Sql(e)),
        };
        let mut readers = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if readers.len() < MAX_IDLE_READERS {
            readers.push(conn);
        }
        drop(readers);
        result.map_err(|e| e.into_store(&self.path))
    }
}

async fn read_blocking<T, F>(shared: Arc<Shared>, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
{
    let path = shared.path.clone();
    tokio::task::spawn_blocking(move || shared.read(f))
        .await
        .map_err(|e| {
            StoreError::Other(format!("embedded store at {path}: read task failed: {e}"))
        })?
}

/// The end of the key range of `prefix`: the smallest byte string greater than every key that
/// starts with `prefix`. Keys are UTF-8, which never contains the byte 0xFF, so incrementing the
/// last byte always works, and `[0xFF]` bounds every key for the empty prefix.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xFF]
}

/// The key range `[lower, upper)` of a list: keys starting with `prefix` and, when given,
/// strictly greater than `start_after`.
fn list_bounds(prefix: &str, start_after: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    let mut lower = prefix.as_bytes().to_vec();
    if let Some(after) = start_after {
        // The smallest key strictly greater than `after` is `after` followed by a NUL byte.
        let mut next = after.as_bytes().to_vec();
        next.push(0);
        if next > lower {
            lower = next;
        }
    }
    (lower, prefix_end(prefix.as_bytes()))
}

fn key_from_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<String> {
    let bytes: Vec<u8> = row.get(index)?;
    String::from_utf8(bytes)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Blob, Box::new(e)))
}

/// A `kv` row: key, value, create_revision, mod_revision.
fn kv_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: key_from_column(row, 0)?,
        value: row.get(1)?,
        create_revision: row.get(2)?,
        mod_revision: row.get(3)?,
    })
}

fn get_kv(conn: &Connection, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    conn.prepare_cached("SELECT key, value, create_revision, mod_revision FROM kv WHERE key = ?1")?
        .query_row(params![key.as_bytes()], kv_from_row)
        .optional()
}

fn list_at(conn: &Connection, prefix: &str, opts: &ListOptions) -> Result<ListResult, Fail> {
    let current = current_revision(conn)?;
    let compacted = compacted_revision(conn)?;
    let at = match opts.revision {
        Some(requested) if requested > 0 => {
            if requested < compacted {
                return Err(StoreError::Compacted {
                    requested,
                    compacted,
                }
                .into());
            }
            if requested > current {
                return Err(StoreError::FutureRevision { requested, current }.into());
            }
            requested
        }
        _ => current,
    };
    let (lower, upper) = list_bounds(prefix, opts.start_after.as_deref());
    let limit = opts.limit.filter(|&l| l > 0);
    // One more than asked tells whether there are more.
    let sql_limit = limit.map(|l| l.saturating_add(1) as i64).unwrap_or(-1);
    let mut items = Vec::new();
    if at == current {
        let mut stmt = conn.prepare_cached(
            "SELECT key, value, create_revision, mod_revision FROM kv
             WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![lower, upper, sql_limit], kv_from_row)?;
        for row in rows {
            items.push(row?);
        }
    } else {
        // For each key its last log row at or before `at` (SQLite takes the bare columns from
        // the row holding the MAX), kept when that row is not a delete.
        let mut stmt = conn.prepare_cached(
            "SELECT key, value, create_revision, revision FROM (
                 SELECT key, value, create_revision, deleted, MAX(revision) AS revision
                 FROM log WHERE key >= ?1 AND key < ?2 AND revision <= ?3 GROUP BY key
             ) WHERE deleted = 0 ORDER BY key LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![lower, upper, at, sql_limit], kv_from_row)?;
        for row in rows {
            items.push(row?);
        }
    }
    let more = limit.is_some_and(|l| items.len() > l);
    if let Some(l) = limit {
        items.truncate(l);
    }
    Ok(ListResult {
        items,
        revision: at,
        more,
    })
}

/// Reads log rows under `[lower, upper)` with revisions greater than `after`, in revision order,
/// at most [`CATCH_UP_BATCH`]. The flag tells whether that reached the end of the log.
fn read_log(
    conn: &Connection,
    lower: &[u8],
    upper: &[u8],
    after: Revision,
) -> Result<(Vec<WatchEvent>, bool), Fail> {
    let compacted = compacted_revision(conn)?;
    if after < compacted {
        return Err(StoreError::Compacted {
            requested: after,
            compacted,
        }
        .into());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT l.revision, l.key, l.deleted, l.create_revision, l.prev_revision, l.value,
                p.value, p.create_revision
         FROM log AS l LEFT JOIN log AS p ON l.deleted = 0 AND p.revision = l.prev_revision
         WHERE l.revision > ?1 AND +l.key >= ?2 AND +l.key < ?3
         ORDER BY l.revision LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![after, lower, upper, CATCH_UP_BATCH as i64], |row| {
        let revision: Revision = row.get(0)?;
        let key = key_from_column(row, 1)?;
        let deleted: bool = row.get(2)?;
        let create_revision: Revision = row.get(3)?;
        let prev_revision: Revision = row.get(4)?;
        let value: Vec<u8> = row.get(5)?;
        let prev_value: Option<Vec<u8>> = row.get(6)?;
        let prev_create: Option<Revision> = row.get(7)?;
        let kv = KeyValue {
            key,
            value,
            create_revision,
            mod_revision: revision,
        };
        Ok(if deleted {
            // A delete row carries the key's last value.
            let prev = KeyValue {
                mod_revision: prev_revision,
                ..kv.clone()
            };
            WatchEvent {
                kind: EventKind::Delete,
                revision,
                kv,
                prev: Some(prev),
            }
        } else {
            let prev = match (prev_value, prev_create) {
                (Some(value), Some(create_revision)) if prev_revision > 0 => Some(KeyValue {
                    key: kv.key.clone(),
                    value,
                    create_revision,
                    mod_revision: prev_revision,
                }),
                _ => None,
            };
            WatchEvent {
                kind: EventKind::Put,
                revision,
                kv,
                prev,
            }
        })
    })?;
    let mut events = Vec::new();
    for row in rows {
        events.push(row?);
    }
    let complete = events.len() < CATCH_UP_BATCH;
    Ok((events, complete))
}

// ---------------------------------------------------------------------------------------------
// The writer thread.

fn writer_loop(
    mut conn: Connection,
    shared: Arc<Shared>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    requests: mpsc::Receiver<Request>,
) {
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, &shared, &events, batch);
    }
    tracing::debug!(path = %shared.path, "embedded store writer stopped");
}

/// The outcome of one committed batch.
struct Applied {
    results: Vec<Result<Done, StoreError>>,
    events: Vec<WatchEvent>,
    current: Revision,
    compacted: Revision,
}

fn run_batch(
    conn: &mut Connection,
    shared: &Shared,
    events: &broadcast::Sender<Arc<WatchEvent>>,
    batch: Vec<Request>,
) {
    let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|r| (r.op, r.reply)).unzip();
    match apply_batch(conn, ops) {
        Ok(applied) => {
            shared.compacted.store(applied.compacted, Ordering::SeqCst);
            shared.current.store(applied.current, Ordering::SeqCst);
            for event in applied.events {
                // No receiver is fine: nobody watches.
                let _ = events.send(Arc::new(event));
            }
            for (reply, result) in replies.into_iter().zip(applied.results) {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(path = %shared.path, error = %e, "embedded store write failed");
            let message = e.to_string();
            let mut first = Some(e);
            for reply in replies {
                let error = match first.take() {
                    Some(e) => sqlite_error(&shared.path, e),
                    None => StoreError::Other(format!(
                        "embedded store at {}: write batch failed: {message}",
                        shared.path
                    )),
                };
                let _ = reply.send(Err(error));
            }
        }
    }
}

fn apply_batch(conn: &mut Connection, ops: Vec<Op>) -> rusqlite::Result<Applied> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut current = current_revision(&tx)?;
    let mut compacted = compacted_revision(&tx)?;
    let mut results = Vec::with_capacity(ops.len());
    let mut events = Vec::new();
    for op in ops {
        match apply(&tx, &mut current, &mut compacted, op) {
            Ok((done, event)) => {
                results.push(Ok(done));
                events.extend(event);
            }
            Err(Fail::Store(e)) => results.push(Err(e)),
            Err(Fail::Sql(e)) => return Err(e),
        }
    }
    tx.commit()?;
    Ok(Applied {
        results,
        events,
        current,
        compacted,
    })
}

fn insert_log(
    conn: &Connection,
    revision: Revision,
    key: &str,
    deleted: bool,
    create_revision: Revision,
    prev_revision: Revision,
    value: &[u8],
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO log (revision, key, deleted, create_revision, prev_revision, value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        revision,
        key.as_bytes(),
        deleted,
        create_revision,
        prev_revision,
        value
    ])?;
    Ok(())
}

fn apply(
    conn: &Connection,
    current: &mut Revision,
    compacted: &mut Revision,
    op: Op,
) -> Result<(Done, Option<WatchEvent>), Fail> {
    match op {
        Op::Create { key, value } => {
            if get_kv(conn, &key)?.is_some() {
                return Err(StoreError::AlreadyExists { key }.into());
            }
            let revision = *current + 1;
            conn.prepare_cached(
                "INSERT INTO kv (key, value, create_revision, mod_revision) VALUES (?1, ?2, ?3, ?3)",
            )?
            .execute(params![key.as_bytes(), value, revision])?;
            insert_log(conn, revision, &key, false, revision, 0, &value)?;
            *current = revision;
            let kv = KeyValue {
                key,
                value,
                create_revision: revision,
                mod_revision: revision,
            };
            let event = WatchEvent {
                kind: EventKind::Put,
                revision,
                kv,
                prev: None,
            };
            Ok((Done::Revision(revision), Some(event)))
        }
        Op::Update {
            key,
            value,
            expected,
        } => {
            let Some(old) = get_kv(conn, &key)? else {
                return Err(StoreError::NotFound { key }.into());
            };
            if old.mod_revision != expected {
                return Err(StoreError::Conflict {
                    key,
                    expected,
                    current: Some(Box::new(old)),
                }
                .into());
            }
            let revision = *current + 1;
            conn.prepare_cached("UPDATE kv SET value = ?2, mod_revision = ?3 WHERE key = ?1")?
                .execute(params![key.as_bytes(), value, revision])?;
            insert_log(
                conn,
                revision,
                &key,
                false,
                old.create_revision,
                old.mod_revision,
                &value,
            )?;
            *current = revision;
            let kv = KeyValue {
                key,
                value,
                create_revision: old.create_revision,
                mod_revision: revision,
            };
            let event = WatchEvent {
                kind: EventKind::Put,
                revision,
                kv,
                prev: Some(old),
            };
            Ok((Done::Revision(revision), Some(event)))
        }
        Op::Delete { key, expected } => {
            let Some(old) = get_kv(conn, &key)? else {
                return Err(StoreError::NotFound { key }.into());
            };
            if let Some(expected) = expected {
                if old.mod_revision != expected {
                    return Err(StoreError::Conflict {
                        key,
                        expected,
                        current: Some(Box::new(old)),
                    }
                    .into());
                }
            }
            let revision = *current + 1;
            conn.prepare_cached("DELETE FROM kv WHERE key = ?1")?
                .execute(params![key.as_bytes()])?;
            insert_log(
                conn,
                revision,
                &key,
                true,
                old.create_revision,
                old.mod_revision,
                &old.value,
            )?;
            *current = revision;
            let deleted = KeyValue {
                mod_revision: revision,
                ..old.clone()
            };
            let event = WatchEvent {
                kind: EventKind::Delete,
                revision,
                kv: deleted.clone(),
                prev: Some(old),
            };
            Ok((Done::Deleted(deleted), Some(event)))
        }
        Op::Compact { revision } => {
            if revision <= *compacted {
                return Ok((Done::Compacted, None));
            }
            if revision > *current {
                return Err(StoreError::FutureRevision {
                    requested: revision,
                    current: *current,
                }
                .into());
            }
            // Drop every row below `revision` that no read at `revision` or later can need:
            // deletes, and versions superseded by a later version at or before `revision`.
            conn.execute(
                "DELETE FROM log WHERE revision < ?1 AND (deleted = 1 OR EXISTS (
                     SELECT 1 FROM log AS n
                     WHERE n.key = log.key AND n.revision > log.revision AND n.revision <= ?1))",
                params![revision],
            )?;
            conn.execute(
                "UPDATE meta SET value = ?1 WHERE name = 'compacted'",
                params![revision],
            )?;
            *compacted = revision;
            Ok((Done::Compacted, None))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Watches.

struct WatchState {
    shared: Arc<Shared>,
    events: broadcast::Receiver<Arc<WatchEvent>>,
    prefix: String,
    lower: Vec<u8>,
    upper: Vec<u8>,
    /// Every revision up to this one has been delivered or skipped.
    last: Revision,
    /// The log must be read before taking live events (at the start and after lagging).
    catch_up: bool,
    pending: VecDeque<WatchEvent>,
    done: bool,
}

impl WatchState {
    async fn next(mut self) -> Option<(Result<WatchEvent, StoreError>, WatchState)> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.catch_up {
                let (lower, upper, after) = (self.lower.clone(), self.upper.clone(), self.last);
                let read = read_blocking(self.shared.clone(), move |conn| {
                    read_log(conn, &lower, &upper, after)
                })
                .await;
                match read {
                    Ok((events, complete)) => {
                        if let Some(event) = events.last() {
                            self.last = event.revision;
                        }
                        self.pending.extend(events);
                        self.catch_up = !complete;
                    }
                    Err(e) => {
                        self.done = true;
                        return Some((Err(e), self));
                    }
                }
                continue;
            }
            match self.events.recv().await {
                Ok(event) => {
                    if event.revision <= self.last {
                        continue;
                    }
                    self.last = event.revision;
                    if event.kv.key.starts_with(&self.prefix) {
                        return Some((Ok(WatchEvent::clone(&event)), self));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(
                        prefix = %self.prefix,
                        missed,
                        "embedded store watcher lagged; reading the log"
                    );
                    self.catch_up = true;
                }
                Err(RecvError::Closed) => {
                    self.done = true;
                    return Some((Err(StoreError::Closed), self));
                }
            }
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_string();
        self.read(move |conn| Ok(get_kv(conn, &key)?)).await
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError> {
        let prefix = prefix.to_string();
        self.read(move |conn| list_at(conn, &prefix, &opts)).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError> {
        let op = Op::Create {
            key: key.to_string(),
            value,
        };
        match self.write(op).await? {
            Done::Revision(revision) => Ok(revision),
            _ => Err(unexpected_reply(key)),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<Revision, StoreError> {
        let op = Op::Update {
            key: key.to_string(),
            value,
            expected,
        };
        match self.write(op).await? {
            Done::Revision(revision) => Ok(revision),
            _ => Err(unexpected_reply(key)),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        let op = Op::Delete {
            key: key.to_string(),
            expected,
        };
        match self.write(op).await? {
            Done::Deleted(kv) => Ok(kv),
            _ => Err(unexpected_reply(key)),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        // Subscribe before reading anything, so nothing committed from here on can be missed.
        let events = self.events.subscribe();
        let (last, catch_up) = if after <= 0 {
            (self.shared.current.load(Ordering::SeqCst), false)
        } else {
            let compacted = self.shared.compacted.load(Ordering::SeqCst);
            if after < compacted {
                return Err(StoreError::Compacted {
                    requested: after,
                    compacted,
                });
            }
            (after, true)
        };
        let (lower, upper) = list_bounds(prefix, None);
        let state = WatchState {
            shared: self.shared.clone(),
            events,
            prefix: prefix.to_string(),
            lower,
            upper,
            last,
            catch_up,
            pending: VecDeque::new(),
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, WatchState::next)))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.shared.current.load(Ordering::SeqCst))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        match self.write(Op::Compact { revision }).await? {
            Done::Compacted => Ok(()),
            _ => Err(StoreError::Other(format!(
                "embedded store at {}: unexpected reply to compact {revision}",
                self.shared.path
            ))),
        }
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.shared.compacted.load(Ordering::SeqCst))
    }
}

fn unexpected_reply(key: &str) -> StoreError {
    StoreError::Other(format!(
        "embedded store: unexpected reply to a write of key {key}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/a/b"), b"/a/c".to_vec());
        assert_eq!(prefix_end(b""), vec![0xFF]);
        assert_eq!(prefix_end(&[b'a', 0xFF]), b"b".to_vec());
    }

    #[test]
    fn list_bounds_take_the_greater_lower_bound() {
        let (lower, upper) = list_bounds("/a/", Some("/a/x"));
        assert_eq!(lower, b"/a/x\0".to_vec());
        assert_eq!(upper, b"/a0".to_vec());
        let (lower, _) = list_bounds("/b/", Some("/a/x"));
        assert_eq!(lower, b"/b/".to_vec());
    }
}
