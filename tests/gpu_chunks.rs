//! Inputs split across many storage bindings (the binding size is capped at 4 KiB here so
//! small inputs exercise the split), and the device's sample generator against a CPU mirror.

mod common;

use common::gpu::gpu;
use common::{cpu_steps_over_blocks, gaussian};
use lloyd::stepper::{Stepper, gpu_samples};
use lloyd::{Device, GpuOptions, Law};

/// Storage bindings capped at 4 KiB.
fn small_bindings() -> GpuOptions {
    GpuOptions {
        max_chunk_bytes: Some(4096),
        ..GpuOptions::default()
    }
}

#[test]
fn dense_input_split_across_bindings_matches_the_cpu() {
    let small = small_bindings();
    let Some(dev) = gpu() else { return };
    let (n, d, k) = (3001usize, 5usize, 7usize);
    let data = gaussian(n, d, 5);
    let init: Vec<f32> = data[..k * d].to_vec();
    let mut g = Stepper::kmeans_with_options(&data, d, k, 0, &init, &dev, &small).unwrap();
    let mut c = Stepper::kmeans(&data, d, k, 0, &init, &Device::Cpu).unwrap();
    assert!(g.layout().chunks >= 14, "{:?}", g.layout());
    for _ in 0..3 {
        let (eg, ec) = (g.step().unwrap(), c.step().unwrap());
        assert!((eg - ec).abs() <= 1e-6 * ec, "{eg} vs {ec}");
    }
    g.assign_reduce().unwrap();
    c.assign_reduce().unwrap();
    assert_eq!(g.labels().unwrap(), c.labels().unwrap());
    assert_eq!(g.cells().unwrap().counts, c.cells().unwrap().counts);
}

/// Philox4x32-10 and the inverse transforms of `shaders/generate.wgsl`, in f64.
fn philox(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (ctr, key);
    for _ in 0..10 {
        let p0 = 0xD251_1F53u64 * u64::from(c[0]);
        let p1 = 0xCD9E_8D57u64 * u64::from(c[2]);
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
        k = [
            k[0].wrapping_add(0x9E37_79B9),
            k[1].wrapping_add(0xBB67_AE85),
        ];
    }
    c
}

fn mirror(law: Law, i: u64, seed: u64) -> f64 {
    let r = philox(
        [i as u32, (i >> 32) as u32, 0, 0],
        [seed as u32, (seed >> 32) as u32],
    );
    let u1 = (f64::from(r[0] >> 8) + 1.0) / 16_777_216.0;
    let u2 = f64::from(r[1] >> 8) / 16_777_216.0;
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    match law {
        Law::Normal { mean, std } => mean + std * z,
        Law::Uniform { low, high } => low + (high - low) * u2,
        Law::Exponential { rate } => -u1.ln() / rate,
        Law::LogNormal { mu, sigma } => (mu + sigma * z).exp(),
    }
}

#[test]
fn device_samples_match_a_cpu_mirror_across_chunks() {
    let small = small_bindings();
    let Some(dev) = gpu() else { return };
    for law in [
        Law::standard_normal(),
        Law::Uniform {
            low: -1.0,
            high: 3.0,
        },
        Law::Exponential { rate: 2.0 },
        Law::LogNormal {
            mu: 0.1,
            sigma: 0.4,
        },
    ] {
        let m = 5000; // 5 chunks of 1024
        let s = gpu_samples(law, m, 0x1_0000_0007, &dev, &small).unwrap();
        assert_eq!(s.len(), m);
        for (i, v) in s.iter().enumerate() {
            let want = mirror(law, i as u64, 0x1_0000_0007);
            assert!(
                (f64::from(*v) - want).abs() <= 2e-5 * (1.0 + want.abs()),
                "{law:?} sample {i}: {v} vs {want}"
            );
        }
        assert_eq!(
            s,
            gpu_samples(law, m, 0x1_0000_0007, &dev, &small).unwrap(),
            "same seed, same samples"
        );
    }
}

/// d-D samples drawn on the device across many bindings, fresh each iteration, equal the
/// same stream drawn in one piece: the fit matches the CPU on the samples read back.
#[test]
fn d_dimensional_samples_drawn_across_bindings() {
    let small = small_bindings();
    let Some(dev) = gpu() else { return };
    let (n, d, m, seed) = (5usize, 3usize, 2003usize, 9u64);
    let q = lloyd::LloydNd::new(n, d)
        .samples(m)
        .iterations(4)
        .seed(seed)
        .device(dev.clone())
        .gpu_options(small)
        .fit_normal()
        .unwrap();
    let all = gpu_samples(Law::standard_normal(), m * d, seed, &dev, &small).unwrap();
    let c = lloyd::KMeans::new(n)
        .init(lloyd::Init::given(&all[..n * d]))
        .iterations(4)
        .tolerance(0.0)
        .device(Device::Cpu)
        .fit(&all, d)
        .unwrap();
    for (a, b) in q.centroids.iter().zip(c.codebook.centroids()) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

/// Fresh samples each iteration across many bindings: iteration t draws the t-th block of
/// M·d values of the stream, every chunk its own part of it.
#[test]
fn fresh_d_dimensional_samples_across_bindings() {
    let small = small_bindings();
    let Some(dev) = gpu() else { return };
    let (n, d, m, seed, t) = (4usize, 3usize, 1501usize, 2u64, 5usize);
    let q = lloyd::LloydNd::new(n, d)
        .samples(m)
        .iterations(t)
        .seed(seed)
        .fresh_samples(true)
        .device(dev.clone())
        .gpu_options(small)
        .fit_normal()
        .unwrap();
    let stream = gpu_samples(Law::standard_normal(), t * m * d, seed, &dev, &small).unwrap();
    let centroids = cpu_steps_over_blocks(&stream, m * d, n, d);
    for (a, b) in q.centroids.iter().zip(&centroids) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}
