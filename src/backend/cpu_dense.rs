//! The d-dimensional CPU backend: distances through a blocked SIMD matrix product
//! (‖x‖² − 2x·c + ‖c‖², the ‖x‖² term dropped since it does not change the arg-min), a
//! vectorised arg-min that also keeps the runner-up, certified labels (points the f32
//! ranking cannot decide are decided again in f64, see [`super::exact`]), then exact
//! fixed-point per-cell sums ([`super::cell_sums`]).

use std::borrow::Cow;

use rayon::prelude::*;

use super::cell_sums::{CellSums, Halves, Labelled};
use super::framed::{Ranked, SubSpace};
use super::lloyd_pass::{Converted, Pass, add_block, all_inside, lloyd_pass};
use super::rank::Ranker;
use super::{Backend, CellStats, Update};
use crate::error::Result;
use crate::frame::Frame;
use crate::real::Real;
use crate::weights::Weights;

/// Rows of points per block of the distance product.
pub(crate) const ROWS: usize = 128;
/// Points per accumulation chunk, and the most chunks (each holds k x d fixed-point sums).
const CHUNK_POINTS: usize = 8192;
const MAX_CHUNKS: usize = 16;
const CHUNK_BYTES_BUDGET: usize = 256 << 20;

/// Centroids as the assignment uses them: f64 (the truth, used to certify labels) and their
/// f32 rounding with squared norms (for the fast ranking).
pub(crate) struct DenseCentroids {
    pub c64: Vec<f64>,
    pub c32: Vec<f32>,
    pub norms: Vec<f32>,
    pub dim: usize,
}

impl DenseCentroids {
    pub(crate) fn new(c64: &[f64], dim: usize) -> Self {
        let c32: Vec<f32> = c64.iter().map(|&v| v as f32).collect();
        // Summed in f64 and rounded once: within one unit of ‖c‖², as the certification's
        // recomputed values assume (an f32 running sum would be within d units).
        let norms = c32
            .chunks_exact(dim)
            .map(|c| c.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() as f32)
            .collect();
        DenseCentroids {
            c64: c64.to_vec(),
            c32,
            norms,
            dim,
        }
    }

    pub(crate) fn k(&self) -> usize {
        self.norms.len()
    }
}

/// The nearest centroid of each point of `data` (row-major, `dim` columns, already in the
/// frame: no other values of them exist), ties to the lowest index, with the squared
/// distance to it in f64. Labels are certified ([`SubSpace::certify`], in the identity
/// frame): where the f32 ranking is within its rounding bound of a tie, the point is
/// decided in f64.
pub(crate) fn assign_dense(
    data: &[f32],
    centroids: &DenseCentroids,
    labels: &mut [u32],
    dist: &mut [f64],
) {
    let dim = centroids.dim;
    let c = &centroids.c64;
    let space = SubSpace::of_device(Frame::identity(dim), c, c, dim);
    // The runner-up's value minus the best's, per point.
    let mut gaps = vec![0.0f32; labels.len()];
    let ranker = Ranker::new(centroids);
    ranker.rank(data, labels, &mut gaps);
    labels
        .par_chunks_mut(ROWS)
        .zip(dist.par_chunks_mut(ROWS))
        .zip(gaps.par_chunks(ROWS))
        .zip(data.par_chunks(ROWS * dim))
        .for_each(|(((labels, dist), gaps), x)| {
            space.certify(Ranked {
                x,
                rows: x,
                row_len: dim,
                first: 0,
                labels,
                gaps,
                terms: ranker.terms(),
                dist,
            });
        });
}

