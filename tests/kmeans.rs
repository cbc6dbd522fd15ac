//! K-means on the CPU backend: recovery, weights, determinism, empty cells, codebooks.

mod common;

use common::{blobs, brute_labels, gaussian};
use lloyd::{Codebook, Device, Init, KMeans};

#[test]
fn recovers_separated_blobs() {
    let data = blobs(3000, 5, 4, 1);
    let fit = KMeans::new(4)
        .init(Init::KMeansPlusPlus)
        .device(Device::Cpu)
        .fit(&data, 5)
        .unwrap();
    let mut counts = fit.counts.clone();
    counts.sort();
    assert_eq!(counts, vec![750, 750, 750, 750]);
    for (i, l) in fit.labels.iter().enumerate() {
        assert_eq!(*l, fit.labels[i % 4], "point {i}");
    }
    assert!(fit.mse < 5.0 * 0.3 * 0.3 * 1.2, "{}", fit.mse);
    assert!((fit.distortion * 2.0 - fit.mse).abs() < 1e-15);
}

#[test]
fn labels_and_error_match_a_brute_force_assignment() {
    for (n, dim, k) in [
        (1usize, 3usize, 1usize),
        (1001, 17, 31),
        (5000, 32, 256),
        (777, 1, 5),
        (300, 130, 600 / 3),
    ] {
        let data = gaussian(n, dim, n as u64);
        let fit = KMeans::new(k)
            .iterations(5)
            .device(Device::Cpu)
            .fit(&data, dim)
            .unwrap();
        let reference = brute_labels(&data, dim, fit.codebook.centroids());
        let mut mismatches = 0;
        let mut sse = 0.0;
        for (i, (l, d)) in reference.iter().enumerate() {
            sse += d;
            if fit.labels[i] != *l {
                // Only a near-tie may differ (f32 distance formula vs f64 brute force).
                let c = fit.labels[i] as usize;
                let x = &data[i * dim..(i + 1) * dim];
                let dc: f64 = x
                    .iter()
                    .zip(fit.codebook.centroid(c))
                    .map(|(a, b)| (f64::from(*a) - *b).powi(2))
                    .sum();
                assert!((dc - d).abs() <= 1e-4 * (1.0 + d), "point {i}: {dc} vs {d}");
                mismatches += 1;
            }
        }
        assert!(
            mismatches * 1000 <= n.max(1000),
            "{mismatches} near-ties of {n}"
        );
        assert!(
            (fit.inertia - sse).abs() <= 1e-5 * sse.max(1e-30),
            "{} vs {sse}",
            fit.inertia
        );
        let counted: u64 = fit.counts.iter().sum();
        assert_eq!(counted as usize, n);
    }
}

#[test]
fn centroids_are_cell_means_at_convergence() {
    let data = gaussian(4000, 3, 9);
    let fit = KMeans::new(7)
        .iterations(300)
        .tolerance(0.0)
        .device(Device::Cpu)
        .fit(&data, 3)
        .unwrap();
    let mut sums = [0.0f64; 7 * 3];
    for (i, &l) in fit.labels.iter().enumerate() {
        for j in 0..3 {
            sums[l as usize * 3 + j] += f64::from(data[i * 3 + j]);
        }
    }
    for c in 0..7 {
        for j in 0..3 {
            let mean = sums[c * 3 + j] / fit.counts[c] as f64;
            let got = fit.codebook.centroid(c)[j];
            assert!((mean - got).abs() < 1e-5, "cell {c}: {mean} vs {got}");
        }
    }
}

#[test]
fn integer_weights_equal_repeated_points() {
    let base = gaussian(500, 4, 2);
    let weights: Vec<f32> = (0..500).map(|i| (i % 3) as f32).collect();
    let mut repeated = Vec::new();
    for i in 0..500 {
        for _ in 0..(i % 3) {
            repeated.extend_from_slice(&base[i * 4..(i + 1) * 4]);
        }
    }
    let init: Vec<f32> = base[4 * 10..4 * 16].to_vec();
    let p = KMeans::new(6)
        .init(Init::given(&init))
        .iterations(30)
        .device(Device::Cpu);
    let weighted = p.fit_weighted(&base, 4, &weights).unwrap();
    let plain = p.fit(&repeated, 4).unwrap();
    for (a, b) in weighted
        .codebook
        .centroids()
        .iter()
        .zip(plain.codebook.centroids())
    {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    assert!((weighted.inertia - plain.inertia).abs() < 1e-6 * plain.inertia);
    assert!((weighted.mse - plain.mse).abs() < 1e-9);
}

#[test]
fn same_seed_same_fit() {
    let data = gaussian(3000, 8, 4);
    for init in [Init::RandomPoints, Init::KMeansPlusPlus] {
        let p = KMeans::new(20)
            .init(init)
            .seed(11)
            .iterations(10)
            .device(Device::Cpu);
        let a = p.fit(&data, 8).unwrap();
        let b = p.fit(&data, 8).unwrap();
        assert_eq!(a.codebook, b.codebook);
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.inertia, b.inertia);
        let c = p.clone().seed(12).fit(&data, 8).unwrap();
        assert_ne!(a.codebook, c.codebook);
    }
}

