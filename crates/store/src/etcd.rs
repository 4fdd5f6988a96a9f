//! The etcd v3 backend: transactions on mod_revision, watches from a start revision.
//!
//! Every key is stored under an optional namespace prefix (so several clusters or test runs can
//! share one etcd); the prefix is added on the way in and stripped on the way out.
//!
//! - create: `txn(create_revision == 0 → put)`.
//! - update: `txn(create_revision > 0 && mod_revision == expected → put, else get)`.
//! - delete: `txn(create_revision > 0 [&& mod_revision == expected] → delete, else get)`.
//! - list: one range read (key order) at the requested revision, paged with `limit` and a start
//!   key just after `start_after`.
//! - watch: `start_revision = after + 1` with `prev_kv`, after a probe read at `after` that
//!   fails with [`StoreError::Compacted`] when `after` is below the compacted revision (etcd
//!   itself would accept `after + 1 == compacted` but may have dropped a delete at exactly that
//!   revision). A compaction reported by etcd while watching also ends the stream with
//!   `Compacted`. `after == 0` watches from the current revision.
//! - compacted_revision: etcd does not report it, so it is probed: a read at revision `r` fails
//!   with "compacted" exactly when `r` is below the compacted revision; a binary search over
//!   `[known, current]` finds it (a handful of cheap count-only reads). `known` is the highest
//!   compacted revision seen so far (compactions never go back), so repeated calls are cheap.
//!   It is exact even when another client compacted; 0 means nothing was compacted.
//! - TLS: `https://` endpoints are dialed over TLS (rustls with the aws-lc-rs provider, through
//!   etcd-client's tonic), trusting only the CA given in [`EtcdTls`] and presenting its client
//!   certificate when given (etcd's `--client-cert-auth`), as upstream's `--etcd-cafile`,
//!   `--etcd-certfile` and `--etcd-keyfile`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions,
    Identity, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};

use crate::{
    EventKind, KeyValue, ListOptions, ListResult, Revision, Store, StoreError, WatchEvent,
    WatchStream,
};

