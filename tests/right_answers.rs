//! Issue #9: right answers on data far from the origin, at extreme scales, in float64.

mod common;

use common::gpu::gpu;
use lloyd::{Codebook, Device, Init, KMeans};
use rand::{RngExt, SeedableRng};
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

/// The nearest-label check for a fit, with the data in f64.
fn check_fit(data: &[f64], dim: usize, fit: &lloyd::KMeansFit, what: &str) {
    let sse = assert_nearest(data, dim, fit.codebook.centroids(), &fit.labels, what);
    assert!(
        (fit.inertia - sse).abs() <= 1e-5 * sse.max(f64::MIN_POSITIVE),
        "{what}: inertia {} but the labels' error is {sse}",
        fit.inertia
    );
}

/// Property: (X + c)·2^j gives the labels of X and the centroids (C + c)·2^j, for offsets
/// c ∈ {0, 10², 10⁴} and scales 2^j from 2⁻¹²⁰ to 2¹²⁰ (far beyond what f32 squares hold), on
/// both devices, from the same start.
#[test]
fn shifted_and_scaled_data_give_the_same_fit() {
    let (n, dim, k) = (3000, 5, 12);
    let x = gaussian64(n, dim, 11);
    for dev in devices() {
        let fit = |data: &[f64]| {
            KMeans::new(k)
                .iterations(15)
                .tolerance(0.0)
                .init(Init::given(&data[..k * dim]))
                .device(dev.clone())
                .fit(data, dim)
                .unwrap()
        };
        let base = fit(&x);
        check_fit(&x, dim, &base, &format!("base on {dev}"));
        for c in [0.0, 1e2, 1e4] {
            for j in [-120, -60, -30, 0, 30, 60, 120] {
                let s = 2f64.powi(j);
                let data: Vec<f64> = x.iter().map(|v| (v + c) * s).collect();
                let what = format!("offset {c}, scale 2^{j} on {dev}");
                let got = fit(&data);
                check_fit(&data, dim, &got, &what);
                let same = got
                    .labels
                    .iter()
                    .zip(&base.labels)
                    .filter(|(a, b)| a == b)
                    .count();
                assert!(same * 1000 >= n * 999, "{what}: {} labels differ", n - same);
                let tol = if dev == Device::Cpu { 1e-9 } else { 1e-5 };
                for (a, b) in got
                    .codebook
                    .centroids()
                    .iter()
                    .zip(base.codebook.centroids())
                {
                    let want = (b + c) * s;
                    assert!(
                        (a - want).abs() <= tol * (1.0 + c) * s,
                        "{what}: {a} vs {want}"
                    );
                }
                let ratio = got.mse / (base.mse * s * s);
                assert!((ratio - 1.0).abs() < 1e-5, "{what}: mse ratio {ratio}");
            }
        }
    }
}

/// float64 data far from the origin (10⁸ + N(0, 1)) are fitted as N(0, 1) is: centring in
/// f64 comes before any f32.
#[test]
fn float64_data_keep_their_precision() {
    let (n, dim) = (5000, 3);
    let x = gaussian64(n, dim, 21);
    let far: Vec<f64> = x.iter().map(|v| v + 1e8).collect();
    for dev in devices() {
        let p = KMeans::new(8)
            .iterations(10)
            .tolerance(0.0)
            .device(dev.clone());
        let (a, b) = (p.clone().fit(&x, dim).unwrap(), p.fit(&far, dim).unwrap());
        assert_eq!(a.labels, b.labels, "{dev}");
        assert!(
            (a.mse - b.mse).abs() < 1e-6 * a.mse,
            "{dev}: {} vs {}",
            a.mse,
            b.mse
        );
        assert_eq!(b.codebook.precision(), lloyd::Precision::F64);
        // 1-D samples: the quantizer of 10⁸ + Z is 10⁸ plus that of Z.
        let z: Vec<f64> = x[..n].to_vec();
        let shifted: Vec<f64> = z.iter().map(|v| v + 1e8).collect();
        let q = lloyd::Lloyd1d::new(10).iterations(30).device(dev.clone());
        let (qa, qb) = (
            q.clone().fit_samples(&z).unwrap(),
            q.fit_samples(&shifted).unwrap(),
        );
        assert!(
            qb.mse > 0.0 && (qa.mse - qb.mse).abs() < 1e-6 * qa.mse,
            "{dev}: {} vs {}",
            qa.mse,
            qb.mse
        );
        for (u, v) in qa.centroids.iter().zip(&qb.centroids) {
            assert!((u + 1e8 - v).abs() < 1e-6, "{dev}: {u} vs {v}");
        }
    }
}

