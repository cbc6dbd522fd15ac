//! The one place that opens backends. Algorithms describe their points (resident, or drawn
//! from a law, fresh each iteration or not), their dimension, weights and starting
//! centroids; the engine resolves the device and hands back a [`Backend`], or an
//! [`Encoder`] for a codebook. Only this module and `src/gpu/` name GPU types.

use std::borrow::Cow;
use std::sync::{Arc, Once};

use crate::backend::Backend;
use crate::backend::cpu_1d::{Cpu1d, empirical_quantiles, midpoint, nearest_sorted};
use crate::backend::cpu_dense::CpuDense;
use crate::backend::fresh::FreshSamples;
use crate::backend::total_order_sort::sort_total;
use crate::device::{Device, GpuOptions};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::gpu::backend::{GpuLloyd, Layout};
use crate::gpu::context::GpuContext;
use crate::gpu::points::ResidentPoints;
use crate::law::Law;
use crate::real::Real;
use crate::weights::Weights;

pub use crate::gpu::{AdapterSummary, list_adapters};

/// How many device buffers this thread has read back so far (host round-trips).
pub(crate) fn read_backs() -> usize {
    crate::gpu::buffers::read_backs()
}

/// Where a computation runs, once resolved.
enum Target {
    Cpu,
    Gpu(Arc<GpuContext>),
}

/// Where 1-D centroids start.
pub(crate) enum Start {
    /// Given, in frame units.
    Given(Vec<f64>),
    /// The empirical quantiles of levels (2i + 1)/2N of the samples (on a GPU, of the first
    /// 2¹⁶ of them).
    Quantiles(usize),
}

/// A resolved device with its options.
pub(crate) struct Engine {
    target: Target,
    options: GpuOptions,
}

/// Samples of a GPU-drawn law read back to pick the starting quantiles.
const QUANTILE_HEAD: usize = 1 << 16;

impl Engine {
    /// Resolves a device choice. `Auto` takes a hardware GPU when there is one and otherwise
    /// the CPU, with a notice on standard error (once per process): a software adapter such
    /// as lavapipe, or an OpenGL one, is slower than the CPU backend.
    pub(crate) fn open(device: &Device, options: &GpuOptions) -> Result<Self> {
        let target = match device {
            Device::Cpu => Target::Cpu,
            Device::Auto => match GpuContext::get(&Device::Gpu) {
                Ok(ctx) if ctx.info.backend == wgpu::Backend::Gl => {
                    notice(&format!(
                        "the GPU adapter found is an OpenGL one ({}), whose compute is far \
                         slower than the CPU backend",
                        ctx.name()
                    ));
                    Target::Cpu
                }
                Ok(ctx) if ctx.info.device_type != wgpu::DeviceType::Cpu => Target::Gpu(ctx),
                Ok(ctx) => {
                    notice(&format!(
                        "the only GPU adapter is a software one ({})",
                        ctx.name()
                    ));
                    Target::Cpu
                }
                Err(Error::NoAdapter(why)) => {
                    notice(&why);
                    Target::Cpu
                }
                Err(e) => return Err(e),
            },
            _ => {
                let ctx = GpuContext::get(device)?;
                if ctx.info.backend == wgpu::Backend::Gl {
                    static GL: Once = Once::new();
                    GL.call_once(|| {
                        eprintln!(
                            "lloyd: warning: {} runs compute through OpenGL, which can be 100x \
                             slower than Vulkan, Metal or DX12 (a 500-point fit took 324 s)",
                            ctx.name()
                        )
                    });
                }
                Target::Gpu(ctx)
            }
        };
        Ok(Engine {
            target,
            options: *options,
        })
    }

    /// The CPU.
    pub(crate) fn cpu() -> Self {
        Engine {
            target: Target::Cpu,
            options: GpuOptions::default(),
        }
    }

    /// Whether this engine runs on a GPU.
    pub(crate) fn is_gpu(&self) -> bool {
        matches!(self.target, Target::Gpu(_))
    }

