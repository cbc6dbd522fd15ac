//! Turning the caller's [`Device`] into a backend family.

use std::sync::{Arc, Once};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;

/// Where a fit will run, once resolved.
pub(crate) enum Target {
    Cpu,
    Gpu(Arc<GpuContext>),
}

/// Resolves a device choice. `Auto` takes a hardware GPU when there is one and otherwise
/// falls back to the CPU backend, with a notice on standard error (once per process): a
/// software adapter such as lavapipe is slower than the CPU backend, so `Auto` skips it.
pub(crate) fn resolve(device: &Device) -> Result<Target> {
    match device {
        Device::Cpu => Ok(Target::Cpu),
        Device::Auto => match GpuContext::get(&Device::Gpu) {
            Ok(ctx) if ctx.info.device_type != wgpu::DeviceType::Cpu => Ok(Target::Gpu(ctx)),
            Ok(ctx) => {
                notice(&format!(
                    "the only GPU adapter is a software one ({})",
                    ctx.name()
                ));
                Ok(Target::Cpu)
            }
            Err(Error::NoAdapter(why)) => {
                notice(&why);
                Ok(Target::Cpu)
            }
            Err(e) => Err(e),
        },
        _ => GpuContext::get(device).map(Target::Gpu),
    }
}

fn notice(why: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| eprintln!("lloyd: device auto: {why}; running on the CPU backend"));
}
