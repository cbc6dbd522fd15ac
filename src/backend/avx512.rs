//! The fused distance + arg-min kernel for x86-64 CPUs with AVX-512: centroids packed in
//! panels of 16 (one per vector lane), eight points at a time held in registers, the running
//! minimum kept per lane, so the k distances of a point never touch memory.

#![cfg(target_arch = "x86_64")]
// Register-resident accumulators are indexed by point; iterators would hide the unrolling.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

/// Lanes of a 512-bit register of f32.
pub(crate) const LANES: usize = 16;
/// Points processed together (their accumulators live in registers).
const GROUP: usize = 8;

/// Centroids transposed into panels: panel `t` holds `dim` rows of 16 values, value `l` of
/// row `j` being coordinate `j` of centroid `16 t + l`. Padding lanes get norm +inf so they
/// never win.
pub(crate) struct Packed {
    pub k: usize,
    pub panels: usize,
    pub data: Vec<f32>,
    pub norms: Vec<f32>,
}

pub(crate) fn pack(centroids: &[f32], norms: &[f32], dim: usize) -> Packed {
    let k = norms.len();
    let panels = k.div_ceil(LANES);
    let mut data = vec![0.0f32; panels * dim * LANES];
    let mut pn = vec![f32::INFINITY; panels * LANES];
    for c in 0..k {
        let (t, l) = (c / LANES, c % LANES);
        for j in 0..dim {
            data[(t * dim + j) * LANES + l] = centroids[c * dim + j];
        }
        pn[c] = norms[c];
    }
    Packed {
        k,
        panels,
        data,
        norms: pn,
    }
}

/// Whether this CPU runs the kernel.
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Labels of `rows` consecutive points starting at `x` (row-major, `dim` columns).
///
/// # Safety
/// The CPU must have AVX-512F ([`available`]); `x` holds `labels.len() * dim` values.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn assign_rows(x: &[f32], dim: usize, packed: &Packed, labels: &mut [u32]) {
    let rows = labels.len();
    assert!(x.len() >= rows * dim && packed.data.len() == packed.panels * dim * LANES);
    let mut r = 0;
    while r < rows {
        let p = GROUP.min(rows - r);
        let xs = &x[r * dim..(r + p) * dim];
        let out = &mut labels[r..r + p];
        // SAFETY: AVX-512F is enabled on this function; slices were bounds-checked above.
        unsafe {
            match p {
                8 => group::<8>(xs, dim, packed, out),
                7 => group::<7>(xs, dim, packed, out),
                6 => group::<6>(xs, dim, packed, out),
                5 => group::<5>(xs, dim, packed, out),
                4 => group::<4>(xs, dim, packed, out),
                3 => group::<3>(xs, dim, packed, out),
                2 => group::<2>(xs, dim, packed, out),
                _ => group::<1>(xs, dim, packed, out),
            }
        }
        r += p;
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn group<const P: usize>(x: &[f32], dim: usize, packed: &Packed, out: &mut [u32]) {
    let xp = x.as_ptr();
    let mut best_v = [_mm512_set1_ps(f32::INFINITY); P];
    let mut best_t = [_mm512_setzero_si512(); P];
    let two = _mm512_set1_ps(2.0);
    for t in 0..packed.panels {
        let mut acc = [_mm512_setzero_ps(); P];
        // SAFETY: panel t spans dim * LANES values inside packed.data; x holds P rows.
        unsafe {
            let base = packed.data.as_ptr().add(t * dim * LANES);
            for j in 0..dim {
                let c = _mm512_loadu_ps(base.add(j * LANES));
                for p in 0..P {
                    let xv = _mm512_set1_ps(*xp.add(p * dim + j));
                    acc[p] = _mm512_fmadd_ps(xv, c, acc[p]);
                }
            }
            let nrm = _mm512_loadu_ps(packed.norms.as_ptr().add(t * LANES));
            let tv = _mm512_set1_epi32(t as i32);
            for p in 0..P {
                let v = _mm512_fnmadd_ps(two, acc[p], nrm);
                let m = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, best_v[p]);
                best_v[p] = _mm512_mask_mov_ps(best_v[p], m, v);
                best_t[p] = _mm512_mask_mov_epi32(best_t[p], m, tv);
            }
        }
    }
    // Horizontal arg-min per point, in registers: the smallest value, then the lowest index
    // among the lanes holding it.
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let none = _mm512_set1_epi32(-1);
    for p in 0..P {
        let idx = _mm512_add_epi32(_mm512_slli_epi32::<4>(best_t[p]), lane);
        let min = _mm512_reduce_min_ps(best_v[p]);
        let eq = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(best_v[p], _mm512_set1_ps(min));
        let best = _mm512_reduce_min_epu32(_mm512_mask_mov_epi32(none, eq, idx));
        // Only overflowing data leaves no finite lane (or a padding lane): fall back to 0.
        out[p] = if (best as usize) < packed.k { best } else { 0 };
    }
}
