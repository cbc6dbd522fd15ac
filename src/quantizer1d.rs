//! The optimal quantizer of a 1-D law by the randomized Lloyd method.

use std::time::Instant;

use rand_distr::Distribution;
use serde::Serialize;

use crate::backend::Backend;
use crate::data::{check_k, check_samples, check_schedule};
use crate::device::{Device, GpuOptions};
use crate::driver::{self, FitSummary, Observer, Schedule};
use crate::engine::{Engine, Start};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::law::{Law, sample_distribution};
use crate::real::Precision;

/// A quantizer of a real random variable X: N points and the probabilities of their
/// Voronoi cells (intervals), with its quadratic error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quantizer1d {
    /// The N centroids, sorted increasingly.
    pub centroids: Vec<f64>,
    /// P(X in cell i), estimated by the share of samples in the cell; sums to 1.
    pub probabilities: Vec<f64>,
    /// `(1/2M) Σ (x − x̂)²`: the distortion in the ½ convention of numerical probability.
    pub distortion: f64,
    /// `(1/M) Σ (x − x̂)² = 2 × distortion`.
    pub mse: f64,
    /// How the fit ran: iterations, convergence, history, device, set-up time.
    #[serde(flatten)]
    pub summary: FitSummary,
}

impl Quantizer1d {
    /// Number of centroids N.
    pub fn len(&self) -> usize {
        self.centroids.len()
    }

    /// Whether the quantizer has no centroid (never true for a fitted one).
    pub fn is_empty(&self) -> bool {
        self.centroids.is_empty()
    }

    /// The cubature formula of the quantizer: E[f(X)] ≈ Σ pᵢ f(xᵢ).
    ///
    /// ```
    /// let q = lloyd::Lloyd1d::new(20).samples(200_000).device(lloyd::Device::Cpu)
    ///     .fit_law(lloyd::Law::standard_normal()).unwrap();
    /// let second_moment = q.expectation(|x| x * x);
    /// assert!((second_moment - 1.0).abs() < 0.02);
    /// ```
    pub fn expectation(&self, f: impl Fn(f64) -> f64) -> f64 {
        self.centroids
            .iter()
            .zip(&self.probabilities)
            .map(|(&x, &p)| p * f(x))
            .sum()
    }

    /// The quantizer of `loc + scale · X` from that of X (`scale` > 0): the same cells and
    /// probabilities, centroids moved, errors times `scale²`.
    pub(crate) fn mapped(mut self, loc: f64, scale: f64) -> Self {
        driver::map_affine(
            &mut self.centroids,
            [&mut self.distortion, &mut self.mse],
            &mut self.summary,
            loc,
            scale,
        );
        self
    }
}

/// Parameters of the randomized Lloyd method in 1-D, builder style.
///
/// Defaults: `samples` 1 000 000, `iterations` 100, `tolerance` 0 (run every iteration), `seed` 0, `device` [`Device::Auto`]. The centroids
/// start at the empirical quantiles of levels (2i − 1)/2N.
///
/// ```
/// use lloyd::{Device, Law, Lloyd1d};
/// let q = Lloyd1d::new(2).samples(100_000).seed(1).device(Device::Cpu)
///     .fit_law(Law::standard_normal())?;
/// let optimum = (2.0 / std::f64::consts::PI).sqrt();
/// assert!((q.centroids[1] - optimum).abs() < 0.02);
/// assert!((q.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
/// # Ok::<(), lloyd::Error>(())
/// ```
#[derive(Clone)]
pub struct Lloyd1d {
    n: usize,
    samples: usize,
    iterations: usize,
    tolerance: f64,
    seed: u64,
    device: Device,
    gpu_options: GpuOptions,
    observer: Option<Observer>,
}

impl Lloyd1d {
    /// A quantizer of `n` points with the default parameters.
    pub fn new(n: usize) -> Self {
        Lloyd1d {
            n,
            samples: 1_000_000,
            iterations: 100,
            tolerance: 0.0,
            seed: 0,
            device: Device::Auto,
            gpu_options: GpuOptions::default(),
            observer: None,
        }
    }

    /// Number M of samples drawn from the law (ignored by [`Lloyd1d::fit_samples`]).
    pub fn samples(mut self, m: usize) -> Self {
        self.samples = m;
        self
    }

    /// Most Lloyd iterations.
    pub fn iterations(mut self, iterations: usize) -> Self {
        self.iterations = iterations;
        self
    }

