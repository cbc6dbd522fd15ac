//! Device buffers and their plumbing: the parameter block, chunk sizes, bind groups,
//! error scopes and read-backs.

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use super::context::GpuContext;
use crate::error::{Error, Result};

/// Mirrors `Params` in `shaders/common.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Default, Pod, Zeroable)]
pub(crate) struct Params {
    pub n: u32,
    pub k: u32,
    pub dim: u32,
    pub stride: u32,
    pub scale_x: f32,
    pub scale_e: f32,
    pub scale_w: f32,
    pub use_local: u32,
    pub sorted: u32,
    pub weighted: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub base_lo: u32,
    pub base_hi: u32,
    pub law: u32,
    pub p0: f32,
    pub p1: f32,
    pub tolerance: f32,
    pub encode_only: u32,
    pub draw_lo: u32,
    pub draw_hi: u32,
    pub pad: [u32; 2],
}

/// Largest number of points of dimension `dim` one chunk may hold.
pub(crate) fn chunk_capacity(ctx: &GpuContext, dim: usize) -> usize {
    let mut bytes = ctx
        .limits
        .max_storage_buffer_binding_size
        .min(ctx.limits.max_buffer_size);
    if let Some(cap) = std::env::var("LLOYD_GPU_MAX_CHUNK_BYTES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        bytes = bytes.min(cap.max(4 * dim as u64));
    }
    let align = u64::from(ctx.limits.min_storage_buffer_offset_alignment).max(4);
    let bytes = bytes / align * align;
    ((bytes / (4 * dim as u64)) as usize).min(u32::MAX as usize)
}

pub(crate) fn storage(
    ctx: &GpuContext,
    label: &str,
    contents: &[u8],
    extra: wgpu::BufferUsages,
) -> wgpu::Buffer {
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST
                | extra,
        })
}

pub(crate) fn empty_storage(ctx: &GpuContext, label: &str, bytes: u64) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// A uniform buffer holding `params`, rewritable (CLVQ changes its step sizes).
pub(crate) fn uniform_buffer(ctx: &GpuContext, label: &str, params: &Params) -> wgpu::Buffer {
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(params),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        })
}

/// A bind group for group 0 of `pipeline` from (binding, whole buffer) pairs.
pub(crate) fn bind_buffers(
    ctx: &GpuContext,
    label: &str,
    pipeline: &wgpu::ComputePipeline,
    buffers: &[(u32, &wgpu::Buffer)],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .map(|(binding, buffer)| wgpu::BindGroupEntry {
            binding: *binding,
            resource: buffer.as_entire_binding(),
        })
        .collect();
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// Runs `f` inside error scopes so that running out of memory or a validation error comes
/// back as an [`Error`] instead of wgpu's default panic.
pub(crate) fn guarded<T>(ctx: &GpuContext, what: &str, f: impl FnOnce() -> T) -> Result<T> {
    let oom = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let out = f();
    let v = pollster::block_on(validation.pop());
    let o = pollster::block_on(oom.pop());
    if let Some(e) = o {
        return Err(Error::Gpu(format!(
            "{what}: out of device memory ({e}); use fewer points or --device cpu"
        )));
    }
    if let Some(e) = v {
        return Err(Error::Gpu(format!("{what}: {e}")));
    }
    Ok(out)
}

/// Copies `size` bytes of `src` from `offset` back to the host.
pub(crate) fn read_back(
    ctx: &GpuContext,
    src: &wgpu::Buffer,
    offset: u64,
    size: u64,
) -> Result<Vec<u8>> {
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("lloyd read-back"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(src, offset, &staging, 0, size);
    ctx.queue.submit(Some(enc.finish()));
    map_and_read(ctx, &staging, size)
}

thread_local! {
    /// Host round-trips made by this thread, for the tests that hold a fit to a fixed number.
    static READ_BACKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many buffers this thread has mapped back from a device so far.
pub(crate) fn read_backs() -> usize {
    READ_BACKS.with(|c| c.get())
}

/// Maps `size` bytes of a staging buffer and copies them out: one host round-trip.
pub(crate) fn map_and_read(ctx: &GpuContext, staging: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
    READ_BACKS.with(|c| c.set(c.get() + 1));
    let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
    staging.map_async(wgpu::MapMode::Read, 0..size, move |r| {
        let _ = tx.send(r);
    });
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
    pollster::block_on(rx.receive())
        .ok_or_else(|| Error::Gpu("the read-back was dropped".into()))?
        .map_err(|e| Error::Gpu(format!("mapping a read-back buffer: {e}")))?;
    let bytes = staging
        .get_mapped_range(0..size)
        .map_err(|e| Error::Gpu(format!("reading a mapped buffer: {e}")))?
        .to_vec();
    staging.unmap();
    // What the device did before this read-back is only trustworthy if it reported nothing.
    ctx.take_faults()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Device;

    /// wgpu panics on an error outside any error scope unless the device has a handler: with
    /// lloyd's, the error fails the next read-back instead.
    #[test]
    fn an_uncaptured_error_fails_the_next_read_back() {
        let ctx = match GpuContext::get(&Device::Gpu) {
            Ok(c) => c,
            Err(e) if std::env::var_os("LLOYD_REQUIRE_GPU").is_none() => {
                eprintln!("GPU test skipped: {e}");
                return;
            }
            Err(e) => panic!("LLOYD_REQUIRE_GPU is set: {e}"),
        };
        let a = empty_storage(&ctx, "a", 16);
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        // Out of bounds: a validation error, raised outside any scope.
        enc.copy_buffer_to_buffer(&a, 0, &a, 8, 16);
        ctx.queue.submit(Some(enc.finish()));
        match read_back(&ctx, &a, 0, 16) {
            Err(Error::Gpu(m)) => assert!(m.contains("the GPU reported"), "{m}"),
            other => panic!("expected a GPU error, got {other:?}"),
        }
        // Reported once: the device goes on working.
        assert!(read_back(&ctx, &a, 0, 16).is_ok());
    }
}