    fn chunk_bytes(&self) -> Option<u64> {
        self.options.max_chunk_bytes
    }

    /// Points resident for Lloyd's method in d-D: `points` in the units of `frame`, one
    /// weight per point (the caller's) or none, `init` k x d in frame units.
    pub(crate) fn dense<'a>(
        &self,
        points: Cow<'a, [f32]>,
        weights: Option<Weights<'_>>,
        frame: &Frame,
        init: &[f64],
    ) -> Result<Box<dyn Backend + 'a>> {
        let dim = frame.dim();
        Ok(match &self.target {
            Target::Cpu => Box::new(CpuDense::new(points, weights, frame, init)),
            Target::Gpu(ctx) => {
                let resident = ResidentPoints::upload(ctx, &points, dim, true, self.chunk_bytes())?;
                Box::new(GpuLloyd::new(
                    ctx.clone(),
                    Layout::Dense,
                    resident,
                    dim,
                    init,
                    weights,
                    &self.options,
                )?)
            }
        })
    }

    /// [`Engine::dense`] for a fit of the caller's `rows`, whose frame-unit rounding is
    /// `points`: the CPU reads the caller's rows in place and decides labels on them (as a
    /// codebook does), a GPU takes `points`. `caller_init` is `init` as the caller gave it.
    pub(crate) fn dense_of_caller<'a, T: Real>(
        &self,
        rows: &'a [T],
        points: &'a [f32],
        weights: Option<Weights<'_>>,
        frame: &Frame,
        init: &[f64],
        caller_init: Option<&[f64]>,
    ) -> Result<Box<dyn Backend + 'a>> {
        match &self.target {
            Target::Cpu => Ok(Box::new(CpuDense::of_caller(
                rows,
                points,
                weights,
                frame,
                init,
                caller_init,
            ))),
            Target::Gpu(_) => self.dense(Cow::Borrowed(points), weights, frame, init),
        }
    }

    /// Unweighted scalars (frame units) for the 1-D backends, whose cells are intervals.
    pub(crate) fn intervals(&self, values: Vec<f64>, start: Start) -> Result<Box<dyn Backend>> {
        Ok(match &self.target {
            Target::Cpu => {
                let mut b = Cpu1d::new(values);
                let init = match start {
                    Start::Given(c) => c,
                    Start::Quantiles(n) => b.quantile_centroids(n),
                };
                b.start_from(init);
                Box::new(b)
            }
            Target::Gpu(ctx) => {
                let s32: Vec<f32> = values.iter().map(|&v| v as f32).collect();
                let init = match start {
                    Start::Given(c) => c,
                    Start::Quantiles(n) => quantiles_of(&s32, n),
                };
                let points = ResidentPoints::upload(ctx, &s32, 1, false, self.chunk_bytes())?;
                self.gpu_1d(ctx, points, init)?
            }
        })
    }

    /// [`Engine::intervals`] for the scalars of a K-means fit in `frame`: on the CPU, the
    /// updates go through the caller's units as a fit merged from parts sees them.
    pub(crate) fn frame_intervals(
        &self,
        values: Vec<f64>,
        centroids: Vec<f64>,
        frame: &Frame,
    ) -> Result<Box<dyn Backend>> {
        Ok(match &self.target {
            Target::Cpu => {
                let mut b = Cpu1d::new(values).in_frame(frame);
                b.start_from(centroids);
                Box::new(b)
            }
            Target::Gpu(_) => self.intervals(values, Start::Given(centroids))?,
        })
    }

    /// `m` samples of a law (its standard form: the frame is the identity) for the 1-D
    /// backends, drawn where they run: on the host for the CPU, on the device for a GPU.
    pub(crate) fn law_intervals(
        &self,
        law: &Law,
        m: usize,
        seed: u64,
        start: Start,
    ) -> Result<Box<dyn Backend>> {
        match &self.target {
            Target::Cpu => self.intervals(law.sample(m, seed)?, start),
            Target::Gpu(ctx) => {
                let points = ResidentPoints::generate(ctx, law, m, seed, self.chunk_bytes())?;
                let init = match start {
                    Start::Given(c) => c,
                    Start::Quantiles(n) => quantiles_of(&points.head(ctx, QUANTILE_HEAD)?, n),
                };
                self.gpu_1d(ctx, points, init)
            }
        }
    }

    fn gpu_1d(
        &self,
        ctx: &Arc<GpuContext>,
        points: ResidentPoints,
        mut init: Vec<f64>,
    ) -> Result<Box<dyn Backend>> {
        init.sort_by(f64::total_cmp);
        Ok(Box::new(GpuLloyd::new(
            ctx.clone(),
            Layout::OneD,
            points,
            1,
            &init,
            None,
            &self.options,
        )?))
    }

    /// `m` points of `dim` independent coordinates of a law (its standard form) for the
    /// d-D backends, starting from the first `n` points; with `fresh`, every iteration after
    /// the first draws new points (the last iteration's also measure the result).
    pub(crate) fn law_dense(
        &self,
        law: &Law,
        m: usize,
        dim: usize,
        seed: u64,
        n: usize,
        fresh: bool,
    ) -> Result<Box<dyn Backend>> {
        match &self.target {
            Target::Cpu => {
                let draw = crate::backend::fresh::draw(law, m * dim, seed)?;
                let init: Vec<f64> = draw[..n * dim].iter().map(|&v| f64::from(v)).collect();
                let frame = Frame::identity(dim);
                let b = CpuDense::new(draw, None, &frame, &init);
                Ok(if fresh {
                    Box::new(FreshSamples::new(b, *law, m * dim, seed))
                } else {
                    Box::new(b)
                })
            }
            Target::Gpu(ctx) => {
                let points = ResidentPoints::generate_points(
                    ctx,
                    law,
                    m,
                    dim,
                    seed,
                    true,
                    self.chunk_bytes(),
                )?;
                let init: Vec<f64> = points
                    .head(ctx, n * dim)?
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                let mut b = GpuLloyd::new(
                    ctx.clone(),
                    Layout::Dense,
                    points,
                    dim,
                    &init,
                    None,
                    &self.options,
                )?;
                if fresh {
                    b.draw_fresh(law, seed)?;
                }
                Ok(Box::new(b))
            }
        }
    }

    /// The cell of each scalar (frame units) under sorted `centroids` (frame units), as this
    /// device's 1-D kernel decides it: on a GPU, with its own f32 midpoints, so that labels
    /// agree with its counts.
    pub(crate) fn interval_labels(&self, values: &[f64], centroids: &[f64]) -> Vec<u32> {
        use rayon::prelude::*;
        let mut c = centroids.to_vec();
        c.sort_by(f64::total_cmp);
        match self.target {
            Target::Cpu => values
                .par_iter()
                .map(|&x| nearest_sorted(&c, x, midpoint) as u32)
                .collect(),
            Target::Gpu(_) => {
                let c32: Vec<f64> = c.iter().map(|&v| f64::from(v as f32)).collect();
                let mid = |a: f64, b: f64| f64::from(0.5 * (a as f32 + b as f32));
                values
                    .par_iter()
                    .map(|&x| nearest_sorted(&c32, f64::from(x as f32), mid) as u32)
                    .collect()
            }
        }
    }

    /// An encoder on this device, reused across calls.
    pub(crate) fn encoder(self) -> Encoder {
        Encoder {
            engine: self,
            gpu: None,
        }
    }

    /// `m` samples of `law` drawn on this engine's GPU (Philox4x32-10), read back.
    pub(crate) fn gpu_samples(&self, law: &Law, m: usize, seed: u64) -> Result<Vec<f32>> {
        match &self.target {
            Target::Gpu(ctx) => {
                ResidentPoints::generate(ctx, law, m, seed, self.chunk_bytes())?.download(ctx)
            }
            Target::Cpu => Err(Error::Unsupported(
                "device samples are drawn on a GPU: name one with Device::Gpu".into(),
            )),
        }
    }
}

