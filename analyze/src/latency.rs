//! Statistics of request latencies: nearest-rank percentiles and means, as every listing,
//! report and SLO computes them.

/// The nearest-rank `p`-th percentile of sorted values (0 when there are none).
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
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
}
