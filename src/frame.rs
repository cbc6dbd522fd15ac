//! The frame a computation runs in: points centred on an origin and scaled by powers of two,
//! in f64, before anything is rounded to the f32 the kernels use.
//!
//! Why: the kernels compare ‖c‖² − 2x·c in f32, which cancels catastrophically when the data
//! sit far from the origin (data shifted by 10⁴ lose every digit the comparison needs), and
//! squares of values around 10¹⁹ or 10⁻¹⁹ overflow or underflow f32. Centring on the mean
//! (scikit-learn does the same) and scaling by a power of two, which is exact, bring every
//! device value into [−1, 1]; results are mapped back exactly.
//!
//! A value x becomes `scalbn(scalbn(x, e_p) − o, e_q)`: `e_p` brings the largest magnitude of
//! the data near 1 (so that the origin `o` and the deviations never overflow, whatever the
//! data's range), `e_q` brings the largest deviation from the origin near 1.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::exact_sum::{Buckets, ExactSum};
use crate::f32_columns::F32Columns;
use crate::real::{Real, as_f32};
use crate::weights::Weights;

/// Rows per parallel task of [`Extent::of`].
const ROWS_PER_TASK: usize = 4096;

/// The frame of a computation: see the module documentation. Built from an [`Extent`], so
/// that every part of a fit split over machines can agree on it exactly.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Frame {
    /// The origin, in units scaled by 2^e_p.
    origin: Vec<f64>,
    e_p: i32,
    e_q: i32,
    /// Weights are multiplied by 2^e_w, which brings the largest into [0.5, 1).
    e_w: i32,
}

/// What a frame is made from, summarised so that summaries of parts merge exactly into the
/// summary of the whole: the number of rows, each coordinate's exact (weighted) sum, the exact
/// total weight, each coordinate's least and greatest value and the largest weight. The
/// frame's origin is the rows' (weighted) mean, from the exact sums rounded once; its unit
/// the largest deviation from it; merging in any order, however the rows were
/// split, gives the same frame to the bit.
///
/// ```
/// use lloyd::Extent;
/// let data = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let whole = Extent::of(&data, 2)?;
/// let mut parts = Extent::of(&data[4..], 2)?;
/// parts.merge(&Extent::of(&data[..4], 2)?)?;
/// assert_eq!(parts.frame(), whole.frame());
/// # Ok::<(), lloyd::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Extent {
    dim: usize,
    rows: u64,
    /// Whether the rows came with weights (parts of one kind only merge with their kind).
    weighted: bool,
    /// Σ w·x per coordinate (w = 1 without weights) and Σ w, exactly.
    sums: Vec<ExactSum>,
    mass: ExactSum,
    lo: Vec<f64>,
    hi: Vec<f64>,
    /// The largest weight seen (0 without weights).
    max_weight: f64,
}

impl Extent {
    /// The extent of `data` (row-major, `dim` columns, f32 or f64), which must be finite.
    pub fn of<T: Real>(data: &[T], dim: usize) -> Result<Self> {
        crate::data::check_points(data, dim)?;
        Ok(Self::of_checked(data, dim, None))
    }

    /// [`Extent::of`] for weighted rows (weights f32 or f64, checked here): the frame also
    /// fixes the power of two the weights are scaled by.
    ///
    /// ```
    /// use lloyd::{Extent, Weights};
    /// let data = [1.0f64, 2.0, 3.0, 4.0];
    /// let w = [0.1f64, 0.7];
    /// let extent = Extent::of_weighted(&data, 2, Some(Weights::from(&w)))?;
    /// assert_eq!(extent.total_weight(), 0.1 + 0.7);
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn of_weighted<T: Real>(
        data: &[T],
        dim: usize,
        weights: Option<Weights<'_>>,
    ) -> Result<Self> {
        let n = crate::data::check_points(data, dim)?;
        if let Some(w) = weights {
            crate::data::check_weights(w, n)?;
        }
        Ok(Self::of_checked(data, dim, weights))
    }

