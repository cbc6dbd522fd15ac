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
                format!("normal needs a finite mean and std > 0, got mean {mean:?}, std {std:?}"),
            ),
            Law::Uniform { low, high } => ok(
                low.is_finite() && high.is_finite() && low < high,
                format!("uniform needs finite low < high, got [{low:?}, {high:?})"),
            ),
            Law::Exponential { rate } => ok(
                rate.is_finite() && rate > 0.0,
                format!("exponential needs a finite rate > 0, got {rate:?}"),
            ),
            Law::LogNormal { mu, sigma } => ok(
                mu.is_finite() && sigma.is_finite() && sigma > 0.0,
                format!(
                    "log-normal needs a finite mu and sigma > 0, got mu {mu:?}, sigma {sigma:?}"
                ),
            ),
        }
    }

    /// The law as `loc + scale · S` for a standard law S of the same family (N(0, 1),
    /// U(0, 1), Exp(1), LogNormal(0, σ)), after checking that results can be represented:
    /// the centroids `loc + scale · x` and the distortion `scale² · D` must be finite, with
    /// enough f64 resolution at `loc` to tell the cells apart. Quantizers are computed for
    /// S and mapped back, so a law like N(10⁸, 1) loses nothing to f32 device arithmetic.
    ///
    /// ```
    /// use lloyd::Law;
    /// let (s, loc, scale) = Law::Normal { mean: 5.0, std: 2.0 }.standard_form()?;
    /// assert_eq!((s, loc, scale), (Law::standard_normal(), 5.0, 2.0));
    /// assert!(Law::Normal { mean: 0.0, std: 1e308 }.standard_form().is_err());
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn standard_form(&self) -> Result<(Law, f64, f64)> {
        self.validate()?;
        let refuse = |why: String| Err(Error::InvalidLaw(why));
        // The reach of the standard law's samples and quantizers (|x| of a sample of 10¹²
        // normal values stays under 8; Exp(1) under 28).
        let (standard, loc, scale, reach) = match *self {
            Law::Normal { mean, std } => (Law::standard_normal(), mean, std, 40.0),
            Law::Uniform { low, high } => {
                let width = high - low;
                if !width.is_finite() {
                    return refuse(format!(
                        "uniform on [{low:?}, {high:?}): high − low overflows f64"
                    ));
                }
                (
                    Law::Uniform {
                        low: 0.0,
                        high: 1.0,
                    },
                    low,
                    width,
                    1.0,
                )
            }
            Law::Exponential { rate } => {
                let scale = 1.0 / rate;
                if !scale.is_finite() {
                    return refuse(format!(
                        "exponential with rate {rate:?}: its mean 1/rate overflows f64"
                    ));
                }
                (Law::Exponential { rate: 1.0 }, 0.0, scale, 60.0)
            }
            Law::LogNormal { mu, sigma } => {
                // E[X²] = exp(2 mu + 2 sigma²): the distortion is below it, and it must be
                // a finite number for the quantizer to mean anything in f64.
                if 2.0 * mu + 2.0 * sigma * sigma >= 709.0 {
                    return refuse(format!(
                        "log-normal with mu {mu:?}, sigma {sigma:?}: E[X²] = exp(2 mu + 2 sigma²) \
                         overflows f64 (keep 2 mu + 2 sigma² below 709)"
                    ));
                }
                let scale = mu.exp();
                (
                    Law::LogNormal { mu: 0.0, sigma },
                    0.0,
                    scale,
                    (8.0 * sigma).exp(),
                )
            }
        };
        let far = loc.abs() + reach * scale;
        if !far.is_finite() {
            return refuse(format!(
                "{self:?}: its centroids (up to {reach} scales from {loc:?}) overflow f64"
            ));
        }
        // The distortion is scale² times the standard law's.
        let sq = scale * scale;
        if !sq.is_finite() || sq < f64::MIN_POSITIVE {
            return refuse(format!(
                "{self:?}: the distortion, of order ({scale:?})², is outside f64's range \
                 (the scale must lie between 1e-154 and 1e154)"
            ));
        }
        // Centroids a scale apart must be distinct numbers near loc: keep ~20 bits.
        if scale < loc.abs() * 2f64.powi(-32) {
            return refuse(format!(
                "{self:?}: f64 cannot resolve cells of width {scale:?} around {loc:?} \
                 (the scale must exceed |location| × 2⁻³²)"
            ));
        }
        Ok((standard, loc, scale))
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
