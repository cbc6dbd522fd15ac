//! Product-quantization codes (and a single codebook's labels: one sub-space) on the CPU in
//! one pass over the data: each task takes a block of rows through every sub-space (its
//! sub-vectors converted into the sub-space's frame, ranked, certified), so the rows are
//! read once, in place, and nothing of the size of the data is allocated but the codes.
//!
//! Certified against the caller's values: a sub-vector the f32 ranking cannot decide (its
//! rounding into the frame included) is decided by distances between the caller's values,
//! only scaled by a power of two. Centring rounds: on integer data, where a sub-vector is
//! often equidistant from two centroids or 10⁻⁸ from one and 0 from another, the centred
//! values broke such ties at random.

use rayon::prelude::*;

use super::cpu_dense::DenseCentroids;
use super::exact::{squared_f64, undecided_for_rounded_point};
use super::rank::{Ranker, Scratch, squared_distance, squared_norm};
use crate::frame::Frame;
use crate::real::Real;

/// Rows per task: the block's sub-vectors, labels and distances stay in L1/L2 for every
/// sub-space.
const BLOCK: usize = 256;

/// One sub-space's codebook as the CPU encodes with it: its frame (the caller's values to
/// device units, and back), its centroids in that frame, and the caller's centroids scaled
/// as [`Frame::to_scaled`] scales values.
pub(crate) struct SubSpace {
    pub frame: Frame,
    pub centroids: DenseCentroids,
    pub scaled: Vec<f64>,
}

impl SubSpace {
    /// The sub-space of the caller's `centroids` (row-major, `dim` columns) in `frame`.
    pub(crate) fn new(frame: Frame, centroids: &[f64], dim: usize) -> Self {
        SubSpace {
            centroids: DenseCentroids::new(&frame.to_device_f64(centroids), dim),
            scaled: centroids.iter().map(|&v| frame.to_scaled(v)).collect(),
            frame,
        }
    }

    /// The nearest centroid to the caller's sub-vector `x` by differences of the caller's
    /// values (scaled alike), lowest index on ties.
    fn nearest_to_caller<T: Real>(&self, x: &[T]) -> u32 {
        let xs: Vec<f64> = x.iter().map(|v| self.frame.to_scaled(v.to_f64())).collect();
        let mut best = (0u32, f64::INFINITY);
        for (j, c) in self.scaled.chunks_exact(xs.len()).enumerate() {
            let d: f64 = xs.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum();
            if d < best.1 {
                best = (j as u32, d);
            }
        }
        best.0
    }

    /// Keeps each ranked label the f32 ranking decided, decides the others on the caller's
    /// values (`rows`, `row_len` values each, this sub-space's from `first`), and fills each
    /// row's squared distance to its centroid in the frame's units (from `x`, the rows in
    /// the frame).
    #[allow(clippy::too_many_arguments)]
    fn certify<T: Real>(
        &self,
        x: &[f32],
        rows: &[T],
        row_len: usize,
        first: usize,
        labels: &mut [u32],
        gaps: &[f32],
        dist: &mut [f64],
    ) {
        let c = &self.centroids;
        let dim = c.dim;
        for (r, (x, row)) in x
            .chunks_exact(dim)
            .zip(rows.chunks_exact(row_len))
            .enumerate()
        {
            let mut l = labels[r] as usize;
            let best = f64::from(squared_distance(x, &c.c32[l * dim..(l + 1) * dim]));
            let norm = f64::from(squared_norm(x)).sqrt();
            if undecided_for_rounded_point(norm, best * 1.001, f64::from(gaps[r]), dim) {
                l = self.nearest_to_caller(&row[first..first + dim]) as usize;
                labels[r] = l as u32;
            }
            dist[r] = squared_f64(x, &c.c64[l * dim..(l + 1) * dim]);
        }
    }
}

/// A thread's buffers for one block of one sub-space.
#[derive(Default)]
struct Buffers {
    x: Vec<f32>,
    labels: Vec<u32>,
    gaps: Vec<f32>,
    dist: Vec<f64>,
    scratch: Scratch,
}

/// The codes of the rows of `data` (`dim` columns, split evenly over `subs`), row-major
/// `n x m`, each the nearest centroid of its sub-space to the caller's values (ties to the
/// lowest index) stored as `code` makes it (u8, u16 or u32, written once), and each
/// sub-space's sum of squared distances in its frame's units: summed over each block of
/// rows, then over the blocks in order, so the same bits whatever the thread count.
pub(crate) fn encode<T: Real, C: Copy + Default + Send>(
    data: &[T],
    dim: usize,
    subs: &[SubSpace],
    code: impl Fn(u32) -> C + Sync,
) -> (Vec<C>, Vec<f64>) {
    let m = subs.len();
    let dsub = dim / m;
    let n = data.len() / dim;
    let rankers: Vec<Ranker> = subs.iter().map(|s| Ranker::new(&s.centroids)).collect();
    let mut codes = vec![C::default(); n * m];
    let block_sums: Vec<Vec<f64>> = codes
        .par_chunks_mut(BLOCK * m)
        .zip(data.par_chunks(BLOCK * dim))
        .map_init(Buffers::default, |buf, (codes, rows)| {
            let r = rows.len() / dim;
            buf.x.resize(r * dsub, 0.0);
            buf.labels.resize(r, 0);
            buf.gaps.resize(r, 0.0);
            buf.dist.resize(r, 0.0);
            let mut sums = Vec::with_capacity(m);
            for (j, (sub, ranker)) in subs.iter().zip(&rankers).enumerate() {
                let x = &mut buf.x[..r * dsub];
                sub.frame.columns_to_device_f32(rows, dim, j * dsub, x);
                let (labels, gaps) = (&mut buf.labels[..r], &mut buf.gaps[..r]);
                ranker.rank_rows(x, labels, gaps, &mut buf.scratch);
                let dist = &mut buf.dist[..r];
                sub.certify(x, rows, dim, j * dsub, labels, gaps, dist);
                for (row, &l) in codes.chunks_exact_mut(m).zip(labels.iter()) {
                    row[j] = code(l);
                }
                sums.push(dist.iter().sum::<f64>());
            }
            sums
        })
        .collect();
    let mut sse = vec![0.0f64; m];
    for sums in &block_sums {
        for (s, b) in sse.iter_mut().zip(sums) {
            *s += b;
        }
    }
    (codes, sse)
}
