//! Every GPU kernel against the CPU backend (f64) on fresh random inputs of awkward sizes.

mod common;

use common::gpu::gpu;
use common::{blobs, brute_labels, cpu_steps_over_blocks, gaussian};
use lloyd::GpuOptions;
use lloyd::stepper::Stepper;
use lloyd::{Codebook, Device, Init, KMeans, Law, Lloyd1d};

fn rel(a: f64, b: f64, scale: f64) -> f64 {
    (a - b).abs() / (b.abs() + scale)
}

/// f32-representable N(0,1) samples, so both backends see the very same points.
fn samples(m: usize, seed: u64) -> Vec<f64> {
    Law::standard_normal()
        .sample(m, seed)
        .unwrap()
        .into_iter()
        .map(|v| f64::from(v as f32))
        .collect()
}

#[test]
fn one_d_quantizer_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    for (m, n) in [
        (1usize, 1usize),
        (1031, 2),
        (1031, 7),
        (300_001, 100),
        (20_011, 600),
    ] {
        let s = samples(m, m as u64);
        let p = Lloyd1d::new(n).iterations(4).tolerance(0.0);
        let c = p.clone().device(Device::Cpu).fit_samples(&s).unwrap();
        let g = p.device(dev.clone()).fit_samples(&s).unwrap();
        assert_eq!(c.centroids.len(), g.centroids.len());
        for (a, b) in g.centroids.iter().zip(&c.centroids) {
            assert!(rel(*a, *b, 1.0) < 2e-6, "m {m} n {n}: {a} vs {b}");
        }
        for (a, b) in g.probabilities.iter().zip(&c.probabilities) {
            assert!((a - b).abs() <= 3.0 / m as f64, "m {m} n {n}: {a} vs {b}");
        }
        assert!(
            rel(g.distortion, c.distortion, 1e-12) < 1e-5,
            "m {m} n {n}: {} vs {}",
            g.distortion,
            c.distortion
        );
        assert!(g.centroids.windows(2).all(|w| w[0] <= w[1]));
    }
}

/// One iteration on each device from the same centroids: labels agree except at near ties,
/// and the GPU's reduction equals the exact f64 reduction of the GPU's own labels.
#[test]
fn dense_step_matches_exact_reduction() {
    let Some(dev) = gpu() else { return };
    check_dense_step(&dev, &GpuOptions::default());
}

/// The same check for every tile shape of the d-D kernel.
#[test]
fn every_tile_shape_matches_exact_reduction() {
    let Some(dev) = gpu() else { return };
    for tile in GpuOptions::tile_shapes() {
        for local_sums in [false, true] {
            let choice = GpuOptions {
                tile: Some(tile),
                local_sums,
                ..GpuOptions::default()
            };
            check_dense_step(&dev, &choice);
        }
    }
}

