//! The 1-D CPU backend: cells are intervals, so after one sort the per-cell sums come from
//! prefix sums and each iteration costs O(N log M) instead of O(N M).

use rayon::prelude::*;

use super::cell_sums::fixed;
use super::interval_sums::{IntervalSums, fixed_square};
use super::kept_errors::CellErrors;
use super::sorted_index::{Searches, SortedIndex, prefetch};
use super::total_order_sort::sort_total;
use super::{Backend, CellStats, Update};
use crate::error::Result;
use crate::frame::Frame;

/// Sorted samples, exact prefix sums of them and of their squares, and the current sorted
/// centroids.
pub(crate) struct Cpu1d {
    /// The samples times `unit` (a power of two bringing them into [−1, 1]; 1 when they
    /// already lie there, as values in a frame do), sorted and indexed.
    sorted: SortedIndex,
    unit: f64,
    /// (Σ x, Σ x²) over `sorted[..i]` in fixed point, `M + 1` entries: the sums of a cell are
    /// the difference of two entries, exact, so they equal the same points summed one by one
    /// (which is what [`crate::LloydStats`] does). (Entries every 2, 4 or 8 samples, the rest
    /// summed at each search, took a quarter of the memory but 30–60 % more time an iteration
    /// at N = 500: the fixed-point conversions of the samples between cost more than a miss.)
    prefix: Vec<Prefix>,
    /// `prefix` at each of `bounds` (a buffer kept between iterations).
    at_bounds: Vec<Prefix>,
    /// Each cell's squared error, evaluated again only where its bounds or centroid changed.
    errors: CellErrors,
    /// The centroids times `unit`, sorted.
    centroids: Vec<f64>,
    /// Cell `i` holds `sorted[bounds[i]..bounds[i + 1]]`.
    bounds: Vec<usize>,
    /// The midpoints between consecutive centroids (a buffer kept between iterations).
    mids: Vec<f64>,
    /// How the bounds are searched for, from the last ones.
    searches: Searches,
    /// The last pass's sums; their cells' ends (`low`, `high`) are filled only in a pass
    /// that leaves a cell empty, the only time the update reads them.
    sums: IntervalSums,
    stats: CellStats,
    /// The frame of a K-means fit, whose updates pass through the caller's units as
    /// [`crate::LloydStats::update`] hands them on (None for quantizers of laws).
    frame: Option<Frame>,
    /// The centroids of the last update in the caller's units, when in a frame.
    caller: Option<Vec<f64>>,
}

/// (Σ x, Σ x²) of a prefix of the sorted samples, aligned so that one entry is one
/// cache-line access.
#[derive(Clone, Copy, bytemuck::Zeroable)]
#[repr(C, align(32))]
struct Prefix(i128, i128);

/// The `M + 1` prefix sums of sorted samples, on every thread: each chunk's running sums
/// from zero, then each chunk shifted by the total of those before it (exact: integers).
/// Each entry is first written by a thread, so the threads share the kernel's zeroing of
/// the fresh pages (`zeroed_vec` of an over-aligned type is one thread's `memset` over all
/// of them: at M = 10⁸, 3.2 GB and most of the set-up).
fn prefix_sums(sorted: &[f64]) -> Vec<Prefix> {
    const CHUNK: usize = 1 << 16;
    let mut prefix: Vec<Prefix> = Vec::with_capacity(sorted.len() + 1);
    let (first, rest) = prefix.spare_capacity_mut()[..sorted.len() + 1]
        .split_first_mut()
        .expect("M + 1 entries");
    first.write(Prefix(0, 0));
    let totals: Vec<Prefix> = rest
        .par_chunks_mut(CHUNK)
        .zip(sorted.par_chunks(CHUNK))
        .map(|(out, xs)| {
            let (mut s1, mut s2) = (0i128, 0i128);
            for (o, &x) in out.iter_mut().zip(xs) {
                s1 += fixed(x);
                s2 += fixed_square(x);
                o.write(Prefix(s1, s2));
            }
            Prefix(s1, s2)
        })
        .collect();
    // SAFETY: every entry was written above: the first, and `rest` chunk by chunk, as
    // `sorted` has one value for each.
    unsafe { prefix.set_len(sorted.len() + 1) };
    let mut offsets = Vec::with_capacity(totals.len());
    let (mut s1, mut s2) = (0i128, 0i128);
    for t in &totals {
        offsets.push(Prefix(s1, s2));
        (s1, s2) = (s1 + t.0, s2 + t.1);
    }
    prefix[1..]
        .par_chunks_mut(CHUNK)
        .zip(offsets)
        .skip(1)
        .for_each(|(out, at)| {
            for o in out {
                *o = Prefix(o.0 + at.0, o.1 + at.1);
            }
        });
    prefix
}

