//! Product-quantization codes (and a single codebook's labels: one sub-space) on the CPU in
//! one pass over the data: each task takes a block of rows through every sub-space (its
//! sub-vectors converted into the sub-space's frame, ranked, certified), so the rows are
//! read once, in place, and nothing of the size of the data is allocated but the codes.
//!
//! Labels are certified against the caller's values ([`SubSpace::certify`]).

use rayon::prelude::*;

use super::framed::{BLOCK, Buffers, Ranked, SubSpace};
use super::rank::Ranker;
use crate::real::Real;

/// The codes of the rows of `data` (`dim` columns, split evenly over `subs`), row-major
/// `n x m`, each the nearest centroid of its sub-space to the caller's values (ties to the
/// lowest index) stored as `code` makes it (u8, u16 or u32, written once), and each
/// sub-space's sum of squared distances in its frame's units: summed over each block of
/// rows, then over the blocks in order, so the same bits whatever the thread count.
pub(crate) fn encode<T: Real, C: Copy + Default + Send>(
    data: &[T],
    dim: usize,
    subs: &[SubSpace],
    code: impl Fn(u32) -> C + Sync,
) -> (Vec<C>, Vec<f64>) {
    let m = subs.len();
    let dsub = dim / m;
    let n = data.len() / dim;
    let rankers: Vec<Ranker> = subs.iter().map(|s| Ranker::new(&s.centroids)).collect();
    let mut codes = vec![C::default(); n * m];
    let block_sums: Vec<Vec<f64>> = codes
        .par_chunks_mut(BLOCK * m)
        .zip(data.par_chunks(BLOCK * dim))
        .map_init(Buffers::default, |buf, (codes, rows)| {
            let r = rows.len() / dim;
            buf.x.resize(r * dsub, 0.0);
            buf.labels.resize(r, 0);
            buf.gaps.resize(r, 0.0);
            buf.dist.resize(r, 0.0);
            let mut sums = Vec::with_capacity(m);
            for (j, (sub, ranker)) in subs.iter().zip(&rankers).enumerate() {
                let x = &mut buf.x[..r * dsub];
                sub.frame.columns_to_device_f32(rows, dim, j * dsub, x);
                let (labels, gaps) = (&mut buf.labels[..r], &mut buf.gaps[..r]);
                ranker.rank_rows(x, labels, gaps, &mut buf.scratch);
                let dist = &mut buf.dist[..r];
                sub.certify(Ranked {
                    x,
                    rows,
                    row_len: dim,
                    first: j * dsub,
                    labels,
                    gaps,
                    terms: ranker.terms(),
                    dist,
                });
                for (row, &l) in codes.chunks_exact_mut(m).zip(labels.iter()) {
                    row[j] = code(l);
                }
                sums.push(dist.iter().sum::<f64>());
            }
            sums
        })
        .collect();
    let mut sse = vec![0.0f64; m];
    for sums in &block_sums {
        for (s, b) in sse.iter_mut().zip(sums) {
            *s += b;
        }
    }
    (codes, sse)
}
