//! Per-cell sufficient statistics of one assignment pass, counted in fixed point so that
//! they add exactly: statistics of parts merge into those of the whole with the same bits,
//! whatever the split, the order or the thread count (the GPU's reductions are fixed point
//! for the same reason).
//!
//! Every contribution is a value in [−1, 1] of the frame (a weighted coordinate, a weight,
//! a weighted squared error scaled by a power of two), rounded once to a multiple of 2⁻⁶⁴
//! and summed in an i128, which holds 2⁶³ such values. The rounding is 2⁻⁶⁵ of the frame's
//! unit at most: far below the f32 the points are kept in.

use super::CellStats;
use super::empty_cells::Extremes;
use crate::error::{Error, Result};
use crate::real::Real;

/// Points of one pass with their labels and squared distances.
#[derive(Clone, Copy)]
pub(crate) struct Labelled<'a, V: Real = f32> {
    /// Row-major, in frame units: f32 (what the ranking reads), or f64 (the values of the
    /// caller's float64 rows in the frame, so that their sums keep their precision).
    pub data: &'a [V],
    /// Indexed like `data`'s rows.
    pub labels: &'a [u32],
    pub dist: &'a [f64],
    /// The row of `data`'s first point in the whole.
    pub first: u64,
}

/// 2^−e as `libm::scalbn(1.0, -e)` gives it, with no call where it is a normal number (the
/// sums take it for every point).
#[inline(always)]
fn inverse_power_of_two(e: i32) -> f64 {
    if (-1023..=1022).contains(&e) {
        f64::from_bits(((1023 - e) as u64) << 52)
    } else {
        libm::scalbn(1.0, -e)
    }
}

/// Fraction bits of every fixed-point sum.
pub(crate) const FRACTION_BITS: i32 = 64;

/// `round(v · 2⁶⁴)` for |v| ≤ 2¹⁸, without a software float-to-i128 conversion: v·2³² splits
/// into an integer and a remainder, each exact in f64, each rounded by the 1.5·2⁵² trick.
#[inline(always)]
pub(crate) fn fixed(v: f64) -> i128 {
    let (hi, lo) = fixed_halves(v);
    (i128::from(hi as i64) << 32) + i128::from(lo as i64)
}

/// The two integer-valued halves of [`fixed`]: `fixed(v) = hi · 2³² + lo`, |hi| ≤ 2³² |v|
/// and |lo| ≤ 2³¹.
#[inline(always)]
fn fixed_halves(v: f64) -> (f64, f64) {
    const ROUND: f64 = 6_755_399_441_055_744.0;
    const HALF: f64 = 4_294_967_296.0;
    let a = v * HALF;
    let hi = (a + ROUND) - ROUND;
    let lo = ((a - hi) * HALF + ROUND) - ROUND;
    (hi, lo)
}

/// Points summed in f64 halves before they are carried into the i128 sums: with |v| ≤ 1
/// (frame values; points with any coordinate beyond go to the i128 sums directly) every
/// partial sum stays below 2⁵⁰, so f64 adds integers exactly. (So it does with |v| ≤ 2: a
/// float64 row inside the frame in f32 may lie 2⁻²⁴ beyond it in f64.)
const HALVES_BLOCK: usize = 1 << 18;

/// Coordinate sums of unweighted points as the two integer-valued f64 halves of
/// [`fixed`], `k x dim` each, over at most [`HALVES_BLOCK`] points: the f64 loop is one a
/// compiler vectorises (with AVX2, four lanes; no FMA), where i128 additions are scalar.
#[derive(Default)]
pub(crate) struct Halves {
    hi: Vec<f64>,
    lo: Vec<f64>,
    /// Points added since the last carry.
    points: usize,
}

impl Halves {
    /// Ready for sums of `len` values: kept where they have that length and were carried
    /// (a carry leaves zeros), else empty (allocated at the first addition).
    pub(crate) fn ready(&mut self, len: usize) {
        if self.hi.len() != len || self.points != 0 {
            *self = Halves::default();
        }
    }
}

/// A fixed-point sum back in f64 (one rounding), times 2^e.
#[inline]
pub(crate) fn unfixed(v: i128, e: i32) -> f64 {
    libm::scalbn(v as f64, e - FRACTION_BITS)
}

/// A cell's extreme point: its squared distance and its row in the whole data.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Extreme {
    pub dist: f64,
    pub row: u64,
}

impl Extreme {
    const NONE: Extreme = Extreme {
        dist: f64::NAN,
        row: u64::MAX,
    };

    fn is_none(&self) -> bool {
        self.row == u64::MAX
    }

