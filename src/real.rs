//! The scalars the library takes (f32 and f64) and the precision of its results.

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

/// `data` as f32 values when `T` is f32 (for paths that read the bits of f32), else None.
pub(crate) fn as_f32<T: Real>(data: &[T]) -> Option<&[f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: T is f32 (checked above): the same values, layout and length.
        unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<f32>(), data.len()) }
    })
}

/// `data` as f64 values when `T` is f64.
pub(crate) fn as_f64<T: Real>(data: &[T]) -> Option<&[f64]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f64>()).then(|| {
        // SAFETY: T is f64 (checked above): the same values, layout and length.
        unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<f64>(), data.len()) }
    })
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
