//! The small contract every backend implements: the per-iteration steps of Lloyd's method.
//!
//! The driver ([`crate::driver`]) is written once against [`Backend`]; the CPU backends live
//! here, the GPU backend in [`crate::gpu`]. A backend owns the points (resident on its device)
//! and the current centroids.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2_fused;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2_small;
pub(crate) mod avx512_fused;
pub(crate) mod avx512_small;
pub(crate) mod cell_sums;
pub(crate) mod cpu_1d;
pub(crate) mod cpu_dense;
pub(crate) mod empty_cells;
pub(crate) mod exact;
pub(crate) mod framed;
pub(crate) mod fresh;
pub(crate) mod interval_sums;
pub(crate) mod kept_errors;
pub(crate) mod lloyd_pass;
pub(crate) mod panels;
pub(crate) mod pq_codes;
pub(crate) mod rank;
pub(crate) mod small_kernel;
pub(crate) mod sorted_index;
pub(crate) mod total_order_sort;

use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::law::Law;
use crate::weights::Weights;

/// Per-cell summary of one assignment pass over the points.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CellStats {
    /// Points in each cell.
    pub counts: Vec<u64>,
    /// Total weight in each cell (equal to `counts` when unweighted).
    pub mass: Vec<f64>,
    /// Weighted sum of squared distances to the cell's centroid.
    pub sse: Vec<f64>,
}

impl CellStats {
    pub(crate) fn zeros(k: usize) -> Self {
        CellStats {
            counts: vec![0; k],
            mass: vec![0.0; k],
            sse: vec![0.0; k],
        }
    }
}

/// How a backend holds its points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendLayout {
    /// Buffers the points were split into (one storage binding each on a GPU; 1 on the CPU).
    pub chunks: usize,
    /// Whether the GPU d-D kernel accumulates cells in workgroup memory first.
    pub local_sums: bool,
}

impl Default for BackendLayout {
    fn default() -> Self {
        BackendLayout {
            chunks: 1,
            local_sums: false,
        }
    }
}

/// What an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Update {
    /// Empty cells re-seeded.
    pub splits: usize,
    /// Whether any centroid changed. An update that moves nothing and splits nothing has
    /// reached the fixed point: every later iteration would repeat it.
    pub moved: bool,
}

/// What one iteration reports to the driver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StepRecord {
    /// Weighted sum of squared errors to the centroids entering the iteration.
    pub sse: f64,
    /// Empty cells re-seeded by the update.
    pub empty_cells_split: usize,
    /// Whether the update moved any centroid.
    pub moved: bool,
    /// Device time of the iteration's kernels, where the device has timestamps.
    pub device_seconds: Option<f64>,
    /// Wall-clock time of this iteration alone, where the backend ran it alone (else the
    /// driver divides the batch's time among its iterations).
    pub seconds: Option<f64>,
}

