//! The fused distance + arg-min kernel for x86-64 CPUs with AVX-512 above the small
//! dimensions: [`super::avx2_fused`]'s kernel with a panel of sixteen centroids in one
//! register, two panels taken together so that six points' twelve accumulators hide the FMA
//! latency on cores with two 512-bit FMA units. The blocks of panels, the chunked dot
//! products, the lanes' running state and their merge are the AVX2 kernel's, so the two
//! give the same labels and gaps to the bit.
//!
//! It replaced a kernel that summed each dot product in one running sum, visited every panel
//! per group of eight points and merged each point's lanes in portable code: on a Zen 4 that
//! one took 1.7× the AVX2 kernel's time at d = 16 and 1.1× at d = 768 (more rows left for
//! the certification), and twice the small-dimension kernel's time at d = 8, which it served.

#![cfg(target_arch = "x86_64")]
// Register-resident accumulators are indexed by point; iterators would hide the unrolling.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::avx2_fused::{CHUNK, at_points, check_group};
use super::panels::Packed;
use super::rank::LANES;

/// Whether this CPU runs the kernel at dimension `dim` (smaller ones take
/// [`super::avx2_small`]).
pub(crate) fn serves(dim: usize) -> bool {
    super::avx2_fused::serves(dim) && is_x86_feature_detected!("avx512f")
}

/// [`super::avx2_fused::Groups`] of this kernel: [`group`] at the number of points given.
///
/// # Safety
/// As [`super::avx2_fused::Groups`], with AVX-512F and FMA.
#[target_feature(enable = "avx512f,fma")]
pub(crate) unsafe fn groups(
    xs: &[f32],
    dim: usize,
    packed: &Packed,
    panels: std::ops::Range<usize>,
    lanes: (&mut [f32], &mut [f32], &mut [u32]),
) {
    // SAFETY: the caller's promise.
    unsafe { at_points!(lanes.0.len() / LANES, group(xs, dim, packed, panels, lanes)) }
}

/// `P` points (`x`, row-major) against `panels`, two at a time, updating their lanes'
/// running state.
///
/// # Safety
/// The CPU must have AVX-512F and FMA; `x` holds `P * dim` values, each state slice
/// `P * LANES` entries, and `panels` lies within `packed`.
#[inline]
#[target_feature(enable = "avx512f,fma")]
unsafe fn group<const P: usize>(
    x: &[f32],
    dim: usize,
    packed: &Packed,
    panels: std::ops::Range<usize>,
    (best, second, panel): (&mut [f32], &mut [f32], &mut [u32]),
) {
    check_group(P, x, dim, packed, &panels, (best, second, panel));
    let (bp, sp, tp) = (best.as_mut_ptr(), second.as_mut_ptr(), panel.as_mut_ptr());
    let mut state = [[_mm512_setzero_ps(); 3]; P];
    for p in 0..P {
        // SAFETY: each state slice holds P * LANES entries.
        unsafe {
            state[p] = [
                _mm512_loadu_ps(bp.add(p * LANES)),
                _mm512_loadu_ps(sp.add(p * LANES)),
                _mm512_loadu_ps(tp.cast::<f32>().add(p * LANES)),
            ];
        }
    }
    let mut t = panels.start;
    while t + 2 <= panels.end {
        // SAFETY: panels t and t + 1 lie within `packed` (the loop's bound).
        unsafe { panels_of::<P, 2>(x, dim, packed, t, &mut state) };
        t += 2;
    }
    if t < panels.end {
        // SAFETY: panel t lies within `packed`.
        unsafe { panels_of::<P, 1>(x, dim, packed, t, &mut state) };
    }
    for p in 0..P {
        // SAFETY: as for the loads.
        unsafe {
            _mm512_storeu_ps(bp.add(p * LANES), state[p][0]);
            _mm512_storeu_ps(sp.add(p * LANES), state[p][1]);
            _mm512_storeu_ps(tp.cast::<f32>().add(p * LANES), state[p][2]);
        }
    }
}

/// `T` consecutive panels from `t` against `P` points: their dot products, then each panel's
/// values into the points' state (best, runner-up, panel of the best; panel `t` first, as
/// one panel at a time would).
///
/// # Safety
/// The CPU must have AVX-512F and FMA; `x` holds `P * dim` values; panels `t..t + T` lie
/// within `packed`.
#[inline]
#[target_feature(enable = "avx512f,fma")]
unsafe fn panels_of<const P: usize, const T: usize>(
    x: &[f32],
    dim: usize,
    packed: &Packed,
    t: usize,
    state: &mut [[__m512; 3]; P],
) {
    let xp = x.as_ptr();
    let mut dot = [[_mm512_setzero_ps(); T]; P];
    for j0 in (0..dim).step_by(CHUNK) {
        let mut acc = [[_mm512_setzero_ps(); T]; P];
        // SAFETY: panels t..t + T span T * dim * LANES values inside packed.data.
        unsafe {
            let base = packed.data.as_ptr().add(t * dim * LANES);
            for j in j0..(j0 + CHUNK).min(dim) {
                let mut c = [_mm512_setzero_ps(); T];
                for h in 0..T {
                    c[h] = _mm512_loadu_ps(base.add((h * dim + j) * LANES));
                }
                for p in 0..P {
                    let xv = _mm512_set1_ps(*xp.add(p * dim + j));
                    for h in 0..T {
                        acc[p][h] = _mm512_fmadd_ps(xv, c[h], acc[p][h]);
                    }
                }
            }
        }
        for p in 0..P {
            for h in 0..T {
                dot[p][h] = _mm512_add_ps(dot[p][h], acc[p][h]);
            }
        }
    }
    let two = _mm512_set1_ps(2.0);
    for h in 0..T {
        // SAFETY: panel t + h holds LANES norms inside packed.norms.
        let nrm = unsafe { _mm512_loadu_ps(packed.norms.as_ptr().add((t + h) * LANES)) };
        // The panel's index, as the bits of an f32 lane (moved by masks, never computed).
        let tv = _mm512_castsi512_ps(_mm512_set1_epi32((t + h) as i32));
        for p in 0..P {
            let [best, second, panel] = &mut state[p];
            let v = _mm512_fnmadd_ps(two, dot[p][h], nrm);
            let m = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, *best);
            *panel = _mm512_mask_mov_ps(*panel, m, tv);
            // The runner-up is the smaller of itself and whichever of v and the old best lost
            // (v on a tie: the gap is then 0), with the AVX2 kernel's NaN operand order.
            *second = _mm512_min_ps(*second, _mm512_max_ps(*best, v));
            *best = _mm512_min_ps(*best, v);
        }
    }
}