fn check_dense_step(dev: &Device, choice: &GpuOptions) {
    for (n, d, k) in [
        (1usize, 1usize, 1usize),
        (1003, 3, 2),
        (5003, 17, 255),
        (2001, 128, 64),
        (301, 1000, 4),
        (4099, 2, 4096),
        (777, 9, 129),
    ] {
        let data = gaussian(n, d, (n * d) as u64);
        let init: Vec<f32> = data[..k * d].to_vec();
        let mut cpu = Stepper::kmeans(&data, d, k, 0, &init, &Device::Cpu).unwrap();
        let mut gpu = Stepper::kmeans_with_options(&data, d, k, 0, &init, dev, choice).unwrap();
        if choice.local_sums && k <= 64 && k * (7 + 3 * d) <= 1024 {
            // Every adapter this runs on has room for 1 024 words beside the tiles.
            assert!(
                gpu.layout().local_sums,
                "n{n} d{d} k{k}: workgroup accumulators unused"
            );
        }
        if !choice.local_sums {
            assert!(!gpu.layout().local_sums);
        }
        cpu.assign_reduce().unwrap();
        gpu.assign_reduce().unwrap();
        let (lc, lg) = (cpu.labels().unwrap(), gpu.labels().unwrap());
        let dist = |i: usize, c: u32| -> f64 {
            (0..d)
                .map(|t| (f64::from(data[i * d + t]) - f64::from(init[c as usize * d + t])).powi(2))
                .sum()
        };
        let mut flips = 0;
        for i in 0..n {
            if lc[i] != lg[i] {
                let (a, b) = (dist(i, lc[i]), dist(i, lg[i]));
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + a),
                    "n{n} d{d} k{k} point {i}: {a} vs {b}"
                );
                flips += 1;
            }
        }
        assert!(flips * 500 <= n.max(500), "{flips} flips");
        // exact f64 reduction of the GPU's labels
        let mut sums = vec![0.0f64; k * d];
        let mut counts = vec![0u64; k];
        let mut sse = vec![0.0f64; k];
        for i in 0..n {
            let l = lg[i] as usize;
            counts[l] += 1;
            sse[l] += dist(i, lg[i]);
            for t in 0..d {
                sums[l * d + t] += f64::from(data[i * d + t]);
            }
        }
        let cells = gpu.cells().unwrap();
        assert_eq!(cells.counts, counts, "n{n} d{d} k{k}");
        for (j, (got, want)) in cells.sse.iter().zip(&sse).enumerate() {
            assert!(rel(*got, *want, 1e-9) < 1e-5, "cell {j}: {got} vs {want}");
        }
        let total: f64 = sse.iter().sum();
        assert!(rel(cells.sse.iter().sum(), total, 1e-12) < 2e-6);
        gpu.update().unwrap();
        let cg = gpu.centroids().unwrap();
        for j in 0..k {
            for t in 0..d {
                let want = if counts[j] > 0 {
                    sums[j * d + t] / counts[j] as f64
                } else {
                    f64::from(init[j * d + t])
                };
                // The device computes centred f32 values: precision relative to the data's
                // spread (here about 1), not to each coordinate.
                assert!(
                    rel(cg[j * d + t], want, 1.0) < 1e-6,
                    "n{n} d{d} k{k} cell {j}.{t}: {} vs {want}",
                    cg[j * d + t]
                );
            }
        }
    }
}

#[test]
fn kmeans_fit_matches_the_cpu_on_separated_data() {
    let Some(dev) = gpu() else { return };
    let data = blobs(20_001, 6, 5, 3);
    let init: Vec<f32> = data[..5 * 6].to_vec();
    let p = KMeans::new(5).init(Init::given(&init)).iterations(10);
    let c = p.clone().device(Device::Cpu).fit(&data, 6).unwrap();
    let g = p.device(dev).fit(&data, 6).unwrap();
    assert_eq!(g.labels, c.labels);
    assert_eq!(g.counts, c.counts);
    assert_eq!(g.summary.iterations_run, c.summary.iterations_run);
    for (a, b) in g.codebook.centroids().iter().zip(c.codebook.centroids()) {
        assert!(rel(*a, *b, 1.0) < 1e-6, "{a} vs {b}");
    }
    assert!(
        rel(g.inertia, c.inertia, 1e-12) < 1e-6,
        "{} vs {}",
        g.inertia,
        c.inertia
    );
    assert!(g.summary.device.contains('('), "{}", g.summary.device);
}

#[test]
fn weighted_fit_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    let data = blobs(3001, 4, 3, 9);
    let w: Vec<f32> = (0..3001).map(|i| ((i * 7) % 5) as f32 * 0.25).collect();
    let init: Vec<f32> = data[..3 * 4].to_vec();
    let p = KMeans::new(3).init(Init::given(&init)).iterations(5);
    let c = p
        .clone()
        .device(Device::Cpu)
        .fit_weighted(&data, 4, &w)
        .unwrap();
    let g = p.device(dev).fit_weighted(&data, 4, &w).unwrap();
    assert_eq!(g.labels, c.labels);
    for (a, b) in g.codebook.centroids().iter().zip(c.codebook.centroids()) {
        assert!(rel(*a, *b, 1.0) < 1e-6, "{a} vs {b}");
    }
    for (a, b) in g.cell_weights.iter().zip(&c.cell_weights) {
        assert!(rel(*a, *b, 1e-9) < 1e-7);
    }
    assert!(rel(g.mse, c.mse, 1e-12) < 1e-6);
}

