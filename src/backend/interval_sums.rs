//! Per-cell statistics of scalars whose cells are intervals (one dimension, no weights):
//! counts, fixed-point sums of the values and of their squares, and each cell's lowest and
//! highest value. Every one of them merges exactly (integer sums, minima, maxima), so the
//! statistics of parts of the values equal those of the whole to the bit, and so does
//! everything derived from them: the means, the squared errors and the empty-cell splits.
//!
//! The 1-D CPU backend reads them off prefix sums of sorted values in O(k log n) per
//! iteration; [`crate::LloydStats`] sums them point by point. Both give the same bits.
//!
//! Values lie in [−1, 1] (the frame's units, or a power-of-two rescaling of them).

use super::CellStats;
use super::cell_sums::{FRACTION_BITS, fixed};
use super::empty_cells::{Extremes, split_empty_cells};
use crate::error::{Error, Result};

/// `x²` in the fixed point of [`fixed`], from its exact two-term expansion (so only the
/// part below 2⁻⁶⁴ is lost, not f64's relative rounding of the square: a narrow cell far
/// from the origin keeps its squared errors).
#[inline(always)]
pub(crate) fn fixed_square(x: f64) -> i128 {
    let (h, l) = two_product(x, x);
    fixed(h) + fixed(l)
}

/// `a · b = p + e` exactly (Dekker's product with Veltkamp's split: no FMA needed, so the
/// same bits on every machine).
#[inline(always)]
fn two_product(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    let (ah, al) = split(a);
    let (bh, bl) = split(b);
    let e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
    (p, e)
}