/// float32 data whose squares overflow or underflow f32 (around 10¹⁹ and 10⁻¹⁹ and beyond,
/// subnormals included) are fitted exactly as their power-of-two rescaling is.
#[test]
fn float32_data_at_extreme_scales() {
    let (n, dim, k) = (2000, 4, 6);
    let x: Vec<f32> = gaussian64(n, dim, 31).iter().map(|&v| v as f32).collect();
    for dev in devices() {
        for j in [-140i32, -100, -64, 64, 100, 120] {
            // Subnormal f32 values lose bits: compare with the very values they hold.
            let data: Vec<f32> = x
                .iter()
                .map(|&v| (f64::from(v) * 2f64.powi(j)) as f32)
                .collect();
            let back: Vec<f32> = data
                .iter()
                .map(|&v| (f64::from(v) * 2f64.powi(-j)) as f32)
                .collect();
            let p = KMeans::new(k)
                .iterations(10)
                .tolerance(0.0)
                .init(Init::given(&back[..k * dim]))
                .device(dev.clone());
            let reference = p.clone().fit(&back, dim).unwrap();
            let fit = p
                .init(Init::given(&data[..k * dim]))
                .fit(&data, dim)
                .unwrap();
            let what = format!("2^{j} on {dev}");
            assert_eq!(fit.labels, reference.labels, "{what}");
            assert!(
                fit.mse.is_finite() && fit.mse > 0.0,
                "{what}: mse {}",
                fit.mse
            );
            let ratio = fit.mse / (reference.mse * 4f64.powi(j));
            assert!((ratio - 1.0).abs() < 1e-5, "{what}: mse ratio {ratio}");
            assert!(
                fit.counts.iter().all(|&c| c > 0),
                "{what}: {:?}",
                fit.counts
            );
        }
    }
}

/// Encoding data far outside a codebook's range: no overflow, the nearest centroid.
#[test]
fn encoding_far_outside_the_codebook() {
    let dim = 3;
    let cb: Vec<f32> = gaussian64(16, dim, 41).iter().map(|&v| v as f32).collect();
    let codebook = Codebook::new(cb.clone(), dim).unwrap();
    for scale in [1e19f32, 1e30, 1e-19, 1e-30] {
        let data: Vec<f32> = gaussian64(500, dim, 42)
            .iter()
            .map(|&v| v as f32 * scale)
            .collect();
        for dev in devices() {
            let (labels, mse, _) = codebook.encode_on(&data, &dev).unwrap();
            let what = format!("data at {scale} on {dev}");
            assert!(mse.is_finite(), "{what}: mse {mse}");
            let sse = assert_nearest(&f64s(&data), dim, &f64s(&cb), &labels, &what);
            assert!(
                (mse - sse / 500.0).abs() <= 1e-5 * mse.max(f64::MIN_POSITIVE),
                "{what}"
            );
        }
    }
}

/// Weights around 10³⁰ or 10⁻³⁰ change nothing but the reported masses and errors; weights
/// spanning more than the GPU's fixed-point sums hold are refused there with the reason.
#[test]
fn extreme_weights() {
    let (n, dim, k) = (3000, 2, 5);
    let x = gaussian64(n, dim, 51);
    for dev in devices() {
        let p = KMeans::new(k)
            .iterations(10)
            .tolerance(0.0)
            .device(dev.clone());
        let unit = p.clone().fit_weighted(&x, dim, &vec![1.0; n]).unwrap();
        for w in [1e30f32, 1e-30] {
            let fit = p.clone().fit_weighted(&x, dim, &vec![w; n]).unwrap();
            let what = format!("weights {w} on {dev}");
            assert_eq!(fit.labels, unit.labels, "{what}");
            let ratio = fit.inertia / (unit.inertia * f64::from(w));
            assert!((ratio - 1.0).abs() < 1e-5, "{what}: inertia ratio {ratio}");
            assert!((fit.mse - unit.mse).abs() < 1e-5 * unit.mse, "{what}");
        }
        let mixed: Vec<f32> = (0..n)
            .map(|i| if i % 2 == 0 { 1e30 } else { 1e-30 })
            .collect();
        match p.fit_weighted(&x, dim, &mixed) {
            Ok(fit) => {
                assert_eq!(
                    dev,
                    Device::Cpu,
                    "the GPU cannot hold weights 1e-30 beside 1e30"
                );
                assert!(fit.inertia.is_finite());
            }
            Err(e) => {
                assert_ne!(dev, Device::Cpu);
                assert!(e.to_string().contains("weights span"), "{e}");
            }
        }
    }
}

