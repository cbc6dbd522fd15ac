//! Lloyd's fixed-point iteration, written once against [`Backend`]: assign, reduce, update,
//! until the iteration budget is spent or the relative decrease of the error falls under the
//! tolerance.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::backend::{Backend, CellStats, StepRecord, stops};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::real::Precision;

/// What one Lloyd iteration did, as faiss's `ClusteringIterationStats` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IterationStats {
    /// 0-based index of the iteration.
    pub iteration: usize,
    /// Weighted mean squared distance of the points to the centroids *entering* this
    /// iteration (so the last entry is the error before the last update).
    pub mse: f64,
    /// `mse / 2`: the distortion in the ½ convention of numerical probability.
    pub distortion: f64,
    /// Wall-clock seconds of the iteration (assign, reduce, update, and the read-back of the
    /// error). A device that runs iterations in batches reports the batch's time divided
    /// evenly among its iterations.
    pub seconds: f64,
    /// Empty cells re-seeded by splitting a populated one in this iteration.
    pub empty_cells_split: usize,
    /// GPU time of the iteration's kernels (assignment, reduction, update, empty cells) from
    /// timestamp queries (None on the CPU or where the adapter has no timestamps).
    pub device_seconds: Option<f64>,
}

impl IterationStats {
    /// The report of iteration `iteration` from a backend's record (in device units of
    /// `frame`), with `total_mass` the points' total weight.
    pub(crate) fn of(
        iteration: usize,
        r: &StepRecord,
        total_mass: f64,
        seconds: f64,
        frame: &Frame,
    ) -> Self {
        let mse = frame.squared_to_caller(r.sse) / total_mass;
        IterationStats {
            iteration,
            mse,
            distortion: 0.5 * mse,
            seconds,
            empty_cells_split: r.empty_cells_split,
            device_seconds: r.device_seconds,
        }
    }
}

/// How a fit ran, the same for every result: its iterations, whether it converged, its
/// history (faiss's `ClusteringIterationStats`), the device and the set-up time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitSummary {
    /// Iterations performed (steps, for CLVQ; chunks, for mini-batch K-means).
    pub iterations_run: usize,
    /// Whether the run stopped on its stop rule rather than on its budget.
    pub converged: bool,
    /// Empty cells re-seeded over the run.
    pub empty_cells_split: usize,
    /// One entry per iteration (empty where the method has no per-iteration error).
    pub history: Vec<IterationStats>,
    /// The device that ran it: `cpu` or the GPU adapter's name.
    pub device: String,
    /// Seconds spent before the first iteration (sampling, sorting, upload).
    pub setup_seconds: f64,
}

impl FitSummary {
    /// The summary of a run whose iterations are `history`.
    pub(crate) fn of(
        history: Vec<IterationStats>,
        converged: bool,
        device: String,
        setup_seconds: f64,
    ) -> Self {
        FitSummary {
            iterations_run: history.len(),
            converged,
            empty_cells_split: history.iter().map(|s| s.empty_cells_split).sum(),
            history,
            device,
            setup_seconds,
        }
    }

    /// Median wall-clock milliseconds per iteration (0 when nothing ran).
    pub fn ms_per_iteration(&self) -> f64 {
        median_ms_per_iteration(&self.history)
    }

    /// Scales the history's errors by `factor` (a quantizer mapped by an affine change).
    pub(crate) fn scale_errors(&mut self, factor: f64) {
        for h in &mut self.history {
            h.mse *= factor;
            h.distortion *= factor;
        }
    }
}

