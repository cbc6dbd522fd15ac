//! d-dimensional quantizers of laws, the cubature formulas, and the call-price check.

use lloyd::{Deterministic1d, Device, Law, Lloyd1d, LloydNd};

#[test]
fn one_point_is_the_origin_with_distortion_one() {
    let q = LloydNd::new(1, 2)
        .samples(200_000)
        .device(Device::Cpu)
        .fit_normal()
        .unwrap();
    assert!(
        q.centroid(0).iter().all(|c| c.abs() < 1e-2),
        "{:?}",
        q.centroids
    );
    assert!((q.distortion - 1.0).abs() < 1.5e-2, "{}", q.distortion);
    assert_eq!(q.probabilities, vec![1.0]);
}

#[test]
fn distortion_decreases_with_n_and_cubature_is_stationary() {
    let mut last = f64::INFINITY;
    for n in [1usize, 2, 4, 8, 16, 32] {
        let q = LloydNd::new(n, 2)
            .samples(100_000)
            .iterations(60)
            .seed(1)
            .device(Device::Cpu)
            .fit_normal()
            .unwrap();
        assert!(q.distortion < last, "N {n}: {} >= {last}", q.distortion);
        last = q.distortion;
        assert!((q.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // At a Lloyd fixed point E|X̂|² = E|X|² − E|X − X̂|² (here E|X|² = 2 up to sampling).
        let second = q.expectation(|x| x.iter().map(|v| v * v).sum());
        assert!(
            (second + q.mse - 2.0).abs() < 2e-2,
            "N {n}: {second} + {}",
            q.mse
        );
        // E[X] = 0 is integrated exactly by a stationary quantizer (on its samples).
        assert!(q.expectation(|x| x[0]).abs() < 1e-2);
    }
}

#[test]
fn fresh_samples_variant_and_svg_picture() {
    let q = LloydNd::new(12, 2)
        .samples(20_000)
        .iterations(30)
        .fresh_samples(true)
        .device(Device::Cpu)
        .fit_normal()
        .unwrap();
    assert_eq!(q.summary.iterations_run, 30);
    let fixed = LloydNd::new(12, 2)
        .samples(20_000)
        .iterations(30)
        .device(Device::Cpu)
        .fit_normal()
        .unwrap();
    assert!((q.distortion - fixed.distortion).abs() < 0.1 * fixed.distortion);
    let svg = q.svg().unwrap();
    assert_eq!(svg.matches("<polygon").count(), 12);
    assert_eq!(svg.matches("<circle").count(), 12);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let dir = tempfile::tempdir().unwrap();
    q.save_svg(dir.path().join("cells.svg")).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("cells.svg")).unwrap(),
        svg
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
    let three = LloydNd::new(3, 3)
        .samples(1000)
        .iterations(2)
        .device(Device::Cpu)
        .fit_normal()
        .unwrap();
    assert!(three.svg().is_err());
}

/// E[(X − K)+] for X = S₀ exp((r − σ²/2)T + σ√T Z): the undiscounted Black–Scholes price.
fn black_scholes_forward_call(s0: f64, k: f64, r: f64, sigma: f64, t: f64) -> f64 {
    let phi = |x: f64| 0.5 * libm_erfc(-x / std::f64::consts::SQRT_2);
    let st = sigma * t.sqrt();
    let d1 = ((s0 / k).ln() + (r + 0.5 * sigma * sigma) * t) / st;
    let d2 = d1 - st;
    s0 * (r * t).exp() * phi(d1) - k * phi(d2)
}

/// erfc by its continued fraction / series (double precision is enough for a test oracle).
fn libm_erfc(x: f64) -> f64 {
    // Abramowitz–Stegun 7.1.26 is too coarse; use the complementary error function from
    // the incomplete gamma series / continued fraction.
    if x < 0.0 {
        return 2.0 - libm_erfc(-x);
    }
    if x < 2.0 {
        // series for erf
        let mut sum = x;
        let mut term = x;
        let x2 = x * x;
        for n in 1..200 {
            term *= -x2 / n as f64;
            let add = term / (2 * n + 1) as f64;
            sum += add;
            if add.abs() < 1e-18 {
                break;
            }
        }
        1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum
    } else {
        // Lentz continued fraction
        let mut f = x;
        let mut c = x;
        let mut d = 0.0;
        for n in 1..300 {
            let a = n as f64 / 2.0;
            d = x + a * d;
            d = 1.0 / d;
            c = x + a / c;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (-x * x).exp() / (f * std::f64::consts::PI.sqrt())
    }
}

#[test]
fn call_price_converges_to_black_scholes() {
    let (s0, k, r, sigma, t): (f64, f64, f64, f64, f64) = (100.0, 105.0, 0.02, 0.25, 1.0);
    let law = Law::LogNormal {
        mu: s0.ln() + (r - 0.5 * sigma * sigma) * t,
        sigma: sigma * t.sqrt(),
    };
    let exact = black_scholes_forward_call(s0, k, r, sigma, t);
    let mut last = f64::INFINITY;
    for n in [5usize, 20, 80, 320] {
        let q = Deterministic1d::new(n).fit(law).unwrap();
        let price = q.expectation(|x| (x - k).max(0.0));
        let err = (price - exact).abs();
        assert!(err < last, "N {n}: error {err} >= {last}");
        last = err;
    }
    assert!(last < 1e-3 * exact, "{last} vs {exact}");
    let q = Lloyd1d::new(50)
        .samples(1_000_000)
        .iterations(200)
        .device(Device::Cpu)
        .fit_law(law)
        .unwrap();
    let price = q.expectation(|x| (x - k).max(0.0));
    assert!((price - exact).abs() < 2e-2 * exact, "{price} vs {exact}");
}
