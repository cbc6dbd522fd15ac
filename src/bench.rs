//! One Lloyd iteration at a time, for benchmarks and cross-checks: the same backends and
//! steps as a fit, with set-up kept apart from the timed iterations. Not a stable API.

use crate::backend::Backend;
use crate::backend::cpu_dense::CpuDense;
use crate::data::{check_k, check_points, check_samples};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::gpu::backend::{GpuLloyd, Layout};
use crate::gpu::points::ResidentPoints;
use crate::gpu::tiles::{CANDIDATES, DenseKernel};
use crate::init::random_points;
use crate::law::Law;
use crate::quantizer1d::{Samples, backend_1d};
use crate::target::{Target, resolve};

enum Inner<'a> {
    Any(Box<dyn Backend + 'a>),
    Cpu(Box<CpuDense<'a>>),
    Gpu(Box<GpuLloyd>),
}

/// A backend loaded with points and starting centroids, stepped by hand. Points are centred
/// and scaled as a fit does it (see `frame`); everything reported is in the caller's units.
pub struct Stepper<'a> {
    inner: Inner<'a>,
    frame: Frame,
}

/// How [`Stepper::kmeans_with_kernel`] runs the GPU d-D kernel; `None` fields are as a fit
/// would have them (`LLOYD_GPU_TILE`, `LLOYD_GPU_LOCAL_SUMS`, the adapter's room).
#[derive(Debug, Clone, Default)]
pub struct KernelChoice {
    /// A tile shape, `BPxBCxTMxTN` (one of [`tile_shapes`]).
    pub tile: Option<String>,
    /// Whether cells that fit workgroup memory are accumulated there first.
    pub local_sums: Option<bool>,
}

/// One iteration of [`Stepper::run`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Weighted sum of squared errors before the update.
    pub sse: f64,
    /// Empty cells split by the update.
    pub empty_cells_split: usize,
    /// Device time of the whole iteration (GPU timestamps), if any.
    pub device_seconds: Option<f64>,
}

/// Per-cell statistics of the last assignment.
#[derive(Debug, Clone, PartialEq)]
pub struct Cells {
    /// Points per cell.
    pub counts: Vec<u64>,
    /// Weight per cell.
    pub mass: Vec<f64>,
    /// Weighted squared error per cell.
    pub sse: Vec<f64>,
}

impl<'a> Stepper<'a> {
    /// The 1-D quantizer backend on `samples` with `n` centroids at the empirical quantiles.
    pub fn quantizer1d(samples: Vec<f64>, n: usize, device: &Device) -> Result<Self> {
        check_samples(&samples)?;
        check_k(n, samples.len())?;
        let m = samples.len();
        let frame = Frame::of_data(&samples, 1, None, &[] as &[f64]);
        let values = frame.to_device_f64(&samples);
        let (backend, _) = backend_1d(resolve(device)?, Samples::Host(values), n, m, 0)?;
        Ok(Stepper {
            inner: Inner::Any(backend),
            frame,
        })
    }

    /// The d-D K-means backend on `data` (`dim` columns) starting from `init` (`k x dim`), or
    /// from k random points drawn with `seed` when `init` is empty.
    pub fn kmeans(
        data: &'a [f32],
        dim: usize,
        k: usize,
        seed: u64,
        init: &[f32],
        device: &Device,
    ) -> Result<Self> {
        Self::kmeans_with_kernel(data, dim, k, seed, init, device, &KernelChoice::default())
    }

    /// [`Stepper::kmeans`] with the GPU d-D kernel chosen by hand.
    pub fn kmeans_with_kernel(
        data: &'a [f32],
        dim: usize,
        k: usize,
        seed: u64,
        init: &[f32],
        device: &Device,
        choice: &KernelChoice,
    ) -> Result<Self> {
        let n = check_points(data, dim)?;
        check_k(k, n)?;
        let frame = Frame::of_data(data, dim, None, init);
        let points = frame.to_device_f32(data);
        let init: Vec<f64> = if init.is_empty() {
            random_points(&points, None, dim, k, seed)
        } else {
            frame.to_device_f64(init)
        };
        let inner = match resolve(device)? {
            Target::Cpu => Inner::Cpu(Box::new(CpuDense::new(points, None, dim, &init))),
            Target::Gpu(ctx) => {
                let mut kernel = DenseKernel::chosen(&ctx)?;
                if let Some(t) = &choice.tile {
                    kernel.tile = t.parse()?;
                }
                if let Some(l) = choice.local_sums {
                    kernel.local_sums = l;
                }
                let points = ResidentPoints::upload(&ctx, &points, dim, true)?;
                Inner::Gpu(Box::new(GpuLloyd::with_kernel(
                    ctx,
                    Layout::Dense,
                    points,
                    dim,
                    &init,
                    None,
                    kernel,
                )?))
            }
        };
        Ok(Stepper { inner, frame })
    }

