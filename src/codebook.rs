//! A trained codebook: encode vectors to labels, decode labels to centroids, measure the
//! error, save and load as NumPy `.npy`.

use std::path::Path;

use crate::backend::framed::SubSpace;
use crate::backend::pq_codes;
use crate::data::check_points;
use crate::device::{Device, GpuOptions};
use crate::engine::{self, Engine};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::npy_io;
use crate::real::{Precision, Real};

/// `k` centroids of dimension `dim`, row-major, in the precision of the data they came from
/// (f32 centroids are stored exactly, as f64).
///
/// Encoding centres data and centroids on the centroids' mean in f64 first, so codebooks far
/// from the origin encode as well as centred ones, and every label is the nearest centroid
/// (ties to the lowest index).
///
/// ```
/// use lloyd::Codebook;
/// let cb = Codebook::new(vec![0.0, 0.0, 10.0, 10.0], 2)?;
/// assert_eq!(cb.encode(&[1.0f32, 0.5, 9.0, 11.0])?, vec![0, 1]);
/// assert_eq!(cb.decode(&[1u32, 0])?, vec![10.0, 10.0, 0.0, 0.0]);
/// # Ok::<(), lloyd::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Codebook {
    centroids: Vec<f64>,
    dim: usize,
    precision: Precision,
}

impl Codebook {
    /// A float32 codebook from row-major centroids; they must be finite, non-empty and a
    /// whole number of rows of `dim` values.
    pub fn new(centroids: Vec<f32>, dim: usize) -> Result<Self> {
        check_points(&centroids, dim)?;
        Ok(Codebook {
            centroids: centroids.iter().map(|&v| f64::from(v)).collect(),
            dim,
            precision: Precision::F32,
        })
    }

    /// A float64 codebook from row-major centroids.
    pub fn from_f64(centroids: Vec<f64>, dim: usize) -> Result<Self> {
        Self::with_precision(centroids, dim, Precision::F64)
    }

    /// A codebook of the given precision (values are rounded to it).
    pub(crate) fn with_precision(
        centroids: Vec<f64>,
        dim: usize,
        precision: Precision,
    ) -> Result<Self> {
        check_points(&centroids, dim)?;
        let centroids = precision.round(centroids);
        check_points(&centroids, dim).map_err(|_| {
            Error::OutOfRange("centroids beyond the float32 range: use float64 data".into())
        })?;
        Ok(Codebook {
            centroids,
            dim,
            precision,
        })
    }

