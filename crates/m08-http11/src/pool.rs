//! A keep-alive connection pool, sans IO: it stores idle connections of any type `C` and
//! decides which to reuse and which to evict. It reads no clock (`now` is passed in).
//!
//! - **checkout** takes the most recently used idle connection for the key (LIFO: the warmest
//!   one, the least likely to have been closed by the server), after evicting expired ones;
//! - **checkin** returns a connection; it expires after `idle_timeout`, or earlier if the
//!   server announced a shorter `Keep-Alive: timeout` (minus `safety_margin`, so the pool gives
//!   up before the server does and a request never races the server's close);
//! - **size limits** `max_idle_per_key` and `max_idle_total` evict the oldest idle connection.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Pool limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Idle connections kept per key (upstream address).
    pub max_idle_per_key: usize,
    /// Idle connections kept in all.
    pub max_idle_total: usize,
    /// Evict a connection idle longer than this.
    pub idle_timeout: Duration,
    /// Subtracted from a server's announced keep-alive timeout.
    pub safety_margin: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_idle_per_key: 32,
            max_idle_total: 256,
            idle_timeout: Duration::from_secs(30),
            safety_margin: Duration::from_millis(500),
        }
    }
}

/// What the pool did (the client adds `created`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Checkouts that found an idle connection.
    pub reused: u64,
    /// Checkouts that found none (the caller connects).
    pub missed: u64,
    /// Evicted because idle too long.
    pub evicted_idle: u64,
    /// Evicted because a size limit was reached.
    pub evicted_size: u64,
    /// Returned connections stored.
    pub checked_in: u64,
}

#[derive(Debug)]
struct Idle<C> {
    conn: C,
    expires: Instant,
    since: Instant,
}

/// The pool. See the [module docs](self).
#[derive(Debug)]
pub struct Pool<K, C> {
    config: PoolConfig,
    idle: HashMap<K, VecDeque<Idle<C>>>,
    total: usize,
    stats: PoolStats,
}

impl<K: Hash + Eq + Clone, C> Pool<K, C> {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        Pool {
            config,
            idle: HashMap::new(),
            total: 0,
            stats: PoolStats::default(),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    /// Idle connections held.
    pub fn idle_count(&self) -> usize {
        self.total
    }

    /// Drops every connection that expired by `now`; returns how many.
    pub fn evict_expired(&mut self, now: Instant) -> usize {
        let mut n = 0;
        for q in self.idle.values_mut() {
            let before = q.len();
            q.retain(|i| i.expires > now);
            n += before - q.len();
        }
        self.idle.retain(|_, q| !q.is_empty());
        self.total -= n;
        self.stats.evicted_idle += n as u64;
        n
    }

    /// The most recently returned live connection for `key`, if any.
    pub fn checkout(&mut self, key: &K, now: Instant) -> Option<C> {
        self.evict_expired(now);
        let found = self.idle.get_mut(key).and_then(VecDeque::pop_back);
        match found {
            Some(i) => {
                self.total -= 1;
                self.stats.reused += 1;
                Some(i.conn)
            }
            None => {
                self.stats.missed += 1;
                None
            }
        }
    }

    /// Returns `conn` for reuse. `server_timeout` is the server's `Keep-Alive: timeout`, if it
    /// sent one.
    pub fn checkin(&mut self, key: K, conn: C, now: Instant, server_timeout: Option<Duration>) {
        let mut ttl = self.config.idle_timeout;
        if let Some(t) = server_timeout {
            ttl = ttl.min(t.saturating_sub(self.config.safety_margin));
        }
        if ttl.is_zero() {
            return; // dropping closes it
        }
        let q = self.idle.entry(key.clone()).or_default();
        if q.len() >= self.config.max_idle_per_key {
            q.pop_front();
            self.total -= 1;
            self.stats.evicted_size += 1;
        }
        q.push_back(Idle {
            conn,
            expires: now + ttl,
            since: now,
        });
        self.total += 1;
        self.stats.checked_in += 1;
        while self.total > self.config.max_idle_total {
            // Evict the globally oldest idle connection.
            let oldest = self
                .idle
                .iter()
                .filter_map(|(k, q)| q.front().map(|i| (i.since, k.clone())))
                .min_by_key(|(t, _)| *t)
                .map(|(_, k)| k);
            let Some(k) = oldest else { break };
            if let Some(q) = self.idle.get_mut(&k) {
                q.pop_front();
                self.total -= 1;
                self.stats.evicted_size += 1;
                if q.is_empty() {
                    self.idle.remove(&k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PoolConfig {
        PoolConfig {
            max_idle_per_key: 2,
            max_idle_total: 3,
            idle_timeout: Duration::from_secs(10),
            safety_margin: Duration::from_secs(1),
        }
    }

    #[test]
    fn test_checkout_reuses_most_recent_first() {
        let t = Instant::now();
        let mut p: Pool<u8, u32> = Pool::new(cfg());
        assert_eq!(p.checkout(&1, t), None);
        p.checkin(1, 100, t, None);
        p.checkin(1, 101, t + Duration::from_secs(1), None);
        assert_eq!(p.checkout(&1, t + Duration::from_secs(2)), Some(101));
        assert_eq!(p.checkout(&1, t + Duration::from_secs(2)), Some(100));
        assert_eq!(p.checkout(&1, t + Duration::from_secs(2)), None);
        let s = p.stats();
        assert_eq!((s.reused, s.missed), (2, 2));
    }

    #[test]
    fn test_idle_eviction_by_time_and_server_timeout() {
        let t = Instant::now();
        let mut p: Pool<u8, u32> = Pool::new(cfg());
        p.checkin(1, 1, t, None);
        p.checkin(2, 2, t, Some(Duration::from_secs(3)));
        // The server said 3 s: the pool gives up at 3 − 1 = 2 s.
        assert_eq!(p.checkout(&2, t + Duration::from_secs(2)), None);
        assert_eq!(p.checkout(&1, t + Duration::from_secs(9)), Some(1));
        p.checkin(1, 1, t, None);
        assert_eq!(p.evict_expired(t + Duration::from_secs(10)), 1);
        assert_eq!(p.idle_count(), 0);
        assert_eq!(p.stats().evicted_idle, 2);
        // A server timeout within the margin: not kept at all.
        p.checkin(1, 1, t, Some(Duration::from_secs(1)));
        assert_eq!(p.idle_count(), 0);
    }

    #[test]
    fn test_size_limits_evict_oldest() {
        let t = Instant::now();
        let mut p: Pool<u8, u32> = Pool::new(cfg());
        p.checkin(1, 10, t, None);
        p.checkin(1, 11, t + Duration::from_millis(1), None);
        p.checkin(1, 12, t + Duration::from_millis(2), None); // per-key cap 2: 10 goes
        assert_eq!(p.idle_count(), 2);
        p.checkin(2, 20, t + Duration::from_millis(3), None);
        p.checkin(3, 30, t + Duration::from_millis(4), None); // total cap 3: 11 goes
        assert_eq!(p.idle_count(), 3);
        assert_eq!(p.stats().evicted_size, 2);
        let now = t + Duration::from_millis(5);
        assert_eq!(p.checkout(&1, now), Some(12));
        assert_eq!(p.checkout(&1, now), None);
    }
}