impl Cpu1d {
    /// Takes validated samples (finite, non-empty).
    pub(crate) fn new(mut samples: Vec<f64>) -> Self {
        let max = samples.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let unit = if max <= 1.0 {
            1.0
        } else {
            libm::scalbn(1.0, -libm::frexp(max).1)
        };
        if unit != 1.0 {
            samples.par_iter_mut().for_each(|v| *v *= unit);
        }
        sort_total(&mut samples);
        let sorted = SortedIndex::new(samples);
        let prefix = prefix_sums(sorted.samples());
        Cpu1d {
            sorted,
            unit,
            prefix,
            at_bounds: Vec::new(),
            errors: CellErrors::default(),
            centroids: Vec::new(),
            bounds: Vec::new(),
            mids: Vec::new(),
            searches: Searches::default(),
            sums: IntervalSums::zeros(0),
            stats: CellStats::zeros(0),
            frame: None,
            caller: None,
        }
    }

    /// Updates round through the caller's units of `frame` (the samples' frame, in which
    /// they lie in [−1, 1]), so that a fit equals one merged from the statistics of parts.
    pub(crate) fn in_frame(mut self, frame: &Frame) -> Self {
        self.frame = Some(frame.clone());
        self
    }

    /// The empirical quantiles at levels (2i + 1) / 2N: a start close to the optimum for
    /// any law, found for free in sorted samples.
    pub(crate) fn quantile_centroids(&self, n: usize) -> Vec<f64> {
        empirical_quantiles(self.sorted.samples(), n)
            .into_iter()
            .map(|v| v / self.unit)
            .collect()
    }

    /// Sets the starting centroids (sorted here: the 1-D backends keep them sorted).
    pub(crate) fn start_from(&mut self, centroids: Vec<f64>) {
        let mut centroids: Vec<f64> = centroids.iter().map(|&c| c * self.unit).collect();
        centroids.sort_by(f64::total_cmp);
        let n = centroids.len();
        let m = self.sorted.samples().len();
        self.bounds = (0..=n).map(|i| i * m / n).collect();
        self.errors.clear();
        self.centroids = centroids;
        self.sums = IntervalSums::zeros(n);
        self.stats = CellStats::zeros(n);
    }
}

/// The empirical quantiles of levels (2i + 1) / 2N of sorted samples.
pub(crate) fn empirical_quantiles(sorted: &[f64], n: usize) -> Vec<f64> {
    let m = sorted.len();
    (0..n)
        .map(|i| sorted[((2 * i + 1) * m / (2 * n)).min(m - 1)])
        .collect()
}