/// Per-cell statistics of labelled points (frame units; weights already in the frame's
/// unit), over chunks fixed by the sizes alone and merged exactly: the same bits whatever the
/// thread count, and the same as the statistics of any split of the points merged. `first`
/// is the row of `data`'s first point in the whole; the far and near points are filled.
#[allow(clippy::too_many_arguments)]
pub(crate) fn reduce_dense<V: Real>(
    data: &[V],
    weights: Option<&[f64]>,
    dim: usize,
    k: usize,
    labels: &[u32],
    dist: &[f64],
    error_exp: i32,
    first: u64,
) -> CellSums {
    let n = labels.len();
    // Each chunk's i128 sums, and the f64 halves of the unweighted path.
    let per_chunk_bytes = (2 * k * dim + 4 * k) * 16;
    let chunks = (n / CHUNK_POINTS)
        .clamp(1, MAX_CHUNKS)
        .min((CHUNK_BYTES_BUDGET / per_chunk_bytes).max(1));
    let len = n.div_ceil(chunks);
    let partial: Vec<CellSums> = (0..chunks)
        .into_par_iter()
        .map(|c| {
            let mut r = CellSums::zeros(k, dim, error_exp);
            let mut halves = Halves::default();
            let rows = c * len..((c + 1) * len).min(n);
            let pass = Labelled {
                data: &data[rows.start * dim..rows.end * dim],
                labels: &labels[rows.clone()],
                dist: &dist[rows.clone()],
                first: first + rows.start as u64,
            };
            add_block(&mut r, &mut halves, &pass, weights.map(|w| &w[rows]), false);
            r.carry(&mut halves);
            r
        })
        .collect();
    let mut it = partial.into_iter();
    let mut all = it.next().expect("at least one chunk");
    for p in it {
        all.merge(&p)
            .expect("chunks of one pass share their centroids");
    }
    all.fill_points(data, first);
    all
}

/// The rows of a fit (the caller's, or already in the fit's frame), the current centroids
/// and the last pass's labels and statistics. Each pass is one [`lloyd_pass`] over the
/// rows, so a fit's statistics are those [`crate::LloydStats`] computes for the same rows
/// and its labels those its codebook gives.
pub(crate) struct CpuDense<'a, T: Real> {
    /// The caller's rows; None for points drawn in the frame, which have no other values
    /// and are decided on as they are.
    rows: Option<&'a [T]>,
    /// The rows in the fit's frame, rounded to f32: what the ranking reads.
    points: Cow<'a, [f32]>,
    /// Whether every value of `points` lies in [−1, 1], found once for every pass.
    inside: bool,
    /// Weights in the frame's unit.
    weights: Option<Vec<f64>>,
    frame: Frame,
    dim: usize,
    /// The centroids in the frame that takes `rows` into the fit's (the identity for points
    /// drawn in it), with the values undecided labels are decided on.
    space: SubSpace,
    /// The centroids in the caller's units, when the last update made them or the caller
    /// gave them.
    caller: Option<Vec<f64>>,
    /// The last pass's labels and sums, with the memory the next pass reuses.
    pass: Pass,
}

impl<'a> CpuDense<'a, f32> {
    /// `points` already in `frame`'s units (drawn there), `weights` the caller's (validated);
    /// `centroids` is `k x dim` in frame units.
    pub(crate) fn new(
        points: impl Into<Cow<'a, [f32]>>,
        weights: Option<Weights<'_>>,
        frame: &Frame,
        centroids: &[f64],
    ) -> Self {
        Self::with_rows(None, points.into(), weights, frame, centroids, None)
    }

    /// Replaces the points (as many, in the same frame).
    pub(crate) fn replace_points(&mut self, data: Vec<f32>) {
        debug_assert!(self.rows.is_none() && data.len() == self.points.len());
        self.inside = all_inside_parallel(&data);
        self.points = Cow::Owned(data);
    }
}

impl<'a, T: Real> CpuDense<'a, T> {
    /// The caller's `rows` (validated, inside `frame`'s bounds), `points` their values in
    /// the frame ([`Frame::to_device_f32`]) and `weights`; `centroids` is `k x dim` in frame
    /// units, `caller` their caller's values where the caller gave them (labels are decided
    /// on those, as [`crate::LloydStats`] decides them).
    pub(crate) fn of_caller(
        rows: &'a [T],
        points: &'a [f32],
        weights: Option<Weights<'_>>,
        frame: &Frame,
        centroids: &[f64],
        caller: Option<&[f64]>,
    ) -> Self {
        let points = Cow::Borrowed(points);
        Self::with_rows(Some(rows), points, weights, frame, centroids, caller)
    }