/// A callback the driver calls after every iteration (progress bars, logging). An error it
/// returns stops the fit with that error ([`crate::Error::Interrupted`] for a user's
/// interrupt): the way a caller cancels a long fit between iterations.
///
/// ```
/// use std::sync::Arc;
/// let stop_after_two: lloyd::Observer = Arc::new(|s: &lloyd::IterationStats| {
///     if s.iteration >= 1 {
///         return Err(lloyd::Error::Interrupted("enough".into()));
///     }
///     Ok(())
/// });
/// let data: Vec<f32> = (0..1000).map(|i| (i % 97) as f32).collect();
/// let out = lloyd::KMeans::new(5)
///     .tolerance(0.0)
///     .device(lloyd::Device::Cpu)
///     .on_iteration(stop_after_two)
///     .fit(&data, 2);
/// assert!(matches!(out, Err(lloyd::Error::Interrupted(_))));
/// ```
pub type Observer = Arc<dyn Fn(&IterationStats) -> crate::error::Result<()> + Send + Sync>;

/// How long to iterate.
#[derive(Clone)]
pub(crate) struct Schedule {
    pub iterations: usize,
    pub tolerance: f64,
    pub observer: Option<Observer>,
    /// Spherical K-means: every update is followed by scaling each centroid to unit norm
    /// (the caller's units), so the nearest centroid is the one of largest inner product.
    pub spherical: bool,
    /// Whether the run ends with one more pass against the centroids it returns (their cells
    /// and error); without it the outcome's cells are empty and its error is the last
    /// iteration's.
    pub final_pass: bool,
}

/// What the driver hands back: the final centroids, their cells, and the history, in the
/// caller's units.
pub(crate) struct Outcome {
    pub centroids: Vec<f64>,
    /// Cells of the centroids returned (squared errors in the caller's units); empty without
    /// the final pass.
    pub cells: CellStats,
    /// Weighted mean squared distance of the points to the final centroids; without the
    /// final pass, to the centroids entering the last iteration (0 when none ran).
    pub mse: f64,
    pub history: Vec<IterationStats>,
    pub converged: bool,
}

/// Runs Lloyd's method on `backend`, whose points and centroids (already initialised) are in
/// the device units of `frame`. `total_mass` is the total weight of the points (their number
/// when unweighted). The centroids come back in the caller's units, rounded to `precision`,
/// and the last pass ([`Schedule::final_pass`]) measures exactly those: every label and cell
/// describes the centroids returned.
///
/// Iterations run in batches: the whole budget at once, or [`Backend::report_interval`] at a
/// time when an observer wants to hear of them, so a device backend reads its error back once
/// per batch rather than once per iteration. A backend may stop a batch early on the stop
/// rule; the rule is applied here again to every iteration that came back.
pub(crate) fn run(
    backend: &mut dyn Backend,
    schedule: &Schedule,
    total_mass: f64,
    frame: &Frame,
    precision: Precision,
) -> Result<Outcome> {
    let mut history: Vec<IterationStats> = Vec::new();
    let mut converged = false;
    let mut previous: Option<f64> = None;
    let batch = if schedule.spherical {
        // The projection runs on the host between iterations.
        1
    } else if schedule.observer.is_some() {
        backend.report_interval().max(1)
    } else {
        schedule.iterations.max(1)
    };
    // Spherical: the centroids entering the next iteration, projected.
    let mut entering = match schedule.spherical {
        true => Some(project_to_sphere(backend, frame)?),
        false => None,
    };
    while history.len() < schedule.iterations && !converged {
        let count = batch.min(schedule.iterations - history.len());
        let start = Instant::now();
        let mut records = backend.iterate(count, schedule.tolerance)?;
        if let Some(before) = &mut entering {
            // The update moves centroids off the sphere whatever happens: the fixed point is
            // where the projected centroids stop moving.
            for r in &mut records {
                let after = project_to_sphere(backend, frame)?;
                r.moved = after.0 != before.0;
                *before = after;
            }
        }
        let share = start.elapsed().as_secs_f64() / records.len().max(1) as f64;
        for r in records {
            let seconds = r.seconds.unwrap_or(share);
            let stats = IterationStats::of(history.len(), &r, total_mass, seconds, frame);
            if let Some(obs) = &schedule.observer {
                obs(&stats)?;
            }
            // Iterations a batch ran past the stopping point stay in the history: they ran.
            converged |= stops(previous, &r, schedule.tolerance);
            previous = Some(r.sse);
            history.push(stats);
        }
    }
    // Spherical: the unit-norm centroids as projected, not read back through the frame
    // (which would round them again, off the sphere).
    let centroids = precision.round(match entering {
        Some((_, caller)) => caller,
        None => backend.caller_centroids(frame)?,
    });
    let (cells, mse) = match schedule.final_pass {
        true => measure(backend, &centroids, total_mass, frame)?,
        false => (CellStats::zeros(0), history.last().map_or(0.0, |h| h.mse)),
    };
    Ok(Outcome {
        centroids,
        cells,
        mse,
        history,
        converged,
    })
}

