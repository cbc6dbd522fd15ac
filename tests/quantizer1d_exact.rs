//! The 1-D randomized Lloyd method against optima known in closed form.

use lloyd::{Device, Law, Lloyd1d};

const M: usize = 1_000_000;
const TOL: f64 = 3e-3;

fn fit(n: usize, law: Law) -> lloyd::Quantizer1d {
    Lloyd1d::new(n)
        .samples(M)
        .iterations(200)
        .seed(7)
        .device(Device::Cpu)
        .fit_law(law)
        .unwrap()
}

#[test]
fn one_point_is_the_mean_with_half_the_variance() {
    let q = fit(
        1,
        Law::Normal {
            mean: 3.0,
            std: 2.0,
        },
    );
    assert!(
        (q.centroids[0] - 3.0).abs() < 2.0 * TOL * 2.0,
        "{:?}",
        q.centroids
    );
    assert!(
        (q.distortion - 4.0 / 2.0).abs() < 4.0 * TOL,
        "{}",
        q.distortion
    );
    assert_eq!(q.probabilities, vec![1.0]);
    assert!((q.mse - 2.0 * q.distortion).abs() < 1e-15);
}

#[test]
fn two_points_of_the_standard_normal() {
    let q = fit(2, Law::standard_normal());
    let c = (2.0 / std::f64::consts::PI).sqrt();
    assert!((q.centroids[0] + c).abs() < TOL, "{:?}", q.centroids);
    assert!((q.centroids[1] - c).abs() < TOL, "{:?}", q.centroids);
    assert!(
        (q.mse - (1.0 - 2.0 / std::f64::consts::PI)).abs() < TOL,
        "{}",
        q.mse
    );
    assert!((q.probabilities[0] - 0.5).abs() < TOL);
}

#[test]
fn uniform_cells_are_equal_intervals() {
    for n in [1usize, 3, 8, 20] {
        let q = fit(
            n,
            Law::Uniform {
                low: 0.0,
                high: 1.0,
            },
        );
        for (i, c) in q.centroids.iter().enumerate() {
            let want = (2 * i + 1) as f64 / (2 * n) as f64;
            assert!((c - want).abs() < TOL, "n {n} i {i}: {c} vs {want}");
        }
        let mse = 1.0 / (12.0 * (n * n) as f64);
        assert!(
            (q.mse - mse).abs() < TOL * mse.max(0.01),
            "n {n}: {} vs {mse}",
            q.mse
        );
    }
}

#[test]
fn lloyd_never_increases_the_distortion_and_keeps_order() {
    for law in [
        Law::standard_normal(),
        Law::Exponential { rate: 2.0 },
        Law::LogNormal {
            mu: 0.0,
            sigma: 0.5,
        },
    ] {
        let q = Lloyd1d::new(37)
            .samples(200_001)
            .iterations(60)
            .seed(3)
            .device(Device::Cpu)
            .fit_law(law)
            .unwrap();
        for w in q.summary.history.windows(2) {
            assert!(
                w[1].mse <= w[0].mse * (1.0 + 1e-12),
                "{law:?}: {} > {}",
                w[1].mse,
                w[0].mse
            );
        }
        assert!(q.mse <= q.summary.history.last().unwrap().mse * (1.0 + 1e-12));
        assert!(
            q.centroids.windows(2).all(|w| w[0] < w[1]),
            "{law:?} not sorted"
        );
        let total: f64 = q.probabilities.iter().sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
        assert!(q.probabilities.iter().all(|&p| p > 0.0));
    }
}

#[test]
fn same_seed_same_quantizer_other_seed_other_samples() {
    let p = Lloyd1d::new(9)
        .samples(100_000)
        .iterations(20)
        .device(Device::Cpu);
    let a = p.clone().seed(5).fit_law(Law::standard_normal()).unwrap();
    let b = p.clone().seed(5).fit_law(Law::standard_normal()).unwrap();
    let c = p.seed(6).fit_law(Law::standard_normal()).unwrap();
    assert_eq!(a.centroids, b.centroids);
    assert_eq!(a.probabilities, b.probabilities);
    assert_eq!(a.distortion, b.distortion);
    assert_ne!(a.centroids, c.centroids);
}

#[test]
fn any_rand_distr_law_and_caller_samples() {
    let gamma = rand_distr::Gamma::new(2.0, 1.0).unwrap();
    let q = Lloyd1d::new(5)
        .samples(300_000)
        .device(Device::Cpu)
        .fit_distribution(&gamma)
        .unwrap();
    // E[X] = 2 for Gamma(2, 1); the cubature integrates x exactly at a Lloyd fixed point.
    assert!((q.expectation(|x| x) - 2.0).abs() < 0.02);

    let samples: Vec<f64> = (0..1000).map(|i| (i % 10) as f64).collect();
    let q = Lloyd1d::new(10)
        .device(Device::Cpu)
        .fit_samples(&samples)
        .unwrap();
    assert_eq!(q.centroids, (0..10).map(f64::from).collect::<Vec<_>>());
    assert_eq!(q.mse, 0.0);
    assert!(q.probabilities.iter().all(|&p| (p - 0.1).abs() < 1e-12));
}

#[test]
fn duplicated_samples_leave_no_nan() {
    // Three distinct values, five cells: two cells cannot be populated.
    let samples: Vec<f64> = (0..300).map(|i| (i % 3) as f64).collect();
    let q = Lloyd1d::new(5)
        .device(Device::Cpu)
        .fit_samples(&samples)
        .unwrap();
    assert!(q.centroids.iter().all(|c| c.is_finite()));
    assert!(q.probabilities.iter().all(|p| p.is_finite()));
    assert!((q.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert_eq!(q.mse, 0.0);
}
