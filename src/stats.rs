//! Lloyd statistics as a public value: what one assignment pass over some points says about
//! each cell, in a form whose parts merge exactly into the whole. Streaming fits, the Python
//! bindings and fits spread over a cluster are built on it.

use crate::backend::cell_sums::{CellSums, error_exponent};
use crate::backend::cpu_1d::{midpoint, nearest_sorted};
use crate::backend::cpu_dense::reduce_dense;
use crate::backend::framed::SubSpace;
use crate::backend::interval_sums::IntervalSums;
use crate::backend::lloyd_pass::{Pass, lloyd_pass};
use crate::codebook::Encoder;
use crate::data::{check_points, check_shape, check_weight_values, non_finite_in_row};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::real::{Precision, Real};
use crate::weights::Weights;

/// The per-cell sufficient statistics of one assignment pass of points (and weights) to
/// centroids: counts, weights, coordinate sums and squared errors, with each cell's farthest
/// and nearest point for the empty-cell policy.
///
/// Sums are kept in fixed point in a [`Frame`] every part agrees on, so [`LloydStats::merge`]
/// is exact: statistics of any split of the points, merged in any order, equal the
/// statistics of the whole to the bit, and [`LloydStats::update`] then gives the same
/// centroids a [`crate::KMeans`] fit on the CPU computes in its iteration.
///
/// Scalars without weights (d = 1) are what a 1-D fit treats as intervals: their cells are
/// listed in increasing order of the centroids (sorted once, equal ones kept in the given
/// order), [`LloydStats::centroids`] and [`LloydStats::update`] return them in that order,
/// and the values are kept in f64, as the fit keeps them. One Lloyd iteration over data
/// split in parts reads:
///
/// ```
/// use lloyd::{Extent, LloydStats};
/// let data = [0.0f64, 0.1, 0.2, 5.0, 5.1, 5.3];
/// let parts = [&data[..4], &data[4..]];
/// // Everyone agrees on the frame first (one pass, merged exactly).
/// let mut extent = Extent::of(parts[0], 1)?;
/// extent.merge(&Extent::of(parts[1], 1)?)?;
/// let frame = extent.including(&[0.0, 1.0]).frame();
/// let centroids = vec![0.0, 1.0];
/// // Each part's statistics, then their sum.
/// let mut stats = LloydStats::compute(&frame, parts[0], None, &centroids, 0)?;
/// stats.merge(&LloydStats::compute(&frame, parts[1], None, &centroids, 4)?)?;
/// assert_eq!(stats.counts(), &[3, 3]);
/// let next = stats.update()?;
/// assert!((next.centroids[1] - 5.1333).abs() < 1e-3);
/// # Ok::<(), lloyd::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LloydStats {
    frame: Frame,
    /// The centroids the points were assigned to, in frame units.
    centroids: Vec<f64>,
    weighted: bool,
    cells: Cells,
}

/// The sums of points in d-D (or weighted), or of scalars in intervals.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum Cells {
    Points(CellSums),
    Intervals(IntervalSums),
}

/// What [`LloydStats::update`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct LloydUpdate {
    /// The new centroids, row-major `k x d`: each cell's weighted mean, empty cells re-seeded
    /// on the farthest points of populated ones (as a fit does), the rest unchanged.
    pub centroids: Vec<f64>,
    /// Empty cells re-seeded.
    pub empty_cells_split: usize,
    /// Whether any centroid changed: an update that moves nothing has reached the fixed
    /// point.
    pub moved: bool,
}

impl LloydStats {
    /// Assigns each row of `data` (row-major, the frame's dimension, f32 or f64) to its
    /// nearest centroid (`centroids`, row-major `k x d`, ties to the lowest index) and sums
    /// each cell. `weights` (one per row, finite, non-negative; all zero is allowed for a
    /// part) must not exceed those the frame's [`crate::Extent`] saw, nor the rows its
    /// bounds. `first_row` is the index of `data`'s first row in the whole data: ties
    /// between extreme points go by it, so that any split merges to the whole.
    pub fn compute<T: Real>(
        frame: &Frame,
        data: &[T],
        weights: Option<Weights<'_>>,
        centroids: &[f64],
        first_row: u64,
    ) -> Result<Self> {
        Self::compute_on(
            &mut Encoder::cpu(),
            frame,
            data,
            weights,
            centroids,
            first_row,
        )
    }

