//! One Lloyd iteration at a time, for benchmarks: the same backends and steps as a fit,
//! with set-up kept apart from the timed iterations. Not a stable API.

use crate::backend::Backend;
use crate::backend::cpu_1d::Cpu1d;
use crate::backend::cpu_dense::CpuDense;
use crate::data::{check_k, check_points, check_samples};
use crate::device::Device;
use crate::error::Result;
use crate::init::random_points;
use crate::target::{Target, resolve};

/// A backend loaded with points and starting centroids, stepped by hand.
pub struct Stepper<'a> {
    backend: Box<dyn Backend + 'a>,
}

impl<'a> Stepper<'a> {
    /// The 1-D quantizer backend on `samples` with `n` centroids at the empirical quantiles.
    pub fn quantizer1d(samples: Vec<f64>, n: usize, device: &Device) -> Result<Self> {
        check_samples(&samples)?;
        check_k(n, samples.len())?;
        let backend: Box<dyn Backend> = match resolve(device)? {
            Target::Cpu => {
                let mut b = Cpu1d::new(samples);
                let init = b.quantile_centroids(n);
                b.set_centroids(init);
                Box::new(b)
            }
        };
        Ok(Stepper { backend })
    }

    /// The d-D K-means backend on `data` (`dim` columns) with `k` random points as centroids.
    pub fn kmeans(
        data: &'a [f32],
        dim: usize,
        k: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let n = check_points(data, dim)?;
        check_k(k, n)?;
        let init = random_points(data, dim, k, seed);
        let backend: Box<dyn Backend + 'a> = match resolve(device)? {
            Target::Cpu => Box::new(CpuDense::new(data, None, dim, &init)),
        };
        Ok(Stepper { backend })
    }

    /// One Lloyd iteration (assign, reduce, read back the error, update); returns the
    /// weighted sum of squared errors before the update.
    pub fn step(&mut self) -> Result<f64> {
        self.backend.assign_reduce()?;
        let sse = self.backend.sse()?;
        self.backend.update()?;
        Ok(sse)
    }

    /// The device's name.
    pub fn device_name(&self) -> String {
        self.backend.device_name()
    }
}
