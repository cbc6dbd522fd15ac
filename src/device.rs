//! Where a computation runs.

use std::fmt;

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
