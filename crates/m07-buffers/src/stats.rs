//! Pool and arena statistics, and their Prometheus text rendering.
//!
//! Rendering writes into any [`std::io::Write`], so a server can render `/metrics` into a
//! pooled buffer without allocating.

use std::io::{self, Write};

use serde::Serialize;

/// A snapshot of a [`crate::BufferPool`]'s counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PoolStats {
    /// Buffers in the pool.
    pub capacity: u64,
    /// Bytes per buffer.
    pub buf_size: u64,
    /// Bytes mapped for the slab (address space; resident only once touched).
    pub slab_bytes: u64,
    /// Buffers handed out now (utilisation = `in_use / capacity`).
    pub in_use: u64,
    /// Most buffers ever in use at once.
    pub high_water: u64,
    /// Successful allocations.
    pub allocs: u64,
    /// Buffers given back.
    pub frees: u64,
    /// Allocations refused because every buffer was in use (backpressure events).
    pub exhausted: u64,
    /// Double frees detected.
    pub double_free: u64,
    /// Use-after-free detected (stale handle, or poison damaged while free).
    pub use_after_free: u64,
    /// Overflows detected (guard canary damaged).
    pub overflow: u64,
    /// Slots taken out of service after a detected fault.
    pub quarantined: u64,
    /// Bytes callers asked for, summed over buffers in use.
    pub requested_bytes_in_use: u64,
    /// Internal fragmentation of the buffers in use: `1 − requested / (in_use × buf_size)`
    /// (a fixed-size pool has no external fragmentation).
    pub fragmentation: f64,
    /// What backs the slab (`mmap`, `mmap+thp`, …).
    pub backing: &'static str,
}

impl PoolStats {
    /// `in_use / capacity`.
    pub fn utilisation(&self) -> f64 {
        if self.capacity == 0 {
            0.0
        } else {
            self.in_use as f64 / self.capacity as f64
        }
    }

    /// Writes the Prometheus text exposition, each series labelled `pool="<pool>"`.
    pub fn write_prometheus<W: Write>(&self, pool: &str, w: &mut W) -> io::Result<()> {
        let gauges: [(&str, &str, f64); 6] = [
            (
                "zyphos_pool_buffers",
                "Buffers in the pool.",
                self.capacity as f64,
            ),
            (
                "zyphos_pool_buffers_in_use",
                "Buffers handed out now.",
                self.in_use as f64,
            ),
            (
                "zyphos_pool_buffers_high_water",
                "Most buffers ever in use at once.",
                self.high_water as f64,
            ),
            (
                "zyphos_pool_utilisation_ratio",
                "Buffers in use / buffers.",
                self.utilisation(),
            ),
            (
                "zyphos_pool_fragmentation_ratio",
                "Internal fragmentation of buffers in use (1 - requested / held bytes).",
                self.fragmentation,
            ),
            (
                "zyphos_pool_slab_bytes",
                "Bytes mapped for the slab.",
                self.slab_bytes as f64,
            ),
        ];
        for (name, help, v) in gauges {
            writeln!(w, "# HELP {name} {help}\n# TYPE {name} gauge")?;
            writeln!(w, "{name}{{pool=\"{pool}\"}} {v}")?;
        }
        let counters: [(&str, &str, u64); 3] = [
            (
                "zyphos_pool_allocs_total",
                "Buffers handed out.",
                self.allocs,
            ),
            ("zyphos_pool_frees_total", "Buffers given back.", self.frees),
            (
                "zyphos_pool_exhausted_total",
                "Allocations refused: pool exhausted (backpressure).",
                self.exhausted,
            ),
        ];
        for (name, help, v) in counters {
            writeln!(w, "# HELP {name} {help}\n# TYPE {name} counter")?;
            writeln!(w, "{name}{{pool=\"{pool}\"}} {v}")?;
        }
        writeln!(
            w,
            "# HELP zyphos_pool_faults_total Detected memory faults.\n# TYPE zyphos_pool_faults_total counter"
        )?;
        for (kind, v) in [
            ("double_free", self.double_free),
            ("use_after_free", self.use_after_free),
            ("overflow", self.overflow),
        ] {
            writeln!(
                w,
                "zyphos_pool_faults_total{{pool=\"{pool}\",kind=\"{kind}\"}} {v}"
            )?;
        }
        Ok(())
    }