    fn with_rows(
        rows: Option<&'a [T]>,
        points: Cow<'a, [f32]>,
        weights: Option<Weights<'_>>,
        frame: &Frame,
        centroids: &[f64],
        caller: Option<&[f64]>,
    ) -> Self {
        let dim = frame.dim();
        let n = points.len() / dim;
        let k = centroids.len() / dim;
        CpuDense {
            space: space_of(rows.is_some().then_some(frame), centroids, caller, dim),
            rows,
            inside: all_inside_parallel(&points),
            points,
            weights: weights.map(|w| frame.weights_to_device(w)),
            frame: frame.clone(),
            dim,
            caller: caller.map(<[f64]>::to_vec),
            pass: Pass::new(n, k, dim),
        }
    }

    /// [`space_of`] for this fit's rows.
    fn space_for(&self, device: &[f64], caller: Option<&[f64]>) -> SubSpace {
        space_of(
            self.rows.is_some().then_some(&self.frame),
            device,
            caller,
            self.dim,
        )
    }
}

/// [`all_inside`] on every thread: a fit's points are tested once, before its first pass.
fn all_inside_parallel(points: &[f32]) -> bool {
    points.par_chunks(1 << 16).all(all_inside)
}

/// The space of centroids `device` (frame units) whose caller's values are `caller` where
/// known: in `frame` for the caller's rows, in the identity frame (`None`) for points drawn
/// in the fit's frame.
fn space_of(frame: Option<&Frame>, device: &[f64], caller: Option<&[f64]>, dim: usize) -> SubSpace {
    let Some(frame) = frame else {
        return SubSpace::of_device(Frame::identity(dim), device, device, dim);
    };
    let caller = caller.map_or_else(|| frame.to_caller(device), <[f64]>::to_vec);
    SubSpace::of_device(frame.clone(), device, &caller, dim)
}

