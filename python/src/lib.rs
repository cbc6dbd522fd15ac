//! `lloyd._lloyd`: the Rust library's entry points for the Python package. Each function
//! takes NumPy arrays (float32 used in place when C-contiguous, float64 kept in float64),
//! releases the GIL while lloyd works, and returns plain arrays and numbers; the estimator
//! conventions live in the Python layer (`lloyd/`).

use numpy::ndarray::Array2;
use numpy::prelude::*;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyMemoryError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::{Arc, Mutex};

mod dist;
mod pq;

use lloyd::{
    Clvq, Codebook, Deterministic1d, Device, Error, Init, IterationStats, KMeans, KMeansFit, Law,
    Lloyd1d, LloydNd, Observer,
};

/// lloyd's error as the Python exception a caller expects: bad input is a `ValueError`,
/// a device that fails a `RuntimeError` (`MemoryError` when it runs out), a file an
/// `OSError`.
fn py_err(e: Error) -> PyErr {
    let text = e.to_string();
    match e {
        Error::OutOfDeviceMemory(_) => PyMemoryError::new_err(text),
        Error::Gpu(_) | Error::NoAdapter(_) => PyRuntimeError::new_err(text),
        Error::Io { .. } => PyOSError::new_err(text),
        _ => PyValueError::new_err(text),
    }
}

/// The observer a Python fit runs between iterations: it lets Ctrl-C through (Python's
/// signal handlers run when the fit's thread checks for them) and calls `callback` with the
/// iteration's figures; either one raising stops the fit, and `raised` keeps the exception
/// to re-raise once the fit has unwound.
fn observer(callback: Option<Py<PyAny>>, raised: Arc<Mutex<Option<PyErr>>>) -> Observer {
    Arc::new(move |s: &IterationStats| {
        Python::attach(|py| {
            let outcome = py.check_signals().and_then(|()| match &callback {
                Some(cb) => cb.call1(py, (stats_dict(py, s)?,)).map(|_| ()),
                None => Ok(()),
            });
            outcome.map_err(|e| {
                let text = e.to_string();
                *raised.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                Error::Interrupted(text)
            })
        })
    })
}

/// One iteration's figures as a dict, for callbacks and fit histories.
fn stats_dict<'py>(py: Python<'py>, s: &IterationStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("iteration", s.iteration)?;
    d.set_item("mse", s.mse)?;
    d.set_item("distortion", s.distortion)?;
    d.set_item("seconds", s.seconds)?;
    d.set_item("empty_cells_split", s.empty_cells_split)?;
    Ok(d)
}

/// The exception the observer kept, else lloyd's error as a Python one.
fn raised_or(raised: &Mutex<Option<PyErr>>, e: Error) -> PyErr {
    raised
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_else(|| py_err(e))
}

fn device_of(device: &str) -> PyResult<Device> {
    device.parse::<Device>().map_err(PyValueError::new_err)
}

/// A float matrix as NumPy gave it: float32 or float64, C-contiguous (the Python layer
/// converts anything else once).
#[derive(FromPyObject)]
enum Matrix<'py> {
    F32(PyReadonlyArray2<'py, f32>),
    F64(PyReadonlyArray2<'py, f64>),
}

/// The matrix's values and its number of columns, borrowed.
enum Rows<'a> {
    F32(&'a [f32], usize),
    F64(&'a [f64], usize),
}

impl Matrix<'_> {
    fn rows(&self) -> PyResult<Rows<'_>> {
        let not_contiguous = || PyValueError::new_err("the array must be C-contiguous");
        Ok(match self {
            Matrix::F32(a) => Rows::F32(a.as_slice().map_err(|_| not_contiguous())?, a.shape()[1]),
            Matrix::F64(a) => Rows::F64(a.as_slice().map_err(|_| not_contiguous())?, a.shape()[1]),
        })
    }
}

/// Per-row weights as NumPy gives them: float32 or float64, borrowed (the Python layer
/// keeps float32 weights and makes others float64, whatever the rows' dtype).
#[derive(FromPyObject)]
enum Vector<'py> {
    F32(PyReadonlyArray1<'py, f32>),
    F64(PyReadonlyArray1<'py, f64>),
}

impl Vector<'_> {
    fn weights(&self) -> PyResult<lloyd::Weights<'_>> {
        let not_contiguous = || PyValueError::new_err("the weights must be C-contiguous");
        Ok(match self {
            Vector::F32(a) => lloyd::Weights::F32(a.as_slice().map_err(|_| not_contiguous())?),
            Vector::F64(a) => lloyd::Weights::F64(a.as_slice().map_err(|_| not_contiguous())?),
        })
    }
}