    /// Farthest: the larger distance, the lower row on ties.
    #[inline(always)]
    fn farther(&self, dist: f64, row: u64) -> bool {
        self.is_none() || dist > self.dist || (dist == self.dist && row < self.row)
    }

    /// Nearest: the smaller distance, the higher row on ties.
    #[inline(always)]
    fn nearer(&self, dist: f64, row: u64) -> bool {
        self.is_none() || dist < self.dist || (dist == self.dist && row > self.row)
    }
}

/// The exponent s with 2^s above every squared distance between points of the frame (|x| ≤ 1)
/// and `centroids` (frame units): weighted squared errors times 2^−s lie in [0, 1].
pub(crate) fn error_exponent(centroids: &[f64], dim: usize) -> i32 {
    let b = centroids.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let (_, e) = libm::frexp(dim as f64 * (1.0 + b) * (1.0 + b));
    e
}

/// Counts, weights, coordinate sums and squared errors of each cell in fixed point, with
/// each cell's farthest and nearest points (for the empty-cell policy).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CellSums {
    pub dim: usize,
    pub counts: Vec<u64>,
    /// Σ w, weights in the frame's unit.
    pub mass: Vec<i128>,
    /// Σ w·x, `k x dim`.
    pub sums: Vec<i128>,
    /// Σ w·‖x − c‖² · 2^−error_exp.
    pub errors: Vec<i128>,
    pub error_exp: i32,
    pub far: Vec<Extreme>,
    pub near: Vec<Extreme>,
    /// The far and near points themselves, `k x dim` (filled by [`CellSums::fill_points`]).
    pub far_points: Vec<f32>,
    pub near_points: Vec<f32>,
}

impl Default for CellSums {
    /// No cells (what [`CellSums::reset`] sizes).
    fn default() -> Self {
        CellSums::zeros(0, 0, 0)
    }
}

/// [`CellSums::add_unweighted_of`] compiled with the target features `$features`: the
/// same integer-valued f64 operations, wider, so the same sums.
macro_rules! halves_compiled_for {
    ($name:ident, $features:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<V: Real>(
            &mut self,
            halves: &mut Halves,
            pass: &Labelled<'_, V>,
            rows: std::ops::Range<usize>,
            inside: bool,
        ) {
            self.add_unweighted_of(halves, pass, rows, inside);
        }
    };
}

impl CellSums {
    pub(crate) fn zeros(k: usize, dim: usize, error_exp: i32) -> Self {
        CellSums {
            dim,
            counts: vec![0; k],
            mass: vec![0; k],
            sums: vec![0; k * dim],
            errors: vec![0; k],
            error_exp,
            far: vec![Extreme::NONE; k],
            near: vec![Extreme::NONE; k],
            far_points: Vec::new(),
            near_points: Vec::new(),
        }
    }

    /// [`CellSums::zeros`] in place, keeping the memory: a fit's passes reuse their sums, so
    /// that no pass faults in fresh pages for them (k x d i128 a task).
    pub(crate) fn reset(&mut self, k: usize, dim: usize, error_exp: i32) {
        fn zeroed<V: Copy>(v: &mut Vec<V>, len: usize, zero: V) {
            v.clear();
            v.resize(len, zero);
        }
        self.dim = dim;
        self.error_exp = error_exp;
        zeroed(&mut self.counts, k, 0);
        zeroed(&mut self.mass, k, 0);
        zeroed(&mut self.sums, k * dim, 0);
        zeroed(&mut self.errors, k, 0);
        zeroed(&mut self.far, k, Extreme::NONE);
        zeroed(&mut self.near, k, Extreme::NONE);
        self.far_points.clear();
        self.near_points.clear();
    }

    pub(crate) fn k(&self) -> usize {
        self.counts.len()
    }

    /// Whether sums decoded from bytes are ones points of a frame can produce (|x| ≤ 1,
    /// weights ≤ 1, errors ≤ 1 after scaling): lengths consistent, far and near points
    /// filled, and totals that no merge of them can overflow.
    pub(crate) fn well_formed(&self) -> bool {
        let (k, dim) = (self.k(), self.dim);
        let total: u128 = self.counts.iter().map(|&c| u128::from(c)).sum();
        // A margin of 2x over the exact bounds, for the roundings of the fixed point.
        let bound = |c: u64| i128::from(c) << (FRACTION_BITS + 1);
        let extreme = |e: &Extreme| e.row == u64::MAX || (e.dist.is_finite() && e.dist >= 0.0);
        dim >= 1
            && k >= 1
            && total < 1 << 60
            && self.error_exp.abs() < 4096
            && [
                self.mass.len(),
                self.errors.len(),
                self.far.len(),
                self.near.len(),
            ] == [k; 4]
            && Some(self.sums.len()) == k.checked_mul(dim)
            && self.far_points.len() == self.sums.len()
            && self.near_points.len() == self.sums.len()
            && self
                .far_points
                .iter()
                .chain(&self.near_points)
                .all(|v| v.abs() <= 1.0)
            && self.far.iter().chain(&self.near).all(extreme)
            && (0..k).all(|j| {
                let b = bound(self.counts[j]);
                (0..=b).contains(&self.mass[j])
                    && (0..=b).contains(&self.errors[j])
                    && self.sums[j * dim..(j + 1) * dim]
                        .iter()
                        .all(|s| s.abs() <= b)
            })
    }

