//! Competitive learning vector quantization (CLVQ), the stochastic-gradient twin of Lloyd's
//! method: each sample (or mini-batch) pulls its nearest centroid towards it with a
//! decreasing step.

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::Distribution;

use crate::backend::Backend;
use crate::backend::cpu_1d::{empirical_quantiles, midpoint, nearest_sorted};
use crate::device::{Device, GpuOptions};
use crate::driver::FitSummary;
use crate::engine::{Engine, Start};
use crate::error::{Error, Result};
use crate::law::Law;
use crate::quantizer1d::Quantizer1d;

/// The step sequence γₙ of CLVQ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// γₙ = a / (a + b n); [`Clvq::new`] sets a = 4N, b = π²/N².
    Decreasing {
        /// a
        a: f64,
        /// b
        b: f64,
    },
    /// The same step every time.
    Constant(f64),
}

/// CLVQ parameters, builder style.
///
/// Defaults: 10⁶ steps of one sample, γₙ = 4N / (4N + π² n / N²), seed 0, and 10⁶ fresh
/// samples to measure the probabilities and the distortion of the result, on the CPU. On a
/// GPU ([`Clvq::device`]) the steps run in mini-batches drawn on the device (a batch of one
/// is legal but pointless there); built-in laws only.
///
/// ```
/// use lloyd::{Clvq, Law};
/// let q = Clvq::new(2).steps(200_000).fit_law(Law::standard_normal())?;
/// let c = (2.0 / std::f64::consts::PI).sqrt();
/// assert!((q.centroids[1] - c).abs() < 0.03);
/// # Ok::<(), lloyd::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Clvq {
    n: usize,
    steps: usize,
    batch: usize,
    step: Step,
    seed: u64,
    evaluation_samples: usize,
    device: Device,
}

impl Clvq {
    /// N centroids with the default parameters.
    pub fn new(n: usize) -> Self {
        let nf = n.max(1) as f64;
        Clvq {
            n,
            steps: 1_000_000,
            batch: 1,
            step: Step::Decreasing {
                a: 4.0 * nf,
                b: std::f64::consts::PI.powi(2) / (nf * nf),
            },
            seed: 0,
            evaluation_samples: 1_000_000,
            device: Device::Cpu,
        }
    }

    /// Number of stochastic steps.
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    /// Samples per step (1: the classic one-sample CLVQ).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// The step sequence.
    pub fn step(mut self, step: Step) -> Self {
        self.step = step;
        self
    }

    /// Seed of the samples.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Fresh samples used to measure the result's probabilities and distortion.
    pub fn evaluation_samples(mut self, m: usize) -> Self {
        self.evaluation_samples = m;
        self
    }

    /// Device: the CPU by default (and for [`Device::Auto`]); a GPU named explicitly runs the
    /// mini-batch variant on device samples.
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    fn validate(&self) -> Result<()> {
        if self.n == 0 {
            return Err(Error::ZeroCentroids);
        }
        if self.steps == 0 {
            return Err(Error::ZeroIterations);
        }
        if self.batch == 0 {
            return Err(Error::ZeroBatch);
        }
        if self.evaluation_samples < self.n {
            return Err(Error::TooManyCentroids {
                k: self.n,
                n: self.evaluation_samples,
            });
        }
        let ok = match self.step {
            Step::Decreasing { a, b } => a.is_finite() && b.is_finite() && a > 0.0 && b >= 0.0,
            Step::Constant(g) => g.is_finite() && g > 0.0 && g <= 1.0,
        };
        if !ok {
            return Err(Error::InvalidStep(format!("{:?}", self.step)));
        }
        Ok(())
    }

    /// The quantizer of a built-in law, computed for its standard form and mapped back
    /// ([`Law::standard_form`]).
    pub fn fit_law(&self, law: Law) -> Result<Quantizer1d> {
        let (standard, loc, scale) = law.standard_form()?;
        self.validate()?;
        // Auto stays on the CPU: CLVQ's small sequential steps are what a GPU does worst.
        let engine = match self.device {
            Device::Auto => Engine::cpu(),
            ref d => Engine::open(d, &GpuOptions::default())?,
        };
        let q = if engine.is_gpu() {
            self.fit_gpu(&engine, standard)?
        } else {
            self.fit_cpu(&standard.distribution())?
        };
        Ok(q.mapped(loc, scale))
    }

