//! Fixed-size measuring instruments the table uses: a log2 latency histogram, a per-second rate
//! window and the TIME-WAIT ledger. None of them allocates after creation; all take time as
//! nanoseconds since the table's epoch (time is passed in, never read here).

use serde::Serialize;

/// Buckets of [`Histogram`]: bucket `i` holds values in `[2^(i-1), 2^i)` ns (bucket 0: 0 ns);
/// 48 buckets reach 2^47 ns ≈ 39 hours.
pub const BUCKETS: usize = 48;

/// A log2 histogram of durations in nanoseconds.
#[derive(Clone, Debug)]
pub struct Histogram {
    buckets: [u64; BUCKETS],
    count: u64,
    sum_ns: u128,
    max_ns: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: [0; BUCKETS],
            count: 0,
            sum_ns: 0,
            max_ns: 0,
        }
    }
}

/// What a [`Histogram`] says, in microseconds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Mean, µs.
    pub mean_us: f64,
    /// Median (upper bound of its log2 bucket, capped at the maximum), µs.
    pub p50_us: f64,
    /// 99th percentile (same convention), µs.
    pub p99_us: f64,
    /// Largest sample, µs.
    pub max_us: f64,
}

impl Histogram {
    /// The bucket of `ns`.
    pub fn bucket_of(ns: u64) -> usize {
        ((u64::BITS - ns.leading_zeros()) as usize).min(BUCKETS - 1)
    }

    /// Adds one sample.
    pub fn record(&mut self, ns: u64) {
        self.buckets[Histogram::bucket_of(ns)] += 1;
        self.count += 1;
        self.sum_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at quantile `q` (0..=1): the upper bound of the bucket holding it, capped at
    /// the largest sample (so it is never below the truth by more than a factor of 2).
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((self.count as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let upper = if i == 0 { 0 } else { (1u64 << i) - 1 };
                return upper.min(self.max_ns);
            }
        }
        self.max_ns
    }

    /// Count, mean, p50, p99, max.
    pub fn summary(&self) -> Summary {
        let us = |ns: u64| ns as f64 / 1e3;
        Summary {
            count: self.count,
            mean_us: if self.count == 0 {
                0.0
            } else {
                (self.sum_ns / u128::from(self.count)) as f64 / 1e3
            },
            p50_us: us(self.quantile_ns(0.5)),
            p99_us: us(self.quantile_ns(0.99)),
            max_us: us(self.max_ns),
        }
    }
}

/// Events per second over the last [`RateWindow::SECONDS`] whole seconds, in a ring of
/// per-second counters.
#[derive(Clone, Debug, Default)]
pub struct RateWindow {
    /// (second since epoch, count) per slot.
    slots: [(u64, u64); RateWindow::SLOTS],
}

impl RateWindow {
    /// Whole seconds averaged by [`per_second`](Self::per_second).
    pub const SECONDS: u64 = 10;
    const SLOTS: usize = 16;

