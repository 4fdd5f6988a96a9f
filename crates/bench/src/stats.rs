//! Latency samples and their percentiles.

use std::time::Duration;

/// A set of latency samples (signed nanoseconds, so "after ack" deltas may be negative).
#[derive(Debug, Clone, Default)]
pub struct Samples {
    nanos: Vec<i64>,
    sorted: bool,
}

impl Samples {
    /// An empty set with room for `n` samples.
    pub fn with_capacity(n: usize) -> Samples {
        Samples {
            nanos: Vec::with_capacity(n),
            sorted: true,
        }
    }

    /// Adds one duration.
    pub fn push(&mut self, d: Duration) {
        self.push_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    }

    /// Adds one signed sample in nanoseconds.
    pub fn push_nanos(&mut self, n: i64) {
        self.nanos.push(n);
        self.sorted = false;
    }

    /// Merges another set into this one.
    pub fn extend(&mut self, other: Samples) {
        self.nanos.extend(other.nanos);
        self.sorted = false;
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.nanos.sort_unstable();
            self.sorted = true;
        }
    }

    /// The `p`-th percentile (0..=100, nearest rank) in milliseconds; NaN when empty.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.nanos.is_empty() {
            return f64::NAN;
        }
        self.sort();
        let n = self.nanos.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let idx = rank.clamp(1, n) - 1;
        self.nanos[idx] as f64 / 1e6
    }

    /// The largest sample in milliseconds; NaN when empty.
    pub fn max_ms(&mut self) -> f64 {
        self.percentile_ms(100.0)
    }
}

/// p50, p99 and max of a sample set.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Summarises `s`.
    pub fn of(s: &mut Samples) -> Summary {
        Summary {
            count: s.len(),
            p50_ms: s.percentile_ms(50.0),
            p99_ms: s.percentile_ms(99.0),
            max_ms: s.max_ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for i in 1..=100 {
            s.push(Duration::from_millis(i));
        }
        assert_eq!(s.percentile_ms(50.0), 50.0);
        assert_eq!(s.percentile_ms(99.0), 99.0);
        assert_eq!(s.max_ms(), 100.0);
        assert!(Samples::default().percentile_ms(50.0).is_nan());
    }
}
