//! The pieces of a fit spread over processes (`lloyd.dask`): extents, frames and Lloyd
//! statistics that merge exactly and pickle as their bytes, and the run that consumes the
//! merged statistics with a single-machine fit's stop rule.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::{Matrix, Rows, Vector, device_of, matrix_f64, py_err, stats_dict};

/// `(type.from_bytes, (bytes,))`: what pickle calls to rebuild a value from its bytes.
fn reduce_with<'py>(
    py: Python<'py>,
    ty: Bound<'py, pyo3::types::PyType>,
    bytes: Vec<u8>,
) -> PyResult<Bound<'py, PyTuple>> {
    let rebuild = ty.getattr("from_bytes")?;
    let args = PyTuple::new(py, [PyBytes::new(py, &bytes)])?;
    PyTuple::new(py, [rebuild, args.into_any()])
}

fn values_of(a: &PyReadonlyArray2<'_, f64>) -> Vec<f64> {
    a.as_array().iter().copied().collect()
}

/// What the rows of every part of the data say about the frame; merges exactly.
#[pyclass(module = "lloyd._lloyd", name = "Extent", frozen)]
pub struct PyExtent(lloyd::Extent);

#[pymethods]
impl PyExtent {
    /// The extent of the rows of `x` (and their weights).
    #[staticmethod]
    #[pyo3(signature = (x, weights=None))]
    fn of(py: Python<'_>, x: Matrix<'_>, weights: Option<Vector<'_>>) -> PyResult<Self> {
        let w = weights.as_ref().map(Vector::weights).transpose()?;
        let rows = x.rows()?;
        let e = py.detach(|| match rows {
            Rows::F32(v, d) => lloyd::Extent::of_weighted(v, d, w),
            Rows::F64(v, d) => lloyd::Extent::of_weighted(v, d, w),
        });
        Ok(PyExtent(e.map_err(py_err)?))
    }

    /// The extent of both parts.
    fn merge(&self, other: &PyExtent) -> PyResult<PyExtent> {
        let mut e = self.0.clone();
        e.merge(&other.0).map_err(py_err)?;
        Ok(PyExtent(e))
    }

    /// The extent widened to hold `centroids` (given initial centroids).
    fn including(&self, centroids: PyReadonlyArray2<'_, f64>) -> PyExtent {
        PyExtent(self.0.clone().including(&values_of(&centroids)))
    }

    /// The frame every part computes its statistics in.
    fn frame(&self) -> PyFrame {
        PyFrame(self.0.frame())
    }

    /// Rows seen.
    #[getter]
    fn rows(&self) -> u64 {
        self.0.rows()
    }

    /// Total weight (rows without weights), summed exactly.
    #[getter]
    fn total_weight(&self) -> f64 {
        self.0.total_weight()
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.to_bytes())
    }

    #[staticmethod]
    fn from_bytes(bytes: &[u8]) -> PyResult<Self> {
        Ok(PyExtent(lloyd::Extent::from_bytes(bytes).map_err(py_err)?))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        reduce_with(slf.py(), slf.get_type(), slf.get().0.to_bytes())
    }
}

/// The frame of a fit: where its parts centre and scale their rows.
#[pyclass(module = "lloyd._lloyd", name = "Frame", frozen, eq)]
#[derive(PartialEq)]
pub struct PyFrame(lloyd::Frame);

#[pymethods]
impl PyFrame {
    #[getter]
    fn dim(&self) -> usize {
        self.0.dim()
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.to_bytes())
    }

    #[staticmethod]
    fn from_bytes(bytes: &[u8]) -> PyResult<Self> {
        Ok(PyFrame(lloyd::Frame::from_bytes(bytes).map_err(py_err)?))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        reduce_with(slf.py(), slf.get_type(), slf.get().0.to_bytes())
    }
}

/// Encoders of the devices other than the CPU, opened once per process: a GPU context
/// costs far more than a block's statistics.
fn with_encoder<R>(
    device: &str,
    f: impl FnOnce(&mut lloyd::Encoder) -> lloyd::Result<R>,
) -> PyResult<lloyd::Result<R>> {
    let dev = device_of(device)?;
    if matches!(dev, lloyd::Device::Cpu) {
        return Ok(lloyd::Encoder::new(&dev).and_then(|mut e| f(&mut e)));
    }
    static OPEN: OnceLock<Mutex<HashMap<String, lloyd::Encoder>>> = OnceLock::new();
    let mut open = OPEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let enc = match open.entry(device.to_string()) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => match lloyd::Encoder::new(&dev) {
            Ok(enc) => v.insert(enc),
            Err(e) => return Ok(Err(e)),
        },
    };
    Ok(f(enc))
}

/// One assignment pass's per-cell sums over some rows; merges exactly with other parts'.
#[pyclass(module = "lloyd._lloyd", name = "LloydStats", frozen)]
pub struct PyLloydStats(lloyd::LloydStats);

