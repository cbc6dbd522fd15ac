//! Fresh samples every iteration on the CPU: the truly stochastic variant of Lloyd's method
//! for a law, one assignment pass per iteration, run by the driver as any other backend (a
//! GPU draws its fresh samples inside its batches, see `GpuLloyd::draw_fresh`).

use super::cpu_dense::CpuDense;
use super::{Backend, BackendLayout, CellStats, Update};
use crate::error::Result;
use crate::frame::Frame;
use crate::law::Law;

/// `values` values of `law` for `seed`, in f32 (the d-D backend's points).
pub(crate) fn draw(law: &Law, values: usize, seed: u64) -> Result<Vec<f32>> {
    Ok(law
        .sample(values, seed)?
        .into_iter()
        .map(|v| v as f32)
        .collect())
}

/// A d-D CPU backend whose iteration t ≥ 1 first replaces its points by the draw of `law`
/// for seed + t (iteration 0 runs on the points it was built with, drawn for seed).
pub(crate) struct FreshSamples {
    inner: CpuDense<'static, f32>,
    law: Law,
    values: usize,
    seed: u64,
    /// Iterations run so far.
    done: u64,
}

impl FreshSamples {
    pub(crate) fn new(inner: CpuDense<'static, f32>, law: Law, values: usize, seed: u64) -> Self {
        FreshSamples {
            inner,
            law,
            values,
            seed,
            done: 0,
        }
    }
}

impl Backend for FreshSamples {
    fn device_name(&self) -> String {
        self.inner.device_name()
    }
    fn assign_reduce(&mut self) -> Result<()> {
        self.inner.assign_reduce()
    }
    fn sse(&mut self) -> Result<f64> {
        self.inner.sse()
    }
    fn update(&mut self) -> Result<Update> {
        self.inner.update()
    }
    fn centroids(&mut self) -> Result<Vec<f64>> {
        self.inner.centroids()
    }
    fn caller_centroids(&mut self, frame: &Frame) -> Result<Vec<f64>> {
        self.inner.caller_centroids(frame)
    }
    fn set_centroids(&mut self, centroids: &[f64]) -> Result<()> {
        self.inner.set_centroids(centroids)
    }
    fn cell_stats(&mut self) -> Result<CellStats> {
        self.inner.cell_stats()
    }
    fn labels(&mut self) -> Result<Vec<u32>> {
        self.inner.labels()
    }
    fn layout(&self) -> BackendLayout {
        self.inner.layout()
    }

    /// Each iteration after the first draws its samples; nothing draws outside an iteration,
    /// so the driver's last pass measures the last iteration's samples.
    fn begin_iteration(&mut self) -> Result<()> {
        if self.done > 0 {
            let seed = self.seed.wrapping_add(self.done);
            self.inner
                .replace_points(draw(&self.law, self.values, seed)?);
        }
        self.done += 1;
        Ok(())
    }
}
