//! One Lloyd iteration, 1-D (randomized Lloyd on N(0,1) samples) and d-D (K-means), per
//! device. Set-up (sampling, sorting, upload) is outside the timed loop.

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

/// `iters` iterations as a fit runs them (on a GPU: one submission, one read-back).
fn timed_run(s: &mut Stepper, iters: u64) -> Duration {
    let t = Instant::now();
    s.run(iters as usize).unwrap();
    t.elapsed()
}

fn one_d(c: &mut Criterion) {
    let mut g = c.benchmark_group("lloyd1d_iteration");
    for device in devices() {
        for m in [200_000usize, 1_000_000] {
            let samples = Law::standard_normal().sample(m, 0).unwrap();
            for n in [10usize, 100, 500] {
                let mut s = match Stepper::quantizer1d(samples.clone(), n, &device) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("skipping {device}: {e}");
                        continue;
                    }
                };
                let id = BenchmarkId::new(format!("{device}/M={m}"), n);
                g.bench_function(id, |b| b.iter_custom(|iters| timed_run(&mut s, iters)));
            }
        }
    }
    g.finish();
}

fn dense(c: &mut Criterion) {
    let mut g = c.benchmark_group("kmeans_iteration");
    g.sample_size(20);
    let (n, d, k) = (100_000usize, 32usize, 256usize);
    let data: Vec<f32> = Law::standard_normal()
        .sample(n * d, 1)
        .unwrap()
        .into_iter()
        .map(|v| v as f32)
        .collect();
    for device in devices() {
        let mut s = match Stepper::kmeans(&data, d, k, 0, &[], &device) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("skipping {device}: {e}");
                continue;
            }
        };
        let id = BenchmarkId::new(format!("{device}/n={n},d={d}"), k);
        g.bench_function(id, |b| b.iter_custom(|iters| timed_run(&mut s, iters)));
    }
    g.finish();
}

criterion_group!(benches, one_d, dense);
criterion_main!(benches);
