//! The d-dimensional CPU backend: distances through a blocked SIMD matrix product
//! (‖x‖² − 2x·c + ‖c‖², the ‖x‖² term dropped since it does not change the argmin), a
//! vectorised arg-min, then per-cell sums accumulated in f64 over a fixed number of chunks so
//! the result does not depend on the thread count.

use rayon::prelude::*;

use super::{Backend, CellStats, empty_cells::split_empty_cells};
use crate::error::Result;

/// Rows of points per block of the distance product.
const ROWS: usize = 128;
/// Centroids per tile of the distance product; `ROWS * TILE` floats stay in L2.
const TILE: usize = 512;
/// Points per accumulation chunk, and the most chunks (each holds k x d f64 sums).
const CHUNK_POINTS: usize = 8192;
const MAX_CHUNKS: usize = 16;
const CHUNK_BYTES_BUDGET: usize = 256 << 20;

/// Points (borrowed), current centroids and the last pass's labels and statistics.
pub(crate) struct CpuDense<'a> {
    data: &'a [f32],
    weights: Option<&'a [f32]>,
    dim: usize,
    k: usize,
    centroids: Vec<f32>,
    norms: Vec<f32>,
    labels: Vec<u32>,
    dist: Vec<f32>,
    sums: Vec<f64>,
    stats: CellStats,
}

impl<'a> CpuDense<'a> {
    /// `data` and `weights` must be validated; `centroids` is `k x dim`.
    pub(crate) fn new(
        data: &'a [f32],
        weights: Option<&'a [f32]>,
        dim: usize,
        centroids: &[f64],
    ) -> Self {
        let n = data.len() / dim;
        let k = centroids.len() / dim;
        let mut me = CpuDense {
            data,
            weights,
            dim,
            k,
            centroids: Vec::new(),
            norms: Vec::new(),
            labels: vec![0; n],
            dist: vec![0.0; n],
            sums: vec![0.0; k * dim],
            stats: CellStats::zeros(k),
        };
        me.set_centroids(centroids);
        me
    }

    fn set_centroids(&mut self, centroids: &[f64]) {
        self.centroids = centroids.iter().map(|&v| v as f32).collect();
        self.norms = self
            .centroids
            .chunks_exact(self.dim)
            .map(|c| c.iter().map(|v| v * v).sum())
            .collect();
    }

    /// Labels of the last [`Backend::assign_reduce`].
    pub(crate) fn labels(&self) -> &[u32] {
        &self.labels
    }
}

/// Nearest centroid of each point of `data` (row-major, `dim` columns) among `centroids`
/// (`norms` their squared norms), with the exact squared distance to it. Ties go to the lowest
/// index.
pub(crate) fn assign_dense(
    data: &[f32],
    dim: usize,
    centroids: &[f32],
    norms: &[f32],
    labels: &mut [u32],
    dist: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if super::avx512::available() {
        let packed = super::avx512::pack(centroids, norms, dim);
        // Tasks of ~64 KiB of points: small dimensions get many rows per task, so the pool's
        // per-task cost stays small against the work.
        let rows = (16_384 / dim).clamp(ROWS, 4096);
        labels
            .par_chunks_mut(rows)
            .zip(dist.par_chunks_mut(rows))
            .enumerate()
            .for_each(|(block, (lab, dis))| {
                let r0 = block * rows;
                let x = &data[r0 * dim..(r0 + lab.len()) * dim];
                // SAFETY: the CPU has AVX-512F (checked above); x holds lab.len() rows.
                unsafe { super::avx512::assign_rows(x, dim, &packed, lab) };
                exact_distances(x, dim, centroids, lab, dis);
            });
        return;
    }
    assign_dense_gemm(data, dim, centroids, norms, labels, dist);
}

/// The exact squared distance of each row of `x` to its labelled centroid.
fn exact_distances(x: &[f32], dim: usize, centroids: &[f32], labels: &[u32], dist: &mut [f32]) {
    for (r, (l, d)) in labels.iter().zip(dist.iter_mut()).enumerate() {
        let l = *l as usize;
        *d = squared_distance(
            &x[r * dim..(r + 1) * dim],
            &centroids[l * dim..(l + 1) * dim],
        );
    }
}

