//! NumPy `.npy` files: read with shape checks, written atomically (temporary file in the same
//! folder, synced, then renamed), so a crash never leaves half a codebook behind.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use npyz::{NpyFile, Order, WriterBuilder};

use crate::error::{Error, Result};
use crate::frame::Precision;

fn npy_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Npy {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An array read from a `.npy` file, converted to row-major order.
pub(crate) struct NpyArray<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

fn open(path: &Path) -> Result<NpyFile<BufReader<File>>> {
    let file = File::open(path).map_err(io_err(path))?;
    let npy = NpyFile::new(BufReader::new(file))
        .map_err(|e| npy_err(path, format!("bad header ({e})")))?;
    // A shape whose product overflows is a bad header, not a small array.
    let mut count = 1usize;
    for &s in npy.shape() {
        count = usize::try_from(s)
            .ok()
            .and_then(|s| count.checked_mul(s))
            .ok_or_else(|| {
                npy_err(
                    path,
                    format!(
                        "bad header: shape {:?} holds more values than can be addressed",
                        npy.shape()
                    ),
                )
            })?;
    }
    Ok(npy)
}

/// The element kind and width of a plain dtype without its byte-order mark: `f4`, `u1`, ...
fn plain_kind(path: &Path, npy: &NpyFile<BufReader<File>>) -> Result<String> {
    match npy.dtype() {
        npyz::DType::Plain(ts) => Ok(ts.to_string()[1..].to_string()),
        other => Err(npy_err(
            path,
            format!(
                "structured or array dtype {} is not supported",
                other.descr()
            ),
        )),
    }
}

fn finish<T: Copy>(path: &Path, shape: &[u64], order: Order, data: Vec<T>) -> Result<NpyArray<T>> {
    // `open` checked that the shape's product fits.
    let shape: Vec<usize> = shape.iter().map(|&s| s as usize).collect();
    let expected: usize = shape.iter().product();
    if data.len() != expected {
        return Err(npy_err(
            path,
            format!(
                "shape {shape:?} needs {expected} values, found {}",
                data.len()
            ),
        ));
    }
    let data = if order == Order::Fortran && shape.len() > 1 {
        to_row_major(&data, &shape)
    } else {
        data
    };
    Ok(NpyArray { shape, data })
}

/// Reorders a column-major array of any rank into row-major order.
fn to_row_major<T: Copy>(data: &[T], shape: &[usize]) -> Vec<T> {
    let rank = shape.len();
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; rank];
    for _ in 0..data.len() {
        // Column-major offset of the row-major multi-index `idx`.
        let mut off = 0;
        let mut stride = 1;
        for a in 0..rank {
            off += idx[a] * stride;
            stride *= shape[a];
        }
        out.push(data[off]);
        for a in (0..rank).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    out
}

/// Float values in the precision they were stored in.
#[derive(Debug, Clone, PartialEq)]
pub enum Floats {
    /// float32 values.
    F32(Vec<f32>),
    /// float64 values.
    F64(Vec<f64>),
}

impl Floats {
    /// The precision of the values.
    pub fn precision(&self) -> Precision {
        match self {
            Floats::F32(_) => Precision::F32,
            Floats::F64(_) => Precision::F64,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Floats::F32(v) => v.len(),
            Floats::F64(v) => v.len(),
        }
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values in f64 (exact).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Floats::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Floats::F64(v) => v.clone(),
        }
    }
}

/// Reads a floating-point array (`f4` or `f8`, either byte order) in its own precision.
pub(crate) fn read_floats(path: &Path) -> Result<NpyArray<f64>> {
    let (shape, floats) = read_floats_as_stored(path)?;
    Ok(NpyArray {
        shape,
        data: floats.to_f64(),
    })
}

/// Reads a floating-point array (`f4` or `f8`, either byte order), keeping its precision.
pub(crate) fn read_floats_as_stored(path: &Path) -> Result<(Vec<usize>, Floats)> {
    let npy = open(path)?;
    let kind = plain_kind(path, &npy)?;
    let shape = npy.shape().to_vec();
    let order = npy.order();
    let bad_data = |e: std::io::Error| npy_err(path, format!("truncated or unreadable data ({e})"));
    match kind.as_str() {
        "f4" => {
            let a = finish(
                path,
                &shape,
                order,
                npy.into_vec::<f32>().map_err(bad_data)?,
            )?;
            Ok((a.shape, Floats::F32(a.data)))
        }
        "f8" => {
            let a = finish(
                path,
                &shape,
                order,
                npy.into_vec::<f64>().map_err(bad_data)?,
            )?;
            Ok((a.shape, Floats::F64(a.data)))
        }
        // Integer data (images, counts) is read as float64, exactly up to 2^53, as NumPy
        // and scikit-learn convert it.
        "u1" | "u2" | "u4" | "u8" | "i1" | "i2" | "i4" | "i8" => {
            let v: Vec<f64> = match kind.as_str() {
                "u1" => as_f64(npy.into_vec::<u8>().map_err(bad_data)?),
                "u2" => as_f64(npy.into_vec::<u16>().map_err(bad_data)?),
                "u4" => as_f64(npy.into_vec::<u32>().map_err(bad_data)?),
                "i1" => as_f64(npy.into_vec::<i8>().map_err(bad_data)?),
                "i2" => as_f64(npy.into_vec::<i16>().map_err(bad_data)?),
                "i4" => as_f64(npy.into_vec::<i32>().map_err(bad_data)?),
                "u8" => npy
                    .into_vec::<u64>()
                    .map_err(bad_data)?
                    .into_iter()
                    .map(|x| x as f64)
                    .collect(),
                _ => npy
                    .into_vec::<i64>()
                    .map_err(bad_data)?
                    .into_iter()
                    .map(|x| x as f64)
                    .collect(),
            };
            let a = finish(path, &shape, order, v)?;
            Ok((a.shape, Floats::F64(a.data)))
        }
        other => Err(npy_err(
            path,
            format!(
                "dtype '{other}' is not a numeric array: expected float32, float64 or integers"
            ),
        )),
    }
}