/// Statistics and, when asked for, the rows' labels.
type StatsAndLabels<'py> = (PyLloydStats, Option<Bound<'py, PyArray1<i32>>>);

#[pymethods]
impl PyLloydStats {
    /// The statistics of the rows of `x` (row `first_row` of the whole data onwards) against
    /// `centroids` in `frame`, assigned on `device`; with `labels`, each row's label too.
    #[staticmethod]
    #[pyo3(signature = (frame, x, centroids, first_row, weights=None, device="cpu", labels=false))]
    #[allow(clippy::too_many_arguments)]
    fn compute<'py>(
        py: Python<'py>,
        frame: &PyFrame,
        x: Matrix<'py>,
        centroids: PyReadonlyArray2<'py, f64>,
        first_row: u64,
        weights: Option<Vector<'py>>,
        device: &str,
        labels: bool,
    ) -> PyResult<StatsAndLabels<'py>> {
        let c = values_of(&centroids);
        let w = weights.as_ref().map(Vector::weights).transpose()?;
        let rows = x.rows()?;
        let frame = &frame.0;
        let out = py.detach(|| {
            with_encoder(device, |enc| match rows {
                Rows::F32(v, _) => {
                    lloyd::LloydStats::compute_labeled_on(enc, frame, v, w, &c, first_row)
                }
                Rows::F64(v, _) => {
                    lloyd::LloydStats::compute_labeled_on(enc, frame, v, w, &c, first_row)
                }
            })
        })?;
        let (stats, l) = out.map_err(py_err)?;
        let l = labels.then(|| {
            l.into_iter()
                .map(|v| v as i32)
                .collect::<Vec<_>>()
                .into_pyarray(py)
        });
        Ok((PyLloydStats(stats), l))
    }

    /// The statistics of both parts.
    fn merge(&self, other: &PyLloydStats) -> PyResult<PyLloydStats> {
        let mut s = self.0.clone();
        s.merge(&other.0).map_err(py_err)?;
        Ok(PyLloydStats(s))
    }

    /// One Lloyd update: `centroids` (k, d), `empty_cells_split`, `moved`.
    fn update<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let u = self.0.update().map_err(py_err)?;
        let d = PyDict::new(py);
        d.set_item("centroids", matrix_f64(py, u.centroids, self.0.dim())?)?;
        d.set_item("empty_cells_split", u.empty_cells_split)?;
        d.set_item("moved", u.moved)?;
        Ok(d)
    }

    /// Sum of (weighted) squared distances to the nearest centroid.
    #[getter]
    fn inertia(&self) -> f64 {
        self.0.inertia()
    }

    /// Rows in each cell.
    #[getter]
    fn counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        self.0.counts().to_vec().into_pyarray(py)
    }

    /// Weight in each cell.
    #[getter]
    fn cell_weights<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.0.cell_weights().into_pyarray(py)
    }

    /// The centroids the rows were assigned to (sorted, for scalars without weights).
    #[getter]
    fn centroids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        matrix_f64(py, self.0.centroids(), self.0.dim())
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.to_bytes())
    }

    #[staticmethod]
    fn from_bytes(bytes: &[u8]) -> PyResult<Self> {
        Ok(PyLloydStats(
            lloyd::LloydStats::from_bytes(bytes).map_err(py_err)?,
        ))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        reduce_with(slf.py(), slf.get_type(), slf.get().0.to_bytes())
    }
}

/// A Lloyd fit whose passes the caller runs (lloyd::LloydRun).
#[pyclass(module = "lloyd._lloyd", name = "LloydRun")]
pub struct PyLloydRun(lloyd::LloydRun);

#[pymethods]
impl PyLloydRun {
    #[new]
    fn new(
        frame: &PyFrame,
        init: PyReadonlyArray2<'_, f64>,
        total_weight: f64,
        tol: f64,
        spherical: bool,
    ) -> PyResult<Self> {
        let run = lloyd::LloydRun::new(&frame.0, &values_of(&init), total_weight, tol, spherical);
        Ok(PyLloydRun(run.map_err(py_err)?))
    }

    /// Takes a pass's merged statistics; returns whether the run has converged.
    fn step(&mut self, stats: &PyLloydStats, seconds: f64) -> PyResult<bool> {
        self.0.step(&stats.0, seconds).map_err(py_err)
    }

    /// The centroids the next pass assigns to (after the last step: the fit's).
    #[getter]
    fn centroids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        matrix_f64(py, self.0.centroids().to_vec(), self.0.frame().dim())
    }

    #[getter]
    fn converged(&self) -> bool {
        self.0.converged()
    }

    /// One dict per step, as a fit's history.
    #[getter]
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for h in self.0.history() {
            list.append(stats_dict(py, h)?)?;
        }
        Ok(list)
    }
}

/// Adds the classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyExtent>()?;
    m.add_class::<PyFrame>()?;
    m.add_class::<PyLloydStats>()?;
    m.add_class::<PyLloydRun>()?;
    Ok(())
}
