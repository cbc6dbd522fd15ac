//! The d-dimensional CPU backend: distances through a blocked SIMD matrix product
//! (‖x‖² − 2x·c + ‖c‖², the ‖x‖² term dropped since it does not change the arg-min), a
//! vectorised arg-min that also keeps the runner-up, certified labels (points the f32
//! ranking cannot decide are decided again in f64, see [`super::exact`]), then per-cell sums
//! accumulated in f64 over a fixed number of chunks so the result does not depend on the
//! thread count.

use std::borrow::Cow;

use rayon::prelude::*;

use super::empty_cells::{Extremes, split_empty_cells};
use super::exact::{nearest_direct, squared_f64, undecided};
use super::{Backend, CellStats, Update};
use crate::error::Result;

/// Rows of points per block of the distance product.
const ROWS: usize = 128;
/// Centroids per tile of the distance product; `ROWS * TILE` floats stay in L2.
const TILE: usize = 512;
/// Points per accumulation chunk, and the most chunks (each holds k x d f64 sums).
const CHUNK_POINTS: usize = 8192;
const MAX_CHUNKS: usize = 16;
const CHUNK_BYTES_BUDGET: usize = 256 << 20;
/// Lanes of the portable arg-min (and of an AVX-512 register of f32).
pub(crate) const LANES: usize = 16;

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
        let norms = c32
            .chunks_exact(dim)
            .map(|c| c.iter().map(|v| v * v).sum())
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

/// Points (borrowed, in the fit's frame), current centroids and the last pass's labels and
/// statistics.
pub(crate) struct CpuDense<'a> {
    data: Cow<'a, [f32]>,
    weights: Option<&'a [f32]>,
    dim: usize,
    k: usize,
    centroids: DenseCentroids,
    labels: Vec<u32>,
    dist: Vec<f64>,
    sums: Vec<f64>,
    stats: CellStats,
    extremes: Extremes,
}

impl<'a> CpuDense<'a> {
    /// `data` and `weights` must be validated; `centroids` is `k x dim`.
    pub(crate) fn new(
        data: impl Into<Cow<'a, [f32]>>,
        weights: Option<&'a [f32]>,
        dim: usize,
        centroids: &[f64],
    ) -> Self {
        let data = data.into();
        let n = data.len() / dim;
        let k = centroids.len() / dim;
        CpuDense {
            data,
            weights,
            dim,
            k,
            centroids: DenseCentroids::new(centroids, dim),
            labels: vec![0; n],
            dist: vec![0.0; n],
            sums: vec![0.0; k * dim],
            stats: CellStats::zeros(k),
            extremes: Extremes {
                splittable: vec![false; k],
                far: vec![0.0; k * dim],
            },
        }
    }

    /// Labels of the last [`Backend::assign_reduce`].
    pub(crate) fn labels(&self) -> &[u32] {
        &self.labels
    }
}

/// The nearest centroid of each point of `data` (row-major, `dim` columns), ties to the
/// lowest index, with the squared distance to it in f64. Labels are certified: where the
/// f32 ranking is within its rounding bound of a tie, the point is decided in f64.
pub(crate) fn assign_dense(
    data: &[f32],
    centroids: &DenseCentroids,
    labels: &mut [u32],
    dist: &mut [f64],
) {
    let dim = centroids.dim;
    // The runner-up's value minus the best's, per point.
    let mut gaps = vec![0.0f32; labels.len()];
    rank(data, centroids, labels, &mut gaps);
    labels
        .par_chunks_mut(ROWS)
        .zip(dist.par_chunks_mut(ROWS))
        .zip(gaps.par_chunks(ROWS))
        .enumerate()
        .for_each(|(block, ((lab, dis), gap))| {
            let r0 = block * ROWS;
            for r in 0..lab.len() {
                let x = &data[(r0 + r) * dim..(r0 + r + 1) * dim];
                let l = lab[r] as usize;
                // The f32 distance (eight partial sums) is within a few ulps: enough for the
                // bound (which has a margin) and for the error sums; undecided points get
                // f64 throughout.
                let best = f64::from(squared_distance(x, &centroids.c32[l * dim..(l + 1) * dim]));
                let norm = f64::from(squared_norm(x)).sqrt();
                if undecided(norm, best * 1.001, f64::from(gap[r]), dim) {
                    let (l, d) = nearest_direct(x, &centroids.c64, dim);
                    lab[r] = l;
                    dis[r] = d;
                } else {
                    dis[r] = squared_f64(x, &centroids.c64[l * dim..(l + 1) * dim]);
                }
            }
        });
}