fn as_f64<T: Into<f64>>(v: Vec<T>) -> Vec<f64> {
    v.into_iter().map(Into::into).collect()
}

/// A float array of shape `(rows, d)` in its stored precision.
pub(crate) struct Matrix {
    pub values: Floats,
    pub dim: usize,
}

impl Matrix {
    /// The values in f64 (exact).
    pub(crate) fn data(&self) -> Vec<f64> {
        self.values.to_f64()
    }
}

/// Reads a float array of shape `(rows, d)`, or `(rows,)` for d = 1; `expected` names the
/// shape in the error for any other rank.
pub(crate) fn read_matrix(path: &Path, expected: &str) -> Result<Matrix> {
    let (shape, values) = read_floats_as_stored(path)?;
    let dim = match shape.as_slice() {
        [_] => 1,
        [_, d] => *d,
        s => return Err(npy_err(path, format!("{expected}, found {s:?}"))),
    };
    Ok(Matrix { values, dim })
}

/// Reads an integer array (any unsigned or signed width) as u64 labels; negatives are refused.
pub(crate) fn read_labels(path: &Path) -> Result<NpyArray<u64>> {
    let npy = open(path)?;
    let kind = plain_kind(path, &npy)?;
    let shape = npy.shape().to_vec();
    let order = npy.order();
    let bad_data = |e: std::io::Error| npy_err(path, format!("truncated or unreadable data ({e})"));
    fn unsigned<T: Into<u64>>(v: Vec<T>) -> Vec<u64> {
        v.into_iter().map(Into::into).collect()
    }
    let signed = |v: Vec<i64>| -> Result<Vec<u64>> {
        v.into_iter()
            .map(|x| u64::try_from(x).map_err(|_| npy_err(path, format!("negative label {x}"))))
            .collect()
    };
    let data = match kind.as_str() {
        "u1" => unsigned(npy.into_vec::<u8>().map_err(bad_data)?),
        "u2" => unsigned(npy.into_vec::<u16>().map_err(bad_data)?),
        "u4" => unsigned(npy.into_vec::<u32>().map_err(bad_data)?),
        "u8" => npy.into_vec::<u64>().map_err(bad_data)?,
        "i4" => signed(
            npy.into_vec::<i32>()
                .map_err(bad_data)?
                .into_iter()
                .map(i64::from)
                .collect(),
        )?,
        "i8" => signed(npy.into_vec::<i64>().map_err(bad_data)?)?,
        other => {
            return Err(npy_err(
                path,
                format!("dtype '{other}' is not an integer array: expected labels"),
            ));
        }
    };
    finish(path, &shape, order, data)
}

/// Reads product-quantizer codes (uint8 or uint16) as u16, with whether they were uint16.
pub(crate) fn read_codes(path: &Path) -> Result<(Vec<usize>, Vec<u16>, bool)> {
    let npy = open(path)?;
    let kind = plain_kind(path, &npy)?;
    let shape = npy.shape().to_vec();
    let order = npy.order();
    let bad_data = |e: std::io::Error| npy_err(path, format!("truncated or unreadable data ({e})"));
    let (data, wide) = match kind.as_str() {
        "u1" => (
            npy.into_vec::<u8>()
                .map_err(bad_data)?
                .into_iter()
                .map(u16::from)
                .collect(),
            false,
        ),
        "u2" => (npy.into_vec::<u16>().map_err(bad_data)?, true),
        other => {
            return Err(npy_err(
                path,
                format!("dtype '{other}' is not uint8 or uint16 codes"),
            ));
        }
    };
    let arr = finish(path, &shape, order, data)?;
    Ok((arr.shape, arr.data, wide))
}

/// A sibling path for the temporary file of an atomic write.
fn temporary_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out.npy".into());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes a file atomically: `fill` writes into a temporary file beside `path`, which is
/// synced and renamed over `path`; on failure the temporary file is removed and `path` is
/// left as it was.
pub(crate) fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temporary_beside(path);
    let result = (|| -> std::io::Result<()> {
        let mut buf = BufWriter::new(File::create(&tmp)?);
        fill(&mut buf)?;
        let file = buf.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(source) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(())
}

/// Writes `data` with `shape` (row-major) atomically.
pub(crate) fn write<T>(path: &Path, shape: &[usize], data: &[T]) -> Result<()>
where
    T: npyz::AutoSerialize + Copy,
{
    write_atomically(path, |buf| {
        let shape64: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape64)
            .writer(buf)
            .begin_nd()?;
        w.extend(data.iter().copied())?;
        w.finish()
    })
}

/// Writes a u32 label vector (u4, shape (n,)).
pub(crate) fn write_labels(path: &Path, labels: &[u32]) -> Result<()> {
    write(path, &[labels.len()], labels)
}
