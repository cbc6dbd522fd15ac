//! The f32 ranking of centroids for each point: the best and the gap to the runner-up, of
//! ‖c‖² − 2x·c (‖x‖² does not change the arg-min). A [`Ranker`] picks the kernel once per
//! set of centroids: on x86-64 with AVX2 and FMA a fused kernel, the small-dimension one
//! ([`super::avx2_small`]) or above it the AVX-512 ([`super::avx512_fused`]) or AVX2
//! ([`super::avx2_fused`]) one, and a blocked SIMD matrix product and a vectorised arg-min
//! everywhere else.
//! [`super::cpu_dense::assign_dense`] certifies what the ranking cannot decide.

use rayon::prelude::*;

use super::cpu_dense::{DenseCentroids, ROWS};

/// Centroids per tile of the distance product; `ROWS * TILE` floats stay in L2.
const TILE: usize = 512;
/// Lanes of the portable arg-min (and of an AVX-512 register of f32).
pub(crate) const LANES: usize = 16;

/// The ranking kernel this CPU runs for one set of centroids, with what it prepares from
/// them once (the fused kernels' packed centroids).
pub(crate) struct Ranker<'a> {
    centroids: &'a DenseCentroids,
    kernel: Kernel,
}

enum Kernel {
    /// The small-dimension kernel, AVX-512 or AVX2 (the same labels and gaps).
    #[cfg(target_arch = "x86_64")]
    Small(super::small_kernel::Packed, SmallRank),
    /// The AVX-512 or AVX2 fused kernel, by its groups' pass (chosen where the CPU has it).
    #[cfg(target_arch = "x86_64")]
    Fused(super::panels::Packed, super::avx2_fused::Groups),
    Gemm,
}

/// A small-dimension kernel's ranking of rows ([`super::avx2_small::rank_rows`]).
#[cfg(target_arch = "x86_64")]
type SmallRank = fn(&[f32], &super::small_kernel::Packed, &mut [u32], &mut [f32]);

/// The buffers of the matrix product's tiles, kept by a thread between calls.
#[derive(Default)]
pub(crate) struct Scratch {
    dots: Vec<f32>,
    best: Vec<(f32, f32)>,
    lanes: super::panels::LaneState,
}

impl<'a> Ranker<'a> {
    pub(crate) fn new(centroids: &'a DenseCentroids) -> Self {
        let dim = centroids.dim;
        #[cfg(target_arch = "x86_64")]
        {
            if super::avx2_small::serves(dim) {
                let rank: SmallRank = if super::avx512_small::serves(dim) {
                    super::avx512_small::rank_rows
                } else {
                    super::avx2_small::rank_rows
                };
                let packed = super::small_kernel::Packed::new(centroids);
                return Ranker {
                    centroids,
                    kernel: Kernel::Small(packed, rank),
                };
            }
            let groups: Option<super::avx2_fused::Groups> = if super::avx512_fused::serves(dim) {
                Some(super::avx512_fused::groups)
            } else if super::avx2_fused::serves(dim) {
                Some(super::avx2_fused::groups)
            } else {
                None
            };
            if let Some(groups) = groups {
                let packed = super::panels::pack(&centroids.c32, &centroids.norms, dim);
                return Ranker {
                    centroids,
                    kernel: Kernel::Fused(packed, groups),
                };
            }
        }
        Ranker {
            centroids,
            kernel: Kernel::Gemm,
        }
    }

