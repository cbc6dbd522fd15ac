//! Optimal quantizers of laws in ℝᵈ (product laws, e.g. N(0, I_d)), by Lloyd's method on a
//! fixed sample set or with fresh samples at every iteration, and their cubature formulas.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::data::{check_k, check_schedule};
use crate::device::{Device, GpuOptions};
use crate::driver::{self, FitSummary, Schedule};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::law::Law;
use crate::real::Precision;

/// A quantizer of a random vector: N points in ℝᵈ with the probabilities of their Voronoi
/// cells.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantizerNd {
    /// N x d centroids, row-major.
    pub centroids: Vec<f64>,
    /// The dimension d.
    pub dim: usize,
    /// P(X in cell i); sums to 1.
    pub probabilities: Vec<f64>,
    /// `(1/2M) Σ |x − x̂|²`.
    pub distortion: f64,
    /// `(1/M) Σ |x − x̂|² = 2 × distortion`.
    pub mse: f64,
    /// How the fit ran; the history holds the error of the centroids entering each
    /// iteration, on that iteration's samples.
    #[serde(flatten)]
    pub summary: FitSummary,
}

impl QuantizerNd {
    /// Centroid `i`.
    pub fn centroid(&self, i: usize) -> &[f64] {
        &self.centroids[i * self.dim..(i + 1) * self.dim]
    }

    /// The cubature formula E[f(X)] ≈ Σ pᵢ f(xᵢ).
    pub fn expectation(&self, f: impl Fn(&[f64]) -> f64) -> f64 {
        self.probabilities
            .iter()
            .enumerate()
            .map(|(i, p)| p * f(self.centroid(i)))
            .sum()
    }

    /// The quantizer of `loc + scale · X` (every coordinate) from that of X.
    fn mapped(mut self, loc: f64, scale: f64) -> Self {
        driver::map_affine(
            &mut self.centroids,
            [&mut self.distortion, &mut self.mse],
            &mut self.summary,
            loc,
            scale,
        );
        self
    }

    /// A picture of a 2-D quantizer as SVG: the Voronoi cells (clipped to a box around the
    /// centroids) shaded by probability, and the centroids.
    pub fn svg(&self) -> Result<String> {
        if self.dim != 2 {
            return Err(Error::DimensionMismatch {
                expected: 2,
                got: self.dim,
            });
        }
        let n = self.probabilities.len();
        let reach = self.centroids.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let r = 1.25 * reach + 0.5;
        let (size, pad) = (640.0, 20.0);
        let to_px = |x: f64, y: f64| {
            (
                pad + (x + r) / (2.0 * r) * size,
                pad + (r - y) / (2.0 * r) * size,
            )
        };
        let pmax = self
            .probabilities
            .iter()
            .fold(0.0f64, |m, p| m.max(*p))
            .max(1e-300);
        let mut svg = String::new();
        let side = size + 2.0 * pad;
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{side}" height="{side}" viewBox="0 0 {side} {side}">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        for i in 0..n {
            let poly = voronoi_cell(&self.centroids, i, r);
            if poly.len() < 3 {
                continue;
            }
            let points: Vec<String> = poly
                .iter()
                .map(|&(x, y)| {
                    let (px, py) = to_px(x, y);
                    format!("{px:.2},{py:.2}")
                })
                .collect();
            let shade = self.probabilities[i] / pmax;
            let _ = writeln!(
                svg,
                r##"<polygon points="{}" fill="#1f77b4" fill-opacity="{:.3}" stroke="#333" stroke-width="0.8"><title>cell {i}: p = {:.5}</title></polygon>"##,
                points.join(" "),
                0.08 + 0.8 * shade,
                self.probabilities[i]
            );
        }
        for i in 0..n {
            let c = self.centroid(i);
            let (px, py) = to_px(c[0], c[1]);
            let _ = writeln!(
                svg,
                r##"<circle cx="{px:.2}" cy="{py:.2}" r="2.5" fill="#d62728"/>"##
            );
        }
        let _ = writeln!(
            svg,
            r##"<text x="{pad}" y="14" font-family="sans-serif" font-size="12">{n}-point quantizer, distortion {:.5}</text>"##,
            self.distortion
        );
        svg.push_str("</svg>\n");
        Ok(svg)
    }

    /// Writes [`QuantizerNd::svg`] to a file, atomically.
    pub fn save_svg(&self, path: impl AsRef<Path>) -> Result<()> {
        let svg = self.svg()?;
        crate::npy_io::write_atomically(path.as_ref(), |w| {
            use std::io::Write;
            w.write_all(svg.as_bytes())
        })
    }
}

