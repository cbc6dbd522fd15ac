//! Centroids in a frame as the CPU assigns with them, and the certification of labels
//! against the caller's values: a point the f32 ranking cannot decide (its rounding into the
//! frame included) is decided by distances between the caller's values, only scaled by a
//! power of two. Centring rounds: on integer data, where a point is often equidistant from
//! two centroids or 10⁻⁸ from one and 0 from another, the centred values broke such ties at
//! random. Product-quantization codes, codebook labels and Lloyd passes all certify here, so
//! a fit's labels are the labels its codebook gives.

use super::cpu_dense::DenseCentroids;
use super::exact::{
    clears_bound_for_rounded_point, squared_f64, undecided_for_rounded_point, window,
};
use super::rank::{Scratch, squared_norm};
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
    /// values (scaled alike) among `candidates` (ascending), lowest index on ties.
    #[inline(always)]
    fn nearest_to_caller<T: Real>(&self, x: &[T], candidates: &[u32]) -> u32 {
        let dim = x.len();
        let xs: Vec<f64> = x.iter().map(|v| self.frame.to_scaled(v.to_f64())).collect();
        let mut best = (0u32, f64::INFINITY);
        for &j in candidates {
            let c = &self.scaled[j as usize * dim..(j as usize + 1) * dim];
            // Eight partial sums in a fixed order: the same bits on every CPU, and vectorised
            // (at d = 768 a sequential sum made deciding a point cost more than ranking it).
            let d = squared_f64(&xs, c);
            if d < best.1 {
                best = (j, d);
            }
        }
        best.0
    }

    /// Keeps each ranked label of `block` the f32 ranking decided, decides the others on
    /// the caller's values, and fills each row's squared distance to its centroid in the
    /// frame's units.
    pub(crate) fn certify<T: Real>(&self, block: Ranked<'_, T>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features it is compiled for were just detected.
            unsafe { self.certify_avx2(block) };
            return;
        }
        self.certify_rows::<T, false>(block);
    }

    /// [`SubSpace::certify`] with AVX2 and FMA. Only the recomputed f32 values fuse (their
    /// bound holds either way, and which centroids it leaves in does not change the label);
    /// the f64 distances are the same operations four lanes wide, so the same bits.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn certify_avx2<T: Real>(&self, block: Ranked<'_, T>) {
        self.certify_rows::<T, true>(block);
    }

    #[inline(always)]
    fn certify_rows<T: Real, const AVX2_FMA: bool>(&self, b: Ranked<'_, T>) {
        let c = &self.centroids;
        let dim = c.dim;
        let mut undecided = Vec::new();
        let mut check = |r: usize, dist: f64, norm_sq: f32| {
            b.dist[r] = dist;
            let (norm_sq, gap) = (f64::from(norm_sq), f64::from(b.gaps[r]));
            // Most gaps clear the bound that needs no square root.
            if clears_bound_for_rounded_point(norm_sq, dist, gap, b.terms) {
                return;
            }
            let norm = norm_sq.sqrt();
            if undecided_for_rounded_point(norm, dist, gap, b.terms) {
                undecided.push(Undecided { row: r, norm });
            }
        };
        let centroid = |r: usize| {
            let l = b.labels[r] as usize;
            &c.c64[l * dim..(l + 1) * dim]
        };
        // The exact distance the statistics need is also the bound's D.
        let mut first = 0;
        #[cfg(target_arch = "x86_64")]
        if AVX2_FMA {
            first = b.x.len() / dim / 2 * 2;
            for r in (0..first).step_by(2) {
                let x = |r: usize| &b.x[r * dim..(r + 1) * dim];
                // SAFETY: only `SubSpace::certify_avx2`, which runs where AVX2 and FMA were
                // detected, passes true.
                let (d, n) = unsafe {
                    super::exact::distances_and_norms_avx2(
                        [x(r), x(r + 1)],
                        [centroid(r), centroid(r + 1)],
                    )
                };
                check(r, d[0], n[0]);
                check(r + 1, d[1], n[1]);
            }
        }
        for (r, x) in b.x.chunks_exact(dim).enumerate().skip(first) {
            check(r, distance::<AVX2_FMA>(x, centroid(r)), squared_norm(x));
        }
        if undecided.is_empty() {
            return;
        }
        let values = values::<AVX2_FMA>(b.x, &undecided, c);
        let terms = dim.div_ceil(LANES) + LANES.ilog2() as usize;
        // f64's rounding of the comparison on top of the f32 bound, so that a centroid left
        // out is farther than the nearest by more than f64 can blur.
        let slack = (dim as f64 + 8.0) * f64::EPSILON;
        let mut candidates = Vec::new();
        for (u, values) in undecided.iter().zip(values.chunks_exact(c.k())) {
            let (r, l) = (u.row, b.labels[u.row] as usize);
            let best = b.dist[r];
            let width = window(u.norm, best, terms + 2) * (1.0 + slack) + slack * best;
            let limit = f64::from(values[l]) + width;
            candidates.clear();
            candidates
                .extend((0..c.k() as u32).filter(|&j| f64::from(values[j as usize]) <= limit));
            if !candidates.contains(&(l as u32)) {
                // A value that is not a number left l out: every centroid is compared.
                candidates.clear();
                candidates.extend(0..c.k() as u32);
            }
            if candidates.len() == 1 {
                continue;
            }
            let caller = &b.rows[r * b.row_len + b.first..][..dim];
            let decided = self.nearest_to_caller(caller, &candidates) as usize;
            if decided != l {
                b.labels[r] = decided as u32;
                let x = &b.x[r * dim..(r + 1) * dim];
                b.dist[r] = distance::<AVX2_FMA>(x, &c.c64[decided * dim..(decided + 1) * dim]);
            }
        }
    }
}

