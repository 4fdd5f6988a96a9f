//! In-memory indexes fed by the watch cache (upstream's informer-backed listers): one task per
//! resource replays the current objects, then follows every change, and starts over from the
//! current objects when it falls behind.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use crate::cache::{CacheEvent, WatchCache};

/// What an index does with the events of one resource.
pub trait Follower: Send + Sync + 'static {
    /// Forgets every object of `plural` (the replay that follows brings them back).
    fn reset(&self, plural: &str);
    /// Applies one added, modified or deleted object of `plural`.
    fn apply(&self, plural: &str, ev: &CacheEvent);
}

/// Feeds `follower` with the objects of `group/version/plural` from now on; a resource that is
/// not served leaves it empty (logged).
pub fn follow(
    cache: &Arc<WatchCache>,
    group: &str,
    plural: &'static str,
    follower: Arc<dyn Follower>,
) {
    let Some(r) = api::registry::find(group, "v1", plural) else {
        tracing::warn!(plural, "resource not served: its index stays empty");
        return;
    };
    let rc = cache.resource(r);
    let cache = cache.clone();
    tokio::spawn(async move {
        loop {
            let Some(mut sub) = rc.subscribe(cache.revision(), true).await else {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            follower.reset(plural);
            for ev in sub.backlog.drain(..) {
                follower.apply(plural, &ev);
            }
            loop {
                match sub.live.recv().await {
                    Ok(ev) => follower.apply(plural, &ev),
                    // Fell behind: start again from the current objects.
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                }
            }
        }
    });
}
