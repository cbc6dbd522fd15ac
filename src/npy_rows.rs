//! A `.npy` matrix read a range of rows at a time, straight from the file: a streamed fit
//! never holds more of it than one chunk (no memory map either, so the address space stays
//! as small as the memory).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::real::Precision;
use crate::streamed::RowSource;

/// How each stored value is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    F4,
    F8,
    I1,
    U1,
    I2,
    U2,
    I4,
    U4,
    I8,
    U8,
}

impl Kind {
    fn parse(descr: &str) -> Option<(Kind, bool)> {
        let (order, code) = descr.split_at(1.min(descr.len()));
        let big = match order {
            "<" | "|" | "=" => false,
            ">" => true,
            _ => return None,
        };
        let kind = match code {
            "f4" => Kind::F4,
            "f8" => Kind::F8,
            "i1" => Kind::I1,
            "u1" => Kind::U1,
            "i2" => Kind::I2,
            "u2" => Kind::U2,
            "i4" => Kind::I4,
            "u4" => Kind::U4,
            "i8" => Kind::I8,
            "u8" => Kind::U8,
            _ => return None,
        };
        Some((kind, big))
    }

    fn size(self) -> usize {
        match self {
            Kind::I1 | Kind::U1 => 1,
            Kind::I2 | Kind::U2 => 2,
            Kind::F4 | Kind::I4 | Kind::U4 => 4,
            Kind::F8 | Kind::I8 | Kind::U8 => 8,
        }
    }

    /// The value stored in `b` (`size()` bytes), exactly in f64 (integers up to 2⁵³).
    fn value(self, b: &[u8], big: bool) -> f64 {
        macro_rules! read {
            ($t:ty, $n:literal) => {{
                let a: [u8; $n] = b.try_into().expect("sized");
                (if big {
                    <$t>::from_be_bytes(a)
                } else {
                    <$t>::from_le_bytes(a)
                }) as f64
            }};
        }
        match self {
            Kind::F4 => read!(f32, 4),
            Kind::F8 => read!(f64, 8),
            Kind::I1 => f64::from(b[0] as i8),
            Kind::U1 => f64::from(b[0]),
            Kind::I2 => read!(i16, 2),
            Kind::U2 => read!(u16, 2),
            Kind::I4 => read!(i32, 4),
            Kind::U4 => read!(u32, 4),
            Kind::I8 => read!(i64, 8),
            Kind::U8 => read!(u64, 8),
        }
    }
}

/// The rows of a `.npy` file of shape `(n, d)` (or `(n,)`: d = 1), C order, of floats or
/// integers, read from disk a range at a time.
pub struct NpyRows {
    path: PathBuf,
    file: File,
    kind: Kind,
    big_endian: bool,
    rows: u64,
    dim: usize,
    /// Where the values start in the file.
    offset: u64,
    bytes: Vec<u8>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Npy {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl NpyRows {
    /// Opens `path` and checks its header: shape `(n, d)` or `(n,)`, C order, a float or
    /// integer dtype, and a file long enough for every value.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let mut head = [0u8; 12];
        file.read_exact(&mut head)
            .map_err(|_| bad(path, "too short for a .npy header"))?;
        if &head[..6] != b"\x93NUMPY" {
            return Err(bad(path, "not a .npy file (no magic string)"));
        }
        let (len, start) = match head[6] {
            1 => (u64::from(u16::from_le_bytes([head[8], head[9]])), 10u64),
            2 | 3 => (
                u64::from(u32::from_le_bytes([head[8], head[9], head[10], head[11]])),
                12,
            ),
            v => return Err(bad(path, format!("unknown .npy version {v}"))),
        };
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let npy = npyz::NpyFile::new(std::io::BufReader::new(&mut file))
            .map_err(|e| bad(path, format!("bad header ({e})")))?;
        if npy.order() == npyz::Order::Fortran && npy.shape().len() > 1 {
            return Err(bad(
                path,
                "Fortran (column-major) order cannot be read by rows: save it with \
                 numpy.ascontiguousarray",
            ));
        }
        let descr = npy.dtype().descr().trim_matches('\'').to_string();
        let (kind, big_endian) = Kind::parse(&descr)
            .ok_or_else(|| bad(path, format!("dtype {descr} is not a float or integer")))?;
        let (rows, dim) = match *npy.shape() {
            [n] => (n, 1usize),
            [n, d] => (
                n,
                usize::try_from(d).map_err(|_| bad(path, "too many columns"))?,
            ),
            ref s => return Err(bad(path, format!("expected shape (n, d), got {s:?}"))),
        };
        let offset = start + len;
        let need = rows
            .checked_mul(dim as u64)
            .and_then(|v| v.checked_mul(kind.size() as u64))
            .and_then(|v| v.checked_add(offset))
            .ok_or_else(|| bad(path, "the shape holds more values than can be addressed"))?;
        let have = file.metadata().map_err(io)?.len();
        if have < need {
            return Err(bad(
                path,
                format!("truncated: the shape needs {need} bytes, the file has {have}"),
            ));
        }
        Ok(NpyRows {
            path: path.to_path_buf(),
            file,
            kind,
            big_endian,
            rows,
            dim,
            offset,
            bytes: Vec::new(),
        })
    }

    /// Bytes of values in the file.
    pub fn data_bytes(&self) -> u64 {
        self.rows * self.dim as u64 * self.kind.size() as u64
    }
}

impl RowSource for NpyRows {
    fn rows(&self) -> u64 {
        self.rows
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn read(&mut self, first: u64, count: usize, out: &mut Vec<f64>) -> Result<()> {
        if first + count as u64 > self.rows {
            return Err(Error::InvalidArgument(format!(
                "rows {first}..{} of {}",
                first + count as u64,
                self.rows
            )));
        }
        let size = self.kind.size();
        let row_bytes = (self.dim * size) as u64;
        self.bytes.resize(count * self.dim * size, 0);
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        self.file
            .seek(SeekFrom::Start(self.offset + first * row_bytes))
            .map_err(io)?;
        self.file.read_exact(&mut self.bytes).map_err(io)?;
        let (kind, big) = (self.kind, self.big_endian);
        self.bytes
            .par_chunks_exact(size)
            .map(|b| kind.value(b, big))
            .collect_into_vec(out);
        Ok(())
    }

    fn precision(&self) -> Precision {
        match self.kind {
            Kind::F4 => Precision::F32,
            _ => Precision::F64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_any_range_of_rows_as_numpy_stored_them() {
        let dir = std::env::temp_dir().join(format!("lloyd-npy-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.npy");
        let data: Vec<f32> = (0..21).map(|i| i as f32 * 0.5 - 3.0).collect();
        {
            let _writes = crate::npy_io::test_writes();
            crate::npy_io::write(&path, &[7, 3], &data).unwrap();
        }
        let mut rows = NpyRows::open(&path).unwrap();
        assert_eq!((rows.rows(), rows.dim()), (7, 3));
        assert_eq!(rows.precision(), Precision::F32);
        let mut out = Vec::new();
        rows.read(2, 4, &mut out).unwrap();
        let want: Vec<f64> = data[6..18].iter().map(|&v| f64::from(v)).collect();
        assert_eq!(out, want);
        assert!(rows.read(5, 3, &mut out).is_err());
        std::fs::write(dir.join("short.npy"), &std::fs::read(&path).unwrap()[..100]).unwrap();
        assert!(NpyRows::open(dir.join("short.npy")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