/// One Lloyd iteration, split into the steps a device performs.
pub(crate) trait Backend {
    /// A name for reports: `cpu` or the GPU adapter's name.
    fn device_name(&self) -> String;
    /// Assigns every point to its nearest current centroid and reduces the per-cell sums,
    /// masses and squared errors. Nothing moves yet.
    fn assign_reduce(&mut self) -> Result<()>;
    /// Weighted sum of squared errors of the last [`Backend::assign_reduce`].
    fn sse(&mut self) -> Result<f64>;
    /// Moves each centroid to the mean of its cell and re-seeds empty cells
    /// ([`empty_cells::split_empty_cells`]).
    fn update(&mut self) -> Result<Update>;
    /// The current centroids, row-major `k x d`.
    fn centroids(&mut self) -> Result<Vec<f64>>;
    /// The current centroids in the caller's units of `frame`. A backend whose update went
    /// through the caller's units keeps them, so that nothing is rounded twice.
    fn caller_centroids(&mut self, frame: &Frame) -> Result<Vec<f64>> {
        Ok(frame.to_caller(&self.centroids()?))
    }
    /// Replaces the centroids (row-major `k x d`, as many as before); the next
    /// [`Backend::assign_reduce`] measures against them.
    fn set_centroids(&mut self, centroids: &[f64]) -> Result<()>;
    /// The per-cell summary of the last [`Backend::assign_reduce`].
    fn cell_stats(&mut self) -> Result<CellStats>;
    /// The nearest centroid of each point in the last [`Backend::assign_reduce`], in point
    /// order (backends that keep labels: the d-D ones).
    fn labels(&mut self) -> Result<Vec<u32>> {
        Err(Error::Unsupported(
            "this backend keeps no labels (1-D cells are intervals of sorted samples)".into(),
        ))
    }
    /// Greedy k-means++ over the backend's own points with `candidates` draws a step (see
    /// [`crate::init::kmeans_plus_plus`]; `weights` are the fit's): the rows it takes, or
    /// None where the backend leaves seeding to the host.
    fn kmeans_plus_plus(
        &mut self,
        weights: Option<Weights<'_>>,
        k: usize,
        seed: u64,
        candidates: usize,
    ) -> Result<Option<Vec<usize>>> {
        let _ = (weights, k, seed, candidates);
        Ok(None)
    }
    /// How the backend holds its points, for reports and tests.
    fn layout(&self) -> BackendLayout {
        BackendLayout::default()
    }
    /// CLVQ in mini-batches drawn from `law` on the device: each of `steps` steps draws a
    /// batch the size of the points, assigns it and moves every centroid by
    /// `gamma(step) · count / batch` of the way to its batch mean.
    fn stochastic_steps(
        &mut self,
        law: &Law,
        seed: u64,
        steps: usize,
        gamma: &dyn Fn(usize) -> f64,
    ) -> Result<()> {
        let _ = (law, seed, steps, gamma);
        Err(Error::Unsupported(
            "device-side CLVQ steps run on a GPU backend".into(),
        ))
    }
    /// Device time of the last [`Backend::assign_reduce`] from timestamp queries, where the
    /// device has them.
    fn device_seconds(&mut self) -> Result<Option<f64>> {
        Ok(None)
    }
    /// How many iterations the driver runs between reports to an observer (a progress bar).
    /// A device that pays a round-trip for each report asks for more than one.
    fn report_interval(&self) -> usize {
        1
    }
    /// Called at the start of every iteration [`Backend::iterate`] runs (not before a lone
    /// [`Backend::assign_reduce`]): where a backend with fresh samples draws them.
    fn begin_iteration(&mut self) -> Result<()> {
        Ok(())
    }
    /// Runs up to `count` whole iterations (assign, reduce, update) and reports each. The
    /// default goes step by step; a device backend may queue them all and report once, and
    /// may stop early after an iteration that meets the driver's stop rule for `tolerance`
    /// (0: never), which the driver applies again to what comes back.
    fn iterate(&mut self, count: usize, tolerance: f64) -> Result<Vec<StepRecord>> {
        // Not sized by `count`: a budget of 10⁹ iterations with a tolerance must just run.
        let mut out: Vec<StepRecord> = Vec::new();
        while out.len() < count {
            let start = std::time::Instant::now();
            self.begin_iteration()?;
            self.assign_reduce()?;
            let sse = self.sse()?;
            let device_seconds = self.device_seconds()?;
            let update = self.update()?;
            let record = StepRecord {
                sse,
                empty_cells_split: update.splits,
                moved: update.moved,
                device_seconds,
                seconds: Some(start.elapsed().as_secs_f64()),
            };
            let stop = stops(out.last().map(|p| p.sse), &record, tolerance);
            out.push(record);
            if stop {
                break;
            }
        }
        Ok(out)
    }
}

/// The stop rule, for an iteration that split no empty cell (a split moves centroids off
/// their means): stop at a fixed point (the update moved nothing, so every later iteration
/// would repeat this one; scikit-learn stops there too, whatever the tolerance), or when the
/// error fell from the iteration before (`previous`) by no more than `tolerance` of it. A
/// zero tolerance stops only at the fixed point: late decreases are smaller than the rounding
/// of the error itself, so "no decrease" would stop at noise. `shaders/empty_cells.wgsl`
/// applies the same rule on the device.
pub(crate) fn stops(previous: Option<f64>, record: &StepRecord, tolerance: f64) -> bool {
    if record.empty_cells_split != 0 {
        return false;
    }
    !record.moved || previous.is_some_and(|p| tolerance > 0.0 && p - record.sse <= tolerance * p)
}