    /// The most roundings a product of this kernel's dot products goes through: the d of the
    /// rounding bound [`super::exact`] certifies against (the dimension, but for the chunked
    /// sums of the AVX2 and AVX-512 fused kernels).
    pub(crate) fn terms(&self) -> usize {
        match self.kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Fused(..) => super::avx2_fused::terms(self.centroids.dim),
            _ => self.centroids.dim,
        }
    }

    /// Rows per parallel task: ~64 KiB of points for the fused kernels, so that small
    /// dimensions get many rows per task and the pool's per-task cost stays small.
    fn task_rows(&self) -> usize {
        match self.kernel {
            Kernel::Gemm => ROWS,
            #[cfg(target_arch = "x86_64")]
            _ => (16_384 / self.centroids.dim).clamp(ROWS, 4096),
        }
    }

    /// The f32 ranking of the rows of `data`, spread over the threads: each point's best
    /// centroid and the gap to its runner-up (infinite with one centroid).
    pub(crate) fn rank(&self, data: &[f32], labels: &mut [u32], gaps: &mut [f32]) {
        let dim = self.centroids.dim;
        let rows = self.task_rows();
        labels
            .par_chunks_mut(rows)
            .zip(gaps.par_chunks_mut(rows))
            .enumerate()
            .for_each_init(Scratch::default, |scratch, (task, (lab, gap))| {
                let r0 = task * rows;
                let x = &data[r0 * dim..(r0 + lab.len()) * dim];
                self.rank_rows(x, lab, gap, scratch);
            });
    }

    /// The ranking of the rows of `x` (as many as `labels`) on this thread.
    pub(crate) fn rank_rows(
        &self,
        x: &[f32],
        labels: &mut [u32],
        gaps: &mut [f32],
        scratch: &mut Scratch,
    ) {
        assert!(x.len() == labels.len() * self.centroids.dim && gaps.len() == labels.len());
        match &self.kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Small(packed, rank) => rank(x, packed, labels, gaps),
            #[cfg(target_arch = "x86_64")]
            Kernel::Fused(packed, groups) => {
                let dim = self.centroids.dim;
                let lanes = &mut scratch.lanes;
                let block = super::avx2_fused::block_panels(dim);
                // SAFETY: `groups` was chosen where the CPU has what it needs, and AVX2 and
                // FMA (`Ranker::new`).
                unsafe {
                    super::avx2_fused::rank_in_blocks(
                        x,
                        dim,
                        packed,
                        (labels, gaps),
                        lanes,
                        block,
                        *groups,
                    )
                }
            }
            Kernel::Gemm => {
                for ((x, lab), gap) in x
                    .chunks(ROWS * self.centroids.dim)
                    .zip(labels.chunks_mut(ROWS))
                    .zip(gaps.chunks_mut(ROWS))
                {
                    gemm_rows(x, self.centroids, lab, gap, scratch);
                }
            }
        }
    }
}

/// The portable ranking (every CPU, and the reference the others are tested against), on
/// every thread.
#[cfg(test)]
pub(crate) fn rank_gemm(
    data: &[f32],
    centroids: &DenseCentroids,
    labels: &mut [u32],
    gaps: &mut [f32],
) {
    Ranker {
        centroids,
        kernel: Kernel::Gemm,
    }
    .rank(data, labels, gaps);
}