/// The f32 ranking: each point's best centroid and the gap to its runner-up (infinite with
/// one centroid).
fn rank(data: &[f32], centroids: &DenseCentroids, labels: &mut [u32], gaps: &mut [f32]) {
    let dim = centroids.dim;
    #[cfg(target_arch = "x86_64")]
    if super::avx512::available() {
        let packed = super::avx512::pack(&centroids.c32, &centroids.norms, dim);
        // Tasks of ~64 KiB of points: small dimensions get many rows per task, so the pool's
        // per-task cost stays small against the work.
        let rows = (16_384 / dim).clamp(ROWS, 4096);
        labels
            .par_chunks_mut(rows)
            .zip(gaps.par_chunks_mut(rows))
            .enumerate()
            .for_each(|(block, (lab, gap))| {
                let r0 = block * rows;
                let x = &data[r0 * dim..(r0 + lab.len()) * dim];
                // SAFETY: the CPU has AVX-512F (checked above); x holds lab.len() rows.
                unsafe { super::avx512::assign_rows(x, dim, &packed, lab, gap) };
            });
        return;
    }
    rank_gemm(data, centroids, labels, gaps);
}

/// The portable ranking: a blocked SIMD matrix product (the `gemm` crate dispatches to the
/// CPU's vector width at run time) and a lane-parallel arg-min.
pub(crate) fn rank_gemm(
    data: &[f32],
    centroids: &DenseCentroids,
    labels: &mut [u32],
    gaps: &mut [f32],
) {
    let (dim, k) = (centroids.dim, centroids.k());
    let tile = TILE.min(k);
    labels
        .par_chunks_mut(ROWS)
        .zip(gaps.par_chunks_mut(ROWS))
        .enumerate()
        .for_each_init(
            || {
                (
                    vec![0.0f32; ROWS * tile],
                    vec![(f32::INFINITY, f32::INFINITY); ROWS],
                )
            },
            |(dots, best), (block, (lab, gap))| {
                let r0 = block * ROWS;
                let rows = lab.len();
                let x = &data[r0 * dim..(r0 + rows) * dim];
                best[..rows].fill((f32::INFINITY, f32::INFINITY));
                for t0 in (0..k).step_by(tile) {
                    let nt = tile.min(k - t0);
                    let c = &centroids.c32[t0 * dim..(t0 + nt) * dim];
                    // SAFETY: every pointer/stride pair addresses inside its slice:
                    // dots is rows x nt (row stride nt), x is rows x dim (row stride dim),
                    // c read as its transpose dim x nt (column stride dim).
                    unsafe {
                        gemm::gemm(
                            rows,
                            nt,
                            dim,
                            dots.as_mut_ptr(),
                            1,
                            nt as isize,
                            false,
                            x.as_ptr(),
                            1,
                            dim as isize,
                            c.as_ptr(),
                            dim as isize,
                            1,
                            0.0,
                            1.0,
                            false,
                            false,
                            false,
                            gemm::Parallelism::None,
                        );
                    }
                    for r in 0..rows {
                        let (j, v, second) = argmin_shifted(
                            &dots[r * nt..(r + 1) * nt],
                            &centroids.norms[t0..t0 + nt],
                        );
                        let (bv, bs) = best[r];
                        if t0 == 0 || v < bv {
                            best[r] = (v, second.min(bv));
                            lab[r] = (t0 + j) as u32;
                        } else {
                            best[r] = (bv, bs.min(v));
                        }
                    }
                }
                for r in 0..rows {
                    gap[r] = best[r].1 - best[r].0;
                }
            },
        );
}

