//! Mini-batch K-means on streamed chunks.

mod common;

use common::blobs;
use lloyd::{Device, Error, Init, KMeans, MiniBatchKMeans};

#[test]
fn streamed_chunks_reach_the_full_kmeans_centroids_on_separated_data() {
    let data = blobs(20_000, 4, 5, 2);
    let full = KMeans::new(5)
        .init(Init::KMeansPlusPlus)
        .device(Device::Cpu)
        .fit(&data, 4)
        .unwrap();
    let mb = MiniBatchKMeans::new(5)
        .seed(3)
        .device(Device::Cpu)
        .fit(&data, 4, 1000, 2)
        .unwrap();
    assert_eq!(mb.points_seen, 40_000);
    assert_eq!(mb.summary.iterations_run, 40);
    assert_eq!(mb.counts.iter().sum::<u64>(), 40_000);
    // every full-batch centroid has a mini-batch centroid close by
    for c in full.codebook.centroids().chunks_exact(4) {
        let best = mb
            .codebook
            .centroids()
            .chunks_exact(4)
            .map(|m| m.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum::<f64>())
            .fold(f64::INFINITY, f64::min);
        // Sculley's rate 1/v keeps the early, partly wrong assignments in the mean: close, not equal.
        assert!(best < 0.15, "{best}");
    }
    assert!(mb.summary.history.last().unwrap().mse < 1.3 * full.mse);
    let again = MiniBatchKMeans::new(5)
        .seed(3)
        .device(Device::Cpu)
        .fit(&data, 4, 1000, 2)
        .unwrap();
    assert_eq!(again.codebook, mb.codebook);
}

#[test]
fn bad_chunks_are_errors() {
    let mb = MiniBatchKMeans::new(2).device(Device::Cpu);
    let chunks = vec![Ok(vec![0.0f32, 1.0, 2.0, 3.0]), Ok(vec![f32::NAN, 1.0])];
    assert!(matches!(
        mb.fit_stream(2, chunks),
        Err(Error::NonFiniteData { .. })
    ));
    let chunks = vec![Ok(vec![0.0f32, 1.0, 2.0])];
    assert!(matches!(
        mb.fit_stream(2, chunks),
        Err(Error::ShapeMismatch { .. })
    ));
    let none: Vec<lloyd::Result<Vec<f32>>> = vec![];
    assert!(matches!(mb.fit_stream(2, none), Err(Error::EmptyData)));
    let small = vec![Ok(vec![0.0f32, 1.0])];
    assert!(matches!(
        mb.fit_stream(2, small),
        Err(Error::TooManyCentroids { k: 2, n: 1 })
    ));
    assert!(matches!(
        MiniBatchKMeans::new(0).fit_stream(2, vec![Ok(vec![0.0f32; 4])]),
        Err(Error::ZeroCentroids)
    ));
}

/// Mini-batch over a file-like source: every row seen once a pass (batches in a random
/// order), and the fit as good as Lloyd's from k-means++ on well-separated blobs.
#[test]
fn minibatch_over_a_source_visits_every_row_each_pass() {
    struct Rows(Vec<f64>, usize);
    impl lloyd::RowSource for Rows {
        fn rows(&self) -> u64 {
            (self.0.len() / self.1) as u64
        }
        fn dim(&self) -> usize {
            self.1
        }
        fn read(&mut self, first: u64, count: usize, out: &mut Vec<f64>) -> lloyd::Result<()> {
            let a = first as usize * self.1;
            out.clear();
            out.extend_from_slice(&self.0[a..a + count * self.1]);
            Ok(())
        }
    }
    let (n, dim, k) = (5003, 3, 6);
    let data: Vec<f64> = common::blobs(n, dim, k, 8)
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let fit = MiniBatchKMeans::new(k)
        .device(Device::Cpu)
        .fit_source(&mut Rows(data.clone(), dim), 500, 3)
        .unwrap();
    assert_eq!(fit.points_seen, 3 * n as u64);
    assert_eq!(fit.summary.iterations_run, 3 * 11);
    let mse = fit.codebook.mse(&data).unwrap();
    let lloyd = KMeans::new(k)
        .init(Init::KMeansPlusPlus)
        .device(Device::Cpu)
        .fit(&data, dim)
        .unwrap()
        .mse;
    assert!(
        mse < 1.1 * lloyd,
        "mini-batch {mse} against Lloyd's {lloyd}"
    );
    assert!(matches!(
        MiniBatchKMeans::new(k).fit_source(&mut Rows(data.clone(), dim), 0, 1),
        Err(Error::ZeroBatch)
    ));
    assert!(matches!(
        MiniBatchKMeans::new(k).fit_source(&mut Rows(data, dim), 10, 0),
        Err(Error::ZeroIterations)
    ));
}
