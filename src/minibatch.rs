//! Mini-batch K-means (Sculley, 2010) for data that does not fit in device memory: chunks
//! stream from the caller, each is assigned on the chosen device, and every centroid moves
//! towards its points with a per-centroid learning rate 1/(points seen).

use std::time::Instant;

use crate::codebook::{Codebook, Encoder};
use crate::data::check_points;
use crate::device::Device;
use crate::driver::{FitSummary, IterationStats};
use crate::error::{Error, Result};
use crate::init::{greedy_candidates, kmeans_plus_plus};
use crate::streamed::RowSource;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The result of a mini-batch fit.
#[derive(Debug, Clone)]
pub struct MiniBatchFit {
    /// The k centroids.
    pub codebook: Codebook,
    /// Points that reached each centroid over the stream.
    pub counts: Vec<u64>,
    /// Points consumed.
    pub points_seen: u64,
    /// How the fit ran: one iteration per chunk (`iterations_run` chunks consumed), whose
    /// history entry is the chunk's error under the centroids entering it.
    pub summary: FitSummary,
}

/// Mini-batch K-means parameters, builder style.
///
/// Defaults: seed 0, device [`Device::Auto`]; the centroids start from k-means++ on the first
/// chunk (as scikit-learn's `MiniBatchKMeans`), which must hold at least k points.
///
/// ```
/// use lloyd::{Device, MiniBatchKMeans};
/// let chunks = (0..20).map(|c| {
///     Ok((0..200).flat_map(|i| [((i + c) % 2) as f32 * 10.0, 0.5]).collect::<Vec<f32>>())
/// });
/// let fit = MiniBatchKMeans::new(2).device(Device::Cpu).fit_stream(2, chunks)?;
/// assert_eq!(fit.points_seen, 4000);
/// # Ok::<(), lloyd::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MiniBatchKMeans {
    k: usize,
    seed: u64,
    device: Device,
}

impl MiniBatchKMeans {
    /// k centroids.
    pub fn new(k: usize) -> Self {
        MiniBatchKMeans {
            k,
            seed: 0,
            device: Device::Auto,
        }
    }

    /// Seed of the initialisation.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Device that assigns each chunk.
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Fits a stream of chunks (row-major, `dim` columns each); a chunk that fails to load
    /// stops the fit with its error.
    pub fn fit_stream<I>(&self, dim: usize, chunks: I) -> Result<MiniBatchFit>
    where
        I: IntoIterator<Item = Result<Vec<f32>>>,
    {
        if self.k == 0 {
            return Err(Error::ZeroCentroids);
        }
        let mut centroids: Option<Vec<f64>> = None;
        let mut counts = vec![0u64; self.k];
        let mut history = Vec::new();
        let mut points_seen = 0u64;
        let setup = Instant::now();
        let mut encoder = Encoder::new(&self.device)?;
        let setup_seconds = setup.elapsed().as_secs_f64();
        for (batch, chunk) in chunks.into_iter().enumerate() {
            let chunk = chunk?;
            let n = check_points(&chunk, dim)?;
            let start = Instant::now();
            let c = centroids.get_or_insert_with(|| {
                kmeans_plus_plus(
                    &chunk,
                    None,
                    dim,
                    self.k.min(n),
                    self.seed,
                    greedy_candidates(self.k),
                )
            });
            if c.len() != self.k * dim {
                return Err(Error::TooManyCentroids { k: self.k, n });
            }
            let cb = Codebook::new(c.iter().map(|&v| v as f32).collect(), dim)?;
            let (labels, sse) = encoder.encode(&cb, &chunk)?;
            let mse = sse / n as f64;
            for (i, &l) in labels.iter().enumerate() {
                let l = l as usize;
                counts[l] += 1;
                let eta = 1.0 / counts[l] as f64;
                for t in 0..dim {
                    let x = f64::from(chunk[i * dim + t]);
                    let v = &mut c[l * dim + t];
                    *v += eta * (x - *v);
                }
            }
            points_seen += n as u64;
            history.push(IterationStats {
                iteration: batch,
                mse,
                distortion: 0.5 * mse,
                seconds: start.elapsed().as_secs_f64(),
                empty_cells_split: 0,
                device_seconds: None,
            });
        }
        let c = centroids.ok_or(Error::EmptyData)?;
        Ok(MiniBatchFit {
            codebook: Codebook::new(c.iter().map(|&v| v as f32).collect(), dim)?,
            counts,
            points_seen,
            summary: FitSummary::of(history, false, encoder.device_name(), setup_seconds),
        })
    }

    /// Fits the rows `source` reads (a file larger than memory, say), `epochs` passes over it
    /// in batches of `batch` consecutive rows, the batches of each pass in a random order
    /// (from the seed and the pass): each batch is one contiguous read, and no pass sees the
    /// file in its stored order. Rows in one batch stay together, so a file sorted by cluster
    /// gives batches of one cluster each: shuffle such a file once first.
    pub fn fit_source(
        &self,
        source: &mut dyn RowSource,
        batch: usize,
        epochs: usize,
    ) -> Result<MiniBatchFit> {
        if batch == 0 {
            return Err(Error::ZeroBatch);
        }
        if epochs == 0 {
            return Err(Error::ZeroIterations);
        }
        let (n, dim) = (source.rows(), source.dim());
        let starts: Vec<u64> = (0..n).step_by(batch).collect();
        let mut order = Vec::with_capacity(starts.len() * epochs);
        for epoch in 0..epochs {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed.wrapping_add(epoch as u64));
            let mut e = starts.clone();
            e.shuffle(&mut rng);
            order.extend(e);
        }
        let mut buffer = Vec::new();
        let chunks = order.into_iter().map(move |s| {
            let count = (n - s).min(batch as u64) as usize;
            source.read(s, count, &mut buffer)?;
            Ok(buffer.iter().map(|&v| v as f32).collect())
        });
        self.fit_stream(dim, chunks)
    }

    /// Fits `data` by streaming it in chunks of `batch` rows, `epochs` times over.
    pub fn fit(
        &self,
        data: &[f32],
        dim: usize,
        batch: usize,
        epochs: usize,
    ) -> Result<MiniBatchFit> {
        let n = check_points(data, dim)?;
        if batch == 0 || epochs == 0 {
            return Err(Error::ZeroIterations);
        }
        let chunks = (0..epochs).flat_map(|_| (0..n).step_by(batch)).map(|s| {
            let e = (s + batch).min(n);
            Ok(data[s * dim..e * dim].to_vec())
        });
        self.fit_stream(dim, chunks)
    }
}