    /// Counts one event at `now_ns`.
    pub fn add(&mut self, now_ns: u64) {
        let sec = now_ns / 1_000_000_000;
        let slot = &mut self.slots[(sec % Self::SLOTS as u64) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += 1;
    }

    /// Events in the second that contains `now_ns` so far.
    pub fn this_second(&self, now_ns: u64) -> u64 {
        let sec = now_ns / 1_000_000_000;
        let slot = self.slots[(sec % Self::SLOTS as u64) as usize];
        if slot.0 == sec { slot.1 } else { 0 }
    }

    /// Mean events per second over the last [`SECONDS`](Self::SECONDS) complete seconds
    /// (fewer at the start; 0 before the first second is complete).
    pub fn per_second(&self, now_ns: u64) -> f64 {
        let now_sec = now_ns / 1_000_000_000;
        let span = Self::SECONDS.min(now_sec);
        if span == 0 {
            return 0.0;
        }
        let total: u64 = self
            .slots
            .iter()
            .filter(|(s, _)| *s < now_sec && *s >= now_sec - span)
            .map(|(_, n)| n)
            .sum();
        total as f64 / span as f64
    }

    /// The busiest complete second among the last 16.
    pub fn peak_second(&self, now_ns: u64) -> u64 {
        let now_sec = now_ns / 1_000_000_000;
        self.slots
            .iter()
            .filter(|(s, _)| *s < now_sec && now_sec - *s <= Self::SLOTS as u64)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
    }
}

/// Counts connections our side left in TIME-WAIT, which the kernel keeps for 2×MSL after we
/// closed the descriptor (no socket event marks the end: it is pure time). One counter per
/// second of entry, in a ring: exact to the second, constant memory however many there are.
#[derive(Clone, Debug)]
pub struct TimeWaitLedger {
    len_s: u64,
    /// (second of entry, count).
    slots: Vec<(u64, u64)>,
    total: u64,
    peak: u64,
}

impl TimeWaitLedger {
    /// A ledger for TIME-WAIT lasting `len_s` seconds (60 on Linux: `TCP_TIMEWAIT_LEN`).
    pub fn new(len_s: u64) -> TimeWaitLedger {
        let len_s = len_s.max(1);
        TimeWaitLedger {
            len_s,
            slots: vec![(u64::MAX, 0); len_s as usize + 2],
            total: 0,
            peak: 0,
        }
    }

    /// One connection entered TIME-WAIT at `now_ns`.
    pub fn add(&mut self, now_ns: u64) {
        let sec = now_ns / 1_000_000_000;
        let n = self.slots.len() as u64;
        let slot = &mut self.slots[(sec % n) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += 1;
        self.total += 1;
        let live = self.count(now_ns);
        self.peak = self.peak.max(live);
    }

    /// How many are still in TIME-WAIT at `now_ns` (entered less than `len_s` ago, to the
    /// second).
    pub fn count(&self, now_ns: u64) -> u64 {
        let sec = now_ns / 1_000_000_000;
        self.slots
            .iter()
            .filter(|(s, _)| *s != u64::MAX && *s <= sec && sec - *s < self.len_s)
            .map(|(_, n)| n)
            .sum()
    }

    /// How many ever entered.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The most at once (as of each entry).
    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// TIME-WAIT duration, seconds.
    pub fn len_s(&self) -> u64 {
        self.len_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn test_histogram_quantiles_within_a_factor_of_two() {
        let mut h = Histogram::default();
        for ns in [1_000u64, 2_000, 3_000, 4_000, 1_000_000] {
            h.record(ns);
        }
        let p50 = h.quantile_ns(0.5);
        assert!((3_000..6_000).contains(&p50), "{p50}");
        assert_eq!(h.quantile_ns(1.0), 1_000_000);
        let s = h.summary();
        assert_eq!(s.count, 5);
        assert!((s.mean_us - 202.0).abs() < 0.01);
    }

    #[test]
    fn test_rate_window_counts_per_second() {
        let mut r = RateWindow::default();
        for i in 0..100 {
            r.add(i * S / 10); // 10 per second for 10 s
        }
        assert!((r.per_second(10 * S) - 10.0).abs() < 1e-9);
        assert_eq!(r.this_second(9 * S + 5), 10);
        assert_eq!(r.peak_second(10 * S), 10);
        assert_eq!(r.per_second(S / 2), 0.0, "no complete second yet");
        // Quiet for a long time: the window empties.
        assert_eq!(r.per_second(100 * S), 0.0);
    }

    #[test]
    fn test_time_wait_ledger_expires_after_its_length() {
        let mut l = TimeWaitLedger::new(60);
        l.add(0);
        l.add(S / 2);
        l.add(30 * S);
        assert_eq!(l.count(30 * S), 3);
        assert_eq!(l.count(59 * S + 1), 3);
        assert_eq!(l.count(60 * S), 1, "the first two entered in second 0");
        assert_eq!(l.count(90 * S), 0);
        assert_eq!((l.total(), l.peak()), (3, 3));
    }
}