#[test]
fn history_is_reported_and_error_does_not_grow() {
    let data = gaussian(5000, 6, 5);
    let fit = KMeans::new(50)
        .iterations(25)
        .tolerance(0.0)
        .device(Device::Cpu)
        .fit(&data, 6)
        .unwrap();
    assert_eq!(fit.summary.history.len(), fit.summary.iterations_run);
    for (i, s) in fit.summary.history.iter().enumerate() {
        assert_eq!(s.iteration, i);
        assert!(s.seconds >= 0.0);
        assert!((s.distortion * 2.0 - s.mse).abs() < 1e-15);
    }
    for w in fit.summary.history.windows(2) {
        if w[0].empty_cells_split == 0 {
            assert!(
                w[1].mse <= w[0].mse * (1.0 + 1e-6),
                "{} > {}",
                w[1].mse,
                w[0].mse
            );
        }
    }
}

#[test]
fn empty_cells_are_split_not_nan() {
    // 40 points on 4 distinct sites; 4 given centroids of which two sit far away: their
    // cells are empty after the first assignment and must be re-seeded from populated ones.
    let mut data = Vec::new();
    for i in 0..40 {
        let s = (i % 4) as f32;
        data.extend_from_slice(&[s, s * 2.0 + 0.01 * (i / 4) as f32]);
    }
    let init = vec![0.0, 0.0, 3.0, 6.0, 100.0, 100.0, -100.0, 100.0];
    let fit = KMeans::new(4)
        .init(Init::given(&init))
        .iterations(50)
        .device(Device::Cpu)
        .fit(&data, 2)
        .unwrap();
    assert!(fit.codebook.centroids().iter().all(|v| v.is_finite()));
    assert!(
        fit.summary.empty_cells_split >= 2,
        "{}",
        fit.summary.empty_cells_split
    );
    assert!(fit.counts.iter().all(|&c| c > 0), "{:?}", fit.counts);
    assert!(fit.mse < 0.01, "{}", fit.mse);

    // Fewer distinct points than cells: no NaN, the extra cells simply stay empty.
    let dup = vec![1.0f32, 1.0, 1.0, 2.0, 2.0, 2.0];
    let fit = KMeans::new(3).device(Device::Cpu).fit(&dup, 1).unwrap();
    assert!(fit.codebook.centroids().iter().all(|v| v.is_finite()));
    assert_eq!(fit.mse, 0.0);
}

#[test]
fn codebook_encode_decode_mse_agree_with_the_fit() {
    let data = gaussian(2000, 12, 8);
    let fit = KMeans::new(16).device(Device::Cpu).fit(&data, 12).unwrap();
    let cb = &fit.codebook;
    assert_eq!((cb.k(), cb.dim()), (16, 12));
    let labels = cb.encode(&data).unwrap();
    assert_eq!(labels, fit.labels);
    let decoded = cb.decode(&labels).unwrap();
    let mse: f64 = data
        .iter()
        .zip(&decoded)
        .map(|(a, b)| (f64::from(*a) - *b).powi(2))
        .sum::<f64>()
        / 2000.0;
    assert!((cb.mse(&data).unwrap() - mse).abs() < 1e-5 * mse);
    assert!((fit.mse - mse).abs() < 1e-5 * mse);
    let again = Codebook::new(cb.centroids_f32(), 12).unwrap();
    assert_eq!(&again, cb);
}

/// Unweighted scalars take the interval (1-D) backend; unit weights force the dense one. Both
/// must find the same quantizer, and the labels must be the nearest sorted centroid.
#[test]
fn scalar_data_takes_the_interval_path_and_matches_the_dense_one() {
    let n = 20_011;
    let data = gaussian(n, 1, 4);
    let p = KMeans::new(13)
        .init(Init::KMeansPlusPlus)
        .seed(1)
        .iterations(30)
        .tolerance(0.0)
        .device(Device::Cpu);
    let fast = p.fit(&data, 1).unwrap();
    let dense = p.fit_weighted(&data, 1, &vec![1.0; n]).unwrap();
    let c = fast.codebook.centroids();
    assert!(c.windows(2).all(|w| w[0] <= w[1]), "{c:?}");
    let mut d = dense.codebook.centroids().to_vec();
    d.sort_by(f64::total_cmp);
    for (a, b) in c.iter().zip(&d) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    assert!((fast.inertia - dense.inertia).abs() < 1e-6 * dense.inertia);
    assert_eq!(fast.counts.iter().sum::<u64>(), n as u64);
    for (i, (l, (want, _))) in fast
        .labels
        .iter()
        .zip(brute_labels(&data, 1, c))
        .enumerate()
    {
        assert_eq!(*l, want, "point {i} = {}", data[i]);
    }
}

