//! k-means‖ (Bahmani et al., "Scalable k-means++", 2012): a few passes over the data each
//! draw about ℓ points at once, in proportion to their squared distance to the candidates so
//! far; the candidates, weighted by the points nearest to each, are then reduced to k by
//! greedy k-means++. It needs a handful of passes instead of k-means++'s k, so it suits data
//! read from disk a chunk at a time and data spread over machines (Spark's and dask-ml's
//! default start).
//!
//! Every draw is a function of the seed, the round and the row alone, and every sum is exact,
//! so the start is the same however the points are chunked: a streamed fit and an in-memory
//! fit start from the same centroids.

use rayon::prelude::*;

use crate::backend::cpu_dense::{DenseCentroids, assign_dense};
use crate::error::Result;
use crate::exact_sum::ExactSum;
use crate::init::{greedy_candidates, kmeans_plus_plus, random_rows};
use crate::weights::Weights;

/// What a pass calls for each chunk: its first row, its points and their weights.
pub(crate) type ChunkVisitor<'a> = dyn FnMut(usize, &[f32], Option<Weights<'_>>) -> Result<()> + 'a;

/// Points in frame units (f32) that can be read in passes, chunk by chunk, or a row at a
/// time.
pub(crate) trait Passes {
    /// Number of rows.
    fn rows(&self) -> usize;
    /// Values per row.
    fn dim(&self) -> usize;
    /// Calls `f(first_row, points, weights)` for every chunk, in row order.
    fn pass(&mut self, f: &mut ChunkVisitor<'_>) -> Result<()>;
    /// Row `i`.
    fn row(&mut self, i: usize) -> Result<Vec<f32>>;
    /// Rows `picks`, in that order, in f64.
    fn rows_at(&mut self, picks: &[usize]) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(picks.len() * self.dim());
        for &i in picks {
            out.extend(self.row(i)?.into_iter().map(f64::from));
        }
        Ok(out)
    }
    /// The weights, if any and if they are in memory (for the first draw).
    fn weights(&self) -> Option<Weights<'_>>;
}

/// Points held in memory, as [`Passes`].
pub(crate) struct InMemory<'a> {
    pub points: &'a [f32],
    pub weights: Option<Weights<'a>>,
    pub dim: usize,
}

impl Passes for InMemory<'_> {
    fn rows(&self) -> usize {
        self.points.len() / self.dim
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn pass(&mut self, f: &mut ChunkVisitor<'_>) -> Result<()> {
        f(0, self.points, self.weights)
    }
    fn row(&mut self, i: usize) -> Result<Vec<f32>> {
        Ok(self.points[i * self.dim..(i + 1) * self.dim].to_vec())
    }
    fn weights(&self) -> Option<Weights<'_>> {
        self.weights
    }
}

/// A uniform draw in [0, 1) for row `row` in round `round`: a hash of the three, so that no
/// draw depends on how the rows are chunked or which thread sees them.
fn uniform(seed: u64, round: usize, row: usize) -> f64 {
    let mut z = seed
        ^ (round as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (row as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    // splitmix64's finaliser.
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Each chunk's points' weighted squared distances to the nearest candidate, and their
/// candidates (ties to the lowest index).
fn nearest(
    points: &[f32],
    weights: Option<Weights<'_>>,
    c: &DenseCentroids,
) -> (Vec<u32>, Vec<f64>) {
    let n = points.len() / c.dim;
    let mut labels = vec![0u32; n];
    let mut dist = vec![0f64; n];
    assign_dense(points, c, &mut labels, &mut dist);
    if let Some(w) = weights {
        dist.par_iter_mut()
            .enumerate()
            .for_each(|(i, d)| *d *= w.get(i));
    }
    (labels, dist)
}

/// k-means‖'s k starting centroids (frame units): `rounds` rounds drawing about
/// `oversampling · k` points each, then greedy k-means++ of the weighted candidates.
pub(crate) fn kmeans_parallel(
    points: &mut dyn Passes,
    k: usize,
    seed: u64,
    rounds: usize,
    oversampling: f64,
) -> Result<Vec<f64>> {
    let (n, dim) = (points.rows(), points.dim());
    let ell = oversampling * k as f64;
    let first = random_rows(n, points.weights(), 1, seed)[0];
    let mut chosen = vec![first];
    let mut candidates: Vec<f32> = points.row(first)?;
    for round in 0..rounds {
        let c = DenseCentroids::new(
            &candidates.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            dim,
        );
        // ψ, exactly: the same bits whatever the chunks.
        let mut psi = ExactSum::default();
        points.pass(&mut |_, x, w| {
            for d in nearest(x, w, &c).1 {
                psi.add(d);
            }
            Ok(())
        })?;
        let psi = psi.value();
        if psi <= 0.0 {
            break; // every point is a candidate already
        }
        let mut drawn: Vec<usize> = Vec::new();
        points.pass(&mut |first_row, x, w| {
            let d = nearest(x, w, &c).1;
            drawn.extend(
                d.iter()
                    .enumerate()
                    .filter(|&(i, &d)| uniform(seed, round, first_row + i) < ell * d / psi)
                    .map(|(i, _)| first_row + i),
            );
            Ok(())
        })?;
        for i in drawn {
            candidates.extend(points.row(i)?);
            chosen.push(i);
        }
    }
    if chosen.len() <= k {
        // Fewer candidates than centroids (tiny data, or every point already drawn): the
        // rest are random rows, as a random start takes them.
        let mut rows = chosen;
        for r in random_rows(n, points.weights(), k, seed ^ 0x5EED) {
            if rows.len() == k {
                break;
            }
            if !rows.contains(&r) {
                rows.push(r);
            }
        }
        return points.rows_at(&rows);
    }
    // Each candidate weighs the points nearest to it (their weights, exactly).
    let c = DenseCentroids::new(
        &candidates.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
        dim,
    );
    let mut mass: Vec<ExactSum> = vec![ExactSum::default(); chosen.len()];
    points.pass(&mut |_, x, w| {
        let (labels, _) = nearest(x, None, &c);
        for (i, &l) in labels.iter().enumerate() {
            mass[l as usize].add(w.map_or(1.0, |w| w.get(i)));
        }
        Ok(())
    })?;
    let weights: Vec<f64> = mass.iter().map(ExactSum::value).collect();
    Ok(kmeans_plus_plus(
        &candidates,
        Some(Weights::F64(&weights)),
        dim,
        k,
        seed,
        greedy_candidates(k),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_uniform_and_depend_on_seed_round_and_row() {
        let u: Vec<f64> = (0..100_000).map(|i| uniform(7, 1, i)).collect();
        let mean = u.iter().sum::<f64>() / u.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        assert!(u.iter().all(|&v| (0.0..1.0).contains(&v)));
        assert_ne!(uniform(7, 1, 3), uniform(7, 2, 3));
        assert_ne!(uniform(7, 1, 3), uniform(8, 1, 3));
        assert_eq!(uniform(7, 1, 3), uniform(7, 1, 3));
    }
}
