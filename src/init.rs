//! Starting centroids of K-means.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use crate::backend::rank::squared_distances_avx2;
use crate::backend::rank::{squared_distance, squared_distances};
use crate::weights::Weights;

/// How K-means chooses its starting centroids.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Init {
    /// k distinct points drawn uniformly (scipy's `minit='points'`, faiss's default).
    #[default]
    RandomPoints,
    /// Greedy k-means++ (scikit-learn's default): each next centroid is the best of
    /// 2 + ⌊ln k⌋ points drawn with probability proportional to their (weighted) squared
    /// distance to the nearest one chosen so far, the one leaving the smallest total.
    KMeansPlusPlus,
    /// The plain k-means++ of Arthur & Vassilvitskii: one point drawn per step.
    KMeansPlusPlusPlain,
    /// k-means‖ (scalable k-means++, Spark's and dask-ml's start): `rounds` passes over the
    /// data each draw about `oversampling · k` points in proportion to their squared distance
    /// to the candidates so far; greedy k-means++ of the candidates, each weighted by the
    /// points nearest to it, gives the k starts. A handful of passes instead of k-means++'s
    /// k, so it is the k-means++-quality start of a streamed fit; [`Init::kmeans_parallel`]
    /// has the usual values.
    KMeansParallel {
        /// Sampling rounds (passes over the data, two each).
        rounds: usize,
        /// Points drawn per round, in multiples of k.
        oversampling: f64,
    },
    /// The caller's centroids, row-major `k x d`.
    Centroids(Vec<f64>),
}

impl Init {
    /// k-means‖ with 5 rounds drawing 2k points each (Bahmani et al.'s recommendation).
    ///
    /// ```
    /// let init = lloyd::Init::kmeans_parallel();
    /// assert_eq!(init, lloyd::Init::KMeansParallel { rounds: 5, oversampling: 2.0 });
    /// ```
    pub fn kmeans_parallel() -> Self {
        Init::KMeansParallel {
            rounds: 5,
            oversampling: 2.0,
        }
    }

    /// The caller's centroids (f32 or f64, row-major `k x d`).
    ///
    /// ```
    /// let init = lloyd::Init::given(&[0.0f32, 1.0, 2.0, 3.0]);
    /// assert_eq!(init, lloyd::Init::Centroids(vec![0.0, 1.0, 2.0, 3.0]));
    /// ```
    pub fn given<T: crate::real::Real>(centroids: &[T]) -> Self {
        Init::Centroids(centroids.iter().map(|v| v.to_f64()).collect())
    }
}

/// k distinct rows of `data`, drawn with `seed`: uniformly, or with probability in
/// proportion to the weights (a zero-weight row is never drawn; the caller checked that k
/// rows have a positive weight).
pub(crate) fn random_points(
    data: &[f32],
    weights: Option<Weights<'_>>,
    dim: usize,
    k: usize,
    seed: u64,
) -> Vec<f64> {
    let picks = random_rows(data.len() / dim, weights, k, seed);
    rows_of(data, dim, &picks)
}

/// The `k` distinct rows of `n` a random start takes (drawn in proportion to the weights):
/// a function of `n`, the weights and the seed alone, so a streamed fit draws the same.
pub(crate) fn random_rows(
    n: usize,
    weights: Option<Weights<'_>>,
    k: usize,
    seed: u64,
) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    match weights {
        None => rand::seq::index::sample(&mut rng, n, k).into_vec(),
        Some(w) => rand::seq::index::sample_weighted(&mut rng, n, |i| w.get(i), k)
            .map(|p| p.into_vec())
            .unwrap_or_else(|_| (0..n).filter(|&i| w.get(i) > 0.0).take(k).collect()),
    }
}

/// The rows `picks` of `data`, in f64.
pub(crate) fn rows_of(data: &[f32], dim: usize, picks: &[usize]) -> Vec<f64> {
    picks
        .iter()
        .flat_map(|i| data[i * dim..(i + 1) * dim].iter().map(|&v| f64::from(v)))
        .collect()
}

/// Rows per partial sum of the greedy k-means++ potentials: fixed, so the sums (and the
/// centroids chosen) do not depend on the thread count.
const ROWS_PER_SUM: usize = 2048;