/// [`squared_f64`], with AVX2 where `AVX2_FMA` says the caller runs with AVX2 and FMA (the
/// same bits either way).
#[inline(always)]
fn distance<const AVX2_FMA: bool>(x: &[f32], c: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if AVX2_FMA {
        // SAFETY: only `SubSpace::certify_avx2`, which runs where AVX2 and FMA were detected,
        // passes true.
        return unsafe { super::exact::squared_f64_avx2(x, c) };
    }
    squared_f64(x, c)
}

/// A row the ranking left undecided, and its norm in the frame.
struct Undecided {
    row: usize,
    norm: f64,
}

/// Partial sums of the recomputed values: four AVX2 registers, enough independent chains to
/// keep the FMA units busy.
const LANES: usize = 32;

/// The values ‖c_j‖² − 2x·c_j in f32 of the rows the ranking left undecided (`k` each),
/// recomputed so that their rounding bound is about d/[`LANES`] units where the ranking's
/// is d: each dot product in [`LANES`] partial sums of at most ⌈d/LANES⌉ terms, added
/// pairwise, fused or not. Only the centroids within that bound of the ranked label (which
/// always include the nearest) are then compared on the caller's values. At d = 768 about
/// one row in sixteen of standard-normal data is undecided under a running sum's bound (one
/// in 186 under the chunked AVX2 kernel's), and nineteen in twenty of those have no other
/// centroid within the new bound; comparing every centroid in f64 had cost each six
/// rankings.
/// Centroid by centroid, so that each is read once for all of a block's undecided rows.
#[inline(always)]
fn values<const AVX2_FMA: bool>(x: &[f32], rows: &[Undecided], c: &DenseCentroids) -> Vec<f32> {
    let (dim, k) = (c.dim, c.k());
    let mut out = vec![0.0f32; rows.len() * k];
    let row = |u: &Undecided| &x[u.row * dim..(u.row + 1) * dim];
    for (j, (cj, &norm)) in c.c32.chunks_exact(dim).zip(&c.norms).enumerate() {
        // Two rows a centroid: each of its values loaded once for both.
        let mut pairs = rows.chunks_exact(2);
        for (q, pair) in (&mut pairs).enumerate() {
            let (a, b) = dot2::<AVX2_FMA>(row(&pair[0]), row(&pair[1]), cj);
            out[2 * q * k + j] = norm - 2.0 * a;
            out[(2 * q + 1) * k + j] = norm - 2.0 * b;
        }
        if let [u] = pairs.remainder() {
            out[(rows.len() - 1) * k + j] = norm - 2.0 * dot::<AVX2_FMA>(row(u), cj);
        }
    }
    out
}

