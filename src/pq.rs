//! Product quantization: d split into m sub-spaces, one K-means codebook of 2^bits centroids
//! each, vectors stored as m small codes, and asymmetric distances for nearest-neighbour
//! search.

use std::path::Path;

use crate::backend::framed::SubSpace;
use crate::backend::pq_codes;
use crate::codebook::{Codebook, Encoder, finite_sse};
use crate::data::check_points;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::frame::{Extent, column_bounds};
use crate::kmeans::KMeans;
use crate::npy_io;
use crate::pq_decode::{self, Cached, Shape, Store};
use crate::real::{Precision, Real};

/// Codes of n vectors, row-major `n x m`: `u8` for up to 8 bits, `u16` for up to 16.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PqCodes {
    /// One byte per sub-space.
    U8(Vec<u8>),
    /// Two bytes per sub-space.
    U16(Vec<u16>),
}

impl PqCodes {
    /// Number of codes (n x m).
    pub fn len(&self) -> usize {
        match self {
            PqCodes::U8(c) => c.len(),
            PqCodes::U16(c) => c.len(),
        }
    }

    /// Whether there is no code.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Code `i` (row-major position) as an index.
    pub fn get(&self, i: usize) -> usize {
        match self {
            PqCodes::U8(c) => usize::from(c[i]),
            PqCodes::U16(c) => usize::from(c[i]),
        }
    }

    /// Saves the codes as a `.npy` of shape `(n, m)` (uint8 or uint16), atomically.
    pub fn save_npy(&self, path: impl AsRef<Path>, m: usize) -> Result<()> {
        let n = self.len() / m.max(1);
        match self {
            PqCodes::U8(c) => npy_io::write(path.as_ref(), &[n, m], c),
            PqCodes::U16(c) => npy_io::write(path.as_ref(), &[n, m], c),
        }
    }

    /// Loads codes saved by [`PqCodes::save_npy`]; returns them with m.
    pub fn load_npy(path: impl AsRef<Path>) -> Result<(Self, usize)> {
        let path = path.as_ref();
        let (shape, data, wide) = npy_io::read_codes(path)?;
        let m = match shape.as_slice() {
            [_, m] => *m,
            s => {
                return Err(Error::Npy {
                    path: path.to_path_buf(),
                    reason: format!("codes have shape (n, m), found {s:?}"),
                });
            }
        };
        let codes = if wide {
            PqCodes::U16(data)
        } else {
            PqCodes::U8(data.into_iter().map(|v| v as u8).collect())
        };
        Ok((codes, m))
    }
}

/// Codes borrowed from elsewhere (a NumPy array, say), row-major `n x m`: decoded without
/// a copy. `&PqCodes` converts into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PqCodesRef<'a> {
    /// One byte per sub-space.
    U8(&'a [u8]),
    /// Two bytes per sub-space.
    U16(&'a [u16]),
}

impl<'a> From<&'a PqCodes> for PqCodesRef<'a> {
    fn from(codes: &'a PqCodes) -> Self {
        match codes {
            PqCodes::U8(c) => PqCodesRef::U8(c),
            PqCodes::U16(c) => PqCodesRef::U16(c),
        }
    }
}

impl PqCodesRef<'_> {
    /// Number of codes (n x m).
    pub fn len(&self) -> usize {
        match self {
            PqCodesRef::U8(c) => c.len(),
            PqCodesRef::U16(c) => c.len(),
        }
    }

    /// Whether there is no code.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first code at or above `k` and its position, if any: one pass that vectorises
    /// (the greatest code) before any search.
    fn first_at_or_above(&self, k: usize) -> Option<(usize, usize)> {
        fn first<C: Copy + Ord + Into<usize>>(c: &[C], k: usize) -> Option<(usize, usize)> {
            let max = c.iter().copied().max()?;
            if max.into() < k {
                return None;
            }
            c.iter()
                .position(|&v| v.into() >= k)
                .map(|i| (i, c[i].into()))
        }
        match self {
            PqCodesRef::U8(c) => first(c, k),
            PqCodesRef::U16(c) => first(c, k),
        }
    }
}

