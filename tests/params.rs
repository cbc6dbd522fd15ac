//! One small test per parameter rule: bad input gets its own error, never a panic or a NaN.

use lloyd::{Codebook, Device, Error, Init, KMeans, Law, Lloyd1d, LloydNd};

const DATA: [f32; 8] = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];

fn cpu(k: usize) -> KMeans {
    KMeans::new(k).device(Device::Cpu)
}

#[test]
fn k_zero() {
    assert!(matches!(cpu(0).fit(&DATA, 2), Err(Error::ZeroCentroids)));
    assert!(matches!(
        Lloyd1d::new(0).fit_law(Law::default()),
        Err(Error::ZeroCentroids)
    ));
}

#[test]
fn zero_iterations() {
    assert!(matches!(
        cpu(1).iterations(0).fit(&DATA, 2),
        Err(Error::ZeroIterations)
    ));
    assert!(matches!(
        Lloyd1d::new(2).iterations(0).fit_law(Law::default()),
        Err(Error::ZeroIterations)
    ));
    // The d-D quantizer too, on every device (it ran zero iterations and returned its start).
    assert!(matches!(
        LloydNd::new(2, 2).iterations(0).fit_normal(),
        Err(Error::ZeroIterations)
    ));
}

#[test]
fn bad_tolerance() {
    assert!(matches!(
        cpu(1).tolerance(-1.0).fit(&DATA, 2),
        Err(Error::InvalidTolerance(_))
    ));
    assert!(matches!(
        cpu(1).tolerance(f64::NAN).fit(&DATA, 2),
        Err(Error::InvalidTolerance(_))
    ));
}

#[test]
fn empty_data() {
    assert!(matches!(cpu(1).fit::<f32>(&[], 2), Err(Error::EmptyData)));
    assert!(matches!(
        Lloyd1d::new(1).fit_samples(&[]),
        Err(Error::EmptyData)
    ));
}

#[test]
fn zero_dimension() {
    assert!(matches!(cpu(1).fit(&DATA, 0), Err(Error::ZeroDimension)));
}

#[test]
fn shape_mismatch() {
    assert!(matches!(
        cpu(1).fit(&DATA, 3),
        Err(Error::ShapeMismatch { len: 8, dim: 3 })
    ));
}

#[test]
fn non_finite_data() {
    let mut d = DATA;
    d[5] = f32::NAN;
    assert!(matches!(
        cpu(1).fit(&d, 2),
        Err(Error::NonFiniteData {
            point: 2,
            coordinate: 1,
            ..
        })
    ));
    d[5] = f32::INFINITY;
    assert!(matches!(
        cpu(1).fit(&d, 2),
        Err(Error::NonFiniteData { .. })
    ));
    assert!(matches!(
        Lloyd1d::new(1).fit_samples(&[1.0, f64::NEG_INFINITY]),
        Err(Error::NonFiniteData { point: 1, .. })
    ));
}

#[test]
fn more_centroids_than_points() {
    assert!(matches!(
        cpu(5).fit(&DATA, 2),
        Err(Error::TooManyCentroids { k: 5, n: 4 })
    ));
    assert!(matches!(
        Lloyd1d::new(3).fit_samples(&[1.0, 2.0]),
        Err(Error::TooManyCentroids { k: 3, n: 2 })
    ));
    assert!(matches!(
        Lloyd1d::new(30).samples(10).fit_law(Law::default()),
        Err(Error::TooManyCentroids { .. })
    ));
}

#[test]
fn weights_length() {
    assert!(matches!(
        cpu(1).fit_weighted(&DATA, 2, &[1.0; 3]),
        Err(Error::WeightsLength {
            weights: 3,
            points: 4
        })
    ));
}

#[test]
fn invalid_weight() {
    assert!(matches!(
        cpu(1).fit_weighted(&DATA, 2, &[1.0, -1.0, 1.0, 1.0]),
        Err(Error::InvalidWeight { index: 1, .. })
    ));
    assert!(matches!(
        cpu(1).fit_weighted(&DATA, 2, &[1.0, 1.0, f32::NAN, 1.0]),
        Err(Error::InvalidWeight { index: 2, .. })
    ));
}

