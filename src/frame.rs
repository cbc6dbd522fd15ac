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

/// Real scalars the library takes as input: f32 and f64.
pub trait Real: Copy + Send + Sync + 'static + private::Sealed {
    /// The precision of this type.
    const PRECISION: Precision;
    /// The value in f64 (exact for both).
    fn to_f64(self) -> f64;
}

impl Real for f32 {
    const PRECISION: Precision = Precision::F32;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    const PRECISION: Precision = Precision::F64;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The precision of results: that of the caller's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Values are float32 (centroids rounded to it, `.npy` files written as float32).
    #[default]
    F32,
    /// Values are float64.
    F64,
}

impl Precision {
    /// `values` rounded to this precision.
    pub(crate) fn round(self, mut values: Vec<f64>) -> Vec<f64> {
        if self == Precision::F32 {
            for v in &mut values {
                *v = f64::from(*v as f32);
            }
        }
        values
    }
}

/// Rows per partial sum of the origin: fixed, so the origin's bits do not depend on the
/// number of threads.
const ROWS_PER_SUM: usize = 4096;

/// Where the kernels' coordinates come from: see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Frame {
    /// The origin, in units scaled by 2^e_p.
    origin: Vec<f64>,
    e_p: i32,
    e_q: i32,
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

/// The largest |value| of a slice, in f64.
fn max_abs<T: Real>(data: &[T]) -> f64 {
    data.par_iter()
        .map(|v| v.to_f64().abs())
        .reduce(|| 0.0, f64::max)
}

impl Frame {
    /// The frame that changes nothing: the origin at 0, no scaling.
    pub(crate) fn identity(dim: usize) -> Self {
        Frame {
            origin: vec![0.0; dim],
            e_p: 0,
            e_q: 0,
        }
    }

    /// The frame of `data` (row-major, `dim` columns): origin at the (weighted) mean, unit
    /// the largest deviation of the data and of `extra` points (initial centroids, say) from
    /// it. `data` must be finite and non-empty, `weights` valid.
    pub(crate) fn of_data<T: Real, U: Real>(
        data: &[T],
        dim: usize,
        weights: Option<&[f32]>,
        extra: &[U],
    ) -> Self {
        let e_p = exponent_to_unit(max_abs(data).max(max_abs(extra)));
        let origin = mean(data, dim, weights, e_p);
        let dev =
            data_deviation(data, dim, &origin, e_p).max(data_deviation(extra, dim, &origin, e_p));
        Self::with_origin(origin, e_p, dev)
    }

    /// The frame of a codebook that will encode `data`: origin at the centroids' mean, unit
    /// the largest deviation of centroids and data from it (so that neither overflows).
    pub(crate) fn of_codebook<T: Real, U: Real>(centroids: &[T], dim: usize, data: &[U]) -> Self {
        let e_p = exponent_to_unit(max_abs(centroids).max(max_abs(data)));
        let origin = mean(centroids, dim, None, e_p);
        let dev = data_deviation(centroids, dim, &origin, e_p)
            .max(data_deviation(data, dim, &origin, e_p));
        Self::with_origin(origin, e_p, dev)
    }

    fn with_origin(origin: Vec<f64>, e_p: i32, dev: f64) -> Self {
        Frame {
            origin,
            e_p,
            e_q: exponent_to_unit(dev),
        }
    }

    /// Coordinate `j` of a point in device units.
    #[inline(always)]
    fn forward(&self, x: f64, j: usize) -> f64 {
        libm::scalbn(libm::scalbn(x, self.e_p) - self.origin[j], self.e_q)
    }

    /// Row-major points in device units, rounded once to f32.
    pub(crate) fn to_device_f32<T: Real>(&self, data: &[T]) -> Vec<f32> {
        let dim = self.origin.len();
        let mut out = vec![0.0f32; data.len()];
        out.par_chunks_mut(dim * 1024)
            .zip(data.par_chunks(dim * 1024))
            .for_each(|(o, x)| {
                for (i, (o, x)) in o.iter_mut().zip(x).enumerate() {
                    *o = self.forward(x.to_f64(), i % dim) as f32;
                }
            });
        out
    }

    /// Row-major points in device units, in f64.
    pub(crate) fn to_device_f64<T: Real>(&self, data: &[T]) -> Vec<f64> {
        let dim = self.origin.len();
        data.iter()
            .enumerate()
            .map(|(i, x)| self.forward(x.to_f64(), i % dim))
            .collect()
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

/// The (weighted) mean of the rows, each value first scaled by 2^e_p, summed in fixed groups
/// of rows so that the result does not depend on the thread count.
fn mean<T: Real>(data: &[T], dim: usize, weights: Option<&[f32]>, e_p: i32) -> Vec<f64> {
    let n = data.len() / dim.max(1);
    if n == 0 {
        return vec![0.0; dim];
    }
    let partial: Vec<(Vec<f64>, f64)> = (0..n.div_ceil(ROWS_PER_SUM))
        .into_par_iter()
        .map(|g| {
            let mut s = vec![0.0f64; dim];
            let mut wsum = 0.0f64;
            for i in g * ROWS_PER_SUM..((g + 1) * ROWS_PER_SUM).min(n) {
                let w = weights.map_or(1.0, |w| f64::from(w[i]));
                if w == 0.0 {
                    continue;
                }
                wsum += w;
                for (acc, x) in s.iter_mut().zip(&data[i * dim..(i + 1) * dim]) {
                    *acc += w * libm::scalbn(x.to_f64(), e_p);
                }
            }
            (s, wsum)
        })
        .collect();
    let mut sum = vec![0.0f64; dim];
    let mut total = 0.0f64;
    for (s, w) in partial {
        for (a, b) in sum.iter_mut().zip(&s) {
            *a += b;
        }
        total += w;
    }
    if total > 0.0 {
        for a in &mut sum {
            *a /= total;
        }
    }
    sum
}

/// The largest |x·2^e_p − origin| over the rows of `data`.
fn data_deviation<T: Real>(data: &[T], dim: usize, origin: &[f64], e_p: i32) -> f64 {
    data.par_iter()
        .enumerate()
        .map(|(i, x)| (libm::scalbn(x.to_f64(), e_p) - origin[i % dim]).abs())
        .reduce(|| 0.0, f64::max)
}
