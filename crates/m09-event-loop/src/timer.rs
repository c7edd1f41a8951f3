//! A hierarchical timer wheel: O(1) insert, amortised O(1) expiry, time passed in.
//!
//! Four levels of 64 slots. Level 0 slots are one tick wide (1 ms by default), level 1
//! slots 64 ticks, level 2 4,096, level 3 262,144: together 2²⁴ ticks (4 h 40 min at 1 ms).
//! A deadline goes to the level where its tick first differs from *now* (the highest differing
//! 6-bit group), so an entry is moved down ("cascaded") at most three times before it fires.
//! Deadlines beyond the top level wait in an overflow list that is re-sorted each time the top
//! level wraps: the wheel's range is a performance property, never a correctness limit.
//!
//! ```text
//!  level 3 [ 64 × 262144 ticks ] ─┐ cascade when now crosses a level-3 boundary
//!  level 2 [ 64 ×   4096 ticks ] ─┤
//!  level 1 [ 64 ×     64 ticks ] ─┤
//!  level 0 [ 64 ×      1 tick  ] ─┴─▶ expired keys
//!  overflow (≥ 2²⁴ ticks away) ──▶ re-inserted at each level-3 wrap
//! ```
//!
//! The wheel stores `(tick, key)` pairs and never cancels: the event loop keeps, per
//! connection, the tick it armed, and ignores an expiry whose tick is no longer the armed one
//! (a *stale* entry). A keep-alive connection whose deadline moves later at every request
//! does not touch the wheel at all: when its old entry fires, the loop asks the session for
//! its real deadline and re-arms once.

use std::time::{Duration, Instant};

/// Slots per level.
pub const SLOTS: usize = 64;
/// Levels.
pub const LEVELS: usize = 4;
const BITS: u32 = 6;
/// Ticks covered by the wheel before the overflow list: 64⁴.
pub const RANGE: u64 = 1 << (BITS * LEVELS as u32);

/// What the wheel did (for the loop's metrics and the tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WheelStats {
    /// Entries inserted.
    pub inserted: u64,
    /// Entries expired (handed back).
    pub expired: u64,
    /// Entries moved down a level.
    pub cascaded: u64,
    /// Entries that went to (or came back from) the overflow list.
    pub overflowed: u64,
    /// Entries waiting now.
    pub pending: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: u64,
    key: u64,
}

/// The wheel. Ticks are counted from `origin`; see the [module docs](self).
#[derive(Debug)]
pub struct TimerWheel {
    origin: Instant,
    tick: Duration,
    now: u64,
    levels: Vec<Vec<Entry>>,
    level_len: [usize; LEVELS],
    overflow: Vec<Entry>,
    /// Entries due at or before `now` when inserted: handed out by the next `advance`.
    due: Vec<Entry>,
    spare: Vec<Entry>,
    stats: WheelStats,
}

impl TimerWheel {
    /// A wheel whose tick 0 is `origin`, `tick` long (at least 1 µs).
    pub fn new(origin: Instant, tick: Duration) -> TimerWheel {
        TimerWheel {
            origin,
            tick: tick.max(Duration::from_micros(1)),
            now: 0,
            levels: (0..LEVELS * SLOTS).map(|_| Vec::new()).collect(),
            level_len: [0; LEVELS],
            overflow: Vec::new(),
            due: Vec::new(),
            spare: Vec::new(),
            stats: WheelStats::default(),
        }
    }

