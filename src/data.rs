//! Validation of caller data: shapes, finiteness, weights. Done once, before any work.

use crate::error::{Error, Result};
use crate::real::Real;
use crate::weights::Weights;

/// Checks that `data` is a non-empty, finite, row-major `n x dim` matrix; returns `n`.
pub(crate) fn check_points<T: Real>(data: &[T], dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(Error::ZeroDimension);
    }
    if data.is_empty() {
        return Err(Error::EmptyData);
    }
    if !data.len().is_multiple_of(dim) {
        return Err(Error::ShapeMismatch {
            len: data.len(),
            dim,
        });
    }
    if let Some(i) = first_non_finite(data) {
        return Err(Error::NonFiniteData {
            point: i / dim,
            coordinate: i % dim,
            value: data[i].to_f64(),
        });
    }
    Ok(data.len() / dim)
}

/// The index of the first value that is not finite. Chunks are scanned without a branch per
/// value (an OR of exponent tests, which the compiler vectorises), then searched where one
/// is out: data are checked before every pass of a fit spread over parts.
fn first_non_finite<T: Real>(data: &[T]) -> Option<usize> {
    const CHUNK: usize = 4096;
    let bad = |v: &T| (v.to_f64().to_bits() >> 52) & 0x7ff == 0x7ff;
    let c = data
        .chunks(CHUNK)
        .position(|c| c.iter().fold(false, |a, v| a | bad(v)))?;
    let i = data[c * CHUNK..].iter().position(bad)?;
    Some(c * CHUNK + i)
}

/// Checks 1-D samples: non-empty and finite.
pub(crate) fn check_samples(samples: &[f64]) -> Result<()> {
    if samples.is_empty() {
        return Err(Error::EmptyData);
    }
    if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteData {
            point: i,
            coordinate: 0,
            value: samples[i],
        });
    }
    Ok(())
}

/// Checks per-point weights: one per point, finite, non-negative, not all zero.
pub(crate) fn check_weights(weights: Weights<'_>, n: usize) -> Result<()> {
    check_weight_values(weights, n)?;
    if weights.iter().all(|w| w == 0.0) {
        return Err(Error::ZeroTotalWeight);
    }
    Ok(())
}

/// Checks the weights of part of the data: one per point, finite, non-negative (all zero
/// is a legal part).
pub(crate) fn check_weight_values(weights: Weights<'_>, n: usize) -> Result<()> {
    if weights.len() != n {
        return Err(Error::WeightsLength {
            weights: weights.len(),
            points: n,
        });
    }
    if let Some(i) = weights.iter().position(|w| !w.is_finite() || w < 0.0) {
        return Err(Error::InvalidWeight {
            index: i,
            value: weights.get(i),
        });
    }
    if let Some(i) = weights.iter().position(|w| w > f64::from(f32::MAX)) {
        return Err(Error::WeightTooLarge {
            index: i,
            value: weights.get(i),
        });
    }
    Ok(())
}

/// Checks the number of centroids against the number of points.
pub(crate) fn check_k(k: usize, n: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::ZeroCentroids);
    }
    if k > n {
        return Err(Error::TooManyCentroids { k, n });
    }
    Ok(())
}

/// Checks the iteration count and the tolerance of a Lloyd run.
pub(crate) fn check_schedule(iterations: usize, tolerance: f64) -> Result<()> {
    if iterations == 0 {
        return Err(Error::ZeroIterations);
    }
    if !tolerance.is_finite() || tolerance < 0.0 {
        return Err(Error::InvalidTolerance(tolerance));
    }
    Ok(())
}