/// The portable ranking of at most [`ROWS`] rows: a blocked SIMD matrix product (the `gemm`
/// crate dispatches to the CPU's vector width at run time) and a lane-parallel arg-min.
fn gemm_rows(
    x: &[f32],
    centroids: &DenseCentroids,
    lab: &mut [u32],
    gap: &mut [f32],
    scratch: &mut Scratch,
) {
    let (dim, k) = (centroids.dim, centroids.k());
    let tile = TILE.min(k);
    let rows = lab.len();
    scratch.dots.resize(ROWS * tile, 0.0);
    scratch.best.resize(ROWS, (f32::INFINITY, f32::INFINITY));
    let (dots, best) = (&mut scratch.dots, &mut scratch.best);
    best[..rows].fill((f32::INFINITY, f32::INFINITY));
    for t0 in (0..k).step_by(tile) {
        let nt = tile.min(k - t0);
        let c = &centroids.c32[t0 * dim..(t0 + nt) * dim];
        // SAFETY: every pointer/stride pair addresses inside its slice: dots is rows x nt
        // (row stride nt), x is rows x dim (row stride dim), c read as its transpose
        // dim x nt (column stride dim).
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
            let (j, v, second) =
                argmin_shifted(&dots[r * nt..(r + 1) * nt], &centroids.norms[t0..t0 + nt]);
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
}

/// ‖x‖² in f32 with eight independent partial sums (inlined: the certification calls it for
/// every row, in its AVX2 context).
#[inline]
pub(crate) fn squared_norm(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    for x in &mut ca {
        for l in 0..8 {
            acc[l] += x[l] * x[l];
        }
    }
    acc.iter().sum::<f32>() + ca.remainder().iter().map(|v| v * v).sum::<f32>()
}

/// [`squared_distance`] from `a` to each of `bs` (all of `a`'s length) into `out`, with the
/// same additions in the same order for each pair (so the same bits), `a`'s values loaded
/// once for every `b`.
#[inline(always)]
pub(crate) fn squared_distances<const M: usize>(a: &[f32], bs: &[&[f32]; M], out: &mut [f32; M]) {
    let mut acc = [[0.0f32; 8]; M];
    let full = a.len() / 8 * 8;
    for s in (0..full).step_by(8) {
        let x = &a[s..s + 8];
        for (acc, b) in acc.iter_mut().zip(bs) {
            let y = &b[s..s + 8];
            for l in 0..8 {
                let t = x[l] - y[l];
                acc[l] += t * t;
            }
        }
    }
    for ((o, acc), b) in out.iter_mut().zip(&acc).zip(bs) {
        let mut tail = 0.0f32;
        for (x, y) in a[full..].iter().zip(&b[full..]) {
            tail += (x - y) * (x - y);
        }
        *o = acc.iter().sum::<f32>() + tail;
    }
}

/// [`squared_distances`] with each 8-wide step one AVX register per pair: the same
/// operations in the same order (no FMA), so the same bits. (Compiled alone, the portable
/// loop is vectorised across the `M` pairs, half as wide.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) fn squared_distances_avx2<const M: usize>(
    a: &[f32],
    bs: &[&[f32]; M],
    out: &mut [f32; M],
) {
    use std::arch::x86_64::{
        __m256, _mm256_add_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_setzero_ps, _mm256_storeu_ps,
        _mm256_sub_ps,
    };
    let full = a.len() / 8 * 8;
    assert!(bs.iter().all(|b| b.len() == a.len()));
    let mut acc: [__m256; M] = [_mm256_setzero_ps(); M];
    for s in (0..full).step_by(8) {
        // SAFETY: s + 8 <= full <= the length of `a` and of every `b` (asserted above).
        let x = unsafe { _mm256_loadu_ps(a.as_ptr().add(s)) };
        for (acc, b) in acc.iter_mut().zip(bs) {
            // SAFETY: as above.
            let t = _mm256_sub_ps(x, unsafe { _mm256_loadu_ps(b.as_ptr().add(s)) });
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(t, t));
        }
    }
    for ((o, acc), b) in out.iter_mut().zip(&acc).zip(bs) {
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds eight f32.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), *acc) };
        let mut tail = 0.0f32;
        for (x, y) in a[full..].iter().zip(&b[full..]) {
            tail += (x - y) * (x - y);
        }
        *o = lanes.iter().sum::<f32>() + tail;
    }
}

/// Exact squared Euclidean distance, in f32 with eight independent partial sums. Inlined:
/// k-means++ calls it once per point and candidate, and the call cost more than the sum.
#[inline(always)]
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

