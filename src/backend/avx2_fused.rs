//! The fused distance + arg-min kernel for x86-64 CPUs with AVX2 and FMA above the small
//! dimensions: centroids in panels of sixteen ([`super::panels`], two registers a
//! coordinate), six points at a time with their twelve accumulators in registers, and the
//! running minimum, runner-up and panel kept per lane. It does the matrix product's
//! arithmetic without packing the centroids for every block of points, storing the k
//! values of each point, or reading them back for the arg-min.
//!
//! The panels are visited in blocks that stay in L2 while every group of points of a task
//! passes over them. The value ranked is ‖c‖² − 2x·c with the dot product accumulated by
//! FMA in coordinate order, 32 coordinates at a time, the chunks' sums added in order: a
//! rounding bound ([`terms`]) far tighter than one running sum's, against which
//! [`super::exact`] certifies.

#![cfg(target_arch = "x86_64")]
// Register-resident accumulators are indexed by point; iterators would hide the unrolling.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::panels::{LaneState, Packed};
use super::rank::LANES;

/// Points processed together: 6 × 2 accumulators, two centroid registers and a broadcast
/// fill fifteen of the sixteen AVX registers.
const GROUP: usize = 6;
/// Coordinates whose products one accumulator sums before it is added to the dot product:
/// a product then goes through at most `CHUNK + ⌈d / CHUNK⌉` roundings ([`terms`]) rather
/// than d, a bound 12 times tighter at d = 768, so that far fewer points are left for the
/// certification to decide. The additions cost one in 32 of the kernel's operations.
pub(crate) const CHUNK: usize = 32;
/// Lanes of one AVX register of f32.
const HALF: usize = 8;
/// Bytes of centroid panels visited as one block (Zen 3 and most x86 cores have 512 KiB of
/// L2 or more a core).
const BLOCK_BYTES: usize = 256 * 1024;

/// Whether this CPU runs the kernel at dimension `dim` (smaller ones take
/// [`super::avx2_small`]).
pub(crate) fn serves(dim: usize) -> bool {
    dim > super::small_kernel::MAX_DIM
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
}

/// The most roundings any product of a dot product over `dim` coordinates goes through in
/// this kernel: up to `CHUNK` in its chunk's running sum, then one per later chunk sum
/// added (the [`super::exact`] bound's d).
pub(crate) fn terms(dim: usize) -> usize {
    dim.min(CHUNK + dim.div_ceil(CHUNK))
}

/// Panels visited as one block at dimension `dim`, in [`rank_in_blocks`].
pub(crate) fn block_panels(dim: usize) -> usize {
    (BLOCK_BYTES / (dim * LANES * 4)).max(1)
}

/// A fused kernel's pass of up to [`GROUP`] points (`x`, row-major) over a range of panels,
/// updating their lanes' running state (best values, runner-ups, panels of the bests).
///
/// # Safety
/// The CPU must have the kernel's features; `x` holds `P * dim` values for `P` points (at
/// most [`GROUP`]), each state slice `P * LANES` entries, and the panels lie within `packed`.
pub(crate) type Groups =
    unsafe fn(&[f32], usize, &Packed, std::ops::Range<usize>, (&mut [f32], &mut [f32], &mut [u32]));

/// `$group::<P>(args…)` with `P` the number of points `$p` (1 to [`GROUP`]), so that each
/// count keeps its accumulators in registers.
macro_rules! at_points {
    ($p:expr, $group:ident($($arg:expr),*)) => {
        match $p {
            6 => $group::<6>($($arg),*),
            5 => $group::<5>($($arg),*),
            4 => $group::<4>($($arg),*),
            3 => $group::<3>($($arg),*),
            2 => $group::<2>($($arg),*),
            _ => $group::<1>($($arg),*),
        }
    };
}
pub(crate) use at_points;

/// [`Groups`] of this kernel: [`group`] at the number of points given.
///
/// # Safety
/// As [`Groups`], with AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
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

