//! Certified nearest centroids. The kernels rank centroids by ‖c‖² − 2x·c in f32, which is
//! fast but rounds; here a point whose best and second-best values are closer than that
//! formula's rounding bound is decided again by direct differences Σ(x − c)² in f64, so the
//! label returned is the nearest centroid.
//!
//! The bound: with v_j = ‖c_j‖² − 2x·c_j computed in f32 over d terms, |v̂_j − v_j| ≤
//! γ(‖c_j‖² + 2‖x‖‖c_j‖), γ = (t + 6)·2⁻²⁴: t roundings at most for a product in the dot
//! product (d for one running sum, fewer for chunked sums), then the norm, the subtraction
//! and the f32 rounding of f64 centroids. Any centroid j that could be at least as near as the chosen b
//! has ‖x − c_j‖ ≤ ‖x − c_b‖ = D, so ‖c_j‖ ≤ R = ‖x‖ + D and its error is at most
//! E = γ(R² + 2‖x‖R); b is certainly the nearest when every other v̂_j exceeds v̂_b by more
//! than 2E.

use crate::real::{Real, as_f32, as_f64};

/// f32's unit roundoff, 2⁻²⁴.
const EPS32: f64 = 5.960_464_477_539_063e-8;

/// Twice the largest rounding error of one f32 value ‖c‖² − 2x·c over `terms` products
/// (the bound of this module's header, `terms` in place of d) for any centroid at least as
/// near to x as the best: `norm_x` is ‖x‖, `best_sq` the squared distance to the best.
#[inline]
pub(crate) fn window(norm_x: f64, best_sq: f64, terms: usize) -> f64 {
    let r = norm_x + best_sq.max(0.0).sqrt() * (1.0 + 1e-9);
    2.0 * gamma(terms) * (r * r + 2.0 * norm_x * r)
}

/// The header's γ for `terms` roundings, with 1 % to spare.
#[inline]
fn gamma(terms: usize) -> f64 {
    (terms as f64 + 6.0) * EPS32 * 1.01
}

/// An upper bound on [`window`] without its square roots, from ‖x‖² (`norm_sq`) and D²:
/// with r = ‖x‖ + D, r² + 2‖x‖r = 3‖x‖² + 4‖x‖D + D² ≤ 5‖x‖² + 3D² (4ab ≤ 2a² + 2b²), and
/// a margin for the roundings of both. A gap above it is above the window, so most points
/// are decided without two square roots.
#[inline]
fn window_bound(norm_sq: f64, best_sq: f64, terms: usize) -> f64 {
    let d_sq = best_sq.max(0.0) * ((1.0 + 1e-9) * (1.0 + 1e-9));
    2.0 * gamma(terms) * (5.0 * norm_sq + 3.0 * d_sq) * (1.0 + 1e-6)
}

/// Whether the f32 ranking, whose dot products round each product at most `terms` times,
/// cannot tell the best centroid from the runner-up: `norm_x` is ‖x‖,
/// `best_sq` the direct squared distance to the best, `gap` the runner-up's value minus the
/// best's (NaN or negative counts as undecided).
#[inline]
pub(crate) fn undecided(norm_x: f64, best_sq: f64, gap: f64, terms: usize) -> bool {
    // A NaN gap is undecided.
    gap.is_nan() || gap <= window(norm_x, best_sq, terms)
}

/// [`undecided`] for a point whose f32 value in the frame is a rounding of the exact one
/// (known to the caller, who decides undecided points on it): that rounding moves each
/// centroid's value by at most 2u‖x‖‖c‖, two more units in γ.
#[inline]
pub(crate) fn undecided_for_rounded_point(
    norm_x: f64,
    best_sq: f64,
    gap: f64,
    terms: usize,
) -> bool {
    undecided(norm_x, best_sq, gap, terms + ROUNDED_POINT)
}

