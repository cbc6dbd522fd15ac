//! Where a computation runs.

use std::fmt;

use crate::error::{Error, Result};

/// The device a fit runs on, chosen by the caller.
///
/// The default is [`Device::Auto`]: the GPU when an adapter exists, else the CPU.
///
/// ```
/// use lloyd::Device;
/// let d: Device = "cpu".parse().unwrap();
/// assert_eq!(d, Device::Cpu);
/// assert_eq!("gpu:1".parse::<Device>().unwrap(), Device::GpuAdapter(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Device {
    /// The multi-threaded CPU backend (f64 accumulation): the reference.
    Cpu,
    /// The high-performance GPU adapter wgpu finds (honours `WGPU_BACKEND` and
    /// `WGPU_ADAPTER_NAME`).
    Gpu,
    /// The adapter at this index in the list `lloyd devices` prints.
    GpuAdapter(usize),
    /// The first adapter whose name contains this text (case-insensitive).
    GpuNamed(String),
    /// The GPU when one is found, else the CPU (with a notice on standard error).
    #[default]
    Auto,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Gpu => write!(f, "gpu"),
            Device::GpuAdapter(i) => write!(f, "gpu:{i}"),
            Device::GpuNamed(s) => write!(f, "gpu:{s}"),
            Device::Auto => write!(f, "auto"),
        }
    }
}

impl std::str::FromStr for Device {
    type Err = String;

    /// Parses `cpu`, `gpu`, `auto`, `gpu:INDEX` or `gpu:NAME`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(Device::Cpu),
            "gpu" => Ok(Device::Gpu),
            "auto" => Ok(Device::Auto),
            _ => match lower.strip_prefix("gpu:") {
                Some(rest) if !rest.is_empty() => Ok(rest
                    .parse::<usize>()
                    .map(Device::GpuAdapter)
                    .unwrap_or_else(|_| Device::GpuNamed(s.trim()[4..].to_string()))),
                _ => Err(format!(
                    "unknown device '{s}': use cpu, gpu, auto, gpu:INDEX or gpu:NAME"
                )),
            },
        }
    }
}

/// A shape of the GPU d-D assignment kernel's tiles: `bp` points by `bc` centroids per
/// workgroup, `tm` by `tn` per invocation. Written `BPxBCxTMxTN`, as `lloyd-bench` and the
/// `LLOYD_GPU_TILE` variable of the binaries name it.
///
/// ```
/// let t: lloyd::GpuTile = "128x64x8x4".parse()?;
/// assert_eq!((t.bp, t.bc, t.tm, t.tn), (128, 64, 8, 4));
/// assert_eq!(t.to_string(), "128x64x8x4");
/// assert!("64x64x3x4".parse::<lloyd::GpuTile>().is_err()); // 3 does not divide 64
/// # Ok::<(), lloyd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuTile {
    /// Points per block.
    pub bp: u32,
    /// Centroids per block.
    pub bc: u32,
    /// Points per invocation.
    pub tm: u32,
    /// Centroids per invocation.
    pub tn: u32,
}

impl fmt::Display for GpuTile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}x{}", self.bp, self.bc, self.tm, self.tn)
    }
}

impl std::str::FromStr for GpuTile {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "tile `{s}`: expected BPxBCxTMxTN such as 64x64x4x4, with TM dividing BP and \
                 TN dividing BC"
            ))
        };
        let v: Vec<u32> = s
            .split('x')
            .map(|p| p.trim().parse::<u32>().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        let [bp, bc, tm, tn] = v[..] else {
            return Err(bad());
        };
        if tm == 0 || tn == 0 || bp % tm != 0 || bc % tn != 0 {
            return Err(bad());
        }
        Ok(GpuTile { bp, bc, tm, tn })
    }
}

/// How the GPU backend runs, for timing kernels and testing limits; the defaults are what a
/// fit should use.
///
/// Defaults: `tile` None (the largest shape the adapter runs), `local_sums` true,
/// `max_chunk_bytes` None (the adapter's largest storage binding).
///
/// ```
/// let o = lloyd::GpuOptions::default();
/// assert!(o.tile.is_none() && o.local_sums && o.max_chunk_bytes.is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuOptions {
    /// The d-D kernel's tile shape ([`GpuOptions::tile_shapes`] lists those worth timing).
    pub tile: Option<GpuTile>,
    /// Whether cells that fit workgroup memory are accumulated there first.
    pub local_sums: bool,
    /// The most bytes of points one buffer holds (the points are split into chunks of at
    /// most this): to test chunked runs on small data.
    pub max_chunk_bytes: Option<u64>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            tile: None,
            local_sums: true,
            max_chunk_bytes: None,
        }
    }
}

impl GpuOptions {
    /// Options from the variables the binaries read (`LLOYD_GPU_TILE=BPxBCxTMxTN`,
    /// `LLOYD_GPU_LOCAL_SUMS=0`, `LLOYD_GPU_MAX_CHUNK_BYTES=N`), looked up by `var`: the
    /// library never reads the environment itself.
    ///
    /// ```
    /// let o = lloyd::GpuOptions::from_vars(|k| (k == "LLOYD_GPU_LOCAL_SUMS").then(|| "0".into()))?;
    /// assert!(!o.local_sums);
    /// # Ok::<(), lloyd::Error>(())
    /// ```
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut o = GpuOptions::default();
        if let Some(t) = var("LLOYD_GPU_TILE").filter(|t| !t.trim().is_empty()) {
            o.tile = Some(t.parse()?);
        }
        if let Some(v) = var("LLOYD_GPU_LOCAL_SUMS") {
            o.local_sums = v.trim() != "0";
        }
        if let Some(v) = var("LLOYD_GPU_MAX_CHUNK_BYTES") {
            o.max_chunk_bytes = Some(v.trim().parse().map_err(|_| {
                Error::InvalidArgument(format!(
                    "LLOYD_GPU_MAX_CHUNK_BYTES={v}: expected a number of bytes"
                ))
            })?);
        }
        Ok(o)
    }

    /// The tile shapes worth timing on a new GPU: the portable 64x64x4x4 first, then
    /// 128x128x8x8, which fits take where the adapter has room for it, then two in between.
    pub fn tile_shapes() -> Vec<GpuTile> {
        CANDIDATES.to_vec()
    }
}

/// The shape the kernel file itself holds: 12.8 KB of workgroup memory, within the 16 KB
/// every WebGPU adapter offers, so the fallback everywhere.
pub(crate) const DEFAULT: GpuTile = GpuTile {
    bp: 64,
    bc: 64,
    tm: 4,
    tn: 4,
};

/// The shape taken where the adapter allows it (25.6 KB of workgroup memory): the classic
/// SGEMM tiling (128 x 128 blocks, 8 x 8 per invocation) reads workgroup memory once per
/// four multiply-adds instead of two. On lavapipe it ran 1.2x to 1.9x faster than DEFAULT
/// for k from 64 to 1024 (n = 2e4, d = 64); on GPUs `gpu_session.sh` times every shape.
pub(crate) const PREFERRED: GpuTile = GpuTile {
    bp: 128,
    bc: 128,
    tm: 8,
    tn: 8,
};

/// The shapes worth timing on a new GPU: 4 x 4 blocks read workgroup memory once per two
/// multiply-adds, 8 x 8 blocks once per four.
pub(crate) const CANDIDATES: [GpuTile; 4] = [
    DEFAULT,
    PREFERRED,
    GpuTile {
        bp: 128,
        bc: 64,
        tm: 8,
        tn: 4,
    },
    GpuTile {
        bp: 64,
        bc: 128,
        tm: 4,
        tn: 8,
    },
];