/// The f32 ranking of [`super::rank::Ranker::rank`] of the rows of `x` (`dim` columns, as many
/// as `labels`) by the fused kernel whose [`Groups`] is `groups`: each point's best centroid
/// (lowest index among equal values) and the gap from it to the runner-up (infinite with one
/// centroid). The panels are visited in blocks of `block` ([`block_panels`] but in tests),
/// each block by every group of [`GROUP`] points, then each point's lanes are merged in
/// registers. `state` is the caller's buffer.
///
/// # Safety
/// The CPU must have AVX2, FMA and whatever `groups` needs.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn rank_in_blocks(
    x: &[f32],
    dim: usize,
    packed: &Packed,
    (labels, gaps): (&mut [u32], &mut [f32]),
    state: &mut LaneState,
    block: usize,
    groups: Groups,
) {
    let rows = labels.len();
    assert!(x.len() == rows * dim && gaps.len() == rows && block > 0);
    assert_eq!(packed.data.len(), packed.panels * dim * LANES);
    assert_eq!(packed.norms.len(), packed.panels * LANES);
    state.reset(rows);
    for t0 in (0..packed.panels).step_by(block) {
        let panels = t0..(t0 + block).min(packed.panels);
        let mut r = 0;
        while r < rows {
            let p = GROUP.min(rows - r);
            let at = r * LANES..(r + p) * LANES;
            let lanes = (
                &mut state.best[at.clone()],
                &mut state.second[at.clone()],
                &mut state.panel[at],
            );
            // SAFETY: the CPU has what `groups` needs (the caller's promise); the slices
            // hold `p` points and the panels lie within `packed`.
            unsafe {
                groups(
                    &x[r * dim..(r + p) * dim],
                    dim,
                    packed,
                    panels.clone(),
                    lanes,
                )
            }
            r += p;
        }
    }
    for r in 0..rows {
        let at = r * LANES;
        // SAFETY: AVX2 is enabled on this function; the state holds `rows * LANES` lanes.
        (labels[r], gaps[r]) = unsafe {
            merge(
                state.best.as_ptr().add(at),
                state.second.as_ptr().add(at),
                state.panel.as_ptr().add(at),
                packed.k,
            )
        }
        .unwrap_or_else(|| state.merge(r, packed.k));
    }
}

/// [`super::panels::merge_lanes`] of one point's sixteen lanes in registers: the same label
/// and gap, to the bit. None where no lane holds a finite value (overflowing data), which
/// the portable merge decides.
///
/// # Safety
/// The CPU must have AVX2; each pointer addresses sixteen lanes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn merge(
    best: *const f32,
    second: *const f32,
    panel: *const u32,
    k: usize,
) -> Option<(u32, f32)> {
    // SAFETY: each pointer addresses sixteen lanes (the caller's promise).
    let (b, s, t) = unsafe {
        (
            [_mm256_loadu_ps(best), _mm256_loadu_ps(best.add(HALF))],
            [_mm256_loadu_ps(second), _mm256_loadu_ps(second.add(HALF))],
            [
                _mm256_loadu_si256(panel.cast()),
                _mm256_loadu_si256(panel.add(HALF).cast()),
            ],
        )
    };
    let inf = _mm256_set1_ps(f32::INFINITY);
    let none = _mm256_set1_epi32(-1);
    let lanes = [
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15),
    ];
    let kv = _mm256_set1_epi32(k as i32);
    let mut idx = [none; 2];
    let mut valid = [_mm256_setzero_ps(); 2];
    for h in 0..2 {
        idx[h] = _mm256_add_epi32(_mm256_slli_epi32::<4>(t[h]), lanes[h]);
        // A lane names a centroid where its best is below +inf (not NaN) and its index is one.
        let named = _mm256_castsi256_ps(_mm256_cmpgt_epi32(kv, idx[h]));
        valid[h] = _mm256_and_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(b[h], inf), named);
    }
    let v = [
        _mm256_blendv_ps(inf, b[0], valid[0]),
        _mm256_blendv_ps(inf, b[1], valid[1]),
    ];
    let low = horizontal_min(_mm256_min_ps(v[0], v[1]));
    if low == f32::INFINITY {
        return None;
    }
    let lowv = _mm256_set1_ps(low);
    let mut label = none;
    for h in 0..2 {
        let at_low = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_EQ_OQ>(v[h], lowv));
        label = _mm256_min_epu32(label, _mm256_blendv_epi8(none, idx[h], at_low));
    }
    let label = horizontal_min_u32(label);
    // The runner-up: every lane's runner-up and every other lane's best, NaN ignored as the
    // portable merge's `f32::min` ignores it (a NaN first operand gives the second).
    let lv = _mm256_set1_epi32(label as i32);
    let mut runner = inf;
    for h in 0..2 {
        let chosen = _mm256_castsi256_ps(_mm256_cmpeq_epi32(idx[h], lv));
        runner = _mm256_min_ps(s[h], runner);
        runner = _mm256_min_ps(_mm256_blendv_ps(b[h], inf, chosen), runner);
    }
    let runner = horizontal_min(runner);
    Some((label, runner - low))
}

