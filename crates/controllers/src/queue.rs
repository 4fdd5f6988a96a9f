//! A work queue keyed by object with client-go's semantics: a key queued while it is being
//! processed is processed again afterwards (never concurrently), duplicates collapse, and failed
//! keys come back after an exponential per-key backoff. Keys come out highest priority first
//! (the scheduler's activeQ orders pods by spec.priority), first in first out within a priority;
//! controllers never set one, so theirs is a plain FIFO.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Default)]
struct State {
    /// (highest priority first, arrival order) → key
    queue: BTreeMap<(Reverse<i32>, u64), String>,
    arrivals: u64,
    /// The priority of keys added with a non-zero one.
    priority: HashMap<String, i32>,
    dirty: HashSet<String>,
    processing: HashSet<String>,
    failures: HashMap<String, u32>,
}

impl State {
    fn push(&mut self, key: String) {
        let priority = self.priority.get(&key).copied().unwrap_or(0);
        self.arrivals += 1;
        self.queue.insert((Reverse(priority), self.arrivals), key);
    }
}

/// A deduplicating, rate-limited work queue of object keys (`ns/name` or `name`).
pub struct WorkQueue {
    name: String,
    state: Mutex<State>,
    notify: Notify,
    base_delay: Duration,
    max_delay: Duration,
}

impl WorkQueue {
    /// A queue with client-go's default per-item backoff (5ms doubling, capped).
    pub fn new(name: &str) -> Arc<WorkQueue> {
        Arc::new(WorkQueue {
            name: name.to_string(),
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_secs(60),
        })
    }

    /// The queue's name (the controller's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queues `key` unless it is queued already.
    pub fn add(&self, key: impl Into<String>) {
        let key = key.into();
        let mut st = self.state.lock().unwrap();
        if !st.dirty.insert(key.clone()) {
            return;
        }
        if st.processing.contains(&key) {
            return;
        }
        st.push(key);
        drop(st);
        self.notify.notify_one();
    }

    /// Queues `key` with `priority` (higher comes out first); the priority is kept for the key's
    /// later re-queues.
    pub fn add_with_priority(&self, key: impl Into<String>, priority: i32) {
        let key = key.into();
        {
            let mut st = self.state.lock().unwrap();
            if priority == 0 {
                st.priority.remove(&key);
            } else {
                st.priority.insert(key.clone(), priority);
            }
        }
        self.add(key);
    }

    /// Queues `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: impl Into<String>, delay: Duration) {
        let key = key.into();
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let q = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// The backoff for the next failure of `key` (and counts that failure).
    pub fn next_backoff(&self, key: &str) -> Duration {
        let mut st = self.state.lock().unwrap();
        let n = st.failures.entry(key.to_string()).or_insert(0);
        let exp = (*n).min(30);
        *n += 1;
        backoff(self.base_delay, self.max_delay, exp)
    }

    /// Queues `key` again after its per-key backoff.
    pub fn add_rate_limited(self: &Arc<Self>, key: &str) {
        let d = self.next_backoff(key);
        self.add_after(key.to_string(), d);
    }

    /// Forgets the failure history of `key`.
    pub fn forget(&self, key: &str) {
        let mut st = self.state.lock().unwrap();
        st.failures.remove(key);
        st.priority.remove(key);
    }