/// `distances` is scikit-learn's `transform`: Euclidean distances to every centroid, whose
/// arg-min is the label, exact at any offset or scale.
#[test]
fn distances_to_every_centroid() {
    let data = gaussian(301, 5, 9);
    let fit = KMeans::new(7)
        .seed(1)
        .device(Device::Cpu)
        .fit(&data, 5)
        .unwrap();
    let cb = &fit.codebook;
    let d = cb.distances(&data).unwrap();
    assert_eq!(d.len(), 301 * 7);
    for i in 0..301 {
        let row = &d[i * 7..(i + 1) * 7];
        for (j, &v) in row.iter().enumerate() {
            let want: f64 = (0..5)
                .map(|t| (f64::from(data[i * 5 + t]) - cb.centroid(j)[t]).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                (v - want).abs() <= 1e-12 * want.max(1e-300),
                "{v} vs {want}"
            );
        }
        let best = (0..7).min_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        assert_eq!(best as u32, fit.labels[i], "point {i}");
    }
    // Far away and huge: no overflow, no cancellation.
    let big: Vec<f64> = data
        .iter()
        .map(|&v| (f64::from(v) + 1e4) * 2f64.powi(500))
        .collect();
    let cbig: Vec<f64> = cb
        .centroids()
        .iter()
        .map(|&v| (v + 1e4) * 2f64.powi(500))
        .collect();
    let cbig = lloyd::Codebook::from_f64(cbig, 5).unwrap();
    let db = cbig.distances(&big).unwrap();
    for (a, b) in db.iter().zip(&d) {
        assert!(a.is_finite());
        assert!(
            (a / 2f64.powi(500) - b).abs() <= 1e-9 * b.max(1e-3),
            "{a} vs {b}"
        );
    }
}

/// Restarts keep the best of the single fits from seeds seed, seed + 1, …: exactly it, on
/// every device (one backend serves every restart, restarted from each start), in d-D and
/// in 1-D.
#[test]
fn restarts_keep_the_best_start() {
    let mut devices = vec![Device::Cpu];
    devices.extend(common::gpu::gpu());
    for device in devices {
        for dim in [3, 1] {
            let data = blobs(2000, dim, 12, 5);
            let single = |seed: u64| {
                KMeans::new(12)
                    .seed(seed)
                    .device(device.clone())
                    .fit(&data, dim)
                    .unwrap()
            };
            let singles: Vec<_> = (7..12).map(single).collect();
            let inertias: Vec<f64> = singles.iter().map(|f| f.inertia).collect();
            let best = singles.iter().fold(
                &singles[0],
                |b, f| if f.inertia < b.inertia { f } else { b },
            );
            let fit = KMeans::new(12)
                .seed(7)
                .restarts(5)
                .device(device.clone())
                .fit(&data, dim)
                .unwrap();
            let what = format!("{device:?}, d {dim}: {inertias:?}");
            assert_eq!(fit.inertia, best.inertia, "{what}");
            assert_eq!(
                fit.codebook.centroids(),
                best.codebook.centroids(),
                "{what}"
            );
            assert_eq!(fit.labels, best.labels, "{what}");
            assert!(
                inertias.iter().any(|&i| i > best.inertia),
                "starts should differ: {what}"
            );
        }
    }
}