/// Cell `i` of 2-D centroids, clipped to the box [-r, r]²: the box cut by every bisector
/// half-plane (Sutherland–Hodgman).
fn voronoi_cell(c: &[f64], i: usize, r: f64) -> Vec<(f64, f64)> {
    let mut poly = vec![(-r, -r), (r, -r), (r, r), (-r, r)];
    let (xi, yi) = (c[2 * i], c[2 * i + 1]);
    for j in 0..c.len() / 2 {
        if j == i {
            continue;
        }
        let (xj, yj) = (c[2 * j], c[2 * j + 1]);
        // Points closer to i: a·p <= b with a = 2(c_j − c_i), b = |c_j|² − |c_i|².
        let (ax, ay) = (2.0 * (xj - xi), 2.0 * (yj - yi));
        let b = xj * xj + yj * yj - xi * xi - yi * yi;
        if ax == 0.0 && ay == 0.0 {
            continue;
        }
        let inside = |p: (f64, f64)| ax * p.0 + ay * p.1 <= b;
        let mut out = Vec::with_capacity(poly.len() + 1);
        for k in 0..poly.len() {
            let (p, q) = (poly[k], poly[(k + 1) % poly.len()]);
            let (ip, iq) = (inside(p), inside(q));
            if ip {
                out.push(p);
            }
            if ip != iq {
                let fp = ax * p.0 + ay * p.1 - b;
                let fq = ax * q.0 + ay * q.1 - b;
                let t = fp / (fp - fq);
                out.push((p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1)));
            }
        }
        poly = out;
        if poly.is_empty() {
            break;
        }
    }
    poly
}

/// Lloyd's method for the law of a random vector with i.i.d. coordinates, builder style.
///
/// Defaults: M = 100 000 samples, 50 iterations, seed 0, a fixed sample set, device
/// [`Device::Auto`].
///
/// On the CPU the samples are drawn on the host; on a GPU they are drawn on the device
/// (Philox4x32-10, as for [`crate::Lloyd1d::fit_law`]), fresh ones too, so they never cross
/// the bus. On both the first N samples are the starting centroids, and every iteration is
/// one assignment pass; the two devices see different samples of the same law.
///
/// ```
/// use lloyd::{Device, LloydNd};
/// let q = LloydNd::new(1, 2).samples(50_000).device(Device::Cpu).fit_normal()?;
/// assert!(q.centroid(0).iter().all(|c| c.abs() < 0.03));
/// assert!((q.distortion - 1.0).abs() < 0.03); // ½ E|X|² = 1 for N(0, I₂)
/// # Ok::<(), lloyd::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LloydNd {
    n: usize,
    dim: usize,
    samples: usize,
    iterations: usize,
    seed: u64,
    fresh: bool,
    device: Device,
    gpu_options: GpuOptions,
}

impl LloydNd {
    /// N centroids in dimension d.
    pub fn new(n: usize, dim: usize) -> Self {
        LloydNd {
            n,
            dim,
            samples: 100_000,
            iterations: 50,
            seed: 0,
            fresh: false,
            device: Device::Auto,
            gpu_options: GpuOptions::default(),
        }
    }

    /// Samples M (per iteration when fresh).
    pub fn samples(mut self, m: usize) -> Self {
        self.samples = m;
        self
    }

    /// Lloyd iterations.
    pub fn iterations(mut self, iterations: usize) -> Self {
        self.iterations = iterations;
        self
    }

    /// Seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Draw fresh samples at every iteration (the truly stochastic variant).
    pub fn fresh_samples(mut self, fresh: bool) -> Self {
        self.fresh = fresh;
        self
    }

    /// Device.
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// How the GPU backend runs; the defaults suit a fit.
    pub fn gpu_options(mut self, options: GpuOptions) -> Self {
        self.gpu_options = options;
        self
    }

    /// The quantizer of N(0, I_d).
    pub fn fit_normal(&self) -> Result<QuantizerNd> {
        self.fit_law(Law::standard_normal())
    }

    /// The quantizer of the vector of d independent copies of `law` (computed for the law's
    /// standard form and mapped back, see [`Law::standard_form`]).
    pub fn fit_law(&self, law: Law) -> Result<QuantizerNd> {
        let (standard, loc, scale) = law.standard_form()?;
        Ok(self.fit_standard(standard)?.mapped(loc, scale))
    }

    fn fit_standard(&self, law: Law) -> Result<QuantizerNd> {
        if self.dim == 0 {
            return Err(Error::ZeroDimension);
        }
        if self.samples == 0 {
            return Err(Error::ZeroSamples);
        }
        check_k(self.n, self.samples)?;
        check_schedule(self.iterations, 0.0)?;
        let engine = Engine::open(&self.device, &self.gpu_options)?;
        // Samples of d coordinates: f64 draws and their f32 copy on the CPU, f32 on a GPU.
        crate::memory::check(
            &format!("{} samples of dimension {}", self.samples, self.dim),
            (self.samples as u128).saturating_mul(self.dim as u128),
            if engine.is_gpu() { 4 } else { 16 },
        )?;
        let (m, d) = (self.samples, self.dim);
        let start = std::time::Instant::now();
        let mut b = engine.law_dense(&law, m, d, self.seed, self.n, self.fresh)?;
        let setup_seconds = start.elapsed().as_secs_f64();
        // Fresh or not, the iterations run through the driver; with fresh samples the last
        // iteration's samples also describe the centroids returned.
        let schedule = Schedule {
            iterations: self.iterations,
            tolerance: 0.0,
            observer: None,
            spherical: false,
            final_pass: true,
        };
        let frame = Frame::identity(d);
        let out = driver::run(b.as_mut(), &schedule, m as f64, &frame, Precision::F64)?;
        Ok(QuantizerNd {
            centroids: out.centroids,
            dim: d,
            probabilities: out.cells.mass.iter().map(|w| w / m as f64).collect(),
            distortion: 0.5 * out.mse,
            mse: out.mse,
            summary: FitSummary::of(out.history, out.converged, b.device_name(), setup_seconds),
        })
    }
}
