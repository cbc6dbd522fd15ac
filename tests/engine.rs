//! The engine's reuse: one encoder serves many calls of a shape, and statistics computed on
//! a GPU merge exactly.

mod common;

use common::gpu::gpu;
use lloyd::{Codebook, Device, Encoder, Extent, LloydStats};

fn devices() -> Vec<Device> {
    let mut v = vec![Device::Cpu];
    v.extend(gpu());
    v
}

/// Encoding through one encoder, call after call (same shape, other data and codebooks,
/// then another shape), equals a fresh encode every time, on every device.
#[test]
fn a_reused_encoder_equals_fresh_encodes() {
    let dim = 5;
    for dev in devices() {
        let mut enc = Encoder::new(&dev).unwrap();
        for (n, k, seed) in [
            (1001, 7, 1),
            (1001, 7, 2),
            (1001, 13, 3),
            (257, 7, 4),
            (1001, 7, 5),
        ] {
            let data: Vec<f32> = common::gaussian(n, dim, seed)
                .iter()
                .map(|v| v * 3.0 + 100.0)
                .collect();
            let cb = Codebook::new(data[..k * dim].to_vec(), dim).unwrap();
            let (labels, sse) = enc.encode(&cb, &data).unwrap();
            let (fresh, mse, _) = cb.encode_on(&data, &dev).unwrap();
            assert_eq!(labels, fresh, "{dev} n{n} k{k}");
            assert_eq!(sse / n as f64, mse, "{dev} n{n} k{k}");
        }
    }
}

/// Statistics whose assignment ran on a GPU merge exactly, whatever the split, and agree
/// with the CPU's up to near ties.
#[test]
fn gpu_statistics_merge_exactly() {
    let Some(dev) = gpu() else { return };
    let (n, dim, k) = (3001, 6, 11);
    let data: Vec<f64> = common::blobs(n, dim, 5, 8)
        .iter()
        .map(|&v| f64::from(v) + 1e3)
        .collect();
    let centroids = data[..k * dim].to_vec();
    let frame = Extent::of(&data, dim).unwrap().frame();
    let mut enc = Encoder::new(&dev).unwrap();
    let whole = LloydStats::compute_on(&mut enc, &frame, &data, None, &centroids, 0).unwrap();
    for cut in [1, 1000, 2999] {
        let mut b = LloydStats::compute_on(
            &mut enc,
            &frame,
            &data[cut * dim..],
            None,
            &centroids,
            cut as u64,
        )
        .unwrap();
        let a = LloydStats::compute_on(&mut enc, &frame, &data[..cut * dim], None, &centroids, 0)
            .unwrap();
        b.merge(&a).unwrap();
        assert_eq!(b, whole, "cut {cut}");
    }
    let cpu = LloydStats::compute(&frame, &data, None, &centroids, 0).unwrap();
    let (g, c) = (whole.update().unwrap(), cpu.update().unwrap());
    for (x, y) in g.centroids.iter().zip(&c.centroids) {
        assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{x} vs {y}");
    }
    assert!((whole.inertia() - cpu.inertia()).abs() <= 1e-5 * cpu.inertia());
}

/// GPU statistics against centroids far outside the frame (one that did not include them),
/// through one reused encoder, agree with the CPU's.
#[test]
fn gpu_statistics_of_centroids_far_outside_the_frame() {
    let Some(dev) = gpu() else { return };
    let (n, dim) = (2000, 3);
    let data: Vec<f64> = common::gaussian(n, dim, 4)
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let frame = Extent::of(&data, dim).unwrap().frame();
    let mut enc = Encoder::new(&dev).unwrap();
    for shift in [0.0, 50.0, 3000.0, 1e6, 1e9] {
        let c: Vec<f64> = data[..4 * dim].iter().map(|v| v + shift).collect();
        let g = LloydStats::compute_on(&mut enc, &frame, &data, None, &c, 0).unwrap();
        let cpu = LloydStats::compute(&frame, &data, None, &c, 0).unwrap();
        let (gi, ci) = (g.inertia(), cpu.inertia());
        assert!((gi - ci).abs() <= 1e-5 * ci, "shift {shift}: {gi} vs {ci}");
    }
}