/// Product-quantizer training parameters, builder style.
///
/// Defaults: `iterations` 25 (faiss's), `seed` 0, `device` [`Device::Auto`].
///
/// ```
/// use lloyd::{Device, ProductQuantizer};
/// let data: Vec<f32> = (0..4000).map(|i| ((i * 37) % 101) as f32 / 101.0).collect();
/// let pq = ProductQuantizer::new(4, 4).device(Device::Cpu).train(&data, 8)?;
/// let codes = pq.encode(&data)?;
/// let decoded = pq.decode(&codes)?;
/// assert_eq!(decoded.len(), data.len());
/// assert!(pq.mse(&data)? < 0.2);
/// # Ok::<(), lloyd::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ProductQuantizer {
    m: usize,
    bits: u32,
    iterations: usize,
    seed: u64,
    device: Device,
}

impl ProductQuantizer {
    /// `m` sub-spaces of `2^bits` centroids each (1 <= bits <= 16).
    pub fn new(m: usize, bits: u32) -> Self {
        ProductQuantizer {
            m,
            bits,
            iterations: 25,
            seed: 0,
            device: Device::Auto,
        }
    }

    /// Lloyd iterations per sub-space.
    pub fn iterations(mut self, iterations: usize) -> Self {
        self.iterations = iterations;
        self
    }

    /// Seed of the initialisations (sub-space j uses `seed + j`).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Device to train and encode on.
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    fn validate(&self, dim: usize) -> Result<()> {
        if self.m == 0 {
            return Err(Error::ZeroSubspaces);
        }
        if self.bits == 0 || self.bits > 16 {
            return Err(Error::InvalidBits(self.bits));
        }
        if dim == 0 {
            return Err(Error::ZeroDimension);
        }
        if !dim.is_multiple_of(self.m) {
            return Err(Error::SubspaceMismatch { dim, m: self.m });
        }
        if self.iterations == 0 {
            return Err(Error::ZeroIterations);
        }
        Ok(())
    }

    /// Fits one K-means codebook per sub-space on `data` (f32 or f64, row-major, `dim`
    /// columns).
    pub fn train<T: Real>(&self, data: &[T], dim: usize) -> Result<PqCodebook> {
        self.validate(dim)?;
        let n = check_points(data, dim)?;
        let ksub = 1usize << self.bits;
        if ksub > n {
            return Err(Error::TooManyCentroids { k: ksub, n });
        }
        let dsub = dim / self.m;
        let mut codebooks = Vec::with_capacity(self.m);
        let mut device_name = String::new();
        for j in 0..self.m {
            let sub = sub_space(data, dim, j, dsub);
            let fit = KMeans::new(ksub)
                .iterations(self.iterations)
                .tolerance(0.0)
                .seed(self.seed.wrapping_add(j as u64))
                .device(self.device.clone())
                // Only the codebook is kept: no pass for labels of the final centroids.
                .final_pass(false)
                .fit(&sub, dsub)?;
            device_name = fit.summary.device;
            codebooks.push(fit.codebook);
        }
        debug_assert_eq!(dim, self.m * dsub);
        Ok(PqCodebook::assemble(
            self.bits,
            codebooks,
            self.device.clone(),
            device_name,
        ))
    }
}

/// Every centroid of `codebooks`, one codebook after another (`m x ksub x dsub`), each
/// value through `convert`: the table decoding copies from.
fn stacked<T>(codebooks: &[Codebook], convert: impl Fn(f64) -> T) -> Vec<T> {
    let mut table = Vec::with_capacity(codebooks.iter().map(|c| c.centroids().len()).sum());
    for cb in codebooks {
        table.extend(cb.centroids().iter().map(|&v| convert(v)));
    }
    table
}

