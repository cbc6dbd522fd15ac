//! One Lloyd pass on the CPU over the caller's rows: each task takes its rows a block at a
//! time into the frame, ranks, certifies against the caller's values
//! ([`SubSpace::certify`]) and adds the block to its cells' fixed-point sums. Nothing of the
//! size of the data is allocated but the labels, and the rows are read once, in place.
//!
//! The sums are exact, so the tasks' sums merge to the same bits whatever the number of
//! tasks, their order or the thread count, and a pass over parts of the rows merges into the
//! pass over the whole: an in-memory fit and one spread over a cluster take this one path.

use rayon::prelude::*;

use super::cell_sums::{CellSums, Halves, Labelled, error_exponent};
use super::exact::squared_f64_fast;
use super::framed::{BLOCK, Buffers, Ranked, SubSpace};
use super::rank::Ranker;
use crate::real::{Precision, Real};

/// Rows per task at least, and tasks per thread at most: each task holds k x d fixed-point
/// sums, zeroed and merged, so no more tasks than balance needs. The sums are exact, so the
/// split changes no bit of the result.
const TASK_ROWS: usize = 8192;
const TASKS_PER_THREAD: usize = 2;
const TASK_BYTES_BUDGET: usize = 256 << 20;

/// Values of float64 rows converted at a time for their sums (64 KiB).
const WIDE_VALUES: usize = 8192;

/// Every row's values in a pass's frame, as [`crate::frame::Frame::to_device_f32`] gives
/// them, converted once for all the passes of a fit, and whether every value lies in
/// [−1, 1] ([`all_inside`], also once: at d = 768 testing each block at each pass had cost a
/// twelfth of the ranking).
#[derive(Clone, Copy)]
pub(crate) struct Converted<'a> {
    pub(crate) values: &'a [f32],
    pub(crate) inside: bool,
}

/// Whether every value of `x` lies in [−1, 1] (a value that is not a number does not): by
/// the magnitude's bits, an integer maximum the compiler vectorises (a float maximum it
/// cannot reorder).
pub(crate) fn all_inside(x: &[f32]) -> bool {
    x.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff)) <= 1.0f32.to_bits()
}

/// Adds labelled rows to a task's sums, with `weights` (where given) one per row.
pub(crate) fn add_block<V: Real>(
    sums: &mut CellSums,
    halves: &mut Halves,
    pass: &Labelled<'_, V>,
    weights: Option<&[f64]>,
    inside: bool,
) {
    let rows = 0..pass.labels.len();
    match weights {
        None => sums.add_unweighted_halves(halves, pass, rows, inside),
        Some(w) => {
            let dim = sums.dim;
            for i in rows {
                let x = &pass.data[i * dim..(i + 1) * dim];
                let l = pass.labels[i] as usize;
                sums.add(l, x, Some(w[i]), pass.dist[i], pass.first + i as u64);
            }
        }
    }
}

