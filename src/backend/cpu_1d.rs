//! The 1-D CPU backend: cells are intervals, so after one sort the per-cell sums come from
//! prefix sums and each iteration costs O(N log M) instead of O(N M).

use rayon::prelude::*;

use super::empty_cells::{Extremes, split_empty_cells};
use super::{Backend, CellStats, Update};
use crate::error::Result;

/// Sorted samples, prefix sums of the (shifted) samples, and the current sorted centroids.
pub(crate) struct Cpu1d {
    sorted: Vec<f64>,
    /// `shift` (the median) is subtracted before summing so that the squared errors of
    /// narrow cells far from the origin do not drown in cancellation.
    shift: f64,
    /// Prefix sums of (x - shift) and (x - shift)^2, each of length `M + 1`.
    prefix_1: Prefix,
    prefix_2: Prefix,
    centroids: Vec<f64>,
    /// Cell `i` holds `sorted[bounds[i]..bounds[i + 1]]`; kept between iterations as the
    /// starting point of the next search, since boundaries move little.
    bounds: Vec<usize>,
    sums: Vec<f64>,
    stats: CellStats,
}

impl Cpu1d {
    /// Takes validated samples (finite, non-empty).
    pub(crate) fn new(mut samples: Vec<f64>) -> Self {
        samples.par_sort_unstable_by(f64::total_cmp);
        let sorted = samples;
        let shift = sorted[sorted.len() / 2];
        let prefix_1 = Prefix::of(sorted.iter().map(|&x| x - shift), sorted.len());
        let prefix_2 = Prefix::of(
            sorted.iter().map(|&x| (x - shift) * (x - shift)),
            sorted.len(),
        );
        Cpu1d {
            sorted,
            shift,
            prefix_1,
            prefix_2,
            centroids: Vec::new(),
            bounds: Vec::new(),
            sums: Vec::new(),
            stats: CellStats::zeros(0),
        }
    }

    /// The empirical quantiles at levels (2i + 1) / 2N: a start close to the optimum for
    /// any law, found for free in sorted samples.
    pub(crate) fn quantile_centroids(&self, n: usize) -> Vec<f64> {
        empirical_quantiles(&self.sorted, n)
    }

    /// Sets the starting centroids (sorted here: the 1-D backends keep them sorted).
    pub(crate) fn start_from(&mut self, mut centroids: Vec<f64>) {
        centroids.sort_by(f64::total_cmp);
        let n = centroids.len();
        let m = self.sorted.len();
        self.bounds = (0..=n).map(|i| i * m / n).collect();
        self.centroids = centroids;
        self.sums = vec![0.0; n];
        self.stats = CellStats::zeros(n);
    }
}

/// Prefix sums kept to about twice f64's precision: each entry is an f64 plus what rounding
/// left out (the compensated sum, renormalised), so that the sum of a range
/// is exact to f64 rounding of the range's own sum, however large the prefix before it.
/// Plain f64 prefixes lose ε·|prefix|: a cell of tiny values after a long run of large ones
/// came out with its mean off by 30 %.
struct Prefix {
    /// (value, remainder) side by side: a range sum reads one cache line per end.
    entries: Vec<(f64, f64)>,
}

impl Prefix {
    fn of(values: impl Iterator<Item = f64>, len: usize) -> Self {
        let mut entries = Vec::with_capacity(len + 1);
        let (mut sum, mut comp) = (0.0f64, 0.0f64);
        entries.push((0.0, 0.0));
        for y in values {
            // Neumaier's compensated sum.
            let t = sum + y;
            comp += if sum.abs() >= y.abs() {
                (sum - t) + y
            } else {
                (y - t) + sum
            };
            sum = t;
            // Renormalised: `h` carries the value, `l` (below half an ulp of h) the rest.
            let h = sum + comp;
            entries.push((h, comp - (h - sum)));
        }
        Prefix { entries }
    }

    /// The sum of the values in `a..b`.
    #[inline]
    fn range(&self, a: usize, b: usize) -> f64 {
        let (ha, la) = self.entries[a];
        let (hb, lb) = self.entries[b];
        (hb - ha) + (lb - la)
    }
}

/// The empirical quantiles of levels (2i + 1) / 2N of sorted samples.
pub(crate) fn empirical_quantiles(sorted: &[f64], n: usize) -> Vec<f64> {
    let m = sorted.len();
    (0..n)
        .map(|i| sorted[((2 * i + 1) * m / (2 * n)).min(m - 1)])
        .collect()
}

/// The cell of `x` under sorted `centroids`: the first whose upper midpoint (`mid` of it and
/// the next) is at or above `x`, so that a point on a midpoint goes to the lower cell. The one
/// nearest-cell search of the 1-D code (CLVQ's steps, labels), as `assign_1d.wgsl` is on a GPU.
#[inline]
pub(crate) fn nearest_sorted(centroids: &[f64], x: f64, mid: impl Fn(f64, f64) -> f64) -> usize {
    let (mut lo, mut hi) = (0usize, centroids.len() - 1);
    while lo < hi {
        let m = (lo + hi) / 2;
        if x <= mid(centroids[m], centroids[m + 1]) {
            hi = m;
        } else {
            lo = m + 1;
        }
    }
    lo
}