/// Product quantization far from the origin: the codes of X + 10⁴ are those of X, and every
/// code is the nearest centroid of its sub-space.
#[test]
fn product_quantization_far_from_the_origin() {
    let (n, dim) = (4000, 8);
    let x = gaussian64(n, dim, 61);
    let far: Vec<f64> = x.iter().map(|v| v + 1e4).collect();
    for dev in devices() {
        let p = lloyd::ProductQuantizer::new(2, 4)
            .iterations(8)
            .device(dev.clone());
        let (a, b) = (
            p.clone().train(&x, dim).unwrap(),
            p.train(&far, dim).unwrap(),
        );
        let (ca, cb) = (a.encode(&x).unwrap(), b.encode(&far).unwrap());
        let same = (0..ca.len()).filter(|&i| ca.get(i) == cb.get(i)).count();
        assert!(
            same * 1000 >= ca.len() * 999,
            "{dev}: {same} of {}",
            ca.len()
        );
        let (ma, mb) = (a.mse(&x).unwrap(), b.mse(&far).unwrap());
        assert!((ma - mb).abs() < 1e-4 * ma, "{dev}: {ma} vs {mb}");
        for j in 0..2 {
            let sub: Vec<f64> = far
                .chunks_exact(dim)
                .flat_map(|r| r[j * 4..j * 4 + 4].to_vec())
                .collect();
            let labels: Vec<u32> = (0..n).map(|i| cb.get(i * 2 + j) as u32).collect();
            assert_nearest(
                &sub,
                4,
                b.codebook(j).centroids(),
                &labels,
                &format!("PQ {j} on {dev}"),
            );
        }
    }
}

/// A fit's labels are decided as its codebook encodes: on the caller's values, ties to the
/// lowest index, and so are the labels of its statistics (a fit spread over parts). Small
/// integers, shifted or not, so that the frame's origin (the data's mean) is off the binary
/// grid and centring rounds: decided on the centred values, a fit labelled some tied rows
/// with the higher index. Rows exactly equidistant from two returned centroids are common
/// in float32 data, whose centroids are float32 values; float64 centroids are their cells'
/// means to a few roundings, and ties among them are rare, so half the trials are float32.
#[test]
fn a_fit_labels_ties_as_its_codebook_and_its_statistics_do() {
    let mut ties = 0;
    for trial in 0..400u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(trial);
        let dim = rng.random_range(2..=4usize);
        let n = rng.random_range(50..3000usize);
        let k = rng.random_range(2..40usize);
        let m = rng.random_range(2..9u32);
        let shift = if trial % 2 == 1 { 1000.0 } else { 0.0 };
        let data: Vec<f64> = (0..n * dim)
            .map(|_| f64::from(rng.random_range(0..m)) + shift)
            .collect();
        ties += if trial % 4 < 2 {
            let data: Vec<f32> = data.iter().map(|&v| v as f32).collect();
            labels_ties_as_codebook_and_statistics(&data, dim, k, trial)
        } else {
            labels_ties_as_codebook_and_statistics(&data, dim, k, trial)
        };
    }
    // The check means something only where rows are tied.
    assert!(ties > 100, "{ties} tied rows");
}

/// The check of [`a_fit_labels_ties_as_its_codebook_and_its_statistics_do`] on one data
/// set; how many rows were tied.
fn labels_ties_as_codebook_and_statistics<T: lloyd::Real>(
    data: &[T],
    dim: usize,
    k: usize,
    trial: u64,
) -> usize {
    let Ok(fit) = KMeans::new(k)
        .seed(trial)
        .device(Device::Cpu)
        .fit(data, dim)
    else {
        return 0;
    };
    let c = fit.codebook.centroids();
    let mut ties = 0;
    for (i, x) in data.chunks_exact(dim).enumerate() {
        let x: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
        let dist: Vec<f64> = c.chunks_exact(dim).map(|c| d2(&x, c)).collect();
        let best = dist.iter().copied().fold(f64::INFINITY, f64::min);
        let first = dist.iter().position(|&v| v == best).unwrap();
        ties += usize::from(dist.iter().filter(|&&v| v == best).count() > 1);
        assert_eq!(fit.labels[i] as usize, first, "trial {trial}, row {i}");
    }
    assert_eq!(fit.codebook.encode(data).unwrap(), fit.labels);
    let frame = lloyd::Extent::of(data, dim).unwrap().frame();
    let (_, labels) = lloyd::LloydStats::compute_labeled_on(
        &mut lloyd::Encoder::new(&Device::Cpu).unwrap(),
        &frame,
        data,
        None,
        c,
        0,
    )
    .unwrap();
    assert_eq!(labels, fit.labels, "trial {trial}");
    ties
}