    fn empty(dim: usize, weighted: bool) -> Self {
        Extent {
            weighted,
            mass: ExactSum::default(),
            max_weight: 0.0,
            dim,
            rows: 0,
            sums: vec![ExactSum::default(); dim],
            lo: vec![f64::INFINITY; dim],
            hi: vec![f64::NEG_INFINITY; dim],
        }
    }

    /// [`Extent::of_weighted`] for data and weights already checked.
    pub(crate) fn of_checked<T: Real>(
        data: &[T],
        dim: usize,
        weights: Option<Weights<'_>>,
    ) -> Self {
        let weighted = weights.is_some();
        data.par_chunks(dim * ROWS_PER_TASK)
            .enumerate()
            .map(|(task, rows)| {
                let mut e = Self::empty(dim, weighted);
                let first = task * ROWS_PER_TASK;
                let n = rows.len() / dim;
                match weights {
                    Some(w) => {
                        for (row, w) in rows.chunks_exact(dim).zip(w.slice(first..first + n).iter())
                        {
                            for (j, x) in row.iter().enumerate() {
                                let x = x.to_f64();
                                e.sums[j].add_weighted(w, x);
                                e.lo[j] = e.lo[j].min(x);
                                e.hi[j] = e.hi[j].max(x);
                            }
                            e.mass.add(w);
                            e.max_weight = e.max_weight.max(w);
                        }
                    }
                    None => {
                        match as_f32(rows) {
                            Some(rows) => e.sum_f32_rows(rows),
                            None => e.sum_rows(rows),
                        }
                        // A row count is exact in f64.
                        e.mass.add(n as f64);
                    }
                }
                e.rows = n as u64;
                e
            })
            .reduce(
                || Self::empty(dim, weighted),
                |mut a, b| {
                    a.absorb(&b);
                    a
                },
            )
    }

    /// The unweighted sums and bounds of f32 rows: the same exact sums as
    /// [`Extent::sum_rows`], at a few vector operations a value.
    fn sum_f32_rows(&mut self, rows: &[f32]) {
        let mut columns = F32Columns::new(self.dim);
        columns.add_rows(rows, &mut self.sums);
        columns.finish(&mut self.sums);
        for j in 0..self.dim {
            self.lo[j] = self.lo[j].min(f64::from(columns.lo[j]));
            self.hi[j] = self.hi[j].max(f64::from(columns.hi[j]));
        }
    }

    /// The unweighted sums and bounds of rows, each value into its column's buckets.
    fn sum_rows<T: Real>(&mut self, rows: &[T]) {
        let dim = self.dim;
        let mut buckets = vec![Buckets::default(); dim];
        for row in rows.chunks_exact(dim) {
            for (j, x) in row.iter().enumerate() {
                let x = x.to_f64();
                buckets[j].add(x);
                self.lo[j] = self.lo[j].min(x);
                self.hi[j] = self.hi[j].max(x);
            }
        }
        for (b, sum) in buckets.iter_mut().zip(&mut self.sums) {
            b.drain_into(sum);
        }
    }

