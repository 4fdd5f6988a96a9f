//! Crash-loop back-off per container, as upstream's flowcontrol.Backoff used by the kubelet:
//! 10 s doubling to 5 min, measured from the container's finish time, forgotten after a quiet
//! period of twice the maximum (so a container that ran for 10 minutes starts over at 10 s).

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;

#[derive(Debug, Clone)]
struct Entry {
    delay: Duration,
    last_update: Timestamp,
}

/// Back-off state keyed by pod uid + container name.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_secs(10), Duration::from_secs(300))
    }
}

impl Backoff {
    /// A back-off starting at `initial`, capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    fn expired(&self, e: &Entry, now: Timestamp) -> bool {
        now.duration_since(e.last_update).unsigned_abs() > self.max * 2
    }

    /// Whether a restart of `key` must still wait at `now`, given the container finished at
    /// `finished`; the remaining delay (the whole current step) when it must.
    pub fn in_backoff(&self, key: &str, finished: Timestamp, now: Timestamp) -> Option<Duration> {
        let e = self.entries.get(key)?;
        if self.expired(e, now) {
            return None;
        }
        let since = now.duration_since(finished);
        (since.is_negative() || since.unsigned_abs() < e.delay).then_some(e.delay)
    }

    /// Records a restart of `key` at `now`: the next step doubles (or starts over).
    pub fn next(&mut self, key: &str, now: Timestamp) {
        let fresh = match self.entries.get(key) {
            None => true,
            Some(e) => self.expired(e, now),
        };
        let delay = if fresh {
            self.initial
        } else {
            (self.entries[key].delay * 2).min(self.max)
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                delay,
                last_update: now,
            },
        );
    }

    /// Forgets `key` (the pod went away).
    pub fn forget_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }
}

/// Upstream's message for a container waiting in back-off.
pub fn message(delay: Duration, container: &str, pod: &str, ns: &str, uid: &str) -> String {
    let d = delay.as_secs();
    let text = if d >= 60 && d.is_multiple_of(60) {
        format!("{}m0s", d / 60)
    } else if d >= 60 {
        format!("{}m{}s", d / 60, d % 60)
    } else {
        format!("{d}s")
    };
    format!("back-off {text} restarting failed container={container} pod={pod}_{ns}({uid})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn first_restart_is_immediate_then_doubles_to_the_cap() {
        let mut b = Backoff::default();
        assert_eq!(b.in_backoff("p/c", t(0), t(0)), None);
        b.next("p/c", t(0));
        // Crashed at 1 s: waits 10 s from the finish.
        assert_eq!(
            b.in_backoff("p/c", t(1), t(5)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(b.in_backoff("p/c", t(1), t(11)), None);
        b.next("p/c", t(11));
        assert_eq!(
            b.in_backoff("p/c", t(12), t(25)),
            Some(Duration::from_secs(20))
        );
        let mut now = 40;
        for _ in 0..10 {
            b.next("p/c", t(now));
            now += 1;
        }
        assert_eq!(
            b.in_backoff("p/c", t(now), t(now)),
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn resets_after_ten_quiet_minutes() {
        let mut b = Backoff::default();
        b.next("k", t(0));
        b.next("k", t(15));
        assert_eq!(
            b.in_backoff("k", t(16), t(17)),
            Some(Duration::from_secs(20))
        );
        // Ran for more than 10 minutes before crashing again: starts over.
        assert_eq!(b.in_backoff("k", t(700), t(701)), None);
        b.next("k", t(701));
        assert_eq!(
            b.in_backoff("k", t(702), t(703)),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn message_matches_upstream() {
        assert_eq!(
            message(Duration::from_secs(20), "app", "web", "default", "u1"),
            "back-off 20s restarting failed container=app pod=web_default(u1)"
        );
        assert_eq!(
            message(Duration::from_secs(300), "a", "p", "n", "u")
                .split(' ')
                .nth(1),
            Some("5m0s")
        );
    }
}