/// How long connecting to an endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// TLS towards etcd: the CA its serving certificate must chain to and, for etcd's
/// `--client-cert-auth`, the client certificate to present.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdTls {
    /// The CA certificate(s) trusted for etcd's serving certificate (PEM); no other roots are.
    pub ca_pem: String,
    /// The client certificate (PEM), presented when set together with `key_pem`.
    pub cert_pem: Option<String>,
    /// The client certificate's private key (PEM).
    pub key_pem: Option<String>,
}

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls")
            .field("client_certificate", &self.cert_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl EtcdTls {
    /// The client's TLS options; a certificate without its key (or the reverse) is an error.
    fn options(&self) -> Result<TlsOptions, StoreError> {
        let tls = TlsOptions::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        match (&self.cert_pem, &self.key_pem) {
            (Some(cert), Some(key)) => Ok(tls.identity(Identity::from_pem(cert, key))),
            (None, None) => Ok(tls),
            _ => Err(StoreError::Other(
                "etcd TLS: a client certificate needs its key and a key its certificate".into(),
            )),
        }
    }
}

/// The etcd store. Cheap to clone: clones share the client's gRPC channel.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    /// Namespace prefix of every key (may be empty).
    prefix: Vec<u8>,
    /// Highest compacted revision seen so far.
    known_compacted: Arc<AtomicI64>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to etcd at `endpoints` (such as `http://127.0.0.1:2379`) and checks that it
    /// answers. Every key is stored under `prefix` when given (for example `/mini-cluster`).
    pub async fn connect(
        endpoints: &[String],
        prefix: Option<String>,
    ) -> Result<EtcdStore, StoreError> {
        EtcdStore::connect_with(endpoints, prefix, None).await
    }

    /// [`Self::connect`] with TLS: with `tls`, every endpoint must be `https://` and is dialed
    /// trusting only its CA, presenting its client certificate. Without it, `https://`
    /// endpoints are refused (there are no default roots to verify them with).
    pub async fn connect_with(
        endpoints: &[String],
        prefix: Option<String>,
        tls: Option<EtcdTls>,
    ) -> Result<EtcdStore, StoreError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(10));
        match &tls {
            Some(tls) => {
                if let Some(plain) = endpoints.iter().find(|e| !e.starts_with("https://")) {
                    return Err(StoreError::Other(format!(
                        "etcd endpoint {plain} is not https:// but TLS options were given"
                    )));
                }
                options = options.with_tls(tls.options()?);
            }
            None => {
                if let Some(secure) = endpoints.iter().find(|e| e.starts_with("https://")) {
                    return Err(StoreError::Other(format!(
                        "etcd endpoint {secure} is https:// but no CA was given to verify it with"
                    )));
                }
            }
        }
        let client = Client::connect(endpoints, Some(options)).await?;
        let store = EtcdStore {
            client,
            prefix: prefix.unwrap_or_default().into_bytes(),
            known_compacted: Arc::new(AtomicI64::new(0)),
        };
        store.current_revision().await?;
        Ok(store)
    }

    /// The underlying client (for benchmarks measuring raw etcd).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn full_key(&self, key: &str) -> Vec<u8> {
        let mut full = self.prefix.clone();
        full.extend_from_slice(key.as_bytes());
        full
    }

    fn strip_key(&self, key: &[u8]) -> Result<String, StoreError> {
        let Some(rest) = key.strip_prefix(self.prefix.as_slice()) else {
            return Err(StoreError::Other(format!(
                "etcd key {} is outside the store prefix",
                String::from_utf8_lossy(key)
            )));
        };
        String::from_utf8(rest.to_vec()).map_err(|_| {
            StoreError::Other(format!(
                "etcd key {} is not utf-8",
                String::from_utf8_lossy(key)
            ))
        })
    }

    fn key_value(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        Ok(KeyValue {
            key: self.strip_key(kv.key())?,
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        })
    }

    /// A cheap key to read for revision probes: the namespace prefix itself (or `\0`).
    fn probe_key(&self) -> Vec<u8> {
        if self.prefix.is_empty() {
            vec![0]
        } else {
            self.prefix.clone()
        }
    }

    /// Whether revision `revision` can still be read: Ok(false) when it was compacted.
    async fn readable_at(&self, revision: Revision) -> Result<bool, StoreError> {
        let options = GetOptions::new().with_revision(revision).with_count_only();
        match self
            .client
            .kv_client()
            .get(self.probe_key(), Some(options))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_compacted(&e) => Ok(false),
            Err(e) if is_future(&e) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    async fn compacted_error(&self, requested: Revision) -> StoreError {
        match self.compacted_revision().await {
            Ok(compacted) => StoreError::Compacted {
                requested,
                compacted,
            },
            Err(e) => e,
        }
    }

    fn event(&self, event: &etcd_client::Event) -> Result<WatchEvent, StoreError> {
        let Some(kv) = event.kv() else {
            return Err(StoreError::Other(
                "etcd watch event without a key-value".to_string(),
            ));
        };
        let revision = kv.mod_revision();
        let prev = event.prev_kv().map(|p| self.key_value(p)).transpose()?;
        Ok(match event.event_type() {
            EventType::Put => WatchEvent {
                kind: EventKind::Put,
                revision,
                kv: self.key_value(kv)?,
                prev,
            },
            EventType::Delete => {
                let kv = match &prev {
                    Some(last) => KeyValue {
                        mod_revision: revision,
                        ..last.clone()
                    },
                    None => KeyValue {
                        key: self.strip_key(kv.key())?,
                        value: Vec::new(),
                        create_revision: 0,
                        mod_revision: revision,
                    },
                };
                WatchEvent {
                    kind: EventKind::Delete,
                    revision,
                    kv,
                    prev,
                }
            }
        })
    }
}

fn grpc_message(e: &etcd_client::Error) -> Option<&str> {
    match e {
        etcd_client::Error::GRpcStatus(status) => Some(status.message()),
        _ => None,
    }
}

fn is_compacted(e: &etcd_client::Error) -> bool {
    grpc_message(e).is_some_and(|m| m.contains("required revision has been compacted"))
}

fn is_future(e: &etcd_client::Error) -> bool {
    grpc_message(e).is_some_and(|m| m.contains("required revision is a future revision"))
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StoreError> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::Other("etcd response without a header".to_string()))
}

/// etcd's range end for a prefix: the prefix with its last byte incremented (trailing 0xFF
/// dropped), or `\0` ("to the end") when there is none.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A range start: etcd rejects an empty key, and `\0` is the smallest non-empty one.
fn range_start(key: Vec<u8>) -> Vec<u8> {
    if key.is_empty() {
        vec![0]
    } else {
        key
    }
}