fn matrix_f64(py: Python<'_>, values: Vec<f64>, dim: usize) -> PyResult<Bound<'_, PyArray2<f64>>> {
    let rows = values.len().checked_div(dim).unwrap_or(0);
    let a = Array2::from_shape_vec((rows, dim), values)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(a.into_pyarray(py))
}

/// The adapters wgpu finds: (index, name, backend, kind) each.
#[pyfunction]
fn devices() -> Vec<(usize, String, String, String)> {
    lloyd::list_adapters()
        .into_iter()
        .enumerate()
        .map(|(i, a)| (i, a.name, a.backend, a.device_type))
        .collect()
}

/// The fit as a dict of arrays and numbers, the history as a list of dicts.
fn fit_dict<'py>(py: Python<'py>, fit: KMeansFit) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let dim = fit.codebook.dim();
    d.set_item(
        "centroids",
        matrix_f64(py, fit.codebook.centroids().to_vec(), dim)?,
    )?;
    let labels: Vec<i32> = fit.labels.iter().map(|&l| l as i32).collect();
    d.set_item("labels", labels.into_pyarray(py))?;
    d.set_item("counts", fit.counts.into_pyarray(py))?;
    d.set_item("inertia", fit.inertia)?;
    d.set_item("mse", fit.mse)?;
    d.set_item("n_iter", fit.summary.iterations_run)?;
    d.set_item("converged", fit.summary.converged)?;
    d.set_item("device", fit.summary.device.clone())?;
    d.set_item("setup_seconds", fit.summary.setup_seconds)?;
    let history = pyo3::types::PyList::empty(py);
    for h in &fit.summary.history {
        history.append(stats_dict(py, h)?)?;
    }
    d.set_item("history", history)?;
    Ok(d)
}

/// K-means of the rows of `x`. `init` is "random", "k-means++", "k-means++-plain",
/// "k-means||" or "given" (then `init_centroids`, k x d). Without `final_pass` the labels
/// and counts come back empty and the inertia is the last iteration's (faiss's `train`).
#[pyfunction]
#[pyo3(signature = (x, k, init, init_centroids, n_init, max_iter, tol, seed, device, sample_weight, spherical, callback=None, final_pass=true))]
#[allow(clippy::too_many_arguments)]
fn kmeans_fit<'py>(
    py: Python<'py>,
    x: Matrix<'py>,
    k: usize,
    init: &str,
    init_centroids: Option<PyReadonlyArray2<'py, f64>>,
    n_init: usize,
    max_iter: usize,
    tol: f64,
    seed: u64,
    device: &str,
    sample_weight: Option<Vector<'py>>,
    spherical: bool,
    callback: Option<Py<PyAny>>,
    final_pass: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let raised = Arc::new(Mutex::new(None));
    let init = match init {
        "random" => Init::RandomPoints,
        "k-means++" => Init::KMeansPlusPlus,
        "k-means++-plain" => Init::KMeansPlusPlusPlain,
        "k-means||" => Init::kmeans_parallel(),
        "given" => {
            let c = init_centroids
                .ok_or_else(|| PyValueError::new_err("init 'given' needs init_centroids"))?;
            Init::Centroids(c.as_array().iter().copied().collect())
        }
        other => return Err(PyValueError::new_err(format!("unknown init '{other}'"))),
    };
    let params = KMeans::new(k)
        .init(init)
        .restarts(n_init)
        .iterations(max_iter)
        .tolerance(tol)
        .seed(seed)
        .spherical(spherical)
        .final_pass(final_pass)
        .device(device_of(device)?)
        .on_iteration(observer(callback, raised.clone()));
    let weights = sample_weight.as_ref().map(Vector::weights).transpose()?;
    let rows = x.rows()?;
    let start = std::time::Instant::now();
    let fit = py
        .detach(|| match (rows, weights) {
            (Rows::F32(v, d), None) => params.fit(v, d),
            (Rows::F64(v, d), None) => params.fit(v, d),
            (Rows::F32(v, d), Some(w)) => params.fit_weighted(v, d, w),
            (Rows::F64(v, d), Some(w)) => params.fit_weighted(v, d, w),
        })
        .map_err(|e| raised_or(&raised, e))?;
    let d = fit_dict(py, fit)?;
    // The Rust call's own time, for measuring what the Python layer adds.
    d.set_item("seconds", start.elapsed().as_secs_f64())?;
    Ok(d)
}

