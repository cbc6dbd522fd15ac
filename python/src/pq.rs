//! Product quantization for `lloyd.ProductQuantizer`: training, and a quantizer built once
//! from the trained centroids that encodes and decodes batch after batch (rebuilt for every
//! call, the quantizer's tables cost as much as decoding a few thousand rows).

use numpy::ndarray::Array2;
use numpy::prelude::*;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use lloyd::{Codebook, PqCodebook, PqCodes, PqCodesRef, ProductQuantizer};

use crate::{Matrix, Rows, device_of, matrix_f64, py_err};

/// Product quantizer training: every sub-space's centroids stacked, (m · 2^bits) x (d / m).
#[pyfunction]
fn pq_train<'py>(
    py: Python<'py>,
    x: Matrix<'py>,
    m: usize,
    bits: u32,
    iterations: usize,
    seed: u64,
    device: &str,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let params = ProductQuantizer::new(m, bits)
        .iterations(iterations)
        .seed(seed)
        .device(device_of(device)?);
    let rows = x.rows()?;
    let pq = py
        .detach(|| match rows {
            Rows::F32(v, d) => params.train(v, d),
            Rows::F64(v, d) => params.train(v, d),
        })
        .map_err(py_err)?;
    let dsub = pq.dim() / pq.m();
    let mut all = Vec::with_capacity(pq.m() * pq.ksub() * dsub);
    for j in 0..pq.m() {
        all.extend_from_slice(pq.codebook(j).centroids());
    }
    matrix_f64(py, all, dsub)
}

/// PQ codes as NumPy gave them: uint8 or uint16.
#[derive(FromPyObject)]
enum Codes<'py> {
    U8(PyReadonlyArray2<'py, u8>),
    U16(PyReadonlyArray2<'py, u16>),
}

/// A trained product quantizer, built once from its stacked centroids.
#[pyclass(module = "lloyd._lloyd", name = "PqCodebook", frozen)]
struct PyPqCodebook(PqCodebook);

#[pymethods]
impl PyPqCodebook {
    /// The quantizer of `m` sub-spaces whose centroids `centroids` stacks ((m · 2^bits) x
    /// (d / m)), encoding on `device`.
    #[new]
    fn new(centroids: PyReadonlyArray2<'_, f64>, m: usize, device: &str) -> PyResult<Self> {
        let device = device_of(device)?;
        let dsub = centroids.shape()[1];
        // One copy of a C-contiguous table (what ProductQuantizer passes), element by
        // element only for other layouts.
        let all: std::borrow::Cow<'_, [f64]> = match centroids.as_slice() {
            Ok(s) => s.into(),
            Err(_) => centroids
                .as_array()
                .iter()
                .copied()
                .collect::<Vec<_>>()
                .into(),
        };
        let ksub = centroids.shape()[0] / m.max(1);
        let books = all
            .chunks(ksub * dsub)
            .map(|c| Codebook::from_f64(c.to_vec(), dsub))
            .collect::<lloyd::Result<Vec<_>>>()
            .map_err(py_err)?;
        let pq = PqCodebook::from_codebooks(books).map_err(py_err)?;
        Ok(PyPqCodebook(pq.with_device(device)))
    }

    /// Codes of each row of `x`: (n, m), uint8 for 8 bits or fewer, else uint16.
    fn encode<'py>(&self, py: Python<'py>, x: Matrix<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pq = &self.0;
        let m = pq.m();
        let rows = x.rows()?;
        let codes = py
            .detach(|| match rows {
                Rows::F32(v, _) => pq.encode(v),
                Rows::F64(v, _) => pq.encode(v),
            })
            .map_err(py_err)?;
        let n = codes.len() / m.max(1);
        Ok(match codes {
            PqCodes::U8(c) => Array2::from_shape_vec((n, m), c)
                .map_err(|e| PyValueError::new_err(e.to_string()))?
                .into_pyarray(py)
                .into_any(),
            PqCodes::U16(c) => Array2::from_shape_vec((n, m), c)
                .map_err(|e| PyValueError::new_err(e.to_string()))?
                .into_pyarray(py)
                .into_any(),
        })
    }

    /// The vectors that codes (uint8 or uint16) stand for: (n, d) float32, decoded on every
    /// thread straight into the array NumPy receives, or into `out` where given (refused
    /// unless (n, d), C-contiguous, writeable and apart from the codes).
    #[pyo3(signature = (codes, out=None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        codes: Codes<'py>,
        out: Option<Bound<'py, PyArray2<f32>>>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let pq = &self.0;
        // C-contiguous codes (what compute_codes returns) are read in place; others are
        // copied into row-major order first.
        let owned = match &codes {
            Codes::U8(c) if c.as_slice().is_err() => {
                Some(PqCodes::U8(c.as_array().iter().copied().collect()))
            }
            Codes::U16(c) if c.as_slice().is_err() => {
                Some(PqCodes::U16(c.as_array().iter().copied().collect()))
            }
            _ => None,
        };
        let codes = match (&owned, &codes) {
            (Some(o), _) => PqCodesRef::from(o),
            (None, Codes::U8(c)) => PqCodesRef::U8(c.as_slice().expect("contiguous")),
            (None, Codes::U16(c)) => PqCodesRef::U16(c.as_slice().expect("contiguous")),
        };
        let n = codes.len() / pq.m().max(1);
        if let Some(out) = out {
            if out.shape() != [n, pq.dim()] {
                return Err(PyValueError::new_err(format!(
                    "out has shape {:?}, the codes decode to ({n}, {})",
                    out.shape(),
                    pq.dim()
                )));
            }
            // as_slice_mut takes a Fortran-ordered array too, whose rows it would mix up.
            if !out.is_c_contiguous() {
                return Err(PyValueError::new_err("out must be C-contiguous"));
            }
            {
                // A borrow NumPy's checker grants only where nothing else (the codes) reads
                // the same memory.
                let mut writer = out.try_readwrite().map_err(|e| {
                    PyValueError::new_err(format!("out must be writeable and its own memory: {e}"))
                })?;
                let slice = writer
                    .as_slice_mut()
                    .map_err(|_| PyValueError::new_err("out must be C-contiguous"))?;
                py.detach(|| pq.decode_into(codes, slice)).map_err(py_err)?;
            }
            return Ok(out);
        }
        // NumPy's own allocation (np.empty), as faiss's decode writes into: freed arrays'
        // memory is reused rather than faulted in afresh.
        // SAFETY: every element is written by decode_into before NumPy sees the array, which
        // stays private to this call until returned.
        let out = unsafe { PyArray2::<f32>::new(py, [n, pq.dim()], false) };
        let slice =
            unsafe { out.as_slice_mut() }.map_err(|e| PyValueError::new_err(e.to_string()))?;
        py.detach(|| pq.decode_into(codes, slice)).map_err(py_err)?;
        Ok(out)
    }
}

/// Adds the product quantization entry points to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pq_train, m)?)?;
    m.add_class::<PyPqCodebook>()?;
    Ok(())
}