/// The starting quantiles of unsorted f32 samples.
fn quantiles_of(samples: &[f32], n: usize) -> Vec<f64> {
    let mut sorted: Vec<f64> = samples.iter().map(|&v| f64::from(v)).collect();
    sort_total(&mut sorted);
    empirical_quantiles(&sorted, n)
}

fn notice(why: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| eprintln!("lloyd: device auto: {why}; running on the CPU backend"));
}

/// Nearest-centroid labels and errors of points against centroids, on one device, with its
/// buffers and pipelines kept between calls of the same shape (product quantization encodes
/// its sub-spaces, mini-batch K-means its chunks, through one encoder).
pub(crate) struct Encoder {
    engine: Engine,
    /// The GPU backend of the last call's shape (points, dimension, centroids).
    gpu: Option<((usize, usize, usize), GpuLloyd)>,
}

impl Encoder {
    /// Whether the CPU backend encodes.
    pub(crate) fn is_cpu(&self) -> bool {
        matches!(self.engine.target, Target::Cpu)
    }

    /// The device's name.
    pub(crate) fn device_name(&self) -> String {
        match &self.engine.target {
            Target::Cpu => "cpu".to_string(),
            Target::Gpu(ctx) => ctx.name(),
        }
    }

    /// On a GPU engine (the CPU's passes read the caller's rows: [`crate::backend::lloyd_pass`],
    /// [`crate::backend::pq_codes`]): labels (ties to the lowest index) and each point's
    /// squared distance, of `points` to `centroids`, both in the units of a frame that holds
    /// them in [−1, 1].
    pub(crate) fn gpu_assign(
        &mut self,
        points: &[f32],
        centroids: &[f64],
        dim: usize,
    ) -> Result<(Vec<u32>, Vec<f64>)> {
        let b = self.gpu_for(points, centroids, dim)?;
        b.assign_reduce()?;
        Ok((b.labels()?, b.distances()?))
    }