    /// Adds the extent of other rows of the same dimension.
    pub fn merge(&mut self, other: &Extent) -> Result<()> {
        if other.dim != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                got: other.dim,
            });
        }
        if other.weighted != self.weighted {
            return Err(Error::InvalidArgument(
                "an extent of weighted rows merges only with extents of weighted rows".into(),
            ));
        }
        self.absorb(other);
        Ok(())
    }

    fn absorb(&mut self, other: &Extent) {
        self.rows += other.rows;
        self.mass.merge(&other.mass);
        self.max_weight = self.max_weight.max(other.max_weight);
        for j in 0..self.dim {
            self.sums[j].merge(&other.sums[j]);
            self.lo[j] = self.lo[j].min(other.lo[j]);
            self.hi[j] = self.hi[j].max(other.hi[j]);
        }
    }

    /// Widens the bounds to hold `points` (starting centroids, say) without moving the mean.
    pub fn including<T: Real>(self, points: &[T]) -> Self {
        let (lo, hi) = column_bounds(points, self.dim);
        self.including_bounds(&lo, &hi)
    }

    /// Widens the bounds to each coordinate's least and greatest value in `lo` and `hi`
    /// (from [`column_bounds`]), without moving the mean.
    pub(crate) fn including_bounds(mut self, lo: &[f64], hi: &[f64]) -> Self {
        for j in 0..self.dim {
            self.lo[j] = self.lo[j].min(lo[j]);
            self.hi[j] = self.hi[j].max(hi[j]);
        }
        self
    }

    /// Rows summarised.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Whether an extent decoded from bytes is one rows can produce.
    pub(crate) fn well_formed(&self) -> bool {
        let dim = self.dim;
        dim >= 1
            && [self.sums.len(), self.lo.len(), self.hi.len()] == [dim; 3]
            && self.sums.iter().all(ExactSum::well_formed)
            && self.mass.well_formed()
            && self.lo.iter().chain(&self.hi).all(|v| !v.is_nan())
            && self.max_weight.is_finite()
            && self.max_weight >= 0.0
            && (self.weighted || self.max_weight == 0.0)
    }

    /// The whole data's total weight (its number of rows without weights): the exact sum,
    /// rounded once.
    pub fn total_weight(&self) -> f64 {
        match self.weighted {
            true => self.mass.value(),
            false => self.rows as f64,
        }
    }

    /// The bytes of this extent, for another process to [`Extent::from_bytes`] and merge.
    ///
    /// ```
    /// let e = lloyd::Extent::of(&[1.0f32, 2.0, 3.0, 4.0], 2)?;
    /// assert_eq!(lloyd::Extent::from_bytes(&e.to_bytes())?, e);
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::wire::to_bytes(self)
    }

    /// The extent `bytes` hold ([`Extent::to_bytes`]); anything else is an
    /// [`Error::InvalidArgument`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        crate::wire::from_bytes(bytes)
    }

    /// The frame: origin at the rows' mean, unit the largest deviation of any row (or point
    /// included) from it.
    pub fn frame(&self) -> Frame {
        let bound = self
            .lo
            .iter()
            .chain(&self.hi)
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let e_p = exponent_to_unit(bound);
        let origin: Vec<f64> = self
            .sums
            .iter()
            .map(|s| match self.mass.value() {
                m if m > 0.0 => s.scaled(e_p) / m,
                _ => 0.0,
            })
            .collect();
        let dev = (0..self.dim)
            .filter(|&j| self.lo[j] <= self.hi[j])
            .map(|j| {
                let lo = (libm::scalbn(self.lo[j], e_p) - origin[j]).abs();
                let hi = (libm::scalbn(self.hi[j], e_p) - origin[j]).abs();
                lo.max(hi)
            })
            .fold(0.0f64, f64::max);
        Frame {
            e_w: exponent_to_unit(self.max_weight),
            ..Frame::with_origin(origin, e_p, dev)
        }
    }
}

/// Each coordinate's least and greatest value over the rows of `data`.
pub(crate) fn column_bounds<T: Real>(data: &[T], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let empty = || (vec![f64::INFINITY; dim], vec![f64::NEG_INFINITY; dim]);
    data.par_chunks(dim * ROWS_PER_TASK)
        .map(|rows| {
            let (mut lo, mut hi) = empty();
            for row in rows.chunks_exact(dim) {
                for (j, x) in row.iter().enumerate() {
                    lo[j] = lo[j].min(x.to_f64());
                    hi[j] = hi[j].max(x.to_f64());
                }
            }
            (lo, hi)
        })
        .reduce(empty, |(mut lo, mut hi), (l, h)| {
            for j in 0..dim {
                lo[j] = lo[j].min(l[j]);
                hi[j] = hi[j].max(h[j]);
            }
            (lo, hi)
        })
}