/// Scales each of `backend`'s centroids to unit norm in the caller's units (a centroid at
/// the origin stays there); returns them as the next pass sees them (frame units) and in the
/// caller's units.
fn project_to_sphere(backend: &mut dyn Backend, frame: &Frame) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut c = backend.caller_centroids(frame)?;
    to_unit_rows(&mut c, frame.dim());
    let projected = frame.to_device_f64(&c);
    backend.set_centroids(&projected)?;
    Ok((projected, c))
}

/// Scales each row of `c` (`dim` columns) to unit norm; a row at the origin stays there.
pub(crate) fn to_unit_rows(c: &mut [f64], dim: usize) {
    for row in c.chunks_exact_mut(dim) {
        // Scaled by the largest coordinate first, so that no square overflows or underflows.
        let big = row.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if big > 0.0 {
            let norm = big
                * row
                    .iter()
                    .map(|v| (v / big) * (v / big))
                    .sum::<f64>()
                    .sqrt();
            row.iter_mut().for_each(|v| *v /= norm);
        }
    }
}

/// One assignment pass of `backend` against `centroids` (the caller's units): the cells
/// with their squared errors in the caller's units, and the weighted mean squared error.
/// Errors beyond f64 are refused, never returned as infinity.
pub(crate) fn measure(
    backend: &mut dyn Backend,
    centroids: &[f64],
    total_mass: f64,
    frame: &Frame,
) -> Result<(CellStats, f64)> {
    backend.set_centroids(&frame.to_device_f64(centroids))?;
    backend.assign_reduce()?;
    let mut cells = backend.cell_stats()?;
    for e in &mut cells.sse {
        *e = frame.squared_to_caller(*e);
    }
    let mse = frame.squared_to_caller(backend.sse()?) / total_mass;
    if !mse.is_finite() {
        return Err(Error::OutOfRange(format!(
            "the squared distances reach {mse}, beyond f64: the data spans more than \
             about 1e154"
        )));
    }
    Ok((cells, mse))
}

/// Maps a quantizer of X to one of `loc + scale · X` (every coordinate): centroids moved,
/// the distortion, the MSE and the history's errors times `scale²`.
pub(crate) fn map_affine(
    centroids: &mut [f64],
    errors: [&mut f64; 2],
    summary: &mut FitSummary,
    loc: f64,
    scale: f64,
) {
    for c in centroids {
        *c = loc + scale * *c;
    }
    let sq = scale * scale;
    for e in errors {
        *e *= sq;
    }
    summary.scale_errors(sq);
}

/// Median of the per-iteration times, in milliseconds (0 when nothing ran).
pub fn median_ms_per_iteration(history: &[IterationStats]) -> f64 {
    let mut t: Vec<f64> = history.iter().map(|s| s.seconds * 1e3).collect();
    if t.is_empty() {
        return 0.0;
    }
    t.sort_by(f64::total_cmp);
    let n = t.len();
    if n % 2 == 1 {
        t[n / 2]
    } else {
        0.5 * (t[n / 2 - 1] + t[n / 2])
    }
}
