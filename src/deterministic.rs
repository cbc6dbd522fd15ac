//! The exact optimal quantizer of a known 1-D law: cell probabilities and means in closed
//! form, then Newton–Raphson on the tridiagonal Hessian with Levenberg–Marquardt damping
//! (or plain deterministic Lloyd), to ~1e-12 where randomized Lloyd crawls.

use std::time::Instant;

use crate::closed_form::{Point, at, cell, quantile};
use crate::driver::FitSummary;
use crate::driver::IterationStats;
use crate::error::{Error, Result};
use crate::law::Law;
use crate::quantizer1d::Quantizer1d;

/// The iteration used by [`Deterministic1d`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeterministicMethod {
    /// Newton–Raphson with Levenberg–Marquardt damping (quadratic convergence).
    #[default]
    Newton,
    /// Lloyd's fixed point with exact cell means (linear convergence).
    Lloyd,
}

/// The distortion functional `D(x) = ½ E[min_i (X − x_i)²]` of sorted centroids, its
/// gradient and its tridiagonal Hessian, all in closed form.
pub struct Functional {
    law: Law,
}

/// Value, gradient and Hessian (diagonal and off-diagonal) of [`Functional`] at a point.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// D(x), the ½ convention.
    pub value: f64,
    /// ∂D/∂x_i = x_i p_i − E[X 1{X ∈ C_i}].
    pub gradient: Vec<f64>,
    /// ∂²D/∂x_i².
    pub diagonal: Vec<f64>,
    /// ∂²D/∂x_i∂x_{i+1} (length N − 1).
    pub off_diagonal: Vec<f64>,
    /// P(X ∈ C_i).
    pub probabilities: Vec<f64>,
    /// E[X | X ∈ C_i], in forms that keep their precision in the tails.
    pub means: Vec<f64>,
}

impl Evaluation {
    /// The largest |x_i − E[X | C_i]|: the distance of `x` from being a fixed point of
    /// Lloyd's map, in every cell alike (the gradient p_i (x_i − E[X | C_i]) hides the error
    /// of cells of tiny probability).
    pub fn residual(&self, x: &[f64]) -> f64 {
        x.iter()
            .zip(&self.means)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
    }
}

impl Functional {
    /// The functional of `law`.
    pub fn new(law: Law) -> Result<Self> {
        law.validate()?;
        Ok(Functional { law })
    }

    /// Evaluates at sorted centroids `x`.
    pub fn evaluate(&self, x: &[f64]) -> Evaluation {
        let n = x.len();
        // Boundaries b_0 = -inf, b_i = (x_{i-1} + x_i) / 2, b_n = +inf.
        let pts: Vec<Point> = (0..=n)
            .map(|i| {
                let b = if i == 0 {
                    f64::NEG_INFINITY
                } else if i == n {
                    f64::INFINITY
                } else {
                    0.5 * (x[i - 1] + x[i])
                };
                at(&self.law, b)
            })
            .collect();
        let mut value = 0.0;
        let mut gradient = vec![0.0; n];
        let mut diagonal = vec![0.0; n];
        let mut off_diagonal = vec![0.0; n.saturating_sub(1)];
        let mut probabilities = vec![0.0; n];
        let mut means = vec![0.0; n];
        let bound = |i: usize| {
            if i == 0 {
                f64::NEG_INFINITY
            } else if i == n {
                f64::INFINITY
            } else {
                0.5 * (x[i - 1] + x[i])
            }
        };
        for i in 0..n {
            let (a, b) = (pts[i], pts[i + 1]);
            let c = cell(&self.law, bound(i), bound(i + 1));
            let (m1, m2) = (b.m1 - a.m1, b.m2 - a.m2);
            probabilities[i] = c.p;
            means[i] = c.mean;
            value += 0.5 * (m2 - 2.0 * x[i] * m1 + x[i] * x[i] * (b.cdf - a.cdf)).max(0.0);
            gradient[i] = c.p * (x[i] - c.mean);
            let mut h = c.p;
            if i + 1 < n {
                let c = 0.25 * b.pdf * (x[i + 1] - x[i]);
                h -= c;
                off_diagonal[i] = -c;
            }
            if i > 0 {
                h -= 0.25 * a.pdf * (x[i] - x[i - 1]);
            }
            diagonal[i] = h;
        }
        Evaluation {
            value,
            gradient,
            diagonal,
            off_diagonal,
            probabilities,
            means,
        }
    }

    /// Exact cell means (one deterministic Lloyd step); cells without mass keep their point.
    pub fn lloyd_step(&self, x: &[f64]) -> Vec<f64> {
        let e = self.evaluate(x);
        x.iter()
            .zip(e.means.iter().zip(&e.probabilities))
            .map(|(&xi, (&m, &p))| if p > 0.0 { m } else { xi })
            .collect()
    }
}