/// Columns `[j dsub, (j + 1) dsub)` of every row, contiguous.
fn sub_space<T: Real>(data: &[T], dim: usize, j: usize, dsub: usize) -> Vec<T> {
    data.chunks_exact(dim)
        .flat_map(|row| row[j * dsub..(j + 1) * dsub].iter().copied())
        .collect()
}

/// A trained product quantizer: m codebooks of `2^bits` centroids of dimension d/m.
#[derive(Debug, Clone, PartialEq)]
pub struct PqCodebook {
    bits: u32,
    dim: usize,
    codebooks: Vec<Codebook>,
    device: Device,
    trained_on: String,
    /// Every centroid as f32, `m x ksub x dsub`: what decoding copies from, built once
    /// (built per call, its 128 KiB were fresh pages that cost as much as decoding 4096 rows).
    table: Vec<f32>,
}

impl PqCodebook {
    /// The quantizer of these (checked) codebooks.
    fn assemble(bits: u32, codebooks: Vec<Codebook>, device: Device, trained_on: String) -> Self {
        let dsub = codebooks.first().map_or(0, Codebook::dim);
        let table = stacked(&codebooks, |v| v as f32);
        PqCodebook {
            bits,
            dim: codebooks.len() * dsub,
            codebooks,
            device,
            trained_on,
            table,
        }
    }

    /// Number of sub-spaces m.
    pub fn m(&self) -> usize {
        self.codebooks.len()
    }

    /// Bits per code.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Dimension d of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Centroids per sub-space, 2^bits.
    pub fn ksub(&self) -> usize {
        1 << self.bits
    }

    /// The codebook of sub-space `j`.
    pub fn codebook(&self, j: usize) -> &Codebook {
        &self.codebooks[j]
    }

    /// The device the codebooks were trained on.
    pub fn trained_on(&self) -> &str {
        &self.trained_on
    }

    /// Encodes and decodes on this device from now on.
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    fn dsub(&self) -> usize {
        self.dim / self.m()
    }

    /// The precision of the codebooks (that of the training data).
    pub fn precision(&self) -> Precision {
        self.codebooks[0].precision()
    }

    /// The codes of the rows of `data`: nearest centroid in each sub-space.
    pub fn encode<T: Real>(&self, data: &[T]) -> Result<PqCodes> {
        Ok(self.encode_measured(data)?.0)
    }

    /// The codes of the rows of `data` with their mean squared reconstruction error, in one
    /// pass.
    pub fn encode_with_mse<T: Real>(&self, data: &[T]) -> Result<(PqCodes, f64)> {
        let (codes, sub) = self.encode_measured(data)?;
        Ok((codes, sub.iter().sum()))
    }

    /// The codes and each sub-space's mean squared error: on the CPU in one pass over the
    /// rows, on a GPU one assignment pass per sub-space.
    fn encode_measured<T: Real>(&self, data: &[T]) -> Result<(PqCodes, Vec<f64>)> {
        let n = check_points(data, self.dim)?;
        // One encoder for every sub-space: they share a shape, so a GPU keeps its buffers.
        let mut encoder = Encoder::new(&self.device)?;
        if encoder.is_cpu() {
            return self.encode_cpu(data, n);
        }
        let (codes, sub_mse) = self.encode_each_sub_space(&mut encoder, data, n)?;
        let codes = if self.bits <= 8 {
            PqCodes::U8(codes.into_iter().map(|c| c as u8).collect())
        } else {
            PqCodes::U16(codes)
        };
        Ok((codes, sub_mse))
    }

    /// [`PqCodebook::encode_measured`] on a GPU: the sub-spaces' columns copied out and
    /// encoded one after the other.
    fn encode_each_sub_space<T: Real>(
        &self,
        encoder: &mut Encoder,
        data: &[T],
        n: usize,
    ) -> Result<(Vec<u16>, Vec<f64>)> {
        let (m, dsub) = (self.m(), self.dsub());
        let mut codes = vec![0u16; n * m];
        let mut sub_mse = Vec::with_capacity(m);
        for (j, cb) in self.codebooks.iter().enumerate() {
            let (labels, sse) = encoder.encode(cb, &sub_space(data, self.dim, j, dsub))?;
            for (i, l) in labels.into_iter().enumerate() {
                codes[i * m + j] = l as u16;
            }
            sub_mse.push(sse / n as f64);
        }
        Ok((codes, sub_mse))
    }

