//! K-means on caller data: the machine-learning face of Lloyd's method.

use std::time::Instant;

use crate::backend::Backend;
use crate::codebook::{Codebook, Encoder};
use crate::data::{check_k, check_points, check_schedule, check_weights};
use crate::device::{Device, GpuOptions};
use crate::driver::{self, FitSummary, Observer, Schedule};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::init::{Init, greedy_candidates, kmeans_plus_plus, random_points, random_rows, rows_of};
use crate::init_parallel::{InMemory, Passes, kmeans_parallel};
use crate::real::Real;
use crate::streamed::{self, RowSource, StreamedLloyd};
use crate::weights::Weights;

/// A fitted K-means model: the codebook and what the fit found.
#[derive(Debug, Clone)]
pub struct KMeansFit {
    /// The k centroids.
    pub codebook: Codebook,
    /// Nearest centroid of each point, for the final centroids (empty without the final
    /// pass, [`KMeans::final_pass`]).
    pub labels: Vec<u32>,
    /// Points in each cell (empty without the final pass).
    pub counts: Vec<u64>,
    /// Total weight in each cell (equals `counts` without weights; empty without the final
    /// pass).
    pub cell_weights: Vec<f64>,
    /// Weighted sum of squared distances to the nearest centroid (scikit-learn's `inertia_`);
    /// without the final pass, to the centroids entering the last iteration (faiss's last
    /// objective).
    pub inertia: f64,
    /// `inertia / total weight`: the mean squared distance of a point to its centroid.
    pub mse: f64,
    /// `mse / 2`, the ½ convention of numerical probability.
    pub distortion: f64,
    /// How the fit ran: iterations, convergence, history, device, set-up time.
    pub summary: FitSummary,
}

/// K-means parameters, builder style (after linfa's `KMeansParams`).
///
/// Defaults: `iterations` 100, `tolerance` 1e-4 (relative decrease of the error in one
/// iteration), `seed` 0, `init` [`Init::RandomPoints`], `restarts` 1, `device`
/// [`Device::Auto`], `final_pass` true, `gpu_options` [`GpuOptions::default`].
///
/// Unweighted scalar data (`dim` 1) runs on the 1-D backends, whose cells are intervals;
/// their centroids come back sorted.
///
/// ```
/// use lloyd::{Device, KMeans};
/// // two well-separated blobs in 2-D
/// let data = [0.0f32, 0.1, 0.2, 0.0, 10.0, 10.1, 10.2, 9.9];
/// let fit = KMeans::new(2).seed(3).device(Device::Cpu).fit(&data, 2)?;
/// assert_eq!(fit.counts.iter().sum::<u64>(), 4);
/// assert_ne!(fit.labels[0], fit.labels[2]);
/// # Ok::<(), lloyd::Error>(())
/// ```
#[derive(Clone)]
pub struct KMeans {
    k: usize,
    iterations: usize,
    tolerance: f64,
    seed: u64,
    init: Init,
    restarts: usize,
    spherical: bool,
    final_pass: bool,
    device: Device,
    gpu_options: GpuOptions,
    observer: Option<Observer>,
}

impl KMeans {
    /// K-means with `k` centroids and the default parameters.
    pub fn new(k: usize) -> Self {
        KMeans {
            k,
            iterations: 100,
            tolerance: 1e-4,
            seed: 0,
            init: Init::RandomPoints,
            restarts: 1,
            spherical: false,
            final_pass: true,
            device: Device::Auto,
            gpu_options: GpuOptions::default(),
            observer: None,
        }
    }

    /// Most Lloyd iterations.
    pub fn iterations(mut self, iterations: usize) -> Self {
        self.iterations = iterations;
        self
    }

    /// Stop when the error decreases by less than this fraction in one iteration
    /// (0: run every iteration).
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Seed of the initialisation: same seed, same result.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Starting centroids.
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Runs the fit from this many starts (seeds `seed`, `seed + 1`, …) and keeps the one
    /// with the lowest inertia: scikit-learn's `n_init`, faiss's `nredo`.
    pub fn restarts(mut self, restarts: usize) -> Self {
        self.restarts = restarts;
        self
    }

