//! NumPy `.npy` files: read with shape checks, written atomically (temporary file in the same
//! folder, synced, then renamed), so a crash never leaves half a codebook behind.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use npyz::{NpyFile, Order, WriterBuilder};

use crate::error::{Error, Result};
use crate::real::Precision;

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
    // Floats stored in this machine's byte order are read in one read into their final
    // buffer: no per-value decoding.
    let native = match npy.dtype() {
        npyz::DType::Plain(ts) => {
            let mark = ts.to_string().as_bytes()[0];
            (mark == b'<') == cfg!(target_endian = "little") && mark != b'|'
        }
        _ => false,
    };
    let count: usize = shape.iter().map(|&s| s as usize).product();
    match kind.as_str() {
        "f4" => {
            let data = match native {
                true => read_native::<f32>(path, count)?,
                false => npy.into_vec::<f32>().map_err(bad_data)?,
            };
            let a = finish(path, &shape, order, data)?;
            Ok((a.shape, Floats::F32(a.data)))
        }
        "f8" => {
            let data = match native {
                true => read_native::<f64>(path, count)?,
                false => npy.into_vec::<f64>().map_err(bad_data)?,
            };
            let a = finish(path, &shape, order, data)?;
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

/// The `count` values of a `.npy` file whose header was checked, in the machine's byte
/// order, read by [`read_exact_at`] into the vector returned. The data start where the
/// preamble says the header ends (format 1: a 2-byte length after 8 bytes; formats 2 and 3:
/// 4 bytes).
fn read_native<T: bytemuck::Pod>(path: &Path, count: usize) -> Result<Vec<T>> {
    use std::io::Read;
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut pre = [0u8; 12];
    file.read_exact(&mut pre)
        .map_err(|e| npy_err(path, format!("bad header ({e})")))?;
    let offset = match pre[6] {
        1 => 10 + u64::from(u16::from_le_bytes([pre[8], pre[9]])),
        2 | 3 => 12 + u64::from(u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]])),
        v => return Err(npy_err(path, format!("bad header (format version {v})"))),
    };
    let bytes = count
        .checked_mul(std::mem::size_of::<T>())
        .ok_or_else(|| npy_err(path, "bad header: the data's size overflows"))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    if len < offset.saturating_add(bytes as u64) {
        return Err(npy_err(
            path,
            format!(
                "truncated or unreadable data: {} bytes of values after the header, {bytes} needed",
                len.saturating_sub(offset)
            ),
        ));
    }
    // Zeroed by the system as the reads first touch each page: never written twice.
    let mut data: Vec<T> = crate::huge_pages::zeroed(count);
    read_exact_at(&file, offset, bytemuck::cast_slice_mut(&mut data))
        .map_err(|e| npy_err(path, format!("truncated or unreadable data ({e})")))?;
    Ok(data)
}

/// Fills `out` from `file`'s bytes at `offset`, in chunks on every thread: each thread
/// faults in the fresh pages it fills, which for hundreds of MB costs more than copying
/// them from the page cache.
#[cfg(unix)]
fn read_exact_at(file: &File, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
    use rayon::prelude::*;
    use std::os::unix::fs::FileExt;
    const CHUNK: usize = 16 << 20;
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .try_for_each(|(i, chunk)| file.read_exact_at(chunk, offset + (i * CHUNK) as u64))
}

/// [`read_exact_at`] on one thread.
#[cfg(not(unix))]
fn read_exact_at(mut file: &File, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(out)
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

/// Temporary files being written, removed by [`remove_temporaries`] if the process is
/// interrupted.
static TEMPORARIES: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes the temporary files of atomic writes in progress: for a signal handler (the CLI
/// calls it on SIGINT and SIGTERM), so that an interrupted write leaves nothing behind.
pub fn remove_temporaries() {
    let list = TEMPORARIES.lock().unwrap_or_else(|p| p.into_inner());
    for t in list.iter() {
        let _ = std::fs::remove_file(t);
    }
}

/// The file a write to `path` lands in: symbolic links are followed to their final target
/// (the link stays a link), relative targets resolved against the link's folder.
fn final_target(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(&p) {
                Ok(t) => {
                    p = if t.is_absolute() {
                        t
                    } else {
                        p.parent().unwrap_or(Path::new(".")).join(t)
                    }
                }
                Err(_) => break,
            },
            _ => break,
        }
    }
    p
}

/// A short, unique sibling path for the temporary file of an atomic write (short, so that
/// a legal 254-byte name still has a legal temporary beside it).
fn temporary_beside(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_file_name(format!(".lloyd-{}-{n}.tmp", std::process::id()))
}