    /// [`LloydStats::compute`] with the assignment on `encoder`'s device (a GPU, say); the
    /// sums are formed on the host in the same fixed point, so statistics computed on one
    /// device merge exactly with each other. A GPU measures distances in f32, so its labels
    /// near ties and its errors may differ from the CPU's in the last bits. Scalars without
    /// weights are intervals (see above), summed on the host whatever the encoder.
    pub fn compute_on<T: Real>(
        encoder: &mut Encoder,
        frame: &Frame,
        data: &[T],
        weights: Option<Weights<'_>>,
        centroids: &[f64],
        first_row: u64,
    ) -> Result<Self> {
        Self::compute_labeled_on(encoder, frame, data, weights, centroids, first_row).map(|r| r.0)
    }

    /// [`LloydStats::compute_on`] with the label of each row: the index of its nearest
    /// centroid as [`LloydStats::centroids`] lists them (ties to the lowest index), found in
    /// the frame, so they are the labels a [`crate::KMeans`] fit in the same frame returns.
    ///
    /// ```
    /// use lloyd::{Encoder, Extent, LloydStats};
    /// let data = [0.0f32, 0.0, 0.1, 0.0, 5.0, 5.0];
    /// let frame = Extent::of(&data, 2)?.frame();
    /// let (stats, labels) =
    ///     LloydStats::compute_labeled_on(&mut Encoder::new(&lloyd::Device::Cpu)?, &frame,
    ///         &data, None, &[5.0, 5.0, 0.0, 0.0], 0)?;
    /// assert_eq!(labels, vec![1, 1, 0]);
    /// assert_eq!(stats.counts(), &[1, 2]);
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn compute_labeled_on<T: Real>(
        encoder: &mut Encoder,
        frame: &Frame,
        data: &[T],
        weights: Option<Weights<'_>>,
        centroids: &[f64],
        first_row: u64,
    ) -> Result<(Self, Vec<u32>)> {
        let w = Self::checked_weights(frame, data, weights, centroids)?;
        let c = frame.to_device_f64(centroids);
        Self::labeled_in_frame(
            encoder,
            frame,
            data,
            w.as_deref(),
            c,
            Some(centroids),
            first_row,
        )
    }

    /// The weights in the frame's unit, after checking the points' shape, the centroids and
    /// the weights (the points' values are refused where a pass meets them: a pass over
    /// the data to check them first cost 7 % of computing the statistics).
    fn checked_weights<T: Real>(
        frame: &Frame,
        data: &[T],
        weights: Option<Weights<'_>>,
        centroids: &[f64],
    ) -> Result<Option<Vec<f64>>> {
        let dim = frame.dim();
        let n = check_shape(data, dim)?;
        check_points(centroids, dim).map_err(|e| {
            Error::InvalidArgument(format!("the centroids are not a k x {dim} matrix: {e}"))
        })?;
        let Some(w) = weights else { return Ok(None) };
        check_weight_values(w, n)?;
        let scaled = frame.weights_to_device(w);
        if scaled.iter().any(|&v| v > 1.0) {
            return Err(Error::InvalidArgument(
                "a weight is larger than any the frame's extent saw: build the frame \
                 with Extent::of_weighted over every part's weights"
                    .into(),
            ));
        }
        Ok(Some(scaled))
    }

    /// [`LloydStats::compute_on`] for checked points and weights (in the frame's weight
    /// unit) and centroids already in frame units (`c`), the caller's values of which are
    /// `caller` where known (else `c` taken back to the caller's units).
    pub(crate) fn compute_in_frame<T: Real>(
        encoder: &mut Encoder,
        frame: &Frame,
        data: &[T],
        w: Option<&[f64]>,
        c: Vec<f64>,
        caller: Option<&[f64]>,
        first_row: u64,
    ) -> Result<Self> {
        Ok(Self::labeled_in_frame(encoder, frame, data, w, c, caller, first_row)?.0)
    }

