//! Issue #9, item 6: weighted fits keep f64 centroids (exact ties break as scipy and
//! scikit-learn break them), and initialisations never start from a point of zero weight.

mod common;

use common::gaussian;
use common::gpu::gpu;
use lloyd::{Device, Error, Init, KMeans};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    d.extend(gpu());
    d
}

/// scipy's `test_kmeans_diff_convergence` (gh-8727): from [-3, 0.99] the points
/// [-3, -1, 0, 1, 1, 8] end at [-0.4, 8] with mean distance 1.0667. On the way the point 1 is
/// exactly equidistant from -4/3 and 10/3: it goes to the lower index, unless f32 rounding of
/// the centroids breaks the tie the other way (the weighted path ended at [-1.33, 3.33]).
#[test]
fn exact_ties_break_as_scipy_does() {
    let obs = [-3.0f64, -1.0, 0.0, 1.0, 1.0, 8.0];
    for dev in devices() {
        let p = KMeans::new(2)
            .init(Init::given(&[-3.0, 0.99]))
            .device(dev.clone());
        let fits = [
            ("unweighted", p.clone().fit(&obs, 1).unwrap()),
            ("weighted", p.fit_weighted(&obs, 1, &[1.0; 6]).unwrap()),
        ];
        // The GPU's centroids are f32 (on data centred and scaled into [-1, 1]).
        let tol = if dev == Device::Cpu { 1e-12 } else { 1e-6 };
        for (how, fit) in fits {
            let c = fit.codebook.centroids();
            assert!(
                (c[0] + 0.4).abs() < tol && (c[1] - 8.0).abs() < tol,
                "{how} on {dev}: {c:?}"
            );
            let mean_distance: f64 = obs
                .iter()
                .zip(&fit.labels)
                .map(|(x, &l)| (x - c[l as usize]).abs())
                .sum::<f64>()
                / 6.0;
            assert!(
                (mean_distance - 1.0666666666666667).abs() < tol,
                "{how} on {dev}"
            );
        }
    }
}

/// A point of zero weight never starts a centroid, with random points or k-means++, and
/// fewer weighted points than centroids is refused.
#[test]
fn zero_weight_points_never_start_a_centroid() {
    let n = 400;
    let data = gaussian(n, 2, 3);
    // Only every fourth point counts; the others sit far away so that a centroid started on
    // one of them would show.
    let mut shifted = data.clone();
    let mut w = vec![0.0f32; n];
    for i in 0..n {
        if i % 4 == 0 {
            w[i] = 1.0;
        } else {
            shifted[2 * i] += 1000.0;
        }
    }
    for init in [Init::RandomPoints, Init::KMeansPlusPlus] {
        for seed in 0..20 {
            let fit = KMeans::new(20)
                .init(init.clone())
                .seed(seed)
                .iterations(1)
                .tolerance(0.0)
                .device(Device::Cpu)
                .fit_weighted(&shifted, 2, &w)
                .unwrap();
            // After one iteration a centroid started on a zero-weight point has no mass and
            // stays put, far away.
            for c in fit.codebook.centroids().chunks_exact(2) {
                assert!(c[0] < 500.0, "{init:?} seed {seed}: a centroid at {c:?}");
            }
        }
    }
    let few = {
        let mut w = vec![0.0f32; n];
        w[..3].fill(1.0);
        w
    };
    match KMeans::new(5)
        .device(Device::Cpu)
        .fit_weighted(&data, 2, &few)
    {
        Err(Error::TooFewWeightedPoints { k: 5, positive: 3 }) => {}
        other => panic!("expected TooFewWeightedPoints, got {other:?}"),
    }
}
