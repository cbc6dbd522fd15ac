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

/// A value carried as an unevaluated sum hi + lo (about 106 bits).
#[derive(Clone, Copy)]
struct Double(f64, f64);

impl Double {
    /// An i128 (a fixed-point sum) to about 106 bits.
    fn of_i128(v: i128) -> Self {
        let hi = v as f64;
        // |v − hi| < 2⁷⁵: an exact i128, then one more rounding far below hi's.
        let lo = v.wrapping_sub(hi as i128) as f64;
        Double(hi, lo)
    }

    fn add(self, o: Double) -> Double {
        let (s, e) = two_sum(self.0, o.0);
        let (hi, lo) = two_sum(s, e + self.1 + o.1);
        Double(hi, lo)
    }

    fn times(self, c: f64) -> Double {
        let (p, e) = two_product(self.0, c);
        let (hi, lo) = two_sum(p, e + self.1 * c);
        Double(hi, lo)
    }
}

/// The statistics of one pass, cells in increasing order of their centroids.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

    /// Σ (x − c)² of cell `j` about `c`: Σx² − 2cΣx + n c², evaluated to about 106 bits from
    /// the exact sums, so the cancellation of a narrow cell far from the origin costs nothing
    /// that shows in f64.
    fn error(&self, j: usize, c: f64) -> f64 {
        let n = self.counts[j];
        if n == 0 {
            return 0.0;
        }
        let unit = libm::scalbn(1.0, -FRACTION_BITS);
        let s2 = Double::of_i128(self.squares[j]);
        let s1 = Double::of_i128(self.sums[j]).times(-2.0 * c);
        let (cc, ce) = two_product(c, c);
        let nc2 = Double(cc, ce).times(n as f64);
        let e = s2.add(s1).add(nc2.times(libm::scalbn(1.0, FRACTION_BITS)));
        ((e.0 + e.1) * unit).max(0.0)
    }

    /// Counts, masses (the counts) and squared errors about `centroids`.
    pub(crate) fn cell_stats(&self, centroids: &[f64]) -> CellStats {
        CellStats {
            counts: self.counts.clone(),
            mass: self.counts.iter().map(|&n| n as f64).collect(),
            sse: (0..self.k()).map(|j| self.error(j, centroids[j])).collect(),
        }
    }

    /// The sum of the cells' squared errors, in cell order.
    pub(crate) fn total_error(&self, centroids: &[f64]) -> f64 {
        (0..self.k()).map(|j| self.error(j, centroids[j])).sum()
    }

    /// The cells' means (the same arithmetic as the d-D sums'); empty cells keep their `old`
    /// centroid, then the shared empty-cell policy, whose farthest point of a cell is one of
    /// its ends (the lower on ties). Sorted again after a split: intervals need order.
    pub(crate) fn means_and_splits(&self, old: &[f64]) -> (Vec<f64>, usize) {
        let mut c = old.to_vec();
        for (j, &n) in self.counts.iter().enumerate() {
            if n > 0 {
                c[j] = self.sums[j] as f64 / ((n as i128) << FRACTION_BITS) as f64;
            }
        }
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