/// 2^e when f64 holds it as a normal number.
fn normal_power(e: i32) -> Option<f64> {
    (-1022..=1023)
        .contains(&e)
        .then(|| f64::from_bits(((e + 1023) as u64) << 52))
}

/// The exponent e such that `m · 2^e` lies in [0.5, 1) (0 for m = 0).
fn exponent_to_unit(m: f64) -> i32 {
    if m == 0.0 || !m.is_finite() {
        return 0;
    }
    // m = f · 2^e with f in [0.5, 1), subnormals included.
    let (_, e) = libm::frexp(m);
    -e
}

/// [`Frame::columns_to_device_of`] compiled with the target features `$features`, as the
/// method `$name`.
macro_rules! conversion_compiled_for {
    ($name:ident, $features:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<T: Real, O>(
            &self,
            rows: &[T],
            row_len: usize,
            first: usize,
            out: &mut [O],
            round: &impl Fn(f64) -> O,
        ) {
            self.columns_to_device_of(rows, row_len, first, out, round)
        }
    };
}

impl Frame {
    /// The frame that changes nothing: the origin at 0, no scaling.
    pub(crate) fn identity(dim: usize) -> Self {
        Frame {
            origin: vec![0.0; dim],
            e_p: 0,
            e_q: 0,
            e_w: 0,
        }
    }

    /// The frame of `data` (row-major, `dim` columns): origin at the mean, unit the
    /// largest deviation of the data and of `extra` points (initial centroids, say) from it.
    /// `data` must be finite and non-empty.
    pub(crate) fn of_data<T: Real, U: Real>(
        data: &[T],
        dim: usize,
        weights: Option<Weights<'_>>,
        extra: &[U],
    ) -> Self {
        Extent::of_checked(data, dim, weights)
            .including(extra)
            .frame()
    }

    /// The frame of a codebook that will encode `data`: origin at the centroids' mean, unit
    /// the largest deviation of centroids and data from it (so that neither overflows).
    pub(crate) fn of_codebook<T: Real, U: Real>(centroids: &[T], dim: usize, data: &[U]) -> Self {
        // The data only widen the bounds: their sums are not needed.
        Extent::of_checked(centroids, dim, None)
            .including(data)
            .frame()
    }

    /// The dimension of the points.
    pub fn dim(&self) -> usize {
        self.origin.len()
    }

    /// Whether a frame decoded from bytes is one an extent can produce.
    pub(crate) fn well_formed(&self) -> bool {
        !self.origin.is_empty()
            && self.origin.iter().all(|v| v.is_finite())
            && [self.e_p, self.e_q, self.e_w]
                .iter()
                .all(|e| e.abs() < 4096)
    }

