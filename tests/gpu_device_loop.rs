//! The GPU's device-resident iteration loop: iterations queued in batches, empty cells split
//! and the stop rule applied on the device, the error read back once per batch. Checked
//! against the CPU backend and against the GPU's own one-step-at-a-time path.

mod common;

use common::gpu::gpu;
use common::{blobs, gaussian};
use lloyd::stepper::{Stepper, read_backs};
use lloyd::{Device, Init, KMeans, Lloyd1d};

/// Host round-trips made by `f` on this thread.
fn round_trips<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = read_backs();
    let out = f();
    (out, read_backs() - before)
}

#[test]
fn read_backs_do_not_grow_with_the_iterations() {
    let Some(dev) = gpu() else { return };
    let data = gaussian(5003, 7, 3);
    let fit = |iterations: usize, tolerance: f64| {
        round_trips(|| {
            KMeans::new(19)
                .iterations(iterations)
                .tolerance(tolerance)
                .device(dev.clone())
                .fit(&data, 7)
                .unwrap()
        })
    };
    let (short, few) = fit(2, 0.0);
    let (long, many) = fit(60, 0.0);
    assert_eq!(
        (short.summary.iterations_run, long.summary.iterations_run),
        (2, 60)
    );
    assert_eq!(
        few, many,
        "read-backs: {few} for 2 iterations, {many} for 60"
    );
    // A stop rule costs no extra round-trip either: the device applies it.
    let (tolerant, with_rule) = fit(60, 1e-3);
    assert!(tolerant.summary.converged && tolerant.summary.iterations_run > 2);
    assert_eq!(with_rule, few);

    let q = |iterations: usize| {
        round_trips(|| {
            Lloyd1d::new(9)
                .samples(20_011)
                .iterations(iterations)
                .device(dev.clone())
                .fit_law(lloyd::Law::standard_normal())
                .unwrap()
        })
    };
    let (_, few) = q(1);
    let (_, many) = q(50);
    assert_eq!(few, many);
}

#[test]
fn the_device_stops_where_the_cpu_stops() {
    let Some(dev) = gpu() else { return };
    for (n, d, k, tolerance) in [(4001, 5, 12, 1e-3), (9000, 2, 40, 1e-4), (777, 16, 9, 1e-2)] {
        let data = blobs(n, d, k, n as u64);
        let init: Vec<f32> = data[..k * d].to_vec();
        let p = KMeans::new(k)
            .init(Init::given(&init))
            .iterations(200)
            .tolerance(tolerance);
        let c = p.clone().device(Device::Cpu).fit(&data, d).unwrap();
        let g = p.device(dev.clone()).fit(&data, d).unwrap();
        assert!(c.summary.converged && g.summary.converged);
        assert_eq!(
            g.summary.iterations_run, c.summary.iterations_run,
            "n {n} d {d} k {k}"
        );
        assert_eq!(g.labels, c.labels);
    }
    let s: Vec<f64> = gaussian(30_011, 1, 5).into_iter().map(f64::from).collect();
    let p = Lloyd1d::new(6).iterations(500).tolerance(1e-5);
    let c = p.clone().device(Device::Cpu).fit_samples(&s).unwrap();
    let g = p.device(dev).fit_samples(&s).unwrap();
    assert!(c.summary.converged && g.summary.converged);
    assert_eq!(g.summary.iterations_run, c.summary.iterations_run);
    assert!(g.summary.iterations_run < 500);
}

/// Batched iterations on the device give bitwise what single steps give on the device.
#[test]
fn a_batch_equals_its_steps() {
    let Some(dev) = gpu() else { return };
    let (n, d, k) = (3001, 3, 17);
    let data = gaussian(n, d, 8);
    // Three far-away centroids start empty, so the device's splits are in the comparison.
    let mut init: Vec<f32> = data[..(k - 3) * d].to_vec();
    init.extend([50.0, 50.0, 50.0, -50.0, 50.0, 50.0, 50.0, -50.0, 50.0]);
    let fit = KMeans::new(k)
        .init(Init::given(&init))
        .iterations(12)
        .tolerance(0.0)
        .device(dev.clone())
        .fit(&data, d)
        .unwrap();
    assert!(fit.summary.empty_cells_split >= 3);
    let mut s = Stepper::kmeans(&data, d, k, 0, &init, &dev).unwrap();
    let mut errors = Vec::new();
    for _ in 0..12 {
        errors.push(s.step().unwrap());
    }
    let stepped: Vec<f64> = s
        .centroids()
        .unwrap()
        .iter()
        .map(|&v| f64::from(v as f32))
        .collect();
    assert_eq!(fit.codebook.centroids(), &stepped[..]);
    let batched: Vec<f64> = fit
        .summary
        .history
        .iter()
        .map(|h| h.mse * n as f64)
        .collect();
    for (a, b) in batched.iter().zip(&errors) {
        assert!((a - b).abs() <= 1e-12 * b.abs(), "{a} vs {b}");
    }
}

/// Duplicated samples start several 1-D centroids on the same value: the upper copies are
/// empty and are split on the device, which must keep the centroids sorted as the CPU does.
#[test]
fn one_d_empty_cells_are_split_and_sorted_on_the_device() {
    let Some(dev) = gpu() else { return };
    for (distinct, copies, n) in [(40usize, 3000usize, 7usize), (900, 20_000, 600)] {
        let mut s: Vec<f64> = gaussian(distinct, 1, distinct as u64)
            .into_iter()
            .map(f64::from)
            .collect();
        s.extend(std::iter::repeat_n(0.25, copies));
        let p = Lloyd1d::new(n).iterations(6).tolerance(0.0);
        let c = p.clone().device(Device::Cpu).fit_samples(&s).unwrap();
        let g = p.device(dev.clone()).fit_samples(&s).unwrap();
        assert!(c.summary.empty_cells_split > 0, "no empty cell to split");
        let splits = |h: &[lloyd::IterationStats]| -> Vec<usize> {
            h.iter().map(|i| i.empty_cells_split).collect()
        };
        assert_eq!(splits(&g.summary.history), splits(&c.summary.history));
        assert!(g.centroids.windows(2).all(|w| w[0] <= w[1]));
        for (a, b) in g.centroids.iter().zip(&c.centroids) {
            assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}