/// The statistics of one pass of `rows` (row-major, the sub-space's dimension, the caller's
/// values; `converted`, where given, their values in the frame) against `space`'s
/// centroids, with each row's label in `labels` (as many as rows).
/// `weights` are in the frame's unit, one per row; `first` is the row of `rows`' first in
/// the whole. With `bounded`, a row outside the frame (a coordinate beyond ±1 in its units:
/// rows the frame was not built from) is an error, its index in `rows`; without, such rows
/// (samples of a law, drawn in the identity frame) are summed exactly all the same.
pub(crate) fn lloyd_pass<T: Real>(
    space: &SubSpace,
    rows: &[T],
    converted: Option<Converted<'_>>,
    weights: Option<&[f64]>,
    first: u64,
    bounded: bool,
    pass: &mut Pass,
) -> Result<(), usize> {
    let c = &space.centroids;
    let (dim, k) = (c.dim, c.k());
    let n = rows.len() / dim;
    pass.labels.resize(n, 0);
    let error_exp = error_exponent(&c.c64, dim);
    let ranker = Ranker::new(c);
    let per_task_bytes = (2 * k * dim + 4 * k) * 16;
    let tasks = (n / TASK_ROWS)
        .clamp(1, TASKS_PER_THREAD * rayon::current_num_threads())
        .min((TASK_BYTES_BUDGET / per_task_bytes).max(1));
    let len = n.div_ceil(tasks).max(1);
    if pass.tasks.len() < tasks {
        pass.tasks.resize_with(tasks, Default::default);
    }
    let Pass {
        labels,
        sums: total,
        tasks: kept,
    } = pass;
    let parts: Vec<Result<(), usize>> = labels
        .par_chunks_mut(len)
        .zip(rows.par_chunks(len * dim))
        .zip(kept.par_iter_mut())
        .enumerate()
        .map(|(t, ((labels, rows), kept))| {
            let start = t * len;
            // Taken out of the shared vector for the task: its fields, written for every
            // block, would otherwise share cache lines with the next task's.
            let (mut sums, mut halves) = std::mem::take(kept);
            sums.reset(k, dim, error_exp);
            halves.ready(k * dim);
            let mut buf = Buffers::default();
            let mut wide: Vec<f64> = Vec::new();
            for (b, (labels, rows)) in labels
                .chunks_mut(BLOCK)
                .zip(rows.chunks(BLOCK * dim))
                .enumerate()
            {
                let (r, row0) = (labels.len(), start + b * BLOCK);
                if converted.is_none() {
                    buf.x.resize(r * dim, 0.0);
                }
                buf.gaps.resize(r, 0.0);
                buf.dist.resize(r, 0.0);
                let (gaps, dist) = (&mut buf.gaps[..r], &mut buf.dist[..r]);
                let (x, inside) = match converted {
                    Some(c) => (&c.values[row0 * dim..(row0 + r) * dim], c.inside),
                    None => {
                        let x = &mut buf.x[..r * dim];
                        space.frame.columns_to_device_f32(rows, dim, 0, x);
                        (&*x, all_inside(x))
                    }
                };
                // The row only where one is out.
                if bounded && !inside {
                    let i = x.iter().position(|v| !all_inside(std::slice::from_ref(v)));
                    let i = i.unwrap_or(0);
                    return Err(row0 + i / dim);
                }
                ranker.rank_rows(x, labels, gaps, &mut buf.scratch);
                space.certify(Ranked {
                    x,
                    rows,
                    row_len: dim,
                    first: 0,
                    labels,
                    gaps,
                    terms: ranker.terms(),
                    dist,
                });
                let at = first + row0 as u64;
                let weights = weights.map(|w| &w[row0..row0 + r]);
                // The sums and errors of float64 rows read their values in the frame in f64:
                // the f32 the ranking reads keep 24 bits of each value's offset from the
                // frame's origin, and centroids summed from them were means to 2⁻²⁴ of the
                // extent, inertias to about 10⁻⁹.
                if T::PRECISION == Precision::F64 {
                    // A few rows at a time, so that their f64 values stay in L1 between the
                    // conversion and the sums. Inside the frame in f32, they lie within
                    // 2⁻²⁴ of it in f64, which the sums' halves hold as well.
                    let group = (WIDE_VALUES / dim).max(1);
                    for (g, rows) in rows.chunks(group * dim).enumerate() {
                        let part = g * group..g * group + rows.len() / dim;
                        wide.resize(rows.len(), 0.0);
                        space.frame.columns_to_device_f64(rows, dim, 0, &mut wide);
                        let labels = &labels[part.clone()];
                        let dist = &mut dist[part.clone()];
                        for ((x, &l), d) in wide.chunks_exact(dim).zip(labels).zip(&mut *dist) {
                            let l = l as usize;
                            *d = squared_f64_fast(x, &c.c64[l * dim..(l + 1) * dim]);
                        }
                        let pass = Labelled {
                            data: &wide[..],
                            labels,
                            dist,
                            first: at + part.start as u64,
                        };
                        let weights = weights.map(|w| &w[part]);
                        add_block(&mut sums, &mut halves, &pass, weights, inside);
                    }
                } else {
                    let pass = Labelled {
                        data: x,
                        labels,
                        dist,
                        first: at,
                    };
                    add_block(&mut sums, &mut halves, &pass, weights, inside);
                }
            }
            sums.carry(&mut halves);
            *kept = (sums, halves);
            Ok(())
        })
        .collect();
    // The first row outside, in the order of the tasks.
    parts.iter().try_for_each(|p| *p)?;
    total.reset(k, dim, error_exp);
    for (sums, _) in &kept[..parts.len()] {
        total
            .merge(sums)
            .expect("the tasks of one pass share their centroids");
    }
    total.fill_points_with(|row, out| {
        let i = (row - first) as usize;
        space
            .frame
            .columns_to_device_f32(&rows[i * dim..(i + 1) * dim], dim, 0, out);
    });
    Ok(())
}

/// What a pass leaves: each row's label and the merged sums; and each task's sums, kept for
/// the next pass of a fit. Allocated afresh, the tasks' sums faulted in all their pages
/// again at every pass (25 MB a pass at k = 256, d = 768).
pub(crate) struct Pass {
    pub(crate) labels: Vec<u32>,
    pub(crate) sums: CellSums,
    tasks: Vec<(CellSums, Halves)>,
}

impl Pass {
    /// Before any pass: `n` labels 0 and empty sums of `k` cells.
    pub(crate) fn new(n: usize, k: usize, dim: usize) -> Self {
        Pass {
            labels: vec![0; n],
            sums: CellSums::zeros(k, dim, 0),
            tasks: Vec::new(),
        }
    }
}

