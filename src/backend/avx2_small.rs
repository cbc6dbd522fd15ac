//! The fused distance + arg-min kernel for x86-64 CPUs with AVX2 and FMA at small
//! dimensions: eight points in the lanes of a register, the centroids taken one at a time
//! (each coordinate broadcast), the running minimum, runner-up and label kept per lane. A
//! point's k values never touch memory and no lanes are merged at the end, where a matrix
//! product at d = 8 spends as long storing, re-reading and reducing the values as computing
//! them.
//!
//! The value ranked is ‖c‖² − 2x·c with the dot product accumulated by FMA in coordinate
//! order: within the rounding bound [`super::exact`] certifies against, like the matrix
//! product's.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::cpu_dense::DenseCentroids;

/// Points in the lanes of one register.
const GROUP: usize = 8;
/// The largest dimension this kernel serves: beyond it the matrix product is faster (on a
/// Zen 3, d = 12 and 16 encode in 1.1–1.4x the time; d = 2, 4 and 8 in 0.4x, 0.75x and
/// 0.8x).
pub(crate) const MAX_DIM: usize = 8;
/// Whether this CPU runs the kernel at dimension `dim`.
pub(crate) fn serves(dim: usize) -> bool {
    dim <= MAX_DIM && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// The f32 ranking of [`super::rank::Ranker::rank`] of the rows of `x` (as many as `labels`): each
/// point's best centroid (lowest index among equal values) and the gap from it to the
/// runner-up (infinite with one centroid, NaN when no value is below +inf).
pub(crate) fn rank_rows(x: &[f32], packed: &Packed, labels: &mut [u32], gaps: &mut [f32]) {
    assert!(
        serves(packed.dim),
        "the AVX2 small-dimension kernel is not for this CPU or dimension"
    );
    // SAFETY: the CPU has AVX2 and FMA (asserted above).
    unsafe { rank_at_dim(x, packed, labels, gaps) }
}

/// [`rank_rows`] eight rows at a time, at the dimension fixed at compile time (so that the
/// coordinates' loops unroll and the points stay in registers).
#[target_feature(enable = "avx2,fma")]
fn rank_at_dim(x: &[f32], packed: &Packed, labels: &mut [u32], gaps: &mut [f32]) {
    macro_rules! at_dim {
        ($($d:literal)*) => {
            match packed.dim {
                $($d => rank_rows_of::<$d>(x, packed, labels, gaps),)*
                d => unreachable!("dimension {d} is beyond the kernel's {MAX_DIM}"),
            }
        };
    }
    at_dim!(1 2 3 4 5 6 7 8)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn rank_rows_of<const D: usize>(x: &[f32], packed: &Packed, labels: &mut [u32], gaps: &mut [f32]) {
    assert!(x.len() == labels.len() * D && gaps.len() == labels.len());
    assert_eq!(packed.values.len() % (D + EXTRA), 0);
    for (g, (lab, gap)) in labels
        .chunks_mut(GROUP)
        .zip(gaps.chunks_mut(GROUP))
        .enumerate()
    {
        // The group's points transposed: coordinate t of the eight points in row t (the
        // lanes past the last point hold zeros and are not read back).
        let mut xt = [[0.0f32; GROUP]; D];
        for (r, point) in x[g * GROUP * D..(g * GROUP + lab.len()) * D]
            .chunks_exact(D)
            .enumerate()
        {
            for (t, &v) in point.iter().enumerate() {
                xt[t][r] = v;
            }
        }
        let m = group_minima(&xt, packed);
        let mut b = [0.0f32; GROUP];
        let mut s = [0.0f32; GROUP];
        let mut l = [0u32; GROUP];
        // SAFETY: each array holds GROUP = 8 values of 4 bytes.
        unsafe {
            _mm256_storeu_ps(b.as_mut_ptr(), m.best);
            _mm256_storeu_ps(s.as_mut_ptr(), m.second);
            _mm256_storeu_ps(l.as_mut_ptr().cast(), m.label);
        }
        for r in 0..lab.len() {
            lab[r] = l[r];
            gap[r] = s[r] - b[r];
        }
    }
}

/// Per lane (point): the least value so far, the least of the others (equal values
/// included), and the lowest index holding the least.
struct Minima {
    best: __m256,
    second: __m256,
    label: __m256,
}

impl Minima {
    /// Takes the value `v` of the centroid whose index (as f32 bits) is at `label`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn take(&mut self, v: __m256, label: &f32) {
        let better = _mm256_cmp_ps::<_CMP_LT_OQ>(v, self.best);
        // min_ps(a, b) is `if a < b { a } else { b }`: the runner-up takes the old best
        // where v is better, else the lesser of v and itself; the best takes v where better.
        self.second = _mm256_blendv_ps(_mm256_min_ps(v, self.second), self.best, better);
        self.best = _mm256_min_ps(v, self.best);
        // A broadcast from memory is a load, not an arithmetic operation.
        self.label = _mm256_blendv_ps(self.label, _mm256_broadcast_ss(label), better);
    }
}

/// The centroids as the kernel reads them, one after the other: −2c (exact), then ‖c‖²,
/// then the index as f32 bits.
pub(crate) struct Packed {
    dim: usize,
    values: Vec<f32>,
}

/// Values per centroid in [`Packed`] beyond its coordinates.
const EXTRA: usize = 2;

impl Packed {
    pub(crate) fn new(centroids: &DenseCentroids) -> Self {
        let dim = centroids.dim;
        let mut values = Vec::with_capacity(centroids.k() * (dim + EXTRA));
        for (i, (c, &norm)) in centroids
            .c32
            .chunks_exact(dim)
            .zip(&centroids.norms)
            .enumerate()
        {
            values.extend(c.iter().map(|&v| -2.0 * v));
            values.push(norm);
            values.push(f32::from_bits(i as u32));
        }
        Packed { dim, values }
    }
}

/// Centroids whose dot products are computed together: independent FMA chains that hide
/// each other's latency.
const BATCH: usize = 4;

/// The [`Minima`] of the eight points `xt` (transposed) over every centroid of `packed`.
///
/// A centroid's value is ‖c‖² + Σ x_t (−2c_t), the sum by FMA in coordinate order: since
/// −2c_t is exact, every partial sum is −2 times that of x·c to the bit, and the value is
/// fl(‖c‖² − 2x·c) as the matrix product's ranking computes it.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn group_minima<const D: usize>(xt: &[[f32; GROUP]; D], packed: &Packed) -> Minima {
    let mut x = [_mm256_setzero_ps(); D];
    for (x, row) in x.iter_mut().zip(xt) {
        // SAFETY: each row holds GROUP = 8 values.
        *x = unsafe { _mm256_loadu_ps(row.as_ptr()) };
    }
    let inf = _mm256_set1_ps(f32::INFINITY);
    let mut m = Minima {
        best: inf,
        second: inf,
        label: _mm256_setzero_ps(),
    };
    let stride = D + EXTRA;
    let batches = packed.values.chunks_exact(BATCH * stride);
    let rest = batches.remainder();
    for c in batches {
        let mut dot = [_mm256_setzero_ps(); BATCH];
        for t in 0..D {
            for u in 0..BATCH {
                dot[u] = _mm256_fmadd_ps(x[t], _mm256_set1_ps(c[u * stride + t]), dot[u]);
            }
        }
        for u in 0..BATCH {
            let v = _mm256_add_ps(_mm256_set1_ps(c[u * stride + D]), dot[u]);
            m.take(v, &c[u * stride + D + 1]);
        }
    }
    for c in rest.chunks_exact(stride) {
        let mut dot = _mm256_setzero_ps();
        for t in 0..D {
            dot = _mm256_fmadd_ps(x[t], _mm256_set1_ps(c[t]), dot);
        }
        m.take(_mm256_add_ps(_mm256_set1_ps(c[D]), dot), &c[D + 1]);
    }
    m
}