    /// The GPU backend for this shape, built on the first call of a shape and reused.
    fn gpu_for(&mut self, points: &[f32], centroids: &[f64], dim: usize) -> Result<&mut GpuLloyd> {
        let Target::Gpu(ctx) = &self.engine.target else {
            unreachable!("called for a GPU engine only")
        };
        let shape = (points.len() / dim, dim, centroids.len() / dim);
        match &mut self.gpu {
            Some((s, b)) if *s == shape => {
                b.replace_points(points)?;
                b.set_centroids(centroids)?;
            }
            slot => {
                // The frame bounds every value by 1: the fixed-point scales built for that
                // bound serve every later call of this shape.
                let mut resident =
                    ResidentPoints::upload(ctx, points, dim, true, self.engine.chunk_bytes())?;
                resident.bound = 1.0;
                let mut b = GpuLloyd::new(
                    ctx.clone(),
                    Layout::Dense,
                    resident,
                    dim,
                    centroids,
                    None,
                    &self.engine.options,
                )?;
                b.encode_only();
                *slot = Some((shape, b));
            }
        }
        Ok(&mut self.gpu.as_mut().expect("set above").1)
    }

    /// On a GPU engine (the CPU encodes in [`crate::backend::pq_codes`]): labels (ties to
    /// the lowest index) and the sum of squared distances of `points` to `centroids`, both in
    /// the units of a frame that holds them in [−1, 1] (a codebook's).
    pub(crate) fn gpu_encode(
        &mut self,
        points: &[f32],
        centroids: &[f64],
        dim: usize,
    ) -> Result<(Vec<u32>, f64)> {
        let b = self.gpu_for(points, centroids, dim)?;
        b.assign_reduce()?;
        let sse = b.sse()?;
        Ok((b.labels()?, sse))
    }
}