    /// Device to run on.
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Spherical K-means (default false; faiss's `spherical=True`): after every update each
    /// centroid is scaled to unit norm, so a point's nearest centroid is the one of largest
    /// inner product with it (cosine similarity, for points of unit norm). The scaling runs
    /// on the host between iterations, on every device.
    ///
    /// ```
    /// let data = [1.0f32, 0.1, 2.0, 0.0, 0.0, 1.0, 0.1, 3.0];
    /// let fit = lloyd::KMeans::new(2)
    ///     .spherical(true)
    ///     .init(lloyd::Init::given(&[1.0f32, 0.0, 0.0, 1.0]))
    ///     .device(lloyd::Device::Cpu)
    ///     .fit(&data, 2)?;
    /// // float32 data: centroids rounded to float32, unit norm to its precision.
    /// for c in fit.codebook.centroids().chunks(2) {
    ///     assert!((c[0] * c[0] + c[1] * c[1] - 1.0).abs() < 1e-6);
    /// }
    /// assert_eq!(fit.labels, vec![0, 0, 1, 1]);
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn spherical(mut self, spherical: bool) -> Self {
        self.spherical = spherical;
        self
    }

    /// Whether the fit ends with one more assignment pass against the centroids it returns
    /// (default true): their labels, cells and inertia. Without it the fit returns what
    /// faiss's `train` returns, the centroids and the history, one pass sooner (a pass is an
    /// iteration's work: a quarter of a 3-iteration fit): `labels`, `counts` and
    /// `cell_weights` come back empty and the errors are those of the last iteration's pass,
    /// against the centroids entering it, which also pick the best of several restarts
    /// (faiss's rule).
    ///
    /// ```
    /// let data: Vec<f32> = (0..2000).map(|i| ((i * 37) % 101) as f32).collect();
    /// let km = lloyd::KMeans::new(4).tolerance(0.0).iterations(5).device(lloyd::Device::Cpu);
    /// let full = km.clone().fit(&data, 2)?;
    /// let train = km.final_pass(false).fit(&data, 2)?;
    /// assert_eq!(train.codebook, full.codebook);
    /// assert!(train.labels.is_empty() && train.counts.is_empty());
    /// assert_eq!(train.mse, full.summary.history.last().unwrap().mse);
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn final_pass(mut self, final_pass: bool) -> Self {
        self.final_pass = final_pass;
        self
    }

    /// How the GPU backend runs (tile shape, workgroup sums, chunk size); the defaults
    /// suit a fit.
    pub fn gpu_options(mut self, options: GpuOptions) -> Self {
        self.gpu_options = options;
        self
    }

    /// A callback run after each iteration.
    pub fn on_iteration(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Checks the parameter rules that do not depend on the data.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 {
            return Err(Error::ZeroCentroids);
        }
        if self.restarts == 0 {
            return Err(Error::ZeroRestarts);
        }
        if let Init::KMeansParallel {
            rounds,
            oversampling,
        } = self.init
        {
            if rounds == 0 {
                return Err(Error::ZeroRounds);
            }
            if !(oversampling.is_finite() && oversampling > 0.0) {
                return Err(Error::InvalidOversampling(oversampling));
            }
        }
        check_schedule(self.iterations, self.tolerance)
    }

    /// Fits `data` (f32 or f64), row-major with `dim` columns. Centroids come back in the
    /// data's precision.
    pub fn fit<T: Real>(&self, data: &[T], dim: usize) -> Result<KMeansFit> {
        self.fit_inner(data, dim, None)
    }

    /// Fits `data` with one non-negative weight per point (scikit-learn's `sample_weight`):
    /// weighted cell means and weighted error.
    ///
    /// The weights are f32 or f64 (a slice, a `Vec`, an array or [`Weights`]), read as
    /// they are: float64 weights keep their precision.
    pub fn fit_weighted<'w, T: Real>(
        &self,
        data: &[T],
        dim: usize,
        weights: impl Into<Weights<'w>>,
    ) -> Result<KMeansFit> {
        self.fit_inner(data, dim, Some(weights.into()))
    }