    /// [`PqCodebook::encode_measured`] on the CPU: each sub-space in the frame a
    /// [`Codebook`] encodes in (origin at its centroids' mean, unit the largest deviation of
    /// centroids and data), the data's bounds found in one pass for every sub-space, then
    /// every sub-space of a block of rows at a time; the codes certified on the caller's
    /// values.
    fn encode_cpu<T: Real>(&self, data: &[T], n: usize) -> Result<(PqCodes, Vec<f64>)> {
        let dsub = self.dsub();
        let (lo, hi) = column_bounds(data, self.dim);
        let subs: Vec<SubSpace> = self
            .codebooks
            .iter()
            .enumerate()
            .map(|(j, cb)| {
                let cols = j * dsub..(j + 1) * dsub;
                let frame = Extent::of_checked(cb.centroids(), dsub, None)
                    .including_bounds(&lo[cols.clone()], &hi[cols])
                    .frame();
                SubSpace::new(frame, cb.centroids(), dsub)
            })
            .collect();
        // Labels below 2^bits: u8 for up to 8 bits, u16 for up to 16.
        let (codes, sse) = if self.bits <= 8 {
            let (c, sse) = pq_codes::encode(data, self.dim, &subs, |l| l as u8);
            (PqCodes::U8(c), sse)
        } else {
            let (c, sse) = pq_codes::encode(data, self.dim, &subs, |l| l as u16);
            (PqCodes::U16(c), sse)
        };
        let sub_mse = sse
            .iter()
            .zip(&subs)
            .map(|(&s, sub)| Ok(finite_sse(sub.frame.squared_to_caller(s))? / n as f64))
            .collect::<Result<Vec<f64>>>()?;
        Ok((codes, sub_mse))
    }

