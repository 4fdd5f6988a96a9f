//! The cluster store: a revisioned key-value interface (the subset of etcd v3 the apiserver
//! needs) with two backends, an embedded durable SQLite file and a real etcd.
//!
//! Every write gets a new, strictly increasing, store-wide revision. A key's `mod_revision` is the
//! revision of its last write and is what the apiserver exposes as `resourceVersion`. Watches
//! deliver every change after a given revision, in revision order, and fail with
//! [`StoreError::Compacted`] when that revision has been compacted away.
//!
//! Compaction rule, the same for both backends: after `compact(c)`, a revision `r` is available
//! (to `list` at, or to `watch` after) exactly when `r >= c`; otherwise the call fails with
//! [`StoreError::Compacted`]. [`Store::compacted_revision`] returns `c` (0 when never compacted).
//!
//! Watch streams: an `Err` item ends the stream. On [`StoreError::Compacted`] the caller must
//! re-list (a relist and a watch from the list's revision); on any other error it may re-watch
//! from the last revision it received. A slow consumer never blocks writers: the embedded backend
//! re-reads missed revisions from its log (it yields `Compacted` only if the log was compacted
//! past the consumer meanwhile), etcd does the same on its side.
//!
//! Backends: [`embedded::EmbeddedStore::open`] (blocking, call at startup) and
//! [`etcd::EtcdStore::connect`] (async).

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

pub mod embedded;
pub mod etcd;

/// A store-wide revision number. Revision 0 means "none yet" / "current" depending on context.
pub type Revision = i64;

/// One key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision at which the key was created (last created, if it was deleted and re-created).
    pub create_revision: Revision,
    /// Revision of the last write to the key.
    pub mod_revision: Revision,
}

/// What happened to a key in a [`WatchEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    /// The revision of this change.
    pub revision: Revision,
    /// For `Put`: the new key-value. For `Delete`: the last value the key had, with its
    /// `mod_revision` set to the revision of the delete.
    pub kv: KeyValue,
    /// The key-value before this change, with its own `mod_revision`: for a `Put` that updated
    /// an existing key, the old value (None for a create); for a `Delete`, the deleted value
    /// (None only on etcd when that version was already compacted).
    pub prev: Option<KeyValue>,
}

/// Options of [`Store::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Read at this revision; `None` (or `Some(0)`) reads the current state. Fails with
    /// [`StoreError::Compacted`] below the compacted revision, [`StoreError::FutureRevision`]
    /// above the current one.
    pub revision: Option<Revision>,
    /// Return at most this many items (the rest is signalled by `ListResult::more`); `None` or
    /// `Some(0)` means no limit.
    pub limit: Option<usize>,
    /// Only keys strictly greater than this one (for paging with `continue`).
    pub start_after: Option<String>,
}

/// Result of [`Store::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    /// Items in key order.
    pub items: Vec<KeyValue>,
    /// The revision the list was read at: the requested one, or the current one.
    pub revision: Revision,
    /// True when `limit` cut the list short.
    pub more: bool,
}

/// A stream of watch events in revision order.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

/// Errors of store operations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    #[error("key {key} not found")]
    NotFound { key: String },
    /// A compare-and-swap failed; `current` is the key's current value when it still exists.
    #[error("key {key} was modified: expected revision {expected}, found {}", current.as_ref().map(|kv| kv.mod_revision).unwrap_or(0))]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<Box<KeyValue>>,
    },
    #[error("revision {requested} has been compacted (oldest available is {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("revision {requested} is in the future (current is {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("embedded store at {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("store is closed")]
    Closed,
    #[error("{0}")]
    Other(String),
}

/// The revisioned key-value store the apiserver keeps every object in.
///
/// Keys are UTF-8 paths such as `/registry/core/pods/default/web-1`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Current value of a key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Keys starting with `prefix`, in key order, optionally at an older revision and paged.
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError>;

    /// Create a key that must not exist. Returns the new revision.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError>;

    /// Replace a key's value if its `mod_revision` is still `expected`. Returns the new revision.
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<Revision, StoreError>;

    /// Delete a key, if `expected` is given only while its `mod_revision` is still that.
    /// Returns the deleted key-value with `mod_revision` set to the revision of the delete.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError>;

    /// Every change under `prefix` with a revision greater than `after`, then live changes.
    /// `after == 0` means "from now on" (changes after the current revision). Fails with
    /// [`StoreError::Compacted`] when `0 < after < compacted_revision()`.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;

    /// The store's current revision (that of the last write; 1 for an empty store, on both
    /// backends, so a list never reports revision 0).
    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// Forget history before `revision`: older revisions can no longer be listed or watched.
    /// A no-op when `revision` is not above the compacted revision; fails with
    /// [`StoreError::FutureRevision`] above the current revision.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;

    /// The oldest revision that can still be listed or watched from (0 when never compacted).
    async fn compacted_revision(&self) -> Result<Revision, StoreError>;
}