impl Default for Pass {
    fn default() -> Self {
        Pass::new(0, 0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu_dense::{DenseCentroids, assign_dense, reduce_dense};
    use crate::frame::Extent;
    use crate::weights::Weights;

    fn random(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        }
    }

    /// The test by the magnitude's bits: ±1 and subnormals are inside; the next f32 beyond
    /// 1, infinities and values that are not numbers are not; so is every position of a
    /// vector-width remainder.
    #[test]
    fn inside_is_every_magnitude_at_most_one() {
        let above = f32::from_bits(1.0f32.to_bits() + 1);
        assert!(all_inside(&[]));
        assert!(all_inside(&[1.0, -1.0, 0.0, -0.0, f32::from_bits(1), 0.5]));
        for bad in [
            above,
            -above,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
        ] {
            for len in [1, 7, 16, 37] {
                for at in [0, len / 2, len - 1] {
                    let mut x = vec![0.25f32; len];
                    x[at] = bad;
                    assert!(!all_inside(&x), "{bad} at {at} of {len}");
                }
            }
        }
    }

    /// The pass over the caller's rows (converted block by block, or read converted) gives
    /// the statistics and labels of assigning the converted points, then reducing them: to
    /// the bit, on sizes that are not multiples of a block or a task (one row; more rows than
    /// one task), weighted and not, on data far from the origin.
    #[test]
    fn a_pass_equals_assigning_then_reducing() {
        let mut rnd = random(99);
        for (n, dim, k, weighted) in [
            (1usize, 3usize, 1usize, false),
            (7, 5, 3, true),
            (257, 17, 33, false),
            (20_001, 5, 33, false),
            (9_000, 8, 12, true),
        ] {
            let data: Vec<f64> = (0..n * dim).map(|_| 1e4 + 3.0 * rnd()).collect();
            let weights: Vec<f32> = (0..n).map(|_| (rnd() + 1.0) as f32).collect();
            let w = weighted.then_some(Weights::from(&weights));
            let frame = Extent::of_weighted(&data, dim, w).unwrap().frame();
            let caller: Vec<f64> = data[..k * dim].to_vec();
            let c = frame.to_device_f64(&caller);
            let space = SubSpace::of_device(frame.clone(), &c, &caller, dim);
            let wd = w.map(|w| frame.weights_to_device(w));
            let points = frame.to_device_f32(&data);
            let mut labels = vec![0u32; n];
            let mut dist = vec![0f64; n];
            assign_dense(
                &points,
                &DenseCentroids::new(&c, dim),
                &mut labels,
                &mut dist,
            );
            let e = error_exponent(&c, dim);
            // The sums and errors of float64 rows read their f64 values in the frame.
            let wide = frame.to_device_f64(&data);
            let dist: Vec<f64> = wide
                .chunks_exact(dim)
                .zip(&labels)
                .map(|(x, &l)| crate::backend::exact::squared_f64(x, &c[l as usize * dim..][..dim]))
                .collect();
            let want = reduce_dense(&wide, wd.as_deref(), dim, k, &labels, &dist, e, 5);
            // One pass leaves its memory to the next: the second reuses the first's.
            let mut pass = Pass::default();
            let read = Converted {
                values: &points,
                inside: all_inside(&points),
            };
            for converted in [None, Some(read), None] {
                lloyd_pass(&space, &data, converted, wd.as_deref(), 5, true, &mut pass).unwrap();
                assert_eq!(pass.labels, labels, "n{n} d{dim} k{k}");
                // As text: an empty cell's extremes hold NaN, which equals nothing.
                let sums = &pass.sums;
                assert_eq!(format!("{sums:?}"), format!("{want:?}"), "n{n} d{dim} k{k}");
            }
        }
    }

    /// With `bounded`, a row outside the frame is refused with its index; without, it is
    /// summed.
    #[test]
    fn a_row_outside_the_frame_is_refused_where_bounded() {
        let data = [0.0f64, 1.0, 2.0, 3.0, 40.0, 5.0];
        let frame = Extent::of(&data[..4], 2).unwrap().frame();
        let caller = [0.0, 1.0];
        let c = frame.to_device_f64(&caller);
        let space = SubSpace::of_device(frame, &c, &caller, 2);
        let mut pass = Pass::default();
        assert_eq!(
            lloyd_pass(&space, &data, None, None, 0, true, &mut pass).unwrap_err(),
            2
        );
        lloyd_pass(&space, &data, None, None, 0, false, &mut pass).unwrap();
        assert_eq!(pass.sums.counts, vec![3]);
    }

    /// A pass refused after some of its blocks were summed leaves nothing in the memory the
    /// next pass reuses: that pass sums what a fresh one sums.
    #[test]
    fn a_refused_pass_leaves_no_sums_behind() {
        let n = 3 * BLOCK + 2;
        let mut data: Vec<f64> = (0..2 * n).map(|i| (i % 7) as f64).collect();
        let frame = Extent::of(&data, 2).unwrap().frame();
        data[2 * (n - 1)] = 40.0;
        let caller = [0.0, 1.0, 5.0, 5.0];
        let c = frame.to_device_f64(&caller);
        let space = SubSpace::of_device(frame, &c, &caller, 2);
        let mut reused = Pass::default();
        assert_eq!(
            lloyd_pass(&space, &data, None, None, 0, true, &mut reused).unwrap_err(),
            n - 1
        );
        lloyd_pass(&space, &data, None, None, 0, false, &mut reused).unwrap();
        let mut fresh = Pass::default();
        lloyd_pass(&space, &data, None, None, 0, false, &mut fresh).unwrap();
        let (a, b) = (&reused.sums, &fresh.sums);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(reused.labels, fresh.labels);
    }
}
