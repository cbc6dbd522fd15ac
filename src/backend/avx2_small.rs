//! The small-dimension kernel ([`super::small_kernel`]) for x86-64 CPUs with AVX2 and FMA:
//! eight points a register.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

super::small_kernel::small_kernel! {
    name: "AVX2",
    features: "avx2,fma",
    group: 8,
    zero: _mm256_setzero_ps,
    load: _mm256_loadu_ps,
    store: _mm256_storeu_ps,
    splat: _mm256_set1_ps,
    fmadd: _mm256_fmadd_ps,
    add: _mm256_add_ps,
}

/// Whether this CPU runs the kernel at dimension `dim`.
pub(crate) fn serves(dim: usize) -> bool {
    dim <= MAX_DIM && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// Per lane (point): the least value so far, the least of the others (equal values
/// included), and the lowest index holding the least.
struct Minima {
    best: __m256,
    second: __m256,
    label: __m256,
}

impl Minima {
    /// Takes the value `v` of the centroid whose index (as f32 bits) is at `label`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn take(&mut self, v: __m256, label: &f32) {
        let better = _mm256_cmp_ps::<_CMP_LT_OQ>(v, self.best);
        // min_ps(a, b) is `if a < b { a } else { b }`: the runner-up takes the old best
        // where v is better, else the lesser of v and itself; the best takes v where better.
        self.second = _mm256_blendv_ps(_mm256_min_ps(v, self.second), self.best, better);
        self.best = _mm256_min_ps(v, self.best);
        // A broadcast from memory is a load, not an arithmetic operation.
        self.label = _mm256_blendv_ps(self.label, _mm256_broadcast_ss(label), better);
    }
}