/// [`two_product`] by a fused multiply-add: the same exact `e` in two operations, for code
/// compiled with the `fma` feature (without it `mul_add` is a slow library call).
#[inline(always)]
fn two_product_fused(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

#[inline(always)]
fn split(a: f64) -> (f64, f64) {
    const C: f64 = 134_217_729.0; // 2²⁷ + 1
    let t = C * a;
    let h = t - (t - a);
    (h, a - h)
}

/// `a + b = s + e` exactly.
#[inline(always)]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

const TWO_32: f64 = (1u64 << 32) as f64;
/// 2^FRACTION_BITS: one in the fixed point.
const TWO_64: f64 = (1u128 << FRACTION_BITS) as f64;

/// `v as f64` for |v| < 2⁵¹, exactly, by the bits of 1.5·2⁵² + v: integer and float
/// operations a compiler vectorises where packed i64 → f64 conversions do not exist (AVX2).
#[inline(always)]
fn small_to_f64(v: i64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2⁵²
    f64::from_bits(MAGIC.to_bits().wrapping_add(v as u64)) - MAGIC
}

/// A value carried as an unevaluated sum hi + lo (about 106 bits).
#[derive(Clone, Copy)]
struct Double(f64, f64);

impl Double {
    /// An i128 (a fixed-point sum) to about 106 bits.
    #[inline]
    fn of_i128(v: i128) -> Self {
        if ((v >> 64) as i64).unsigned_abs() < 1 << 51 {
            return Double::of_small_i128(v);
        }
        let hi = v as f64;
        // |v − hi| < 2⁷⁵: an exact i128, then one more rounding far below hi's.
        let lo = v.wrapping_sub(hi as i128) as f64;
        Double(hi, lo)
    }

    /// [`Double::of_i128`] of a sum below 2¹¹⁵ in magnitude (the case of every sum of fewer
    /// than 2⁵¹ values), without a branch or i128's slow conversion: v = h·2⁶⁴ + l_hi·2³² +
    /// l_lo, three terms f64 holds exactly.
    #[inline(always)]
    fn of_small_i128(v: i128) -> Self {
        let (h, l) = ((v >> 64) as i64, v as u64);
        let (s, e) = two_sum(
            small_to_f64(h) * TWO_64,
            small_to_f64((l >> 32) as i64) * TWO_32,
        );
        let (hi, lo) = two_sum(s, e + small_to_f64((l & 0xffff_ffff) as i64));
        Double(hi, lo)
    }

    #[inline(always)]
    fn add(self, o: Double) -> Double {
        let (s, e) = two_sum(self.0, o.0);
        let (hi, lo) = two_sum(s, e + self.1 + o.1);
        Double(hi, lo)
    }

    /// `self · c`, with the fused product where `FUSED` (see [`two_product_fused`]).
    #[inline(always)]
    fn times<const FUSED: bool>(self, c: f64) -> Double {
        let (p, e) = if FUSED {
            two_product_fused(self.0, c)
        } else {
            two_product(self.0, c)
        };
        let (hi, lo) = two_sum(p, e + self.1 * c);
        Double(hi, lo)
    }
}

/// The loop of [`IntervalSums::errors`]: `FUSED` products (see [`two_product_fused`]),
/// `SMALL` sums (of fewer than 2⁵¹ values in all, see [`Double::of_small_i128`]).
#[inline(always)]
fn errors_of<const FUSED: bool, const SMALL: bool>(
    sums: &IntervalSums,
    centroids: &[f64],
    out: &mut [f64],
) {
    let k = out.len();
    // The conversions first, into arrays of f64, so that the arithmetic below is a loop over
    // f64 arrays alone, which the compiler vectorises.
    let (s2h, s2l) = doubles::<SMALL>(&sums.squares[..k]);
    let (s1h, s1l) = doubles::<SMALL>(&sums.sums[..k]);
    let n: Vec<f64> = sums.counts[..k]
        .iter()
        .map(|&n| {
            if SMALL {
                small_to_f64(n as i64)
            } else {
                n as f64
            }
        })
        .collect();
    let (s2h, s2l, s1h, s1l, n, centroids) = (
        &s2h[..k],
        &s2l[..k],
        &s1h[..k],
        &s1l[..k],
        &n[..k],
        &centroids[..k],
    );
    for j in 0..k {
        let c = centroids[j];
        let s1 = Double(s1h[j], s1l[j]).times::<FUSED>(-2.0 * c);
        let (cc, ce) = if FUSED {
            two_product_fused(c, c)
        } else {
            two_product(c, c)
        };
        let nc2 = Double(cc, ce).times::<FUSED>(n[j]);
        let e = Double(s2h[j], s2l[j])
            .add(s1)
            .add(nc2.times::<FUSED>(TWO_64));
        let e = ((e.0 + e.1) / TWO_64).max(0.0);
        out[j] = if n[j] == 0.0 { 0.0 } else { e };
    }
}

/// Fixed-point sums as [`Double`]s, their two parts in arrays of their own.
#[inline(always)]
fn doubles<const SMALL: bool>(v: &[i128]) -> (Vec<f64>, Vec<f64>) {
    let (mut hi, mut lo) = (vec![0.0; v.len()], vec![0.0; v.len()]);
    for ((&x, h), l) in v.iter().zip(&mut hi).zip(&mut lo) {
        Double(*h, *l) = if SMALL {
            Double::of_small_i128(x)
        } else {
            Double::of_i128(x)
        };
    }
    (hi, lo)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn errors_avx2_fma(sums: &IntervalSums, centroids: &[f64], out: &mut [f64]) {
    errors_of::<true, true>(sums, centroids, out);
}

/// [`errors_avx2_fma`] eight cells at a time, the same operations on each: on a Zen 4 its
/// share of a 1-D fit at N = 500 fell by a third (perf samples over 20 000 iterations:
/// 1 230 against 1 806–2 196), where it had been a third of each iteration.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn errors_avx512_fma(sums: &IntervalSums, centroids: &[f64], out: &mut [f64]) {
    errors_of::<true, true>(sums, centroids, out);
}

/// The means of the non-empty cells into `c` (the others keep theirs): the sum's leading
/// part, its value to the nearest f64 as `as f64` gives it (exactly so for sums of fewer than
/// 2⁴² values, whose three parts add up without rounding), over the count. `SMALL` sums (of
/// fewer than 2⁵¹ values in all) convert without branches, in a loop the compiler vectorises.
#[inline(always)]
fn means_of<const SMALL: bool>(sums: &IntervalSums, c: &mut [f64]) {
    // The conversions first, into arrays of f64 (on the stack, a chunk of cells at a time),
    // then the divisions over them alone: a loop the compiler vectorises, four at a time.
    const CHUNK: usize = 64;
    let cells = c
        .chunks_mut(CHUNK)
        .zip(sums.counts.chunks(CHUNK))
        .zip(sums.sums.chunks(CHUNK));
    for ((c, counts), s) in cells {
        let (mut hi, mut count) = ([0.0; CHUNK], [0.0; CHUNK]);
        for (j, (&n, &s)) in counts.iter().zip(s).enumerate() {
            (hi[j], count[j]) = if SMALL {
                (Double::of_small_i128(s).0, small_to_f64(n as i64))
            } else {
                (Double::of_i128(s).0, n as f64)
            };
        }
        for (j, cj) in c.iter_mut().enumerate() {
            // A select, not a branch around the store: empty cells keep their centroid.
            let kept = *cj;
            *cj = if count[j] > 0.0 {
                hi[j] / (count[j] * TWO_64)
            } else {
                kept
            };
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn means_avx2(sums: &IntervalSums, c: &mut [f64]) {
    means_of::<true>(sums, c);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn means_avx512(sums: &IntervalSums, c: &mut [f64]) {
    means_of::<true>(sums, c);
}

/// The statistics of one pass, cells in increasing order of their centroids.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct IntervalSums {
    pub counts: Vec<u64>,
    /// Σ x in fixed point (2⁻⁶⁴ units).
    pub sums: Vec<i128>,
    /// Σ x² in fixed point.
    pub squares: Vec<i128>,
    /// Each cell's lowest and highest value (±∞ when empty).
    pub low: Vec<f64>,
    pub high: Vec<f64>,
}

impl IntervalSums {
    pub(crate) fn zeros(k: usize) -> Self {
        IntervalSums {
            counts: vec![0; k],
            sums: vec![0; k],
            squares: vec![0; k],
            low: vec![f64::INFINITY; k],
            high: vec![f64::NEG_INFINITY; k],
        }
    }

    pub(crate) fn k(&self) -> usize {
        self.counts.len()
    }

    /// Whether sums decoded from bytes are ones values of a frame (|x| ≤ 1) can produce:
    /// lengths consistent and totals that no merge of them can overflow.
    pub(crate) fn well_formed(&self) -> bool {
        let k = self.k();
        let total: u128 = self.counts.iter().map(|&c| u128::from(c)).sum();
        k >= 1
            && total < 1 << 60
            && [
                self.sums.len(),
                self.squares.len(),
                self.low.len(),
                self.high.len(),
            ] == [k; 4]
            && (0..k).all(|j| {
                // A margin of 2x over the exact bound, for the roundings of the fixed point.
                let b = i128::from(self.counts[j]) << (FRACTION_BITS + 1);
                let (lo, hi) = (self.low[j], self.high[j]);
                self.sums[j].abs() <= b
                    && (0..=b).contains(&self.squares[j])
                    && match self.counts[j] {
                        0 => lo == f64::INFINITY && hi == f64::NEG_INFINITY,
                        _ => (-1.0..=1.0).contains(&lo) && (-1.0..=1.0).contains(&hi) && lo <= hi,
                    }
            })
    }

    /// Adds value `x` to cell `l`.
    #[inline(always)]
    pub(crate) fn add(&mut self, l: usize, x: f64) {
        self.counts[l] += 1;
        self.sums[l] += fixed(x);
        self.squares[l] += fixed_square(x);
        self.low[l] = self.low[l].min(x);
        self.high[l] = self.high[l].max(x);
    }

    /// Adds the statistics of other values against the same centroids.
    pub(crate) fn merge(&mut self, other: &IntervalSums) -> Result<()> {
        if other.k() != self.k() {
            return Err(Error::InvalidArgument(
                "statistics of different centroids cannot be merged".into(),
            ));
        }
        for j in 0..self.k() {
            self.counts[j] += other.counts[j];
            self.sums[j] += other.sums[j];
            self.squares[j] += other.squares[j];
            self.low[j] = self.low[j].min(other.low[j]);
            self.high[j] = self.high[j].max(other.high[j]);
        }
        Ok(())
    }

    /// Σ (x − c)² of every cell about its centroid `c`: Σx² − 2cΣx + n c², evaluated to
    /// about 106 bits from the exact sums, so the cancellation of a narrow cell far from the
    /// origin costs nothing that shows in f64. One branch-free loop the compiler vectorises;
    /// with AVX2 and FMA, four cells at a time and exact products in two operations instead
    /// of seventeen (the same bits: both products are exact, unless c² underflows, below
    /// 10⁻³⁰⁰).
    pub(crate) fn errors(&self, centroids: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.k()];
        if !self.small() {
            errors_of::<false, false>(self, centroids, &mut out);
            return out;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("fma") {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the features it is compiled for were just detected.
                unsafe { errors_avx512_fma(self, centroids, &mut out) };
                return out;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the features it is compiled for were just detected.
                unsafe { errors_avx2_fma(self, centroids, &mut out) };
                return out;
            }
        }
        errors_of::<false, true>(self, centroids, &mut out);
        out
    }

    /// Whether these are sums of fewer than 2⁵¹ values in all, which convert to f64 without
    /// branches ([`Double::of_small_i128`], [`small_to_f64`]).
    fn small(&self) -> bool {
        self.counts.iter().map(|&n| u128::from(n)).sum::<u128>() < 1 << 51
    }

    /// [`means_of`] on the widest vectors this CPU has.
    fn means_into(&self, c: &mut [f64]) {
        if !self.small() {
            means_of::<false>(self, c);
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature it is compiled for was just detected.
            unsafe { means_avx512(self, c) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the feature it is compiled for was just detected.
            unsafe { means_avx2(self, c) };
            return;
        }
        means_of::<true>(self, c);
    }

    /// Counts, masses (the counts) and squared errors about `centroids`.
    pub(crate) fn cell_stats(&self, centroids: &[f64]) -> CellStats {
        CellStats {
            counts: self.counts.clone(),
            mass: self.counts.iter().map(|&n| n as f64).collect(),
            sse: self.errors(centroids),
        }
    }

    /// The sum of the cells' squared errors, in cell order.
    pub(crate) fn total_error(&self, centroids: &[f64]) -> f64 {
        self.errors(centroids).iter().sum()
    }

    /// The cells' means (the same arithmetic as the d-D sums'); empty cells keep their `old`
    /// centroid, then the shared empty-cell policy, whose farthest point of a cell is one of
    /// its ends (the lower on ties). Sorted again after a split: intervals need order.
    pub(crate) fn means_and_splits(&self, old: &[f64]) -> (Vec<f64>, usize) {
        let mut c = old.to_vec();
        self.means_into(&mut c);
        if self.counts.iter().all(|&n| n > 0) {
            return (c, 0);
        }
        let extremes = Extremes {
            splittable: (0..self.k()).map(|j| self.low[j] < self.high[j]).collect(),
            far: (0..self.k())
                .map(|j| {
                    let (lo, hi) = (self.low[j], self.high[j]);
                    if (lo - old[j]).abs() >= (hi - old[j]).abs() {
                        lo
                    } else {
                        hi
                    }
                })
                .collect(),
        };
        let stats = CellStats {
            counts: self.counts.clone(),
            mass: self.counts.iter().map(|&n| n as f64).collect(),
            sse: Vec::new(),
        };
        let splits = split_empty_cells(&mut c, 1, &stats, &extremes);
        if splits > 0 {
            c.sort_by(f64::total_cmp);
        }
        (c, splits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sums as fits produce them: every count up to 2⁴⁰ values, fixed-point sums of values
    /// in [−1, 1] and of their squares.
    fn random_sums(k: usize, seed: u64) -> IntervalSums {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut s = IntervalSums::zeros(k);
        for j in 0..k {
            let bits = rng.random_range(0..40);
            let n: u64 = rng.random_range(0..1u64 << bits);
            let mean: f64 = rng.random_range(-1.0..1.0);
            let spread: f64 = libm::scalbn(1.0, -rng.random_range(0..40));
            s.counts[j] = n;
            s.sums[j] = fixed(mean) * i128::from(n) + rng.random_range(-(1i128 << 60)..1 << 60);
            let sq = fixed_square(mean) * i128::from(n);
            s.squares[j] = sq + (fixed(spread) * i128::from(n)).min(sq);
        }
        s
    }

    /// The fast conversion keeps the value: its leading part is the rounded i128 and the two
    /// parts together hold it to 2⁻¹⁰⁰ of itself.
    #[test]
    fn doubles_hold_their_sums() {
        let s = random_sums(4000, 3);
        for &v in s.sums.iter().chain(&s.squares) {
            let d = Double::of_i128(v);
            assert_eq!(d.0, v as f64, "{v}");
            let rest = v - d.0 as i128;
            assert!((rest as f64 - d.1).abs() <= v.unsigned_abs() as f64 * 2f64.powi(-100));
        }
    }

    /// Where the machine has AVX2 and FMA, the fused, vectorised errors are the portable
    /// ones, to the bit; so are those of the general conversion of the sums.
    #[test]
    fn fused_errors_equal_portable_errors() {
        let s = random_sums(1001, 5);
        let centroids: Vec<f64> = (0..s.k())
            .map(|j| {
                if s.counts[j] > 0 {
                    s.sums[j] as f64 / (s.counts[j] as f64 * TWO_64)
                } else {
                    0.3
                }
            })
            .map(|c| c + 1e-9)
            .collect();
        let fast = s.errors(&centroids);
        let mut portable = vec![0.0; s.k()];
        errors_of::<false, true>(&s, &centroids, &mut portable);
        let mut general = vec![0.0; s.k()];
        errors_of::<false, false>(&s, &centroids, &mut general);
        let bits = |v: &[f64]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&portable));
        assert_eq!(bits(&general), bits(&portable));
        assert!(portable.iter().any(|&e| e > 0.0));
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let mut out = vec![0.0; s.k()];
            if has!("avx2") && has!("fma") {
                // SAFETY: the features were just detected.
                unsafe { errors_avx2_fma(&s, &centroids, &mut out) };
                assert_eq!(bits(&out), bits(&portable), "AVX2");
            }
            if has!("avx512f") && has!("fma") {
                // SAFETY: the features were just detected.
                unsafe { errors_avx512_fma(&s, &centroids, &mut out) };
                assert_eq!(bits(&out), bits(&portable), "AVX-512");
            }
        }
    }

    /// The vectorised means are the portable ones, to the bit, empty cells keeping theirs.
    #[test]
    fn vectorised_means_equal_portable_means() {
        let s = random_sums(1001, 6);
        assert!(s.counts.contains(&0) && s.counts.iter().any(|&n| n > 0));
        let old: Vec<f64> = (0..s.k()).map(|j| j as f64 * 1e-3 - 0.4).collect();
        let mut portable = old.clone();
        means_of::<true>(&s, &mut portable);
        let mut general = old.clone();
        means_of::<false>(&s, &mut general);
        let bits = |v: &[f64]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&general), bits(&portable));
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") {
                let mut c = old.clone();
                // SAFETY: the feature was just detected.
                unsafe { means_avx2(&s, &mut c) };
                assert_eq!(bits(&c), bits(&portable), "AVX2");
            }
            if has!("avx512f") {
                let mut c = old.clone();
                // SAFETY: the feature was just detected.
                unsafe { means_avx512(&s, &mut c) };
                assert_eq!(bits(&c), bits(&portable), "AVX-512");
            }
        }
    }

    #[test]
    fn squares_keep_what_f64_rounding_would_lose() {
        let x = 1.0 + 2f64.powi(-30);
        // x² = 1 + 2⁻²⁹ + 2⁻⁶⁰: f64 drops the last term, the fixed point keeps it.
        assert_eq!(
            fixed_square(x),
            (1i128 << 64) + (1i128 << 35) + (1i128 << 4)
        );
    }

    /// A cell 10⁻⁶ wide at 0.75: Σx² − 2cΣx + nc² cancels twelve digits, which f64 sums
    /// would lose (2⁻⁵³ of 0.56 a point against errors of 10⁻¹³); the fixed-point sums keep
    /// 2⁻⁶⁵ a point. (Their limit: cells narrower than about 10⁻⁹ of the frame, below f32's
    /// resolution of the d-D path, get errors to a few digits only.)
    #[test]
    fn errors_of_a_narrow_cell_far_from_the_origin_are_accurate() {
        let mut s = IntervalSums::zeros(1);
        let base = 0.75;
        let xs: Vec<f64> = (0..1000).map(|i| base + f64::from(i) * 1e-9).collect();
        for &x in &xs {
            s.add(0, x);
        }
        let c = base + 499.5e-9;
        let want: f64 = xs.iter().map(|&x| (x - c) * (x - c)).sum();
        let got = s.cell_stats(&[c]).sse[0];
        assert!((got - want).abs() <= 1e-6 * want, "{got} vs {want}");
    }

    #[test]
    fn split_statistics_merge_to_the_whole() {
        let xs: Vec<f64> = (0..997)
            .map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.4)
            .collect();
        let cell = |x: f64| usize::from(x > 0.1);
        let mut whole = IntervalSums::zeros(2);
        xs.iter().for_each(|&x| whole.add(cell(x), x));
        let mut merged = IntervalSums::zeros(2);
        for part in xs.chunks(100).rev() {
            let mut p = IntervalSums::zeros(2);
            part.iter().for_each(|&x| p.add(cell(x), x));
            merged.merge(&p).unwrap();
        }
        assert_eq!(merged, whole);
        assert!(merged.merge(&IntervalSums::zeros(3)).is_err());
    }
}