    /// Number of failures recorded for `key`.
    pub fn failures(&self, key: &str) -> u32 {
        self.state
            .lock()
            .unwrap()
            .failures
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// Takes the next key, waiting for one; the caller must call [`WorkQueue::done`].
    pub async fn get(&self) -> String {
        loop {
            let notified = self.notify.notified();
            if let Some(k) = self.try_get() {
                return k;
            }
            notified.await;
        }
    }

    /// Takes the next key if one is queued.
    pub fn try_get(&self) -> Option<String> {
        let mut st = self.state.lock().unwrap();
        let (_, k) = st.queue.pop_first()?;
        st.dirty.remove(&k);
        st.processing.insert(k.clone());
        let more = !st.queue.is_empty();
        drop(st);
        if more {
            self.notify.notify_one();
        }
        Some(k)
    }

    /// Marks `key` processed; a key added meanwhile is queued again.
    pub fn done(&self, key: &str) {
        let mut st = self.state.lock().unwrap();
        st.processing.remove(key);
        if st.dirty.contains(key) {
            st.push(key.to_string());
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Number of queued keys.
    pub fn len(&self) -> usize {
        self.state.lock().unwrap().queue.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `base * 2^exp`, capped at `max`.
pub fn backoff(base: Duration, max: Duration, exp: u32) -> Duration {
    let factor = 1u64.checked_shl(exp).unwrap_or(u64::MAX);
    let nanos = (base.as_nanos() as u64).saturating_mul(factor);
    Duration::from_nanos(nanos).min(max)
}

/// Runs `workers` workers taking keys from `queue` and syncing them with `sync`: Ok(None) forgets
/// the key's failures, Ok(Some(d)) resyncs after d, Err retries with the key's backoff.
pub async fn run_workers<F, Fut>(queue: Arc<WorkQueue>, workers: usize, sync: F)
where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = crate::Result<Option<Duration>>> + Send + 'static,
{
    let mut hs = Vec::new();
    for _ in 0..workers.max(1) {
        let q = queue.clone();
        let f = sync.clone();
        hs.push(tokio::spawn(async move {
            loop {
                let key = q.get().await;
                let res = f(key.clone()).await;
                crate::metrics::count_sync(q.name(), res.is_ok());
                match res {
                    Ok(None) => q.forget(&key),
                    Ok(Some(d)) => {
                        q.forget(&key);
                        q.add_after(key.clone(), d);
                    }
                    Err(e) => {
                        tracing::info!(controller = q.name(), key = %key, error = %e, "sync failed, retrying");
                        q.add_rate_limited(&key);
                    }
                }
                q.done(&key);
            }
        }));
    }
    futures::future::join_all(hs).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedups_and_requeues_keys_added_while_processing() {
        let q = WorkQueue::new("t");
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let k = q.try_get().unwrap();
        assert_eq!(k, "a");
        q.add("a");
        // "a" is processing: not handed out again concurrently
        assert_eq!(q.try_get().as_deref(), Some("b"));
        assert_eq!(q.try_get(), None);
        q.done("a");
        assert_eq!(q.try_get().as_deref(), Some("a"));
        q.done("a");
        q.done("b");
        assert!(q.is_empty());
    }

    #[test]
    fn higher_priority_first_fifo_within_and_kept_on_requeue() {
        let q = WorkQueue::new("t");
        q.add("low-1");
        q.add_with_priority("high", 1000);
        q.add("low-2");
        q.add_with_priority("mid", 10);
        let order: Vec<String> = std::iter::from_fn(|| q.try_get()).collect();
        assert_eq!(order, ["high", "mid", "low-1", "low-2"]);
        // "high" re-added while processing comes back ahead of a later plain key
        q.add("high");
        q.add("low-3");
        q.done("high");
        assert_eq!(q.try_get().as_deref(), Some("high"));
        // forget drops the remembered priority
        q.forget("high");
        q.done("high");
        for k in ["mid", "low-1", "low-2"] {
            q.done(k);
        }
        q.add("high");
        assert_eq!(q.try_get().as_deref(), Some("low-3"));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_millis(5);
        let m = Duration::from_secs(60);
        assert_eq!(backoff(b, m, 0), Duration::from_millis(5));
        assert_eq!(backoff(b, m, 3), Duration::from_millis(40));
        assert_eq!(backoff(b, m, 40), m);
        let q = WorkQueue::new("t");
        assert_eq!(q.next_backoff("k"), Duration::from_millis(5));
        assert_eq!(q.next_backoff("k"), Duration::from_millis(10));
        q.forget("k");
        assert_eq!(q.failures("k"), 0);
    }
}
