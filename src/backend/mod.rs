//! The small contract every backend implements: the per-iteration steps of Lloyd's method.
//!
//! The driver ([`crate::driver`]) is written once against [`Backend`]; the CPU backends live
//! here, the GPU backend in [`crate::gpu`]. A backend owns the points (resident on its device)
//! and the current centroids.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub(crate) mod cpu_1d;
pub(crate) mod cpu_dense;
pub(crate) mod empty_cells;

use crate::error::Result;

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
    /// ([`empty_cells::split_empty_cells`]); returns how many were re-seeded.
    fn update(&mut self) -> Result<usize>;
    /// The current centroids, row-major `k x d`.
    fn centroids(&mut self) -> Result<Vec<f64>>;
    /// The per-cell summary of the last [`Backend::assign_reduce`].
    fn cell_stats(&mut self) -> Result<CellStats>;
    /// Device time of the last [`Backend::assign_reduce`] from timestamp queries, where the
    /// device has them.
    fn device_seconds(&mut self) -> Result<Option<f64>> {
        Ok(None)
    }
}