/// ([`dot`] of `x` and `c`, [`dot`] of `y` and `c`), the same bits.
#[inline(always)]
fn dot2<const AVX2_FMA: bool>(x: &[f32], y: &[f32], c: &[f32]) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if AVX2_FMA {
        // SAFETY: as in `dot`.
        return unsafe { dot2_avx2(x, y, c) };
    }
    (dot_portable(x, c), dot_portable(y, c))
}

/// x·c in [`LANES`] partial sums added pairwise.
#[inline(always)]
fn dot<const AVX2_FMA: bool>(x: &[f32], c: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if AVX2_FMA {
        // SAFETY: only `SubSpace::certify_avx2`, which runs where AVX2 and FMA were detected,
        // passes true.
        return unsafe { dot_avx2(x, c) };
    }
    dot_portable(x, c)
}

/// [`dot`] in four AVX2 registers of eight partial sums (written out: the compiler's own
/// vectorisation of the portable loop here was two lanes wide).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn dot_avx2(x: &[f32], c: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    assert_eq!(x.len(), c.len());
    let whole = x.len() / LANES * LANES;
    let mut acc = [_mm256_setzero_ps(); 4];
    for i in (0..whole).step_by(LANES) {
        for (r, a) in acc.iter_mut().enumerate() {
            // SAFETY: i + LANES <= whole <= len for both slices.
            unsafe {
                let xv = _mm256_loadu_ps(x.as_ptr().add(i + 8 * r));
                let cv = _mm256_loadu_ps(c.as_ptr().add(i + 8 * r));
                *a = _mm256_fmadd_ps(xv, cv, *a);
            }
        }
    }
    // SAFETY: AVX2 and FMA, as this function.
    unsafe { finish_avx2(acc, &x[whole..], &c[whole..]) }
}

/// [`dot_avx2`] of `x` and `c` and of `y` and `c`: the same accumulators, in the same
/// order, for each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn dot2_avx2(x: &[f32], y: &[f32], c: &[f32]) -> (f32, f32) {
    use std::arch::x86_64::*;
    assert!(x.len() == c.len() && y.len() == c.len());
    let whole = x.len() / LANES * LANES;
    let (mut ax, mut ay) = ([_mm256_setzero_ps(); 4], [_mm256_setzero_ps(); 4]);
    for i in (0..whole).step_by(LANES) {
        for r in 0..4 {
            // SAFETY: i + LANES <= whole <= len for the three slices.
            unsafe {
                let cv = _mm256_loadu_ps(c.as_ptr().add(i + 8 * r));
                let xv = _mm256_loadu_ps(x.as_ptr().add(i + 8 * r));
                let yv = _mm256_loadu_ps(y.as_ptr().add(i + 8 * r));
                ax[r] = _mm256_fmadd_ps(xv, cv, ax[r]);
                ay[r] = _mm256_fmadd_ps(yv, cv, ay[r]);
            }
        }
    }
    // SAFETY: AVX2 and FMA, as this function.
    unsafe {
        (
            finish_avx2(ax, &x[whole..], &c[whole..]),
            finish_avx2(ay, &y[whole..], &c[whole..]),
        )
    }
}

/// The four registers of partial sums, the products of the tail (fewer than [`LANES`]
/// values) fused into the first lanes, added as [`pairwise`] adds them: without a tail, in
/// registers (lane l plus lane l + width, width halving, is what the halves of registers
/// added together compute).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn finish_avx2(acc: [std::arch::x86_64::__m256; 4], x: &[f32], c: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    if x.is_empty() {
        let w16 = [_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3])];
        let w8 = _mm256_add_ps(w16[0], w16[1]);
        let w4 = _mm_add_ps(_mm256_castps256_ps128(w8), _mm256_extractf128_ps::<1>(w8));
        let w2 = _mm_add_ps(w4, _mm_movehl_ps(w4, w4));
        let w1 = _mm_add_ss(w2, _mm_movehdup_ps(w2));
        return _mm_cvtss_f32(w1);
    }
    let mut lanes = [0.0f32; LANES];
    for (r, a) in acc.iter().enumerate() {
        // SAFETY: lanes holds four registers of eight.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr().add(8 * r), *a) };
    }
    for (l, (&a, &b)) in x.iter().zip(c).enumerate() {
        lanes[l] = a.mul_add(b, lanes[l]);
    }
    pairwise(lanes)
}