/// Whether `gap` clears [`window_bound`] for a rounded point (`norm_sq` is ‖x‖²): then
/// [`undecided_for_rounded_point`] is false, and no square root was taken to know it.
#[inline]
pub(crate) fn clears_bound_for_rounded_point(
    norm_sq: f64,
    best_sq: f64,
    gap: f64,
    terms: usize,
) -> bool {
    gap > window_bound(norm_sq, best_sq, terms + ROUNDED_POINT)
}

/// The units of γ a point's rounding to f32 adds (see [`undecided_for_rounded_point`]).
const ROUNDED_POINT: usize = 2;

/// The nearest of `centroids` (row-major f64, `dim` columns) to `x` by direct differences in
/// f64, lowest index on ties, with its squared distance: the brute-force reference the
/// certified labels are tested against.
#[cfg(test)]
pub(crate) fn nearest_direct(x: &[f32], centroids: &[f64], dim: usize) -> (u32, f64) {
    let mut best = (0u32, f64::INFINITY);
    for (j, c) in centroids.chunks_exact(dim).enumerate() {
        let d = squared_f64(x, c);
        if d < best.1 {
            best = (j as u32, d);
        }
    }
    best
}

/// Σ(x − c)² in f64, in eight partial sums (then added in order): independent additions a
/// compiler vectorises, where one running sum waits on each addition in turn (at d = 768,
/// the certified labels' exact distances cost as much as the whole f32 ranking).
#[inline]
pub(crate) fn squared_f64<X: Copy + Into<f64>>(x: &[X], c: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (xs, cs) = (x.chunks_exact(8), c.chunks_exact(8));
    let (xt, ct) = (xs.remainder(), cs.remainder());
    for (x, c) in xs.zip(cs) {
        for l in 0..8 {
            let t = x[l].into() - c[l];
            acc[l] += t * t;
        }
    }
    let mut tail = 0.0f64;
    for (&a, &b) in xt.iter().zip(ct) {
        let t = a.into() - b;
        tail += t * t;
    }
    acc.iter().sum::<f64>() + tail
}

/// [`squared_f64`], with AVX2 where the CPU has it: the same bits either way.
#[inline]
pub(crate) fn squared_f64_fast<X: Real + Into<f64>>(x: &[X], c: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        return unsafe { squared_f64_avx2(x, c) };
    }
    squared_f64(x, c)
}

/// [`squared_f64`] of an f32 or f64 row with AVX2: the same eight partial sums, two
/// registers of four, with the same operations (no FMA), so the same bits. Written out
/// because inlined into the certification's loop the compiler left the portable one scalar
/// (and two lanes wide for float64 rows in a pass's loop: 3 % of a float64 block's
/// statistics).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn squared_f64_avx2<X: Real + Into<f64>>(x: &[X], c: &[f64]) -> f64 {
    use std::arch::x86_64::*;
    assert_eq!(x.len(), c.len());
    let whole = x.len() / 8 * 8;
    let (xf, xd) = (as_f32(x), as_f64(x));
    // SAFETY (both): the caller reads four values from `i`, within the row.
    let load = |i: usize| unsafe {
        match (xf, xd) {
            (Some(x), _) => _mm256_cvtps_pd(_mm_loadu_ps(x.as_ptr().add(i))),
            (_, Some(x)) => _mm256_loadu_pd(x.as_ptr().add(i)),
            _ => unreachable!("Real is f32 or f64"),
        }
    };
    let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    for i in (0..whole).step_by(8) {
        // SAFETY: i + 8 <= whole <= len for both slices.
        unsafe {
            let (xl, xh) = (load(i), load(i + 4));
            let tl = _mm256_sub_pd(xl, _mm256_loadu_pd(c.as_ptr().add(i)));
            let th = _mm256_sub_pd(xh, _mm256_loadu_pd(c.as_ptr().add(i + 4)));
            lo = _mm256_add_pd(lo, _mm256_mul_pd(tl, tl));
            hi = _mm256_add_pd(hi, _mm256_mul_pd(th, th));
        }
    }
    let mut acc = [0.0f64; 8];
    // SAFETY: acc holds eight f64.
    unsafe {
        _mm256_storeu_pd(acc.as_mut_ptr(), lo);
        _mm256_storeu_pd(acc.as_mut_ptr().add(4), hi);
    }
    let mut tail = 0.0f64;
    for (&a, &b) in x[whole..].iter().zip(&c[whole..]) {
        let t = a.into() - b;
        tail += t * t;
    }
    acc.iter().sum::<f64>() + tail
}

