//! The fused distance + arg-min kernel for x86-64 CPUs with AVX-512: centroids packed in
//! panels of 16 (one per vector lane), eight points at a time held in registers, the running
//! minimum and runner-up kept per lane, so the k distances of a point never touch memory.
//! The lanes are merged by the portable [`finish_lanes`], which the tests exercise on every
//! machine.

#![cfg(target_arch = "x86_64")]
// Register-resident accumulators are indexed by point; iterators would hide the unrolling.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::panels::{Packed, merge_lanes};
use super::rank::LANES;
/// Points processed together (their accumulators live in registers).
const GROUP: usize = 8;

/// Whether this CPU runs the kernel.
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Labels of `rows` consecutive points starting at `x` (row-major, `dim` columns), with the
/// gap from each point's best value to its runner-up.
///
/// # Safety
/// The CPU must have AVX-512F ([`available`]); `x` holds `labels.len() * dim` values and
/// `gaps` as many entries as `labels`.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn assign_rows(
    x: &[f32],
    dim: usize,
    packed: &Packed,
    labels: &mut [u32],
    gaps: &mut [f32],
) {
    let rows = labels.len();
    assert!(x.len() >= rows * dim && packed.data.len() == packed.panels * dim * LANES);
    assert_eq!(gaps.len(), rows);
    let mut r = 0;
    while r < rows {
        let p = GROUP.min(rows - r);
        let xs = &x[r * dim..(r + p) * dim];
        let out = &mut labels[r..r + p];
        let gap = &mut gaps[r..r + p];
        // SAFETY: AVX-512F is enabled on this function; slices were bounds-checked above.
        unsafe {
            match p {
                8 => group::<8>(xs, dim, packed, out, gap),
                7 => group::<7>(xs, dim, packed, out, gap),
                6 => group::<6>(xs, dim, packed, out, gap),
                5 => group::<5>(xs, dim, packed, out, gap),
                4 => group::<4>(xs, dim, packed, out, gap),
                3 => group::<3>(xs, dim, packed, out, gap),
                2 => group::<2>(xs, dim, packed, out, gap),
                _ => group::<1>(xs, dim, packed, out, gap),
            }
        }
        r += p;
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn group<const P: usize>(
    x: &[f32],
    dim: usize,
    packed: &Packed,
    out: &mut [u32],
    gaps: &mut [f32],
) {
    let xp = x.as_ptr();
    let mut best_v = [_mm512_set1_ps(f32::INFINITY); P];
    let mut second_v = [_mm512_set1_ps(f32::INFINITY); P];
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
                // The runner-up: the old best where v wins, else the smaller of it and v.
                second_v[p] = _mm512_mask_mov_ps(_mm512_min_ps(second_v[p], v), m, best_v[p]);
                best_v[p] = _mm512_mask_mov_ps(best_v[p], m, v);
                best_t[p] = _mm512_mask_mov_epi32(best_t[p], m, tv);
            }
        }
    }
    // The lanes go to memory once per point and are merged by the portable code.
    let mut val = [0.0f32; LANES];
    let mut second = [0.0f32; LANES];
    let mut panel = [0u32; LANES];
    for p in 0..P {
        // SAFETY: each array holds 16 lanes.
        unsafe {
            _mm512_storeu_ps(val.as_mut_ptr(), best_v[p]);
            _mm512_storeu_ps(second.as_mut_ptr(), second_v[p]);
            _mm512_storeu_si512(panel.as_mut_ptr().cast(), best_t[p]);
        }
        (out[p], gaps[p]) = merge_lanes(&val, &second, &panel, packed.k);
    }
}