/// [`argmin_lanes`] with its sixteen lanes held in two AVX registers throughout: the same
/// compare-and-select steps, so the same result. (Compiled from the portable loop, the
/// running minima went through the stack by masked stores, which stall the next load: the
/// arg-min cost three times the distance product at d = 8.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn argmin_avx2(dots: &[f32], norms: &[f32]) -> (usize, f32, f32) {
    use std::arch::x86_64::{
        __m256, __m256i, _CMP_LT_OQ, _mm256_add_epi32, _mm256_add_ps, _mm256_blendv_ps,
        _mm256_castps_si256, _mm256_castsi256_ps, _mm256_cmp_ps, _mm256_loadu_ps, _mm256_min_ps,
        _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi32, _mm256_sub_ps,
    };
    assert_eq!(dots.len(), norms.len());
    const HALF: usize = LANES / 2;
    let whole = dots.len() / LANES * LANES;
    let inf = _mm256_set1_ps(f32::INFINITY);
    let mut val = [inf; 2];
    let mut second = [inf; 2];
    let mut idx = [_mm256_set1_epi32(-1); 2];
    let lanes = [
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15),
    ];
    for base in (0..whole).step_by(LANES) {
        let at = _mm256_set1_epi32(base as i32);
        for h in 0..2 {
            // SAFETY: base + LANES <= whole <= the length of both slices (asserted above).
            let (d, n) = unsafe {
                (
                    _mm256_loadu_ps(dots.as_ptr().add(base + h * HALF)),
                    _mm256_loadu_ps(norms.as_ptr().add(base + h * HALF)),
                )
            };
            // norm - 2 dot, with 2 dot as dot + dot (the same value).
            let v: __m256 = _mm256_sub_ps(n, _mm256_add_ps(d, d));
            let better = _mm256_cmp_ps::<_CMP_LT_OQ>(v, val[h]);
            // min_ps(v, s) is `if v < s { v } else { s }`, NaN included.
            let runner = _mm256_min_ps(v, second[h]);
            second[h] = _mm256_blendv_ps(runner, val[h], better);
            val[h] = _mm256_blendv_ps(val[h], v, better);
            let i: __m256i = _mm256_add_epi32(at, lanes[h]);
            idx[h] = _mm256_castps_si256(_mm256_blendv_ps(
                _mm256_castsi256_ps(idx[h]),
                _mm256_castsi256_ps(i),
                better,
            ));
        }
    }
    finish_tail(dots, norms, whole, finish_avx2(val, second, idx))
}

/// [`finish_lanes`] of the two registers of [`argmin_avx2`], reduced in registers: the
/// smallest value, the lowest index holding it, and the least of the runners-up and of the
/// other lanes' values. (No lane holds NaN: a value enters only by comparing below; a lane
/// never entered holds +inf and index `u32::MAX`, so with no entry at all the index is
/// `usize::MAX` as there.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn finish_avx2(
    val: [std::arch::x86_64::__m256; 2],
    second: [std::arch::x86_64::__m256; 2],
    idx: [std::arch::x86_64::__m256i; 2],
) -> (usize, f32, f32) {
    use std::arch::x86_64::{
        __m256, __m256i, _CMP_EQ_OQ, _mm256_blendv_ps, _mm256_castps_si256, _mm256_castsi256_ps,
        _mm256_cmp_ps, _mm256_cmpeq_epi32, _mm256_cvtsi256_si32, _mm256_cvtss_f32,
        _mm256_min_epu32, _mm256_min_ps, _mm256_permute2f128_ps, _mm256_permute2x128_si256,
        _mm256_set1_epi32, _mm256_set1_ps, _mm256_shuffle_epi32, _mm256_shuffle_ps,
    };
    // Every lane of the result holds the least of the eight.
    let min_ps = |v: __m256| {
        let v = _mm256_min_ps(v, _mm256_permute2f128_ps::<1>(v, v));
        let v = _mm256_min_ps(v, _mm256_shuffle_ps::<0b0100_1110>(v, v));
        _mm256_min_ps(v, _mm256_shuffle_ps::<0b1011_0001>(v, v))
    };
    let min_epu32 = |v: __m256i| {
        let v = _mm256_min_epu32(v, _mm256_permute2x128_si256::<1>(v, v));
        let v = _mm256_min_epu32(v, _mm256_shuffle_epi32::<0b0100_1110>(v));
        _mm256_min_epu32(v, _mm256_shuffle_epi32::<0b1011_0001>(v))
    };
    let none = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    let best = min_ps(_mm256_min_ps(val[0], val[1]));
    let at = |h: usize| {
        let holds = _mm256_cmp_ps::<_CMP_EQ_OQ>(val[h], best);
        _mm256_castps_si256(_mm256_blendv_ps(none, _mm256_castsi256_ps(idx[h]), holds))
    };
    let j = min_epu32(_mm256_min_epu32(at(0), at(1)));
    let inf = _mm256_set1_ps(f32::INFINITY);
    let others = |h: usize| {
        let is_best = _mm256_castsi256_ps(_mm256_cmpeq_epi32(idx[h], j));
        _mm256_blendv_ps(val[h], inf, is_best)
    };
    let runner = min_ps(_mm256_min_ps(
        _mm256_min_ps(second[0], second[1]),
        _mm256_min_ps(others(0), others(1)),
    ));
    let j = _mm256_cvtsi256_si32(j) as u32;
    (
        if j == u32::MAX {
            usize::MAX
        } else {
            j as usize
        },
        _mm256_cvtss_f32(best),
        _mm256_cvtss_f32(runner),
    )
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
    finish_tail(dots, norms, whole, finish_lanes(&val, &idx, &second))
}