/// Labels (int32) and squared distances (float64), one each per row.
type LabelsAndDistances<'py> = (Bound<'py, PyArray1<i32>>, Bound<'py, PyArray1<f64>>);

/// Nearest centroid of each row of `x` (int32) and its squared distance (float64).
#[pyfunction]
fn encode<'py>(
    py: Python<'py>,
    centroids: PyReadonlyArray2<'py, f64>,
    x: Matrix<'py>,
    device: &str,
) -> PyResult<LabelsAndDistances<'py>> {
    let dim = centroids.shape()[1];
    let codebook =
        Codebook::from_f64(centroids.as_array().iter().copied().collect(), dim).map_err(py_err)?;
    let device = device_of(device)?;
    let rows = x.rows()?;
    let (labels, dists) = py
        .detach(|| -> lloyd::Result<(Vec<u32>, Vec<f64>)> {
            let mut enc = lloyd::Encoder::new(&device)?;
            match rows {
                Rows::F32(v, _) => squared_to_labels(&codebook, &mut enc, v),
                Rows::F64(v, _) => squared_to_labels(&codebook, &mut enc, v),
            }
        })
        .map_err(py_err)?;
    let labels: Vec<i32> = labels.into_iter().map(|l| l as i32).collect();
    Ok((labels.into_pyarray(py), dists.into_pyarray(py)))
}

/// Labels from `enc`, and each row's squared distance to its centroid in f64.
fn squared_to_labels<T: lloyd::Real>(
    codebook: &Codebook,
    enc: &mut lloyd::Encoder,
    data: &[T],
) -> lloyd::Result<(Vec<u32>, Vec<f64>)> {
    let (labels, _) = enc.encode(codebook, data)?;
    let dim = codebook.dim();
    let dists = labels
        .iter()
        .zip(data.chunks_exact(dim))
        .map(|(&l, x)| {
            x.iter()
                .zip(codebook.centroid(l as usize))
                .map(|(a, b)| (a.to_f64() - b).powi(2))
                .sum()
        })
        .collect();
    Ok((labels, dists))
}

/// Euclidean distances of each row of `x` to every centroid (n x k, float64).
#[pyfunction]
fn distances<'py>(
    py: Python<'py>,
    centroids: PyReadonlyArray2<'py, f64>,
    x: Matrix<'py>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let dim = centroids.shape()[1];
    let codebook =
        Codebook::from_f64(centroids.as_array().iter().copied().collect(), dim).map_err(py_err)?;
    let rows = x.rows()?;
    let d = py
        .detach(|| match rows {
            Rows::F32(v, _) => codebook.distances(v),
            Rows::F64(v, _) => codebook.distances(v),
        })
        .map_err(py_err)?;
    matrix_f64(py, d, codebook.k())
}