/// The smallest of eight lanes (none NaN).
#[inline]
#[target_feature(enable = "avx2")]
fn horizontal_min(v: __m256) -> f32 {
    let m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    let m = _mm_min_ss(m, _mm_shuffle_ps::<0b01>(m, m));
    _mm_cvtss_f32(m)
}

/// The smallest of eight unsigned lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn horizontal_min_u32(v: __m256i) -> u32 {
    let m = _mm_min_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let m = _mm_min_epu32(m, _mm_shuffle_epi32::<0b1110>(m));
    let m = _mm_min_epu32(m, _mm_shuffle_epi32::<0b01>(m));
    _mm_cvtsi128_si32(m) as u32
}

/// Asserts what a [`Groups`] pass of `p` points relies on: `x` holds `p * dim` values, each
/// state slice `p * LANES` entries, and `panels` lies within `packed`.
pub(crate) fn check_group(
    p: usize,
    x: &[f32],
    dim: usize,
    packed: &Packed,
    panels: &std::ops::Range<usize>,
    (best, second, panel): (&[f32], &[f32], &[u32]),
) {
    assert!(x.len() == p * dim && best.len() == p * LANES);
    assert!(second.len() == p * LANES && panel.len() == p * LANES);
    assert!(panels.end <= packed.panels);
}

