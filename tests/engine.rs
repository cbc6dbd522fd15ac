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

/// A value that is not finite is refused as itself (its row and coordinate), on every
/// device, in d dimensions and in one, float32 and float64, weighted and not; a finite row
/// outside the frame as outside. The statistics check the values in the passes that read
/// them, not in a pass of their own first.
#[test]
fn statistics_refuse_non_finite_values_where_they_meet_them() {
    use lloyd::{Error, Weights};
    for dev in devices() {
        let mut enc = Encoder::new(&dev).unwrap();
        for dim in [1usize, 3] {
            let n = 300;
            let data: Vec<f64> = (0..n * dim).map(|i| (i % 17) as f64).collect();
            let frame = Extent::of(&data, dim).unwrap().frame();
            let c: Vec<f64> = data[..2 * dim].to_vec();
            let w = vec![1.0f32; n];
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                for weighted in [false, true] {
                    let ws = weighted.then_some(Weights::F32(&w));
                    let mut x = data.clone();
                    x[257 * dim + dim - 1] = bad;
                    x[280 * dim] = bad;
                    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                    let case = format!("{dev:?} d{dim} {bad} weighted {weighted}");
                    for got in [
                        LloydStats::compute_on(&mut enc, &frame, &x, ws, &c, 0),
                        LloydStats::compute_on(&mut enc, &frame, &x32, ws, &c, 0),
                    ] {
                        match got {
                            Err(Error::NonFiniteData {
                                point, coordinate, ..
                            }) => assert_eq!((point, coordinate), (257, dim - 1), "{case}"),
                            other => panic!("{case}: {other:?}"),
                        }
                    }
                }
            }
            let mut far = data.clone();
            far[3 * dim] = 1e6;
            let got = LloydStats::compute_on(&mut enc, &frame, &far, None, &c, 0);
            assert!(
                matches!(&got, Err(Error::InvalidArgument(m)) if m.contains("row 3 lies outside")),
                "{dev:?} d{dim}: {got:?}"
            );
        }
    }
}