    /// Adds point `x` (frame units) of weight `w` (the frame's unit, at most 1) in cell `l`
    /// at squared distance `dist`; `row` is its index in the whole data.
    #[inline(always)]
    pub(crate) fn add<V: Real>(&mut self, l: usize, x: &[V], w: Option<f64>, dist: f64, row: u64) {
        self.add_scalars(l, w, dist, row);
        let dim = self.dim;
        let s = &mut self.sums[l * dim..(l + 1) * dim];
        match w {
            None => {
                for (acc, &v) in s.iter_mut().zip(x) {
                    *acc += fixed(v.to_f64());
                }
            }
            Some(w) => {
                for (acc, &v) in s.iter_mut().zip(x) {
                    *acc += fixed(w * v.to_f64());
                }
            }
        }
    }

    /// What [`CellSums::add`] adds besides the coordinates: the count, the mass, the error
    /// and the extreme points.
    #[inline(always)]
    fn add_scalars(&mut self, l: usize, w: Option<f64>, dist: f64, row: u64) {
        self.counts[l] += 1;
        let scale = inverse_power_of_two(self.error_exp);
        match w {
            None => {
                self.mass[l] += 1i128 << FRACTION_BITS;
                self.errors[l] += fixed(dist * scale);
            }
            Some(w) => {
                self.mass[l] += fixed(w);
                self.errors[l] += fixed(w * dist * scale);
            }
        }
        if self.far[l].farther(dist, row) {
            self.far[l] = Extreme { dist, row };
        }
        if self.near[l].nearer(dist, row) {
            self.near[l] = Extreme { dist, row };
        }
    }

    /// Adds the unweighted points `rows` of a labelled pass. The same sums as [`CellSums::add`]
    /// point by point, to the bit (see [`Halves`]).
    #[cfg(test)]
    pub(crate) fn add_unweighted<V: Real>(
        &mut self,
        pass: &Labelled<'_, V>,
        rows: std::ops::Range<usize>,
    ) {
        let mut halves = Halves::default();
        self.add_unweighted_halves(&mut halves, pass, rows, false);
        self.carry(&mut halves);
    }