    /// Every restart from its own seed (seed, seed + 1, …), keeping the fit with the lowest
    /// inertia (the first on ties). Given centroids start every restart the same way, so they
    /// run once.
    fn fit_inner<T: Real>(
        &self,
        data: &[T],
        dim: usize,
        weights: Option<Weights<'_>>,
    ) -> Result<KMeansFit> {
        self.validate()?;
        let n = check_points(data, dim)?;
        check_k(self.k, n)?;
        if let Some(w) = weights {
            check_weights(w, n)?;
            let positive = w.iter().filter(|&v| v > 0.0).count();
            if positive < self.k {
                return Err(Error::TooFewWeightedPoints {
                    k: self.k,
                    positive,
                });
            }
        }
        let given = self.given_centroids(dim)?;
        let start = Instant::now();
        let engine = Engine::open(&self.device, &self.gpu_options)?;
        // Everything from here on works centred and scaled (see `frame`): shifted or scaled
        // data give the same labels. Done once for every restart.
        let frame = Frame::of_data(data, dim, weights, given);
        let points = frame.to_device_f32(data);
        let prepared = Prepared {
            engine,
            // Unweighted scalars take the 1-D backends: cells are intervals, so the CPU
            // needs O(k log n) per iteration after one sort, the GPU a binary search a point.
            values: (dim == 1 && weights.is_none()).then(|| frame.to_device_f64(data)),
            frame,
            points,
            weights,
            dim,
            // Summed exactly, so that a fit spread over parts ([`crate::LloydRun`] with
            // [`crate::Extent::total_weight`]) reports the same errors to the bit.
            total_mass: weights.map_or(n as f64, exact_total),
            seconds: start.elapsed().as_secs_f64(),
        };
        // One backend serves every restart: the points stay resident (on a GPU, uploaded
        // once; in 1-D, sorted once).
        let mut backend: Option<Box<dyn Backend + '_>> = None;
        self.best_of_restarts(|seed| self.fit_once(data, &prepared, seed, &mut backend))
    }

    /// The centroids given as the start, checked (empty for the other starts).
    fn given_centroids(&self, dim: usize) -> Result<&[f64]> {
        Ok(match &self.init {
            Init::Centroids(c) => {
                if c.len() != self.k * dim {
                    return Err(Error::InitShape {
                        len: c.len(),
                        k: self.k,
                        dim,
                    });
                }
                if let Some(i) = c.iter().position(|v| !v.is_finite()) {
                    return Err(Error::InitNonFinite { index: i / dim });
                }
                c
            }
            _ => &[],
        })
    }