    /// Stop when the distortion decreases by less than this fraction in one iteration
    /// (0, the default: run every iteration).
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Seed of the samples: same seed, same result.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Device to run on.
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// How the GPU backend runs (chunk size, for tests); the defaults suit a fit.
    pub fn gpu_options(mut self, options: GpuOptions) -> Self {
        self.gpu_options = options;
        self
    }

    /// A callback run after each iteration.
    pub fn on_iteration(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Checks every parameter rule, before any work.
    pub fn validate(&self) -> Result<()> {
        if self.n == 0 {
            return Err(Error::ZeroCentroids);
        }
        if self.samples == 0 {
            return Err(Error::ZeroSamples);
        }
        check_schedule(self.iterations, self.tolerance)
    }

    /// The optimal quantizer of a built-in law: computed for its standard form
    /// ([`Law::standard_form`]) and mapped back, so that a law far from the origin or at an
    /// extreme scale is quantized as well as N(0, 1), and one whose results f64 cannot hold
    /// is refused with the reason. The samples are drawn where the fit runs: on the host for
    /// the CPU, on the device for a GPU (they never cross the bus).
    pub fn fit_law(&self, law: Law) -> Result<Quantizer1d> {
        self.validate()?;
        let (standard, loc, scale) = law.standard_form()?;
        check_k(self.n, self.samples)?;
        let start = Instant::now();
        let engine = Engine::open(&self.device, &self.gpu_options)?;
        // The CPU keeps each sample, sorted, with its prefix sums (about 40 bytes), a GPU 4
        // bytes of it (checked against this machine's memory too, as a bound).
        self.check_memory(if engine.is_gpu() { 4 } else { 40 })?;
        let backend =
            engine.law_intervals(&standard, self.samples, self.seed, Start::Quantiles(self.n))?;
        Ok(self
            .run(backend, Frame::identity(1), self.samples, start)?
            .mapped(loc, scale))
    }

    /// Refuses sample counts that cannot fit.
    fn check_memory(&self, per_sample: u128) -> Result<()> {
        crate::memory::check(
            &format!("{} samples (--samples)", self.samples),
            self.samples as u128,
            per_sample,
        )
    }

    /// The optimal quantizer of any `rand_distr` law (sampled on the CPU).
    pub fn fit_distribution<D: Distribution<f64> + Sync>(&self, dist: &D) -> Result<Quantizer1d> {
        self.validate()?;
        check_k(self.n, self.samples)?;
        self.check_memory(40)?;
        let samples = sample_distribution(dist, self.samples, self.seed);
        check_samples(&samples)?;
        self.fit_host(&samples)
    }

    /// The optimal quantizer of the empirical law of the caller's samples.
    pub fn fit_samples(&self, samples: &[f64]) -> Result<Quantizer1d> {
        self.validate()?;
        check_samples(samples)?;
        check_k(self.n, samples.len())?;
        self.fit_host(samples)
    }

    /// Samples from the host, centred and scaled in f64 first (see `frame`).
    fn fit_host(&self, samples: &[f64]) -> Result<Quantizer1d> {
        let start = Instant::now();
        let engine = Engine::open(&self.device, &self.gpu_options)?;
        let frame = Frame::of_data(samples, 1, None, &[] as &[f64]);
        let values = frame.to_device_f64(samples);
        let backend = engine.intervals(values, Start::Quantiles(self.n))?;
        self.run(backend, frame, samples.len(), start)
    }

    fn run(
        &self,
        mut backend: Box<dyn Backend>,
        frame: Frame,
        m: usize,
        start: Instant,
    ) -> Result<Quantizer1d> {
        let setup_seconds = start.elapsed().as_secs_f64();
        let schedule = Schedule {
            iterations: self.iterations,
            tolerance: self.tolerance,
            observer: self.observer.clone(),
            spherical: false,
            final_pass: true,
        };
        let out = driver::run(
            backend.as_mut(),
            &schedule,
            m as f64,
            &frame,
            Precision::F64,
        )?;
        let probabilities = out.cells.mass.iter().map(|&w| w / m as f64).collect();
        Ok(Quantizer1d {
            centroids: out.centroids,
            probabilities,
            distortion: 0.5 * out.mse,
            mse: out.mse,
            summary: FitSummary::of(
                out.history,
                out.converged,
                backend.device_name(),
                setup_seconds,
            ),
        })
    }
}