#[test]
fn empty_cells_follow_the_cpu_policy() {
    let Some(dev) = gpu() else { return };
    let mut data = Vec::new();
    for i in 0..40 {
        let s = (i % 4) as f32;
        data.extend_from_slice(&[s, s * 2.0 + 0.01 * (i / 4) as f32]);
    }
    let init = vec![0.0, 0.0, 3.0, 6.0, 100.0, 100.0, -100.0, 100.0];
    let p = KMeans::new(4).init(Init::given(&init)).iterations(50);
    let c = p.clone().device(Device::Cpu).fit(&data, 2).unwrap();
    let g = p.device(dev).fit(&data, 2).unwrap();
    assert_eq!(g.summary.empty_cells_split, c.summary.empty_cells_split);
    assert!(g.summary.empty_cells_split >= 2);
    assert_eq!(g.counts, c.counts);
    assert!(g.codebook.centroids().iter().all(|v| v.is_finite()));
    for (a, b) in g.codebook.centroids().iter().zip(c.codebook.centroids()) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn same_seed_bitwise_same_gpu_result() {
    let Some(dev) = gpu() else { return };
    let q = || {
        Lloyd1d::new(16)
            .samples(200_003)
            .iterations(8)
            .seed(4)
            .device(dev.clone())
            .fit_law(Law::standard_normal())
            .unwrap()
    };
    let (a, b) = (q(), q());
    assert_eq!(a.centroids, b.centroids);
    assert_eq!(a.probabilities, b.probabilities);
    let ha: Vec<f64> = a.summary.history.iter().map(|s| s.mse).collect();
    let hb: Vec<f64> = b.summary.history.iter().map(|s| s.mse).collect();
    assert_eq!(ha, hb);

    let data = gaussian(7001, 9, 1);
    let k = || {
        KMeans::new(33)
            .seed(2)
            .iterations(6)
            .device(dev.clone())
            .fit(&data, 9)
            .unwrap()
    };
    let (a, b) = (k(), k());
    assert_eq!(a.codebook, b.codebook);
    assert_eq!(a.labels, b.labels);
    assert_eq!(a.inertia, b.inertia);
}

#[test]
fn gpu_samples_quantize_the_normal_law() {
    let Some(dev) = gpu() else { return };
    let q = Lloyd1d::new(2)
        .samples(1_000_000)
        .iterations(50)
        .seed(1)
        .device(dev)
        .fit_law(Law::standard_normal())
        .unwrap();
    let c = (2.0 / std::f64::consts::PI).sqrt();
    assert!(
        (q.centroids[1] - c).abs() < 3e-3 && (q.centroids[0] + c).abs() < 3e-3,
        "{:?}",
        q.centroids
    );
    assert!((q.mse - (1.0 - 2.0 / std::f64::consts::PI)).abs() < 3e-3);
    assert!((q.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

/// One pass over more than a 128 MiB binding and more than 65 535 x 256 points: the samples
/// are split across bindings and the grid-stride loop covers the rest.
#[test]
fn input_over_one_binding() {
    let Some(dev) = gpu() else { return };
    let m = 34_000_001; // 136 MB of f32
    let s = samples(m, 77);
    let mut g = Stepper::quantizer1d(s.clone(), 16, &dev).unwrap();
    let mut c = Stepper::quantizer1d(s, 16, &Device::Cpu).unwrap();
    for _ in 0..2 {
        let (eg, ec) = (g.step().unwrap(), c.step().unwrap());
        assert!(rel(eg, ec, 1e-9) < 1e-6, "{eg} vs {ec}");
    }
    g.assign_reduce().unwrap();
    c.assign_reduce().unwrap();
    let (cg, cc) = (g.cells().unwrap(), c.cells().unwrap());
    let total: u64 = cg.counts.iter().sum();
    assert_eq!(total, m as u64);
    for (a, b) in cg.counts.iter().zip(&cc.counts) {
        assert!(a.abs_diff(*b) <= 2, "{a} vs {b}");
    }
    for (a, b) in g.centroids().unwrap().iter().zip(&c.centroids().unwrap()) {
        assert!(rel(*a, *b, 1.0) < 1e-6, "{a} vs {b}");
    }
}

/// Sums that wander around zero in units far below the scale set by the largest value: the
/// running 96-bit totals keep crossing zero, which exercises every carry of the accumulators
/// (a missed carry is off by 2^64 units, far outside the tolerance). Points at ±100 keep the
/// data's mean, the origin the device computes around, at zero, so the tiny values stay
/// tiny on the device too.
#[test]
fn fixed_point_carries_across_zero() {
    let Some(dev) = gpu() else { return };
    let tiny = gaussian(50_001, 1, 8);
    let mut one_d = Vec::new();
    for (i, t) in tiny.iter().enumerate() {
        let v = f64::from(t * 1e-9);
        one_d.push(v);
        one_d.push(if i % 2 == 0 { 100.0 } else { -100.0 });
    }
    one_d.push(-100.0);
    let p = Lloyd1d::new(3).iterations(2).tolerance(0.0);
    let c = p.clone().device(Device::Cpu).fit_samples(&one_d).unwrap();
    let g = p.device(dev.clone()).fit_samples(&one_d).unwrap();
    assert!(
        (g.centroids[1] - c.centroids[1]).abs() < 1e-15,
        "{} vs {}",
        g.centroids[1],
        c.centroids[1]
    );
    assert!(rel(g.centroids[2], c.centroids[2], 1.0) < 1e-6);

    let mut dense: Vec<f32> = tiny.iter().map(|t| t * 1e-9).collect();
    dense.extend([100.0, -100.0]);
    let init = vec![-100.0f32, 0.0, 100.0];
    let mut gs = Stepper::kmeans(&dense, 1, 3, 0, &init, &dev).unwrap();
    gs.step().unwrap();
    let exact = tiny.iter().map(|t| f64::from(t * 1e-9)).sum::<f64>() / tiny.len() as f64;
    let got = gs.centroids().unwrap()[1];
    assert!(
        (got - exact).abs() < 1e-6 * exact.abs() + 1e-16,
        "{got} vs {exact}"
    );
}

#[test]
fn product_quantizer_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    let data = blobs(4001, 8, 4, 12);
    let p = lloyd::ProductQuantizer::new(2, 3).iterations(6).seed(2);
    let c = p.clone().device(Device::Cpu).train(&data, 8).unwrap();
    let g = p.device(dev.clone()).train(&data, 8).unwrap();
    let (cc, gc) = (
        c.encode(&data).unwrap(),
        g.clone().with_device(dev).encode(&data).unwrap(),
    );
    let same = (0..cc.len()).filter(|&i| cc.get(i) == gc.get(i)).count();
    assert!(same * 1000 >= cc.len() * 999, "{same} of {}", cc.len());
    let (mc, mg) = (c.mse(&data).unwrap(), g.mse(&data).unwrap());
    assert!(rel(mg, mc, 1e-12) < 1e-4, "{mg} vs {mc}");
}

#[test]
fn d_dimensional_quantizer_and_mini_batches_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    // The device draws its own samples: the same fit on the CPU, on those very samples
    // read back, starting from the first N of them as the device does.
    let (n, d, m, seed) = (8usize, 2usize, 30_011usize, 4u64);
    let p = lloyd::LloydNd::new(n, d)
        .samples(m)
        .iterations(15)
        .seed(seed);
    let g = p.clone().device(dev.clone()).fit_normal().unwrap();
    let again = p.clone().device(dev.clone()).fit_normal().unwrap();
    assert_eq!(
        (&g.centroids, &g.probabilities, g.distortion),
        (&again.centroids, &again.probabilities, again.distortion),
        "same seed, same quantizer"
    );
    let samples = lloyd::stepper::gpu_samples(
        Law::standard_normal(),
        m * d,
        seed,
        &dev,
        &GpuOptions::default(),
    )
    .unwrap();
    let c = KMeans::new(n)
        .init(Init::given(&samples[..n * d]))
        .iterations(15)
        .tolerance(0.0)
        .device(Device::Cpu)
        .fit(&samples, d)
        .unwrap();
    for (a, b) in g.centroids.iter().zip(c.codebook.centroids()) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    assert!(rel(g.distortion, c.distortion, 1e-12) < 1e-6);
    // Fresh samples each iteration: iteration t takes the t-th block of M·d values of the
    // device's stream. The same iterations on the CPU, one block at a time.
    let fresh = p.clone().fresh_samples(true);
    let gf = fresh.clone().device(dev.clone()).fit_normal().unwrap();
    let stream = lloyd::stepper::gpu_samples(
        Law::standard_normal(),
        15 * m * d,
        seed,
        &dev,
        &GpuOptions::default(),
    )
    .unwrap();
    let centroids = cpu_steps_over_blocks(&stream, m * d, n, d);
    for (a, b) in gf.centroids.iter().zip(&centroids) {
        assert!((a - b).abs() < 1e-5, "fresh: {a} vs {b}");
    }
    // And close to the CPU's own fresh run, which draws other samples of the same law.
    let cf = fresh.device(Device::Cpu).fit_normal().unwrap();
    assert_eq!(gf.summary.history.len(), 15);
    assert!(
        rel(gf.distortion, cf.distortion, 1e-12) < 0.05,
        "{} vs {}",
        gf.distortion,
        cf.distortion
    );
    assert!((gf.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    let data = blobs(6000, 3, 3, 5);
    let m = lloyd::MiniBatchKMeans::new(3).seed(1);
    let mc = m.clone().device(Device::Cpu).fit(&data, 3, 500, 1).unwrap();
    let mg = m.device(dev).fit(&data, 3, 500, 1).unwrap();
    assert_eq!(mc.counts, mg.counts);
    for (a, b) in mg.codebook.centroids().iter().zip(mc.codebook.centroids()) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn clvq_mini_batches_on_the_device_match_the_cpu_method() {
    let Some(dev) = gpu() else { return };
    let p = lloyd::Clvq::new(2)
        .steps(3000)
        .batch(1024)
        .evaluation_samples(400_000)
        .seed(3);
    let g = p
        .clone()
        .device(dev.clone())
        .fit_law(Law::standard_normal())
        .unwrap();
    let c = p
        .device(Device::Cpu)
        .fit_law(Law::standard_normal())
        .unwrap();
    let opt = (2.0 / std::f64::consts::PI).sqrt();
    for q in [&g, &c] {
        assert!(
            (q.centroids[0] + opt).abs() < 1e-2 && (q.centroids[1] - opt).abs() < 1e-2,
            "{:?}",
            q.centroids
        );
        assert!(
            (q.mse - (1.0 - 2.0 / std::f64::consts::PI)).abs() < 5e-3,
            "{}",
            q.mse
        );
    }
    assert!(g.summary.device.contains('('));
    let again = lloyd::Clvq::new(2)
        .steps(3000)
        .batch(1024)
        .evaluation_samples(400_000)
        .seed(3)
        .device(dev)
        .fit_law(Law::standard_normal())
        .unwrap();
    assert_eq!(again.centroids, g.centroids);
}

#[test]
fn accumulators_beyond_one_binding_are_a_clear_error() {
    let Some(dev) = gpu() else { return };
    // 65 536 cells of dimension 1024 need ~800 MB of accumulators.
    let (k, d) = (65_536usize, 1024usize);
    let data = vec![0.5f32; k * d];
    let init: Vec<f32> = (0..k * d).map(|i| (i % 7) as f32).collect();
    let e = KMeans::new(k)
        .init(Init::given(&init))
        .iterations(1)
        .device(dev)
        .fit(&data, d)
        .unwrap_err();
    assert!(e.to_string().contains("accumulators"), "{e}");
}

/// Exact integer sums: the mean of 1.2·10⁷ points in one cell matches the f64 reference.
#[test]
fn ten_million_points_in_one_cell() {
    let Some(dev) = gpu() else { return };
    let s: Vec<f64> = Law::Normal {
        mean: 3.0,
        std: 1.0,
    }
    .sample(12_000_001, 21)
    .unwrap()
    .into_iter()
    .map(|v| f64::from(v as f32))
    .collect();
    let exact = s.iter().sum::<f64>() / s.len() as f64;
    let p = Lloyd1d::new(1).iterations(1);
    let g = p.clone().device(dev).fit_samples(&s).unwrap();
    let c = p.device(Device::Cpu).fit_samples(&s).unwrap();
    assert!(
        rel(g.centroids[0], exact, 0.0) < 1e-6,
        "{} vs {exact}",
        g.centroids[0]
    );
    assert!(rel(c.centroids[0], exact, 0.0) < 1e-12);
    assert!(rel(g.mse, c.mse, 0.0) < 1e-6, "{} vs {}", g.mse, c.mse);
}

/// Scalar K-means runs on the 1-D backends of both devices.
#[test]
fn scalar_kmeans_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    for (n, k) in [(1usize, 1usize), (7, 3), (70_001, 300)] {
        let data = gaussian(n, 1, n as u64);
        let p = KMeans::new(k).seed(2).iterations(8).tolerance(0.0);
        let c = p.clone().device(Device::Cpu).fit(&data, 1).unwrap();
        let g = p.device(dev.clone()).fit(&data, 1).unwrap();
        for (a, b) in g.codebook.centroids().iter().zip(c.codebook.centroids()) {
            // f32 midpoints on the device, f64 on the CPU: a point on a boundary may move.
            assert!(rel(*a, *b, 1.0) < 1e-4, "n {n} k {k}: {a} vs {b}");
        }
        let differ = g
            .labels
            .iter()
            .zip(&c.labels)
            .filter(|(a, b)| a != b)
            .count();
        assert!(differ <= n / 10_000, "n {n} k {k}: {differ} labels differ");
        let mut from_labels = vec![0u64; k];
        for l in &g.labels {
            from_labels[*l as usize] += 1;
        }
        assert_eq!(
            from_labels, g.counts,
            "labels disagree with the device's counts"
        );
        assert!(rel(g.inertia, c.inertia, 1e-12) < 1e-5);
    }
}

/// Encoding on the device (labels and errors, no coordinate sums) against the CPU.
#[test]
fn encoding_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    for (n, d, k) in [(1usize, 3usize, 1usize), (4099, 17, 255), (20_000, 128, 70)] {
        let data = gaussian(n, d, (n + d) as u64);
        let cb = Codebook::new(gaussian(k, d, 99), d).unwrap();
        let (cl, cm, _) = cb.encode_on(&data, &Device::Cpu).unwrap();
        let (gl, gm, name) = cb.encode_on(&data, &dev).unwrap();
        assert_ne!(name, "cpu");
        let brute = brute_labels(&data, d, cb.centroids());
        for (i, ((g, c), (_, best))) in gl.iter().zip(&cl).zip(&brute).enumerate() {
            if g != c {
                // Only a near tie may differ: both distances within rounding of the best.
                let dist = |l: u32| -> f64 {
                    let x = &data[i * d..(i + 1) * d];
                    x.iter()
                        .zip(cb.centroid(l as usize))
                        .map(|(a, b)| (f64::from(*a) - *b).powi(2))
                        .sum()
                };
                assert!(dist(*g) - best <= 1e-4 * (1.0 + best), "point {i}");
            }
        }
        assert!(rel(gm, cm, 1e-12) < 1e-6, "n {n} d {d} k {k}: {gm} vs {cm}");
    }
}
