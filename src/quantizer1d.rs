//! The optimal quantizer of a 1-D law by the randomized Lloyd method.

use std::time::Instant;

use rand_distr::Distribution;
use serde::Serialize;

use crate::backend::Backend;
use crate::backend::cpu_1d::{Cpu1d, empirical_quantiles};
use crate::data::{check_k, check_samples, check_schedule};
use crate::device::Device;
use crate::driver::{self, IterationStats, Observer, Schedule};
use crate::error::{Error, Result};
use crate::frame::{Frame, Precision};
use crate::gpu::backend::{GpuLloyd, Layout};
use crate::gpu::points::ResidentPoints;
use crate::law::{Law, sample_distribution};
use crate::target::{Target, resolve};

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
    /// Lloyd iterations performed.
    pub iterations_run: usize,
    /// Whether the run stopped on the tolerance rather than on the iteration budget.
    pub converged: bool,
    /// Empty cells re-seeded over the run.
    pub empty_cells_split: usize,
    /// One entry per iteration.
    pub history: Vec<IterationStats>,
    /// The device that ran it: `cpu` or the GPU adapter's name.
    pub device: String,
    /// Seconds spent before the first iteration (sampling, sorting, upload).
    pub setup_seconds: f64,
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

    /// Median wall-clock milliseconds per Lloyd iteration.
    pub fn ms_per_iteration(&self) -> f64 {
        driver::median_ms_per_iteration(&self.history)
    }

    /// The quantizer of `loc + scale · X` from that of X (`scale` > 0): the same cells and
    /// probabilities, centroids moved, errors times `scale²`.
    pub(crate) fn mapped(mut self, loc: f64, scale: f64) -> Self {
        driver::map_affine(
            &mut self.centroids,
            [&mut self.distortion, &mut self.mse],
            &mut self.history,
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
    /// is refused with the reason.
    pub fn fit_law(&self, law: Law) -> Result<Quantizer1d> {
        self.validate()?;
        let (standard, loc, scale) = law.standard_form()?;
        check_k(self.n, self.samples)?;
        let start = Instant::now();
        let target = resolve(&self.device)?;
        self.check_memory(&target)?;
        let samples = match target {
            Target::Cpu => Samples::Host(standard.sample(self.samples, self.seed)?),
            Target::Gpu(_) => Samples::Law(standard),
        };
        Ok(self.run(target, samples, start)?.mapped(loc, scale))
    }

    /// Refuses sample counts that cannot fit: the CPU keeps each sample, sorted, with its
    /// prefix sums (about 40 bytes), a GPU 4 bytes of it (checked against this machine's
    /// memory too, as a bound).
    fn check_memory(&self, target: &Target) -> Result<()> {
        let per_sample = match target {
            Target::Cpu => 40,
            Target::Gpu(_) => 4,
        };
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
        let start = Instant::now();
        let target = resolve(&self.device)?;
        crate::memory::check(
            &format!("{} samples (--samples)", self.samples),
            self.samples as u128,
            40,
        )?;
        let samples = sample_distribution(dist, self.samples, self.seed);
        check_samples(&samples)?;
        self.run(target, Samples::Host(samples), start)
    }

    /// The optimal quantizer of the empirical law of the caller's samples.
    pub fn fit_samples(&self, samples: &[f64]) -> Result<Quantizer1d> {
        self.validate()?;
        check_samples(samples)?;
        check_k(self.n, samples.len())?;
        let start = Instant::now();
        let target = resolve(&self.device)?;
        self.run(target, Samples::Host(samples.to_vec()), start)
    }

    fn run(&self, target: Target, samples: Samples, start: Instant) -> Result<Quantizer1d> {
        // Samples from the host are centred and scaled in f64 first (see `frame`); device
        // samples of a standard law need nothing.
        let frame = match &samples {
            Samples::Host(s) => Frame::of_data(s, 1, None, &[] as &[f64]),
            Samples::Law(_) => Frame::identity(1),
        };
        let samples = match samples {
            Samples::Host(s) => Samples::Host(frame.to_device_f64(&s)),
            law => law,
        };
        let (backend, m) = backend_1d(target, samples, self.n, self.samples, self.seed)?;
        let mut backend = backend;
        let setup_seconds = start.elapsed().as_secs_f64();
        let schedule = Schedule {
            iterations: self.iterations,
            tolerance: self.tolerance,
            observer: self.observer.clone(),
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
            iterations_run: out.history.len(),
            converged: out.converged,
            empty_cells_split: out.history.iter().map(|s| s.empty_cells_split).sum(),
            history: out.history,
            device: backend.device_name(),
            setup_seconds,
        })
    }
}

/// Where the samples of a 1-D run come from.
pub(crate) enum Samples {
    /// Drawn or given on the host.
    Host(Vec<f64>),
    /// Drawn on the device (GPU only).
    Law(Law),
}

/// The 1-D backend for `target`, loaded with the samples (already in device units) and
/// centroids at the empirical quantiles; returns it with the number of samples.
pub(crate) fn backend_1d(
    target: Target,
    samples: Samples,
    n: usize,
    m: usize,
    seed: u64,
) -> Result<(Box<dyn Backend>, usize)> {
    match (target, samples) {
        (Target::Cpu, Samples::Host(s)) => {
            let m = s.len();
            let mut b = Cpu1d::new(s);
            let init = b.quantile_centroids(n);
            b.start_from(init);
            Ok((Box::new(b), m))
        }
        (Target::Cpu, Samples::Law(law)) => {
            backend_1d(Target::Cpu, Samples::Host(law.sample(m, seed)?), n, m, seed)
        }
        (Target::Gpu(ctx), Samples::Host(s)) => {
            let m = s.len();
            let s32: Vec<f32> = s.iter().map(|&v| v as f32).collect();
            let mut sorted: Vec<f64> = s32.iter().map(|&v| f64::from(v)).collect();
            sorted.sort_unstable_by(f64::total_cmp);
            let init = empirical_quantiles(&sorted, n);
            let points = ResidentPoints::upload(&ctx, &s32, 1, false)?;
            Ok((
                Box::new(GpuLloyd::new(ctx, Layout::OneD, points, 1, &init, None)?),
                m,
            ))
        }
        (Target::Gpu(ctx), Samples::Law(law)) => {
            let points = ResidentPoints::generate(&ctx, &law, m, seed)?;
            // The starting quantiles come from the first samples (at most 2^16), sorted here.
            let mut head: Vec<f64> = points
                .head(&ctx, 1 << 16)?
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            head.sort_unstable_by(f64::total_cmp);
            let init = empirical_quantiles(&head, n);
            Ok((
                Box::new(GpuLloyd::new(ctx, Layout::OneD, points, 1, &init, None)?),
                m,
            ))
        }
    }
}
