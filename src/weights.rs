//! Per-row weights as the caller gave them, float32 or float64, read without a copy.
//!
//! Float64 weights are kept as they are: rounded to f32, a weighted float64 fit's centroids
//! were its cells' weighted means only to about 2⁻²⁴ (4·10⁻¹⁰ off scikit-learn's on
//! scikit-learn's diabetes data with random weights).

use crate::real::{Real, as_f32, as_f64};

/// Per-row weights, float32 or float64, borrowed from the caller. Every value is read as
/// f64, exactly.
///
/// ```
/// use lloyd::Weights;
/// let w64 = [0.1f64, 0.7];
/// let w = Weights::from(&w64[..]);
/// assert_eq!(w.len(), 2);
/// assert_eq!(w.get(0), 0.1);
/// let w32: Weights = (&[1.5f32, 2.0][..]).into();
/// assert_eq!(w32.get(1), 2.0);
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    /// Float32 weights.
    F32(&'a [f32]),
    /// Float64 weights.
    F64(&'a [f64]),
}

impl<'a> Weights<'a> {
    /// The weights of `w`, whichever float type it holds.
    pub fn of<W: Real>(w: &'a [W]) -> Self {
        match (as_f32(w), as_f64(w)) {
            (Some(w), _) => Weights::F32(w),
            (_, Some(w)) => Weights::F64(w),
            _ => unreachable!("Real is implemented for f32 and f64 only"),
        }
    }

    /// The number of weights.
    pub fn len(&self) -> usize {
        match self {
            Weights::F32(w) => w.len(),
            Weights::F64(w) => w.len(),
        }
    }

    /// Whether there are no weights.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Weight `i`, as f64.
    #[inline(always)]
    pub fn get(&self, i: usize) -> f64 {
        match self {
            Weights::F32(w) => f64::from(w[i]),
            Weights::F64(w) => w[i],
        }
    }

    /// The weights of `rows`.
    pub(crate) fn slice(&self, rows: std::ops::Range<usize>) -> Weights<'a> {
        match *self {
            Weights::F32(w) => Weights::F32(&w[rows]),
            Weights::F64(w) => Weights::F64(&w[rows]),
        }
    }

    /// Every weight, as f64, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = f64> + 'a {
        let (a, b) = match *self {
            Weights::F32(w) => (w, &[][..]),
            Weights::F64(w) => (&[][..], w),
        };
        a.iter().map(|&v| f64::from(v)).chain(b.iter().copied())
    }
}

impl<'a, W: Real> From<&'a [W]> for Weights<'a> {
    fn from(w: &'a [W]) -> Self {
        Weights::of(w)
    }
}

impl<'a, W: Real> From<&'a Vec<W>> for Weights<'a> {
    fn from(w: &'a Vec<W>) -> Self {
        Weights::of(w)
    }
}

impl<'a, W: Real, const N: usize> From<&'a [W; N]> for Weights<'a> {
    fn from(w: &'a [W; N]) -> Self {
        Weights::of(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each type is read as itself: float64 weights keep the bits f32 cannot hold.
    #[test]
    fn weights_read_as_given() {
        let w64 = [0.1f64, 1.0 + f64::EPSILON, 3.0];
        let w = Weights::of(&w64[..]);
        assert!(matches!(w, Weights::F64(_)));
        assert_eq!(w.iter().collect::<Vec<_>>(), w64);
        assert_eq!(w.slice(1..3).get(0), 1.0 + f64::EPSILON);
        let w32 = [0.1f32, 2.5];
        let w = Weights::of(&w32[..]);
        assert!(matches!(w, Weights::F32(_)));
        assert_eq!(w.get(0), f64::from(0.1f32));
        assert_eq!(w.len(), 2);
        assert!(Weights::of::<f32>(&[]).is_empty());
    }
}