/// The candidates greedy k-means++ draws at each step: 2 + ⌊ln k⌋, as scikit-learn.
pub(crate) fn greedy_candidates(k: usize) -> usize {
    2 + (k as f64).ln().floor() as usize
}

/// Greedy k-means++ (Arthur & Vassilvitskii; scikit-learn's default): the first centroid
/// drawn in proportion to the weights, then at each step `candidates` points drawn in
/// proportion to w · D² (D the distance to the nearest centroid chosen so far), keeping the
/// one that leaves the smallest potential Σ w · D². One candidate is the plain k-means++.
pub(crate) fn kmeans_plus_plus(
    data: &[f32],
    weights: Option<Weights<'_>>,
    dim: usize,
    k: usize,
    seed: u64,
    candidates: usize,
) -> Vec<f64> {
    let n = data.len() / dim;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w = |i: usize| weights.map_or(1.0, |w| w.get(i));
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let first = pick_weighted(&mut rng, n, w, w);
    let mut chosen = vec![first];
    let mut d2: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| f64::from(squared_distance(row(i), row(first))))
        .collect();
    while chosen.len() < k {
        // The same weights for every candidate of a step: their total is summed once.
        let total: f64 = (0..n).map(|i| w(i) * d2[i]).sum();
        let picks: Vec<usize> = (0..candidates.max(1))
            .map(|_| pick_weighted_from(&mut rng, n, |i| w(i) * d2[i], w, total))
            .collect();
        // Each candidate's potential, summed over fixed groups of rows in order (plain
        // k-means++ has one candidate, which needs none).
        let candidates = Candidates {
            data,
            weights,
            dim,
            d2: &d2,
            picks: &picks,
        };
        let partial: Vec<Vec<f64>> = if picks.len() == 1 {
            Vec::new()
        } else {
            (0..n.div_ceil(ROWS_PER_SUM))
                .into_par_iter()
                .map(|g| {
                    potentials(
                        &candidates,
                        g * ROWS_PER_SUM..((g + 1) * ROWS_PER_SUM).min(n),
                    )
                })
                .collect()
        };
        let mut potential = vec![0.0f64; picks.len()];
        for p in &partial {
            for (a, b) in potential.iter_mut().zip(p) {
                *a += b;
            }
        }
        // The lowest potential, the earliest candidate on ties.
        let best = (0..picks.len())
            .min_by(|&a, &b| potential[a].total_cmp(&potential[b]).then(a.cmp(&b)))
            .expect("at least one candidate");
        let next = picks[best];
        chosen.push(next);
        let centre = row(next);
        d2.par_chunks_mut(ROWS_PER_SUM)
            .zip(data.par_chunks(ROWS_PER_SUM * dim))
            .for_each(|(d, rows)| nearer(d, rows, centre));
    }
    rows_of(data, dim, &chosen)
}

/// A step's candidates, and what their potentials are measured against.
struct Candidates<'a> {
    data: &'a [f32],
    weights: Option<Weights<'a>>,
    dim: usize,
    /// Each point's squared distance to its nearest centroid so far.
    d2: &'a [f64],
    picks: &'a [usize],
}

impl Candidates<'_> {
    fn weight(&self, i: usize) -> f64 {
        self.weights.map_or(1.0, |w| w.get(i))
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Each pick's potential Σ w · min(D², distance to the pick²) over `rows`, in row order;
/// with AVX2 the same operations eight lanes wide (the same bits: no FMA).
fn potentials(c: &Candidates, rows: std::ops::Range<usize>) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the feature it is compiled for was just detected.
        return unsafe { potentials_avx2(c, rows) };
    }
    potentials_of(c, rows, squared_distances::<4>)
}

/// [`potentials`] with AVX2: eight candidates at a time (the last group padded with its
/// last candidate), their eight sums of lanes added at once after a transpose, in the
/// order [`squared_distance`] adds them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn potentials_avx2(c: &Candidates, rows: std::ops::Range<usize>) -> Vec<f64> {
    let (d2, picks) = (c.d2, c.picks);
    let (w, row) = (|i| c.weight(i), |i| c.row(i));
    let mut pot = vec![0.0f64; picks.len()];
    for (group, pot) in picks.chunks(8).zip(pot.chunks_mut(8)) {
        let bs: [&[f32]; 8] = std::array::from_fn(|p| row(group[p.min(group.len() - 1)]));
        for (i, &di) in d2.iter().enumerate().take(rows.end).skip(rows.start) {
            let e = eight_distances(row(i), &bs);
            for (p, &e) in pot.iter_mut().zip(&e) {
                *p += w(i) * f64::from(e).min(di);
            }
        }
    }
    pot
}

