//! Closed forms of the built-in laws: density, CDF and the partial moments
//! E[X 1{X <= x}] and E[X² 1{X <= x}] that the deterministic 1-D methods need.

use crate::law::Law;

const SQRT_2: f64 = std::f64::consts::SQRT_2;

/// Standard normal CDF, accurate in both tails.
pub(crate) fn phi_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / SQRT_2)
}

/// Standard normal density.
pub(crate) fn phi_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Density, CDF and the first two partial moments of a law at `x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub pdf: f64,
    pub cdf: f64,
    /// E[X 1{X <= x}]
    pub m1: f64,
    /// E[X² 1{X <= x}]
    pub m2: f64,
}

/// Below the support: nothing accumulated yet.
const NOTHING: Point = Point {
    pdf: 0.0,
    cdf: 0.0,
    m1: 0.0,
    m2: 0.0,
};

/// Evaluates the law at `x` (x may be ±inf).
pub(crate) fn at(law: &Law, x: f64) -> Point {
    match *law {
        Law::Normal { mean, std } => {
            if x == f64::NEG_INFINITY {
                return NOTHING;
            }
            if x == f64::INFINITY {
                return Point {
                    pdf: 0.0,
                    cdf: 1.0,
                    m1: mean,
                    m2: mean * mean + std * std,
                };
            }
            let z = (x - mean) / std;
            let (c, p) = (phi_cdf(z), phi_pdf(z));
            Point {
                pdf: p / std,
                cdf: c,
                m1: mean * c - std * p,
                m2: mean * mean * c - 2.0 * mean * std * p + std * std * (c - z * p),
            }
        }
        Law::Uniform { low, high } => {
            let w = high - low;
            let t = x.clamp(low, high);
            Point {
                pdf: if x > low && x < high { 1.0 / w } else { 0.0 },
                cdf: (t - low) / w,
                m1: (t * t - low * low) / (2.0 * w),
                m2: (t * t * t - low * low * low) / (3.0 * w),
            }
        }
        Law::Exponential { rate } => {
            if x <= 0.0 {
                return NOTHING;
            }
            if x == f64::INFINITY {
                return Point {
                    pdf: 0.0,
                    cdf: 1.0,
                    m1: 1.0 / rate,
                    m2: 2.0 / (rate * rate),
                };
            }
            let lx = rate * x;
            let e = (-lx).exp();
            Point {
                pdf: rate * e,
                cdf: -libm::expm1(-lx),
                m1: (-libm::expm1(-lx) - lx * e) / rate,
                m2: (2.0 * -libm::expm1(-lx) - e * (lx * lx + 2.0 * lx)) / (rate * rate),
            }
        }
        Law::LogNormal { mu, sigma } => {
            if x <= 0.0 {
                return NOTHING;
            }
            let s2 = sigma * sigma;
            if x == f64::INFINITY {
                return Point {
                    pdf: 0.0,
                    cdf: 1.0,
                    m1: (mu + 0.5 * s2).exp(),
                    m2: (2.0 * mu + 2.0 * s2).exp(),
                };
            }
            let z = (x.ln() - mu) / sigma;
            Point {
                pdf: phi_pdf(z) / (x * sigma),
                cdf: phi_cdf(z),
                m1: (mu + 0.5 * s2).exp() * phi_cdf(z - sigma),
                m2: (2.0 * mu + 2.0 * s2).exp() * phi_cdf(z - 2.0 * sigma),
            }
        }
    }
}

/// Standard normal mass of (a, b], computed from the tail each end lies in, so that cells far
/// out keep their relative precision (1 − Φ loses it all past a few standard deviations).
fn normal_mass(a: f64, b: f64) -> f64 {
    let upper = |z: f64| 0.5 * libm::erfc(z / SQRT_2);
    if a >= 0.0 {
        upper(a) - upper(b)
    } else if b <= 0.0 {
        phi_cdf(b) - phi_cdf(a)
    } else {
        1.0 - phi_cdf(a) - upper(b)
    }
}

/// A cell's probability and conditional mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cell {
    /// P(a < X <= b).
    pub p: f64,
    /// E[X | a < X <= b] (the midpoint of the cell's support part when `p` is 0).
    pub mean: f64,
}

/// The probability and mean of the cell (a, b] of `law` (a < b, either may be infinite),
/// in forms that keep their precision in the tails: each law's truncated mean in closed
/// form, tail masses from the tail they lie in.
pub(crate) fn cell(law: &Law, a: f64, b: f64) -> Cell {
    match *law {
        Law::Normal { mean, std } => {
            let (za, zb) = ((a - mean) / std, (b - mean) / std);
            let p = normal_mass(za, zb);
            let m = mean + std * (phi_pdf(za) - phi_pdf(zb)) / p;
            Cell {
                p,
                mean: if p > 0.0 {
                    m
                } else {
                    mean + std * 0.5 * (za + zb)
                },
            }
        }
        Law::Uniform { low, high } => {
            let (a, b) = (a.clamp(low, high), b.clamp(low, high));
            Cell {
                p: (b - a) / (high - low),
                mean: 0.5 * (a + b),
            }
        }
        Law::Exponential { rate } => {
            // X − a given X > a is Exp(rate): its mean truncated to a width w is
            // 1 − w / (e^w − 1) in units of 1/rate.
            let a = (a * rate).max(0.0);
            let w = (b * rate).max(0.0) - a;
            if w <= 0.0 {
                return Cell {
                    p: 0.0,
                    mean: a / rate,
                };
            }
            let (p, shift) = if w.is_infinite() {
                ((-a).exp(), 1.0)
            } else {
                ((-a).exp() * -libm::expm1(-w), 1.0 - w / libm::expm1(w))
            };
            Cell {
                p,
                mean: (a + shift) / rate,
            }
        }
        Law::LogNormal { mu, sigma } => {
            let z = |x: f64| {
                if x <= 0.0 {
                    f64::NEG_INFINITY
                } else {
                    (x.ln() - mu) / sigma
                }
            };
            let (za, zb) = (z(a), z(b));
            let p = normal_mass(za, zb);
            // E[X 1{cell}] = e^{mu + sigma²/2} P(za − sigma < Z <= zb − sigma).
            let m1 = (mu + 0.5 * sigma * sigma).exp() * normal_mass(za - sigma, zb - sigma);
            Cell {
                p,
                mean: if p > 0.0 {
                    m1 / p
                } else {
                    0.5 * (a.max(0.0) + b)
                },
            }
        }
    }
}

/// The quantile of level `p` in (0, 1), by bisection on the CDF (exact to the last bit).
pub(crate) fn quantile(law: &Law, p: f64) -> f64 {
    let (mut lo, mut hi) = match *law {
        Law::Normal { mean, std } => (mean - 40.0 * std, mean + 40.0 * std),
        Law::Uniform { low, high } => (low, high),
        Law::Exponential { rate } => (0.0, 800.0 / rate),
        Law::LogNormal { mu, sigma } => ((mu - 40.0 * sigma).exp(), (mu + 40.0 * sigma).exp()),
    };
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if at(law, mid).cdf < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The partial moments against a fine numerical integration of the density.
    #[test]
    fn partial_moments_match_quadrature() {
        let laws = [
            Law::Normal {
                mean: 0.7,
                std: 1.3,
            },
            Law::Uniform {
                low: -1.0,
                high: 2.0,
            },
            Law::Exponential { rate: 1.7 },
            Law::LogNormal {
                mu: 0.2,
                sigma: 0.6,
            },
        ];
        for law in laws {
            let (a, b) = (quantile(&law, 1e-12), quantile(&law, 0.8));
            let steps = 200_000;
            let h = (b - a) / steps as f64;
            let (mut p, mut m1, mut m2) = (0.0, 0.0, 0.0);
            for i in 0..steps {
                // Simpson on each step
                let xs = [
                    a + i as f64 * h,
                    a + (i as f64 + 0.5) * h,
                    a + (i + 1) as f64 * h,
                ];
                let w = [1.0, 4.0, 1.0];
                for (x, w) in xs.iter().zip(w) {
                    let f = at(&law, *x).pdf * w * h / 6.0;
                    p += f;
                    m1 += f * x;
                    m2 += f * x * x;
                }
            }
            let (pa, pb) = (at(&law, a), at(&law, b));
            assert!((pb.cdf - pa.cdf - p).abs() < 1e-9, "{law:?} cdf");
            assert!((pb.m1 - pa.m1 - m1).abs() < 1e-9, "{law:?} m1");
            assert!((pb.m2 - pa.m2 - m2).abs() < 1e-8, "{law:?} m2");
            assert!((at(&law, quantile(&law, 0.3)).cdf - 0.3).abs() < 1e-14);
        }
    }
}