/// [`dot`] on any CPU.
#[inline(always)]
fn dot_portable(x: &[f32], c: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (xs, cs) = (x.chunks_exact(LANES), c.chunks_exact(LANES));
    let (xt, ct) = (xs.remainder(), cs.remainder());
    for (a, b) in xs.zip(cs) {
        for l in 0..LANES {
            acc[l] += a[l] * b[l];
        }
    }
    for (l, (&a, &b)) in xt.iter().zip(ct).enumerate() {
        acc[l] += a * b;
    }
    pairwise(acc)
}

/// The partial sums added pairwise: log₂ [`LANES`] roundings deep.
#[inline(always)]
fn pairwise(mut acc: [f32; LANES]) -> f32 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0]
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
    /// The most roundings a product of the ranking's dot products went through
    /// ([`super::rank::Ranker::terms`]): the d of its rounding bound.
    pub terms: usize,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::rank::Ranker;
    use crate::frame::Extent;

    /// Sums of uniforms: near-normal values, whose distances in high dimensions crowd
    /// together so that the ranking leaves many rows undecided.
    fn normalish(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            (0..4)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
                })
                .sum()
        }
    }

    /// The recomputed dot products, fused or not, are within the bound the certification
    /// assumes: (⌈d/LANES⌉ + log₂ LANES) units of Σ|x·c|, at lengths with and without a tail.
    #[test]
    fn recomputed_dot_products_keep_their_bound() {
        let mut rnd = normalish(8);
        for len in [1usize, 31, 32, 33, 97, 768, 771] {
            let x: Vec<f32> = (0..len).map(|_| (1e3 * rnd()) as f32).collect();
            let c: Vec<f32> = (0..len).map(|_| rnd() as f32).collect();
            let exact: f64 = x
                .iter()
                .zip(&c)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            let mass: f64 = x
                .iter()
                .zip(&c)
                .map(|(&a, &b)| f64::from(a * b).abs())
                .sum();
            let units = (len.div_ceil(LANES) + LANES.ilog2() as usize) as f64;
            let bound = units * f64::from(f32::EPSILON) / 2.0 * mass * 1.01;
            let mut got = vec![dot_portable(&x, &c)];
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: detected just above.
                got.push(unsafe { dot_avx2(&x, &c) });
            }
            for g in got {
                let err = (f64::from(g) - exact).abs();
                assert!(err <= bound, "len {len}: error {err} over {bound}");
            }
        }
    }

    /// The AVX2 dot products, one row or two at a time, with the registers' sum taken in
    /// registers or through the lanes, are the lanes' pairwise sum of the same fused
    /// accumulations, bit for bit (so the recomputed values, and what they decide, do not
    /// depend on how the rows are paired).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_dots_are_the_pairwise_sums_of_their_lanes() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return;
        }
        let reference = |x: &[f32], c: &[f32]| {
            let mut lanes = [0.0f32; LANES];
            for (i, (&a, &b)) in x.iter().zip(c).enumerate() {
                lanes[i % LANES] = a.mul_add(b, lanes[i % LANES]);
            }
            pairwise(lanes)
        };
        let mut rnd = normalish(9);
        for len in [1, 7, 31, 32, 33, 64, 100, 768, 800] {
            for _ in 0..50 {
                let mut v = || (0..len).map(|_| rnd() as f32).collect::<Vec<f32>>();
                let (x, y, c) = (v(), v(), v());
                let want = (reference(&x, &c), reference(&y, &c));
                // SAFETY: detected just above.
                let one = unsafe { (dot_avx2(&x, &c), dot_avx2(&y, &c)) };
                let two = unsafe { dot2_avx2(&x, &y, &c) };
                for (got, what) in [(one, "one"), (two, "two")] {
                    assert_eq!(
                        (got.0.to_bits(), got.1.to_bits()),
                        (want.0.to_bits(), want.1.to_bits()),
                        "{what} at a time, len {len}"
                    );
                }
            }
        }
    }

    /// Every certified label is the nearest centroid by the caller's values (lowest index
    /// on ties) and every distance the one to it, fused or not, on shapes where the ranking
    /// leaves rows undecided: high dimensions, a centroid repeated (exact ties), data far
    /// from the origin, rows that are not a multiple of a block.
    #[test]
    fn certified_labels_are_the_nearest_on_the_callers_values() {
        let mut rnd = normalish(5);
        let (mut undecided, mut moved) = ([0usize; 5], 0);
        for (case, (n, dim, k, shift)) in [
            (1000usize, 768usize, 40usize, 0.0),
            (257, 97, 33, 1e3),
            (513, 3, 7, 0.0),
            (1, 40, 5, 1e4),
            (2000, 3, 9, 1e3),
        ]
        .into_iter()
        .enumerate()
        {
            // The last case is small integers: rows exactly equidistant from two centroids.
            let integers = case == 4;
            let mut value = |scale: f64| match integers {
                true => shift + (4.0 * rnd() + 4.0).round(),
                false => shift + scale * rnd(),
            };
            let data: Vec<f64> = (0..n * dim).map(|_| value(1.0)).collect();
            let mut centroids: Vec<f64> = (0..k * dim).map(|_| value(0.2)).collect();
            centroids.copy_within(0..dim, (k - 1) * dim);
            let frame = Extent::of(&data, dim).unwrap().frame();
            let space = SubSpace::new(frame.clone(), &centroids, dim);
            let points = frame.to_device_f32(&data);
            let ranker = Ranker::new(&space.centroids);
            for fused in [false, true] {
                let mut buf = Buffers::default();
                for (b, (x, rows)) in points
                    .chunks(BLOCK * dim)
                    .zip(data.chunks(BLOCK * dim))
                    .enumerate()
                {
                    let r = x.len() / dim;
                    buf.labels.resize(r, 0);
                    buf.gaps.resize(r, 0.0);
                    buf.dist.resize(r, 0.0);
                    ranker.rank_rows(x, &mut buf.labels, &mut buf.gaps, &mut buf.scratch);
                    let ranked = buf.labels.clone();
                    let block = Ranked {
                        x,
                        rows,
                        row_len: dim,
                        first: 0,
                        labels: &mut buf.labels,
                        gaps: &buf.gaps,
                        terms: ranker.terms(),
                        dist: &mut buf.dist,
                    };
                    if fused {
                        space.certify(block);
                    } else {
                        space.certify_rows::<f64, false>(block);
                    }
                    for (i, row) in rows.chunks_exact(dim).enumerate() {
                        let xs: Vec<f64> = row.iter().map(|&v| frame.to_scaled(v)).collect();
                        let mut want = (0u32, f64::INFINITY);
                        for (j, c) in space.scaled.chunks_exact(dim).enumerate() {
                            let d = squared_f64(&xs, c);
                            if d < want.1 {
                                want = (j as u32, d);
                            }
                        }
                        let l = buf.labels[i] as usize;
                        assert_eq!(l as u32, want.0, "row {} of {n}x{dim}", b * BLOCK + i);
                        let xi = &x[i * dim..(i + 1) * dim];
                        let dist = squared_f64(xi, &space.centroids.c64[l * dim..][..dim]);
                        assert_eq!(buf.dist[i], dist);
                        let norm = f64::from(squared_norm(xi)).sqrt();
                        let gap = f64::from(buf.gaps[i]);
                        undecided[case] +=
                            undecided_for_rounded_point(norm, dist, gap, ranker.terms()) as usize;
                        moved += (ranked[i] != buf.labels[i]) as usize;
                    }
                }
            }
        }
        // Both ways of deciding ran: high-dimensional rows left undecided, and ties the
        // ranking had given to another centroid.
        assert!(
            undecided[0] >= 20 && moved >= 1,
            "{undecided:?} undecided, {moved} moved"
        );
    }
}
