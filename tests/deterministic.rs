//! The deterministic 1-D methods: exact optima, convergence for large N, and agreement with
//! the randomized Lloyd method.

use lloyd::{Deterministic1d, DeterministicMethod, Device, Law, Lloyd1d};

#[test]
fn known_optima_to_machine_precision() {
    let q = Deterministic1d::new(1)
        .fit(Law::Normal {
            mean: 2.0,
            std: 3.0,
        })
        .unwrap();
    assert!((q.centroids[0] - 2.0).abs() < 1e-12);
    assert!((q.distortion - 4.5).abs() < 1e-12);
    let q = Deterministic1d::new(2).fit(Law::standard_normal()).unwrap();
    let c = (2.0 / std::f64::consts::PI).sqrt();
    assert!((q.centroids[0] + c).abs() < 1e-12 && (q.centroids[1] - c).abs() < 1e-12);
    for n in [1usize, 5, 40] {
        let q = Deterministic1d::new(n)
            .fit(Law::Uniform {
                low: 0.0,
                high: 1.0,
            })
            .unwrap();
        for (i, x) in q.centroids.iter().enumerate() {
            assert!((x - (2 * i + 1) as f64 / (2 * n) as f64).abs() < 1e-12);
        }
        assert!((q.mse - 1.0 / (12.0 * (n * n) as f64)).abs() < 1e-14);
        assert!(
            q.probabilities
                .iter()
                .all(|p| (p - 1.0 / n as f64).abs() < 1e-12)
        );
    }
    // exponential, N = 1: the mean 1/λ and half the variance
    let q = Deterministic1d::new(1)
        .fit(Law::Exponential { rate: 2.0 })
        .unwrap();
    assert!((q.centroids[0] - 0.5).abs() < 1e-12 && (q.distortion - 0.125).abs() < 1e-12);
}

#[test]
fn newton_converges_for_large_n_where_lloyd_crawls() {
    for law in [
        Law::standard_normal(),
        Law::LogNormal {
            mu: 0.0,
            sigma: 0.25,
        },
        Law::Exponential { rate: 1.0 },
    ] {
        for n in [50usize, 500, 1000] {
            let q = Deterministic1d::new(n).fit(law).unwrap();
            assert!(
                q.summary.converged,
                "{law:?} N {n}: {} iterations",
                q.summary.iterations_run
            );
            assert!(
                q.summary.iterations_run < 200,
                "{law:?} N {n}: {}",
                q.summary.iterations_run
            );
            assert!(q.centroids.windows(2).all(|w| w[0] < w[1]));
            assert!((q.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            // Zador: N² D_N tends to a constant; here just a sanity bound on the order
            assert!(q.distortion > 0.0 && q.distortion < 1.0 / n as f64);
        }
    }
    let lloyd = Deterministic1d::new(200)
        .method(DeterministicMethod::Lloyd)
        .iterations(200)
        .fit(Law::standard_normal())
        .unwrap();
    let newton = Deterministic1d::new(200)
        .fit(Law::standard_normal())
        .unwrap();
    assert!(
        !lloyd.summary.converged,
        "Lloyd should still crawl after 200 iterations"
    );
    assert!(newton.distortion <= lloyd.distortion);
    for w in lloyd.summary.history.windows(2) {
        assert!(w[1].distortion <= w[0].distortion * (1.0 + 1e-14));
    }
}

#[test]
fn randomized_lloyd_approaches_the_exact_optimum() {
    let exact = Deterministic1d::new(4).fit(Law::standard_normal()).unwrap();
    let random = Lloyd1d::new(4)
        .samples(1_000_000)
        .iterations(1000)
        .seed(3)
        .device(Device::Cpu)
        .fit_law(Law::standard_normal())
        .unwrap();
    for (a, b) in random.centroids.iter().zip(&exact.centroids) {
        assert!((a - b).abs() < 3e-3, "{a} vs {b}");
    }
    assert!(
        (random.mse - exact.mse).abs() < 3e-3 * exact.mse,
        "{} vs {}",
        random.mse,
        exact.mse
    );
    // Max (1960): the optimal 4- and 10-point quantizers of N(0,1) have mse 0.1175 and 0.02293
    assert!((exact.mse - 0.11750).abs() < 1e-4, "{}", exact.mse);
    let ten = Deterministic1d::new(10)
        .fit(Law::standard_normal())
        .unwrap();
    assert!((ten.mse - 0.02293).abs() < 1e-5, "{}", ten.mse);
}