/// The portable path: a blocked SIMD matrix product (the `gemm` crate dispatches to the
/// CPU's vector width at run time) and a lane-parallel arg-min.
pub(crate) fn assign_dense_gemm(
    data: &[f32],
    dim: usize,
    centroids: &[f32],
    norms: &[f32],
    labels: &mut [u32],
    dist: &mut [f32],
) {
    let k = norms.len();
    let tile = TILE.min(k);
    labels
        .par_chunks_mut(ROWS)
        .zip(dist.par_chunks_mut(ROWS))
        .enumerate()
        .for_each_init(
            || (vec![0.0f32; ROWS * tile], vec![0.0f32; ROWS]),
            |(dots, best), (block, (lab, dis))| {
                let r0 = block * ROWS;
                let rows = lab.len();
                let x = &data[r0 * dim..(r0 + rows) * dim];
                best[..rows].fill(f32::INFINITY);
                for t0 in (0..k).step_by(tile) {
                    let nt = tile.min(k - t0);
                    let c = &centroids[t0 * dim..(t0 + nt) * dim];
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
                        let (v, j) =
                            argmin_shifted(&dots[r * nt..(r + 1) * nt], &norms[t0..t0 + nt]);
                        if v < best[r] {
                            best[r] = v;
                            lab[r] = (t0 + j) as u32;
                        }
                    }
                }
                exact_distances(x, dim, centroids, lab, dis);
            },
        );
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