/// Spherical K-means: unit-norm centroids, each label the centroid of largest inner product
/// (checked by brute force), the GPU agreeing with the CPU; a streamed fit equal to it.
#[test]
fn spherical_kmeans_assigns_by_inner_product_on_unit_centroids() {
    let (n, dim, k) = (3000, 5, 8);
    // Directions with different norms: only the direction decides a cell.
    let data: Vec<f64> = blobs(n, dim, k, 21)
        .chunks(dim)
        .enumerate()
        .flat_map(|(i, r)| {
            let norm = r
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>()
                .sqrt();
            let scale = (1 + i % 5) as f64 / norm.max(1e-9);
            r.iter()
                .map(move |&v| f64::from(v) * scale)
                .collect::<Vec<_>>()
        })
        .collect();
    let params = KMeans::new(k)
        .spherical(true)
        .init(Init::Centroids(data[..k * dim].to_vec()))
        .iterations(50);
    let cpu = params.clone().device(Device::Cpu).fit(&data, dim).unwrap();
    let c = cpu.codebook.centroids();
    for row in c.chunks(dim) {
        let norm: f64 = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-12, "{norm}");
    }
    for (x, &l) in data.chunks(dim).zip(&cpu.labels) {
        let dot = |j: usize| -> f64 { x.iter().zip(&c[j * dim..]).map(|(a, b)| a * b).sum() };
        let best = (0..k).map(dot).fold(f64::MIN, f64::max);
        assert!(dot(l as usize) >= best - 1e-9 * best.abs(), "label {l}");
    }
    // With no tolerance it stops where the projected centroids stop moving.
    let fixed = params
        .clone()
        .tolerance(0.0)
        .iterations(500)
        .device(Device::Cpu)
        .fit(&data, dim)
        .unwrap();
    assert!(
        fixed.summary.converged,
        "{} iterations",
        fixed.summary.iterations_run
    );
    // Plain K-means on the same data ends elsewhere: the norms matter to it.
    let plain = params
        .clone()
        .spherical(false)
        .device(Device::Cpu)
        .fit(&data, dim)
        .unwrap();
    assert_ne!(plain.labels, cpu.labels);
    if let Some(gpu) = common::gpu::gpu() {
        let g = params.device(gpu).fit(&data, dim).unwrap();
        let same = g
            .labels
            .iter()
            .zip(&cpu.labels)
            .filter(|(a, b)| a == b)
            .count();
        assert!(
            same as f64 >= 0.999 * n as f64,
            "{same} of {n} labels agree"
        );
        for (a, b) in g.codebook.centroids().iter().zip(c) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}

/// Float64 fits keep their precision: each centroid is its cell's (weighted) mean, and the
/// inertia is Σ w |x − c|² against the returned centroids, to a few f64 roundings. Summed
/// from the f32 values the ranking reads, centroids were means only to 2⁻²⁴ of the data's
/// extent (0.99999997877 for the 1.0 of scikit-learn's `test_kmeans_empty_cluster_relocated`);
/// weights rounded to f32 moved them by about 10⁻⁹ of it; and errors measured from the f32
/// values put the inertia 10⁻⁹ to 10⁻⁷ off. Values that f32 cannot hold, weights too, shifted
/// far from the origin and not, weighted and not, two and three dimensions.
#[test]
fn float64_fits_keep_their_precision() {
    // scikit-learn's case: the empty cell takes the far point, then each cell its point.
    let fit = KMeans::new(2)
        .init(Init::given(&[-1.0f64, 10.0]))
        .device(Device::Cpu)
        .fit_weighted(&[-1.0f64, 1.0], 1, &[1.9f32, 0.1])
        .unwrap();
    let mut c = fit.codebook.centroids().to_vec();
    c.sort_by(f64::total_cmp);
    assert_eq!(c, [-1.0, 1.0]);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for (shift, dim) in [(0.0, 2usize), (1e4, 3), (-3.5e7, 2)] {
        let rows = 500;
        let data: Vec<f64> = (0..rows * dim)
            .map(|i| shift + 10.0 * ((i / dim) % 4) as f64 + 3.0 * uniform())
            .collect();
        let weights: Vec<f64> = (0..rows).map(|_| 0.1 + 2.9 * uniform()).collect();
        assert!(weights.iter().any(|&w| f64::from(w as f32) != w));
        let init: Vec<f64> = data[..4 * dim].to_vec();
        for weighted in [false, true] {
            let p = KMeans::new(4)
                .init(Init::given(&init))
                .iterations(30)
                .device(Device::Cpu);
            let fit = if weighted {
                p.fit_weighted(&data, dim, &weights).unwrap()
            } else {
                p.fit(&data, dim).unwrap()
            };
            let w = |i: usize| if weighted { weights[i] } else { 1.0 };
            let (mut sums, mut mass) = (vec![0.0f64; 4 * dim], [0.0f64; 4]);
            let mut inertia = 0.0f64;
            for (i, &l) in fit.labels.iter().enumerate() {
                let (l, x) = (l as usize, &data[i * dim..(i + 1) * dim]);
                mass[l] += w(i);
                let c = fit.codebook.centroid(l);
                for j in 0..dim {
                    sums[l * dim + j] += w(i) * (x[j] - shift);
                    inertia += w(i) * (x[j] - c[j]) * (x[j] - c[j]);
                }
            }
            let case = format!("shift {shift}, d {dim}, weighted {weighted}");
            for cell in 0..4 {
                for j in 0..dim {
                    let want = shift + sums[cell * dim + j] / mass[cell];
                    let got = fit.codebook.centroid(cell)[j];
                    let scale = shift.abs().max(40.0);
                    assert!(
                        (got - want).abs() <= 1e-14 * scale,
                        "{case}, cell {cell}: {got} vs {want}"
                    );
                }
            }
            let rel = (fit.inertia - inertia).abs() / inertia;
            assert!(rel < 1e-12, "{case}: inertia {} vs {inertia}", fit.inertia);
        }
    }
}
