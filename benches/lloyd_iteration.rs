//! One Lloyd iteration, 1-D (randomized Lloyd on N(0,1) samples) and d-D (K-means), per
//! device, as a user's fit sees it: every timed iteration belongs to a fresh fit from its
//! initial centroids (the 1-D quantiles, k random points), iterations 2 to 100 of it (the
//! first apart). Set-up (sampling, sorting, upload) is outside the timed loop. Reusing one
//! solver across samples would time the converged state, where 1-D boundaries barely move:
//! 5–50× less than a real fit.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lloyd::stepper::Stepper;
use lloyd::{Device, Law};

fn devices() -> Vec<Device> {
    // LLOYD_BENCH_DEVICES=cpu,gpu picks the devices; the CPU alone by default.
    std::env::var("LLOYD_BENCH_DEVICES")
        .unwrap_or_else(|_| "cpu".into())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Iterations timed per fit: 2 to 100 of a 100-iteration fit.
const FIT_ITERATIONS: u64 = 99;

/// `iters` iterations as fits run them (on a GPU: one submission, one read-back), each fit
/// fresh from `fresh()`, its first iteration untimed.
fn timed_fits(fresh: &mut dyn FnMut() -> Stepper<'static>, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let mut s = fresh();
        s.run(1).unwrap();
        let count = left.min(FIT_ITERATIONS);
        let t = Instant::now();
        s.run(count as usize).unwrap();
        total += t.elapsed();
        left -= count;
    }
    total
}

fn one_d(c: &mut Criterion) {
    let mut g = c.benchmark_group("lloyd1d_iteration");
    for device in devices() {
        for m in [200_000usize, 1_000_000] {
            let samples = Law::standard_normal().sample(m, 0).unwrap();
            for n in [10usize, 100, 500] {
                if let Err(e) = Stepper::quantizer1d(samples.clone(), n, &device) {
                    eprintln!("skipping {device}: {e}");
                    continue;
                }
                let mut fresh = || Stepper::quantizer1d(samples.clone(), n, &device).unwrap();
                let id = BenchmarkId::new(format!("{device}/M={m}"), n);
                g.bench_function(id, |b| b.iter_custom(|iters| timed_fits(&mut fresh, iters)));
            }
        }
    }
    g.finish();
}

fn dense(c: &mut Criterion) {
    let mut g = c.benchmark_group("kmeans_iteration");
    g.sample_size(20);
    let (n, d, k) = (100_000usize, 32usize, 256usize);
    // Leaked: a fit borrows its points, and every fresh fit of a sample borrows them again.
    let data: &'static [f32] = Law::standard_normal()
        .sample(n * d, 1)
        .unwrap()
        .into_iter()
        .map(|v| v as f32)
        .collect::<Vec<_>>()
        .leak();
    for device in devices() {
        if let Err(e) = Stepper::kmeans(data, d, k, 0, &[], &device) {
            eprintln!("skipping {device}: {e}");
            continue;
        }
        let mut fresh = || Stepper::kmeans(data, d, k, 0, &[], &device).unwrap();
        let id = BenchmarkId::new(format!("{device}/n={n},d={d}"), k);
        g.bench_function(id, |b| b.iter_custom(|iters| timed_fits(&mut fresh, iters)));
    }
    g.finish();
}

criterion_group!(benches, one_d, dense);
criterion_main!(benches);