/// The optimal quantizer of a law (1-D: `method` "randomized", "exact" or "clvq") or of
/// given samples (randomized Lloyd); `dim` > 1: the standard normal law of ℝ^dim
/// (randomized Lloyd).
#[pyfunction]
#[pyo3(signature = (n, samples, iterations, tol, seed, device, method, dim=1, law=None, a=0.0, b=1.0, values=None, callback=None))]
#[allow(clippy::too_many_arguments)]
fn quantize<'py>(
    py: Python<'py>,
    n: usize,
    samples: usize,
    iterations: usize,
    tol: f64,
    seed: u64,
    device: &str,
    method: &str,
    dim: usize,
    law: Option<&str>,
    a: f64,
    b: f64,
    values: Option<PyReadonlyArray1<'py, f64>>,
    callback: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let device = device_of(device)?;
    let raised = Arc::new(Mutex::new(None));
    let watch = observer(callback, raised.clone());
    if dim > 1 {
        if method != "randomized" || law != Some("normal") || (a, b) != (0.0, 1.0) {
            return Err(PyValueError::new_err(
                "in dimension > 1, lloyd quantizes the standard normal law by randomized Lloyd",
            ));
        }
        let params = LloydNd::new(n, dim)
            .samples(samples)
            .iterations(iterations)
            .seed(seed)
            .device(device);
        let q = py.detach(|| params.fit_normal()).map_err(py_err)?;
        let d = PyDict::new(py);
        d.set_item("centroids", matrix_f64(py, q.centroids, dim)?)?;
        return summary_into(py, d, q.probabilities, q.distortion, q.mse, &q.summary);
    }
    let q = match (method, law, &values) {
        ("randomized", _, Some(v)) => {
            let v = v.as_slice()?;
            let params = lloyd_1d(n, samples, iterations, tol, seed, device).on_iteration(watch);
            py.detach(|| params.fit_samples(v))
        }
        (_, _, Some(_)) => {
            return Err(PyValueError::new_err(
                "samples are quantized by randomized Lloyd (method='randomized')",
            ));
        }
        (_, None, None) => return Err(PyValueError::new_err("give a law or samples")),
        ("randomized", Some(l), None) => {
            let law = law_of(l, a, b)?;
            let params = lloyd_1d(n, samples, iterations, tol, seed, device).on_iteration(watch);
            py.detach(|| params.fit_law(law))
        }
        ("exact", Some(l), None) => {
            let law = law_of(l, a, b)?;
            let params = Deterministic1d::new(n)
                .iterations(iterations)
                .tolerance(tol);
            py.detach(|| params.fit(law))
        }
        ("clvq", Some(l), None) => {
            let law = law_of(l, a, b)?;
            let params = Clvq::new(n)
                .steps(iterations)
                .seed(seed)
                .evaluation_samples(samples)
                .device(device);
            py.detach(|| params.fit_law(law))
        }
        (other, _, _) => {
            return Err(PyValueError::new_err(format!(
                "unknown method '{other}': randomized, exact or clvq"
            )));
        }
    }
    .map_err(|e| raised_or(&raised, e))?;
    let d = PyDict::new(py);
    d.set_item("centroids", q.centroids.into_pyarray(py))?;
    summary_into(py, d, q.probabilities, q.distortion, q.mse, &q.summary)
}

fn lloyd_1d(
    n: usize,
    samples: usize,
    iterations: usize,
    tol: f64,
    seed: u64,
    device: Device,
) -> Lloyd1d {
    Lloyd1d::new(n)
        .samples(samples)
        .iterations(iterations)
        .tolerance(tol)
        .seed(seed)
        .device(device)
}

/// The probabilities, errors and run summary of a quantizer, added to `d`.
fn summary_into<'py>(
    py: Python<'py>,
    d: Bound<'py, PyDict>,
    probabilities: Vec<f64>,
    distortion: f64,
    mse: f64,
    summary: &lloyd::FitSummary,
) -> PyResult<Bound<'py, PyDict>> {
    d.set_item("probabilities", probabilities.into_pyarray(py))?;
    d.set_item("distortion", distortion)?;
    d.set_item("mse", mse)?;
    d.set_item("n_iter", summary.iterations_run)?;
    d.set_item("converged", summary.converged)?;
    d.set_item("device", summary.device.clone())?;
    let history: Vec<f64> = summary.history.iter().map(|h| h.distortion).collect();
    d.set_item("history", history.into_pyarray(py))?;
    Ok(d)
}

/// The law named `law` with `params` (a, b: mean and std, low and high, rate, mu and sigma).
fn law_of(law: &str, a: f64, b: f64) -> PyResult<Law> {
    let l = match law {
        "normal" => Law::Normal { mean: a, std: b },
        "uniform" => Law::Uniform { low: a, high: b },
        "exponential" => Law::Exponential { rate: a },
        "lognormal" => Law::LogNormal { mu: a, sigma: b },
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown law '{other}': normal, uniform, exponential or lognormal"
            )));
        }
    };
    Ok(l)
}

/// The extension module.
#[pymodule]
fn _lloyd(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_fit, m)?)?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(distances, m)?)?;
    m.add_function(wrap_pyfunction!(quantize, m)?)?;
    pq::register(m)?;
    dist::register(m)?;
    Ok(())
}