    /// [`LloydStats::compute_in_frame`] with the rows' labels.
    fn labeled_in_frame<T: Real>(
        encoder: &mut Encoder,
        frame: &Frame,
        data: &[T],
        w: Option<&[f64]>,
        mut c: Vec<f64>,
        caller: Option<&[f64]>,
        first_row: u64,
    ) -> Result<(Self, Vec<u32>)> {
        let dim = frame.dim();
        // Value `i` is not finite, or lies outside the frame.
        let outside = |i: usize| {
            non_finite_in_row(data, dim, i / dim).unwrap_or_else(|| {
                Error::InvalidArgument(format!(
                    "row {} lies outside the frame's bounds: build the frame from an Extent \
                     that saw every part",
                    i / dim
                ))
            })
        };
        // `> 1.0` alone lets a value that is not a number through.
        let out = |v: f64| v.is_nan() || v.abs() > 1.0;
        if dim == 1 && w.is_none() {
            // Intervals, summed on the host whatever the encoder: O(n log k).
            let values = frame.to_device_f64(data);
            if let Some(i) = values.iter().position(|&v| out(v)) {
                return Err(outside(i));
            }
            c.sort_by(f64::total_cmp);
            let mut cells = IntervalSums::zeros(c.len());
            let mut labels = Vec::with_capacity(values.len());
            for &x in &values {
                let l = nearest_sorted(&c, x, midpoint);
                cells.add(l, x);
                labels.push(l as u32);
            }
            let stats = LloydStats {
                frame: frame.clone(),
                centroids: c,
                weighted: false,
                cells: Cells::Intervals(cells),
            };
            return Ok((stats, labels));
        }
        let (cells, labels) = if encoder.inner.is_cpu() {
            // One pass over the caller's rows, labels decided on their values: the pass a
            // fit in memory makes, so parts merge into it to the bit.
            let caller = caller.map_or_else(|| frame.to_caller(&c), <[f64]>::to_vec);
            let space = SubSpace::of_device(frame.clone(), &c, &caller, dim);
            let mut pass = Pass::default();
            lloyd_pass(&space, data, None, w, first_row, true, &mut pass)
                .map_err(|row| outside(row * dim))?;
            (pass.sums, pass.labels)
        } else {
            let points = frame.to_device_f32(data);
            if let Some(i) = points.iter().position(|&v| out(f64::from(v))) {
                return Err(outside(i));
            }
            let (labels, dist) = encoder.inner.gpu_assign(&points, &c, dim)?;
            let (k, e) = (c.len() / dim, error_exponent(&c, dim));
            // Float64 rows summed in f64, as a CPU pass sums them.
            let cells = if T::PRECISION == Precision::F64 {
                let wide = frame.to_device_f64(data);
                reduce_dense(&wide, w, dim, k, &labels, &dist, e, first_row)
            } else {
                reduce_dense(&points, w, dim, k, &labels, &dist, e, first_row)
            };
            (cells, labels)
        };
        let stats = LloydStats {
            frame: frame.clone(),
            centroids: c,
            weighted: w.is_some(),
            cells: Cells::Points(cells),
        };
        Ok((stats, labels))
    }

    /// Whether statistics decoded from bytes are ones a pass can produce.
    pub(crate) fn well_formed(&self) -> bool {
        let dim = self.frame.dim();
        self.frame.well_formed()
            && self.centroids.iter().all(|v| v.is_finite())
            && match &self.cells {
                Cells::Points(c) => {
                    c.well_formed() && c.dim == dim && self.centroids.len() == c.sums.len()
                }
                Cells::Intervals(c) => {
                    c.well_formed()
                        && dim == 1
                        && !self.weighted
                        && self.centroids.len() == c.k()
                        && self.centroids.is_sorted_by(|a, b| a <= b)
                }
            }
    }

