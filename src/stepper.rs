//! Lloyd's method one step at a time, for benchmarks, cross-checks between devices and
//! callers who drive the iteration themselves: the same backends and steps as a fit, with the
//! set-up kept apart from the timed iterations.

use std::borrow::Cow;

use crate::backend::{Backend, BackendLayout};
use crate::data::{check_k, check_points, check_samples};
use crate::device::{Device, GpuOptions};
use crate::engine::{Engine, Start};
use crate::error::Result;
use crate::frame::Frame;
use crate::init::random_points;
use crate::law::Law;

/// A backend loaded with points and starting centroids, stepped by hand. Points are centred
/// and scaled as a fit does it (see [`Frame`]); everything reported is in the caller's units.
///
/// ```
/// use lloyd::{Device, stepper::Stepper};
/// let data = [0.0f32, 0.2, 0.1, 5.0, 5.2, 5.1];
/// let mut s = Stepper::kmeans(&data, 1, 2, 0, &[0.0, 1.0], &Device::Cpu)?;
/// let before = s.step()?;
/// let after = s.step()?;
/// assert!(after < before);
/// assert_eq!(s.labels()?, vec![0, 0, 0, 1, 1, 1]);
/// # Ok::<(), lloyd::Error>(())
/// ```
pub struct Stepper<'a> {
    backend: Box<dyn Backend + 'a>,
    frame: Frame,
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
        let frame = Frame::of_data(&samples, 1, None, &[] as &[f64]);
        let values = frame.to_device_f64(&samples);
        let engine = Engine::open(device, &GpuOptions::default())?;
        Ok(Stepper {
            backend: engine.intervals(values, Start::Quantiles(n))?,
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
        Self::kmeans_with_options(data, dim, k, seed, init, device, &GpuOptions::default())
    }

    /// [`Stepper::kmeans`] with the GPU backend run as `options` say (a tile shape, with or
    /// without workgroup sums, small chunks).
    pub fn kmeans_with_options(
        data: &'a [f32],
        dim: usize,
        k: usize,
        seed: u64,
        init: &[f32],
        device: &Device,
        options: &GpuOptions,
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
        let engine = Engine::open(device, options)?;
        Ok(Stepper {
            backend: engine.dense(Cow::Owned(points), None, &frame, &init)?,
            frame,
        })
    }

    /// One Lloyd iteration (assign, reduce, read back the error, update); returns the
    /// weighted sum of squared errors before the update.
    pub fn step(&mut self) -> Result<f64> {
        let b = &mut self.backend;
        b.assign_reduce()?;
        let sse = b.sse()?;
        b.update()?;
        Ok(self.frame.squared_to_caller(sse))
    }

    /// `iterations` whole iterations as a fit runs them: on a GPU, queued in one submission
    /// with the error read back once at the end. Reports each iteration.
    pub fn run(&mut self, iterations: usize) -> Result<Vec<Step>> {
        let steps = self.backend.iterate(iterations, 0.0)?;
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
        self.backend.device_seconds()
    }

    /// Assignment and reduction only.
    pub fn assign_reduce(&mut self) -> Result<()> {
        self.backend.assign_reduce()
    }

    /// The update only; returns the empty cells split.
    pub fn update(&mut self) -> Result<usize> {
        Ok(self.backend.update()?.splits)
    }

    /// The statistics of the last assignment.
    pub fn cells(&mut self) -> Result<Cells> {
        let s = self.backend.cell_stats()?;
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
        self.backend.caller_centroids(&self.frame)
    }

    /// The labels of the last assignment (d-D backends).
    pub fn labels(&mut self) -> Result<Vec<u32>> {
        self.backend.labels()
    }

    /// How the backend holds its points (chunks, workgroup sums).
    pub fn layout(&self) -> BackendLayout {
        self.backend.layout()
    }

    /// The device's name.
    pub fn device_name(&mut self) -> String {
        self.backend.device_name()
    }
}

/// How many device buffers this thread has read back so far (host round-trips): tests hold a
/// fit's read-backs to a number that does not grow with its iterations.
pub fn read_backs() -> usize {
    crate::engine::read_backs()
}

/// `m` samples of `law` drawn on the GPU `device` (Philox4x32-10, as fits draw them, in
/// chunks as `options` say), read back; an error on the CPU.
pub fn gpu_samples(
    law: Law,
    m: usize,
    seed: u64,
    device: &Device,
    options: &GpuOptions,
) -> Result<Vec<f32>> {
    law.validate()?;
    Engine::open(device, options)?.gpu_samples(&law, m, seed)
}
