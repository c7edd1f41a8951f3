//! When to move connections between loops: a pure function of the loops' connection counts.
//!
//! An *underloaded* loop (below the mean by more than `threshold`) asks the most loaded one to
//! give it connections: half the gap, at most `max_batch`, never below the mean. Pulling
//! (stealing) rather than pushing means a busy loop does no balancing work until someone asks,
//! and a loop that is idle is the one that spends time deciding.

/// Balancing policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BalanceConfig {
    /// Steal at all.
    pub enabled: bool,
    /// A loop below `mean × (1 − threshold)` steals.
    pub threshold: f64,
    /// Do not bother for a gap smaller than this many connections.
    pub min_gap: u64,
    /// Connections moved per request at most.
    pub max_batch: u64,
    /// How often each loop looks (milliseconds).
    pub interval_ms: u64,
}

impl Default for BalanceConfig {
    fn default() -> Self {
        BalanceConfig {
            enabled: true,
            threshold: 0.10,
            min_gap: 16,
            max_batch: 256,
            interval_ms: 100,
        }
    }
}

/// The imbalance of a set of counts: `(max − mean) / mean`, in percent (0 when all are 0).
pub fn imbalance_pct(counts: &[u64]) -> f64 {
    if counts.is_empty() {
        return 0.0;
    }
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let mean = total as f64 / counts.len() as f64;
    let max = counts.iter().copied().max().unwrap_or(0) as f64;
    (max - mean) / mean * 100.0
}

/// What loop `me` should ask for: `Some((victim, count))`.
pub fn plan_steal(me: usize, counts: &[u64], config: &BalanceConfig) -> Option<(usize, u64)> {
    if !config.enabled || counts.len() < 2 || me >= counts.len() {
        return None;
    }
    let total: u64 = counts.iter().sum();
    let mean = total as f64 / counts.len() as f64;
    let mine = counts[me];
    if mine as f64 >= mean * (1.0 - config.threshold) {
        return None;
    }
    let (victim, &most) = counts
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .max_by_key(|(_, c)| **c)?;
    let gap = most.saturating_sub(mine);
    if gap < config.min_gap {
        return None;
    }
    let above_mean = most.saturating_sub(mean.ceil() as u64);
    let count = (gap / 2).min(config.max_batch).min(above_mean.max(1));
    (count > 0).then_some((victim, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_balanced_loops_do_not_steal() {
        let c = BalanceConfig::default();
        assert_eq!(plan_steal(0, &[100, 104], &c), None);
        assert_eq!(plan_steal(1, &[100, 104], &c), None);
    }

    #[test]
    fn test_underloaded_loop_steals_half_the_gap_from_the_busiest() {
        let c = BalanceConfig::default();
        assert_eq!(plan_steal(0, &[0, 200, 100], &c), Some((1, 100)));
    }

    #[test]
    fn test_small_gap_below_min_gap_ignored() {
        let c = BalanceConfig::default();
        assert_eq!(plan_steal(0, &[0, 10], &c), None);
    }

    #[test]
    fn test_batch_capped() {
        let c = BalanceConfig {
            max_batch: 10,
            ..BalanceConfig::default()
        };
        assert_eq!(plan_steal(0, &[0, 1000], &c), Some((1, 10)));
    }

    #[test]
    fn test_disabled_never_steals() {
        let c = BalanceConfig {
            enabled: false,
            ..BalanceConfig::default()
        };
        assert_eq!(plan_steal(0, &[0, 1000], &c), None);
    }

    #[test]
    fn test_imbalance_pct() {
        assert_eq!(imbalance_pct(&[]), 0.0);
        assert_eq!(imbalance_pct(&[0, 0]), 0.0);
        assert!((imbalance_pct(&[90, 110]) - 10.0).abs() < 1e-9);
        assert!((imbalance_pct(&[100, 100, 100]) - 0.0).abs() < 1e-9);
    }
}
