//! A trained codebook: encode vectors to labels, decode labels to centroids, measure the
//! error, save and load as NumPy `.npy`.

use std::path::Path;

use crate::backend::Backend;
use crate::backend::cpu_dense::assign_dense;
use crate::data::check_points;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::gpu::backend::{GpuLloyd, Layout};
use crate::gpu::points::ResidentPoints;
use crate::npy_io;
use crate::target::{Target, resolve};

/// `k` centroids of dimension `dim`, row-major.
///
/// ```
/// use lloyd::Codebook;
/// let cb = Codebook::new(vec![0.0, 0.0, 10.0, 10.0], 2)?;
/// assert_eq!(cb.encode(&[1.0, 0.5, 9.0, 11.0])?, vec![0, 1]);
/// assert_eq!(cb.decode(&[1u32, 0])?, vec![10.0, 10.0, 0.0, 0.0]);
/// # Ok::<(), lloyd::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Codebook {
    centroids: Vec<f32>,
    dim: usize,
}

impl Codebook {
    /// A codebook from row-major centroids; they must be finite, non-empty and a whole
    /// number of rows of `dim` values.
    pub fn new(centroids: Vec<f32>, dim: usize) -> Result<Self> {
        check_points(&centroids, dim)?;
        Ok(Codebook { centroids, dim })
    }

    /// Number of centroids.
    pub fn k(&self) -> usize {
        self.centroids.len() / self.dim
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All centroids, row-major `k x dim`.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// Centroid `i`.
    pub fn centroid(&self, i: usize) -> &[f32] {
        &self.centroids[i * self.dim..(i + 1) * self.dim]
    }

    fn check_data(&self, data: &[f32]) -> Result<usize> {
        if !data.is_empty() && !data.len().is_multiple_of(self.dim) {
            return Err(Error::ShapeMismatch {
                len: data.len(),
                dim: self.dim,
            });
        }
        check_points(data, self.dim)
    }

    fn assign(&self, data: &[f32]) -> Result<(Vec<u32>, Vec<f32>)> {
        let n = self.check_data(data)?;
        let norms: Vec<f32> = self
            .centroids
            .chunks_exact(self.dim)
            .map(|c| c.iter().map(|v| v * v).sum())
            .collect();
        let mut labels = vec![0u32; n];
        let mut dist = vec![0f32; n];
        assign_dense(
            data,
            self.dim,
            &self.centroids,
            &norms,
            &mut labels,
            &mut dist,
        );
        Ok((labels, dist))
    }

    /// The index of the nearest centroid of each row of `data` (row-major, `dim` columns);
    /// ties go to the lowest index.
    pub fn encode(&self, data: &[f32]) -> Result<Vec<u32>> {
        Ok(self.assign(data)?.0)
    }

    /// [`Codebook::encode`] on a chosen device, with the mean squared distance of the rows to
    /// their centroids and the name of the device that ran it.
    ///
    /// ```
    /// use lloyd::{Codebook, Device};
    /// let cb = Codebook::new(vec![0.0, 4.0], 1)?;
    /// let (labels, mse, device) = cb.encode_on(&[1.0, 3.0, 5.0], &Device::Cpu)?;
    /// assert_eq!(labels, vec![0, 1, 1]);
    /// assert_eq!(mse, 1.0);
    /// assert_eq!(device, "cpu");
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn encode_on(&self, data: &[f32], device: &Device) -> Result<(Vec<u32>, f64, String)> {
        let n = self.check_data(data)?;
        match resolve(device)? {
            Target::Cpu => {
                let (labels, dist) = self.assign(data)?;
                let mse = dist.iter().map(|&d| f64::from(d)).sum::<f64>() / n as f64;
                Ok((labels, mse, "cpu".to_string()))
            }
            Target::Gpu(ctx) => {
                let init: Vec<f64> = self.centroids.iter().map(|&v| f64::from(v)).collect();
                let points = ResidentPoints::upload(&ctx, data, self.dim, true)?;
                let mut b = GpuLloyd::new(ctx, Layout::Dense, points, self.dim, &init, None)?;
                b.encode_only();
                b.assign_reduce()?;
                let mse = b.sse()? / n as f64;
                Ok((b.labels()?, mse, b.device_name()))
            }
        }
    }

    /// The centroids named by `labels`, row-major.
    pub fn decode<L: Copy + Into<u64>>(&self, labels: &[L]) -> Result<Vec<f32>> {
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
    pub fn mse(&self, data: &[f32]) -> Result<f64> {
        let (_, dist) = self.assign(data)?;
        Ok(dist.iter().map(|&d| f64::from(d)).sum::<f64>() / dist.len() as f64)
    }

    /// Saves the centroids as a float32 `.npy` of shape `(k, dim)`, atomically, so that
    /// `numpy.load(path)` reads them.
    pub fn save_npy(&self, path: impl AsRef<Path>) -> Result<()> {
        npy_io::write(path.as_ref(), &[self.k(), self.dim], &self.centroids)
    }

    /// Loads centroids saved by [`Codebook::save_npy`] or by NumPy (`float32`/`float64`,
    /// shape `(k, d)`, or `(k,)` for d = 1).
    pub fn load_npy(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (data, dim) = npy_io::read_matrix(path, "a codebook has shape (k, d)")?;
        Codebook::new(data, dim).map_err(|e| Error::Npy {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}