impl<T: Real> Backend for CpuDense<'_, T> {
    fn device_name(&self) -> String {
        "cpu".to_string()
    }

    fn assign_reduce(&mut self) -> Result<()> {
        let weights = self.weights.as_deref();
        // Unbounded: the caller's rows are inside the frame built from them, and samples of
        // a law may lie beyond ±1 of the identity frame they are drawn in.
        let converted = Converted {
            values: &self.points,
            inside: self.inside,
        };
        let (space, pass) = (&self.space, &mut self.pass);
        match self.rows {
            Some(rows) => lloyd_pass(space, rows, Some(converted), weights, 0, false, pass),
            None => lloyd_pass(
                space,
                &self.points,
                Some(converted),
                weights,
                0,
                false,
                pass,
            ),
        }
        .expect("an unbounded pass has no row outside");
        Ok(())
    }

    fn sse(&mut self) -> Result<f64> {
        Ok(self.pass.sums.total_error() / self.frame.weight_unit())
    }

    /// The means, the empty-cell policy, then the caller's units and back: the centroids
    /// of the next pass are exactly those [`crate::LloydStats::update`] would hand a caller
    /// who measures them again, so a fit equals a fit merged from parts.
    fn update(&mut self) -> Result<Update> {
        let (c, splits) = self.pass.sums.means_and_splits(&self.space.centroids.c64);
        let caller = self.frame.to_caller(&c);
        let c = self.frame.to_device_f64(&caller);
        let moved = c != self.space.centroids.c64;
        self.space = self.space_for(&c, Some(&caller));
        self.caller = Some(caller);
        Ok(Update { splits, moved })
    }

    fn centroids(&mut self) -> Result<Vec<f64>> {
        Ok(self.space.centroids.c64.clone())
    }

    fn caller_centroids(&mut self, frame: &Frame) -> Result<Vec<f64>> {
        Ok(match &self.caller {
            Some(c) if *frame == self.frame => c.clone(),
            _ => frame.to_caller(&self.space.centroids.c64),
        })
    }

    fn set_centroids(&mut self, centroids: &[f64]) -> Result<()> {
        self.space = self.space_for(centroids, None);
        self.caller = None;
        Ok(())
    }

    fn cell_stats(&mut self) -> Result<CellStats> {
        Ok(self.pass.sums.cell_stats(self.frame.weight_unit()))
    }

    fn labels(&mut self) -> Result<Vec<u32>> {
        Ok(self.pass.labels.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::exact::nearest_direct;
    use crate::backend::rank::rank_gemm;

    fn random(seed: u64) -> impl FnMut() -> f32 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
    }

    /// Certified labels equal a brute-force f64 scan exactly, on awkward sizes, and the
    /// ranking paths (the AVX-512 kernel or the AVX2 small-dimension one where the CPU has
    /// it, the portable one) agree with each other up to near-ties. Sizes that are not
    /// multiples of a kernel's group of points or of its batch of centroids, one point, one
    /// centroid; at d = 2, points and centroids on a coarse grid (exact ties) with the first
    /// centroid repeated.
    #[test]
    fn certified_labels_equal_brute_force() {
        let mut rnd = random(12345);
        for (n, dim, k) in [
            (1usize, 1usize, 1usize),
            (7, 3, 2),
            (300, 17, 33),
            (1000, 64, 520),
            (129, 5, 16),
            (2049, 8, 256),
            (9, 8, 67),
            (333, 7, 1),
            (1000, 2, 17),
        ] {
            let coarse = |v: f32| if dim == 2 { (v * 4.0).round() / 4.0 } else { v };
            let data: Vec<f32> = (0..n * dim).map(|_| coarse(rnd())).collect();
            let mut c64: Vec<f64> = (0..k * dim)
                .map(|_| f64::from(coarse(rnd())) * 1.000_000_1)
                .collect();
            if k > 2 {
                let (first, rest) = c64.split_at_mut(dim);
                rest[..dim].copy_from_slice(first);
            }
            let cents = DenseCentroids::new(&c64, dim);
            let mut got = (vec![0u32; n], vec![0f64; n]);
            assign_dense(&data, &cents, &mut got.0, &mut got.1);
            for i in 0..n {
                let x = &data[i * dim..(i + 1) * dim];
                let (l, d) = nearest_direct(x, &c64, dim);
                assert_eq!(got.0[i], l, "n{n} d{dim} k{k} point {i}");
                assert_eq!(got.1[i], d);
            }
            let mut portable = (vec![0u32; n], vec![0f32; n]);
            rank_gemm(&data, &cents, &mut portable.0, &mut portable.1);
            for i in 0..n {
                if portable.0[i] != got.0[i] {
                    assert!(portable.1[i] < 1e-4, "point {i}: gap {}", portable.1[i]);
                }
            }
        }
    }

    /// Far from the origin the f32 ranking is wrong for many points; certification fixes
    /// every one of them.
    #[test]
    fn labels_stay_exact_far_from_the_origin() {
        let mut rnd = random(7);
        let (n, dim, k) = (2000usize, 8usize, 64usize);
        let data: Vec<f32> = (0..n * dim).map(|_| 1e4 + rnd()).collect();
        let c64: Vec<f64> = (0..k * dim).map(|_| 1e4 + f64::from(rnd())).collect();
        let cents = DenseCentroids::new(&c64, dim);
        let mut got = (vec![0u32; n], vec![0f64; n]);
        assign_dense(&data, &cents, &mut got.0, &mut got.1);
        for i in 0..n {
            let x = &data[i * dim..(i + 1) * dim];
            assert_eq!(got.0[i], nearest_direct(x, &c64, dim).0, "point {i}");
        }
    }
}