    fn gamma(&self, k: usize) -> f64 {
        match self.step {
            Step::Decreasing { a, b } => a / (a + b * k as f64),
            Step::Constant(g) => g,
        }
    }

    /// Mini-batches drawn and stepped on the device; the first batch also seeds the
    /// quantiles, and the steps draw from the next ones on.
    fn fit_gpu(&self, engine: &Engine, law: Law) -> Result<Quantizer1d> {
        let start = Instant::now();
        let mut b = engine.law_intervals(&law, self.batch, self.seed, Start::Quantiles(self.n))?;
        let setup_seconds = start.elapsed().as_secs_f64();
        b.stochastic_steps(&law, self.seed, self.steps, &|k| self.gamma(k))?;
        let x = b.centroids()?;
        let eval = engine.law_intervals(
            &law,
            self.evaluation_samples,
            self.seed ^ 0x5eed,
            Start::Given(x.clone()),
        )?;
        self.measured(x, eval, setup_seconds)
    }

    /// The quantizer `x` with its probabilities and error measured by one assignment pass of
    /// `eval`, a backend loaded with fresh samples and `x`.
    fn measured(
        &self,
        x: Vec<f64>,
        mut eval: Box<dyn Backend>,
        setup_seconds: f64,
    ) -> Result<Quantizer1d> {
        eval.assign_reduce()?;
        let m = self.evaluation_samples as f64;
        let mse = eval.sse()? / m;
        if !mse.is_finite() || x.iter().any(|v| !v.is_finite()) {
            return Err(Error::OutOfRange(format!(
                "CLVQ's result is beyond f64 (mse {mse}): the law's values are too large"
            )));
        }
        let cells = eval.cell_stats()?;
        Ok(Quantizer1d {
            centroids: x,
            probabilities: cells.mass.iter().map(|w| w / m).collect(),
            distortion: 0.5 * mse,
            mse,
            // CLVQ has no per-iteration error: the result is measured once, on fresh samples.
            summary: FitSummary {
                iterations_run: self.steps,
                converged: false,
                empty_cells_split: 0,
                history: Vec::new(),
                device: eval.device_name(),
                setup_seconds,
            },
        })
    }

    /// The quantizer of any `rand_distr` law, on the CPU.
    pub fn fit_distribution<D: Distribution<f64> + Sync>(&self, dist: &D) -> Result<Quantizer1d> {
        self.validate()?;
        if !matches!(self.device, Device::Cpu | Device::Auto) {
            return Err(Error::Unsupported(
                "CLVQ of a general distribution runs on the CPU: use a built-in Law for the GPU"
                    .into(),
            ));
        }
        self.fit_cpu(dist)
    }

    fn fit_cpu<D: Distribution<f64> + Sync>(&self, dist: &D) -> Result<Quantizer1d> {
        let start = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        // Start at the quantiles of a small sample.
        let mut head: Vec<f64> = (0..(64 * self.n).max(1024))
            .map(|_| dist.sample(&mut rng))
            .collect();
        head.sort_by(f64::total_cmp);
        let mut x = empirical_quantiles(&head, self.n);
        let setup_seconds = start.elapsed().as_secs_f64();
        let mut sums = vec![0.0; self.n];
        let mut counts = vec![0usize; self.n];
        for k in 1..=self.steps {
            let gamma = self.gamma(k);
            sums.iter_mut().for_each(|s| *s = 0.0);
            counts.iter_mut().for_each(|c| *c = 0);
            for _ in 0..self.batch {
                let xi = dist.sample(&mut rng);
                let i = nearest_sorted(&x, xi, midpoint);
                sums[i] += xi;
                counts[i] += 1;
            }
            for i in 0..self.n {
                if counts[i] > 0 {
                    let mean = sums[i] / counts[i] as f64;
                    x[i] -= gamma * (counts[i] as f64 / self.batch as f64) * (x[i] - mean);
                }
            }
            // Competitive moves keep 1-D centroids ordered except through rounding.
            x.sort_by(f64::total_cmp);
        }
        // Probabilities and distortion on fresh samples.
        let eval =
            crate::law::sample_distribution(dist, self.evaluation_samples, self.seed ^ 0x5eed);
        let b = Engine::cpu().intervals(eval, Start::Given(x.clone()))?;
        self.measured(x, b, setup_seconds)
    }
}
