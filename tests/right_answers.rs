//! Issue #9: right answers on data far from the origin, at extreme scales, in float64.

mod common;

use common::gpu::gpu;
use lloyd::{Codebook, Device, Init, KMeans};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// Squared f64 distance between a row of data and a centroid.
fn d2(x: &[f64], c: &[f64]) -> f64 {
    x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum()
}

/// Every label is the nearest of `centroids`, judged with direct f64 differences, up to the
/// rounding of f32 arithmetic on data centred on `origin`; returns the sum of squared
/// distances to the labelled centroids.
fn assert_nearest(data: &[f64], dim: usize, centroids: &[f64], labels: &[u32], what: &str) -> f64 {
    let n = data.len() / dim;
    let k = centroids.len() / dim;
    let mut origin = vec![0.0; dim];
    for x in data.chunks_exact(dim) {
        for (o, v) in origin.iter_mut().zip(x) {
            *o += v / n as f64;
        }
    }
    let spread = |p: &[f64]| d2(p, &origin).sqrt();
    let mut sse = 0.0;
    let mut wrong = 0;
    for (i, x) in data.chunks_exact(dim).enumerate() {
        let mut best = (0usize, f64::INFINITY);
        for j in 0..k {
            let d = d2(x, &centroids[j * dim..(j + 1) * dim]);
            if d < best.1 {
                best = (j, d);
            }
        }
        let l = labels[i] as usize;
        let c = &centroids[l * dim..(l + 1) * dim];
        let dl = d2(x, c);
        sse += dl;
        // f32 resolution of the centred values and of the direct differences.
        let eps = 6e-8;
        let r = spread(x) + spread(c) + spread(&centroids[best.0 * dim..(best.0 + 1) * dim]);
        let slack = 8.0 * eps * (dl.sqrt() + best.1.sqrt()) * r + 8.0 * eps * dl + 1e-300;
        if dl - best.1 > slack {
            wrong += 1;
        }
    }
    assert_eq!(
        wrong, 0,
        "{what}: {wrong} of {n} labels are not the nearest centroid"
    );
    sse
}

fn gaussian64(n: usize, dim: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let g = Normal::new(0.0f64, 1.0).unwrap();
    (0..n * dim).map(|_| g.sample(&mut rng)).collect()
}

fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    d.extend(gpu());
    d
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// The case: N(0, I₈) + offset, n = 20 000, k = 64. Every label is the nearest
/// centroid and the reported error is the true one, on both devices.
#[test]
fn shifted_gaussian_labels_are_the_nearest_centroids() {
    let (n, dim, k) = (20_000, 8, 64);
    let base = gaussian64(n, dim, 1);
    for offset in [1000.0f32, 10_000.0] {
        let data: Vec<f32> = base.iter().map(|&v| v as f32 + offset).collect();
        for dev in devices() {
            let fit = KMeans::new(k)
                .iterations(20)
                .device(dev.clone())
                .fit(&data, dim)
                .unwrap();
            let what = format!("offset {offset} on {dev}");
            let sse = assert_nearest(
                &f64s(&data),
                dim,
                fit.codebook.centroids(),
                &fit.labels,
                &what,
            );
            assert!(
                (fit.inertia - sse).abs() <= 1e-4 * sse,
                "{what}: inertia {} but the labels' error is {sse}",
                fit.inertia
            );
        }
    }
}

/// Encoding against a codebook far from the origin.
#[test]
fn encoding_far_from_the_origin_finds_the_nearest_centroid() {
    let dim = 8;
    let base = gaussian64(20_000, dim, 2);
    let cents = gaussian64(64, dim, 3);
    for offset in [1000.0f32, 10_000.0] {
        let data: Vec<f32> = base.iter().map(|&v| v as f32 + offset).collect();
        let cb: Vec<f32> = cents.iter().map(|&v| v as f32 + offset).collect();
        let codebook = Codebook::new(cb.clone(), dim).unwrap();
        for dev in devices() {
            let (labels, mse, _) = codebook.encode_on(&data, &dev).unwrap();
            let what = format!("encode at offset {offset} on {dev}");
            let sse = assert_nearest(&f64s(&data), dim, &f64s(&cb), &labels, &what);
            let want = sse / 20_000.0;
            assert!(
                (mse - want).abs() <= 1e-4 * want,
                "{what}: mse {mse}, true {want}"
            );
        }
    }
}

/// Geographic coordinates: latitude and longitude around (40.7, −74.0), spread 0.05.
#[test]
fn geographic_coordinates() {
    let n = 10_000;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let g = Normal::new(0.0f64, 0.05).unwrap();
    let data: Vec<f32> = (0..n)
        .flat_map(|_| {
            [
                (40.7 + g.sample(&mut rng)) as f32,
                (-74.0 + g.sample(&mut rng)) as f32,
            ]
        })
        .collect();
    for dev in devices() {
        let fit = KMeans::new(32)
            .iterations(30)
            .init(Init::KMeansPlusPlus)
            .device(dev.clone())
            .fit(&data, 2)
            .unwrap();
        let sse = assert_nearest(
            &f64s(&data),
            2,
            fit.codebook.centroids(),
            &fit.labels,
            &format!("geographic on {dev}"),
        );
        assert!((fit.inertia - sse).abs() <= 1e-4 * sse);
    }
}
