//! Probability laws to quantize, and seeded, thread-count-independent sampling from them.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal, Normal, Uniform};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Samples drawn per independent random stream; fixed so the samples of a seed do not depend
/// on the number of threads.
const STREAM_LEN: usize = 1 << 16;

/// The built-in laws of the 1-D quantizer. Any other `rand_distr` law goes through
/// [`crate::Lloyd1d::fit_distribution`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Law {
    /// Normal law N(mean, std²); the default is N(0, 1).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation (> 0).
        std: f64,
    },
    /// Uniform law on [low, high).
    Uniform {
        /// Lower end.
        low: f64,
        /// Upper end (> low).
        high: f64,
    },
    /// Exponential law of the given rate λ (> 0), mean 1/λ.
    Exponential {
        /// Rate λ.
        rate: f64,
    },
    /// Log-normal law: exp(N(mu, sigma²)).
    LogNormal {
        /// Mean of the logarithm.
        mu: f64,
        /// Standard deviation of the logarithm (> 0).
        sigma: f64,
    },
}

impl Default for Law {
    fn default() -> Self {
        Law::Normal {
            mean: 0.0,
            std: 1.0,
        }
    }
}

impl Law {
    /// The standard normal law N(0, 1).
    pub fn standard_normal() -> Self {
        Law::default()
    }

    /// Checks the parameters are inside the law's domain.
    pub fn validate(&self) -> Result<()> {
        let ok = |c: bool, msg: String| {
            if c {
                Ok(())
            } else {
                Err(Error::InvalidLaw(msg))
            }
        };
        match *self {
            Law::Normal { mean, std } => ok(
                mean.is_finite() && std.is_finite() && std > 0.0,
                format!("normal needs a finite mean and std > 0, got mean {mean}, std {std}"),
            ),
            Law::Uniform { low, high } => ok(
                low.is_finite() && high.is_finite() && low < high,
                format!("uniform needs finite low < high, got [{low}, {high})"),
            ),
            Law::Exponential { rate } => ok(
                rate.is_finite() && rate > 0.0,
                format!("exponential needs a finite rate > 0, got {rate}"),
            ),
            Law::LogNormal { mu, sigma } => ok(
                mu.is_finite() && sigma.is_finite() && sigma > 0.0,
                format!("log-normal needs a finite mu and sigma > 0, got mu {mu}, sigma {sigma}"),
            ),
        }
    }

    /// The law as a `rand_distr` distribution (parameters must be valid).
    pub fn distribution(&self) -> LawDistribution {
        LawDistribution(*self)
    }

    /// `m` samples of the law for `seed`: the same on every run and thread count.
    pub fn sample(&self, m: usize, seed: u64) -> Result<Vec<f64>> {
        self.validate()?;
        let bad = |e: &dyn std::fmt::Display| Error::InvalidLaw(e.to_string());
        Ok(match *self {
            Law::Normal { mean, std } => {
                sample_distribution(&Normal::new(mean, std).map_err(|e| bad(&e))?, m, seed)
            }
            Law::Uniform { low, high } => {
                sample_distribution(&Uniform::new(low, high).map_err(|e| bad(&e))?, m, seed)
            }
            Law::Exponential { rate } => {
                sample_distribution(&Exp::new(rate).map_err(|e| bad(&e))?, m, seed)
            }
            Law::LogNormal { mu, sigma } => {
                sample_distribution(&LogNormal::new(mu, sigma).map_err(|e| bad(&e))?, m, seed)
            }
        })
    }
}

/// `m` samples of any law, in parallel: stream `s` of ChaCha8 (seeded with `seed`) draws
/// samples `s * 65536 ..`, so the result depends on the seed alone.
pub fn sample_distribution<D: Distribution<f64> + Sync>(dist: &D, m: usize, seed: u64) -> Vec<f64> {
    let mut out = vec![0.0; m];
    out.par_chunks_mut(STREAM_LEN)
        .enumerate()
        .for_each(|(stream, chunk)| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(stream as u64);
            for v in chunk.iter_mut() {
                *v = dist.sample(&mut rng);
            }
        });
    out
}

/// A built-in [`Law`] as a `rand_distr::Distribution<f64>`.
#[derive(Debug, Clone, Copy)]
pub struct LawDistribution(Law);

impl Distribution<f64> for LawDistribution {
    fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self.0 {
            Law::Normal { mean, std } => {
                let z: f64 = rand_distr::StandardNormal.sample(rng);
                mean + std * z
            }
            Law::Uniform { low, high } => {
                let u: f64 = rand_distr::StandardUniform.sample(rng);
                low + (high - low) * u
            }
            Law::Exponential { rate } => {
                let e: f64 = rand_distr::Exp1.sample(rng);
                e / rate
            }
            Law::LogNormal { mu, sigma } => {
                let z: f64 = rand_distr::StandardNormal.sample(rng);
                (mu + sigma * z).exp()
            }
        }
    }
}