    fn backend(&mut self) -> &mut dyn Backend {
        match &mut self.inner {
            Inner::Any(b) => b.as_mut(),
            Inner::Cpu(b) => b.as_mut(),
            Inner::Gpu(b) => b.as_mut(),
        }
    }

    /// One Lloyd iteration (assign, reduce, read back the error, update); returns the
    /// weighted sum of squared errors before the update.
    pub fn step(&mut self) -> Result<f64> {
        let b = self.backend();
        b.assign_reduce()?;
        let sse = b.sse()?;
        b.update()?;
        Ok(self.frame.squared_to_caller(sse))
    }

    /// `iterations` whole iterations as a fit runs them: on a GPU, queued in one submission
    /// with the error read back once at the end. Reports each iteration.
    pub fn run(&mut self, iterations: usize) -> Result<Vec<Step>> {
        let steps = self.backend().iterate(iterations, 0.0)?;
        Ok(steps
            .into_iter()
            .map(|r| Step {
                sse: self.frame.squared_to_caller(r.sse),
                empty_cells_split: r.empty_cells_split,
                device_seconds: r.device_seconds,
            })
            .collect())
    }

    /// Device time of the last assignment and reduction (GPU timestamp queries), if any.
    pub fn device_seconds(&mut self) -> Result<Option<f64>> {
        self.backend().device_seconds()
    }

    /// Assignment and reduction only.
    pub fn assign_reduce(&mut self) -> Result<()> {
        self.backend().assign_reduce()
    }

    /// The update only; returns the empty cells split.
    pub fn update(&mut self) -> Result<usize> {
        Ok(self.backend().update()?.splits)
    }

    /// The statistics of the last assignment.
    pub fn cells(&mut self) -> Result<Cells> {
        let s = self.backend().cell_stats()?;
        Ok(Cells {
            counts: s.counts,
            mass: s.mass,
            sse: s
                .sse
                .iter()
                .map(|&e| self.frame.squared_to_caller(e))
                .collect(),
        })
    }

    /// The current centroids.
    pub fn centroids(&mut self) -> Result<Vec<f64>> {
        let c = self.backend().centroids()?;
        Ok(self.frame.to_caller(&c))
    }

    /// The labels of the last assignment (d-D backends).
    pub fn labels(&mut self) -> Result<Vec<u32>> {
        match &mut self.inner {
            Inner::Cpu(b) => Ok(b.labels().to_vec()),
            Inner::Gpu(b) => b.labels(),
            Inner::Any(_) => Err(Error::Gpu("the 1-D backends keep no labels".into())),
        }
    }

    /// Chunks the points were split into on the device (1 on the CPU).
    pub fn chunks(&self) -> usize {
        match &self.inner {
            Inner::Gpu(b) => b.chunk_count(),
            _ => 1,
        }
    }

    /// Whether the GPU d-D kernel accumulates in workgroup memory first (false elsewhere).
    pub fn local_sums(&self) -> bool {
        match &self.inner {
            Inner::Gpu(b) => b.local_sums(),
            _ => false,
        }
    }

    /// The device's name.
    pub fn device_name(&mut self) -> String {
        self.backend().device_name()
    }
}

/// The GPU d-D kernel's tile shapes worth timing on a new GPU, as `LLOYD_GPU_TILE` and
/// [`Stepper::kmeans_with_kernel`] name them: the portable 64x64x4x4 first, then 128x128x8x8,
/// which fits take where the adapter has room for it, then two shapes in between.
pub fn tile_shapes() -> Vec<String> {
    CANDIDATES.iter().map(|t| t.to_string()).collect()
}

/// How many device buffers this thread has read back so far (host round-trips): tests use
/// it to check that a fit's read-backs do not grow with its iterations.
pub fn read_backs() -> usize {
    crate::gpu::buffers::read_backs()
}

/// `m` samples of `law` drawn on the GPU `device` (Philox4x32-10), read back.
pub fn gpu_samples(law: Law, m: usize, seed: u64, device: &Device) -> Result<Vec<f32>> {
    law.validate()?;
    match resolve(device)? {
        Target::Gpu(ctx) => ResidentPoints::generate(&ctx, &law, m, seed)?.download(&ctx),
        Target::Cpu => Err(Error::Gpu("no GPU resolved for this device".into())),
    }
}