/// Writes a file atomically: `fill` writes into a temporary file beside the target, which
/// is synced and renamed over it, so a crash never leaves half a file behind; on failure
/// the temporary file is removed and the target is left as it was. What is not a regular
/// file is never replaced: a symbolic link is followed (its target gets the data), a FIFO or
/// a device is written through. An existing file keeps its permission bits; a read-only one
/// is refused.
pub(crate) fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let target = final_target(path);
    let existing = std::fs::metadata(&target).ok();
    if let Some(m) = &existing {
        if !m.is_file() {
            // A FIFO, a character device, a socket: write through it.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(io)?;
            let mut buf = BufWriter::new(file);
            fill(&mut buf).map_err(io)?;
            return buf.into_inner().map(|_| ()).map_err(|e| io(e.into_error()));
        }
        if m.permissions().readonly() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the file is read-only",
            )));
        }
    }
    let tmp = temporary_beside(&target);
    TEMPORARIES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(tmp.clone());
    let result = (|| -> std::io::Result<()> {
        let mut buf = BufWriter::new(File::create(&tmp)?);
        fill(&mut buf)?;
        let file = buf.into_inner().map_err(|e| e.into_error())?;
        if let Some(m) = &existing {
            file.set_permissions(m.permissions())?;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    TEMPORARIES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|t| t != &tmp);
    if let Err(source) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(source));
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

/// Writes `n` u32 labels atomically, a chunk from `next` at a time.
pub(crate) fn write_labels_from(
    path: &Path,
    n: u64,
    mut next: impl FnMut() -> Result<Option<Vec<u32>>>,
) -> Result<()> {
    // An error of `next` travels through the writer's io::Result, then comes back as itself.
    let mut failure: Option<Error> = None;
    let written = write_atomically(path, |buf| {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[n])
            .writer(buf)
            .begin_nd()?;
        let mut count = 0u64;
        loop {
            match next() {
                Ok(Some(chunk)) => {
                    count += chunk.len() as u64;
                    if count > n {
                        break;
                    }
                    w.extend(chunk)?;
                }
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e);
                    return Err(std::io::Error::other("stopped"));
                }
            }
        }
        if count != n {
            failure = Some(Error::InvalidArgument(format!(
                "{count} labels were given for {n} rows"
            )));
            return Err(std::io::Error::other("stopped"));
        }
        w.finish()
    });
    match failure {
        Some(e) => Err(e),
        None => written,
    }
}

/// Writes a u32 label vector (u4, shape (n,)).
pub(crate) fn write_labels(path: &Path, labels: &[u32]) -> Result<()> {
    write(path, &[labels.len()], labels)
}

/// Held by the unit tests that write files, and by the one that removes every write's
/// temporary file as the signal handler does, so that it never removes another test's
/// (the tests of one binary run on parallel threads).
#[cfg(test)]
pub(crate) fn test_writes() -> std::sync::MutexGuard<'static, ()> {
    static WRITES: std::sync::Mutex<()> = std::sync::Mutex::new(());
    WRITES.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values over several of the parallel reads' chunks and a partial last one, f32 and
    /// f64, come back as written.
    #[test]
    fn large_files_read_in_chunks_come_back_whole() {
        let _writes = test_writes();
        let dir = tempfile::tempdir().unwrap();
        let n = (16 << 20) / 4 * 2 + 3;
        let f32s: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 7.0).collect();
        let p = dir.path().join("f32.npy");
        write(&p, &[n], &f32s).unwrap();
        assert!(read_native::<f32>(&p, n).unwrap() == f32s);
        let f64s: Vec<f64> = (0..n / 2).map(|i| (i as f64).sqrt()).collect();
        let p = dir.path().join("f64.npy");
        write(&p, &[n / 2], &f64s).unwrap();
        assert!(read_native::<f64>(&p, n / 2).unwrap() == f64s);
    }

    /// The signal handler's cleanup removes the temporary file of a write in progress.
    #[test]
    fn temporaries_of_writes_in_progress_are_removed() {
        let _writes = test_writes();
        let dir = std::env::temp_dir().join(format!("lloyd-tmp-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("out.npy");
        let (started, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let (tx_started, rx_release) = (started.0, release.1);
        let t = target.clone();
        let writer = std::thread::spawn(move || {
            write_atomically(&t, |w| {
                use std::io::Write;
                w.write_all(b"partial")?;
                w.flush()?;
                tx_started.send(()).unwrap();
                rx_release.recv().unwrap();
                Err(std::io::Error::other("interrupted"))
            })
        });
        started.1.recv().unwrap();
        let temporaries = || -> Vec<String> {
            std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect()
        };
        assert_eq!(temporaries().len(), 1, "the write has its temporary file");
        remove_temporaries();
        assert!(temporaries().is_empty());
        release.0.send(()).unwrap();
        assert!(writer.join().unwrap().is_err());
        assert!(!target.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