    /// Number of centroids.
    pub fn k(&self) -> usize {
        self.centroids.len() / self.dim
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The precision of the centroids (that of the data they were fitted on).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// All centroids, row-major `k x dim`.
    pub fn centroids(&self) -> &[f64] {
        &self.centroids
    }

    /// All centroids rounded to f32.
    pub fn centroids_f32(&self) -> Vec<f32> {
        self.centroids.iter().map(|&v| v as f32).collect()
    }

    /// Centroid `i`.
    pub fn centroid(&self, i: usize) -> &[f64] {
        &self.centroids[i * self.dim..(i + 1) * self.dim]
    }

    pub(crate) fn check_data<T: Real>(&self, data: &[T]) -> Result<usize> {
        if !data.is_empty() && !data.len().is_multiple_of(self.dim) {
            return Err(Error::ShapeMismatch {
                len: data.len(),
                dim: self.dim,
            });
        }
        check_points(data, self.dim)
    }

    /// Labels and the sum of squared distances on the CPU.
    fn assign<T: Real>(&self, data: &[T]) -> Result<(Vec<u32>, f64)> {
        Encoder::cpu().encode(self, data)
    }

    /// The index of the nearest centroid of each row of `data` (row-major, `dim` columns);
    /// ties go to the lowest index.
    pub fn encode<T: Real>(&self, data: &[T]) -> Result<Vec<u32>> {
        Ok(self.assign(data)?.0)
    }

    /// [`Codebook::encode`] on a chosen device, with the mean squared distance of the rows to
    /// their centroids and the name of the device that ran it.
    ///
    /// ```
    /// use lloyd::{Codebook, Device};
    /// let cb = Codebook::new(vec![0.0, 4.0], 1)?;
    /// let (labels, mse, device) = cb.encode_on(&[1.0f32, 3.0, 5.0], &Device::Cpu)?;
    /// assert_eq!(labels, vec![0, 1, 1]);
    /// assert_eq!(mse, 1.0);
    /// assert_eq!(device, "cpu");
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn encode_on<T: Real>(
        &self,
        data: &[T],
        device: &Device,
    ) -> Result<(Vec<u32>, f64, String)> {
        let mut encoder = Encoder::new(device)?;
        let (labels, sse) = encoder.encode(self, data)?;
        let mse = sse / labels.len() as f64;
        Ok((labels, mse, encoder.device_name()))
    }

    /// The Euclidean distance of each row of `data` to every centroid, row-major `n x k`
    /// (scikit-learn's `transform`), computed in f64 from the differences (no cancellation,
    /// exact up to the rounding of each term).
    ///
    /// ```
    /// let cb = lloyd::Codebook::new(vec![0.0, 0.0, 3.0, 4.0], 2)?;
    /// assert_eq!(cb.distances(&[0.0f32, 0.0])?, vec![0.0, 5.0]);
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn distances<T: Real>(&self, data: &[T]) -> Result<Vec<f64>> {
        use rayon::prelude::*;
        self.check_data(data)?;
        let (k, dim) = (self.k(), self.dim);
        let mut out = vec![0.0f64; data.len() / dim * k];
        out.par_chunks_mut(k)
            .zip(data.par_chunks(dim))
            .for_each(|(o, x)| {
                for (j, d) in o.iter_mut().enumerate() {
                    let c = self.centroid(j);
                    // Scaled by the largest difference, so squares neither overflow nor
                    // underflow whatever the data's magnitude.
                    let m = x
                        .iter()
                        .zip(c)
                        .fold(0.0f64, |m, (a, b)| m.max((a.to_f64() - b).abs()));
                    *d = if m == 0.0 || !m.is_finite() {
                        m
                    } else {
                        m * x
                            .iter()
                            .zip(c)
                            .map(|(a, b)| ((a.to_f64() - b) / m).powi(2))
                            .sum::<f64>()
                            .sqrt()
                    };
                }
            });
        Ok(out)
    }

    /// The centroids named by `labels`, row-major.
    pub fn decode<L: Copy + Into<u64>>(&self, labels: &[L]) -> Result<Vec<f64>> {
        let k = self.k();
        let mut out = Vec::with_capacity(labels.len() * self.dim);
        for (index, &l) in labels.iter().enumerate() {
            let label: u64 = l.into();
            if label >= k as u64 {
                return Err(Error::LabelOutOfRange { index, label, k });
            }
            out.extend_from_slice(self.centroid(label as usize));
        }
        Ok(out)
    }

    /// Mean over the rows of `data` of the squared distance to the nearest centroid
    /// (`‖x − x̂‖²`, summed over coordinates, averaged over points).
    pub fn mse<T: Real>(&self, data: &[T]) -> Result<f64> {
        let (labels, sse) = self.assign(data)?;
        Ok(sse / labels.len() as f64)
    }

    /// Saves the centroids as a `.npy` of shape `(k, dim)` in the codebook's precision
    /// (float32 or float64), atomically, so that `numpy.load(path)` reads them.
    pub fn save_npy(&self, path: impl AsRef<Path>) -> Result<()> {
        let shape = [self.k(), self.dim];
        match self.precision {
            Precision::F32 => npy_io::write(path.as_ref(), &shape, &self.centroids_f32()),
            Precision::F64 => npy_io::write(path.as_ref(), &shape, &self.centroids),
        }
    }

    /// Loads centroids saved by [`Codebook::save_npy`] or by NumPy (`float32`/`float64`,
    /// shape `(k, d)`, or `(k,)` for d = 1); the precision is the file's.
    pub fn load_npy(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let m = npy_io::read_matrix(path, "a codebook has shape (k, d)")?;
        Codebook::with_precision(m.data(), m.dim, m.values.precision()).map_err(|e| Error::Npy {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}

/// A sum of squared distances, refused when it is beyond f64.
pub(crate) fn finite_sse(sse: f64) -> Result<f64> {
    if sse.is_finite() {
        Ok(sse)
    } else {
        Err(Error::OutOfRange(
            "the squared distances of the data to the codebook are beyond f64".into(),
        ))
    }
}

/// Encodes data against codebooks on one device, keeping the device's buffers and pipelines
/// between calls of the same shape: encode many chunks, or the sub-spaces of a product
/// quantizer, through one encoder.
///
/// ```
/// use lloyd::{Codebook, Device, Encoder};
/// let cb = Codebook::new(vec![0.0, 4.0], 1)?;
/// let mut enc = Encoder::new(&Device::Cpu)?;
/// for chunk in [[1.0f32, 3.0], [5.0, -1.0]] {
///     let (labels, sse) = enc.encode(&cb, &chunk)?;
///     assert_eq!(sse, 2.0);
///     assert_eq!(labels.len(), 2);
/// }
/// # Ok::<(), lloyd::Error>(())
/// ```
pub struct Encoder {
    pub(crate) inner: engine::Encoder,
}

impl Encoder {
    /// An encoder on `device`.
    pub fn new(device: &Device) -> Result<Self> {
        Self::with_options(device, &GpuOptions::default())
    }

    /// An encoder on `device` with the GPU run as `options` say.
    pub fn with_options(device: &Device, options: &GpuOptions) -> Result<Self> {
        Ok(Encoder {
            inner: Engine::open(device, options)?.encoder(),
        })
    }

    pub(crate) fn cpu() -> Self {
        Encoder {
            inner: Engine::cpu().encoder(),
        }
    }

    /// The name of the device that encodes.
    pub fn device_name(&self) -> String {
        self.inner.device_name()
    }

    /// Whether the CPU backend encodes.
    pub(crate) fn is_cpu(&self) -> bool {
        self.inner.is_cpu()
    }

    /// The nearest centroid of `codebook` for each row of `data` (ties to the lowest index)
    /// and the sum of squared distances, in the data's units. Data and centroids are centred
    /// on the centroids' mean and scaled in f64 first, so codebooks far from the origin encode
    /// as well as centred ones.
    pub fn encode<T: Real>(&mut self, codebook: &Codebook, data: &[T]) -> Result<(Vec<u32>, f64)> {
        codebook.check_data(data)?;
        let dim = codebook.dim();
        let frame = Frame::of_codebook(codebook.centroids(), dim, data);
        if self.inner.is_cpu() {
            // Labels certified on the caller's values: see backend::framed.
            let sub = SubSpace::new(frame, codebook.centroids(), dim);
            let (labels, sse) = pq_codes::encode(data, dim, std::slice::from_ref(&sub), |l| l);
            return Ok((labels, finite_sse(sub.frame.squared_to_caller(sse[0]))?));
        }
        let points = frame.to_device_f32(data);
        let centroids = frame.to_device_f64(codebook.centroids());
        let (labels, sse) = self.inner.gpu_encode(&points, &centroids, dim)?;
        Ok((labels, finite_sse(frame.squared_to_caller(sse))?))
    }
}