/// The first value of a txn's `get` in its else branch.
fn else_get(
    store: &EtcdStore,
    responses: Vec<TxnOpResponse>,
) -> Result<Option<KeyValue>, StoreError> {
    for response in responses {
        if let TxnOpResponse::Get(get) = response {
            return get.kvs().first().map(|kv| store.key_value(kv)).transpose();
        }
    }
    Ok(None)
}

struct EtcdWatch {
    stream: etcd_client::WatchStream,
    /// The watched prefix, for error messages.
    prefix: String,
    store: EtcdStore,
    /// Revision of the last event delivered (or the one the watch started after).
    last: Revision,
    pending: VecDeque<WatchEvent>,
    done: bool,
}

impl EtcdWatch {
    async fn next(mut self) -> Option<(Result<WatchEvent, StoreError>, EtcdWatch)> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            let failure = match self.stream.message().await {
                Ok(Some(response)) => {
                    if response.compact_revision() > 0 {
                        self.store
                            .known_compacted
                            .fetch_max(response.compact_revision(), Ordering::SeqCst);
                        StoreError::Compacted {
                            requested: self.last,
                            compacted: response.compact_revision(),
                        }
                    } else if response.canceled() {
                        StoreError::Other(format!(
                            "etcd watch of {} canceled: {}",
                            self.prefix,
                            response.cancel_reason()
                        ))
                    } else {
                        for event in response.events() {
                            match self.store.event(event) {
                                Ok(event) => {
                                    self.last = event.revision;
                                    self.pending.push_back(event);
                                }
                                Err(e) => {
                                    self.done = true;
                                    return Some((Err(e), self));
                                }
                            }
                        }
                        continue;
                    }
                }
                Ok(None) => StoreError::Other(format!("etcd watch of {} ended", self.prefix)),
                Err(e) => StoreError::Etcd(e),
            };
            self.done = true;
            return Some((Err(failure), self));
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let response = self
            .client
            .kv_client()
            .get(self.full_key(key), None)
            .await?;
        response
            .kvs()
            .first()
            .map(|kv| self.key_value(kv))
            .transpose()
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError> {
        let full_prefix = self.full_key(prefix);
        let end = prefix_end(&full_prefix);
        let mut start = full_prefix;
        if let Some(after) = &opts.start_after {
            let mut next = self.full_key(after);
            next.push(0);
            if next > start {
                start = next;
            }
        }
        let start = range_start(start);
        let requested = opts.revision.filter(|&r| r > 0);
        let mut options = GetOptions::new().with_range(end.clone());
        if let Some(revision) = requested {
            options = options.with_revision(revision);
        }
        if let Some(limit) = opts.limit.filter(|&l| l > 0) {
            options = options.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        if end != [0] && start >= end {
            // Past the end of the range (a continue key beyond the prefix): nothing, but still
            // validate the revision.
            options = options.with_count_only();
        }
        let response = match self.client.kv_client().get(start, Some(options)).await {
            Ok(response) => response,
            Err(e) if is_compacted(&e) => {
                return Err(self.compacted_error(requested.unwrap_or(0)).await)
            }
            Err(e) if is_future(&e) => {
                return Err(StoreError::FutureRevision {
                    requested: requested.unwrap_or(0),
                    current: self.current_revision().await?,
                })
            }
            Err(e) => return Err(e.into()),
        };
        let items = response
            .kvs()
            .iter()
            .map(|kv| self.key_value(kv))
            .collect::<Result<Vec<_>, _>>()?;
        let revision = match requested {
            Some(revision) => revision,
            None => header_revision(response.header())?,
        };
        Ok(ListResult {
            items,
            revision,
            more: response.more(),
        })
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError> {
        let full = self.full_key(key);
        let txn = Txn::new()
            .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, value, None)]);
        let response = self.client.kv_client().txn(txn).await?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists {
                key: key.to_string(),
            });
        }
        header_revision(response.header())
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<Revision, StoreError> {
        let full = self.full_key(key);
        let txn = Txn::new()
            .when([
                Compare::create_revision(full.clone(), CompareOp::Greater, 0),
                Compare::mod_revision(full.clone(), CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(full.clone(), value, None)])
            .or_else([TxnOp::get(full, None)]);
        let response = self.client.kv_client().txn(txn).await?;
        if response.succeeded() {
            return header_revision(response.header());
        }
        match else_get(self, response.op_responses())? {
            Some(current) => Err(StoreError::Conflict {
                key: key.to_string(),
                expected,
                current: Some(Box::new(current)),
            }),
            None => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        let full = self.full_key(key);
        let mut compares = vec![Compare::create_revision(
            full.clone(),
            CompareOp::Greater,
            0,
        )];
        if let Some(expected) = expected {
            compares.push(Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                expected,
            ));
        }
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::delete(
                full.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(full, None)]);
        let response = self.client.kv_client().txn(txn).await?;
        if response.succeeded() {
            let revision = header_revision(response.header())?;
            for op in response.op_responses() {
                if let TxnOpResponse::Delete(deleted) = op {
                    if let Some(last) = deleted.prev_kvs().first() {
                        let last = self.key_value(last)?;
                        return Ok(KeyValue {
                            mod_revision: revision,
                            ..last
                        });
                    }
                }
            }
            return Err(StoreError::Other(format!(
                "etcd delete of key {key} returned no previous value"
            )));
        }
        match (else_get(self, response.op_responses())?, expected) {
            (Some(current), Some(expected)) => Err(StoreError::Conflict {
                key: key.to_string(),
                expected,
                current: Some(Box::new(current)),
            }),
            _ => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let after = if after > 0 {
            if !self.readable_at(after).await? {
                return Err(self.compacted_error(after).await);
            }
            after
        } else {
            self.current_revision().await?
        };
        let full_prefix = self.full_key(prefix);
        let end = prefix_end(&full_prefix);
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(after + 1)
            .with_prev_key();
        let mut stream = self
            .client
            .watch_client()
            .watch(range_start(full_prefix), Some(options))
            .await?;
        // Wait until etcd has registered the watch, so that no write after this call is missed.
        let mut pending = VecDeque::new();
        match stream.message().await? {
            Some(response) if response.compact_revision() > 0 => {
                return Err(StoreError::Compacted {
                    requested: after,
                    compacted: response.compact_revision(),
                })
            }
            Some(response) if response.canceled() => {
                return Err(StoreError::Other(format!(
                    "etcd watch of {prefix} canceled: {}",
                    response.cancel_reason()
                )))
            }
            Some(response) => {
                for event in response.events() {
                    pending.push_back(self.event(event)?);
                }
            }
            None => {
                return Err(StoreError::Other(format!(
                    "etcd watch of {prefix} ended at once"
                )))
            }
        }
        let state = EtcdWatch {
            stream,
            prefix: prefix.to_string(),
            store: self.clone(),
            last: after,
            pending,
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, EtcdWatch::next)))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let options = GetOptions::new().with_count_only();
        let response = self
            .client
            .kv_client()
            .get(self.probe_key(), Some(options))
            .await?;
        header_revision(response.header())
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        if revision <= 0 {
            return Ok(());
        }
        match self.client.kv_client().compact(revision, None).await {
            Ok(_) => {
                self.known_compacted.fetch_max(revision, Ordering::SeqCst);
                Ok(())
            }
            // Already compacted at or after `revision`: nothing to do.
            Err(e) if is_compacted(&e) => Ok(()),
            Err(e) if is_future(&e) => Err(StoreError::FutureRevision {
                requested: revision,
                current: self.current_revision().await?,
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        let known = self.known_compacted.load(Ordering::SeqCst);
        if self.readable_at(known.max(1)).await? {
            return Ok(known);
        }
        // Smallest readable revision in (low, high]: `low` is compacted, `high` is readable
        // (the current revision always is).
        let mut low = known.max(1);
        let mut high = self.current_revision().await?;
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if self.readable_at(middle).await? {
                high = middle;
            } else {
                low = middle;
            }
        }
        self.known_compacted.fetch_max(high, Ordering::SeqCst);
        Ok(high)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_matches_etcd() {
        assert_eq!(prefix_end(b"/a/b"), b"/a/c".to_vec());
        assert_eq!(prefix_end(b""), vec![0]);
        assert_eq!(prefix_end(&[b'a', 0xFF]), b"b".to_vec());
        assert_eq!(range_start(Vec::new()), vec![0]);
    }
}
