//! Summaries of repeated measurements.

use serde::Serialize;

/// Percentiles of a sample, in the sample's unit.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// The nearest-rank percentile `p` (0-100) of sorted values.
fn rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[k.clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// Summarises `values` (any order).
    pub fn of(values: &[f64]) -> Summary {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() {
            return Summary::default();
        }
        Summary {
            n: v.len(),
            min: v[0],
            p50: rank(&v, 50.0),
            p90: rank(&v, 90.0),
            p99: rank(&v, 99.0),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Summary;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&v);
        assert_eq!((s.min, s.p50, s.p90, s.p99, s.max), (1.0, 50.0, 90.0, 99.0, 100.0));
        assert_eq!(Summary::of(&[3.0]).p99, 3.0);
        assert_eq!(Summary::of(&[]).n, 0);
        let s = Summary::of(&[5.0, 1.0, 3.0]);
        assert_eq!((s.p50, s.mean), (3.0, 3.0));
    }
}