    /// The bytes of these statistics, for another process to [`LloydStats::from_bytes`]
    /// and merge (pickling in Python, Dask's transfers between workers).
    ///
    /// ```
    /// use lloyd::{Extent, LloydStats};
    /// let data = [0.0f32, 1.0, 9.0, 10.0];
    /// let frame = Extent::of(&data, 2)?.frame();
    /// let s = LloydStats::compute(&frame, &data, None, &[0.0, 0.0, 9.0, 9.0], 0)?;
    /// assert_eq!(LloydStats::from_bytes(&s.to_bytes())?, s);
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::wire::to_bytes(self)
    }

    /// The statistics `bytes` hold ([`LloydStats::to_bytes`]); anything else is an
    /// [`Error::InvalidArgument`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        crate::wire::from_bytes(bytes)
    }

    /// Whether the cells are intervals (scalars without weights).
    pub(crate) fn intervals(&self) -> bool {
        matches!(self.cells, Cells::Intervals(_))
    }

    /// The centroids of the pass in frame units (sorted, for intervals).
    pub(crate) fn centroids_in_frame(&self) -> &[f64] {
        &self.centroids
    }

    /// The frame the statistics were computed in.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// Adds the statistics of other points against the same centroids in the same frame:
    /// exact, so the order and the split do not matter.
    pub fn merge(&mut self, other: &LloydStats) -> Result<()> {
        if other.frame != self.frame
            || other.centroids != self.centroids
            || other.weighted != self.weighted
        {
            return Err(Error::InvalidArgument(
                "only statistics of the same centroids, frame and weighting merge".into(),
            ));
        }
        match (&mut self.cells, &other.cells) {
            (Cells::Points(a), Cells::Points(b)) => a.merge(b),
            (Cells::Intervals(a), Cells::Intervals(b)) => a.merge(b),
            _ => unreachable!("same dimension and weighting, same kind of cells"),
        }
    }

    /// Number of cells k.
    pub fn k(&self) -> usize {
        self.centroids.len() / self.dim()
    }

    /// Dimension of the points.
    pub fn dim(&self) -> usize {
        self.frame.dim()
    }

    /// Points in each cell.
    pub fn counts(&self) -> &[u64] {
        match &self.cells {
            Cells::Points(c) => &c.counts,
            Cells::Intervals(c) => &c.counts,
        }
    }

    /// Counts, weights and squared errors (squared frame units) of each cell.
    fn cell_stats(&self) -> crate::backend::CellStats {
        match &self.cells {
            Cells::Points(c) => c.cell_stats(self.frame.weight_unit()),
            Cells::Intervals(c) => c.cell_stats(&self.centroids),
        }
    }

    /// The cells as a backend reports them: errors in squared frame units.
    pub(crate) fn frame_cells(&self) -> crate::backend::CellStats {
        self.cell_stats()
    }

    /// The total error in squared frame units, as a backend reports it.
    pub(crate) fn frame_error(&self) -> f64 {
        match &self.cells {
            Cells::Points(c) => c.total_error() / self.frame.weight_unit(),
            Cells::Intervals(c) => c.total_error(&self.centroids),
        }
    }

    /// Total weight in each cell (the counts without weights).
    pub fn cell_weights(&self) -> Vec<f64> {
        self.cell_stats().mass
    }

    /// Weighted sum of squared distances of each cell's points to its centroid.
    pub fn cell_errors(&self) -> Vec<f64> {
        self.cell_stats()
            .sse
            .iter()
            .map(|&e| self.frame.squared_to_caller(e))
            .collect()
    }

    /// Weighted sum of squared distances to the nearest centroid, over every cell
    /// (scikit-learn's `inertia_`): summed exactly and rounded once in d-D, the sum of the
    /// cells' errors in 1-D (as the 1-D fit sums them).
    pub fn inertia(&self) -> f64 {
        self.frame.squared_to_caller(self.frame_error())
    }

    /// The centroids the points were assigned to (the caller's units, as given).
    pub fn centroids(&self) -> Vec<f64> {
        self.frame.to_caller(&self.centroids)
    }

    /// One Lloyd update: each centroid moves to its cell's weighted mean, and empty cells are
    /// re-seeded by the policy a fit uses (each takes the farthest point of the next
    /// populated cell that can be split, most points first).
    pub fn update(&self) -> Result<LloydUpdate> {
        let (c, splits) = match &self.cells {
            Cells::Points(s) => s.means_and_splits(&self.centroids),
            Cells::Intervals(s) => s.means_and_splits(&self.centroids),
        };
        let centroids = self.frame.to_caller(&c);
        // Compared as the next pass will see them, as a fit compares them.
        let moved = self.frame.to_device_f64(&centroids) != self.centroids;
        if let Some(v) = centroids.iter().find(|v| !v.is_finite()) {
            return Err(Error::OutOfRange(format!(
                "a centroid came out as {v}, beyond f64"
            )));
        }
        Ok(LloydUpdate {
            centroids,
            empty_cells_split: splits,
            moved,
        })
    }
}