/// First index `p >= lo` with `sorted[p] > mid`, searched outward from `hint`: when the
/// boundary moved little since the last iteration this touches a handful of cache lines.
pub(crate) fn boundary(sorted: &[f64], lo: usize, hint: usize, mid: f64) -> usize {
    let m = sorted.len();
    let hint = hint.clamp(lo, m);
    let (mut a, mut b);
    if hint < m && sorted[hint] <= mid {
        a = hint + 1;
        b = m;
        let mut step = 1;
        while hint + step < m {
            let probe = hint + step;
            if sorted[probe] <= mid {
                a = probe + 1;
                step *= 2;
            } else {
                b = probe;
                break;
            }
        }
    } else {
        b = hint;
        a = lo;
        let mut step = 1;
        while hint - lo >= step {
            let probe = hint - step;
            if sorted[probe] <= mid {
                a = probe + 1;
                break;
            }
            b = probe;
            step *= 2;
        }
    }
    a + sorted[a..b].partition_point(|&x| x <= mid)
}

impl Backend for Cpu1d {
    fn device_name(&self) -> String {
        "cpu".to_string()
    }

    fn assign_reduce(&mut self) -> Result<()> {
        let n = self.centroids.len();
        let m = self.sorted.len();
        self.bounds[0] = 0;
        self.bounds[n] = m;
        for i in 0..n - 1 {
            // Ties (a point exactly on the midpoint) go to the lower cell, as in the d-D argmin.
            let mid = 0.5 * (self.centroids[i] + self.centroids[i + 1]);
            let lo = self.bounds[i];
            self.bounds[i + 1] = boundary(&self.sorted, lo, self.bounds[i + 1], mid);
        }
        for i in 0..n {
            let (a, b) = (self.bounds[i], self.bounds[i + 1]);
            let mass = (b - a) as f64;
            let s1 = self.prefix_1.range(a, b);
            let s2 = self.prefix_2.range(a, b);
            let c = self.centroids[i] - self.shift;
            self.sums[i] = s1;
            self.stats.counts[i] = (b - a) as u64;
            self.stats.mass[i] = mass;
            self.stats.sse[i] = (s2 - 2.0 * c * s1 + mass * c * c).max(0.0);
        }
        Ok(())
    }

    fn sse(&mut self) -> Result<f64> {
        Ok(self.stats.sse.iter().sum())
    }

    fn update(&mut self) -> Result<Update> {
        let n = self.centroids.len();
        // The split policy's view: a cell's points lie in sorted[a..b), so it holds two
        // distinct points when its ends differ, and its farthest point from the centroid
        // it was measured against is one of its ends (the lower on ties).
        let mut extremes = Extremes {
            splittable: vec![false; n],
            far: vec![0.0; n],
        };
        // Reading the cells' ends costs a cache miss each: only when a cell is empty.
        let any_empty = self.stats.mass.iter().any(|&m| m <= 0.0);
        for i in (0..n).filter(|_| any_empty) {
            let (a, b) = (self.bounds[i], self.bounds[i + 1]);
            if b > a {
                let (lo, hi, c) = (self.sorted[a], self.sorted[b - 1], self.centroids[i]);
                extremes.splittable[i] = lo < hi;
                extremes.far[i] = if (lo - c).abs() >= (hi - c).abs() {
                    lo
                } else {
                    hi
                };
            }
        }
        let old = self.centroids.clone();
        for i in 0..n {
            if self.stats.mass[i] > 0.0 {
                self.centroids[i] = self.shift + self.sums[i] / self.stats.mass[i];
            }
        }
        let splits = split_empty_cells(&mut self.centroids, 1, &self.stats, &extremes);
        if splits > 0 {
            self.centroids.sort_by(f64::total_cmp);
        }
        Ok(Update {
            splits,
            moved: self.centroids != old,
        })
    }

    fn centroids(&mut self) -> Result<Vec<f64>> {
        Ok(self.centroids.clone())
    }

    fn set_centroids(&mut self, centroids: &[f64]) -> Result<()> {
        let bounds = std::mem::take(&mut self.bounds);
        self.start_from(centroids.to_vec());
        // The old boundaries stay as hints for the next search.
        if bounds.len() == self.bounds.len() {
            self.bounds = bounds;
        }
        Ok(())
    }

    fn cell_stats(&mut self) -> Result<CellStats> {
        Ok(self.stats.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_matches_partition_point_from_any_hint() {
        let s = [0.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 7.0];
        for lo in 0..=s.len() {
            for hint in 0..=s.len() + 2 {
                for mid in [-1.0, 0.0, 0.5, 1.0, 2.5, 3.0, 6.0, 7.0, 9.0] {
                    let want = lo + s[lo..].partition_point(|&x| x <= mid);
                    assert_eq!(
                        boundary(&s, lo, hint, mid),
                        want,
                        "lo {lo} hint {hint} mid {mid}"
                    );
                }
            }
        }
    }
}