/// [`squared_f64_avx2`] of two rows against their centroids, with each row's
/// [`super::rank::squared_norm`]: the same partial sums in the same order, so the same bits,
/// but six independent chains of additions in one loop where one row alone waits on its two
/// (at d = 768 the certification of a row was bound by that wait: 96 additions in a row).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn distances_and_norms_avx2(
    x: [&[f32]; 2],
    c: [&[f64]; 2],
) -> ([f64; 2], [f32; 2]) {
    use std::arch::x86_64::*;
    let dim = x[0].len();
    assert!(x[1].len() == dim && c[0].len() == dim && c[1].len() == dim);
    let whole = dim / 8 * 8;
    let mut lo = [_mm256_setzero_pd(); 2];
    let mut hi = [_mm256_setzero_pd(); 2];
    let mut norm = [_mm256_setzero_ps(); 2];
    for i in (0..whole).step_by(8) {
        for r in 0..2 {
            // SAFETY: i + 8 <= whole <= dim for every slice.
            unsafe {
                let xs = _mm256_loadu_ps(x[r].as_ptr().add(i));
                norm[r] = _mm256_add_ps(norm[r], _mm256_mul_ps(xs, xs));
                let xl = _mm256_cvtps_pd(_mm256_castps256_ps128(xs));
                let xh = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(xs));
                let tl = _mm256_sub_pd(xl, _mm256_loadu_pd(c[r].as_ptr().add(i)));
                let th = _mm256_sub_pd(xh, _mm256_loadu_pd(c[r].as_ptr().add(i + 4)));
                lo[r] = _mm256_add_pd(lo[r], _mm256_mul_pd(tl, tl));
                hi[r] = _mm256_add_pd(hi[r], _mm256_mul_pd(th, th));
            }
        }
    }
    let (mut dist, mut norms) = ([0.0f64; 2], [0.0f32; 2]);
    for r in 0..2 {
        let (mut acc, mut acc32) = ([0.0f64; 8], [0.0f32; 8]);
        // SAFETY: acc holds eight f64, acc32 eight f32.
        unsafe {
            _mm256_storeu_pd(acc.as_mut_ptr(), lo[r]);
            _mm256_storeu_pd(acc.as_mut_ptr().add(4), hi[r]);
            _mm256_storeu_ps(acc32.as_mut_ptr(), norm[r]);
        }
        // The tails and the final sums as the one-row functions have them.
        let mut tail = 0.0f64;
        for (&a, &b) in x[r][whole..].iter().zip(&c[r][whole..]) {
            let t = f64::from(a) - b;
            tail += t * t;
        }
        dist[r] = acc.iter().sum::<f64>() + tail;
        norms[r] = acc32.iter().sum::<f32>() + x[r][whole..].iter().map(|v| v * v).sum::<f32>();
    }
    (dist, norms)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rows at once are each row alone, to the bit: distances and norms, at lengths
    /// with and without a tail of fewer than eight.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn paired_distances_and_norms_are_each_rows() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut next = crate::backend::rank::xorshift(17);
        let mut unit = move || (next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        for dim in [1usize, 7, 8, 9, 16, 33, 768, 771] {
            let x: Vec<Vec<f32>> = (0..2)
                .map(|_| (0..dim).map(|_| unit() as f32).collect())
                .collect();
            let c: Vec<Vec<f64>> = (0..2).map(|_| (0..dim).map(|_| unit()).collect()).collect();
            // SAFETY: the feature was just detected.
            let (d, n) = unsafe { distances_and_norms_avx2([&x[0], &x[1]], [&c[0], &c[1]]) };
            for r in 0..2 {
                // SAFETY: as above.
                let want = unsafe { squared_f64_avx2(&x[r], &c[r]) };
                assert_eq!(d[r].to_bits(), want.to_bits(), "d {dim} row {r}");
                assert_eq!(
                    d[r].to_bits(),
                    squared_f64(&x[r], &c[r]).to_bits(),
                    "d {dim} row {r}"
                );
                let norm = crate::backend::rank::squared_norm(&x[r]);
                assert_eq!(n[r].to_bits(), norm.to_bits(), "d {dim} row {r}");
            }
        }
    }

    /// The bound without square roots is never below the window, where the two terms it
    /// bounds are equal (‖x‖ = D, where it is tight) included.
    #[test]
    fn the_bound_without_square_roots_covers_the_window() {
        let mut next = crate::backend::rank::xorshift(7);
        let mut unit = || (next() >> 11) as f64 / (1u64 << 53) as f64;
        for i in 0..100_000 {
            let n = unit() * 10f64.powi((i % 9) as i32 - 4);
            let d = if i % 3 == 0 {
                n
            } else {
                unit() * 10f64.powi((i % 7) as i32 - 3)
            };
            let (norm_sq, best_sq) = (n * n, d * d);
            let terms = 1 + i % 800;
            let exact = window(norm_sq.sqrt(), best_sq, terms);
            assert!(
                window_bound(norm_sq, best_sq, terms) >= exact,
                "n {n}, d {d}"
            );
        }
    }

    /// The bound holds where f32 ranking goes wrong: far from the origin two centroids whose
    /// distances differ by far less than the expansion's rounding are flagged.
    #[test]
    fn a_near_tie_far_from_the_origin_is_undecided() {
        let x = [1000.0f32, 1000.0];
        // Distances 1.0 and 1.0 + 1e-4: the expanded values differ by 1e-4, below the
        // rounding of terms around 2·10⁶.
        assert!(undecided(1414.2, 1.0, 1e-4, 2));
        // Near the origin the same gap is decided.
        assert!(!undecided(1.0, 1.0, 1e-4, 2));
        assert!(undecided(1.0, 1.0, f64::NAN, 2));
        let c = [1000.0, 1001.0, 1001.0, 1000.0];
        assert_eq!(nearest_direct(&x, &c, 2), (0, 1.0));
    }

    /// The eight partial sums agree with one running sum to f64's rounding, at lengths with
    /// and without a tail, and the AVX2 ones are the same bits.
    #[test]
    fn partial_sums_keep_f64_accuracy() {
        for len in [1usize, 7, 8, 9, 768, 771] {
            let x: Vec<f32> = (0..len)
                .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.4)
                .collect();
            let c: Vec<f64> = (0..len)
                .map(|i| ((i * 104_729) % 997) as f64 * 1e-3 - 0.5)
                .collect();
            let one: f64 = x
                .iter()
                .zip(&c)
                .map(|(&a, &b)| (f64::from(a) - b) * (f64::from(a) - b))
                .sum();
            let got = squared_f64(&x, &c);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: detected just above.
                assert_eq!(unsafe { squared_f64_avx2(&x, &c) }.to_bits(), got.to_bits());
            }
            assert_eq!(squared_f64_fast(&x, &c).to_bits(), got.to_bits());
            // Float64 rows (values f32 cannot hold): each path gives the portable bits.
            let wide: Vec<f64> = x.iter().map(|&v| f64::from(v) + 1e-9).collect();
            let want = squared_f64(&wide, &c);
            assert_eq!(
                squared_f64_fast(&wide, &c).to_bits(),
                want.to_bits(),
                "len {len}"
            );
            assert!(
                (got - one).abs() <= 1e-14 * one,
                "len {len}: {got} vs {one}"
            );
        }
    }
}