/// [`squared_distance`] from `a` to each of eight rows, the same bits: eight lanes of
/// partial sums a pair, then each pair's lanes added in order, all eight pairs at once.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn eight_distances(a: &[f32], bs: &[&[f32]; 8]) -> [f32; 8] {
    use std::arch::x86_64::*;
    assert!(bs.iter().all(|b| b.len() == a.len()));
    let full = a.len() / 8 * 8;
    let mut acc = [_mm256_setzero_ps(); 8];
    for s in (0..full).step_by(8) {
        // SAFETY: s + 8 <= full <= the length of `a` and of every `b` (asserted above).
        let x = unsafe { _mm256_loadu_ps(a.as_ptr().add(s)) };
        for (acc, b) in acc.iter_mut().zip(bs) {
            // SAFETY: as above.
            let t = _mm256_sub_ps(x, unsafe { _mm256_loadu_ps(b.as_ptr().add(s)) });
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(t, t));
        }
    }
    // Transposed: lane p of `lanes[l]` is lane l of pair p's partial sums.
    let [r0, r1, r2, r3, r4, r5, r6, r7] = acc;
    let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
    let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
    let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
    let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
    let (s0, s1) = (
        _mm256_shuffle_ps::<0x44>(t0, t2),
        _mm256_shuffle_ps::<0xEE>(t0, t2),
    );
    let (s2, s3) = (
        _mm256_shuffle_ps::<0x44>(t1, t3),
        _mm256_shuffle_ps::<0xEE>(t1, t3),
    );
    let (s4, s5) = (
        _mm256_shuffle_ps::<0x44>(t4, t6),
        _mm256_shuffle_ps::<0xEE>(t4, t6),
    );
    let (s6, s7) = (
        _mm256_shuffle_ps::<0x44>(t5, t7),
        _mm256_shuffle_ps::<0xEE>(t5, t7),
    );
    let lanes = [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ];
    let mut sum = lanes[0];
    for l in &lanes[1..] {
        sum = _mm256_add_ps(sum, *l);
    }
    let mut out = [0.0f32; 8];
    // SAFETY: `out` holds eight f32.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    if full < a.len() {
        for (o, b) in out.iter_mut().zip(bs) {
            let mut tail = 0.0f32;
            for (x, y) in a[full..].iter().zip(&b[full..]) {
                tail += (x - y) * (x - y);
            }
            *o += tail;
        }
    }
    out
}

#[inline(always)]
fn potentials_of(
    c: &Candidates,
    rows: std::ops::Range<usize>,
    four: impl Fn(&[f32], &[&[f32]; 4], &mut [f32; 4]),
) -> Vec<f64> {
    let (d2, picks) = (c.d2, c.picks);
    let (w, row) = (|i| c.weight(i), |i| c.row(i));
    let mut pot = vec![0.0f64; picks.len()];
    // Four candidates at a time share each row's loads; the rest one by one.
    let quads = picks.len() / 4 * 4;
    for (i, &di) in d2.iter().enumerate().take(rows.end).skip(rows.start) {
        for q in (0..quads).step_by(4) {
            let bs = [
                row(picks[q]),
                row(picks[q + 1]),
                row(picks[q + 2]),
                row(picks[q + 3]),
            ];
            let mut e = [0.0f32; 4];
            four(row(i), &bs, &mut e);
            for (p, e) in pot[q..q + 4].iter_mut().zip(e) {
                *p += w(i) * f64::from(e).min(di);
            }
        }
        for (p, &c) in pot[quads..].iter_mut().zip(&picks[quads..]) {
            let e = f64::from(squared_distance(row(i), row(c)));
            *p += w(i) * e.min(di);
        }
    }
    pot
}

