//! The fused distance + arg-min kernel at small dimensions, written once for the x86-64
//! registers that run it ([`super::avx2_small`], eight points a register;
//! [`super::avx512_small`], sixteen): the points of a group in the lanes of a register, the
//! centroids taken one at a time (each coordinate broadcast), the running minimum,
//! runner-up and label kept per lane. A point's k values never touch memory and no lanes are
//! merged at the end, where a matrix product at d = 8 spends as long storing, re-reading and
//! reducing the values as computing them.
//!
//! The value ranked is ‖c‖² + Σ x_t (−2c_t), the sum by FMA in coordinate order: since −2c_t
//! is exact, every partial sum is −2 times that of x·c to the bit, and the value is
//! fl(‖c‖² − 2x·c) as the matrix product's ranking computes it, within the rounding bound
//! [`super::exact`] certifies against. Each lane does the same operations whatever the
//! register's width, so both kernels give the same labels and gaps to the bit.

#![cfg(target_arch = "x86_64")]

use super::cpu_dense::DenseCentroids;

/// The largest dimension the kernel serves: beyond it the matrix product is faster (on a
/// Zen 3, d = 12 and 16 encode in 1.1–1.4x the time; d = 2, 4 and 8 in 0.4x, 0.75x and
/// 0.8x).
pub(crate) const MAX_DIM: usize = 8;

/// Centroids whose dot products are computed together: independent FMA chains that hide
/// each other's latency (eight were no faster with AVX-512's 32 registers).
pub(crate) const BATCH: usize = 4;

/// The centroids as the kernel reads them, one after the other: −2c (exact), then ‖c‖²,
/// then the index as f32 bits.
pub(crate) struct Packed {
    pub(crate) dim: usize,
    pub(crate) values: Vec<f32>,
}

/// Values per centroid in [`Packed`] beyond its coordinates.
pub(crate) const EXTRA: usize = 2;

impl Packed {
    pub(crate) fn new(centroids: &DenseCentroids) -> Self {
        let dim = centroids.dim;
        let mut values = Vec::with_capacity(centroids.k() * (dim + EXTRA));
        for (i, (c, &norm)) in centroids
            .c32
            .chunks_exact(dim)
            .zip(&centroids.norms)
            .enumerate()
        {
            values.extend(c.iter().map(|&v| -2.0 * v));
            values.push(norm);
            values.push(f32::from_bits(i as u32));
        }
        Packed { dim, values }
    }
}

