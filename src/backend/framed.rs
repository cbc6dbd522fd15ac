//! Centroids in a frame as the CPU assigns with them, and the certification of labels
//! against the caller's values: a point the f32 ranking cannot decide (its rounding into the
//! frame included) is decided by distances between the caller's values, only scaled by a
//! power of two. Centring rounds: on integer data, where a point is often equidistant from
//! two centroids or 10⁻⁸ from one and 0 from another, the centred values broke such ties at
//! random. Product-quantization codes, codebook labels and Lloyd passes all certify here, so
//! a fit's labels are the labels its codebook gives.

use super::cpu_dense::DenseCentroids;
use super::exact::{squared_f64, undecided_for_rounded_point};
use super::rank::{Scratch, squared_distance, squared_norm};
use crate::frame::Frame;
use crate::real::Real;

/// Rows per block: a block's points, labels and distances stay in L1/L2 while it is ranked,
/// certified and summed.
pub(crate) const BLOCK: usize = 256;

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

    /// The sub-space of centroids already in `frame`'s units (`device`), whose caller's values
    /// are `caller` (those `device` rounds, as a fit's update makes them).
    pub(crate) fn of_device(frame: Frame, device: &[f64], caller: &[f64], dim: usize) -> Self {
        SubSpace {
            centroids: DenseCentroids::new(device, dim),
            scaled: caller.iter().map(|&v| frame.to_scaled(v)).collect(),
            frame,
        }
    }

    /// The nearest centroid to the caller's sub-vector `x` by differences of the caller's
    /// values (scaled alike), lowest index on ties.
    #[inline(always)]
    fn nearest_to_caller<T: Real>(&self, x: &[T]) -> u32 {
        let xs: Vec<f64> = x.iter().map(|v| self.frame.to_scaled(v.to_f64())).collect();
        let mut best = (0u32, f64::INFINITY);
        for (j, c) in self.scaled.chunks_exact(xs.len()).enumerate() {
            // Eight partial sums in a fixed order: the same bits on every CPU, and vectorised
            // (at d = 768 a sequential sum made deciding a point cost more than ranking it).
            let d = squared_f64(&xs, c);
            if d < best.1 {
                best = (j as u32, d);
            }
        }
        best.0
    }

    /// Keeps each ranked label of `block` the f32 ranking decided, decides the others on
    /// the caller's values, and fills each row's squared distance to its centroid in the
    /// frame's units.
    pub(crate) fn certify<T: Real>(&self, block: Ranked<'_, T>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the feature it is compiled for was just detected.
            unsafe { self.certify_avx2(block) };
            return;
        }
        self.certify_rows(block);
    }

    /// [`SubSpace::certify`] with AVX2: the same operations four f64 lanes wide (no FMA:
    /// the same bits).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn certify_avx2<T: Real>(&self, block: Ranked<'_, T>) {
        self.certify_rows(block);
    }

    #[inline(always)]
    fn certify_rows<T: Real>(&self, b: Ranked<'_, T>) {
        let c = &self.centroids;
        let dim = c.dim;
        for (r, (x, row)) in
            b.x.chunks_exact(dim)
                .zip(b.rows.chunks_exact(b.row_len))
                .enumerate()
        {
            let mut l = b.labels[r] as usize;
            let best = f64::from(squared_distance(x, &c.c32[l * dim..(l + 1) * dim]));
            let norm = f64::from(squared_norm(x)).sqrt();
            if undecided_for_rounded_point(norm, best * 1.001, f64::from(b.gaps[r]), dim) {
                l = self.nearest_to_caller(&row[b.first..b.first + dim]) as usize;
                b.labels[r] = l as u32;
            }
            b.dist[r] = squared_f64(x, &c.c64[l * dim..(l + 1) * dim]);
        }
    }
}

/// A block of rows as the ranking left it, for [`SubSpace::certify`].
pub(crate) struct Ranked<'a, T> {
    /// The rows in the sub-space's frame, its dimension each.
    pub x: &'a [f32],
    /// The caller's rows, `row_len` values each, the sub-space's from column `first`.
    pub rows: &'a [T],
    pub row_len: usize,
    pub first: usize,
    /// The ranking's labels (certified in place) and gaps (the runner-up's value minus the
    /// best's).
    pub labels: &'a mut [u32],
    pub gaps: &'a [f32],
    /// Each row's squared distance to its certified centroid, in the frame's units.
    pub dist: &'a mut [f64],
}

/// A thread's buffers for one block of one sub-space.
#[derive(Default)]
pub(crate) struct Buffers {
    pub x: Vec<f32>,
    pub labels: Vec<u32>,
    pub gaps: Vec<f32>,
    pub dist: Vec<f64>,
    pub scratch: Scratch,
}