    /// Fits the rows `source` reads, `chunk_rows` at a time, for data larger than memory:
    /// one pass for the frame, then one pass an iteration, holding the centroids, the
    /// statistics and one chunk. On the CPU the fit equals [`KMeans::fit`] on the same data
    /// from the same start, to the bit (the statistics of chunks merge exactly); on a GPU the
    /// assignments run there, chunk by chunk. `labels` comes back empty: encode the source
    /// with the codebook for them. A streamed fit starts from random rows (the rows
    /// [`KMeans::fit`] would draw), k-means‖ (the start [`KMeans::fit`] would take: its draws
    /// do not depend on the chunks) or given centroids; k-means++, which reads every point at
    /// each of its k steps, is refused.
    pub fn fit_source(&self, source: &mut dyn RowSource, chunk_rows: usize) -> Result<KMeansFit> {
        self.validate()?;
        if chunk_rows == 0 {
            return Err(Error::ZeroChunkRows);
        }
        let dim = source.dim();
        if dim == 0 {
            return Err(Error::ZeroDimension);
        }
        let n = usize::try_from(source.rows()).map_err(|_| Error::EmptyData)?;
        check_k(self.k, n)?;
        let given = self.given_centroids(dim)?;
        if matches!(self.init, Init::KMeansPlusPlus | Init::KMeansPlusPlusPlain) {
            return Err(Error::Unsupported(
                "k-means++ reads every point at each of its k steps: a streamed fit starts \
                 from k-means|| (Init::KMeansParallel, --init kmeans||), random rows or given \
                 centroids"
                    .into(),
            ));
        }
        let start = Instant::now();
        let mut encoder = Encoder::with_options(&self.device, &self.gpu_options)?;
        let mut buffer = streamed::ChunkBuffers::default();
        let frame = streamed::extent_of(source, chunk_rows, &mut buffer)?
            .including(given)
            .frame();
        drop(buffer);
        let precision = source.precision();
        let prepared = start.elapsed().as_secs_f64();
        self.best_of_restarts(|seed| {
            let run_start = Instant::now();
            let init = match &self.init {
                Init::Centroids(c) => frame.to_device_f64(c),
                Init::KMeansParallel {
                    rounds,
                    oversampling,
                } => kmeans_parallel(
                    &mut streamed::Framed::new(source, &frame, chunk_rows),
                    self.k,
                    seed,
                    *rounds,
                    *oversampling,
                )?,
                _ => streamed::Framed::new(source, &frame, chunk_rows)
                    .rows_at(&random_rows(n, None, self.k, seed))?,
            };
            let device = encoder.device_name();
            let mut backend =
                StreamedLloyd::new(source, chunk_rows, &mut encoder, frame.clone(), init);
            if let Init::Centroids(c) = &self.init {
                // Decided on as the caller gave them, as an in-memory fit does.
                backend.set_caller_centroids(c.clone());
            }
            let setup = prepared + run_start.elapsed().as_secs_f64();
            let out = driver::run(&mut backend, &self.schedule(), n as f64, &frame, precision)?;
            KMeansFit::of(out, Vec::new(), dim, precision, n as f64, device, setup)
        })
    }

    fn schedule(&self) -> Schedule {
        Schedule {
            iterations: self.iterations,
            tolerance: self.tolerance,
            observer: self.observer.clone(),
            spherical: self.spherical,
            final_pass: self.final_pass,
        }
    }