/// The lanes' result `(j, v, s)` extended over the entries from `whole` on.
#[inline(always)]
fn finish_tail(
    dots: &[f32],
    norms: &[f32],
    whole: usize,
    (mut j, mut v, mut s): (usize, f32, f32),
) -> (usize, f32, f32) {
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

/// A xorshift generator of test inputs: fast, seeded, the same on every machine.
#[cfg(test)]
pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four distances at once are the four distances one by one, to the bit, at lengths
    /// with and without a tail; so are the AVX2 ones.
    #[test]
    fn squared_distances_match_one_at_a_time() {
        for len in [1usize, 7, 8, 33, 64] {
            let v = |s: usize| -> Vec<f32> {
                (0..len)
                    .map(|i| ((i * 7919 + s * 104_729) % 1000) as f32 * 1e-3 - 0.37)
                    .collect()
            };
            let (a, b) = (v(0), [v(1), v(2), v(3), v(4)]);
            let bs = [&b[0][..], &b[1][..], &b[2][..], &b[3][..]];
            let mut out = [0.0f32; 4];
            squared_distances(&a, &bs, &mut out);
            for (o, b) in out.iter().zip(bs) {
                assert_eq!(o.to_bits(), squared_distance(&a, b).to_bits(), "len {len}");
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut wide = [0.0f32; 4];
                // SAFETY: the feature was just detected.
                unsafe { squared_distances_avx2(&a, &bs, &mut wide) };
                assert_eq!(wide.map(f32::to_bits), out.map(f32::to_bits), "len {len}");
            }
        }
    }

    /// The AVX2 arg-min is the portable one: index, value and runner-up, to the bit, at
    /// lengths with and without a tail, with ties (values on a coarse grid), infinities and
    /// NaN among the entries.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_argmin_is_the_portable_one() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for len in [1usize, 5, 15, 16, 17, 31, 32, 33, 64, 255, 256, 1000] {
            for round in 0..20 {
                let grid = |r: u64| ((r % 16) as f32) * 0.25 - 1.0;
                let mut dots: Vec<f32> = (0..len).map(|_| grid(next())).collect();
                let norms: Vec<f32> = (0..len).map(|_| grid(next()).abs()).collect();
                if round % 5 == 1 {
                    dots[(next() as usize) % len] = f32::NEG_INFINITY;
                }
                if round % 5 == 2 {
                    dots[(next() as usize) % len] = f32::NAN;
                }
                if round % 5 == 3 {
                    dots.iter_mut().for_each(|d| *d = f32::NAN);
                }
                let want = argmin_lanes(&dots, &norms);
                // SAFETY: the feature was just detected.
                let got = unsafe { argmin_avx2(&dots, &norms) };
                assert_eq!(
                    (got.0, got.1.to_bits(), got.2.to_bits()),
                    (want.0, want.1.to_bits(), want.2.to_bits()),
                    "len {len}, round {round}"
                );
            }
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
