//! CLVQ, the stochastic-gradient variant.

use lloyd::{Clvq, Deterministic1d, Device, Error, Law, Step};

#[test]
fn two_points_of_the_normal_approach_the_optimum() {
    let q = Clvq::new(2)
        .steps(1_000_000)
        .seed(5)
        .fit_law(Law::standard_normal())
        .unwrap();
    let c = (2.0 / std::f64::consts::PI).sqrt();
    assert!(
        (q.centroids[0] + c).abs() < 1e-2 && (q.centroids[1] - c).abs() < 1e-2,
        "{:?}",
        q.centroids
    );
    assert!((q.mse - (1.0 - 2.0 / std::f64::consts::PI)).abs() < 3e-3);
    assert!((q.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

#[test]
fn mini_batches_and_constant_steps_also_converge() {
    let exact = Deterministic1d::new(5)
        .fit(Law::Uniform {
            low: 0.0,
            high: 1.0,
        })
        .unwrap();
    let q = Clvq::new(5)
        .steps(20_000)
        .batch(64)
        .seed(1)
        .fit_law(Law::Uniform {
            low: 0.0,
            high: 1.0,
        })
        .unwrap();
    for (a, b) in q.centroids.iter().zip(&exact.centroids) {
        assert!((a - b).abs() < 1e-2, "{a} vs {b}");
    }
    let q = Clvq::new(5)
        .steps(200_000)
        .step(Step::Constant(0.01))
        .fit_law(Law::Uniform {
            low: 0.0,
            high: 1.0,
        })
        .unwrap();
    for (a, b) in q.centroids.iter().zip(&exact.centroids) {
        assert!((a - b).abs() < 2e-2, "{a} vs {b}");
    }
    let a = Clvq::new(3)
        .steps(1000)
        .seed(9)
        .fit_law(Law::standard_normal())
        .unwrap();
    let b = Clvq::new(3)
        .steps(1000)
        .seed(9)
        .fit_law(Law::standard_normal())
        .unwrap();
    assert_eq!(a.centroids, b.centroids);
}

#[test]
fn parameter_rules() {
    assert!(matches!(
        Clvq::new(0).fit_law(Law::default()),
        Err(Error::ZeroCentroids)
    ));
    assert!(matches!(
        Clvq::new(2).steps(0).fit_law(Law::default()),
        Err(Error::ZeroIterations)
    ));
    assert!(matches!(
        Clvq::new(2).batch(0).fit_law(Law::default()),
        Err(Error::ZeroBatch)
    ));
    assert!(matches!(
        Clvq::new(2)
            .step(Step::Constant(0.0))
            .fit_law(Law::default()),
        Err(Error::InvalidStep(_))
    ));
    let gamma = rand_distr::Gamma::new(2.0, 1.0).unwrap();
    assert!(matches!(
        Clvq::new(2).device(Device::Gpu).fit_distribution(&gamma),
        Err(Error::Unsupported(_))
    ));
}
