//! Certified nearest centroids. The kernels rank centroids by ‖c‖² − 2x·c in f32, which is
//! fast but rounds; here a point whose best and second-best values are closer than that
//! formula's rounding bound is decided again by direct differences Σ(x − c)² in f64, so the
//! label returned is the nearest centroid.
//!
//! The bound: with v_j = ‖c_j‖² − 2x·c_j computed in f32 over d terms, |v̂_j − v_j| ≤
//! γ(‖c_j‖² + 2‖x‖‖c_j‖), γ = (d + 6)·2⁻²⁴ (dot product, norm, subtraction, and the f32
//! rounding of f64 centroids). Any centroid j that could be at least as near as the chosen b
//! has ‖x − c_j‖ ≤ ‖x − c_b‖ = D, so ‖c_j‖ ≤ R = ‖x‖ + D and its error is at most
//! E = γ(R² + 2‖x‖R); b is certainly the nearest when every other v̂_j exceeds v̂_b by more
//! than 2E.

/// f32's unit roundoff, 2⁻²⁴.
const EPS32: f64 = 5.960_464_477_539_063e-8;

/// Whether the f32 ranking cannot tell the best centroid from the runner-up: `norm_x` is ‖x‖,
/// `best_sq` the direct squared distance to the best, `gap` the runner-up's value minus the
/// best's (NaN or negative counts as undecided).
#[inline]
pub(crate) fn undecided(norm_x: f64, best_sq: f64, gap: f64, dim: usize) -> bool {
    let gamma = (dim as f64 + 6.0) * EPS32 * 1.01;
    let r = norm_x + best_sq.max(0.0).sqrt() * (1.0 + 1e-9);
    let e = gamma * (r * r + 2.0 * norm_x * r);
    // A NaN gap is undecided.
    gap.is_nan() || gap <= 2.0 * e
}

/// The nearest of `centroids` (row-major f64, `dim` columns) to `x` by direct differences in
/// f64, lowest index on ties, with its squared distance.
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

/// Σ(x − c)² in f64.
#[inline]
pub(crate) fn squared_f64(x: &[f32], c: &[f64]) -> f64 {
    x.iter()
        .zip(c)
        .map(|(&a, &b)| {
            let t = f64::from(a) - b;
            t * t
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