/// The kernel for one register: `rank_rows` and what it calls, in the module that invokes
/// it. That module defines `serves(dim)` and a `Minima` of three registers (`best`,
/// `second`, `label`) whose `take(v, &label)` keeps, per lane, the least value so far, the
/// least of the others (equal values included) and the lowest index holding the least.
macro_rules! small_kernel {
    (
        name: $name:literal,
        features: $features:literal,
        group: $group:literal,
        zero: $zero:path,
        load: $load:path,
        store: $store:path,
        splat: $splat:path,
        fmadd: $fmadd:path,
        add: $add:path $(,)?
    ) => {
        use super::small_kernel::{BATCH, EXTRA, MAX_DIM, Packed};

        /// Points in the lanes of one register.
        const GROUP: usize = $group;

        /// The f32 ranking of [`super::rank::Ranker::rank`] of the rows of `x` (as many as
        /// `labels`): each point's best centroid (lowest index among equal values) and the gap
        /// from it to the runner-up (infinite with one centroid, NaN when no value is below
        /// +inf).
        pub(crate) fn rank_rows(x: &[f32], packed: &Packed, labels: &mut [u32], gaps: &mut [f32]) {
            assert!(
                serves(packed.dim),
                concat!(
                    "the ",
                    $name,
                    " small-dimension kernel is not for this CPU or dimension"
                )
            );
            // SAFETY: the CPU has the kernel's features (asserted above).
            unsafe { rank_at_dim(x, packed, labels, gaps) }
        }

        /// [`rank_rows`] a group at a time, at the dimension fixed at compile time (so that
        /// the coordinates' loops unroll and the points stay in registers).
        #[target_feature(enable = $features)]
        fn rank_at_dim(x: &[f32], packed: &Packed, labels: &mut [u32], gaps: &mut [f32]) {
            match packed.dim {
                1 => rank_rows_of::<1>(x, packed, labels, gaps),
                2 => rank_rows_of::<2>(x, packed, labels, gaps),
                3 => rank_rows_of::<3>(x, packed, labels, gaps),
                4 => rank_rows_of::<4>(x, packed, labels, gaps),
                5 => rank_rows_of::<5>(x, packed, labels, gaps),
                6 => rank_rows_of::<6>(x, packed, labels, gaps),
                7 => rank_rows_of::<7>(x, packed, labels, gaps),
                8 => rank_rows_of::<8>(x, packed, labels, gaps),
                d => unreachable!("dimension {d} is beyond the kernel's {MAX_DIM}"),
            }
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn rank_rows_of<const D: usize>(
            x: &[f32],
            packed: &Packed,
            labels: &mut [u32],
            gaps: &mut [f32],
        ) {
            assert!(x.len() == labels.len() * D && gaps.len() == labels.len());
            assert_eq!(packed.values.len() % (D + EXTRA), 0);
            for (g, (lab, gap)) in labels
                .chunks_mut(GROUP)
                .zip(gaps.chunks_mut(GROUP))
                .enumerate()
            {
                // The group's points transposed: coordinate t of the points in row t (the
                // lanes past the last point hold zeros and are not read back).
                let mut xt = [[0.0f32; GROUP]; D];
                for (r, point) in x[g * GROUP * D..(g * GROUP + lab.len()) * D]
                    .chunks_exact(D)
                    .enumerate()
                {
                    for (t, &v) in point.iter().enumerate() {
                        xt[t][r] = v;
                    }
                }
                let m = group_minima(&xt, packed);
                let mut b = [0.0f32; GROUP];
                let mut s = [0.0f32; GROUP];
                let mut l = [0u32; GROUP];
                // SAFETY: each array holds GROUP values of 4 bytes.
                unsafe {
                    $store(b.as_mut_ptr(), m.best);
                    $store(s.as_mut_ptr(), m.second);
                    $store(l.as_mut_ptr().cast(), m.label);
                }
                for r in 0..lab.len() {
                    lab[r] = l[r];
                    gap[r] = s[r] - b[r];
                }
            }
        }

        /// The `Minima` of the group's points `xt` (transposed) over every centroid of
        /// `packed`.
        #[inline]
        #[target_feature(enable = $features)]
        fn group_minima<const D: usize>(xt: &[[f32; GROUP]; D], packed: &Packed) -> Minima {
            let mut x = [$zero(); D];
            for (x, row) in x.iter_mut().zip(xt) {
                // SAFETY: each row holds GROUP values.
                *x = unsafe { $load(row.as_ptr()) };
            }
            let inf = $splat(f32::INFINITY);
            let mut m = Minima {
                best: inf,
                second: inf,
                label: $zero(),
            };
            let stride = D + EXTRA;
            let batches = packed.values.chunks_exact(BATCH * stride);
            let rest = batches.remainder();
            for c in batches {
                let mut dot = [$zero(); BATCH];
                for t in 0..D {
                    for u in 0..BATCH {
                        dot[u] = $fmadd(x[t], $splat(c[u * stride + t]), dot[u]);
                    }
                }
                for u in 0..BATCH {
                    let v = $add($splat(c[u * stride + D]), dot[u]);
                    m.take(v, &c[u * stride + D + 1]);
                }
            }
            for c in rest.chunks_exact(stride) {
                let mut dot = $zero();
                for t in 0..D {
                    dot = $fmadd(x[t], $splat(c[t]), dot);
                }
                m.take($add($splat(c[D]), dot), &c[D + 1]);
            }
            m
        }
    };
}

pub(crate) use small_kernel;