    /// One run from the start `seed` draws.
    /// `slot` holds the backend of an earlier run, restarted from the new start: starts are
    /// rows of the data (restarts never start from given centroids), so the fixed-point
    /// scales a GPU backend chose for the first start serve every later one.
    fn fit_once<'p, T: Real>(
        &self,
        data: &'p [T],
        p: &'p Prepared<'_>,
        seed: u64,
        slot: &mut Option<Box<dyn Backend + 'p>>,
    ) -> Result<KMeansFit> {
        let start = Instant::now();
        let (dim, weights, frame, k) = (p.dim, p.weights, &p.frame, self.k);
        // k-means++ is drawn once the backend exists: it asks the backend first (a GPU
        // measures its draws where the points are resident), else seeds on the host.
        let init: Option<Vec<f64>> = match &self.init {
            Init::KMeansPlusPlus | Init::KMeansPlusPlusPlain => None,
            Init::RandomPoints => Some(random_points(&p.points, weights, dim, k, seed)),
            Init::KMeansParallel {
                rounds,
                oversampling,
            } => Some(kmeans_parallel(
                &mut InMemory {
                    points: &p.points,
                    weights,
                    dim,
                },
                k,
                seed,
                *rounds,
                *oversampling,
            )?),
            Init::Centroids(c) => Some(frame.to_device_f64(c)),
        };
        let schedule = self.schedule();
        let precision = T::PRECISION;
        let setup = || p.seconds + start.elapsed().as_secs_f64();
        let reused = slot.is_some();
        let b = match slot {
            Some(b) => b,
            None => {
                let given = match &self.init {
                    Init::Centroids(c) => Some(c.as_slice()),
                    _ => None,
                };
                // A start still to draw: the first k rows hold its place.
                let first_rows;
                let centroids = match &init {
                    Some(c) => c,
                    None => {
                        first_rows = rows_of(&p.points, dim, &(0..k).collect::<Vec<_>>());
                        &first_rows
                    }
                };
                slot.insert(match &p.values {
                    Some(values) => {
                        p.engine
                            .frame_intervals(values.clone(), centroids.clone(), frame)?
                    }
                    None => p
                        .engine
                        .dense_of_caller(data, &p.points, weights, frame, centroids, given)?,
                })
            }
        };
        match init {
            Some(c) if reused => b.set_centroids(&c)?,
            Some(_) => {}
            None => {
                let candidates = match self.init {
                    Init::KMeansPlusPlusPlain => 1,
                    _ => greedy_candidates(k),
                };
                let rows = match b.kmeans_plus_plus(weights, k, seed, candidates)? {
                    Some(rows) => rows_of(&p.points, dim, &rows),
                    None => kmeans_plus_plus(&p.points, weights, dim, k, seed, candidates),
                };
                b.set_centroids(&rows)?;
            }
        }
        let setup_seconds = setup();
        let out = driver::run(b.as_mut(), &schedule, p.total_mass, frame, precision)?;
        let labels = match &p.values {
            _ if !self.final_pass => Vec::new(),
            Some(values) => {
                let centroids = frame.to_device_f64(&out.centroids);
                p.engine.interval_labels(values, &centroids)
            }
            None => b.labels()?,
        };
        let device = b.device_name();
        KMeansFit::of(
            out,
            labels,
            dim,
            precision,
            p.total_mass,
            device,
            setup_seconds,
        )
    }

    /// Runs `fit` from the seeds of the restarts (`seed`, `seed + 1`, …; once for given
    /// centroids, which start every run the same way) and keeps the lowest inertia (the
    /// first on ties).
    fn best_of_restarts(&self, mut fit: impl FnMut(u64) -> Result<KMeansFit>) -> Result<KMeansFit> {
        let runs = match self.init {
            Init::Centroids(_) => 1,
            _ => self.restarts,
        };
        let mut best: Option<KMeansFit> = None;
        for r in 0..runs {
            let f = fit(self.seed.wrapping_add(r as u64))?;
            if best.as_ref().is_none_or(|b| f.inertia < b.inertia) {
                best = Some(f);
            }
        }
        Ok(best.expect("at least one run"))
    }
}

impl KMeansFit {
    /// The fit the driver's outcome describes: `total_mass` is the points' total weight.
    fn of(
        out: driver::Outcome,
        labels: Vec<u32>,
        dim: usize,
        precision: crate::real::Precision,
        total_mass: f64,
        device: String,
        setup_seconds: f64,
    ) -> Result<Self> {
        Ok(KMeansFit {
            codebook: Codebook::with_precision(out.centroids, dim, precision)?,
            labels,
            counts: out.cells.counts,
            cell_weights: out.cells.mass,
            inertia: out.mse * total_mass,
            mse: out.mse,
            distortion: 0.5 * out.mse,
            summary: FitSummary::of(out.history, out.converged, device, setup_seconds),
        })
    }
}

/// What every restart of one fit shares: the device, the frame and the points in it.
struct Prepared<'a> {
    engine: Engine,
    frame: Frame,
    /// The points in the frame's units (f32).
    points: Vec<f32>,
    /// Unweighted scalars in the frame's units (f64), for the 1-D backends; None in d-D.
    values: Option<Vec<f64>>,
    weights: Option<Weights<'a>>,
    dim: usize,
    total_mass: f64,
    /// Seconds spent preparing them.
    seconds: f64,
}

/// The exact sum of the weights, rounded once.
fn exact_total(weights: Weights<'_>) -> f64 {
    let mut sum = crate::exact_sum::ExactSum::default();
    for w in weights.iter() {
        sum.add(w);
    }
    sum.value()
}