/// ‖x‖² in f32 with eight independent partial sums.
fn squared_norm(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    for x in &mut ca {
        for l in 0..8 {
            acc[l] += x[l] * x[l];
        }
    }
    acc.iter().sum::<f32>() + ca.remainder().iter().map(|v| v * v).sum::<f32>()
}

/// Exact squared Euclidean distance, in f32 with eight independent partial sums.
pub(crate) fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            let t = x[l] - y[l];
            acc[l] += t * t;
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += (x - y) * (x - y);
    }
    acc.iter().sum::<f32>() + tail
}

/// `argmin_j norms[j] - 2 dots[j]`, lowest index on ties: (index, value, runner-up value).
fn argmin_shifted(dots: &[f32], norms: &[f32]) -> (usize, f32, f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { argmin_avx512(dots, norms) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { argmin_avx2(dots, norms) };
        }
    }
    argmin_lanes(dots, norms)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn argmin_avx512(dots: &[f32], norms: &[f32]) -> (usize, f32, f32) {
    argmin_lanes(dots, norms)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn argmin_avx2(dots: &[f32], norms: &[f32]) -> (usize, f32, f32) {
    argmin_lanes(dots, norms)
}

/// Sixteen independent running minima and runners-up (vertical compare-and-select, which
/// vectorises), then [`finish_lanes`], then the tail.
#[inline(always)]
fn argmin_lanes(dots: &[f32], norms: &[f32]) -> (usize, f32, f32) {
    let mut val = [f32::INFINITY; LANES];
    let mut second = [f32::INFINITY; LANES];
    let mut idx = [u32::MAX; LANES];
    let whole = dots.len() / LANES * LANES;
    for base in (0..whole).step_by(LANES) {
        let d = &dots[base..base + LANES];
        let nrm = &norms[base..base + LANES];
        for l in 0..LANES {
            let v = nrm[l] - 2.0 * d[l];
            let better = v < val[l];
            // Plain compare-and-select (f32::min's NaN rules would stop vectorisation).
            let runner = if v < second[l] { v } else { second[l] };
            second[l] = if better { val[l] } else { runner };
            val[l] = if better { v } else { val[l] };
            idx[l] = if better { (base + l) as u32 } else { idx[l] };
        }
    }
    let (mut j, mut v, mut s) = finish_lanes(&val, &idx, &second);
    for t in whole..dots.len() {
        let x = norms[t] - 2.0 * dots[t];
        if x < v || j == usize::MAX {
            s = v;
            v = x;
            j = t;
        } else {
            s = s.min(x);
        }
    }
    // Every value was +inf or NaN (only possible with overflowing data): keep cell 0.
    (if j == usize::MAX { 0 } else { j }, v, s)
}

/// The lanes' running minima as one: the smallest value (lowest index among equal values;
/// `usize::MAX` when no lane holds one) and the smallest value left once that entry is
/// removed.
pub(crate) fn finish_lanes(
    val: &[f32; LANES],
    idx: &[u32; LANES],
    second: &[f32; LANES],
) -> (usize, f32, f32) {
    let mut best = (f32::INFINITY, usize::MAX, LANES);
    for l in 0..LANES {
        let i = if idx[l] == u32::MAX {
            usize::MAX
        } else {
            idx[l] as usize
        };
        if i != usize::MAX && (val[l] < best.0 || (val[l] == best.0 && i < best.1)) {
            best = (val[l], i, l);
        }
    }
    let mut runner_up = f32::INFINITY;
    for l in 0..LANES {
        runner_up = runner_up.min(second[l]);
        if l != best.2 {
            runner_up = runner_up.min(val[l]);
        }
    }
    (best.1, best.0, runner_up)
}

/// What one pass of [`reduce_dense`] finds per cell.
pub(crate) struct Reduced {
    /// Weighted coordinate sums, `k x dim`.
    pub sums: Vec<f64>,
    pub stats: CellStats,
    /// Each cell's farthest point (largest distance, lowest index on ties) and nearest point
    /// (smallest distance, highest index on ties); `u32::MAX` for an empty cell.
    pub far: Vec<u32>,
    pub near: Vec<u32>,
}

/// Per-cell weighted sums (k x dim), counts, masses, squared errors and extreme points of
/// labelled points, over a number of chunks fixed by the sizes alone, reduced in chunk order:
/// the same bits whatever the thread count.
pub(crate) fn reduce_dense(
    data: &[f32],
    weights: Option<&[f32]>,
    dim: usize,
    k: usize,
    labels: &[u32],
    dist: &[f64],
) -> Reduced {
    let n = labels.len();
    let per_chunk_bytes = (k * dim + 5 * k) * 8;
    let chunks = (n / CHUNK_POINTS)
        .clamp(1, MAX_CHUNKS)
        .min((CHUNK_BYTES_BUDGET / per_chunk_bytes).max(1));
    let len = n.div_ceil(chunks);
    let none = u32::MAX;
    // Per chunk: the reduction and each cell's extreme distances, kept beside the indices so
    // that no point's distance is looked up again.
    let partial: Vec<(Reduced, Vec<f64>, Vec<f64>)> = (0..chunks)
        .into_par_iter()
        .map(|c| {
            let mut r = Reduced {
                sums: vec![0.0f64; k * dim],
                stats: CellStats::zeros(k),
                far: vec![none; k],
                near: vec![none; k],
            };
            let mut far_d = vec![f64::NEG_INFINITY; k];
            let mut near_d = vec![f64::INFINITY; k];
            for i in c * len..((c + 1) * len).min(n) {
                let l = labels[i] as usize;
                let w = weights.map_or(1.0, |w| f64::from(w[i]));
                let st = &mut r.stats;
                st.counts[l] += 1;
                st.mass[l] += w;
                st.sse[l] += w * dist[i];
                let s = &mut r.sums[l * dim..(l + 1) * dim];
                for (acc, &x) in s.iter_mut().zip(&data[i * dim..(i + 1) * dim]) {
                    *acc += w * f64::from(x);
                }
                // Rows come in increasing order: `>` keeps the lowest index, `<=` the highest.
                if dist[i] > far_d[l] {
                    far_d[l] = dist[i];
                    r.far[l] = i as u32;
                }
                if dist[i] <= near_d[l] {
                    near_d[l] = dist[i];
                    r.near[l] = i as u32;
                }
            }
            (r, far_d, near_d)
        })
        .collect();
    let mut it = partial.into_iter();
    let (mut all, mut far_d, mut near_d) = it.next().expect("at least one chunk");
    // Later chunks hold higher indices: the same tie rules as within a chunk.
    for (p, pf, pn) in it {
        for (a, b) in all.sums.iter_mut().zip(&p.sums) {
            *a += b;
        }
        for j in 0..k {
            all.stats.counts[j] += p.stats.counts[j];
            all.stats.mass[j] += p.stats.mass[j];
            all.stats.sse[j] += p.stats.sse[j];
            if p.far[j] != none && pf[j] > far_d[j] {
                far_d[j] = pf[j];
                all.far[j] = p.far[j];
            }
            if p.near[j] != none && pn[j] <= near_d[j] {
                near_d[j] = pn[j];
                all.near[j] = p.near[j];
            }
        }
    }
    all
}

/// The split policy's view of the cells of a reduction: a cell is splittable when its
/// farthest and nearest points differ.
pub(crate) fn extremes_of(data: &[f32], dim: usize, r: &Reduced) -> Extremes {
    let k = r.far.len();
    let row = |i: u32| &data[i as usize * dim..(i as usize + 1) * dim];
    let mut far = vec![0.0f64; k * dim];
    let mut splittable = vec![false; k];
    for j in 0..k {
        if r.far[j] == u32::MAX {
            continue;
        }
        splittable[j] = row(r.far[j]) != row(r.near[j]);
        for (o, &x) in far[j * dim..(j + 1) * dim].iter_mut().zip(row(r.far[j])) {
            *o = f64::from(x);
        }
    }
    Extremes { splittable, far }
}

/// Moves centroids to their cells' weighted means (cells without mass keep theirs), then
/// applies the shared empty-cell policy. Returns the new centroids and the number of splits.
pub(crate) fn means_and_splits(
    old: &[f64],
    sums: &[f64],
    stats: &CellStats,
    extremes: &Extremes,
    dim: usize,
) -> (Vec<f64>, usize) {
    let mut c = old.to_vec();
    for (j, &m) in stats.mass.iter().enumerate() {
        if m > 0.0 {
            for t in 0..dim {
                c[j * dim + t] = sums[j * dim + t] / m;
            }
        }
    }
    let splits = split_empty_cells(&mut c, dim, stats, extremes);
    (c, splits)
}

impl Backend for CpuDense<'_> {
    fn device_name(&self) -> String {
        "cpu".to_string()
    }

    fn assign_reduce(&mut self) -> Result<()> {
        assign_dense(
            &self.data,
            &self.centroids,
            &mut self.labels,
            &mut self.dist,
        );
        let r = reduce_dense(
            &self.data,
            self.weights,
            self.dim,
            self.k,
            &self.labels,
            &self.dist,
        );
        // The split policy needs the extreme points only when a cell is empty.
        self.extremes = if r.stats.mass.iter().any(|&m| m <= 0.0) {
            extremes_of(&self.data, self.dim, &r)
        } else {
            Extremes {
                splittable: Vec::new(),
                far: Vec::new(),
            }
        };
        self.sums = r.sums;
        self.stats = r.stats;
        Ok(())
    }

    fn sse(&mut self) -> Result<f64> {
        Ok(self.stats.sse.iter().sum())
    }

    fn update(&mut self) -> Result<Update> {
        let (c, splits) = means_and_splits(
            &self.centroids.c64,
            &self.sums,
            &self.stats,
            &self.extremes,
            self.dim,
        );
        let moved = c != self.centroids.c64;
        self.centroids = DenseCentroids::new(&c, self.dim);
        Ok(Update { splits, moved })
    }

    fn centroids(&mut self) -> Result<Vec<f64>> {
        Ok(self.centroids.c64.clone())
    }

    fn set_centroids(&mut self, centroids: &[f64]) -> Result<()> {
        self.centroids = DenseCentroids::new(centroids, self.dim);
        Ok(())
    }

    fn cell_stats(&mut self) -> Result<CellStats> {
        Ok(self.stats.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    /// ranking paths (the AVX-512 kernel where the CPU has it, the portable one) agree with
    /// each other up to near-ties.
    #[test]
    fn certified_labels_equal_brute_force() {
        let mut rnd = random(12345);
        for (n, dim, k) in [
            (1usize, 1usize, 1usize),
            (7, 3, 2),
            (300, 17, 33),
            (1000, 64, 520),
            (129, 5, 16),
        ] {
            let data: Vec<f32> = (0..n * dim).map(|_| rnd()).collect();
            let c64: Vec<f64> = (0..k * dim)
                .map(|_| f64::from(rnd()) * 1.000_000_1)
                .collect();
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

    /// The lanes' merge keeps the lowest index among equal minima and the runner-up.
    #[test]
    fn lanes_merge_to_the_best_and_the_runner_up() {
        let mut val = [f32::INFINITY; LANES];
        let mut idx = [u32::MAX; LANES];
        let mut second = [f32::INFINITY; LANES];
        val[3] = 1.0;
        idx[3] = 35;
        second[3] = 4.0;
        val[9] = 1.0;
        idx[9] = 9;
        val[5] = 2.0;
        idx[5] = 5;
        assert_eq!(finish_lanes(&val, &idx, &second), (9, 1.0, 1.0));
        val[9] = 3.0;
        assert_eq!(finish_lanes(&val, &idx, &second), (35, 1.0, 2.0));
        let (j, v, s) = argmin_lanes(&[0.5, 0.25, 1.0], &[1.0, 1.0, 1.0]);
        assert_eq!((j, v, s), (2, -1.0, 0.0));
    }
}