/// Solves the tridiagonal system (diag, off) y = rhs (Thomas algorithm); None if singular.
fn solve_tridiagonal(diag: &[f64], off: &[f64], rhs: &[f64]) -> Option<Vec<f64>> {
    let n = diag.len();
    let mut c = vec![0.0; n];
    let mut d = vec![0.0; n];
    let mut denom = diag[0];
    if denom.abs() < 1e-300 {
        return None;
    }
    c[0] = if n > 1 { off[0] / denom } else { 0.0 };
    d[0] = rhs[0] / denom;
    for i in 1..n {
        denom = diag[i] - off[i - 1] * c[i - 1];
        if denom.abs() < 1e-300 {
            return None;
        }
        c[i] = if i + 1 < n { off[i] / denom } else { 0.0 };
        d[i] = (rhs[i] - off[i - 1] * d[i - 1]) / denom;
    }
    for i in (0..n - 1).rev() {
        d[i] -= c[i] * d[i + 1];
    }
    Some(d)
}

/// Deterministic optimal quantization of a built-in law, builder style.
///
/// Defaults: [`DeterministicMethod::Newton`], 1000 iterations, tolerance 1e-13. The law is
/// solved in its standard form ([`Law::standard_form`]) and mapped back. Starts from the
/// quantiles of levels (2i − 1)/2N. Newton stops when its last full step moved no centroid
/// by more than `tolerance` times the law's standard deviation: near the optimum a Newton
/// step is the remaining error itself, in every cell alike (a rule on the gradient
/// p_i (x_i − E[X | C_i]) would hide the error of the cells of tiny probability, and one on
/// the Lloyd residual the slow modes of large N). Lloyd's method stops when no centroid is
/// further than that from its cell's mean.
///
/// ```
/// use lloyd::{Deterministic1d, Law};
/// let q = Deterministic1d::new(2).fit(Law::standard_normal())?;
/// let c = (2.0 / std::f64::consts::PI).sqrt();
/// assert!((q.centroids[1] - c).abs() < 1e-12);
/// assert!((q.mse - (1.0 - 2.0 / std::f64::consts::PI)).abs() < 1e-12);
/// # Ok::<(), lloyd::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Deterministic1d {
    n: usize,
    method: DeterministicMethod,
    iterations: usize,
    tolerance: f64,
}

/// Newton steps in a row that may fail to shrink before the solver settles for the
/// precision reached: at the last bits the residual is rounding noise.
const STALLS: usize = 4;

impl Deterministic1d {
    /// N centroids.
    pub fn new(n: usize) -> Self {
        Deterministic1d {
            n,
            method: DeterministicMethod::Newton,
            iterations: 1000,
            tolerance: 1e-13,
        }
    }

    /// The iteration.
    pub fn method(mut self, method: DeterministicMethod) -> Self {
        self.method = method;
        self
    }

    /// Most iterations.
    pub fn iterations(mut self, iterations: usize) -> Self {
        self.iterations = iterations;
        self
    }

    /// Stop when no centroid moves by more than this, relative to the law's standard
    /// deviation (see the type's documentation).
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The optimal N-point quantizer of `law`.
    pub fn fit(&self, law: Law) -> Result<Quantizer1d> {
        if self.n == 0 {
            return Err(Error::ZeroCentroids);
        }
        crate::data::check_schedule(self.iterations, self.tolerance)?;
        let (standard, loc, scale) = law.standard_form()?;
        Ok(self.fit_standard(standard)?.mapped(loc, scale))
    }