    /// [`write_prometheus`](Self::write_prometheus) into a `String`.
    pub fn to_prometheus(&self, pool: &str) -> String {
        let mut v = Vec::new();
        let _ = self.write_prometheus(pool, &mut v);
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// A snapshot of an [`crate::Arena`]'s counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ArenaStats {
    /// Bytes the arena can hand out between resets.
    pub capacity: u64,
    /// Bytes handed out since the last reset (including alignment padding).
    pub bytes_in_use: u64,
    /// Most bytes in use between two resets.
    pub high_water: u64,
    /// Bytes lost to alignment padding since the last reset.
    pub padding_bytes: u64,
    /// Allocations served.
    pub allocs: u64,
    /// Allocations refused (the arena was full): the caller saw `None`.
    pub failures: u64,
    /// Resets (one per request in the request loop).
    pub resets: u64,
}

impl ArenaStats {
    /// Writes the Prometheus text exposition, labelled `arena="<arena>"`.
    pub fn write_prometheus<W: Write>(&self, arena: &str, w: &mut W) -> io::Result<()> {
        for (name, kind, help, v) in [
            (
                "zyphos_arena_bytes",
                "gauge",
                "Arena bytes handed out since the last reset.",
                self.bytes_in_use,
            ),
            (
                "zyphos_arena_bytes_high_water",
                "gauge",
                "Most arena bytes in use between resets.",
                self.high_water,
            ),
            (
                "zyphos_arena_allocs_total",
                "counter",
                "Arena allocations.",
                self.allocs,
            ),
            (
                "zyphos_arena_failures_total",
                "counter",
                "Arena allocations refused (full).",
                self.failures,
            ),
            (
                "zyphos_arena_resets_total",
                "counter",
                "Arena resets.",
                self.resets,
            ),
        ] {
            writeln!(w, "# HELP {name} {help}\n# TYPE {name} {kind}")?;
            writeln!(w, "{name}{{arena=\"{arena}\"}} {v}")?;
        }
        Ok(())
    }
}

/// A value alone on its cache line(s): two `CachePadded` counters written by two threads never
/// invalidate each other's line (no false sharing).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct CachePadded<T>(pub T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_prometheus_rendering_has_every_series() {
        let s = PoolStats {
            capacity: 8,
            in_use: 2,
            allocs: 5,
            exhausted: 1,
            ..PoolStats::default()
        };
        let text = s.to_prometheus("read");
        assert!(text.contains("# TYPE zyphos_pool_buffers_in_use gauge"));
        assert!(text.contains("zyphos_pool_buffers_in_use{pool=\"read\"} 2\n"));
        assert!(text.contains("zyphos_pool_utilisation_ratio{pool=\"read\"} 0.25\n"));
        assert!(text.contains("zyphos_pool_allocs_total{pool=\"read\"} 5\n"));
        assert!(text.contains("zyphos_pool_exhausted_total{pool=\"read\"} 1\n"));
        assert!(text.contains("zyphos_pool_faults_total{pool=\"read\",kind=\"overflow\"} 0\n"));
    }

    #[test]
    fn test_render_into_fixed_buffer_too_small_errors() {
        let mut small = [0u8; 64];
        let mut w: &mut [u8] = &mut small;
        assert!(PoolStats::default().write_prometheus("p", &mut w).is_err());
    }

    #[test]
    fn test_cache_padded_alignment_is_a_line() {
        assert_eq!(std::mem::align_of::<CachePadded<u64>>(), 64);
        assert_eq!(std::mem::size_of::<[CachePadded<u64>; 2]>(), 128);
    }
}
