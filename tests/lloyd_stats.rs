//! Lloyd statistics as a public value: exact merges, and a fit equal to the fit merged from
//! the statistics of its parts.

mod common;

use lloyd::{Device, Extent, Init, KMeans, LloydRun, LloydStats, Weights};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Random cut points of `n` rows into `parts` non-empty parts.
fn random_split(n: usize, parts: usize, rng: &mut ChaCha8Rng) -> Vec<(usize, usize)> {
    let mut cuts: Vec<usize> = (0..parts - 1).map(|_| rng.random_range(1..n)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut bounds = vec![0];
    bounds.extend(cuts);
    bounds.push(n);
    bounds.windows(2).map(|w| (w[0], w[1])).collect()
}

fn shifted_blobs(n: usize, dim: usize, seed: u64) -> Vec<f64> {
    common::blobs(n, dim, 6, seed)
        .iter()
        .enumerate()
        .map(|(i, &v)| f64::from(v) * 3.0 + 1e4 + (i % dim) as f64)
        .collect()
}

/// The statistics of `parts` (row ranges) of `data` against centroids `c`, merged in order.
fn merged_pass(
    frame: &lloyd::Frame,
    data: &[f64],
    dim: usize,
    w: Option<&[f32]>,
    parts: &[(usize, usize)],
    c: &[f64],
) -> LloydStats {
    let mut all: Option<LloydStats> = None;
    for &(a, b) in parts {
        let s = LloydStats::compute(
            frame,
            &data[a * dim..b * dim],
            w.map(|w| Weights::from(&w[a..b])),
            c,
            a as u64,
        )
        .unwrap();
        match &mut all {
            Some(x) => x.merge(&s).unwrap(),
            None => all = Some(s),
        }
    }
    all.unwrap()
}

/// The statistics of random splits, merged in random orders, are the statistics of the whole
/// to the bit, and so are the centroids they update to.
#[test]
fn merging_is_exact_whatever_the_split_and_the_order() {
    let (n, dim, k) = (3001, 5, 9);
    let data = shifted_blobs(n, dim, 1);
    let weights: Vec<f32> = (0..n).map(|i| 0.25 + (i % 7) as f32).collect();
    let centroids: Vec<f64> = data[..k * dim].to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for weighted in [false, true] {
        let w = weighted.then_some(weights.as_slice());
        let frame = Extent::of_weighted(&data, dim, w.map(Weights::from))
            .unwrap()
            .frame();
        let whole =
            LloydStats::compute(&frame, &data, w.map(Weights::from), &centroids, 0).unwrap();
        for trial in 0..6 {
            let parts = random_split(n, 2 + trial, &mut rng);
            let mut stats: Vec<LloydStats> = parts
                .iter()
                .map(|&(a, b)| {
                    let pw = w.map(|w| Weights::from(&w[a..b]));
                    LloydStats::compute(&frame, &data[a * dim..b * dim], pw, &centroids, a as u64)
                        .unwrap()
                })
                .collect();
            stats.shuffle(&mut rng);
            let mut merged = stats[0].clone();
            for s in &stats[1..] {
                merged.merge(s).unwrap();
            }
            assert_eq!(merged, whole, "weighted {weighted}, parts {parts:?}");
            assert_eq!(merged.update().unwrap(), whole.update().unwrap());
        }
        assert_eq!(
            whole.counts().iter().sum::<u64>(),
            n as u64,
            "every row counted"
        );
    }
}

/// Merging is associative: (a + b) + c equals a + (b + c) to the bit.
#[test]
fn merging_is_associative() {
    let (n, dim) = (999, 3);
    let data = shifted_blobs(n, dim, 2);
    let centroids: Vec<f64> = data[..4 * dim].to_vec();
    let frame = Extent::of(&data, dim).unwrap().frame();
    let part = |a: usize, b: usize| {
        LloydStats::compute(&frame, &data[a * dim..b * dim], None, &centroids, a as u64).unwrap()
    };
    let (a, b, c) = (part(0, 100), part(100, 700), part(700, n));
    let mut left = a.clone();
    left.merge(&b).unwrap();
    left.merge(&c).unwrap();
    let mut bc = b.clone();
    bc.merge(&c).unwrap();
    let mut right = a.clone();
    right.merge(&bc).unwrap();
    assert_eq!(left, right);
}

/// A K-means fit on the CPU equals, bit for bit, Lloyd's iteration run by hand over the
/// statistics of parts of the data, merged: centroids, counts and inertia.
#[test]
fn a_fit_equals_the_fit_merged_from_parts() {
    let (n, dim, k, iterations) = (4000, 4, 12, 15);
    let data = shifted_blobs(n, dim, 3);
    let weights: Vec<f32> = (0..n).map(|i| 1.0 + (i % 3) as f32 * 0.5).collect();
    let init: Vec<f64> = data[..k * dim].to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for weighted in [false, true] {
        let w = weighted.then_some(weights.as_slice());
        let params = KMeans::new(k)
            .iterations(iterations)
            .tolerance(0.0)
            .init(Init::Centroids(init.clone()))
            .device(Device::Cpu);
        let fit = match w {
            Some(w) => params.fit_weighted(&data, dim, w).unwrap(),
            None => params.fit(&data, dim).unwrap(),
        };
        let parts = random_split(n, 5, &mut rng);
        let mut extent: Option<Extent> = None;
        for &(a, b) in parts.iter().rev() {
            let e = Extent::of_weighted(
                &data[a * dim..b * dim],
                dim,
                w.map(|w| Weights::from(&w[a..b])),
            )
            .unwrap();
            match &mut extent {
                Some(x) => x.merge(&e).unwrap(),
                None => extent = Some(e),
            }
        }
        let frame = extent.unwrap().including(&init).frame();
        let pass = |c: &[f64]| merged_pass(&frame, &data, dim, w, &parts, c);
        let mut c = init.clone();
        for _ in 0..fit.summary.iterations_run {
            c = pass(&c).update().unwrap().centroids;
        }
        assert_eq!(fit.codebook.centroids(), &c[..], "weighted {weighted}");
        let last = pass(&c);
        assert_eq!(fit.counts, last.counts());
        assert_eq!(fit.inertia, last.inertia());
        assert_eq!(fit.cell_weights, last.cell_weights());
    }
}

/// The same in one dimension, where the fit's cells are intervals over sorted values: a
/// 1-D fit (unsorted start, far-off centroids whose cells are empty and get split) equals
/// Lloyd's iteration over merged statistics of random parts, to the bit.
#[test]
fn a_1d_fit_equals_the_fit_merged_from_parts() {
    let n = 5000;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let data: Vec<f64> = (0..n)
        .map(|i| 1e4 + (i % 7) as f64 * 0.25 + rng.random::<f64>() * 0.1)
        .collect();
    let mut init: Vec<f64> = data[..9].iter().rev().copied().collect();
    init.extend([2e4, 3e4, 1e4 + 0.3]);
    let k = init.len();
    let fit = KMeans::new(k)
        .iterations(25)
        .tolerance(0.0)
        .init(Init::Centroids(init.clone()))
        .device(Device::Cpu)
        .fit(&data, 1)
        .unwrap();
    assert!(
        fit.summary.empty_cells_split > 0,
        "the test must split cells"
    );
    let parts = random_split(n, 6, &mut rng);
    let mut extent = Extent::of(&data[parts[0].0..parts[0].1], 1).unwrap();
    for &(a, b) in &parts[1..] {
        extent.merge(&Extent::of(&data[a..b], 1).unwrap()).unwrap();
    }
    let frame = extent.including(&init).frame();
    // Parts merged in reverse this time.
    let reversed: Vec<(usize, usize)> = parts.iter().rev().copied().collect();
    let pass = |c: &[f64]| merged_pass(&frame, &data, 1, None, &reversed, c);
    let mut c = init.clone();
    for _ in 0..fit.summary.iterations_run {
        c = pass(&c).update().unwrap().centroids;
    }
    assert_eq!(fit.codebook.centroids(), &c[..]);
    let last = pass(&c);
    assert_eq!(fit.counts, last.counts());
    assert_eq!(fit.inertia, last.inertia());
    assert_eq!(fit.cell_weights, last.cell_weights());
}

/// Empty cells are re-seeded by the fit's policy, and merged parts agree on the donors.
#[test]
fn empty_cells_split_the_same_way_merged() {
    let dim = 2;
    let data: Vec<f64> = (0..200)
        .flat_map(|i| [(i % 10) as f64, (i / 10) as f64 * 0.5])
        .collect();
    // Three centroids far away: their cells are empty.
    let mut centroids = data[..2 * dim].to_vec();
    centroids.extend([500.0, 500.0, 600.0, 600.0, 700.0, 700.0]);
    let frame = Extent::of(&data, dim)
        .unwrap()
        .including(&centroids)
        .frame();
    let whole = LloydStats::compute(&frame, &data, None, &centroids, 0).unwrap();
    let mut parts = LloydStats::compute(&frame, &data[200..], None, &centroids, 100).unwrap();
    parts
        .merge(&LloydStats::compute(&frame, &data[..200], None, &centroids, 0).unwrap())
        .unwrap();
    let (a, b) = (whole.update().unwrap(), parts.update().unwrap());
    assert_eq!(a, b);
    // Two populated cells: two donors, one split each; the third stays put, finite.
    assert_eq!(a.empty_cells_split, 2);
    assert_eq!(&a.centroids[8..], &[700.0, 700.0]);
    assert!(a.centroids[..8].iter().all(|v| v.is_finite() && *v < 100.0));
}

/// Each rule of `compute` and `merge` refuses with one clear error.
#[test]
fn bad_inputs_are_refused() {
    let data = [0.0f64, 1.0, 2.0, 3.0];
    let frame = Extent::of(&data, 2).unwrap().frame();
    let c = [0.0, 1.0];
    assert!(LloydStats::compute(&frame, &data[..3], None, &c, 0).is_err());
    assert!(LloydStats::compute(&frame, &data, None, &[0.0, 1.0, 2.0], 0).is_err());
    assert!(LloydStats::compute(&frame, &data, None, &[f64::NAN, 1.0], 0).is_err());
    assert!(LloydStats::compute(&frame, &data, Some(Weights::F32(&[1.0])), &c, 0).is_err());
    assert!(LloydStats::compute(&frame, &data, Some(Weights::F32(&[1.0, -1.0])), &c, 0).is_err());
    // Weights the frame never saw, rows outside it.
    assert!(LloydStats::compute(&frame, &data, Some(Weights::F32(&[4.0, 1.0])), &c, 0).is_err());
    assert!(LloydStats::compute(&frame, &[50.0, 50.0], None, &c, 0).is_err());
    // Statistics of different centroids do not merge.
    let mut a = LloydStats::compute(&frame, &data, None, &c, 0).unwrap();
    let b = LloydStats::compute(&frame, &data, None, &[0.0, 2.0], 0).unwrap();
    assert!(a.merge(&b).is_err());
    // A part whose weights are all zero is a legal part.
    let wf = Extent::of_weighted(&data, 2, Some(Weights::F32(&[1.0, 0.0])))
        .unwrap()
        .frame();
    assert!(LloydStats::compute(&wf, &data[2..], Some(Weights::F32(&[0.0])), &c, 1).is_ok());
}

/// A [`LloydRun`] fed the merged statistics of parts stops where a fit stops and reports
/// its history, to the bit: with a tolerance, spherical, weighted, and in 1-D.
#[test]
fn a_run_over_parts_is_the_fit() {
    let (n, k) = (3000, 7);
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let weights: Vec<f32> = (0..n).map(|i| 0.5 + (i % 5) as f32).collect();
    for (dim, weighted, spherical, tolerance, twins) in [
        (3, false, false, 1e-4, false),
        (3, true, false, 1e-3, false),
        (4, false, true, 0.0, false),
        (1, false, false, 1e-6, false),
        (1, true, false, 0.0, false),
        // Three centroids on one point: two cells empty from the start, split by the policy
        // (the 1-D backend reads its cells' ends only then).
        (1, false, false, 0.0, true),
    ] {
        let data = shifted_blobs(n, dim, 30 + dim as u64);
        let w = weighted.then_some(weights.as_slice());
        let mut init: Vec<f64> = data[5 * dim..(5 + k) * dim].to_vec();
        if twins {
            init[1] = init[0];
            init[4] = init[0];
        }
        let params = KMeans::new(k)
            .iterations(200)
            .tolerance(tolerance)
            .spherical(spherical)
            .init(Init::Centroids(init.clone()))
            .device(Device::Cpu);
        let fit = match w {
            Some(w) => params.fit_weighted(&data, dim, w).unwrap(),
            None => params.fit(&data, dim).unwrap(),
        };
        let parts = random_split(n, 4, &mut rng);
        let mut extent: Option<Extent> = None;
        for &(a, b) in &parts {
            let e = Extent::of_weighted(
                &data[a * dim..b * dim],
                dim,
                w.map(|w| Weights::from(&w[a..b])),
            )
            .unwrap();
            match &mut extent {
                Some(x) => x.merge(&e).unwrap(),
                None => extent = Some(e),
            }
        }
        let extent = extent.unwrap();
        let total = extent.total_weight();
        let frame = extent.including(&init).frame();
        let mut run = LloydRun::new(&frame, &init, total, tolerance, spherical).unwrap();
        while !run.converged() && run.history().len() < 200 {
            let stats = merged_pass(&frame, &data, dim, w, &parts, run.centroids());
            run.step(&stats, 0.0).unwrap();
        }
        let case = format!(
            "dim {dim}, weighted {weighted}, spherical {spherical}, tol {tolerance}, twins {twins}"
        );
        assert_eq!(twins, fit.summary.empty_cells_split > 0, "{case}");
        assert_eq!(run.history().len(), fit.summary.iterations_run, "{case}");
        assert_eq!(run.converged(), fit.summary.converged, "{case}");
        let mse = |h: &[lloyd::IterationStats]| h.iter().map(|s| s.mse).collect::<Vec<_>>();
        assert_eq!(mse(run.history()), mse(&fit.summary.history), "{case}");
        assert_eq!(fit.codebook.centroids(), run.centroids(), "{case}");
        let last = merged_pass(&frame, &data, dim, w, &parts, run.centroids());
        assert_eq!(fit.counts, last.counts(), "{case}");
        assert_eq!(fit.mse, last.inertia() / total, "{case}");
    }
}

/// A run refuses statistics of other centroids, and bad parameters.
#[test]
fn a_run_refuses_foreign_statistics_and_bad_parameters() {
    let data = shifted_blobs(100, 2, 5);
    let frame = Extent::of(&data, 2).unwrap().frame();
    let init = data[..6].to_vec();
    let mut run = LloydRun::new(&frame, &init, 100.0, 0.0, false).unwrap();
    let other = LloydStats::compute(&frame, &data, None, &data[6..12], 0).unwrap();
    assert!(run.step(&other, 0.0).is_err());
    assert!(LloydRun::new(&frame, &init, 0.0, 0.0, false).is_err());
    assert!(LloydRun::new(&frame, &init, 100.0, -1.0, false).is_err());
    assert!(LloydRun::new(&frame, &init[..5], 100.0, 0.0, false).is_err());
    let mut nan = init.clone();
    nan[3] = f64::NAN;
    assert!(LloydRun::new(&frame, &nan, 100.0, 0.0, false).is_err());
}

/// Statistics, extents and frames survive their bytes, and merge after the trip as before.
#[test]
fn statistics_merge_the_same_after_their_bytes() {
    let (n, dim) = (2000, 3);
    let data = shifted_blobs(n, dim, 8);
    let c = data[..5 * dim].to_vec();
    let (a, b) = data.split_at(700 * dim);
    let mut extent = Extent::from_bytes(&Extent::of(a, dim).unwrap().to_bytes()).unwrap();
    extent.merge(&Extent::of(b, dim).unwrap()).unwrap();
    let frame = lloyd::Frame::from_bytes(&extent.frame().to_bytes()).unwrap();
    assert_eq!(frame, Extent::of(&data, dim).unwrap().frame());
    let whole = LloydStats::compute(&frame, &data, None, &c, 0).unwrap();
    let sa = LloydStats::compute(&frame, a, None, &c, 0).unwrap();
    let sb = LloydStats::compute(&frame, b, None, &c, 700).unwrap();
    let mut merged = LloydStats::from_bytes(&sb.to_bytes()).unwrap();
    merged
        .merge(&LloydStats::from_bytes(&sa.to_bytes()).unwrap())
        .unwrap();
    assert_eq!(merged, whole);
}
