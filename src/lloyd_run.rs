//! Lloyd's iteration for a caller who forms each pass's statistics itself, over parts of the
//! data held by other processes or machines (Dask workers, say): the stop rule, the
//! spherical projection and the history of a [`crate::KMeans`] fit, so that the iterations
//! are those of a fit on the CPU, to the bit.

use crate::backend::{StepRecord, stops};
use crate::data::{check_points, check_schedule};
use crate::driver::{IterationStats, to_unit_rows};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::stats::LloydStats;

/// One Lloyd fit whose passes the caller runs: it says which centroids the next pass must
/// assign to ([`LloydRun::centroids`]), takes that pass's merged [`LloydStats`]
/// ([`LloydRun::step`]), and stops by the rule a [`crate::KMeans`] fit stops by. The
/// iteration budget is the caller's loop.
///
/// ```
/// use lloyd::{Extent, LloydRun, LloydStats};
/// let data = [0.0f64, 0.2, 0.1, 5.0, 5.2, 5.1];
/// let (a, b) = data.split_at(3);
/// let mut extent = Extent::of(a, 1)?;
/// extent.merge(&Extent::of(b, 1)?)?;
/// let total = extent.total_weight();
/// let frame = extent.including(&[0.0, 1.0]).frame();
/// let mut run = LloydRun::new(&frame, &[0.0, 1.0], total, 0.0, false)?;
/// while !run.converged() && run.history().len() < 100 {
///     let c = run.centroids().to_vec();
///     let mut stats = LloydStats::compute(&frame, a, None, &c, 0)?;
///     stats.merge(&LloydStats::compute(&frame, b, None, &c, 3)?)?;
///     run.step(&stats, 0.0)?;
/// }
/// assert!((run.centroids()[1] - 5.1).abs() < 1e-12);
/// # Ok::<(), lloyd::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LloydRun {
    frame: Frame,
    /// The centroids the next pass assigns to (the caller's units).
    centroids: Vec<f64>,
    /// The same in frame units, as the pass sees them.
    entering: Vec<f64>,
    total_mass: f64,
    tolerance: f64,
    spherical: bool,
    previous: Option<f64>,
    history: Vec<IterationStats>,
    converged: bool,
}

impl LloydRun {
    /// A run in `frame` (which must hold `init`: build it from an [`crate::Extent`] that
    /// [`crate::Extent::including`] them) from `init` (row-major `k x d`), for points of total
    /// weight `total_mass` ([`crate::Extent::total_weight`]), stopping when the error falls
    /// by no more than `tolerance` of itself (0: at the fixed point only). `spherical`
    /// scales every centroid to unit norm, the start included.
    pub fn new(
        frame: &Frame,
        init: &[f64],
        total_mass: f64,
        tolerance: f64,
        spherical: bool,
    ) -> Result<Self> {
        let dim = frame.dim();
        check_schedule(1, tolerance)?;
        if !(total_mass.is_finite() && total_mass > 0.0) {
            return Err(Error::ZeroTotalWeight);
        }
        check_points(init, dim).map_err(|e| {
            Error::InvalidArgument(format!(
                "the initial centroids are not a k x {dim} matrix: {e}"
            ))
        })?;
        if let Some(i) = init.iter().position(|v| !v.is_finite()) {
            return Err(Error::InitNonFinite { index: i / dim });
        }
        // As a fit starts: the centroids as the frame holds them, projected if spherical.
        let mut centroids = frame.to_caller(&frame.to_device_f64(init));
        if spherical {
            to_unit_rows(&mut centroids, dim);
        }
        Ok(LloydRun {
            frame: frame.clone(),
            entering: frame.to_device_f64(&centroids),
            centroids,
            total_mass,
            tolerance,
            spherical,
            previous: None,
            history: Vec::new(),
            converged: false,
        })
    }

    /// The centroids the next pass must assign to, row-major `k x d` (the caller's units);
    /// after the last step, the fit's centroids.
    pub fn centroids(&self) -> &[f64] {
        &self.centroids
    }

    /// Takes the merged statistics of a pass against [`LloydRun::centroids`] (`seconds`:
    /// the pass's wall-clock time, for the history), moves the centroids and returns whether
    /// the run has converged.
    pub fn step(&mut self, stats: &LloydStats, seconds: f64) -> Result<bool> {
        if stats.frame() != &self.frame || stats.centroids_in_frame() != self.entering_as(stats) {
            return Err(Error::InvalidArgument(
                "these statistics are not of a pass against the run's centroids in its frame"
                    .into(),
            ));
        }
        let update = stats.update()?;
        let mut next = update.centroids;
        let mut moved = update.moved;
        if self.spherical {
            to_unit_rows(&mut next, self.frame.dim());
        }
        let entering = self.frame.to_device_f64(&next);
        if self.spherical {
            // The update moves centroids off the sphere whatever happens: the fixed point is
            // where the projected centroids stop moving.
            moved = entering != self.entering;
        }
        let record = StepRecord {
            sse: stats.frame_error(),
            empty_cells_split: update.empty_cells_split,
            moved,
            device_seconds: None,
            seconds: Some(seconds),
        };
        let it = IterationStats::of(
            self.history.len(),
            &record,
            self.total_mass,
            seconds,
            &self.frame,
        );
        self.converged |= stops(self.previous, &record, self.tolerance);
        self.previous = Some(record.sse);
        self.history.push(it);
        self.centroids = next;
        self.entering = entering;
        Ok(self.converged)
    }

    /// Whether the stop rule has been met.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// One entry per step.
    pub fn history(&self) -> &[IterationStats] {
        &self.history
    }

    /// The frame of the run.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// The entering centroids as `stats` list them (sorted, when its cells are intervals).
    fn entering_as(&self, stats: &LloydStats) -> Vec<f64> {
        let mut c = self.entering.clone();
        if stats.intervals() {
            c.sort_by(f64::total_cmp);
        }
        c
    }
}