/// `P` points (`x`, row-major) against `panels`, updating their lanes' running state.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `x` holds `P * dim` values, each state slice `P * LANES`
/// entries, and `panels` lies within `packed`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn group<const P: usize>(
    x: &[f32],
    dim: usize,
    packed: &Packed,
    panels: std::ops::Range<usize>,
    (best, second, panel): (&mut [f32], &mut [f32], &mut [u32]),
) {
    check_group(P, x, dim, packed, &panels, (best, second, panel));
    let xp = x.as_ptr();
    let (bp, sp, tp) = (best.as_mut_ptr(), second.as_mut_ptr(), panel.as_mut_ptr());
    // SAFETY (every block below): offsets stay within the slices asserted above.
    let load = |ptr: *const f32, p: usize, h: usize| unsafe {
        _mm256_loadu_ps(ptr.add(p * LANES + h * HALF))
    };
    let mut best_v = [[_mm256_setzero_ps(); 2]; P];
    let mut second_v = best_v;
    let mut best_t = best_v;
    for p in 0..P {
        for h in 0..2 {
            best_v[p][h] = load(bp, p, h);
            second_v[p][h] = load(sp, p, h);
            best_t[p][h] = load(tp.cast(), p, h);
        }
    }
    let two = _mm256_set1_ps(2.0);
    for t in panels {
        let mut dot = [[_mm256_setzero_ps(); 2]; P];
        for j0 in (0..dim).step_by(CHUNK) {
            let mut acc = [[_mm256_setzero_ps(); 2]; P];
            // SAFETY: panel t spans dim * LANES values inside packed.data.
            unsafe {
                let base = packed.data.as_ptr().add(t * dim * LANES);
                for j in j0..(j0 + CHUNK).min(dim) {
                    let c0 = _mm256_loadu_ps(base.add(j * LANES));
                    let c1 = _mm256_loadu_ps(base.add(j * LANES + HALF));
                    for p in 0..P {
                        let xv = _mm256_broadcast_ss(&*xp.add(p * dim + j));
                        acc[p][0] = _mm256_fmadd_ps(xv, c0, acc[p][0]);
                        acc[p][1] = _mm256_fmadd_ps(xv, c1, acc[p][1]);
                    }
                }
            }
            for p in 0..P {
                for h in 0..2 {
                    dot[p][h] = _mm256_add_ps(dot[p][h], acc[p][h]);
                }
            }
        }
        // The panel's index, as the bits of an f32 lane (moved by blends, never computed).
        let tv = _mm256_castsi256_ps(_mm256_set1_epi32(t as i32));
        for h in 0..2 {
            let nrm = load(packed.norms.as_ptr(), t, h);
            for p in 0..P {
                let v = _mm256_fnmadd_ps(two, dot[p][h], nrm);
                let m = _mm256_cmp_ps::<_CMP_LT_OQ>(v, best_v[p][h]);
                best_t[p][h] = _mm256_blendv_ps(best_t[p][h], tv, m);
                // The runner-up is the smaller of itself and whichever of v and the old best
                // lost (v on a tie: the gap is then 0, as it must be).
                second_v[p][h] = _mm256_min_ps(second_v[p][h], _mm256_max_ps(best_v[p][h], v));
                best_v[p][h] = _mm256_min_ps(best_v[p][h], v);
            }
        }
    }
    for p in 0..P {
        for h in 0..2 {
            // SAFETY: as for `load`.
            unsafe {
                _mm256_storeu_ps(bp.add(p * LANES + h * HALF), best_v[p][h]);
                _mm256_storeu_ps(sp.add(p * LANES + h * HALF), second_v[p][h]);
                _mm256_storeu_ps(tp.cast::<f32>().add(p * LANES + h * HALF), best_t[p][h]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::panels::pack;
    use crate::backend::rank::xorshift;

    /// Each point's value against each centroid as the kernel computes it (FMA in coordinate
    /// order within each chunk, the chunks' sums added in order, then ‖c‖² − 2·dot), and the lowest-index best with the gap to the runner-up.
    fn reference(x: &[f32], c: &[f32], norms: &[f32], dim: usize) -> (u32, f32) {
        let values: Vec<f32> = c
            .chunks_exact(dim)
            .zip(norms)
            .map(|(c, &n)| {
                let dot = x
                    .chunks(CHUNK)
                    .zip(c.chunks(CHUNK))
                    .fold(0.0f32, |d, (x, c)| {
                        d + x.iter().zip(c).fold(0.0f32, |a, (&x, &c)| x.mul_add(c, a))
                    });
                (-2.0f32).mul_add(dot, n)
            })
            .collect();
        let mut best = 0;
        for (j, &v) in values.iter().enumerate() {
            if v < values[best] {
                best = j;
            }
        }
        let runner_up = values
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != best)
            .fold(f32::INFINITY, |m, (_, &v)| m.min(v));
        (best as u32, runner_up - values[best])
    }

    /// The fused kernels this CPU runs: this one, and the AVX-512 one where the CPU has it.
    fn fused_kernels() -> Vec<(&'static str, Groups)> {
        let mut kernels: Vec<(&'static str, Groups)> = vec![("AVX2", groups)];
        if crate::backend::avx512_fused::serves(9) {
            kernels.push(("AVX-512", crate::backend::avx512_fused::groups));
        } else {
            eprintln!("this CPU has no AVX-512: only the AVX2 kernel is checked");
        }
        kernels
    }

    /// Each fused kernel's labels and gaps are the reference's to the bit: points not a multiple of
    /// the group, centroids not a multiple of a panel, one point, one centroid, blocks of one,
    /// two and three panels as well as the default, values on a coarse grid (exact ties,
    /// which go to the lowest index) and panels that repeat the first (ties within a lane).
    #[test]
    fn labels_and_gaps_are_the_references() {
        if !serves(9) {
            eprintln!("this CPU has no AVX2 and FMA: nothing to check");
            return;
        }
        let mut bits = xorshift(0x2545_f491_4f6c_dd1d);
        let mut next = move || (bits() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
        for (n, dim, k) in [
            (1usize, 9usize, 1usize),
            (7, 13, 17),
            (13, 33, 31),
            (100, 100, 200),
            (37, 768, 40),
            (6, 16, 16),
        ] {
            for values in ["fine", "coarse", "repeated"] {
                let coarse = values == "coarse";
                let mut value = || {
                    let v = next();
                    if coarse { (v * 2.0).round() } else { v }
                };
                let x: Vec<f32> = (0..n * dim).map(|_| value()).collect();
                let mut c: Vec<f32> = (0..k * dim).map(|_| value()).collect();
                if values == "repeated" {
                    // Each panel's centroids are the first panel's: every lane ties between
                    // panels, and the earliest panel must keep the lane.
                    for i in LANES * dim..k * dim {
                        c[i] = c[i % (LANES * dim)];
                    }
                }
                let norms: Vec<f32> = c
                    .chunks_exact(dim)
                    .map(|c| c.iter().map(|v| v * v).sum())
                    .collect();
                let packed = pack(&c, &norms, dim);
                for (kernel, groups) in fused_kernels() {
                    for block in [1, 2, 3, block_panels(dim)] {
                        let (mut labels, mut gaps) = (vec![0u32; n], vec![0f32; n]);
                        let mut lanes = LaneState::default();
                        // SAFETY: the CPU has what each kernel listed needs.
                        unsafe {
                            rank_in_blocks(
                                &x,
                                dim,
                                &packed,
                                (&mut labels, &mut gaps),
                                &mut lanes,
                                block,
                                groups,
                            )
                        };
                        for i in 0..n {
                            let want = reference(&x[i * dim..(i + 1) * dim], &c, &norms, dim);
                            assert_eq!(
                                (labels[i], gaps[i].to_bits()),
                                (want.0, want.1.to_bits()),
                                "{kernel}: n {n} d {dim} k {k} {values} values, block {block}, \
                                 point {i}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The register merge of a point's lanes is the portable one, to the bit, on lanes with
    /// ties (values on a coarse grid), +inf and NaN values and runner-ups, padding lanes (a
    /// panel past the last centroid) and no finite lane at all (left to the portable merge).
    #[test]
    fn register_merge_is_the_portable_one() {
        if !serves(9) {
            return;
        }
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for round in 0..5000 {
            let k = 1 + (next() % 70) as usize;
            let mut value = |odd: u64| match next() % odd {
                0 => f32::INFINITY,
                1 => f32::NAN,
                r => (r % 5) as f32 * 0.5 - 1.0,
            };
            let odd = if round % 3 == 0 { 4 } else { 40 };
            let best: Vec<f32> = (0..LANES).map(|_| value(odd)).collect();
            let second: Vec<f32> = (0..LANES).map(|_| value(odd)).collect();
            let panel: Vec<u32> = (0..LANES).map(|_| (next() % 6) as u32).collect();
            let lanes = LaneState {
                best: best.clone(),
                second: second.clone(),
                panel: panel.clone(),
            };
            let want = lanes.merge(0, k);
            // SAFETY: the CPU has AVX2 (`serves`); each vector holds sixteen lanes.
            let got = unsafe { merge(best.as_ptr(), second.as_ptr(), panel.as_ptr(), k) };
            if let Some(got) = got {
                assert_eq!(
                    (got.0, got.1.to_bits()),
                    (want.0, want.1.to_bits()),
                    "round {round}: {best:?} {second:?} {panel:?} k {k}"
                );
            } else {
                let named = (0..LANES)
                    .any(|l| best[l] < f32::INFINITY && (panel[l] as usize * LANES + l) < k);
                assert!(
                    !named,
                    "round {round}: a finite lane was left to the portable merge"
                );
            }
        }
    }
}
