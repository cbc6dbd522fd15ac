//! The O(N log M) 1-D path against a brute-force O(N M) Lloyd iteration.

use lloyd::{Device, Lloyd1d};
use proptest::prelude::*;

/// Plain Lloyd from the same start (empirical quantiles of levels (2i+1)/2N); `None` when a
/// cell empties (the split policy is tested elsewhere).
fn brute_force(samples: &[f64], n: usize, iterations: usize) -> Option<(Vec<f64>, Vec<f64>, f64)> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let m = sorted.len();
    let mut c: Vec<f64> = (0..n)
        .map(|i| sorted[((2 * i + 1) * m / (2 * n)).min(m - 1)])
        .collect();
    let assign = |c: &[f64]| {
        let mut sums = vec![0.0; n];
        let mut counts = vec![0usize; n];
        let mut sse = 0.0;
        for &x in samples {
            let mut best = 0;
            for j in 1..n {
                if (x - c[j]).powi(2) < (x - c[best]).powi(2) {
                    best = j;
                }
            }
            sums[best] += x;
            counts[best] += 1;
            sse += (x - c[best]).powi(2);
        }
        (sums, counts, sse)
    };
    for _ in 0..iterations {
        let (sums, counts, _) = assign(&c);
        if counts.contains(&0) {
            return None;
        }
        for j in 0..n {
            c[j] = sums[j] / counts[j] as f64;
        }
    }
    let (_, counts, sse) = assign(&c);
    if counts.contains(&0) {
        return None;
    }
    let p = counts.iter().map(|&k| k as f64 / m as f64).collect();
    Some((c, p, sse / m as f64))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn fast_path_equals_brute_force(
        samples in prop::collection::vec(-50.0f64..50.0, 1..400),
        n in 1usize..12,
        iterations in 1usize..15,
    ) {
        let mut distinct = samples.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        prop_assume!(n <= distinct.len());
        let Some((c, p, mse)) = brute_force(&samples, n, iterations) else {
            return Ok(());
        };
        let q = Lloyd1d::new(n).iterations(iterations).tolerance(0.0).device(Device::Cpu)
            .fit_samples(&samples).unwrap();
        // The fast path may stop early at an exact fixed point; the brute force then stays put.
        for (a, b) in q.centroids.iter().zip(&c) {
            prop_assert!((a - b).abs() <= 1e-9 * (1.0 + b.abs()), "{:?} vs {:?}", q.centroids, c);
        }
        prop_assert_eq!(&q.probabilities, &p);
        prop_assert!((q.mse - mse).abs() <= 1e-9 * (1.0 + mse), "{} vs {}", q.mse, mse);
    }
}

/// Enough cells that the boundary searches run on several threads (and in any order): the
/// same quantizer as the brute force, on samples with many repeated values. (Continuous
/// values: on a grid, samples land on midpoints, where the two rules' roundings differ.)
#[test]
fn many_cells_equal_brute_force() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    for (m, n) in [(6_000usize, 130usize), (9_001, 257), (20_000, 700)] {
        // Drawn from a pool of 4 000 values: equal samples abound.
        let pool: Vec<f64> = (0..4_000)
            .map(|_| rng.random::<f64>() * 600.0 - 300.0)
            .collect();
        let samples: Vec<f64> = (0..m).map(|_| pool[rng.random_range(0..4_000)]).collect();
        let Some((c, p, mse)) = brute_force(&samples, n, 6) else {
            panic!("m {m}, n {n}: a cell emptied; pick other sizes");
        };
        let q = Lloyd1d::new(n)
            .iterations(6)
            .tolerance(0.0)
            .device(Device::Cpu)
            .fit_samples(&samples)
            .unwrap();
        for (a, b) in q.centroids.iter().zip(&c) {
            assert!(
                (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
                "m {m}, n {n}: {a} vs {b}"
            );
        }
        assert_eq!(q.probabilities, p, "m {m}, n {n}");
        assert!((q.mse - mse).abs() <= 1e-9 * (1.0 + mse));
    }
}
