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
            Ok(ctx) if ctx.info.backend == wgpu::Backend::Gl => {
                notice(&format!(
                    "the GPU adapter found is an OpenGL one ({}), whose compute is far slower \
                     than the CPU backend",
                    ctx.name()
                ));
                Ok(Target::Cpu)
            }
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
        _ => {
            let ctx = GpuContext::get(device)?;
            if ctx.info.backend == wgpu::Backend::Gl {
                static GL: Once = Once::new();
                GL.call_once(|| {
                    eprintln!(
                        "lloyd: warning: {} runs compute through OpenGL, which can be 100x \
                         slower than Vulkan, Metal or DX12 (a 500-point fit took 324 s)",
                        ctx.name()
                    )
                });
            }
            Ok(Target::Gpu(ctx))
        }
    }
}

fn notice(why: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| eprintln!("lloyd: device auto: {why}; running on the CPU backend"));
}
