//! # lloyd
//!
//! Optimal quantizers and vector-quantization codebooks by Lloyd's fixed point (K-means), on
//! the CPU or on any GPU wgpu reaches, one algorithm and two backends.
//!
//! - Numerical probability: [`Lloyd1d`] builds the optimal N-point quantizer of a 1-D law
//!   by the randomized Lloyd method and returns a [`Quantizer1d`] (sorted centroids, cell
//!   probabilities, distortion in the ½ convention, MSE), whose
//!   [`Quantizer1d::expectation`] is the cubature E\[f(X)\] ≈ Σ pᵢ f(xᵢ).
//! - Machine learning: [`KMeans`] fits a [`Codebook`] on d-dimensional data (weights,
//!   k-means++, history), which encodes, decodes and saves to NumPy's `.npy`.
//!
//! ```
//! use lloyd::{Device, Law, Lloyd1d};
//! let q = Lloyd1d::new(10).samples(200_000).device(Device::Cpu)
//!     .fit_law(Law::standard_normal())?;
//! assert_eq!(q.centroids.len(), 10);
//! assert!(q.centroids.windows(2).all(|w| w[0] < w[1]));
//! # Ok::<(), lloyd::Error>(())
//! ```

#![warn(missing_docs)]

mod backend;
mod closed_form;
mod clvq;
mod codebook;
mod data;
mod deterministic;
mod device;
mod driver;
mod engine;
mod error;
mod exact_sum;
mod f32_columns;
mod frame;
mod gpu;
mod huge_pages;
mod init;
mod init_parallel;
mod kmeans;
mod law;
mod lloyd_run;
mod memory;
mod minibatch;
mod npy_io;
mod npy_rows;
mod pq;
mod pq_decode;
mod quantizer1d;
mod quantizer_nd;
mod real;
mod stats;
mod streamed;
mod weights;
mod wire;

pub use backend::BackendLayout;
pub use clvq::{Clvq, Step};
pub use codebook::{Codebook, Encoder};
pub use deterministic::{Deterministic1d, DeterministicMethod, Evaluation, Functional};
pub use device::{Device, GpuOptions, GpuTile};
pub use driver::{FitSummary, IterationStats, Observer, median_ms_per_iteration};
pub use engine::{AdapterSummary, list_adapters};
pub use error::{Error, Result};
pub use frame::{Extent, Frame};
pub use init::Init;
pub use kmeans::{KMeans, KMeansFit};
pub use law::{Law, LawDistribution, sample_distribution};
pub use lloyd_run::LloydRun;
pub use minibatch::{MiniBatchFit, MiniBatchKMeans};
pub use pq::{PqCodebook, PqCodes, PqCodesRef, ProductQuantizer};
pub use quantizer_nd::{LloydNd, QuantizerNd};
pub use quantizer1d::{Lloyd1d, Quantizer1d};
pub use real::{Precision, Real};
pub use stats::{LloydStats, LloydUpdate};
pub use streamed::RowSource;
pub use weights::Weights;

pub mod stepper;

/// Reading and writing NumPy `.npy` arrays (atomic writes), for the command line and callers
/// that move data to and from Python.
pub mod npy {
    use std::path::Path;

    use crate::error::Result;
    pub use crate::npy_io::Floats;
    pub use crate::npy_rows::NpyRows;

    /// Reads a float32/float64 array with its shape (row-major), in its own precision.
    pub fn read_floats(path: impl AsRef<Path>) -> Result<(Vec<usize>, Floats)> {
        crate::npy_io::read_floats_as_stored(path.as_ref())
    }

    /// Reads a float32/float64 array as f32 with its shape (row-major; float64 values are
    /// rounded).
    pub fn read_f32(path: impl AsRef<Path>) -> Result<(Vec<usize>, Vec<f32>)> {
        let (shape, floats) = crate::npy_io::read_floats_as_stored(path.as_ref())?;
        Ok((
            shape,
            match floats {
                // Stored as float32: the values read, not a round trip through f64.
                Floats::F32(v) => v,
                Floats::F64(v) => v.iter().map(|&x| x as f32).collect(),
            },
        ))
    }

    /// Reads a float32/float64 array as f64 with its shape (row-major): exact for both.
    pub fn read_f64(path: impl AsRef<Path>) -> Result<(Vec<usize>, Vec<f64>)> {
        let a = crate::npy_io::read_floats(path.as_ref())?;
        Ok((a.shape, a.data))
    }

    /// Reads a float array of shape `(n, d)` (or `(n,)`, d = 1) as (row-major values in
    /// their stored precision, d).
    pub fn read_matrix(path: impl AsRef<Path>) -> Result<(Floats, usize)> {
        let m = crate::npy_io::read_matrix(path.as_ref(), "expected shape (n, d)")?;
        Ok((m.values, m.dim))
    }

    /// Reads an integer array (labels) as u64 with its shape.
    pub fn read_labels(path: impl AsRef<Path>) -> Result<(Vec<usize>, Vec<u64>)> {
        let a = crate::npy_io::read_labels(path.as_ref())?;
        Ok((a.shape, a.data))
    }

    /// Writes a float32 array of `shape` atomically.
    pub fn write_f32(path: impl AsRef<Path>, shape: &[usize], data: &[f32]) -> Result<()> {
        crate::npy_io::write(path.as_ref(), shape, data)
    }

    /// Writes a float64 array of `shape` atomically.
    pub fn write_f64(path: impl AsRef<Path>, shape: &[usize], data: &[f64]) -> Result<()> {
        crate::npy_io::write(path.as_ref(), shape, data)
    }

    pub use crate::npy_io::remove_temporaries;

    /// Writes u32 labels (shape `(n,)`) atomically.
    pub fn write_labels(path: impl AsRef<Path>, labels: &[u32]) -> Result<()> {
        crate::npy_io::write_labels(path.as_ref(), labels)
    }

    /// Writes `n` u32 labels (shape `(n,)`) atomically, taking them a chunk at a time from
    /// `next` until it returns `None`: the labels of data read in chunks never have to be
    /// in memory at once. Fewer or more than `n` labels is an error, and the target is left
    /// as it was.
    pub fn write_labels_from(
        path: impl AsRef<Path>,
        n: u64,
        next: impl FnMut() -> Result<Option<Vec<u32>>>,
    ) -> Result<()> {
        crate::npy_io::write_labels_from(path.as_ref(), n, next)
    }
}

/// Memory the system says a new allocation can have (Linux's `MemAvailable`), or `None`
/// where it cannot tell: what a streamed fit sizes itself against by default.
pub fn available_memory() -> Option<u64> {
    memory::available_bytes()
}