    /// The tick length.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// The current tick (everything at or before it has expired).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The tick an instant falls in, rounded up (a timer never fires early), saturating.
    pub fn tick_of(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.origin);
        let t = d.as_nanos().div_ceil(self.tick.as_nanos());
        u64::try_from(t).unwrap_or(u64::MAX / 2).min(u64::MAX / 2)
    }

    /// The instant a tick begins.
    pub fn instant_of(&self, tick: u64) -> Instant {
        let nanos = u128::from(tick) * self.tick.as_nanos();
        let d = Duration::new(
            u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX / 2),
            (nanos % 1_000_000_000) as u32,
        );
        self.origin
            .checked_add(d)
            .unwrap_or(self.origin + Duration::from_secs(1 << 40))
    }

    /// Counters.
    pub fn stats(&self) -> WheelStats {
        WheelStats {
            pending: self.len() as u64,
            ..self.stats
        }
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.level_len.iter().sum::<usize>() + self.overflow.len() + self.due.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedules `key` at tick `at` (a tick already passed expires at the next `advance`).
    pub fn insert(&mut self, at: u64, key: u64) {
        self.stats.inserted += 1;
        self.place(Entry { at, key });
    }

    fn place(&mut self, e: Entry) {
        if e.at <= self.now {
            self.due.push(e);
            return;
        }
        let differing = self.now ^ e.at;
        let level = ((63 - differing.leading_zeros()) / BITS) as usize;
        if level >= LEVELS {
            self.stats.overflowed += 1;
            self.overflow.push(e);
            return;
        }
        let slot = ((e.at >> (BITS * level as u32)) as usize) & (SLOTS - 1);
        self.levels[level * SLOTS + slot].push(e);
        self.level_len[level] += 1;
    }

    /// A tick at or before the earliest pending expiry (`None` when empty): the loop sleeps
    /// until then. Exact for level 0; for higher levels it is the start of the slot, where a
    /// cascade happens.
    pub fn next_expiry(&self) -> Option<u64> {
        if !self.due.is_empty() {
            return Some(self.now);
        }
        for level in 0..LEVELS {
            if self.level_len[level] == 0 {
                continue;
            }
            let shift = BITS * level as u32;
            let current = (self.now >> shift) as usize & (SLOTS - 1);
            for step in 1..=SLOTS {
                let slot = (current + step) & (SLOTS - 1);
                if !self.levels[level * SLOTS + slot].is_empty() {
                    // Start of that slot's span in ticks.
                    let block = self.now >> (shift + BITS);
                    let mut at = (block << (shift + BITS)) | ((slot as u64) << shift);
                    if at <= self.now {
                        at += 1 << (shift + BITS);
                    }
                    return Some(at);
                }
            }
        }
        if !self.overflow.is_empty() {
            return Some((self.now | (RANGE - 1)) + 1);
        }
        None
    }

    /// Moves time to tick `to`, appending expired keys to `out` in expiry order per tick.
    pub fn advance(&mut self, to: u64, out: &mut Vec<u64>) {
        for e in self.due.drain(..) {
            out.push(e.key);
            self.stats.expired += 1;
        }
        while self.now < to {
            if self.is_empty() {
                self.now = to;
                break;
            }
            // Skip empty stretches: with levels below `lowest` empty, nothing can happen
            // before the end of the current `lowest`-level block.
            let lowest = (0..LEVELS)
                .find(|&l| self.level_len[l] > 0)
                .unwrap_or(LEVELS);
            if lowest > 0 {
                let span_mask = (1u64 << (BITS * lowest as u32)) - 1;
                let block_end = self.now | span_mask;
                if block_end > self.now {
                    self.now = block_end.min(to);
                    if self.now == to {
                        break;
                    }
                }
            }
            self.step(out);
        }
    }

    /// One tick forward: cascade the levels whose boundary is crossed (top first), then expire
    /// level 0's slot.
    fn step(&mut self, out: &mut Vec<u64>) {
        self.now += 1;
        let now = self.now;
        if now & (RANGE - 1) == 0 {
            let overflow = std::mem::take(&mut self.overflow);
            self.stats.overflowed += overflow.len() as u64;
            for e in overflow {
                self.place(e);
            }
        }
        for level in (1..LEVELS).rev() {
            let shift = BITS * level as u32;
            if now & ((1u64 << shift) - 1) != 0 {
                continue;
            }
            let slot = (now >> shift) as usize & (SLOTS - 1);
            let mut entries = std::mem::replace(
                &mut self.levels[level * SLOTS + slot],
                std::mem::take(&mut self.spare),
            );
            self.level_len[level] -= entries.len();
            self.stats.cascaded += entries.len() as u64;
            for e in entries.drain(..) {
                self.place(e);
            }
            self.spare = entries;
        }
        let slot = now as usize & (SLOTS - 1);
        let mut entries =
            std::mem::replace(&mut self.levels[slot], std::mem::take(&mut self.spare));
        self.level_len[0] -= entries.len();
        for e in entries.drain(..) {
            if e.at <= now {
                out.push(e.key);
                self.stats.expired += 1;
            } else {
                // Cannot happen with the level rule; kept correct anyway.
                self.place(e);
            }
        }
        self.spare = entries;
        for e in self.due.drain(..) {
            out.push(e.key);
            self.stats.expired += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel() -> (TimerWheel, Instant) {
        let origin = Instant::now();
        (TimerWheel::new(origin, Duration::from_millis(1)), origin)
    }

    /// Reference: every key fires exactly at its tick.
    fn run_until(w: &mut TimerWheel, to: u64, step: u64) -> Vec<(u64, u64)> {
        let mut fired = Vec::new();
        let mut out = Vec::new();
        let mut t = w.now();
        while t < to {
            t = (t + step).min(to);
            w.advance(t, &mut out);
            for k in out.drain(..) {
                fired.push((k, t));
            }
        }
        fired
    }

    #[test]
    fn test_empty_wheel_next_expiry_is_none() {
        let (w, _) = wheel();
        assert_eq!(w.next_expiry(), None);
        assert!(w.is_empty());
    }

    #[test]
    fn test_insert_fires_at_exact_tick_every_level() {
        for at in [
            1u64,
            2,
            63,
            64,
            65,
            100,
            4095,
            4096,
            4097,
            262_143,
            262_144,
            300_000,
            RANGE - 1,
        ] {
            let (mut w, _) = wheel();
            w.insert(at, 7);
            let mut out = Vec::new();
            w.advance(at - 1, &mut out);
            assert!(out.is_empty(), "fired early for {at}");
            w.advance(at, &mut out);
            assert_eq!(out, vec![7], "did not fire at {at}");
            assert!(w.is_empty());
        }
    }

    #[test]
    fn test_many_random_deadlines_fire_on_time_in_order() {
        let (mut w, _) = wheel();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut expected = Vec::new();
        for key in 0..5000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = 1 + x % 20_000;
            w.insert(at, key);
            expected.push((key, at));
        }
        let fired = run_until(&mut w, 20_001, 1);
        assert_eq!(fired.len(), expected.len());
        let mut by_key = fired.clone();
        by_key.sort();
        for ((k, t), (ek, et)) in by_key.iter().zip(expected.iter()) {
            assert_eq!(k, ek);
            assert_eq!(t, et, "key {k} fired at {t}, due {et}");
        }
    }

    #[test]
    fn test_coarse_advance_fires_everything_due() {
        let (mut w, _) = wheel();
        for key in 0..100u64 {
            w.insert(key * 97 + 1, key);
        }
        let fired = run_until(&mut w, 10_000, 777);
        assert_eq!(fired.len(), 100);
        for (k, t) in fired {
            assert!(t > k * 97, "fired before its deadline");
            assert!(t < k * 97 + 1 + 777, "fired more than one advance late");
        }
    }

    #[test]
    fn test_past_deadline_fires_on_next_advance() {
        let (mut w, _) = wheel();
        let mut out = Vec::new();
        w.advance(500, &mut out);
        w.insert(10, 1);
        assert_eq!(w.next_expiry(), Some(500));
        w.advance(500, &mut out);
        assert_eq!(out, vec![1]);
    }

    #[test]
    fn test_overflow_beyond_range_fires_on_time() {
        let (mut w, _) = wheel();
        // Ten days at 1 ms: far beyond the 4.66 h the levels cover.
        let ten_days = 10 * 24 * 3600 * 1000;
        w.insert(ten_days, 42);
        w.insert(RANGE + 5, 43);
        assert!(w.stats().overflowed >= 2);
        let mut out = Vec::new();
        w.advance(RANGE + 4, &mut out);
        assert!(out.is_empty());
        w.advance(RANGE + 5, &mut out);
        assert_eq!(out, vec![43]);
        w.advance(ten_days - 1, &mut out);
        assert_eq!(out, vec![43]);
        w.advance(ten_days, &mut out);
        assert_eq!(out, vec![43, 42]);
        assert!(w.is_empty());
    }

    #[test]
    fn test_next_expiry_never_after_earliest_deadline() {
        let (mut w, _) = wheel();
        let mut earliest = u64::MAX;
        for (i, at) in [70_000u64, 5_000, 300, 64, 9].iter().enumerate() {
            w.insert(*at, i as u64);
            earliest = earliest.min(*at);
            let next = w.next_expiry().unwrap();
            assert!(
                next <= earliest,
                "hint {next} beyond the earliest deadline {earliest}"
            );
        }
        let mut out = Vec::new();
        let mut guard = 0;
        while !w.is_empty() && guard < 10_000 {
            let next = w.next_expiry().unwrap();
            w.advance(next, &mut out);
            guard += 1;
        }
        assert_eq!(out.len(), 5);
        assert!(guard < 50, "following next_expiry took {guard} wake-ups");
    }

    #[test]
    fn test_tick_of_rounds_up_and_saturates() {
        let (w, origin) = wheel();
        assert_eq!(w.tick_of(origin), 0);
        assert_eq!(w.tick_of(origin + Duration::from_micros(1)), 1);
        assert_eq!(w.tick_of(origin + Duration::from_millis(5)), 5);
        assert_eq!(w.tick_of(origin - Duration::from_secs(1)), 0);
        let far = origin + Duration::from_secs(u64::MAX / 4_000_000);
        assert!(w.tick_of(far) <= u64::MAX / 2);
    }
}
