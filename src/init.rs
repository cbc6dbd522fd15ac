//! Starting centroids of K-means.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::backend::cpu_dense::squared_distance;

/// How K-means chooses its starting centroids.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Init {
    /// k distinct points drawn uniformly (scipy's `minit='points'`, faiss's default).
    #[default]
    RandomPoints,
    /// k-means++ (Arthur & Vassilvitskii): each next centroid drawn with probability
    /// proportional to its squared distance to the nearest one chosen so far.
    KMeansPlusPlus,
    /// The caller's centroids, row-major `k x d`.
    Centroids(Vec<f32>),
}

/// k distinct rows of `data`, drawn with `seed`.
pub(crate) fn random_points(data: &[f32], dim: usize, k: usize, seed: u64) -> Vec<f64> {
    let n = data.len() / dim;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let picks = rand::seq::index::sample(&mut rng, n, k);
    picks
        .iter()
        .flat_map(|i| data[i * dim..(i + 1) * dim].iter().map(|&v| f64::from(v)))
        .collect()
}

/// k-means++ seeding; weights (when given) multiply the squared distances, as in
/// scikit-learn.
pub(crate) fn kmeans_plus_plus(
    data: &[f32],
    weights: Option<&[f32]>,
    dim: usize,
    k: usize,
    seed: u64,
) -> Vec<f64> {
    let n = data.len() / dim;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w = |i: usize| weights.map_or(1.0, |w| f64::from(w[i]));
    let first = pick_weighted(&mut rng, n, w);
    let mut chosen = vec![first];
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let mut d2: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| f64::from(squared_distance(row(i), row(first))))
        .collect();
    while chosen.len() < k {
        let next = pick_weighted(&mut rng, n, |i| w(i) * d2[i]);
        chosen.push(next);
        d2.par_iter_mut().enumerate().for_each(|(i, d)| {
            let e = f64::from(squared_distance(row(i), row(next)));
            if e < *d {
                *d = e;
            }
        });
    }
    chosen
        .iter()
        .flat_map(|&i| row(i).iter().map(|&v| f64::from(v)))
        .collect()
}

/// An index drawn with probability proportional to `weight(i)`; uniform when all are zero
/// (every point already a centroid).
fn pick_weighted(rng: &mut ChaCha8Rng, n: usize, weight: impl Fn(usize) -> f64) -> usize {
    let total: f64 = (0..n).map(&weight).sum();
    if total.is_nan() || total <= 0.0 {
        return rng.random_range(0..n);
    }
    let mut target = rng.random::<f64>() * total;
    for i in 0..n {
        let wi = weight(i);
        if target < wi {
            return i;
        }
        target -= wi;
    }
    (0..n).rev().find(|&i| weight(i) > 0.0).unwrap_or(n - 1)
}
