//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod gpu;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// `n` points in `dim` dimensions around `centers` well-separated blob centres.
pub fn blobs(n: usize, dim: usize, centers: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0f32, 0.3).unwrap();
    let mut out = Vec::with_capacity(n * dim);
    for i in 0..n {
        let c = i % centers;
        for j in 0..dim {
            let centre = if j % centers == c { 10.0 } else { 0.0 } + c as f32;
            out.push(centre + noise.sample(&mut rng));
        }
    }
    out
}

/// `n x dim` standard normal values.
pub fn gaussian(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let g = Normal::new(0.0f32, 1.0).unwrap();
    (0..n * dim).map(|_| g.sample(&mut rng)).collect()
}

/// Nearest centroid by brute force in f64, lowest index on ties: the reference assignment.
pub fn brute_labels(data: &[f32], dim: usize, centroids: &[f64]) -> Vec<(u32, f64)> {
    data.chunks_exact(dim)
        .map(|x| {
            let mut best = (0u32, f64::INFINITY);
            for (j, c) in centroids.chunks_exact(dim).enumerate() {
                let d: f64 = x
                    .iter()
                    .zip(c)
                    .map(|(a, b)| (f64::from(*a) - *b).powi(2))
                    .sum();
                if d < best.1 {
                    best = (j as u32, d);
                }
            }
            best
        })
        .collect()
}

/// CPU K-means run one iteration per block of `stream` (`block` values each, `dim`
/// columns), starting from the stream's first `n` points: the randomized Lloyd method with
/// fresh samples, as the GPU runs it on its own stream.
pub fn cpu_steps_over_blocks(stream: &[f32], block: usize, n: usize, dim: usize) -> Vec<f64> {
    let mut centroids: Vec<f64> = stream[..n * dim].iter().map(|&v| f64::from(v)).collect();
    for samples in stream.chunks_exact(block) {
        centroids = lloyd::KMeans::new(n)
            .init(lloyd::Init::Centroids(centroids))
            .iterations(1)
            .tolerance(0.0)
            .device(lloyd::Device::Cpu)
            .fit(samples, dim)
            .unwrap()
            .codebook
            .centroids()
            .to_vec();
    }
    centroids
}