/// `argmin_j norms[j] - 2 dots[j]`, lowest index on ties; returns (value, index).
fn argmin_shifted(dots: &[f32], norms: &[f32]) -> (f32, usize) {
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
unsafe fn argmin_avx512(dots: &[f32], norms: &[f32]) -> (f32, usize) {
    argmin_lanes(dots, norms)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn argmin_avx2(dots: &[f32], norms: &[f32]) -> (f32, usize) {
    argmin_lanes(dots, norms)
}

/// Sixteen independent running minima (vertical compare-and-select, which vectorises), then
/// a final pass over the lanes that keeps the lowest index among equal values.
#[inline(always)]
fn argmin_lanes(dots: &[f32], norms: &[f32]) -> (f32, usize) {
    const L: usize = 16;
    let mut val = [f32::INFINITY; L];
    let mut idx = [0u32; L];
    let whole = dots.len() / L * L;
    for base in (0..whole).step_by(L) {
        let d = &dots[base..base + L];
        let nrm = &norms[base..base + L];
        for l in 0..L {
            let v = nrm[l] - 2.0 * d[l];
            let better = v < val[l];
            val[l] = if better { v } else { val[l] };
            idx[l] = if better { (base + l) as u32 } else { idx[l] };
        }
    }
    let mut best = (f32::INFINITY, usize::MAX);
    for l in 0..L {
        if val[l] < best.0 || (val[l] == best.0 && (idx[l] as usize) < best.1) {
            best = (val[l], idx[l] as usize);
        }
    }
    for j in whole..dots.len() {
        let v = norms[j] - 2.0 * dots[j];
        if v < best.0 {
            best = (v, j);
        }
    }
    if best.1 == usize::MAX {
        // Every value was +inf or NaN (only possible with overflowing data): keep cell 0.
        best.1 = 0;
    }
    best
}

/// Per-cell weighted sums (k x dim), counts, masses and squared errors of labelled points,
/// over a number of chunks fixed by the sizes alone, reduced in chunk order: the same bits
/// whatever the thread count.
pub(crate) fn reduce_dense(
    data: &[f32],
    weights: Option<&[f32]>,
    dim: usize,
    k: usize,
    labels: &[u32],
    dist: &[f32],
) -> (Vec<f64>, CellStats) {
    let n = labels.len();
    let per_chunk_bytes = (k * dim + 3 * k) * 8;
    let chunks = (n / CHUNK_POINTS)
        .clamp(1, MAX_CHUNKS)
        .min((CHUNK_BYTES_BUDGET / per_chunk_bytes).max(1));
    let len = n.div_ceil(chunks);
    let partial: Vec<(Vec<f64>, CellStats)> = (0..chunks)
        .into_par_iter()
        .map(|c| {
            let mut sums = vec![0.0f64; k * dim];
            let mut st = CellStats::zeros(k);
            for i in c * len..((c + 1) * len).min(n) {
                let l = labels[i] as usize;
                let w = weights.map_or(1.0, |w| f64::from(w[i]));
                st.counts[l] += 1;
                st.mass[l] += w;
                st.sse[l] += w * f64::from(dist[i]);
                let s = &mut sums[l * dim..(l + 1) * dim];
                for (acc, &x) in s.iter_mut().zip(&data[i * dim..(i + 1) * dim]) {
                    *acc += w * f64::from(x);
                }
            }
            (sums, st)
        })
        .collect();
    let mut it = partial.into_iter();
    let (mut sums, mut st) = it.next().expect("at least one chunk");
    for (s, p) in it {
        for (a, b) in sums.iter_mut().zip(&s) {
            *a += b;
        }
        for j in 0..k {
            st.counts[j] += p.counts[j];
            st.mass[j] += p.mass[j];
            st.sse[j] += p.sse[j];
        }
    }
    (sums, st)
}

/// Moves centroids to their cells' weighted means (cells without mass keep theirs), then
/// applies the shared empty-cell policy. Returns the new centroids and the number of splits.
pub(crate) fn means_and_splits(
    old: &[f64],
    sums: &[f64],
    stats: &CellStats,
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
    let mut st = stats.clone();
    let splits = split_empty_cells(&mut c, dim, &mut st);
    (c, splits)
}

impl Backend for CpuDense<'_> {
    fn device_name(&self) -> String {
        "cpu".to_string()
    }

    fn assign_reduce(&mut self) -> Result<()> {
        assign_dense(
            self.data,
            self.dim,
            &self.centroids,
            &self.norms,
            &mut self.labels,
            &mut self.dist,
        );
        let (sums, stats) = reduce_dense(
            self.data,
            self.weights,
            self.dim,
            self.k,
            &self.labels,
            &self.dist,
        );
        self.sums = sums;
        self.stats = stats;
        Ok(())
    }

    fn sse(&mut self) -> Result<f64> {
        Ok(self.stats.sse.iter().sum())
    }

    fn update(&mut self) -> Result<usize> {
        let old: Vec<f64> = self.centroids.iter().map(|&v| f64::from(v)).collect();
        let (c, splits) = means_and_splits(&old, &self.sums, &self.stats, self.dim);
        self.set_centroids(&c);
        Ok(splits)
    }

    fn centroids(&mut self) -> Result<Vec<f64>> {
        Ok(self.centroids.iter().map(|&v| f64::from(v)).collect())
    }

    fn cell_stats(&mut self) -> Result<CellStats> {
        Ok(self.stats.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both assignment paths (the AVX-512 kernel where the CPU has it, and the portable
    /// one) against a brute-force f64 scan, on awkward sizes.
    #[test]
    fn assignment_paths_agree_with_brute_force() {
        let mut state = 12345u64;
        let mut rnd = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for (n, dim, k) in [
            (1usize, 1usize, 1usize),
            (7, 3, 2),
            (300, 17, 33),
            (1000, 64, 520),
            (129, 5, 16),
        ] {
            let data: Vec<f32> = (0..n * dim).map(|_| rnd()).collect();
            let cents: Vec<f32> = (0..k * dim).map(|_| rnd()).collect();
            let norms: Vec<f32> = cents
                .chunks_exact(dim)
                .map(|c| c.iter().map(|v| v * v).sum())
                .collect();
            let brute: Vec<u32> = data
                .chunks_exact(dim)
                .map(|x| {
                    let d = |c: &[f32]| -> f64 {
                        x.iter().zip(c).map(|(a, b)| f64::from(a - b).powi(2)).sum()
                    };
                    let mut best = (0u32, f64::INFINITY);
                    for (j, c) in cents.chunks_exact(dim).enumerate() {
                        if d(c) < best.1 {
                            best = (j as u32, d(c));
                        }
                    }
                    best.0
                })
                .collect();
            let mut fast = (vec![0u32; n], vec![0f32; n]);
            assign_dense(&data, dim, &cents, &norms, &mut fast.0, &mut fast.1);
            let mut portable = (vec![0u32; n], vec![0f32; n]);
            assign_dense_gemm(&data, dim, &cents, &norms, &mut portable.0, &mut portable.1);
            for i in 0..n {
                for (name, got) in [("fast", &fast), ("portable", &portable)] {
                    if got.0[i] != brute[i] {
                        let x = &data[i * dim..(i + 1) * dim];
                        let dg = squared_distance(x, &cents[got.0[i] as usize * dim..][..dim]);
                        let db = squared_distance(x, &cents[brute[i] as usize * dim..][..dim]);
                        assert!(
                            (dg - db).abs() <= 1e-5 * (1.0 + db),
                            "{name} n{n} d{dim} k{k} point {i}"
                        );
                    }
                }
                assert!((fast.1[i] - portable.1[i]).abs() <= 1e-5 * (1.0 + fast.1[i]));
            }
        }
    }
}