    /// [`CellSums::add_unweighted`] into `halves`, carried into the sums only when they are
    /// full: a pass that adds a few hundred points at a time carries once per
    /// [`HALVES_BLOCK`] points, not once per call. Call [`CellSums::carry`] at the end.
    /// `inside`: the caller knows every coordinate of these points lies in [−1, 1] (or, for
    /// float64 values, rounds to an f32 there: 2⁻²⁴ beyond at most), so no point is tested.
    pub(crate) fn add_unweighted_halves<V: Real>(
        &mut self,
        halves: &mut Halves,
        pass: &Labelled<'_, V>,
        rows: std::ops::Range<usize>,
        inside: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the feature it is compiled for was just detected.
                unsafe { self.add_unweighted_avx512(halves, pass, rows, inside) };
                return;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the feature it is compiled for was just detected.
                unsafe { self.add_unweighted_avx2(halves, pass, rows, inside) };
                return;
            }
        }
        self.add_unweighted_of(halves, pass, rows, inside);
    }

    halves_compiled_for!(add_unweighted_avx512, "avx512f");
    halves_compiled_for!(add_unweighted_avx2, "avx2");

    #[inline(always)]
    fn add_unweighted_of<V: Real>(
        &mut self,
        halves: &mut Halves,
        pass: &Labelled<'_, V>,
        rows: std::ops::Range<usize>,
        inside: bool,
    ) {
        let Labelled {
            data,
            labels,
            dist,
            first,
        } = *pass;
        let dim = self.dim;
        if halves.hi.is_empty() {
            halves.hi = vec![0.0; self.sums.len()];
            halves.lo = vec![0.0; self.sums.len()];
        }
        debug_assert_eq!(halves.hi.len(), self.sums.len(), "halves of other sums");
        let mut start = rows.start;
        while start < rows.end {
            if halves.points == HALVES_BLOCK {
                self.carry(halves);
            }
            let end = (start + HALVES_BLOCK - halves.points).min(rows.end);
            let (hi, lo) = (&mut halves.hi, &mut halves.lo);
            for i in start..end {
                let l = labels[i] as usize;
                let x = &data[i * dim..(i + 1) * dim];
                if !inside && !x.iter().all(|v| v.to_f64().abs() <= 1.0) {
                    // Outside the frame (statistics of data the frame was not built from):
                    // the i128 sums directly, which hold any value.
                    self.add(l, x, None, dist[i], first + i as u64);
                    continue;
                }
                self.add_scalars(l, None, dist[i], first + i as u64);
                let (h, o) = (
                    &mut hi[l * dim..(l + 1) * dim],
                    &mut lo[l * dim..(l + 1) * dim],
                );
                for ((h, o), &v) in h.iter_mut().zip(o).zip(x) {
                    let (a, b) = fixed_halves(v.to_f64());
                    *h += a;
                    *o += b;
                }
            }
            halves.points += end - start;
            start = end;
        }
    }

    /// Carries the halves' sums into the i128 sums and empties them.
    pub(crate) fn carry(&mut self, halves: &mut Halves) {
        if halves.points == 0 {
            return;
        }
        for ((s, h), o) in self.sums.iter_mut().zip(&mut halves.hi).zip(&mut halves.lo) {
            *s += (i128::from(*h as i64) << 32) + i128::from(*o as i64);
            (*h, *o) = (0.0, 0.0);
        }
        halves.points = 0;
    }

    /// Adds the statistics of other points against the same centroids.
    pub(crate) fn merge(&mut self, other: &CellSums) -> Result<()> {
        if other.dim != self.dim || other.k() != self.k() || other.error_exp != self.error_exp {
            return Err(Error::InvalidArgument(
                "statistics of different centroids cannot be merged".into(),
            ));
        }
        let filled = !self.far_points.is_empty() && !other.far_points.is_empty();
        let dim = self.dim;
        for j in 0..self.k() {
            self.counts[j] += other.counts[j];
            self.mass[j] += other.mass[j];
            self.errors[j] += other.errors[j];
            for t in 0..dim {
                self.sums[j * dim + t] += other.sums[j * dim + t];
            }
            let (f, n) = (other.far[j], other.near[j]);
            if !f.is_none() && self.far[j].farther(f.dist, f.row) {
                self.far[j] = f;
                if filled {
                    self.far_points[j * dim..(j + 1) * dim]
                        .copy_from_slice(&other.far_points[j * dim..(j + 1) * dim]);
                }
            }
            if !n.is_none() && self.near[j].nearer(n.dist, n.row) {
                self.near[j] = n;
                if filled {
                    self.near_points[j * dim..(j + 1) * dim]
                        .copy_from_slice(&other.near_points[j * dim..(j + 1) * dim]);
                }
            }
        }
        Ok(())
    }

    /// Copies each cell's far and near points out of `data` (frame units), whose first row is
    /// row `first` of the whole.
    pub(crate) fn fill_points<V: Real>(&mut self, data: &[V], first: u64) {
        let dim = self.dim;
        self.fill_points_with(|row, out| {
            let i = (row - first) as usize;
            for (o, v) in out.iter_mut().zip(&data[i * dim..(i + 1) * dim]) {
                *o = v.to_f64() as f32;
            }
        });
    }

    /// Fills each cell's far and near points, `point(row, out)` writing row `row` of the
    /// whole (frame units) into `out`.
    pub(crate) fn fill_points_with(&mut self, mut point: impl FnMut(u64, &mut [f32])) {
        let dim = self.dim;
        let k = self.k();
        self.far_points = vec![0.0; k * dim];
        self.near_points = vec![0.0; k * dim];
        for j in 0..k {
            if !self.far[j].is_none() {
                point(
                    self.far[j].row,
                    &mut self.far_points[j * dim..(j + 1) * dim],
                );
                point(
                    self.near[j].row,
                    &mut self.near_points[j * dim..(j + 1) * dim],
                );
            }
        }
    }

    /// The cells as the driver reports them: weights and errors divided by `weight_unit`
    /// (the power of two the weights were multiplied by), errors in squared frame units.
    pub(crate) fn cell_stats(&self, weight_unit: f64) -> CellStats {
        CellStats {
            counts: self.counts.clone(),
            mass: self
                .mass
                .iter()
                .map(|&m| unfixed(m, 0) / weight_unit)
                .collect(),
            sse: self
                .errors
                .iter()
                .map(|&e| unfixed(e, self.error_exp) / weight_unit)
                .collect(),
        }
    }

    /// Σ w‖x − c‖² over every cell, summed exactly and rounded once (squared frame units,
    /// weights in the frame's unit).
    pub(crate) fn total_error(&self) -> f64 {
        unfixed(self.errors.iter().sum(), self.error_exp)
    }

    /// The split policy's view of the cells (points filled).
    pub(crate) fn extremes(&self) -> Extremes {
        let dim = self.dim;
        Extremes {
            splittable: (0..self.k())
                .map(|j| {
                    !self.far[j].is_none()
                        && self.far_points[j * dim..(j + 1) * dim]
                            != self.near_points[j * dim..(j + 1) * dim]
                })
                .collect(),
            far: self.far_points.iter().map(|&v| f64::from(v)).collect(),
        }
    }

    /// The cells' means (frame units); cells without weight keep their `old` centroid. Then
    /// the shared empty-cell policy. Returns the centroids and the number of splits.
    pub(crate) fn means_and_splits(&self, old: &[f64]) -> (Vec<f64>, usize) {
        let dim = self.dim;
        let mut c = old.to_vec();
        for (j, &m) in self.mass.iter().enumerate() {
            if m > 0 {
                let m = m as f64;
                for t in 0..dim {
                    c[j * dim + t] = self.sums[j * dim + t] as f64 / m;
                }
            }
        }
        let any_empty = self.mass.iter().any(|&m| m <= 0);
        let splits = if any_empty {
            let stats = CellStats {
                counts: self.counts.clone(),
                mass: self.mass.iter().map(|&m| m as f64).collect(),
                sse: Vec::new(),
            };
            super::empty_cells::split_empty_cells(&mut c, dim, &stats, &self.extremes())
        } else {
            0
        };
        (c, splits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_powers_of_two_are_scalbns() {
        for e in -1100..1100 {
            assert_eq!(inverse_power_of_two(e), libm::scalbn(1.0, -e), "e = {e}");
        }
    }

    /// The halves' path gives the sums of adding point by point, to the bit: over more than
    /// one block of halves, with ±1, tiny values, empty cells, and values outside the frame
    /// (2¹⁷, whose halves summed in f64 would pass 2⁵³ and drop the 10⁻⁶ beside them).
    #[test]
    fn unweighted_halves_equal_point_by_point_sums() {
        let (dim, k) = (3usize, 5usize);
        let n = HALVES_BLOCK + 1001;
        let data: Vec<f32> = (0..n * dim)
            .map(|i| match i % 97 {
                0 => 1.0,
                1 => -1.0,
                2 => 1e-30,
                3 => 3.5,
                4 => 131_072.0,
                5 => 1e-6,
                _ => ((i * 7919) % 2001) as f32 / 1000.0 - 1.0,
            })
            .collect();
        let labels: Vec<u32> = (0..n).map(|i| ((i * 31) % (k - 1)) as u32).collect();
        let dist: Vec<f64> = (0..n).map(|i| (i % 13) as f64 * 0.01).collect();
        let mut one = CellSums::zeros(k, dim, 2);
        for i in 0..n {
            one.add(
                labels[i] as usize,
                &data[i * dim..(i + 1) * dim],
                None,
                dist[i],
                7 + i as u64,
            );
        }
        let mut halves = CellSums::zeros(k, dim, 2);
        let pass = Labelled {
            data: &data,
            labels: &labels,
            dist: &dist,
            first: 7,
        };
        halves.add_unweighted(&pass, 0..n);
        // As text: an empty cell's extremes hold NaN, which equals nothing.
        assert_eq!(format!("{halves:?}"), format!("{one:?}"));
        assert_eq!(halves.counts[k - 1], 0);
    }

    #[test]
    fn fixed_rounds_to_the_nearest_multiple() {
        for v in [
            0.0,
            1.0,
            -1.0,
            0.5,
            1e-30,
            -3.25e-10,
            0.123_456_789_012_345_68,
        ] {
            let want = (v * 2f64.powi(64)).round();
            // Exact where v·2⁶⁴ is an integer f64 holds; otherwise within one unit.
            let got = fixed(v) as f64;
            assert!((got - want).abs() <= 1.0, "{v}: {got} vs {want}");
        }
        assert_eq!(fixed(1.0), 1i128 << 64);
        assert_eq!(fixed(-0.75), -(3i128 << 62));
        assert_eq!(fixed(2f64.powi(-64)), 1);
        assert_eq!(fixed(2f64.powi(-66)), 0);
    }
}