    fn fit_standard(&self, law: Law) -> Result<Quantizer1d> {
        let f = Functional::new(law)?;
        let start = Instant::now();
        let n = self.n;
        let unit = standard_deviation(&law);
        let tol = self.tolerance * unit;
        let mut x: Vec<f64> = (0..n)
            .map(|i| quantile(&law, (2 * i + 1) as f64 / (2 * n) as f64))
            .collect();
        let mut e = f.evaluate(&x);
        let setup_seconds = start.elapsed().as_secs_f64();
        let mut history = Vec::new();
        let mut lambda = 1e-3;
        let mut converged = false;
        let mut stalls = 0;
        let mut best_step = f64::INFINITY;
        for iteration in 0..self.iterations {
            let t = Instant::now();
            let residual = e.residual(&x);
            let (next, step) = match self.method {
                DeterministicMethod::Lloyd => {
                    let next = f.lloyd_step(&x);
                    converged = residual <= tol;
                    (next, residual)
                }
                DeterministicMethod::Newton => {
                    // Levenberg–Marquardt: the full step first; damp it until it keeps the
                    // order and brings x nearer a fixed point (or lowers D); after many
                    // refusals fall back to a Lloyd step (always a descent).
                    let rhs: Vec<f64> = e.gradient.iter().map(|g| -g).collect();
                    let mut accepted = None;
                    // A full step this small is the remaining error: take it and stop (it
                    // may no longer measurably improve anything).
                    if let Some(step) = solve_tridiagonal(&e.diagonal, &e.off_diagonal, &rhs) {
                        let size = step.iter().fold(0.0f64, |m, s| m.max(s.abs()));
                        let cand: Vec<f64> = x.iter().zip(&step).map(|(a, s)| a + s).collect();
                        if size <= tol && cand.windows(2).all(|w| w[0] < w[1]) {
                            accepted = Some((cand, size));
                        }
                    }
                    for attempt in (0..30).take_while(|_| accepted.is_none()) {
                        let damping = if attempt == 0 { 0.0 } else { lambda };
                        let diag: Vec<f64> = e
                            .diagonal
                            .iter()
                            .map(|d| d + damping * d.abs().max(1e-300))
                            .collect();
                        if let Some(step) = solve_tridiagonal(&diag, &e.off_diagonal, &rhs) {
                            let cand: Vec<f64> = x.iter().zip(&step).map(|(a, s)| a + s).collect();
                            if cand.windows(2).all(|w| w[0] < w[1])
                                && cand.iter().all(|v| v.is_finite())
                            {
                                let ce = f.evaluate(&cand);
                                if ce.residual(&cand) < residual || ce.value < e.value {
                                    if attempt > 0 {
                                        lambda = (lambda * 0.1).max(1e-15);
                                    }
                                    let size = step.iter().fold(0.0f64, |m, s| m.max(s.abs()));
                                    accepted = Some((
                                        cand,
                                        if attempt == 0 { size } else { f64::INFINITY },
                                    ));
                                    break;
                                }
                            }
                        }
                        if attempt > 0 {
                            lambda *= 10.0;
                        }
                    }
                    accepted.unwrap_or_else(|| (f.lloyd_step(&x), f64::INFINITY))
                }
            };
            x = next;
            e = f.evaluate(&x);
            history.push(IterationStats {
                iteration,
                mse: 2.0 * e.value,
                distortion: e.value,
                seconds: t.elapsed().as_secs_f64(),
                empty_cells_split: 0,
                device_seconds: None,
            });
            if self.method == DeterministicMethod::Newton {
                // A full Newton step this small leaves an error of its square.
                if step <= tol {
                    converged = true;
                    break;
                }
                // At the last bits the steps are rounding noise (the slowest mode of large
                // N amplifies it by about N²): settle once they stop shrinking or stop being
                // accepted, if they are already tiny.
                if step < best_step {
                    best_step = step;
                    stalls = 0;
                } else {
                    stalls += 1;
                    if stalls >= STALLS && best_step <= 1e3 * tol {
                        converged = true;
                        break;
                    }
                }
            } else if converged {
                break;
            }
        }
        Ok(Quantizer1d {
            centroids: x,
            probabilities: e.probabilities,
            distortion: e.value,
            mse: 2.0 * e.value,
            summary: FitSummary::of(
                history,
                converged,
                "cpu (closed form)".to_string(),
                setup_seconds,
            ),
        })
    }
}

/// The standard deviation of a built-in law.
fn standard_deviation(law: &Law) -> f64 {
    match *law {
        Law::Normal { std, .. } => std,
        Law::Uniform { low, high } => (high - low) / 12f64.sqrt(),
        Law::Exponential { rate } => 1.0 / rate,
        Law::LogNormal { mu, sigma } => {
            let s2 = sigma * sigma;
            (libm::expm1(s2) * (2.0 * mu + s2).exp()).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Hessian belongs to the same (½) functional as the gradient, and the gradient to
    /// the value: central finite differences.
    #[test]
    fn gradient_and_hessian_match_finite_differences() {
        for law in [
            Law::standard_normal(),
            Law::Exponential { rate: 1.5 },
            Law::LogNormal {
                mu: 0.0,
                sigma: 0.5,
            },
            Law::Uniform {
                low: 0.0,
                high: 2.0,
            },
        ] {
            let f = Functional::new(law).unwrap();
            let x: Vec<f64> = (0..7)
                .map(|i| quantile(&law, (i as f64 + 0.3) / 7.2))
                .collect();
            let e = f.evaluate(&x);
            let h = 1e-6;
            for i in 0..x.len() {
                let mut xp = x.clone();
                let mut xm = x.clone();
                xp[i] += h;
                xm[i] -= h;
                let (ep, em) = (f.evaluate(&xp), f.evaluate(&xm));
                let g = (ep.value - em.value) / (2.0 * h);
                assert!(
                    (g - e.gradient[i]).abs() < 1e-7,
                    "{law:?} grad {i}: {g} vs {}",
                    e.gradient[i]
                );
                let hii = (ep.gradient[i] - em.gradient[i]) / (2.0 * h);
                assert!(
                    (hii - e.diagonal[i]).abs() < 1e-6,
                    "{law:?} H[{i}][{i}]: {hii} vs {}",
                    e.diagonal[i]
                );
                if i + 1 < x.len() {
                    let hij = (ep.gradient[i + 1] - em.gradient[i + 1]) / (2.0 * h);
                    assert!(
                        (hij - e.off_diagonal[i]).abs() < 1e-6,
                        "{law:?} H[{i}][{}]",
                        i + 1
                    );
                }
            }
        }
    }

    #[test]
    fn tridiagonal_solver() {
        let y = solve_tridiagonal(&[4.0, 4.0, 4.0], &[1.0, 1.0], &[5.0, 6.0, 5.0]).unwrap();
        for (a, b) in y.iter().zip([1.0, 1.0, 1.0]) {
            assert!((a - b).abs() < 1e-15);
        }
    }
}