    fn check_codes<'a>(&self, codes: impl Into<PqCodesRef<'a>>) -> Result<usize> {
        let codes = codes.into();
        let m = self.m();
        if !codes.len().is_multiple_of(m) {
            return Err(Error::ShapeMismatch {
                len: codes.len(),
                dim: m,
            });
        }
        if let Some((index, c)) = codes.first_at_or_above(self.ksub()) {
            return Err(Error::LabelOutOfRange {
                index,
                label: c as u64,
                k: self.ksub(),
            });
        }
        Ok(codes.len() / m)
    }

    /// The vectors the codes stand for, row-major `n x d` (exact f32 values for a float32
    /// quantizer).
    pub fn decode(&self, codes: &PqCodes) -> Result<Vec<f64>> {
        let n = self.check_codes(codes)?;
        let mut out = vec![0.0; n * self.dim];
        let table = stacked(&self.codebooks, |v| v);
        self.decode_rows(codes.into(), &table, &mut out, &Cached);
        Ok(out)
    }

    /// [`PqCodebook::decode`] into a caller's float32 buffer of `n x d` values, the rows
    /// spread over the threads (the centroids of a float32 quantizer are exact in it). The
    /// codes may be owned ([`PqCodes`]) or borrowed ([`PqCodesRef`]).
    ///
    /// ```
    /// use lloyd::{Codebook, PqCodebook, PqCodes, PqCodesRef};
    /// let pq = PqCodebook::from_codebooks(vec![
    ///     Codebook::new(vec![0.0, 1.0], 1)?,
    ///     Codebook::new(vec![5.0, 7.0], 1)?,
    /// ])?;
    /// let mut out = [0.0f32; 4];
    /// pq.decode_into(&PqCodes::U8(vec![1, 0, 0, 1]), &mut out)?;
    /// assert_eq!(out, [1.0, 5.0, 0.0, 7.0]);
    /// pq.decode_into(PqCodesRef::U16(&[0, 0, 1, 1]), &mut out)?;
    /// assert_eq!(out, [0.0, 5.0, 1.0, 7.0]);
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn decode_into<'a>(&self, codes: impl Into<PqCodesRef<'a>>, out: &mut [f32]) -> Result<()> {
        let codes = codes.into();
        let n = self.check_codes(codes)?;
        if out.len() != n * self.dim {
            return Err(Error::InvalidArgument(format!(
                "the output holds {} values, the {n} codes decode to {n} x {} = {}",
                out.len(),
                self.dim,
                n * self.dim
            )));
        }
        #[cfg(target_arch = "x86_64")]
        if pq_decode::streams(out, self.dsub()) {
            self.decode_rows(codes, &self.table, out, &pq_decode::Streamed);
            return Ok(());
        }
        self.decode_rows(codes, &self.table, out, &Cached);
        Ok(())
    }

    /// Writes each row's sub-vectors into `out` (checked codes, `n x d` values), copied from
    /// `table` (every centroid, `m x ksub x dsub`) by `store`.
    fn decode_rows<T: Copy + Send + Sync, S: Store<T>>(
        &self,
        codes: PqCodesRef<'_>,
        table: &[T],
        out: &mut [T],
        store: &S,
    ) {
        let shape = Shape {
            m: self.m(),
            // Every sub-space holds as many centroids as the first.
            ksub: self.codebooks[0].k(),
            dsub: self.dsub(),
        };
        match codes {
            PqCodesRef::U8(c) => pq_decode::decode_rows(shape, c, table, out, store),
            PqCodesRef::U16(c) => pq_decode::decode_rows(shape, c, table, out, store),
        }
    }

    /// Mean squared reconstruction error per sub-space (their sum is [`PqCodebook::mse`]).
    pub fn sub_mse<T: Real>(&self, data: &[T]) -> Result<Vec<f64>> {
        Ok(self.encode_measured(data)?.1)
    }

    /// Mean over the rows of `data` of ‖x − decode(encode(x))‖².
    pub fn mse<T: Real>(&self, data: &[T]) -> Result<f64> {
        Ok(self.sub_mse(data)?.iter().sum())
    }

    /// The asymmetric distance table of `query`: entry `j * ksub + c` is the squared distance
    /// from the query's sub-vector j to centroid c of sub-space j (computed in f64, stored
    /// as f32).
    pub fn distance_table<T: Real>(&self, query: &[T]) -> Result<Vec<f32>> {
        if query.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                got: query.len(),
            });
        }
        check_points(query, self.dim)?;
        let dsub = self.dsub();
        let mut table = Vec::with_capacity(self.m() * self.ksub());
        for (j, cb) in self.codebooks.iter().enumerate() {
            let q = &query[j * dsub..(j + 1) * dsub];
            for c in cb.centroids().chunks_exact(dsub) {
                let d: f64 = q
                    .iter()
                    .zip(c)
                    .map(|(a, b)| (a.to_f64() - b) * (a.to_f64() - b))
                    .sum();
                table.push(d as f32);
            }
        }
        Ok(table)
    }

    /// The `top_k` codes nearest to `query` by asymmetric distance (query exact, database
    /// vectors as their codes): `(row, squared distance)`, nearest first, ties by row.
    pub fn search<T: Real>(
        &self,
        query: &[T],
        codes: &PqCodes,
        top_k: usize,
    ) -> Result<Vec<(usize, f32)>> {
        let table = self.distance_table(query)?;
        let n = self.check_codes(codes)?;
        let (m, ksub) = (self.m(), self.ksub());
        let mut all: Vec<(usize, f32)> = (0..n)
            .map(|i| {
                (
                    i,
                    (0..m).map(|j| table[j * ksub + codes.get(i * m + j)]).sum(),
                )
            })
            .collect();
        let k = top_k.min(n);
        let order = |a: &(usize, f32), b: &(usize, f32)| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0));
        if k < n && k > 0 {
            all.select_nth_unstable_by(k - 1, order);
        }
        all.truncate(k);
        all.sort_by(order);
        Ok(all)
    }

    /// Saves the m codebooks as one `.npy` of shape `(m, 2^bits, d/m)` in their precision
    /// (float32 or float64), atomically; m, bits and d are all read back from the shape.
    pub fn save_npy(&self, path: impl AsRef<Path>) -> Result<()> {
        let flat: Vec<f64> = self
            .codebooks
            .iter()
            .flat_map(|c| c.centroids().iter().copied())
            .collect();
        let shape = [self.m(), self.ksub(), self.dsub()];
        match self.precision() {
            Precision::F32 => {
                let f: Vec<f32> = flat.iter().map(|&v| v as f32).collect();
                npy_io::write(path.as_ref(), &shape, &f)
            }
            Precision::F64 => npy_io::write(path.as_ref(), &shape, &flat),
        }
    }

    /// Loads codebooks saved by [`PqCodebook::save_npy`] (or written by NumPy in that shape).
    pub fn load_npy(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (shape, values) = npy_io::read_floats_as_stored(path)?;
        let precision = values.precision();
        let arr = npy_io::NpyArray {
            shape,
            data: values.to_f64(),
        };
        let bad = |reason: String| Error::Npy {
            path: path.to_path_buf(),
            reason,
        };
        let [m, ksub, dsub] = arr.shape[..] else {
            return Err(bad(format!(
                "a product quantizer has shape (m, 2^bits, d/m), found {:?}",
                arr.shape
            )));
        };
        if m == 0 || dsub == 0 || !ksub.is_power_of_two() || !(2..=1 << 16).contains(&ksub) {
            return Err(bad(format!(
                "shape ({m}, {ksub}, {dsub}) is not (m >= 1, 2^bits with 1 <= bits <= 16, d/m >= 1)"
            )));
        }
        let codebooks = arr
            .data
            .chunks_exact(ksub * dsub)
            .map(|c| Codebook::with_precision(c.to_vec(), dsub, precision))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| bad(e.to_string()))?;
        Self::from_codebooks(codebooks).map_err(|e| bad(e.to_string()))
    }

    /// A product quantizer from one codebook per sub-space, in order: each of 2^bits
    /// centroids (1 <= bits <= 16) and one dimension.
    ///
    /// ```
    /// use lloyd::{Codebook, PqCodebook};
    /// let books = vec![Codebook::new(vec![0.0, 1.0], 1)?, Codebook::new(vec![5.0, 6.0], 1)?];
    /// let pq = PqCodebook::from_codebooks(books)?;
    /// assert_eq!((pq.m(), pq.bits(), pq.dim()), (2, 1, 2));
    /// assert_eq!(pq.decode(&pq.encode(&[0.9f32, 5.2])?)?, vec![1.0, 5.0]);
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn from_codebooks(codebooks: Vec<Codebook>) -> Result<Self> {
        let first = codebooks.first().ok_or(Error::ZeroSubspaces)?;
        let (ksub, dsub) = (first.k(), first.dim());
        if !ksub.is_power_of_two() || !(2..=1 << 16).contains(&ksub) {
            return Err(Error::InvalidArgument(format!(
                "{ksub} centroids per sub-space: a product quantizer has 2^bits, 1 <= bits <= 16"
            )));
        }
        if let Some(j) = codebooks
            .iter()
            .position(|c| (c.k(), c.dim()) != (ksub, dsub))
        {
            return Err(Error::InvalidArgument(format!(
                "sub-space {j} has {} centroids of dimension {}, sub-space 0 {ksub} of {dsub}",
                codebooks[j].k(),
                codebooks[j].dim()
            )));
        }
        Ok(PqCodebook::assemble(
            ksub.trailing_zeros(),
            codebooks,
            Device::Auto,
            String::new(),
        ))
    }
}