#[test]
fn weight_too_large() {
    // Float64 weights are read as they are; beyond f32's range the exact sums cannot hold
    // them (rounded to f32 they had become infinite).
    assert!(matches!(
        cpu(1).fit_weighted(&DATA, 2, &[1.0, 1.0, 1.0, 1e39f64]),
        Err(Error::WeightTooLarge { index: 3, .. })
    ));
    assert!(
        cpu(1)
            .fit_weighted(&DATA, 2, &[1.0, 1.0, 1.0, 3e38f64])
            .is_ok()
    );
}

#[test]
fn zero_total_weight() {
    assert!(matches!(
        cpu(1).fit_weighted(&DATA, 2, &[0.0; 4]),
        Err(Error::ZeroTotalWeight)
    ));
}

#[test]
fn init_shape() {
    let p = cpu(2).init(Init::given(&[0.0; 3]));
    assert!(matches!(
        p.fit(&DATA, 2),
        Err(Error::InitShape {
            len: 3,
            k: 2,
            dim: 2
        })
    ));
}

#[test]
fn init_non_finite() {
    let p = cpu(2).init(Init::given(&[0.0, 0.0, f32::NAN, 1.0]));
    assert!(matches!(
        p.fit(&DATA, 2),
        Err(Error::InitNonFinite { index: 1 })
    ));
}

#[test]
fn zero_samples() {
    assert!(matches!(
        Lloyd1d::new(1).samples(0).fit_law(Law::default()),
        Err(Error::ZeroSamples)
    ));
}

#[test]
fn invalid_law() {
    for law in [
        Law::Normal {
            mean: 0.0,
            std: 0.0,
        },
        Law::Uniform {
            low: 1.0,
            high: 1.0,
        },
        Law::Exponential { rate: -1.0 },
        Law::LogNormal {
            mu: f64::NAN,
            sigma: 1.0,
        },
    ] {
        assert!(
            matches!(Lloyd1d::new(1).fit_law(law), Err(Error::InvalidLaw(_))),
            "{law:?}"
        );
    }
}

#[test]
fn label_out_of_range() {
    let cb = Codebook::new(vec![0.0, 1.0], 1).unwrap();
    assert!(matches!(
        cb.decode(&[0u32, 2]),
        Err(Error::LabelOutOfRange {
            index: 1,
            label: 2,
            k: 2
        })
    ));
}

#[test]
fn codebook_shape_and_encode_shape() {
    assert!(matches!(
        Codebook::new(vec![0.0; 5], 2),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        Codebook::new(vec![f32::NAN; 2], 2),
        Err(Error::NonFiniteData { .. })
    ));
    let cb = Codebook::new(vec![0.0; 4], 2).unwrap();
    assert!(matches!(
        cb.encode(&[1.0, 2.0, 3.0]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(cb.encode::<f32>(&[]), Err(Error::EmptyData)));
}

#[test]
fn messages_are_one_readable_line() {
    let e = cpu(5).fit(&DATA, 2).unwrap_err().to_string();
    assert_eq!(
        e,
        "5 centroids were asked for but the data has only 4 points: use k <= n"
    );
    assert!(!Error::ZeroCentroids.to_string().contains('\n'));
}

#[test]
fn zero_restarts() {
    assert!(matches!(
        cpu(1).restarts(0).fit(&DATA, 2),
        Err(Error::ZeroRestarts)
    ));
}

#[test]
fn zero_kmeans_parallel_rounds() {
    let init = lloyd::Init::KMeansParallel {
        rounds: 0,
        oversampling: 2.0,
    };
    assert!(matches!(
        cpu(1).init(init).fit(&DATA, 2),
        Err(Error::ZeroRounds)
    ));
}

#[test]
fn invalid_kmeans_parallel_oversampling() {
    for oversampling in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let init = lloyd::Init::KMeansParallel {
            rounds: 5,
            oversampling,
        };
        assert!(matches!(
            cpu(1).init(init).fit(&DATA, 2),
            Err(Error::InvalidOversampling(_))
        ));
    }
}