    /// The bytes of this frame, for another process to [`Frame::from_bytes`].
    ///
    /// ```
    /// let f = lloyd::Extent::of(&[1.0f32, 2.0, 3.0, 4.0], 2)?.frame();
    /// assert_eq!(lloyd::Frame::from_bytes(&f.to_bytes())?, f);
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::wire::to_bytes(self)
    }

    /// The frame `bytes` hold ([`Frame::to_bytes`]); anything else is an
    /// [`Error::InvalidArgument`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        crate::wire::from_bytes(bytes)
    }

    /// The caller's weights in this frame's unit (at most 1 for the weights it was built
    /// from), exact.
    pub(crate) fn weights_to_device(&self, w: Weights<'_>) -> Vec<f64> {
        let unit = self.weight_unit();
        w.iter().map(|v| v * unit).collect()
    }

    /// The factor (a power of two) weights are multiplied by in this frame.
    pub(crate) fn weight_unit(&self) -> f64 {
        libm::scalbn(1.0, self.e_w)
    }

    fn with_origin(origin: Vec<f64>, e_p: i32, dev: f64) -> Self {
        Frame {
            origin,
            e_p,
            e_q: exponent_to_unit(dev),
            e_w: 0,
        }
    }

    /// A caller's value in the frame's units before centring: scaled by 2^e_p, exactly (but
    /// for values more than 2^1000 below the data's largest). Distances between caller
    /// values scaled alike are the caller's, scaled by 2^2e_p, with no centring's rounding.
    pub(crate) fn to_scaled(&self, v: f64) -> f64 {
        libm::scalbn(v, self.e_p)
    }

    /// Coordinate `j` of a point in device units.
    #[inline(always)]
    fn forward(&self, x: f64, j: usize) -> f64 {
        libm::scalbn(libm::scalbn(x, self.e_p) - self.origin[j], self.e_q)
    }

    /// Row-major points in device units, rounded once to f32.
    pub(crate) fn to_device_f32<T: Real>(&self, data: &[T]) -> Vec<f32> {
        self.to_device(data, |v| v as f32)
    }

    /// Row-major points in device units, in f64.
    pub(crate) fn to_device_f64<T: Real>(&self, data: &[T]) -> Vec<f64> {
        self.to_device(data, |v| v)
    }

    /// Row-major points in device units, each rounded once by `round` from the exact f64
    /// (on every thread).
    fn to_device<T: Real, O: bytemuck::Zeroable + Copy + Send>(
        &self,
        data: &[T],
        round: impl Fn(f64) -> O + Sync,
    ) -> Vec<O> {
        let dim = self.origin.len();
        let mut out = crate::huge_pages::zeroed(data.len());
        out.par_chunks_mut(dim * 1024)
            .zip(data.par_chunks(dim * 1024))
            .for_each(|(o, x)| self.columns_to_device(x, dim, 0, o, &round));
        out
    }

    /// Columns `first..first + dim` of the rows of `rows` (`row_len` values each) in device
    /// units, rounded once to f32, into `out`: the values [`Frame::to_device_f32`] gives for
    /// those columns alone (a product quantizer's sub-space), without copying them out first.
    pub(crate) fn columns_to_device_f32<T: Real>(
        &self,
        rows: &[T],
        row_len: usize,
        first: usize,
        out: &mut [f32],
    ) {
        self.columns_to_device(rows, row_len, first, out, &|v| v as f32);
    }

    /// [`Frame::columns_to_device_f32`] in f64: the values [`Frame::to_device_f64`] gives.
    pub(crate) fn columns_to_device_f64<T: Real>(
        &self,
        rows: &[T],
        row_len: usize,
        first: usize,
        out: &mut [f64],
    ) {
        self.columns_to_device(rows, row_len, first, out, &|v| v);
    }

    /// [`Frame::columns_to_device_of`] compiled for the widest vectors this CPU has: the
    /// generic build takes two values at a time, and the conversion was a tenth of a PQ
    /// encoding's kernel time and of a Dask block's. Each value goes through the same
    /// operations (no fused ones), so the same bits.
    fn columns_to_device<T: Real, O>(
        &self,
        rows: &[T],
        row_len: usize,
        first: usize,
        out: &mut [O],
        round: &impl Fn(f64) -> O,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                // SAFETY: the feature it is compiled for was just detected.
                return unsafe { self.columns_to_device_avx512(rows, row_len, first, out, round) };
            }
            if is_x86_feature_detected!("avx2") {
                // SAFETY: the feature it is compiled for was just detected.
                return unsafe { self.columns_to_device_avx2(rows, row_len, first, out, round) };
            }
        }
        self.columns_to_device_of(rows, row_len, first, out, round)
    }

    conversion_compiled_for!(columns_to_device_avx512, "avx512f");
    conversion_compiled_for!(columns_to_device_avx2, "avx2");

    /// The body of [`Frame::columns_to_device`].
    #[inline(always)]
    fn columns_to_device_of<T: Real, O>(
        &self,
        rows: &[T],
        row_len: usize,
        first: usize,
        out: &mut [O],
        round: &impl Fn(f64) -> O,
    ) {
        let dim = self.origin.len();
        let pairs = out
            .chunks_exact_mut(dim)
            .zip(rows.chunks_exact(row_len).map(|r| &r[first..first + dim]));
        // Multiplying by a power of two that f64 holds as a normal number rounds exactly as
        // scalbn does (once, to nearest), at a fraction of its cost.
        match (normal_power(self.e_p), normal_power(self.e_q)) {
            (Some(p), Some(q)) => {
                for (o, x) in pairs {
                    for ((o, x), c) in o.iter_mut().zip(x).zip(&self.origin) {
                        *o = round((x.to_f64() * p - c) * q);
                    }
                }
            }
            _ => {
                for (o, x) in pairs {
                    for (j, (o, x)) in o.iter_mut().zip(x).enumerate() {
                        *o = round(self.forward(x.to_f64(), j));
                    }
                }
            }
        }
    }

    /// Row-major points back from device units.
    pub(crate) fn to_caller(&self, points: &[f64]) -> Vec<f64> {
        points
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                libm::scalbn(
                    libm::scalbn(v, -self.e_q) + self.origin[i % self.origin.len()],
                    -self.e_p,
                )
            })
            .collect()
    }

    /// A squared distance (or a sum or mean of them) back from device units: exact, or
    /// infinite where the value is beyond f64.
    pub(crate) fn squared_to_caller(&self, v: f64) -> f64 {
        libm::scalbn(v, -2 * (self.e_p + self.e_q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The conversion this CPU runs gives the portable loop's values to the bit: float32
    /// and float64 rows, whole rows and a product quantizer's sub-range, data near the
    /// origin and shifted far from it, and a frame whose powers of two f64 cannot hold as
    /// normal numbers (the scalbn branch).
    #[test]
    fn vectorised_conversion_is_the_portable_one() {
        let mut bits = crate::backend::rank::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut next = move || (bits() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        let (n, row_len, dim, first) = (301, 13, 5, 7);
        for (shift, scale) in [(0.0, 1.0), (1e4, 3.0), (-2.5e6, 1e-3), (0.0, 1e-310)] {
            let rows: Vec<f64> = (0..n * row_len).map(|_| shift + scale * next()).collect();
            let rows32: Vec<f32> = rows.iter().map(|&v| v as f32).collect();
            let sub: Vec<f64> = rows
                .chunks_exact(row_len)
                .flat_map(|r| r[first..first + dim].to_vec())
                .collect();
            let frame = Frame::of_data(&sub, dim, None, &[] as &[f64]);
            let scalbn_branch =
                normal_power(frame.e_p).is_none() || normal_power(frame.e_q).is_none();
            assert_eq!(
                scalbn_branch,
                scale < 1e-300,
                "the case list covers both branches"
            );
            let check = |out: &[f32], want: &[f32], what: &str| {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(out), bits(want), "shift {shift} scale {scale}: {what}");
            };
            let round = |v: f64| v as f32;
            let (mut out, mut want) = (vec![0f32; n * dim], vec![0f32; n * dim]);
            frame.columns_to_device(&rows, row_len, first, &mut out, &round);
            frame.columns_to_device_of(&rows, row_len, first, &mut want, &round);
            check(&out, &want, "float64 rows");
            frame.columns_to_device(&rows32, row_len, first, &mut out, &round);
            frame.columns_to_device_of(&rows32, row_len, first, &mut want, &round);
            check(&out, &want, "float32 rows");
            let whole = Frame::of_data(&rows, row_len, None, &[] as &[f64]);
            let (mut out, mut want) = (vec![0f32; n * row_len], vec![0f32; n * row_len]);
            whole.columns_to_device(&rows, row_len, 0, &mut out, &round);
            whole.columns_to_device_of(&rows, row_len, 0, &mut want, &round);
            check(&out, &want, "whole rows");
        }
    }
}