/// The boundary between two sorted centroids: a point at or below it belongs to the lower.
#[inline]
pub(crate) fn midpoint(a: f64, b: f64) -> f64 {
    0.5 * (a + b)
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

impl Backend for Cpu1d {
    fn device_name(&self) -> String {
        "cpu".to_string()
    }

    fn assign_reduce(&mut self) -> Result<()> {
        let n = self.centroids.len();
        let sorted = self.sorted.samples();
        self.bounds[0] = 0;
        self.bounds[n] = sorted.len();
        self.mids.clear();
        self.mids
            .extend(self.centroids.windows(2).map(|w| midpoint(w[0], w[1])));
        // Ties (a point exactly on the midpoint) go to the lower cell, as in the d-D argmin.
        // The last bounds are where the searches start.
        // Each prefix entry asked for as soon as its bound is found, so that its miss
        // overlaps the searches still going on.
        let prefix = &self.prefix;
        self.searches
            .counts(&self.sorted, &self.mids, &mut self.bounds[1..n], |b| {
                prefetch(&prefix[b])
            });
        prefetch(&self.prefix[self.bounds[n]]);
        self.at_bounds.clear();
        // The loads in a loop of their own, after the prefetches: independent misses overlap.
        self.at_bounds
            .extend(self.bounds.iter().map(|&b| self.prefix[b]));
        let s = &mut self.sums;
        let cells = s.counts.iter_mut().zip(&mut s.sums).zip(&mut s.squares);
        for (((count, sum), square), (b, p)) in
            cells.zip(self.bounds.windows(2).zip(self.at_bounds.windows(2)))
        {
            *count = (b[1] - b[0]) as u64;
            *sum = p[1].0 - p[0].0;
            *square = p[1].1 - p[0].1;
        }
        // Each cell's ends matter only to the empty-cell policy: read when a cell is empty.
        if s.counts.contains(&0) {
            for (i, b) in self.bounds.windows(2).enumerate() {
                (s.low[i], s.high[i]) = if b[1] > b[0] {
                    (sorted[b[0]], sorted[b[1] - 1])
                } else {
                    (f64::INFINITY, f64::NEG_INFINITY)
                };
            }
        }
        let errors = self
            .errors
            .errors(&self.bounds, &self.sums, &self.centroids);
        let stats = &mut self.stats;
        stats.counts.clone_from(&self.sums.counts);
        stats.mass.clear();
        stats
            .mass
            .extend(self.sums.counts.iter().map(|&n| n as f64));
        // Back to the caller's units, times 1/unit twice: exact steps (powers of two) where
        // unit² may underflow, and products where a division took a tenth of the iteration.
        // (1/unit overflows only for samples beyond 2¹⁰²³, whose squares f64 cannot hold.)
        let inverse = 1.0 / self.unit;
        stats.sse.clear();
        if inverse.is_finite() {
            stats
                .sse
                .extend(errors.iter().map(|e| e * inverse * inverse));
        } else {
            // unit = 2⁻ᵏ with frexp's exponent 1 − k.
            let k = 1 - libm::frexp(self.unit).1;
            stats
                .sse
                .extend(errors.iter().map(|&e| libm::scalbn(e, 2 * k)));
        }
        Ok(())
    }

    fn sse(&mut self) -> Result<f64> {
        Ok(self.stats.sse.iter().sum())
    }

    fn update(&mut self) -> Result<Update> {
        let (mut centroids, splits) = self.sums.means_and_splits(&self.centroids);
        if let Some(frame) = &self.frame {
            let unit = self.unit;
            let caller = frame.to_caller(&centroids.iter().map(|c| c / unit).collect::<Vec<_>>());
            centroids = frame
                .to_device_f64(&caller)
                .iter()
                .map(|c| c * unit)
                .collect();
            self.caller = Some(caller);
        }
        let moved = centroids != self.centroids;
        self.centroids = centroids;
        Ok(Update { splits, moved })
    }

    fn centroids(&mut self) -> Result<Vec<f64>> {
        Ok(self.centroids.iter().map(|&c| c / self.unit).collect())
    }

    fn caller_centroids(&mut self, frame: &Frame) -> Result<Vec<f64>> {
        Ok(match (&self.caller, &self.frame) {
            (Some(c), Some(f)) if f == frame => c.clone(),
            _ => frame.to_caller(&self.centroids()?),
        })
    }

    fn set_centroids(&mut self, centroids: &[f64]) -> Result<()> {
        self.caller = None;
        self.start_from(centroids.to_vec());
        Ok(())
    }

    fn cell_stats(&mut self) -> Result<CellStats> {
        Ok(self.stats.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over several chunks and a partial last one, the threads' prefix sums are the running
    /// sums taken one sample after another.
    #[test]
    fn prefix_sums_are_the_running_sums() {
        let mut xs: Vec<f64> = (0..200_003u32)
            .map(|i| (f64::from(i.wrapping_mul(2_654_435_761)) / 4.3e9) - 0.5)
            .collect();
        xs.sort_by(f64::total_cmp);
        let prefix = prefix_sums(&xs);
        assert_eq!(prefix.len(), xs.len() + 1);
        let (mut s1, mut s2) = (0i128, 0i128);
        for (i, &x) in xs.iter().enumerate() {
            assert_eq!((prefix[i].0, prefix[i].1), (s1, s2), "at {i}");
            s1 += fixed(x);
            s2 += fixed_square(x);
        }
        assert_eq!((prefix[xs.len()].0, prefix[xs.len()].1), (s1, s2));
    }
}