/// `d[i] = min(d[i], |row i − centre|²)` for the rows of `rows`; with AVX2 eight lanes wide
/// (the same bits).
fn nearer(d: &mut [f64], rows: &[f32], centre: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the feature it is compiled for was just detected.
        unsafe { nearer_avx2(d, rows, centre) };
        return;
    }
    nearer_of(d, rows, centre, squared_distance);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn nearer_avx2(d: &mut [f64], rows: &[f32], centre: &[f32]) {
    // Eight rows at a time (a difference squared is the same either way round, so the
    // same bits as row by row).
    let dim = centre.len();
    let whole = d.len() / 8 * 8;
    let (d8, rest) = d.split_at_mut(whole);
    for (d, rows) in d8.chunks_exact_mut(8).zip(rows.chunks_exact(8 * dim)) {
        let bs: [&[f32]; 8] = std::array::from_fn(|p| &rows[p * dim..(p + 1) * dim]);
        for (d, e) in d.iter_mut().zip(eight_distances(centre, &bs)) {
            let e = f64::from(e);
            if e < *d {
                *d = e;
            }
        }
    }
    nearer_of(rest, &rows[whole * dim..], centre, |x, c| {
        let mut e = [0.0f32];
        squared_distances_avx2::<1>(x, &[c], &mut e);
        e[0]
    });
}

#[inline(always)]
fn nearer_of(
    d: &mut [f64],
    rows: &[f32],
    centre: &[f32],
    distance: impl Fn(&[f32], &[f32]) -> f32,
) {
    for (d, x) in d.iter_mut().zip(rows.chunks_exact(centre.len())) {
        let e = f64::from(distance(x, centre));
        if e < *d {
            *d = e;
        }
    }
}

/// Where in `[0, total)` a weighted draw lands, or None when nothing has weight (the
/// draw falls back to [`pick_live`]). Devices that sum the weights their own way draw the
/// same target from the same generator.
pub(crate) fn draw_target(rng: &mut ChaCha8Rng, total: f64) -> Option<f64> {
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    Some(rng.random::<f64>() * total)
}

/// One index drawn uniformly among those of positive `weight`: the draw when every point
/// is already a centroid.
pub(crate) fn pick_live(rng: &mut ChaCha8Rng, n: usize, weight: impl Fn(usize) -> f64) -> usize {
    let live: Vec<usize> = (0..n).filter(|&i| weight(i) > 0.0).collect();
    // Not empty: the weights were checked to have a positive total.
    live[rng.random_range(0..live.len())]
}

/// An index drawn with probability proportional to `weight(i)`; when all are zero (every
/// point already a centroid), one drawn uniformly among those whose `fallback` weight is
/// positive, so that a zero-weight point never starts a centroid.
pub(crate) fn pick_weighted(
    rng: &mut ChaCha8Rng,
    n: usize,
    weight: impl Fn(usize) -> f64,
    fallback: impl Fn(usize) -> f64,
) -> usize {
    let total: f64 = (0..n).map(&weight).sum();
    pick_weighted_from(rng, n, weight, fallback, total)
}

/// [`pick_weighted`] given the weights' `total` (summed in index order).
fn pick_weighted_from(
    rng: &mut ChaCha8Rng,
    n: usize,
    weight: impl Fn(usize) -> f64,
    fallback: impl Fn(usize) -> f64,
    total: f64,
) -> usize {
    let Some(mut target) = draw_target(rng, total) else {
        return pick_live(rng, n, fallback);
    };
    for i in 0..n {
        let wi = weight(i);
        if target < wi {
            return i;
        }
        target -= wi;
    }
    (0..n).rev().find(|&i| weight(i) > 0.0).unwrap_or(n - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eight distances at once are the bits of [`squared_distance`] one at a time, either
    /// way round, at lengths with and without a tail.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn eight_distances_are_those_one_at_a_time() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut state = 3u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / 16_777_216.0 - 0.5) * 1e3
        };
        for len in [1usize, 7, 8, 9, 32, 33, 100] {
            let a: Vec<f32> = (0..len).map(|_| next()).collect();
            let rows: Vec<Vec<f32>> = (0..8).map(|_| (0..len).map(|_| next()).collect()).collect();
            let bs: [&[f32]; 8] = std::array::from_fn(|p| rows[p].as_slice());
            // SAFETY: detected above.
            let got = unsafe { eight_distances(&a, &bs) };
            for (p, b) in bs.iter().enumerate() {
                assert_eq!(
                    got[p].to_bits(),
                    squared_distance(&a, b).to_bits(),
                    "len {len}"
                );
            }
        }
    }
}
