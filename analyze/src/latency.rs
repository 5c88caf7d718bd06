//! Statistics of request latencies: nearest-rank percentiles and means, as every listing,
//! report and SLO computes them. Percentages are compared exactly (SLOs write them with at
//! most six decimals), never through a floating-point product: `99.9 / 100 * 1000` is
//! 999.0000000000001, whose ceiling would make p99.9 of 1,000 requests their maximum.

/// One percent in the exact unit used here (millionths of a percent).
const PERCENT: u128 = 1_000_000;

/// A percentage as a whole number of millionths of a percent.
fn micro_percent(p: f64) -> u128 {
    (p.clamp(0.0, 100.0) * PERCENT as f64).round() as u128
}

/// The nearest rank (1-based) of the `p`-th percentile among `n` values: ⌈p·n/100⌉, at
/// least 1.
pub(crate) fn rank(n: usize, p: f64) -> usize {
    let whole = 100 * PERCENT;
    let r = (micro_percent(p) * n as u128).div_ceil(whole);
    (r as usize).clamp(1, n.max(1))
}

/// Whether `part` is less than `p` percent of `whole`, exactly.
pub(crate) fn below_percent(part: u64, whole: u64, p: f64) -> bool {
    (part as u128) * 100 * PERCENT < micro_percent(p) * whole as u128
}

/// The nearest-rank `p`-th percentile of sorted values (0 when there are none).
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[rank(sorted.len(), p) - 1]
}

/// The mean, rounded down (0 when there are no values).
pub(crate) fn mean(values: impl ExactSizeIterator<Item = u64>) -> u64 {
    let n = values.len().max(1) as u128;
    (values.map(u128::from).sum::<u128>() / n) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 99.9), 100);
        assert_eq!(percentile(&[7], 0.0), 7);
        assert_eq!(percentile(&[], 99.0), 0);
        assert_eq!(mean([1u64, 2, 4].into_iter()), 2);
        assert_eq!(mean(std::iter::empty::<u64>()), 0);
    }

    /// Ranks are whole numbers: p99.9 of 1,000 requests is the 999th, not the maximum
    /// (a floating-point rank, 999.0000000000001, rounds up to the 1,000th).
    #[test]
    fn ranks_are_exact() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 99.9), 999);
        assert_eq!(rank(1000, 99.9), 999);
        assert_eq!(rank(1000, 99.99), 1000);
        assert_eq!(rank(100_000, 99.999), 99_999);
        assert_eq!(rank(3, 0.000001), 1);
        // 990 of 1,000 good is exactly 99%: not below it.
        assert!(!below_percent(990, 1000, 99.0));
        assert!(below_percent(989, 1000, 99.0));
        assert!(!below_percent(999, 1000, 99.9));
    }
}
