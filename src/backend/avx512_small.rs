//! The small-dimension kernel ([`super::small_kernel`]) for x86-64 CPUs with AVX-512:
//! sixteen points a register, the same labels and gaps as [`super::avx2_small`] to the bit.
//! What changes is the count of
//! instructions a centroid costs: each coordinate's broadcast folds into its FMA, and the
//! comparisons write a mask register that the blends read. On a Zen 4, whose 512-bit
//! operations take two 256-bit halves, the AVX2 kernel issued about 25 instructions per
//! centroid and eight points, so its FMAs ran at half their peak.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

super::small_kernel::small_kernel! {
    name: "AVX-512",
    features: "avx512f,fma",
    group: 16,
    zero: _mm512_setzero_ps,
    load: _mm512_loadu_ps,
    store: _mm512_storeu_ps,
    splat: _mm512_set1_ps,
    fmadd: _mm512_fmadd_ps,
    add: _mm512_add_ps,
}

/// Whether this CPU runs the kernel at dimension `dim`.
pub(crate) fn serves(dim: usize) -> bool {
    dim <= MAX_DIM && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma")
}

/// Per lane: the least value so far, the least of the others (equal values included), and
/// the lowest index holding the least.
struct Minima {
    best: __m512,
    second: __m512,
    label: __m512,
}

impl Minima {
    /// [`super::avx2_small`]'s update, with a mask for the lanes `v` improves.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn take(&mut self, v: __m512, label: &f32) {
        let better = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, self.best);
        self.second = _mm512_mask_blend_ps(better, _mm512_min_ps(v, self.second), self.best);
        self.best = _mm512_min_ps(v, self.best);
        self.label = _mm512_mask_blend_ps(better, self.label, _mm512_set1_ps(*label));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu_dense::DenseCentroids;
    use crate::backend::rank::xorshift;
    use crate::backend::small_kernel::MAX_DIM;

    /// The AVX-512 kernel's labels and gaps are the AVX2 kernel's to the bit, at every
    /// dimension it serves: points not a multiple of sixteen (one point included), centroids
    /// not a multiple of a batch (one included), values on a coarse grid (exact ties, to the
    /// lowest index) and fine ones.
    #[test]
    fn labels_and_gaps_are_the_avx2_kernels() {
        if !serves(MAX_DIM) {
            eprintln!("this CPU has no AVX-512: nothing to check");
            return;
        }
        let mut bits = xorshift(0x5851_f42d_4c95_7f2d);
        let mut next = move || (bits() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
        for dim in 1..=MAX_DIM {
            for (n, k) in [
                (1usize, 1usize),
                (15, 3),
                (16, 4),
                (17, 5),
                (100, 17),
                (333, 256),
            ] {
                for coarse in [false, true] {
                    let mut value = || {
                        let v = next();
                        if coarse { (v * 2.0).round() } else { v }
                    };
                    let x: Vec<f32> = (0..n * dim).map(|_| value()).collect();
                    let c: Vec<f64> = (0..k * dim).map(|_| f64::from(value())).collect();
                    let packed = Packed::new(&DenseCentroids::new(&c, dim));
                    let (mut labels, mut gaps) = (vec![0u32; n], vec![0f32; n]);
                    rank_rows(&x, &packed, &mut labels, &mut gaps);
                    let (mut want_labels, mut want_gaps) = (vec![0u32; n], vec![0f32; n]);
                    super::super::avx2_small::rank_rows(
                        &x,
                        &packed,
                        &mut want_labels,
                        &mut want_gaps,
                    );
                    let gap_bits = |g: &[f32]| g.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(labels, want_labels, "d {dim} n {n} k {k} coarse {coarse}");
                    assert_eq!(
                        gap_bits(&gaps),
                        gap_bits(&want_gaps),
                        "d {dim} n {n} k {k} coarse {coarse}"
                    );
                }
            }
        }
    }
}
