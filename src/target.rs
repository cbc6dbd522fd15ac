//! Turning the caller's [`Device`] into a backend family.

use crate::device::Device;
use crate::error::{Error, Result};

/// Where a fit will run, once resolved.
pub(crate) enum Target {
    Cpu,
}

/// Resolves a device choice. `Auto` falls back to the CPU with a notice on standard error.
pub(crate) fn resolve(device: &Device) -> Result<Target> {
    match device {
        Device::Cpu => Ok(Target::Cpu),
        Device::Auto => Ok(Target::Cpu),
        Device::Gpu | Device::GpuAdapter(_) | Device::GpuNamed(_) => Err(Error::Gpu(
            "the GPU backend is not built yet: use --device cpu".to_string(),
        )),
    }
}
